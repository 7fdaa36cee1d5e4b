/*
 * tests/lib/testlib.h
 *    Tiny assertion helpers for the C tests and a fresh-database helper for the db tests.
 *
 * Each test executable calls its test functions through RUN(); the process prints "N passed, N failed" and exits
 * non-zero when anything failed. CHECK() records a failure and continues; REQUIRE() also returns from the test.
 */
#ifndef MRGATE_TESTLIB_H
#define MRGATE_TESTLIB_H

#include <stdio.h>
#include <string.h>

extern int testlib_failures; /* failures in the current test */
extern int testlib_checks;   /* checks made in the current test */

/* One check: count it; when cond is false, count a failure, say so (kind: "check", "requirement") and do on_fail. */
#define TESTLIB_CHECK_(cond, kind, on_fail)                                                                            \
	do {                                                                                                           \
		testlib_checks++;                                                                                      \
		if (!(cond)) {                                                                                         \
			testlib_failures++;                                                                            \
			fprintf(stderr, "%s:%d: " kind " failed: %s\n", __FILE__, __LINE__, #cond);                    \
			on_fail;                                                                                       \
		}                                                                                                      \
	} while (0)

#define TESTLIB_RETURN_ return
#define CHECK(cond)     TESTLIB_CHECK_(cond, "check", (void)0)
#define REQUIRE(cond)   TESTLIB_CHECK_(cond, "requirement", TESTLIB_RETURN_) /* also returns from the test */

#define CHECK_STR(a, b)                                                                                                \
	do {                                                                                                           \
		const char *a_ = (a), *b_ = (b);                                                                       \
		testlib_checks++;                                                                                      \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                               \
			testlib_failures++;                                                                            \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)",           \
			        b_ ? b_ : "(null)");                                                                   \
		}                                                                                                      \
	} while (0)

#define CHECK_INT(a, b)                                                                                                \
	do {                                                                                                           \
		long long a_ = (long long)(a), b_ = (long long)(b);                                                    \
		testlib_checks++;                                                                                      \
		if (a_ != b_) {                                                                                        \
			testlib_failures++;                                                                            \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_);         \
		}                                                                                                      \
	} while (0)

/* Run one test function and record its outcome. */
void testlib_run(const char *name, void (*fn)(void));
#define RUN(fn) testlib_run(#fn, fn)
/* Print the closing line; returns the process exit code. */
int testlib_done(void);

/*
 * Create a fresh, empty database on the test cluster (MRGATE_TEST_DATABASE_URL) named after the test and the
 * process id, and return its libpq URL (malloc'd, the caller frees). Exits the process with a failure when the
 * variable is unset or the server cannot be reached: a db test never skips.
 */
char *testlib_fresh_database(const char *name);

/*
 * A store (core/store.h) with a pool of pool connections on a fresh database (testlib_fresh_database) that
 * core/migrate.c has migrated: the start of the db tests that need the schema. Exits the process with a failure
 * when the database cannot be made or migrated. The caller closes the store (store_close).
 */
struct store;
struct store *testlib_migrated_store(const char *name, int pool);

/*
 * The set-up of a db test's main(): logging at LOG_ERROR, crypto_init (exits 1 when it fails), then
 * testlib_migrated_store(name, pool). The caller closes the store (store_close).
 */
struct store *testlib_db_start(const char *name, int pool);

/* Run set-up SQL without parameters or rows on a pooled connection of s; a failure is reported on stderr. */
void testlib_sql(struct store *s, const char *sql);

/* o as a client sees it: written out as JSON text and parsed again (o is put; NULL when the text is not JSON). */
struct json_object;
struct json_object *testlib_as_client(struct json_object *o);

#endif
