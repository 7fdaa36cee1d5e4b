/*
 * tests/unit/test_gate_logic.c
 *    The gate's pure parts: verdict and description, the sticky note's Markdown (which never lets MR text start a line:
 * a quick action), config reading, and the webhook receiver's reading of merge request payloads.
 */
#include "buf.h"
#include "gate.h"
#include "jsonx.h"
#include "testlib.h"
#include "webhook.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static void add_titled(struct finding_list *l, enum severity sev, const char *rule, const char *title, const char *path,
                       long line, const char *excerpt)
{
	struct finding f = finding_make("secrets", rule, title, sev, path, line, excerpt);
	CHECK_INT(finding_list_append(l, &f), CORE_OK);
}

static void add(struct finding_list *l, enum severity sev, const char *rule, const char *path, long line,
                const char *excerpt)
{
	add_titled(l, sev, rule, "A | title", path, line, excerpt);
}

/* A failed run's report of findings l with notes. */
static struct gate_report failed_report(struct finding_list *l, const char *description, const char *const *notes,
                                        size_t n_notes)
{
	return (struct gate_report){.state = "failed",
	                            .description = description,
	                            .head_sha = "0123456789abcdef0123",
	                            .report_url = "http://x/#/gates/4",
	                            .findings = l,
	                            .notes = notes,
	                            .n_notes = n_notes};
}

static bool a_line_starts_with_slash(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p == '/' && (p == s || p[-1] == '\n' || p[-1] == '\r'))
			return true;
	return false;
}

static void test_decide(void)
{
	struct finding_list *l = finding_list_new();
	struct gate_decision d;
	REQUIRE(l);
	/* nothing found */
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, NULL, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.state, "success");
	CHECK_STR(d.verdict, "passed");
	CHECK_STR(d.description, "no new findings (fails on high)");
	/* findings set apart are not counted, but the description says they were there (the report lists them) */
	struct gate_set_apart apart = {.ignored = 2};
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, &apart, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.state, "success");
	CHECK_STR(d.description, "no new findings (fails on high); 2 ignored");
	apart = (struct gate_set_apart){.ignored = 1, .skipped_files = 3};
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, &apart, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.description,
	          "no new findings (fails on high); 1 ignored; 3 changed files not scanned (ignore_paths)");
	apart = (struct gate_set_apart){.skipped_files = 1};
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, &apart, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.description, "no new findings (fails on high); 1 changed file not scanned (ignore_paths)");
	/* a note naming a path with a bidi control shows it, never obeys it on GitLab's status line */
	const char *bidi[] = {"1 changed file not scanned (unreadable in the head tree, e.g. a\xe2\x80\xaetxt.exe)"};
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, bidi, 1, NULL, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.description, "no new findings (fails on high); 1 changed file not scanned (unreadable in the head "
	                         "tree, e.g. a<U+202E>txt.exe)");
	/* below the threshold passes, at it fails */
	add(l, SEV_MEDIUM, "r1", "a.c", 1, "");
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, NULL, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.state, "success");
	CHECK_STR(d.description, "1 medium new finding (fails on high)");
	add(l, SEV_HIGH, "r2", "a.c", 2, "");
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, NULL, false, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.state, "failed");
	CHECK_STR(d.verdict, "failed");
	CHECK_STR(d.description, "1 high, 1 medium new findings (fails on high)");
	/* never: report only, even with problems and a timeout */
	const char *notes[] = {"sast: no scanner configured"};
	CHECK_INT(gate_decide(l, FAIL_ON_NEVER, notes, 1, NULL, true, true, 300, false, &d), CORE_OK);
	CHECK_STR(d.state, "success");
	CHECK_STR(d.verdict, "timeout");
	CHECK_STR(d.description,
	          "1 high, 1 medium new findings (report only); timed out after 300 s; sast: no scanner configured");
	finding_list_free(l);
	/* problems follow the fail mode */
	l = finding_list_new();
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, notes, 1, NULL, true, false, 300, false, &d), CORE_OK);
	CHECK_STR(d.state, "failed");
	CHECK_STR(d.description, "no new findings (fails on high); sast: no scanner configured; fail-closed");
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, notes, 1, NULL, true, false, 300, true, &d), CORE_OK);
	CHECK_STR(d.state, "success");
	CHECK_STR(d.description, "no new findings (fails on high); sast: no scanner configured; fail-open");
	/* a timeout: failed when closed, success when open */
	CHECK_INT(gate_decide(l, FAIL_ON_LOW, NULL, 0, NULL, false, true, 60, false, &d), CORE_OK);
	CHECK_STR(d.state, "failed");
	CHECK_STR(d.verdict, "timeout");
	CHECK_STR(d.description, "no new findings (fails on low); timed out after 60 s; fail-closed");
	CHECK_INT(gate_decide(l, FAIL_ON_LOW, NULL, 0, NULL, false, true, 60, true, &d), CORE_OK);
	CHECK_STR(d.state, "success");
	/* fail-open never hides a real finding */
	add(l, SEV_CRITICAL, "r3", "b.c", 1, "");
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, NULL, 0, NULL, false, true, 60, true, &d), CORE_OK);
	CHECK_STR(d.state, "failed");
	/* the description never exceeds GitLab's 255 bytes */
	const char *many[] = {"a long note about something that went wrong in a scanner far away from here, twice",
	                      "a long note about something that went wrong in a scanner far away from here, twice",
	                      "a long note about something that went wrong in a scanner far away from here, twice",
	                      "a long note about something that went wrong in a scanner far away from here, twice"};
	CHECK_INT(gate_decide(l, FAIL_ON_HIGH, many, 4, NULL, true, false, 60, false, &d), CORE_OK);
	CHECK(strlen(d.description) <= 255);
	CHECK(strncmp(d.description, "1 critical new finding (fails on high)", 38) == 0);
	finding_list_free(l);
}

