/*
 * tests/unit/test_jsonscan.c
 *    core/jsonscan.h: the members read from each element of a list page, their types and decoded strings, what
 *    makes a page invalid (and that nothing is handed over from one), duplicates read and not read, the nesting
 *    limit, and a callback's status stopping the scan. tests/fuzz/fuzz_jsonscan.c compares the scan with the
 *    json-c tree on its corpus and on whatever a fuzzer finds.
 */
#include "jsonscan.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static const char *const paths[] = {"id", "path", "namespace.full_path", "namespace.id", "archived", "level.x.y"};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

struct seen {
	int n;
	int64_t ids[8];
	char path[8][64];
	char ns[8][64];
	int64_t ns_id[8];
	bool archived[8];
	enum jscan_type types[8][NPATHS];
	int stop_at; /* return CORE_ECONFLICT at this element (0: never) */
};

static enum core_status collect(const struct jscan_value *v, void *user)
{
	struct seen *s = user;
	struct buf b = {0};
	int i = s->n++;
	if (s->stop_at && s->n == s->stop_at)
		return CORE_ECONFLICT;
	if (i >= 8)
		return CORE_OK;
	for (size_t k = 0; k < NPATHS; k++)
		s->types[i][k] = v[k].type;
	jscan_int64(&v[0], &s->ids[i]);
	if (jscan_str(&v[1], &b))
		snprintf(s->path[i], sizeof(s->path[i]), "%s", buf_str(&b));
	if (jscan_str(&v[2], &b))
		snprintf(s->ns[i], sizeof(s->ns[i]), "%s", buf_str(&b));
	jscan_int64(&v[3], &s->ns_id[i]);
	jscan_bool(&v[4], &s->archived[i]);
	buf_free(&b);
	return CORE_OK;
}

static enum core_status scan(const char *text, struct seen *s, char *err, size_t n_err)
{
	size_t n = 0;
	return jscan_each(text, strlen(text), paths, NPATHS, collect, s, &n, err, n_err);
}

static void reads_the_members_of_each_element(void)
{
	struct seen s = {0};
	char err[200] = "";
	const char *page = "[{\"id\": 12, \"description\": \"x\", \"tag_list\": [1, {\"id\": 99}],"
	                   " \"path\": \"web\", \"namespace\": {\"id\": 4, \"full_path\": \"acme/apps\","
	                   " \"parent\": {\"id\": 77}}, \"archived\": true, \"level\": {\"x\": 5}},"
	                   " {\"path\": \"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\", \"id\": 13, \"archived\": null,"
	                   " \"namespace\": \"not an object\"}, 7]";
	CHECK_INT(scan(page, &s, err, sizeof(err)), CORE_OK);
	CHECK_INT(s.n, 3);
	CHECK(s.ids[0] == 12 && s.ids[1] == 13);
	CHECK_STR(s.path[0], "web");
	CHECK_STR(s.path[1], "caf\xc3\xa9 \"q\" \xf0\x9f\x98\x80");
	CHECK_STR(s.ns[0], "acme/apps");
	CHECK(s.ns_id[0] == 4); /* not the parent's id 77, nor the tag's 99 */
	CHECK(s.archived[0] && !s.archived[1]);
	CHECK_INT(s.types[1][4], JSCAN_NULL);
	CHECK_INT(s.types[1][2], JSCAN_ABSENT); /* namespace is a string: no full_path under it */
	CHECK_INT(s.types[0][5], JSCAN_ABSENT); /* level.x is a number: nothing under it */
	for (size_t k = 0; k < NPATHS; k++)
		CHECK_INT(s.types[2][k], JSCAN_ABSENT); /* 7 is not an object */
}

static void readers_keep_jsonx_rules(void)
{
	struct buf b = {0};
	int64_t i = 0;
	bool x = true;
	struct jscan_value big = {JSCAN_INT, "9223372036854775808", 19};
	CHECK(!jscan_int64(&big, &i));
	struct jscan_value max = {JSCAN_INT, "-9223372036854775808", 20};
	CHECK(jscan_int64(&max, &i) && i == INT64_MIN);
	struct jscan_value num = {JSCAN_NUMBER, "1.0", 3};
	CHECK(!jscan_int64(&num, &i));
	struct jscan_value str = {JSCAN_STRING, "\"1\"", 3};
	CHECK(!jscan_int64(&str, &i) && !jscan_bool(&str, &x) && x);
	struct jscan_value nul = {JSCAN_NULL, "null", 4};
	CHECK(jscan_bool(&nul, &x) && !x);
	CHECK(!jscan_str(&nul, &b));
	struct jscan_value cut = {JSCAN_STRING, "\"ab\\u0000cd\"", 12};
	CHECK(!jscan_str(&cut, &b)); /* read as a C string it would be "ab" */
	struct jscan_value lone = {JSCAN_STRING, "\"\\ud800x\"", 9};
	CHECK(jscan_str(&lone, &b) && strcmp(buf_str(&b), "\xef\xbf\xbdx") == 0);
	buf_free(&b);
}

