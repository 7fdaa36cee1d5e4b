/*
 * tests/db/test_migrate.c
 *    Migrations on a fresh database, an idempotent re-run, concurrent runs, SQLSTATE mapping, store helpers.
 */
#include "log.h"
#include "migrate.h"
#include "store.h"
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *url;

static int count_rows(struct store *s, const char *sql)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	int n = -1;
	if (store_get(s, &c) == CORE_OK && store_exec(c, sql, 0, NULL, &r) == CORE_OK)
		n = (int)store_i64(r, 0, "n", -1);
	PQclear(r);
	store_put(s, c);
	return n;
}

static void fresh_then_rerun(void)
{
	struct store *s = store_open(url, 4);
	int v = -1, applied = -1;
	REQUIRE(s);
	CHECK(migrate_current(s, &v) == CORE_OK);
	CHECK_INT(v, 0);
	CHECK(migrate_run(s, &applied) == CORE_OK);
	CHECK_INT(applied, migrations_count);
	CHECK(migrate_current(s, &v) == CORE_OK);
	CHECK_INT(v, migrate_latest());
	CHECK_INT(count_rows(s, "SELECT count(*) AS n FROM schema_migrations"), migrations_count);
	/* a re-run changes nothing */
	CHECK(migrate_run(s, &applied) == CORE_OK);
	CHECK_INT(applied, 0);
	CHECK_INT(count_rows(s, "SELECT count(*) AS n FROM schema_migrations"), migrations_count);
	/* migrations are numbered without gaps from 1 */
	for (int i = 0; i < migrations_count; i++)
		CHECK_INT(migrations[i].version, i + 1);
	store_close(s);
}

struct racer {
	int applied;
	enum core_status st;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct store *s = store_open(url, 2);
	r->st = migrate_run(s, &r->applied);
	store_close(s);
	return NULL;
}

static void concurrent_runs(void)
{
	/* start from an empty schema again */
	struct store *s = store_open(url, 2);
	struct store_conn *c = NULL;
	REQUIRE(store_get(s, &c) == CORE_OK);
	CHECK(store_exec_script(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;") == CORE_OK);
	store_put(s, c);
	store_close(s);

	pthread_t t[4];
	struct racer r[4];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, race, &r[i]);
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(r[i].st == CORE_OK);
		total += r[i].applied;
	}
	/* every migration was applied exactly once across the four racers */
	CHECK_INT(total, migrations_count);
}

static void sqlstate_mapping(void)
{
	CHECK(store_sqlstate_status("23505") == CORE_ECONFLICT);
	CHECK(store_sqlstate_status("23503") == CORE_EINVAL);
	CHECK(store_sqlstate_status("22P02") == CORE_EINVAL);
	CHECK(store_sqlstate_status("40001") == CORE_ECONFLICT);
	CHECK(store_sqlstate_status("08006") == CORE_EUNAVAIL);
	CHECK(store_sqlstate_status("57P01") == CORE_EUNAVAIL);
	CHECK(store_sqlstate_status("42601") == CORE_EINTERNAL);
	CHECK(store_sqlstate_status(NULL) == CORE_EUNAVAIL);

	struct store *s = store_open(url, 2);
	struct store_conn *c = NULL;
	REQUIRE(store_get(s, &c) == CORE_OK);
	const char *p[] = {"dup", "x"};
	CHECK(store_exec(c, "INSERT INTO users (username, password_hash) VALUES ($1, $2)", 2, p, NULL) == CORE_OK);
	CHECK(store_exec(c, "INSERT INTO users (username, password_hash) VALUES ($1, $2)", 2, p, NULL) ==
	      CORE_ECONFLICT);
	CHECK_STR(store_last_sqlstate(c), "23505");
	const char *bad[] = {"not a number"};
	CHECK(store_exec(c, "SELECT $1::int", 1, bad, NULL) == CORE_EINVAL);
	/* a transaction left open is rolled back when the connection is returned */
	CHECK(store_begin(c) == CORE_OK);
	const char *p2[] = {"rolled-back", "x"};
	CHECK(store_exec(c, "INSERT INTO users (username, password_hash) VALUES ($1, $2)", 2, p2, NULL) == CORE_OK);
	store_put(s, c);
	CHECK_INT(count_rows(s, "SELECT count(*) AS n FROM users WHERE username = 'rolled-back'"), 0);
	struct store_stats ss;
	store_stats(s, &ss);
	CHECK(ss.errors >= 2);
	CHECK_INT(ss.in_use, 0);
	store_close(s);
}

static void unreachable(void)
{
	struct store *s = store_open("postgresql://mrgate@/nowhere?host=/nonexistent-dir&connect_timeout=2", 1);
	struct store_conn *c = NULL;
	CHECK(store_get(s, &c) == CORE_EUNAVAIL);
	CHECK(c == NULL);
	int v;
	CHECK(migrate_current(s, &v) == CORE_EUNAVAIL);
	store_close(s);
}

/*
 * Pooled connections that the server ended while they sat idle (PostgreSQL restarted, pg_terminate_backend) are
 * replaced when they are taken from the pool: each first statement used to fail ("could not log in" once the
 * database was back, seen in CI).
 */
static void connections_ended_in_the_pool_are_replaced(void)
{
	enum { N = 4 };
	struct store *s = store_open(url, N), *admin = store_open(url, 1);
	struct store_conn *c[N] = {0};
	for (int i = 0; i < N; i++) /* all N open at once: each its own backend */
		REQUIRE(store_get(s, &c[i]) == CORE_OK && store_exec(c[i], "SELECT 1", 0, NULL, NULL) == CORE_OK);
	char pids[N * 24] = "";
	for (int i = 0; i < N; i++)
		snprintf(pids + strlen(pids), sizeof(pids) - strlen(pids), "%s%d", i ? "," : "",
		         PQbackendPID(store_pg(c[i])));
	for (int i = 0; i < N; i++)
		store_put(s, c[i]);
	char sql[sizeof(pids) + 160];
	snprintf(sql, sizeof(sql), "SELECT count(pg_terminate_backend(pid)) AS n FROM unnest('{%s}'::int[]) pid", pids);
	CHECK_INT(count_rows(admin, sql), N);
	struct timespec pause = {0, 200 * 1000000L}; /* the backends exit and close their sockets */
	nanosleep(&pause, NULL);
	for (int i = 0; i < N; i++) {
		REQUIRE(store_get(s, &c[i]) == CORE_OK);
		CHECK(store_exec(c[i], "SELECT 1", 0, NULL, NULL) == CORE_OK);
	}
	for (int i = 0; i < N; i++)
		store_put(s, c[i]);
	store_close(admin);
	store_close(s);
}

int main(void)
{
	log_init(LOG_ERROR, 0);
	url = testlib_fresh_database("migrate");
	RUN(fresh_then_rerun);
	RUN(concurrent_runs);
	RUN(sqlstate_mapping);
	RUN(unreachable);
	RUN(connections_ended_in_the_pool_are_replaced);
	free(url);
	return testlib_done();
}