static void test_md_cell(void)
{
	char out[64];
	gate_md_cell("a|b`c\nd<e", out, sizeof(out), 100);
	CHECK_STR(out, "a\\|bc d<e"); /* in a code span "<" is literal; "&lt;" would show as such */
	/* a walk's file "a\u202eyp.txt" showed reversed in the note: invisible characters are shown, not obeyed */
	gate_md_cell("a\xe2\x80\xaeyp.txt", out, sizeof(out), 100);
	CHECK_STR(out, "a<U+202E>yp.txt");
	gate_md_cell("\xef\xbb\xbf"
	             "x\xe2\x81\xa6"
	             "y\xd8\x9c",
	             out, sizeof(out), 100);
	CHECK_STR(out, "<U+FEFF>x<U+2066>y<U+061C>");
	struct buf b = {0};
	gate_md_code(&b, "r\xe2\x80\x8f"
	                 "eason");
	CHECK_STR(buf_str(&b), "` r<U+200F>eason `");
	buf_free(&b);
	gate_md_cell("abcdef", out, sizeof(out), 3);
	CHECK_STR(out, "abc\xe2\x80\xa6");
	gate_md_cell(NULL, out, sizeof(out), 3);
	CHECK_STR(out, "");
}

static void test_note(void)
{
	struct finding_list *l = finding_list_new();
	add(l, SEV_LOW, "low-rule", "z.txt", 9, "");
	add(l, SEV_CRITICAL, "aws-key", "src/a|b.py", 3, "key = \"AKIA…(20 chars)\"");
	const char *notes[] = {"iac: no scanner configured"};
	struct gate_report rep = failed_report(l, "1 critical, 1 low new findings (fails on high)", notes, 1);
	char *md = gate_note_render(&rep);
	REQUIRE(md);
	CHECK(strncmp(md, GATE_NOTE_MARKER "\n", strlen(GATE_NOTE_MARKER) + 1) == 0);
	CHECK(strstr(md, "### :x: mrgate: failed") != NULL);
	CHECK(strstr(md, "Head commit `0123456789ab`") != NULL);
	CHECK(strstr(md, "[full report](http://x/#/gates/4)") != NULL);
	CHECK(
	    strstr(
	        md,
	        "| critical | secrets | `aws-key` | `src/a\\|b.py:3` | `A \\| title` `key = \"AKIA…(20 chars)\"` |") !=
	    NULL);
	/* most severe first */
	CHECK(strstr(md, "| critical |") < strstr(md, "| low |"));
	CHECK(strstr(md, "- ` iac: no scanner configured") != NULL);
	free(md);
	/* no findings; more rows than shown */
	finding_list_free(l);
	l = finding_list_new();
	rep.state = "success";
	rep.n_notes = 0;
	rep.findings = l;
	md = gate_note_render(&rep);
	REQUIRE(md);
	CHECK(strstr(md, ":white_check_mark: mrgate: passed") != NULL);
	CHECK(strstr(md, "No new findings") != NULL);
	CHECK(strstr(md, "| Severity |") == NULL);
	free(md);
	for (int i = 0; i < GATE_NOTE_MAX_ROWS + 5; i++)
		add(l, SEV_HIGH, "r", "f.c", i + 1, "");
	md = gate_note_render(&rep);
	REQUIRE(md);
	CHECK(strstr(md, "… and 5 more findings: see the full report.") != NULL);
	free(md);
	finding_list_free(l);
}

