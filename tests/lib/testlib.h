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

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		testlib_checks++;                                                                                      \
		if (!(cond)) {                                                                                         \
			testlib_failures++;                                                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                       \
		}                                                                                                      \
	} while (0)

#define REQUIRE(cond)                                                                                                  \
	do {                                                                                                           \
		testlib_checks++;                                                                                      \
		if (!(cond)) {                                                                                         \
			testlib_failures++;                                                                            \
			fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);                 \
			return;                                                                                        \
		}                                                                                                      \
	} while (0)

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

#endif
