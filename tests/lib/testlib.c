/*
 * tests/lib/testlib.c
 *    Test runner and fresh-database helper for the C tests.
 */
#include "testlib.h"

#include "crypto.h"
#include "log.h"
#include "migrate.h"
#include "store.h"

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int testlib_failures;
int testlib_checks;
static int passed, failed;

void testlib_run(const char *name, void (*fn)(void))
{
	struct timespec a, b;
	testlib_failures = 0;
	testlib_checks = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	fn();
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	if (testlib_failures == 0 && testlib_checks > 0) {
		passed++;
		printf("ok   %s (%d checks, %.2fs)\n", name, testlib_checks, secs);
	} else {
		failed++;
		if (testlib_checks == 0)
			fprintf(stderr, "%s: made no check\n", name);
		printf("FAIL %s (%d of %d checks failed)\n", name, testlib_failures, testlib_checks);
	}
	fflush(stdout);
}

int testlib_done(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed || !passed ? 1 : 0;
}

static void admin_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "test setup: %s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		exit(2);
	}
	PQclear(r);
}

char *testlib_fresh_database(const char *name)
{
	const char *admin = getenv("MRGATE_TEST_DATABASE_URL");
	if (!admin || !*admin) {
		fprintf(stderr,
		        "test setup: MRGATE_TEST_DATABASE_URL is not set (run the tests through 'make test')\n");
		exit(2);
	}
	PGconn *c = PQconnectdb(admin);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "test setup: cannot reach the test database: %s", PQerrorMessage(c));
		exit(2);
	}
	admin_exec(c, "SET client_min_messages = warning");
	char dbname[128], sql[300];
	snprintf(dbname, sizeof(dbname), "t_%s_%d", name, (int)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", dbname);
	admin_exec(c, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", dbname);
	admin_exec(c, sql);
	PQfinish(c);

	/* Same URL with the database name replaced: the path component after the authority. */
	const char *p = strstr(admin, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	const char *q = p ? strpbrk(p, "?") : NULL;
	size_t cap = strlen(admin) + strlen(dbname) + 8;
	char *url = malloc(cap);
	if (!url)
		exit(2);
	if (!p)
		snprintf(url, cap, "%s/%s", admin, dbname);
	else
		snprintf(url, cap, "%.*s/%s%s", (int)(p - admin), admin, dbname, q ? q : "");
	return url;
}

struct store *testlib_migrated_store(const char *name, int pool)
{
	char *url = testlib_fresh_database(name);
	struct store *s = store_open(url, pool);
	free(url);
	if (!s || migrate_run(s, NULL) != CORE_OK) {
		fprintf(stderr, "test setup: migration failed\n");
		exit(2);
	}
	return s;
}

struct store *testlib_db_start(const char *name, int pool)
{
	log_init(LOG_ERROR, 0);
	if (crypto_init() != CORE_OK) {
		fprintf(stderr, "test setup: crypto_init failed\n");
		exit(1);
	}
	return testlib_migrated_store(name, pool);
}

struct json_object *testlib_as_client(struct json_object *o)
{
	struct json_object *back = json_tokener_parse(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return back;
}

void testlib_sql(struct store *s, const char *sql)
{
	struct store_conn *c = NULL;
	if (store_get(s, &c) != CORE_OK)
		return;
	if (store_exec(c, sql, 0, NULL, NULL) != CORE_OK)
		fprintf(stderr, "sql failed: %s\n", sql);
	store_put(s, c);
}
