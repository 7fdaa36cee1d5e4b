/*
 * tests/unit/test_gitlab_parse.c
 *    The GitLab client's pure parts: Retry-After, Link, next-page paths, path templates, URL encoding, error-body
 *    classification (the exact bodies of GITLAB-API.md §1.1), the typed JSON getters and the rate limiter.
 */
#include "gitlab.h"
#include "jsonx.h"
#include "ratelimit.h"
#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_retry_after_seconds(void)
{
	int64_t d = -1;
	CHECK(gitlab_parse_retry_after("1", 0, &d));
	CHECK_INT(d, 1000);
	CHECK(gitlab_parse_retry_after(" 120 ", 0, &d));
	CHECK_INT(d, 120000);
	CHECK(gitlab_parse_retry_after("0", 0, &d));
	CHECK_INT(d, 0);
	CHECK(gitlab_parse_retry_after("99999999999999999999", 0, &d));
	CHECK_INT(d, 86400 * 1000LL);
	d = 7;
	CHECK(!gitlab_parse_retry_after("", 0, &d));
	CHECK(!gitlab_parse_retry_after(NULL, 0, &d));
	CHECK(!gitlab_parse_retry_after("-5", 0, &d));
	CHECK(!gitlab_parse_retry_after("1.5", 0, &d));
	CHECK(!gitlab_parse_retry_after("soon", 0, &d));
	CHECK_INT(d, 7);
}

static void test_retry_after_http_date(void)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 (RFC 9110's example) in its three formats. */
	const time_t t = 784111777;
	int64_t d = -1;
	CHECK(gitlab_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t - 30, &d));
	CHECK_INT(d, 30000);
	CHECK(gitlab_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", t - 2, &d));
	CHECK_INT(d, 2000);
	CHECK(gitlab_parse_retry_after("Sun Nov  6 08:49:37 1994", t - 5, &d));
	CHECK_INT(d, 5000);
	/* A date in the past means "now". */
	CHECK(gitlab_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t + 100, &d));
	CHECK_INT(d, 0);
	CHECK(!gitlab_parse_retry_after("Sun, 06 Nov", t, &d));
}

