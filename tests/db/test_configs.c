/*
 * tests/db/test_configs.c
 *    The gating config model against the real test database: validation, field-wise inheritance
 *    default -> group -> subgroup -> repo, exceptions, marking for apply, export/import.
 */
#include "crypto.h"
#include "gateconfig.h"
#include "jsonx.h"
#include "log.h"
#include "migrate.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static struct store *s;

static struct json_object *parse(const char *text)
{
	struct json_object *o = NULL;
	if (jsonx_parse(text, strlen(text), &o) != CORE_OK)
		return NULL;
	return o;
}

static enum core_status validate(const char *text, struct json_object **out, char *err, size_t errlen)
{
	struct json_object *in = parse(text);
	enum core_status st = gateconfig_validate(in, out, err, errlen);
	json_object_put(in);
	return st;
}

static void sql(const char *q)
{
	testlib_sql(s, q);
}

static void validation(void)
{
	char err[400];
	struct json_object *o = NULL;
	CHECK(validate("{\"fail_on\": \"hihg\"}", &o, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "\"fail_on\"") && strstr(err, "critical, high, medium, low, never") && strstr(err, "hihg"));
	CHECK(validate("{\"scans\": [\"secrets\", \"fuzz\"]}", &o, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "\"scans\"") && strstr(err, "fuzz") && strstr(err, "dependencies"));
	CHECK(validate("{\"comment\": true}", &o, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "off, on_findings, always") != NULL);
	CHECK(validate("{\"block_merge\": \"yes\"}", &o, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "true or false") != NULL);
	CHECK(validate("{\"ignore_paths\": [\"!vendor\"]}", &o, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "ignore_paths") != NULL);
	CHECK(validate("{\"colour\": 1}", &o, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "unknown field \"colour\"") != NULL);
	CHECK(validate("[1]", &o, err, sizeof(err)) == CORE_EINVAL);
	/* normalised: scans deduplicated in canonical order, null dropped */
	REQUIRE(
	    validate(
	        "{\"scans\": [\"iac\", \"secrets\", \"iac\"], \"fail_on\": null, \"ignore_paths\": [\"**/*.min.js\"]}",
	        &o, err, sizeof(err)) == CORE_OK);
	CHECK_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	          "{\"scans\":[\"secrets\",\"iac\"],\"ignore_paths\":[\"**/*.min.js\"]}");
	json_object_put(o);
	/* a pattern given twice is kept once, where it first came (a walk pasted its list twice) */
	REQUIRE(validate("{\"ignore_paths\": [\"vendor/**\", \"docs/**\", \"vendor/**\", \"docs/**\"]}", &o, err,
	                 sizeof(err)) == CORE_OK);
	CHECK_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	          "{\"ignore_paths\":[\"vendor/**\",\"docs/**\"]}");
	json_object_put(o);
}

static void builtin_matches_migration(void)
{
	struct json_object *o = NULL, *b = gateconfig_builtin();
	REQUIRE(gateconfig_get_default(s, &o) == CORE_OK);
	CHECK(json_object_equal(jsonx_get(o, "config"), b));
	json_object_put(o);
	json_object_put(b);
}

/* effective config, sources and exception of repo id */
static struct json_object *repo(int64_t id)
{
	struct json_object *o = NULL;
	if (gateconfig_get_repo(s, id, &o) != CORE_OK)
		return NULL;
	return o;
}

static const char *eff_str(struct json_object *o, const char *path)
{
	const char *v = NULL;
	jsonx_path_str(o, path, &v);
	return v;
}