/* The sticky note never lets text a merge request controls start a line: GitLab would run it as a quick action
 * (/merge, /approve, /label ...) with the bot's role. */
static void test_note_mr_text_never_starts_a_line(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	add_titled(l, SEV_HIGH, "x\n/approve", "leak\n/label ~shipit", "evil\n/merge\r\n/approve\n.env", 2,
	           "TOKEN=\n/merge");
	const char *notes[] = {"/merge", "sast: the scanner failed (exit 1): \n/approve\n/merge", "\r/unassign"};
	struct gate_report rep = failed_report(l, "/merge 1 high new finding", notes, 3);
	char *body = gate_note_render(&rep);
	REQUIRE(body);
	CHECK(strncmp(body, GATE_NOTE_MARKER, strlen(GATE_NOTE_MARKER)) == 0);
	CHECK(!a_line_starts_with_slash(body));
	CHECK(strstr(body, "evil /merge") != NULL); /* the text is shown, on the line of its row */
	free(body);
	finding_list_free(l);
}

/* A bypassed run's note names who and why as code spans, and a rule or title chosen in the merge request is code
 * too: no mention, link or image of theirs is live on GitLab. */
static void test_note_user_text_is_code(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	add_titled(l, SEV_HIGH, "@all-rule", "@all see [x](http://evil.example)", "a.py", 2, "");
	struct gate_report rep = failed_report(l, "bypassed by gitlab:mia: @all", NULL, 0);
	rep.state = "success";
	rep.bypassed_by = "gitlab:mia";
	rep.bypass_reason = "@all ``[x](http://evil.example)``";
	char *body = gate_note_render(&rep);
	REQUIRE(body);
	CHECK(strstr(body, "### :white_check_mark: mrgate: bypassed\n") != NULL);
	CHECK(strstr(body, "\nBypassed by ` gitlab:mia `: ``` @all ``[x](http://evil.example)`` ```\n") != NULL);
	CHECK(strstr(body, "| `@all-rule` | `a.py:2` | `@all see [x](http://evil.example)` |") != NULL);
	CHECK(strstr(body, "**bypassed by") == NULL); /* the description (with the reason) is not shown as Markdown */
	free(body);
	const char *notes[] = {"sast: could not scan @all.py"};
	rep = failed_report(l, "1 high new finding; sast: could not scan @all.py", notes, 1);
	body = gate_note_render(&rep);
	CHECK(strstr(body, "\n**` 1 high new finding; sast: could not scan @all.py `**\n") != NULL);
	CHECK(strstr(body, "\n- ` sast: could not scan @all.py `\n") != NULL);
	free(body);
	finding_list_free(l);
}

static struct json_object *parse(const char *s)
{
	struct json_object *o = NULL;
	CHECK_INT(jsonx_parse(s, strlen(s), &o), CORE_OK);
	return o;
}

static void test_config(void)
{
	struct gate_config c;
	memset(&c, 0, sizeof(c));
	struct json_object *o = parse("{\"enabled\": true, \"fail_on\": \"medium\", \"scans\": [\"secrets\", \"iac\"],"
	                              " \"comment\": \"always\", \"ignore_paths\": [\"vendor/\", \"*.min.js\"]}");
	CHECK_INT(gate_config_from_json(o, false, &c), CORE_OK);
	CHECK(c.gated);
	CHECK_INT(c.fail_on, FAIL_ON_MEDIUM);
	CHECK(c.scans[GATE_SCAN_SECRETS] && c.scans[GATE_SCAN_IAC] && !c.scans[GATE_SCAN_SAST]);
	CHECK_INT(c.comment, GATE_COMMENT_ALWAYS);
	CHECK_INT(c.n_ignore, 2);
	CHECK_STR(c.ignore_paths[1], "*.min.js");
	CHECK_INT(gate_config_from_json(o, true, &c), CORE_OK);
	CHECK(!c.gated);
	CHECK_STR(c.why_not, "repo is unmanaged");
	json_object_put(o);
	o = parse("{\"enabled\": false, \"fail_on\": \"never\"}");
	CHECK_INT(gate_config_from_json(o, false, &c), CORE_OK);
	CHECK(!c.gated);
	CHECK_INT(c.fail_on, FAIL_ON_NEVER);
	CHECK(c.scans[GATE_SCAN_SECRETS]);
	json_object_put(o);
	o = parse("{\"enabled\": true, \"fail_on\": \"bogus\"}");
	CHECK_INT(gate_config_from_json(o, false, &c), CORE_EINVAL);
	json_object_put(o);
	gate_config_clear(&c);
}

