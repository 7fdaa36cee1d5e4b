/*
 * tests/unit/test_http_json.c
 *    The core_status -> HTTP map and the strict JSON helpers.
 */
#include "http_json.h"
#include "json_util.h"
#include "jsonx.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static void status_map(void)
{
	static const struct {
		enum core_status st;
		int http;
	} map[] = {
	    {CORE_OK, 200},        {CORE_EINVAL, 400},    {CORE_EUNAUTH, 401},   {CORE_EFORBIDDEN, 403},
	    {CORE_ENOTFOUND, 404}, {CORE_ECONFLICT, 409}, {CORE_ETOOLARGE, 413}, {CORE_ETHROTTLED, 429},
	    {CORE_EINTERNAL, 500}, {CORE_EUPSTREAM, 502}, {CORE_EUNAVAIL, 503},  {CORE_ETIMEOUT, 504},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		CHECK_INT(http_status_of(map[i].st), map[i].http);
		if (http_status_of(map[i].st) != map[i].http)
			fprintf(stderr, "  for %s\n", core_status_code(map[i].st));
	}
	/* every status has a code name and a 2xx-5xx mapping */
	for (int st = 0; st < CORE_STATUS_COUNT; st++) {
		int h = http_status_of((enum core_status)st);
		CHECK(h >= 200 && h < 600);
		CHECK(strcmp(core_status_code((enum core_status)st), "unknown") != 0);
	}
	CHECK_STR(core_status_code(CORE_ENOTFOUND), "not_found");
}

static enum core_status parse(const char *s, struct json_object **o, char *err)
{
	return json_parse_strict(s, strlen(s), o, err, 256);
}

/* The getters read members of their own type, and refuse every other (never converting). */
static void json_getters(void)
{
	struct json_object *o = NULL;
	char err[256];
	int64_t i;
	const char *s;
	bool b;
	REQUIRE(parse(" {\"a\": 1, \"b\": \"x\", \"c\": true}\n", &o, err) == CORE_OK);
	CHECK(jsonx_int64(o, "a", &i) && i == 1);
	CHECK(jsonx_str(o, "b", &s) && strcmp(s, "x") == 0);
	CHECK(jsonx_bool(o, "c", &b) && b);
	json_object_put(o);
	REQUIRE(parse("{\"n\": \"12\", \"s\": 12, \"b\": \"true\", \"z\": null}", &o, err) == CORE_OK);
	CHECK(!jsonx_int64(o, "n", &i));     /* a numeric string is not an integer */
	CHECK(!jsonx_str(o, "s", &s));       /* a number is not a string */
	CHECK(!jsonx_bool(o, "b", &b));      /* "true" is not a boolean */
	CHECK(jsonx_bool(o, "z", &b) && !b); /* GitLab's null-for-false reads as false */
	CHECK(!jsonx_str(o, "missing", &s));
	CHECK_STR(json_type_of(o, "z"), "null");
	CHECK_STR(json_type_of(o, "missing"), "missing");
	json_object_put(o);
}

/* Malformed input, and anything after the value, is refused: CORE_EINVAL, no object, and a reason. */
static void json_malformed(void)
{
	static const struct {
		const char *text;
		size_t len;      /* 0: strlen(text) */
		const char *why; /* a part of the reason; NULL: not checked */
	} bad[] = {
	    {"{\"a\": }", 0, "invalid JSON"},
	    {"{\"a\": 1", 0, "ends early"},
	    {"", 0, NULL},
	    {"{'a': 1}", 0, NULL},          /* single quotes are not JSON */
	    {"{\"a\": 1,}", 0, NULL},       /* trailing comma */
	    {"{\"a\": \"\xff\"}", 0, NULL}, /* invalid UTF-8 */
	    {"{\"a\":1}\0x", 9, NULL},      /* a NUL inside */
	    {"{\"a\": 1} {\"b\": 2}", 0, "after the JSON value"},
	    {"{\"a\": 1}garbage", 0, NULL},
	    {"{\"a\": 1, \"a\": 2}", 0, "the same key twice"},
	    {"{\"x\": {\"a\": 1}, \"a\": {\"b\": 1, \"b\": {\"c\": 2}}}", 0, "the same key twice"},
	    {"[{\"k\": 1, \"\\u006b\": 2}]", 0, "the same key twice"}, /* the same key, once escaped */
	    /* in words, not json-c's ("null expected" for a word that is not null, a walk read) */
	    {"{\"a\": nope}", 0,
	     "at byte 6 (\"n\"): a word JSON does not have (the words are true, false and null; "
	     "text needs double quotes)"},
	    {"{\"a\": tru}", 0, "a word JSON does not have"},
	    {"{a: 1}", 0, "at byte 1 (\"a\"): an object's keys are text in double quotes"},
	    {"{\"a\" 1}", 0, "a ':' must follow an object's key"},
	    {"{\"a\": 1 \"b\": 2}", 0, "a ',' or '}' must follow an object's value"},
	    {"[1 2]", 0, "a ',' or ']' must follow an array's value"},
	    {"{\"a\": #1}", 0, "a character JSON does not allow here"},
	};
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int failures = testlib_failures;
		struct json_object *o = NULL;
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
		CHECK_INT(json_parse_strict(bad[i].text, len, &o, err, sizeof(err)), CORE_EINVAL);
		CHECK(o == NULL);
		if (bad[i].why)
			CHECK(strstr(err, bad[i].why) != NULL);
		if (testlib_failures != failures)
			fprintf(stderr, "  for the input \"%s\" (case %zu)\n", bad[i].text, i);
	}
	struct json_object *o = NULL;
	CHECK(parse("[1,2] ", &o, err) == CORE_OK); /* trailing white space is fine */
	json_object_put(o);
	/* colons inside strings are no members; equal keys in different objects are no duplicates */
	CHECK(parse("{\"a\": \"x:y\\\":\", \"b\": [{\"a\": 1}, {\"a\": {\"a\": \":\"}}]}", &o, err) == CORE_OK);
	json_object_put(o);
}

static void json_deep(void)
{
	/* nesting deeper than the cap is refused rather than recursing without bound */
	size_t n = 10000;
	char *s = malloc(2 * n + 1);
	REQUIRE(s);
	memset(s, '[', n);
	memset(s + n, ']', n);
	s[2 * n] = '\0';
	struct json_object *o = NULL;
	char err[256];
	CHECK(parse(s, &o, err) == CORE_EINVAL);
	free(s);
}

int main(void)
{
	RUN(status_map);
	RUN(json_getters);
	RUN(json_malformed);
	RUN(json_deep);
	return testlib_done();
}
