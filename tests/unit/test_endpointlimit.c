/*
 * tests/unit/test_endpointlimit.c
 *    Back-off per GitLab endpoint after per-endpoint 429s (core/endpointlimit.h).
 */
#include "endpointlimit.h"
#include "testlib.h"

#include <stdio.h>
#include <string.h>

static void test_keys(void)
{
	char k[ENDPOINTLIMIT_KEY_MAX];
	endpointlimit_key("GET", "/projects/:id/repository/archive.tar.gz",
	                  "/projects/42/repository/archive.tar.gz?sha=a", k, sizeof(k));
	CHECK_STR(k, "GET /projects/:id/repository/archive.tar.gz @42");
	endpointlimit_key("GET", "/projects/:id", "/projects/42", k, sizeof(k));
	CHECK_STR(k, "GET /projects/:id"); /* GET /projects/:id is limited per user, not per project */
	/* two long namespaced paths that share their first 64 bytes are two keys, never one cut prefix */
	char k2[ENDPOINTLIMIT_KEY_MAX];
	const char *tmpl = "/projects/:id/repository/archive.tar.gz";
	endpointlimit_key("GET", tmpl,
	                  "/projects/group%2Fsubgroup%2Fanother-subgroup%2Fa-rather-long-project-name-one/repository/"
	                  "archive.tar.gz",
	                  k, sizeof(k));
	endpointlimit_key("GET", tmpl,
	                  "/projects/group%2Fsubgroup%2Fanother-subgroup%2Fa-rather-long-project-name-two/repository/"
	                  "archive.tar.gz",
	                  k2, sizeof(k2));
	CHECK(strcmp(k, k2) != 0);
	CHECK(strncmp(k, "GET /projects/:id/repository/archive.tar.gz @#", 46) == 0);
	CHECK_INT(strlen(k), 46 + 16);
}

static void test_streak_doubles_and_success_ends_it(void)
{
	struct endpointlimit *t = endpointlimit_new();
	REQUIRE(t);
	int streak = 0;
	CHECK_INT(endpointlimit_wait(t, "a", 0), 0);
	CHECK_INT(endpointlimit_throttled(t, "a", 1000, 1000, &streak), 1000);
	CHECK_INT(streak, 1);
	CHECK_INT(endpointlimit_wait(t, "a", 1500), 500);
	CHECK_INT(endpointlimit_wait(t, "b", 1500), 0); /* another endpoint is not held */
	/* the wait is over: the first caller probes, the next one waits for the probe's answer */
	CHECK_INT(endpointlimit_wait(t, "a", 2000), 0);
	CHECK_INT(endpointlimit_wait(t, "a", 2000), ENDPOINTLIMIT_POLL_MS);
	CHECK_INT(endpointlimit_throttled(t, "a", 2100, 1000, &streak), 2000);
	CHECK_INT(endpointlimit_throttled(t, "a", 4100, 1000, &streak), 4000);
	CHECK_INT(streak, 3);
	for (int i = 0; i < 10; i++)
		endpointlimit_throttled(t, "a", 10000, 1000, &streak);
	CHECK(endpointlimit_wait(t, "a", 10000) <= ENDPOINTLIMIT_MAX_MS);
	endpointlimit_ok(t, "a");
	CHECK_INT(endpointlimit_wait(t, "a", 10001), 0);
	CHECK_INT(endpointlimit_wait(t, "a", 10001), 0); /* no streak: no probing */
	CHECK_INT(endpointlimit_throttled(t, "a", 20000, 1000, &streak), 1000);
	CHECK_INT(streak, 1);
	endpointlimit_free(t);
}

static void test_many_keys_recycle(void)
{
	struct endpointlimit *t = endpointlimit_new();
	REQUIRE(t);
	char k[32];
	for (int i = 0; i < ENDPOINTLIMIT_SLOTS + 10; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		endpointlimit_throttled(t, k, i, 1000, NULL);
	}
	CHECK(endpointlimit_wait(t, "k265", 300) > 0);
	CHECK_INT(endpointlimit_wait(t, "k0", 300), 0); /* recycled */
	endpointlimit_free(t);
}

int main(void)
{
	RUN(test_keys);
	RUN(test_streak_doubles_and_success_ends_it);
	RUN(test_many_keys_recycle);
	return testlib_done();
}