static const char *MR = "{\"object_kind\": \"merge_request\", \"project\": {\"id\": 7},"
                        " \"object_attributes\": {\"iid\": 3, \"target_project_id\": 7, \"source_project_id\": 9,"
                        " \"action\": \"%s\", \"state\": \"%s\", \"source_branch\": \"feat/x\"%s,"
                        " \"last_commit\": {\"id\": \"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\"}}}";

static struct json_object *mr(const char *action, const char *state, const char *extra)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), MR, action, state, extra);
	return parse(buf);
}

/* o must parse into *m as an event of merge request iid of project, from branch, that changes the code the gate
 * looks at; a failure names the case. */
static void check_mr_event(const char *name, struct json_object *o, struct webhook_mr *m, int64_t project, int64_t iid,
                           const char *branch)
{
	int failures = testlib_failures;
	char why[200];
	CHECK_INT(webhook_parse_mr(o, m, why, sizeof(why)), CORE_OK);
	CHECK_INT(m->project_id, project);
	CHECK_INT(m->iid, iid);
	CHECK_STR(m->source_branch, branch);
	CHECK(webhook_mr_changes_code(m, why, sizeof(why)));
	if (testlib_failures != failures)
		fprintf(stderr, "  in the merge request event %s\n", name);
}

static void test_webhook_mr(void)
{
	struct webhook_mr m;
	char why[200];
	struct json_object *o = mr("open", "opened", "");
	check_mr_event("MR(open, opened)", o, &m, 7, 3, "feat/x");
	CHECK_INT(m.source_project_id, 9);
	CHECK_STR(m.head_sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
	json_object_put(o);
	/* which actions change the code the gate looks at: each case as the receiver reads it */
	static const struct {
		const char *action, *state, *extra;
		bool changes;
		const char *why; /* NULL: not checked */
	} cases[] = {
	    {"update", "opened", "", false, "update without new commits (no oldrev)"},
	    {"update", "opened", ", \"oldrev\": \"aaaaaaa\"", true, NULL},
	    {"reopen", "opened", "", true, NULL},
	    {"close", "closed", "", false, "merge request is closed"},
	    {"approved", "opened", "", false, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = mr(cases[i].action, cases[i].state, cases[i].extra);
		CHECK_INT(webhook_parse_mr(o, &m, why, sizeof(why)), CORE_OK);
		CHECK(webhook_mr_changes_code(&m, why, sizeof(why)) == cases[i].changes);
		if (cases[i].why)
			CHECK_STR(why, cases[i].why);
		json_object_put(o);
	}
	/* mistyped or missing fields are refused, never guessed */
	o = parse("{\"object_attributes\": {\"iid\": \"3\", \"target_project_id\": 7}}");
	CHECK_INT(webhook_parse_mr(o, &m, why, sizeof(why)), CORE_EINVAL);
	json_object_put(o);
	o = parse("{\"object_attributes\": {\"iid\": 3, \"target_project_id\": 7, \"source_branch\": \"b\","
	          " \"last_commit\": {\"id\": \"not a sha\"}}}");
	CHECK_INT(webhook_parse_mr(o, &m, why, sizeof(why)), CORE_EINVAL);
	CHECK(strstr(why, "last_commit.id") != NULL);
	json_object_put(o);
	CHECK_STR(webhook_event_label("Merge Request Hook"), "merge_request");
	CHECK_STR(webhook_event_label("Push Hook"), "push");
	CHECK_STR(webhook_event_label("Whatever\" Hook"), "other");
	CHECK_STR(webhook_event_label(NULL), "none");
}

static void test_doc_example_payload(void)
{
	/* the documented payload (GITLAB-API.md §9.3): open, target project 14, head da15608 */
	const char *src = getenv("MRGATE_SOURCE_DIR");
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/gitlab-sim/fixtures/webhook-merge-request.json", src ? src : ".");
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(path, sizeof(path), "%s/../shared/gitlab-examples/webhook-merge-request.json",
		         src ? src : ".");
		f = fopen(path, "rb");
	}
	REQUIRE(f);
	char *buf = xmalloc(1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	buf[n] = '\0';
	struct json_object *o = parse(buf);
	struct webhook_mr m;
	check_mr_event(path, o, &m, 14, 1, "ms-viewport");
	CHECK_STR(m.action, "open");
	json_object_put(o);
	free(buf);
}

int main(void)
{
	RUN(test_decide);
	RUN(test_md_cell);
	RUN(test_note);
	RUN(test_note_mr_text_never_starts_a_line);
	RUN(test_note_user_text_is_code);
	RUN(test_config);
	RUN(test_webhook_mr);
	RUN(test_doc_example_payload);
	return testlib_done();
}