/* Hostile values: no overflow (this file also runs under UBSan), capped at a day, refused when malformed. */
static void test_retry_after_hostile(void)
{
	const int64_t day_ms = 86400 * 1000LL;
	int64_t d = -1;
	char huge[120];
	memset(huge, '9', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	CHECK(gitlab_parse_retry_after(huge, 0, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_retry_after("9223372036854775807", 1700000000, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_retry_after("18446744073709551616", 1700000000, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_retry_after("86401", 0, &d));
	CHECK_INT(d, day_ms);
	d = 7;
	CHECK(!gitlab_parse_retry_after("-9223372036854775808", 0, &d));
	CHECK(!gitlab_parse_retry_after("-1", 0, &d));
	CHECK(!gitlab_parse_retry_after("+5", 0, &d));
	CHECK(!gitlab_parse_retry_after("0x10", 0, &d));
	CHECK(!gitlab_parse_retry_after("1e9", 0, &d));
	CHECK_INT(d, 7);
	/* dates: far future capped, far past is now, nonsense refused */
	CHECK(gitlab_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 1700000000, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", (time_t)INT64_MIN / 2, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_retry_after("Mon, 01 Jan 1601 00:00:00 GMT", 1700000000, &d));
	CHECK_INT(d, 0);
	CHECK(gitlab_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", (time_t)INT64_MAX / 2, &d));
	CHECK_INT(d, 0);
	d = 7;
	CHECK(!gitlab_parse_retry_after("Sun, 06 Nov 99999999999999999999 08:49:37 GMT", 0, &d));
	CHECK(!gitlab_parse_retry_after("Sun, 99 Nov 1994 99:99:99 GMT", 0, &d));
	CHECK_INT(d, 7);
}

/* RateLimit-Reset is a Unix time in seconds: the wait until then, capped at a day, never negative. */
static void test_ratelimit_reset(void)
{
	const int64_t day_ms = 86400 * 1000LL;
	int64_t d = -1;
	CHECK(gitlab_parse_ratelimit_reset("1700000060", 1700000000, &d));
	CHECK_INT(d, 60000);
	CHECK(gitlab_parse_ratelimit_reset("1600000000", 1700000000, &d)); /* in the past */
	CHECK_INT(d, 0);
	CHECK(gitlab_parse_ratelimit_reset("999999999999999999", 1700000000, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_ratelimit_reset("99999999999999999999999999999999999999", 1700000000, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_ratelimit_reset("5", (time_t)INT64_MIN, &d));
	CHECK_INT(d, day_ms);
	CHECK(gitlab_parse_ratelimit_reset("999999999999999999", (time_t)INT64_MAX, &d));
	CHECK_INT(d, 0);
	d = 7;
	CHECK(!gitlab_parse_ratelimit_reset("-5", 0, &d));
	CHECK(!gitlab_parse_ratelimit_reset("", 0, &d));
	CHECK(!gitlab_parse_ratelimit_reset(NULL, 0, &d));
	CHECK(!gitlab_parse_ratelimit_reset("12abc", 0, &d));
	CHECK_INT(d, 7);
}

static void test_link_next(void)
{
	char *u = NULL;
	/* The verbatim GitLab example (GITLAB-API.md §2.4) with the elided URLs filled in. */
	const char *gl =
	    "<https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=1&per_page=3>; rel=\"prev\", "
	    "<https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3>; rel=\"next\", "
	    "<https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=1&per_page=3>; rel=\"first\", "
	    "<https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3>; rel=\"last\"";
	CHECK(gitlab_parse_link_next(gl, &u));
	CHECK_STR(u, "https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3");
	free(u);
	CHECK(gitlab_parse_link_next("<https://h/api/v4/projects?id_after=42&per_page=2>; rel=next", &u));
	CHECK_STR(u, "https://h/api/v4/projects?id_after=42&per_page=2");
	free(u);
	CHECK(gitlab_parse_link_next("<https://h/a>; title=\"x, y\"; rel=\"last next\"", &u));
	CHECK_STR(u, "https://h/a");
	free(u);
	CHECK(!gitlab_parse_link_next("<https://h/a>; rel=\"prev\", <https://h/b>; rel=\"first\"", &u));
	CHECK(u == NULL);
	CHECK(!gitlab_parse_link_next("<https://h/a>; rel=\"nextish\"", &u));
	CHECK(!gitlab_parse_link_next("garbage", &u));
	CHECK(!gitlab_parse_link_next("<unterminated; rel=\"next\"", &u));
	CHECK(!gitlab_parse_link_next("", &u));
	CHECK(!gitlab_parse_link_next(NULL, &u));
}

static void test_next_page_path(void)
{
	char *n = NULL;
	CHECK_INT(gitlab_next_page_path("/groups/7/projects?per_page=100&page=1&order_by=id", "2", NULL, &n), CORE_OK);
	CHECK_STR(n, "/groups/7/projects?per_page=100&order_by=id&page=2");
	free(n);
	CHECK_INT(gitlab_next_page_path("/groups/7/projects", "3", NULL, &n), CORE_OK);
	CHECK_STR(n, "/groups/7/projects?page=3");
	free(n);
	/* An empty x-next-page and no Link: the last page. */
	CHECK_INT(gitlab_next_page_path("/groups/7/projects?page=3", "", NULL, &n), CORE_OK);
	CHECK(n == NULL);
	/* x-next-page wins over Link; Link is used without it; the host in the Link is never used. */
	CHECK_INT(
	    gitlab_next_page_path("/projects?page=1", "2", "<https://evil.example/api/v4/x?page=9>; rel=\"next\"", &n),
	    CORE_OK);
	CHECK_STR(n, "/projects?page=2");
	free(n);
	CHECK_INT(gitlab_next_page_path(
	              "/projects?pagination=keyset", NULL,
	              "<https://other.host/gitlab/api/v4/projects?pagination=keyset&id_after=5>; rel=\"next\"", &n),
	          CORE_OK);
	CHECK_STR(n, "/projects?pagination=keyset&id_after=5");
	free(n);
	/* A next link outside any API is an error, not a silent end. */
	CHECK_INT(gitlab_next_page_path("/projects", NULL, "<https://h/elsewhere?page=2>; rel=\"next\"", &n),
	          CORE_EUPSTREAM);
	CHECK(n == NULL);
	/* A non-numeric x-next-page is ignored. */
	CHECK_INT(gitlab_next_page_path("/projects", "2;rm", NULL, &n), CORE_OK);
	CHECK(n == NULL);
}

static void test_path_template(void)
{
	static const char *cases[][2] = {
	    {"/projects/42/hooks/7", "/projects/:id/hooks/:hook_id"},
	    {"/projects/42/hooks?per_page=100&page=3", "/projects/:id/hooks"},
	    {"/groups/my-group%2Fsub/projects", "/groups/:id/projects"},
	    {"/projects/1/merge_requests/3/notes/99", "/projects/:id/merge_requests/:merge_request_iid/notes/:note_id"},
	    {"/projects/5/statuses/6104942438c14ec7bd21c6cd5bd995272b3faff6", "/projects/:id/statuses/:sha"},
	    {"/projects/5/repository/commits/abc1234/merge_requests",
	     "/projects/:id/repository/commits/:sha/merge_requests"},
	    {"/personal_access_tokens/self", "/personal_access_tokens/self"},
	    {"/groups/3/access_tokens/12", "/groups/:id/access_tokens/:access_token_id"},
	    {"/user", "/user"},
	    {"/groups/3/descendant_groups", "/groups/:id/descendant_groups"},
	    {"/projects/3/repository/branches/feature-x", "/projects/:id/repository/branches/:branch"},
	};
	char b[128];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gitlab_path_template(cases[i][0], b, sizeof(b));
		CHECK_STR(b, cases[i][1]);
	}
	char tiny[8];
	gitlab_path_template("/projects/42/hooks", tiny, sizeof(tiny));
	CHECK_INT(strlen(tiny), 7);
}

static void test_url_encode(void)
{
	static const char *cases[][2] = {
	    {"group/sub", "group%2Fsub"},
	    {"my-group.x_y~/a b?&#%", "my-group.x_y~%2Fa%20b%3F%26%23%25"},
	    {"", ""},
	    {"\xc3\xa9", "%C3%A9"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = NULL;
		CHECK_INT(gitlab_url_encode_path(cases[i][0], &e), CORE_OK);
		CHECK_STR(e, cases[i][1]);
		free(e);
	}
}

static enum gitlab_error classify(long status, const char *body, char *msg, size_t cap)
{
	return gitlab_classify_error(status, body, body ? strlen(body) : 0, msg, cap);
}

/* One GitLab error answer and what mrgate makes of it: the class and, unless text is NULL, a message equal to
 * (MSG_IS), starting with (MSG_STARTS) or containing (MSG_HAS) text. */
enum msg_match { MSG_IS, MSG_STARTS, MSG_HAS };
struct classify_case {
	long status;
	const char *body;
	enum gitlab_error want;
	enum msg_match how;
	const char *text;
};

static void check_classify(const struct classify_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char m[512];
		int before = testlib_failures;
		CHECK_INT(classify(c[i].status, c[i].body, m, sizeof(m)), c[i].want);
		if (c[i].text && c[i].how == MSG_IS)
			CHECK_STR(m, c[i].text);
		else if (c[i].text && c[i].how == MSG_STARTS)
			CHECK(strncmp(m, c[i].text, strlen(c[i].text)) == 0);
		else if (c[i].text)
			CHECK(strstr(m, c[i].text) != NULL);
		if (testlib_failures != before)
			fprintf(stderr, "  in case %zu (HTTP %ld): %s\n", i, c[i].status, m);
	}
}

static void test_classify_auth_bodies(void)
{
	/* GITLAB-API.md §1.1, verbatim. Types are never trusted: an "error" that is not a string is not an expired
	 * token. */
	static const struct classify_case c[] = {
	    {401, "{\"message\": \"401 Unauthorized\"}", GITLAB_ERR_TOKEN_INVALID, MSG_HAS, "invalid or unknown"},
	    {401,
	     "{\"error\":\"invalid_token\",\"error_description\":\"Token is expired. You can either do "
	     "re-authorization or token refresh.\"}",
	     GITLAB_ERR_TOKEN_EXPIRED, MSG_STARTS, "the token is expired"},
	    {401,
	     "{\"error\":\"invalid_token\",\"error_description\":\"Token was revoked. You have to "
	     "re-authorize from the user.\"}",
	     GITLAB_ERR_TOKEN_REVOKED, MSG_STARTS, "the token was revoked"},
	    {403,
	     "{\"error\":\"insufficient_scope\",\"error_description\":\"The request requires higher "
	     "privileges than provided by the access token.\",\"scope\":\"api\"}",
	     GITLAB_ERR_SCOPE, MSG_IS, "the token lacks the api scope"},
	    {403, "{\"error\":\"insufficient_scope\",\"scope\":\"sudo\"}", GITLAB_ERR_SCOPE, MSG_IS,
	     "the token lacks the sudo scope"},
	    {403, "{\"message\":\"403 Forbidden\"}", GITLAB_ERR_FORBIDDEN, MSG_HAS, "403 Forbidden"},
	    {401, "{\"error\":7,\"error_description\":\"Token is expired\"}", GITLAB_ERR_TOKEN_INVALID, MSG_HAS, NULL},
	    {401, "", GITLAB_ERR_TOKEN_INVALID, MSG_HAS, NULL},
	};
	check_classify(c, sizeof(c) / sizeof(c[0]));
	CHECK_INT(gitlab_error_status(GITLAB_ERR_TOKEN_EXPIRED), CORE_EUNAUTH);
	CHECK_INT(gitlab_error_status(GITLAB_ERR_SCOPE), CORE_EFORBIDDEN);
}

static void test_classify_other_bodies(void)
{
	static const struct classify_case c[] = {
	    {404, "{\"message\":\"404 Project Not Found\"}", GITLAB_ERR_NOT_FOUND, MSG_IS,
	     "not found or the token has no access (404 Project Not Found)"},
	    {404, "{\"error\":\"404 Not Found\"}", GITLAB_ERR_NOT_FOUND, MSG_HAS, "404 Not Found"},
	    {409, "{\"message\":\"Another update to this commit status is in progress\"}", GITLAB_ERR_CONFLICT, MSG_HAS,
	     "Another update"},
	    {400, "{\"message\":{\"bio\":[\"is too long (maximum is 255 characters)\"]}}", GITLAB_ERR_INVALID, MSG_HAS,
	     "bio is too long (maximum is 255 characters)"},
	    {400, "{\"message\":\"400 (Bad request) \\\"title\\\" not given\"}", GITLAB_ERR_INVALID, MSG_HAS,
	     "\"title\" not given"},
	    {422, "{\"error\":\"Invalid url given\"}", GITLAB_ERR_INVALID, MSG_HAS, "Invalid url given"},
	    {429, "Retry later", GITLAB_ERR_RATE_LIMITED, MSG_HAS, "Retry later"},
	    {429,
	     "{\"message\":{\"error\":\"This endpoint has been requested too many times. Try again "
	     "later.\"}}",
	     GITLAB_ERR_RATE_LIMITED, MSG_HAS, "requested too many times"},
	    {301, NULL, GITLAB_ERR_HTTP, MSG_HAS, NULL},
	};
	check_classify(c, sizeof(c) / sizeof(c[0]));
	char m[512];
	CHECK_INT(classify(502, "<html>\n<b>Bad Gateway</b></html>", m, sizeof(m)), GITLAB_ERR_SERVER);
	CHECK(strstr(m, "502") != NULL && strchr(m, '\n') == NULL);
	CHECK_INT(gitlab_error_status(GITLAB_ERR_NOT_FOUND), CORE_ENOTFOUND);
	CHECK_INT(gitlab_error_status(GITLAB_ERR_INVALID), CORE_EINVAL);
	CHECK_INT(gitlab_error_status(GITLAB_ERR_TOO_LARGE), CORE_ETOOLARGE);
	CHECK_STR(gitlab_error_name(GITLAB_ERR_TOKEN_EXPIRED), "token_expired");
	for (int k = 0; k < GITLAB_ERR_COUNT; k++)
		CHECK(strcmp(gitlab_error_name((enum gitlab_error)k), "unknown") != 0);
}

static void test_jsonx_types(void)
{
	const char *doc = "{\"id\": 42, \"sid\": \"42\", \"f\": 1.5, \"big\": 18446744073709551615, \"neg\": -7,"
	                  " \"name\": \"x\", \"b\": true, \"bn\": null, \"bs\": \"true\", \"arr\": [1],"
	                  " \"namespace\": {\"full_path\": \"a/b\", \"id\": 3, \"deep\": {\"k\": false}}}";
	struct json_object *j = NULL;
	REQUIRE(jsonx_parse(doc, strlen(doc), &j) == CORE_OK);
	int64_t i = -1;
	const char *s = NULL;
	bool b = true;
	struct json_object *o = NULL;

	CHECK(jsonx_int64(j, "id", &i) && i == 42);
	i = -1;
	CHECK(!jsonx_int64(j, "sid", &i));
	CHECK(!jsonx_int64(j, "f", &i));
	CHECK(!jsonx_int64(j, "big", &i));
	CHECK(!jsonx_int64(j, "name", &i));
	CHECK(!jsonx_int64(j, "missing", &i));
	CHECK(!jsonx_int64(j, "bn", &i));
	CHECK_INT(i, -1);
	CHECK(jsonx_int64(j, "neg", &i) && i == -7);

	CHECK(jsonx_str(j, "name", &s) && strcmp(s, "x") == 0);
	s = NULL;
	CHECK(!jsonx_str(j, "id", &s));
	CHECK(!jsonx_str(j, "bn", &s));
	CHECK(!jsonx_str(j, "arr", &s));
	CHECK(s == NULL);

	CHECK(jsonx_bool(j, "b", &b) && b);
	b = true;
	CHECK(jsonx_bool(j, "bn", &b) && !b); /* GitLab's null-for-false */
	b = true;
	CHECK(!jsonx_bool(j, "bs", &b));
	CHECK(!jsonx_bool(j, "id", &b));
	CHECK(!jsonx_bool(j, "missing", &b));
	CHECK(b);

	CHECK(jsonx_array(j, "arr", &o) && json_object_array_length(o) == 1);
	CHECK(!jsonx_array(j, "namespace", &o));
	CHECK(jsonx_object(j, "namespace", &o));
	CHECK(!jsonx_object(j, "arr", &o));

	CHECK(jsonx_path_str(j, "namespace.full_path", &s) && strcmp(s, "a/b") == 0);
	CHECK(jsonx_path_int64(j, "namespace.id", &i) && i == 3);
	CHECK(!jsonx_path_str(j, "namespace.id", &s));
	CHECK(!jsonx_path_str(j, "name.full_path", &s));
	CHECK(!jsonx_path_str(j, "namespace..full_path", &s));
	CHECK(!jsonx_path_int64(j, "nope.id", &i));
	CHECK(jsonx_path_bool(j, "namespace.deep.k", &b) && !b);
	CHECK(jsonx_path(j, "namespace.deep") != NULL);
	CHECK(jsonx_get(NULL, "x") == NULL);
	CHECK(!jsonx_int64(o = json_object_array_get_idx(jsonx_get(j, "arr"), 0), "x", &i)); /* not an object */
	json_object_put(j);
}

static void test_jsonx_parse_strict(void)
{
	struct json_object *j = NULL;
	CHECK_INT(jsonx_parse("[1,2] ", 6, &j), CORE_OK);
	json_object_put(j);
	CHECK_INT(jsonx_parse("42", 2, &j), CORE_OK);
	CHECK(j && json_object_is_type(j, json_type_int));
	json_object_put(j);
	CHECK_INT(jsonx_parse("[1,2] x", 7, &j), CORE_EINVAL);
	CHECK(j == NULL);
	CHECK_INT(jsonx_parse("[1,2][3]", 8, &j), CORE_EINVAL);
	CHECK_INT(jsonx_parse("{\"a\":1,}", 8, &j), CORE_EINVAL);
	CHECK_INT(jsonx_parse("['a']", 5, &j),
	          CORE_EINVAL); /* (json-c 0.16 accepts single-quoted keys even in strict mode) */
	CHECK_INT(jsonx_parse("[1, 2", 5, &j), CORE_EINVAL);
	CHECK_INT(jsonx_parse("", 0, &j), CORE_EINVAL);
	CHECK_INT(jsonx_parse("Retry later", 11, &j), CORE_EINVAL);
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	CHECK_INT(jsonx_parse(deep, sizeof(deep), &j), CORE_EINVAL);
	CHECK(j == NULL);
}

static void test_ratelimit_bucket(void)
{
	struct ratelimit *rl = ratelimit_new(60); /* 1/s, burst 10 */
	REQUIRE(rl);
	int64_t t = ratelimit_now_ms() + 1000, w = 0; /* the limiter's clock is CLOCK_MONOTONIC ms */
	int ok = 0;
	for (int i = 0; i < 20; i++)
		ok += ratelimit_try_acquire(rl, t, &w);
	CHECK_INT(ok, 10);
	CHECK(w >= 900 && w <= 1001);
	CHECK(!ratelimit_try_acquire(rl, t + 500, &w));
	CHECK(ratelimit_try_acquire(rl, t + 1001, &w));
	CHECK(!ratelimit_try_acquire(rl, t + 1002, &w));
	CHECK_INT(ratelimit_effective_per_minute(rl, t), 60);

	/* GitLab says 5 left for the next 10 s: 30/min and at most 5 at once. */
	t += 100000;
	ratelimit_observe(rl, t, 5, 10000);
	CHECK_INT(ratelimit_effective_per_minute(rl, t), 30);
	ok = 0;
	for (int i = 0; i < 10; i++)
		ok += ratelimit_try_acquire(rl, t, &w);
	CHECK_INT(ok, 5);
	CHECK(w >= 1900 && w <= 2001);
	/* After the reset the configured rate is back. */
	CHECK_INT(ratelimit_effective_per_minute(rl, t + 10001), 60);

	/* Remaining 0 pauses until the reset; a pause never shrinks. */
	t += 100000;
	ratelimit_observe(rl, t, 0, 3000);
	CHECK_INT(ratelimit_paused_until(rl), t + 3000);
	CHECK(!ratelimit_try_acquire(rl, t + 10, &w));
	CHECK_INT(w, 2990);
	ratelimit_pause_until(rl, t + 100);
	CHECK_INT(ratelimit_paused_until(rl), t + 3000);
	CHECK(ratelimit_try_acquire(rl, t + 3000, &w));
	ratelimit_free(rl);

	/* Unlimited stays unlimited until GitLab's headers say otherwise. */
	rl = ratelimit_new(0);
	REQUIRE(rl);
	ok = 0;
	for (int i = 0; i < 1000; i++)
		ok += ratelimit_try_acquire(rl, ratelimit_now_ms(), &w);
	CHECK_INT(ok, 1000);
	CHECK_INT(ratelimit_effective_per_minute(rl, ratelimit_now_ms()), 0);
	t = ratelimit_now_ms() + 1000;
	ratelimit_observe(rl, t, 2, 60000);
	CHECK_INT(ratelimit_effective_per_minute(rl, t), 2);
	CHECK(ratelimit_try_acquire(rl, t, &w));
	CHECK(!ratelimit_try_acquire(rl, t, &w));
	ratelimit_free(rl);
	CHECK(ratelimit_new(-1) == NULL);
	ratelimit_free(NULL);
}

int main(void)
{
	RUN(test_retry_after_seconds);
	RUN(test_retry_after_http_date);
	RUN(test_retry_after_hostile);
	RUN(test_ratelimit_reset);
	RUN(test_link_next);
	RUN(test_next_page_path);
	RUN(test_path_template);
	RUN(test_url_encode);
	RUN(test_classify_auth_bodies);
	RUN(test_classify_other_bodies);
	RUN(test_jsonx_types);
	RUN(test_jsonx_parse_strict);
	RUN(test_ratelimit_bucket);
	return testlib_done();
}
