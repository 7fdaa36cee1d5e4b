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
	CHECK_INT(http_status_of(CORE_OK), 200);
	CHECK_INT(http_status_of(CORE_EINVAL), 400);
	CHECK_INT(http_status_of(CORE_EUNAUTH), 401);
	CHECK_INT(http_status_of(CORE_EFORBIDDEN), 403);
	CHECK_INT(http_status_of(CORE_ENOTFOUND), 404);
	CHECK_INT(http_status_of(CORE_ECONFLICT), 409);
	CHECK_INT(http_status_of(CORE_ETOOLARGE), 413);
	CHECK_INT(http_status_of(CORE_ETHROTTLED), 429);
	CHECK_INT(http_status_of(CORE_EINTERNAL), 500);
	CHECK_INT(http_status_of(CORE_EUPSTREAM), 502);
	CHECK_INT(http_status_of(CORE_EUNAVAIL), 503);
	CHECK_INT(http_status_of(CORE_ETIMEOUT), 504);
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

static void json_ok(void)
{
	struct json_object *o = NULL;
	char err[256];
	REQUIRE(parse(" {\"a\": 1, \"b\": \"x\", \"c\": true}\n", &o, err) == CORE_OK);
	int64_t i;
	const char *s;
	bool b;
	CHECK(jsonx_int64(o, "a", &i) && i == 1);
	CHECK(jsonx_str(o, "b", &s) && strcmp(s, "x") == 0);
	CHECK(jsonx_bool(o, "c", &b) && b);
	json_object_put(o);
}

static void json_malformed(void)
{
	struct json_object *o = NULL;
	char err[256];
	CHECK(parse("{\"a\": }", &o, err) == CORE_EINVAL && o == NULL);
	CHECK(strstr(err, "invalid JSON") != NULL);
	CHECK(parse("{\"a\": 1", &o, err) == CORE_EINVAL);
	CHECK(strstr(err, "ends early") != NULL);
	CHECK(parse("", &o, err) == CORE_EINVAL);
	CHECK(parse("{'a': 1}", &o, err) == CORE_EINVAL);          /* single quotes are not JSON */
	CHECK(parse("{\"a\": 1,}", &o, err) == CORE_EINVAL);       /* trailing comma */
	CHECK(parse("{\"a\": \"\xff\"}", &o, err) == CORE_EINVAL); /* invalid UTF-8 */
	CHECK(json_parse_strict("{\"a\":1}\0x", 9, &o, err, 256) == CORE_EINVAL);
}

static void json_trailing(void)
{
	struct json_object *o = NULL;
	char err[256];
	CHECK(parse("{\"a\": 1} {\"b\": 2}", &o, err) == CORE_EINVAL && o == NULL);
	CHECK(strstr(err, "after the JSON value") != NULL);
	CHECK(parse("{\"a\": 1}garbage", &o, err) == CORE_EINVAL);
	CHECK(parse("[1,2] ", &o, err) == CORE_OK);
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

static void json_wrong_types(void)
{
	struct json_object *o = NULL;
	char err[256];
	REQUIRE(parse("{\"n\": \"12\", \"s\": 12, \"b\": \"true\", \"z\": null}", &o, err) == CORE_OK);
	int64_t i;
	const char *s;
	bool b;
	CHECK(!jsonx_int64(o, "n", &i));     /* a numeric string is not an integer */
	CHECK(!jsonx_str(o, "s", &s));       /* a number is not a string */
	CHECK(!jsonx_bool(o, "b", &b));      /* "true" is not a boolean */
	CHECK(jsonx_bool(o, "z", &b) && !b); /* GitLab's null-for-false reads as false */
	CHECK(!jsonx_str(o, "missing", &s));
	CHECK_STR(json_type_of(o, "z"), "null");
	CHECK_STR(json_type_of(o, "missing"), "missing");
	json_object_put(o);
}

int main(void)
{
	RUN(status_map);
	RUN(json_ok);
	RUN(json_malformed);
	RUN(json_trailing);
	RUN(json_deep);
	RUN(json_wrong_types);
	return testlib_done();
}
