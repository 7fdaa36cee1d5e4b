/*
 * tests/unit/test_scan_report.c
 *    What `mrgate scan` writes (core/scan_report.h): the SARIF log reads back through mrgate's own importer
 *    (core/scan_sarif.h) to the same rules, paths, lines and severities; text and JSON lines hold no secret.
 */
#include "scan_report.h"
#include "scan_sarif.h"
#include "scan_secrets.h"
#include "testlib.h"

#include <json-c/json.h>
#include <string.h>

/* Built at run time so that no scanner reports this file. */
static void fake_token(char *out, const char *prefix, size_t n)
{
	size_t pl = strlen(prefix);
	memcpy(out, prefix, pl);
	for (size_t i = 0; i < n; i++)
		out[pl + i] = "Zq8Rk2Lm5Np7Tv3Wx9Yb4Hc6Jd"[(i * 7 + 3) % 26];
	out[pl + n] = '\0';
}

static void test_sarif_round_trip(void)
{
	char gh[64], line1[128], line2[128];
	fake_token(gh, "ghp_", 36);
	snprintf(line1, sizeof(line1), "token = \"%s\"", gh);
	snprintf(line2, sizeof(line2), "db_password = \"Xq7pL9mN2vB4kT\"");
	const char *paths[] = {"src/app.py", "dir with space/%x.env"};
	const char *texts[] = {line1, line2};
	struct finding_list *fl = finding_list_new();
	struct diff_added_set *set = diff_added_set_new();
	for (int i = 0; i < 2; i++) {
		char diff[256];
		snprintf(diff, sizeof(diff), "@@ -0,0 +1,2 @@\n+x = 1\n+%s\n", texts[i]);
		REQUIRE(diff_added_set_add(set, paths[i], diff, strlen(diff), false) == CORE_OK);
	}
	REQUIRE(scan_secrets_set(set, fl) == CORE_OK);
	REQUIRE(fl->count == 2);

	struct json_object *log = scan_report_sarif(fl);
	const char *doc = json_object_to_json_string_ext(log, JSON_C_TO_STRING_PLAIN);
	CHECK(strstr(doc, gh) == NULL);
	CHECK(strstr(doc, "Xq7pL9mN2vB4kT") == NULL);
	/* Required members of SARIF 2.1.0: version, runs[].tool.driver.name, results[].message.text. */
	struct json_object *runs, *run, *tool, *driver, *name, *results;
	REQUIRE(json_object_object_get_ex(log, "runs", &runs) && json_object_array_length(runs) == 1);
	run = json_object_array_get_idx(runs, 0);
	REQUIRE(json_object_object_get_ex(run, "tool", &tool) && json_object_object_get_ex(tool, "driver", &driver));
	REQUIRE(json_object_object_get_ex(driver, "name", &name));
	CHECK_STR(json_object_get_string(name), "mrgate");
	REQUIRE(json_object_object_get_ex(run, "results", &results) && json_object_array_length(results) == 2);

	struct finding_list *back = finding_list_new();
	struct scan_sarif_options opt = {.scan_type = "secrets", .added = set};
	struct scan_sarif_stats stats;
	CHECK_INT(scan_sarif_parse(&opt, doc, strlen(doc), back, &stats), CORE_OK);
	CHECK_INT((long)stats.kept, 2);
	CHECK_INT((long)stats.invalid, 0);
	for (size_t i = 0; i < fl->count && back->count == fl->count; i++) {
		CHECK_STR(back->items[i].rule_id, fl->items[i].rule_id);
		CHECK_STR(back->items[i].path, fl->items[i].path);
		CHECK_INT(back->items[i].line, fl->items[i].line);
		CHECK_INT(back->items[i].severity, fl->items[i].severity);
		CHECK_STR(back->items[i].title, fl->items[i].title);
	}
	json_object_put(log);

	/* Text and JSON lines: the redacted excerpt, never the value. */
	struct buf b = {0};
	for (size_t i = 0; i < fl->count; i++) {
		scan_report_text(&b, &fl->items[i]);
		scan_report_json_line(&b, &fl->items[i]);
	}
	CHECK(strstr(buf_str(&b), "src/app.py:2: high github-pat: ") != NULL);
	CHECK(strstr(buf_str(&b), gh) == NULL);
	CHECK(strstr(buf_str(&b), "Xq7pL9mN2vB4kT") == NULL);
	buf_free(&b);
	finding_list_free(back);
	finding_list_free(fl);
	diff_added_set_free(set);
}

/* A path or excerpt that would turn the terminal's line around (U+202E) is written as git writes it, in octal. */
static void test_text_invisible(void)
{
	struct finding f = {.scan_type = "secrets",
	                    .rule_id = "aws-access-key-id",
	                    .title = "AWS access key ID",
	                    .severity = SEV_HIGH,
	                    .path = "a\xe2\x80\xaeyp.txt",
	                    .line = 1,
	                    .excerpt = "K = 1 \xe2\x80\xae x"};
	struct buf b = {0};
	scan_report_text(&b, &f);
	CHECK(strstr(buf_str(&b), "\"a\\342\\200\\256yp.txt\":1: high aws-access-key-id") == buf_str(&b));
	CHECK(strstr(buf_str(&b), "K = 1 \\342\\200\\256 x") != NULL);
	CHECK(strstr(buf_str(&b), "\xe2\x80\xae") == NULL);
	buf_free(&b);
}

static void test_rules_listing(void)
{
	struct buf b = {0};
	scan_report_rules(&b);
	size_t lines = 0;
	for (const char *p = buf_str(&b); (p = strchr(p, '\n')); p++)
		lines++;
	CHECK_INT((long)lines, (long)scan_secrets_rule_count());
	struct json_object *first = json_tokener_parse(buf_str(&b));
	struct json_object *rx;
	REQUIRE(first && json_object_object_get_ex(first, "regex", &rx));
	bool icase = true;
	CHECK_STR(json_object_get_string(rx), scan_secrets_rule_regex(0, &icase));
	CHECK(scan_secrets_rule_regex(scan_secrets_rule_count(), NULL) == NULL);
	json_object_put(first);
	buf_free(&b);
}

int main(void)
{
	RUN(test_sarif_round_trip);
	RUN(test_rules_listing);
	RUN(test_text_invisible);
	return testlib_done();
}
