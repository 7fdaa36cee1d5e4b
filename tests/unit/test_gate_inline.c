/*
 * tests/unit/test_gate_inline.c
 *    The comment mode inline's pure parts: which findings get a discussion, keep it, reopen it or are resolved
 *    (gate_inline_plan) over the states an MR goes through; the discussion body (no quick action, no secret) and the
 *    sticky note that leaves out the findings shown on their lines.
 */
#include "gate_inline.h"
#include "gate_report.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A finding whose fingerprint is 64 times the hex digit d (or "" for d 0). */
static void add(struct finding_list *l, enum severity sev, const char *path, long line, char d)
{
	struct finding f = {.scan_type = "secrets",
	                    .rule_id = "github-pat",
	                    .title = "A token",
	                    .severity = sev,
	                    .path = path,
	                    .line = line,
	                    .excerpt = "token = '…'"};
	if (d)
		memset(f.fingerprint, d, FINDING_FINGERPRINT_LEN);
	CHECK_INT(finding_list_append(l, &f), CORE_OK);
}

static struct gate_inline_record rec(char d, bool resolved, bool by_gate)
{
	struct gate_inline_record r = {.resolved = resolved, .resolved_by_gate = by_gate};
	memset(r.fingerprint, d, FINDING_FINGERPRINT_LEN);
	snprintf(r.discussion_id, sizeof(r.discussion_id), "%c%c", d, d);
	return r;
}

static void test_first_run_posts_the_most_severe_up_to_max(void)
{
	struct finding_list *l = finding_list_new();
	struct gate_inline_plan p;
	REQUIRE(l);
	add(l, SEV_LOW, "a.py", 1, 'a');
	add(l, SEV_CRITICAL, "b.py", 2, 'b');
	add(l, SEV_HIGH, "c.py", 3, 'c');
	add(l, SEV_HIGH, "", 4, 'd');         /* no path: not placeable */
	add(l, SEV_CRITICAL, "e.py", 0, 'e'); /* no line: not placeable */
	add(l, SEV_HIGH, "f.py", 9, 'c');     /* the same fingerprint again: one discussion */
	gate_inline_plan(l, NULL, 0, 2, &p);
	CHECK_INT(p.action[1], GATE_INLINE_POST); /* critical */
	CHECK_INT(p.action[2], GATE_INLINE_POST); /* high, c.py before f.py */
	CHECK_INT(p.action[0], GATE_INLINE_NOTE); /* past max */
	CHECK_INT(p.action[3], GATE_INLINE_NOTE);
	CHECK_INT(p.action[4], GATE_INLINE_NOTE);
	CHECK_INT(p.action[5], GATE_INLINE_NOTE);
	CHECK_INT(p.n_resolve, 0);
	gate_inline_plan_clear(&p);
	gate_inline_plan(l, NULL, 0, 20, &p);
	CHECK_INT(p.action[0], GATE_INLINE_POST);
	CHECK_INT(p.action[5], GATE_INLINE_NOTE); /* duplicate fingerprint */
	gate_inline_plan_clear(&p);
	finding_list_free(l);
}

static void test_later_runs_keep_reopen_and_resolve(void)
{
	struct finding_list *l = finding_list_new();
	struct gate_inline_plan p;
	REQUIRE(l);
	add(l, SEV_HIGH, "a.py", 1, 'a'); /* posted before, still open: kept */
	add(l, SEV_HIGH, "b.py", 2, 'b'); /* resolved by mrgate, back again: reopened */
	add(l, SEV_HIGH, "c.py", 3, 'c'); /* resolved by a person, still there: kept as it is */
	add(l, SEV_HIGH, "d.py", 4, 'd'); /* new: posted */
	struct gate_inline_record recs[] = {rec('a', false, false), rec('b', true, true), rec('c', true, false),
	                                    rec('e', false, false), /* gone: resolved */
	                                    rec('f', true, true)};  /* gone, already resolved: nothing */
	gate_inline_plan(l, recs, 5, 20, &p);
	CHECK_INT(p.action[0], GATE_INLINE_KEEP);
	CHECK_INT(p.action[1], GATE_INLINE_REOPEN);
	CHECK_INT(p.action[2], GATE_INLINE_KEEP);
	CHECK_INT(p.action[3], GATE_INLINE_POST);
	REQUIRE(p.n_resolve == 1);
	CHECK_INT(p.resolve[0], 3);
	gate_inline_plan_clear(&p);
	/* existing discussions fill the room first: with max 3, the new one waits in the note */
	gate_inline_plan(l, recs, 5, 3, &p);
	CHECK_INT(p.action[3], GATE_INLINE_NOTE);
	gate_inline_plan_clear(&p);
	/* max 0 (the repo left the inline mode): nothing posted or reopened, the gone one still resolved */
	gate_inline_plan(l, recs, 5, 0, &p);
	CHECK_INT(p.action[1], GATE_INLINE_KEEP);
	CHECK_INT(p.action[3], GATE_INLINE_NOTE);
	CHECK_INT(p.n_resolve, 1);
	gate_inline_plan_clear(&p);
	/* nothing found any more: every open discussion is resolved */
	struct finding_list *none = finding_list_new();
	gate_inline_plan(none, recs, 5, 20, &p);
	CHECK_INT(p.n_resolve, 2); /* a and e; b, c and f are resolved already */
	gate_inline_plan_clear(&p);
	finding_list_free(none);
	finding_list_free(l);
}

static void test_body_and_note(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	struct finding f = {.scan_type = "secrets",
	                    .rule_id = "r",
	                    .title = "/approve\n/merge",
	                    .severity = SEV_HIGH,
	                    .path = "/merge.py",
	                    .line = 7,
	                    .excerpt = ""};
	memset(f.fingerprint, 'a', FINDING_FINGERPRINT_LEN);
	CHECK_INT(finding_list_append(l, &f), CORE_OK);
	char *body = gate_inline_body(&l->items[0], "http://x/#/gates/1");
	CHECK(strncmp(body, GATE_INLINE_MARKER, strlen(GATE_INLINE_MARKER)) == 0);
	CHECK(strstr(body, l->items[0].fingerprint) != NULL);
	CHECK(strstr(body, "[full report](http://x/#/gates/1)") != NULL);
	for (const char *s = body; *s; s++) /* no line starts with '/': no quick action */
		CHECK(!(*s == '/' && (s == body || s[-1] == '\n')));
	free(body);
	/* the note leaves out the findings on their lines */
	add(l, SEV_LOW, "keep.py", 3, 'b');
	bool shown[2] = {true, false};
	struct gate_report r = {.state = "failed",
	                        .description = "2 new findings",
	                        .head_sha = "0123456789abcdef",
	                        .findings = l,
	                        .inline_shown = shown};
	char *note = gate_note_render(&r);
	CHECK(strstr(note, "1 finding commented on its line") != NULL);
	CHECK(strstr(note, "keep.py:3") != NULL);
	CHECK(strstr(note, "merge.py:7") == NULL);
	free(note);
	shown[1] = true;
	note = gate_note_render(&r);
	CHECK(strstr(note, "2 findings commented on their lines") != NULL);
	CHECK(strstr(note, "| Severity |") == NULL);
	free(note);
	CHECK(gate_inline_placeable(&l->items[0]));
	l->items[0].line = 0;
	CHECK(!gate_inline_placeable(&l->items[0]));
	finding_list_free(l);
}

int main(void)
{
	RUN(test_first_run_posts_the_most_severe_up_to_max);
	RUN(test_later_runs_keep_reopen_and_resolve);
	RUN(test_body_and_note);
	return testlib_done();
}