static void inheritance(void)
{
	char err[400];
	struct json_object *cfg = NULL, *out = NULL, *r = NULL;
	struct gateconfig_marked m;
	/* a group config on "acme" and one on its subgroup "acme/sub" */
	REQUIRE(validate("{\"fail_on\": \"medium\", \"scans\": [\"sast\"]}", &cfg, err, sizeof(err)) == CORE_OK);
	REQUIRE(gateconfig_put_group(s, "acme", cfg, "test", NULL, &m, &out) == CORE_OK);
	CHECK_INT(m.n, 0); /* nothing gated: no GitLab change */
	gateconfig_marked_clear(&m);
	json_object_put(cfg);
	json_object_put(out);
	REQUIRE(validate("{\"fail_on\": \"critical\"}", &cfg, err, sizeof(err)) == CORE_OK);
	REQUIRE(gateconfig_put_group(s, "acme/sub", cfg, "test", NULL, &m, &out) == CORE_OK);
	gateconfig_marked_clear(&m);
	json_object_put(cfg);
	json_object_put(out);

	REQUIRE((r = repo(1)) != NULL); /* acme/a */
	CHECK_STR(eff_str(r, "effective.fail_on"), "medium");
	CHECK_STR(eff_str(r, "sources.fail_on"), "group:acme");
	CHECK_STR(eff_str(r, "sources.comment"), "default");
	json_object_put(r);
	REQUIRE((r = repo(2)) != NULL); /* acme/sub/b */
	CHECK_STR(eff_str(r, "effective.fail_on"), "critical");
	CHECK_STR(eff_str(r, "sources.fail_on"), "group:acme/sub");
	CHECK_STR(eff_str(r, "sources.scans"), "group:acme");
	bool exc = true;
	CHECK(jsonx_bool(r, "exception", &exc) && !exc);
	json_object_put(r);
	REQUIRE((r = repo(3)) != NULL); /* other/c: a group named like a prefix does not match */
	CHECK_STR(eff_str(r, "effective.fail_on"), "high");
	json_object_put(r);
	REQUIRE((r = repo(4)) != NULL); /* acme-x/d: "acme" is not its ancestor */
	CHECK_STR(eff_str(r, "sources.fail_on"), "default");
	json_object_put(r);

	/* a repo config equal to what it inherits is not an exception; a different one is */
	REQUIRE(validate("{\"fail_on\": \"critical\"}", &cfg, err, sizeof(err)) == CORE_OK);
	REQUIRE(gateconfig_put_repo(s, 2, cfg, false, "test", &m, &out) == CORE_OK);
	CHECK(jsonx_bool(out, "exception", &exc) && !exc);
	CHECK_STR(eff_str(out, "sources.fail_on"), "repo");
	gateconfig_marked_clear(&m);
	json_object_put(cfg);
	json_object_put(out);
	REQUIRE(validate("{\"fail_on\": \"low\"}", &cfg, err, sizeof(err)) == CORE_OK);
	REQUIRE(gateconfig_put_repo(s, 2, cfg, false, "test", &m, &out) == CORE_OK);
	CHECK(jsonx_bool(out, "exception", &exc) && exc);
	CHECK_STR(eff_str(out, "effective.fail_on"), "low");
	gateconfig_marked_clear(&m);
	json_object_put(cfg);
	json_object_put(out);
	CHECK(gateconfig_delete_repo(s, 2, "test", NULL) == CORE_OK);
	CHECK(gateconfig_delete_repo(s, 2, "test", NULL) == CORE_ENOTFOUND);
	REQUIRE((r = repo(2)) != NULL);
	CHECK_STR(eff_str(r, "effective.fail_on"), "critical");
	json_object_put(r);
}

/* PUT text as acme's group config: how many repos it marked for an apply (*run: the apply run), -1 when refused. */
static long long put_acme(const char *text, int64_t *run)
{
	char err[400];
	struct json_object *cfg = NULL, *out = NULL;
	struct gateconfig_marked m;
	long long n = -1;
	if (validate(text, &cfg, err, sizeof(err)) == CORE_OK &&
	    gateconfig_put_group(s, "acme", cfg, "test", NULL, &m, &out) == CORE_OK) {
		n = (long long)m.n;
		*run = m.run;
		gateconfig_marked_clear(&m);
	}
	json_object_put(cfg);
	json_object_put(out);
	return n;
}