static void an_invalid_page_hands_nothing_over(void)
{
	static const char *const bad[] = {
	    "",
	    "{\"id\": 1}",
	    "[{\"id\": 1},]",
	    "[{\"id\": 1}] x",
	    "[{\"id\": 01}]",
	    "[{'id': 1}]",
	    "[{\"id\": 1}, {\"path\": \"a\tb\"}]",
	    "[{\"id\": 1}, {\"path\": \"\\x\"}]",
	    "[{\"id\": 1}, {\"path\": \"\xc0\xaf\"}]",
	    "[{\"id\": 1}, {\"path\": \"ab",
	    "[{\"id\": 1}, {\"id\": 2, \"id\": 3}]",
	    "[{\"id\": 1}, {\"namespace\": {\"id\": 2}, \"namespace\": {}}]",
	    "[{\"id\": 1}, {\"\\u0069d\": 2, \"id\": 3}]",
	    "[{\"id\": 1}, {\"id\": -}]",
	    "[{\"id\": 1}, {\"id\": tru}]",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct seen s = {0};
		char err[200] = "";
		CHECK_INT(scan(bad[k], &s, err, sizeof(err)), CORE_EINVAL);
		CHECK_INT(s.n, 0);
		CHECK(err[0] != '\0');
	}
	struct seen s = {0};
	char err[200] = "";
	CHECK_INT(scan("[{\"id\": 1, \"id\": 2}]", &s, err, sizeof(err)), CORE_EINVAL);
	CHECK(strstr(err, "twice") != NULL);
	CHECK_INT(scan("[{\"id\": 1}, {\"path\": \"\xc3\x28\"}]", &s, err, sizeof(err)), CORE_EINVAL);
	CHECK(strstr(err, "UTF-8") != NULL && strstr(err, "byte 22") != NULL);
}

static void duplicates_not_read_are_allowed(void)
{
	struct seen s = {0};
	char err[200] = "";
	CHECK_INT(scan("[{\"id\": 1, \"foo\": 1, \"foo\": 2, \"namespace\": {\"kind\": 1, \"kind\": 2, \"id\": 3}},"
	               " {\"id\": 2}]",
	               &s, err, sizeof(err)),
	          CORE_OK);
	CHECK_INT(s.n, 2);
	CHECK(s.ns_id[0] == 3 && s.ids[1] == 2);
}

static void nesting_is_limited(void)
{
	char deep[300];
	struct seen s = {0};
	char err[200] = "";
	for (int depth = 60; depth <= 70; depth++) {
		memset(deep, '[', (size_t)depth);
		memset(deep + depth, ']', (size_t)depth);
		deep[2 * depth] = '\0';
		enum core_status st = scan(deep, &s, err, sizeof(err));
		CHECK_INT(st, depth <= JSON_SCAN_MAX_DEPTH ? CORE_OK : CORE_EINVAL);
	}
}

static void a_callback_stops_the_scan(void)
{
	struct seen s = {.stop_at = 2};
	char err[200] = "";
	CHECK_INT(scan("[{\"id\": 1}, {\"id\": 2}, {\"id\": 3}]", &s, err, sizeof(err)), CORE_ECONFLICT);
	CHECK_INT(s.n, 2);
	size_t n = 99;
	CHECK_INT(jscan_each("[]", 2, paths, NPATHS, collect, &s, &n, err, sizeof(err)), CORE_OK);
	CHECK(n == 0);
}

int main(void)
{
	RUN(reads_the_members_of_each_element);
	RUN(readers_keep_jsonx_rules);
	RUN(an_invalid_page_hands_nothing_over);
	RUN(duplicates_not_read_are_allowed);
	RUN(nesting_is_limited);
	RUN(a_callback_stops_the_scan);
	return testlib_done();
}