static void marking(void)
{
	struct json_object *cfg = NULL, *out = NULL;
	struct gateconfig_marked m;
	int64_t run = 0;
	/* gating acme marks its three live repos (not the archived one) */
	CHECK_INT(put_acme("{\"enabled\": true}", &run), 2);
	CHECK(run > 0);
	/* pretend the apply happened */
	sql("UPDATE repo_gitlab_state SET applying = false, applied_state = 'hook', hook_id = 9, last_result = "
	    "'changed'");
	/* changing the severity only marks nothing */
	CHECK_INT(put_acme("{\"enabled\": true, \"fail_on\": \"low\"}", &run), 0);
	/* block_merge marks them again; unmanaged marks the one repo */
	CHECK_INT(put_acme("{\"enabled\": true, \"block_merge\": true}", &run), 2);
	sql("UPDATE repo_gitlab_state SET applying = false, applied_state = 'hook+merge'");
	cfg = json_object_new_object();
	REQUIRE(gateconfig_put_repo(s, 1, cfg, true, "test", &m, &out) == CORE_OK);
	CHECK_INT(m.n, 1);
	if (m.n == 1)
		CHECK_INT(m.ids[0], 1);
	gateconfig_marked_clear(&m);
	json_object_put(cfg);
	json_object_put(out);
	/* the audit log has before and after */
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	REQUIRE(store_get(s, &c) == CORE_OK);
	CHECK(
	    store_exec(c,
	               "SELECT count(*) AS n FROM audit_log WHERE action = 'config.group.update' AND before IS NOT NULL"
	               " AND after IS NOT NULL",
	               0, NULL, &r) == CORE_OK);
	CHECK(store_i64(r, 0, "n", 0) >= 3);
	PQclear(r);
	store_put(s, c);
}

static void export_import(void)
{
	char err[400];
	struct json_object *doc = NULL, *again = NULL;
	REQUIRE(gateconfig_export(s, &doc) == CORE_OK);
	/* an invalid document changes nothing */
	struct json_object *bad = json_tokener_parse(json_object_to_json_string(doc)); /* a copy to spoil */
	json_object_object_add(jsonx_get(jsonx_get(bad, "groups"), "acme"), "fail_on", json_object_new_string("loud"));
	json_object_object_add(bad, "default", parse("{\"enabled\": false, \"fail_on\": \"never\"}"));
	CHECK(gateconfig_import(s, bad, "test", NULL, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "groups[\"acme\"]") && strstr(err, "fail_on"));
	json_object_put(bad);
	bad = parse("{\"version\": 1, \"repos\": [{\"id\": 3, \"config\": {}}]}"); /* no default */
	CHECK(gateconfig_import(s, bad, "test", NULL, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "\"default\" is missing") != NULL);
	json_object_put(bad);
	bad = parse("{\"version\": 1, \"default\": {\"enabled\": true}, \"groups\": {},"
	            " \"repos\": [{\"id\": 999999, \"config\": {}}]}");
	CHECK(gateconfig_import(s, bad, "test", NULL, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "999999") != NULL);
	json_object_put(bad);
	REQUIRE(gateconfig_export(s, &again) == CORE_OK);
	CHECK(json_object_equal(doc, again));
	json_object_put(again);
	/* a valid import replaces everything; exporting gives it back */
	struct json_object *next =
	    parse("{\"version\": 1, \"default\": {\"enabled\": false, \"fail_on\": \"never\"},"
	          " \"groups\": {\"other\": {\"enabled\": true}},"
	          " \"repos\": [{\"id\": 3, \"config\": {\"scans\": [\"sast\"]}, \"unmanaged\": false}]}");
	REQUIRE(gateconfig_import(s, next, "test", NULL, err, sizeof(err)) == CORE_OK);
	REQUIRE(gateconfig_export(s, &again) == CORE_OK);
	CHECK_STR(eff_str(again, "default.fail_on"), "never");
	CHECK_STR(eff_str(again, "default.comment"), "on_findings");
	CHECK(jsonx_get(jsonx_get(again, "groups"), "acme") == NULL);
	CHECK(jsonx_get(jsonx_get(again, "groups"), "other") != NULL);
	struct json_object *repos = jsonx_get(again, "repos");
	CHECK(repos && json_object_array_length(repos) == 1);
	json_object_put(next);
	json_object_put(again);
	json_object_put(doc);
}

int main(void)
{
	s = testlib_db_start("configs", 4);
	sql("INSERT INTO repos (id, path, name, path_with_namespace, namespace_full_path, archived) VALUES"
	    " (1, 'a', 'a', 'acme/a', 'acme', false), (2, 'b', 'b', 'acme/sub/b', 'acme/sub', false),"
	    " (3, 'c', 'c', 'other/c', 'other', false), (4, 'd', 'd', 'acme-x/d', 'acme-x', false),"
	    " (5, 'e', 'e', 'acme/e', 'acme', true)");
	RUN(validation);
	RUN(builtin_matches_migration);
	RUN(inheritance);
	RUN(marking);
	RUN(export_import);
	store_close(s);
	return testlib_done();
}
