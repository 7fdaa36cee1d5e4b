/*
 * tests/unit/test_gate_note.c
 *    The sticky note never lets text a merge request controls start a line: GitLab would run it as a quick action
 *    (/merge, /approve, /label ...) with the bot's role (core/gate.h gate_note_render).
 */
#include "gate.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static bool a_line_starts_with_slash(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p == '/' && (p == s || p[-1] == '\n' || p[-1] == '\r'))
			return true;
	return false;
}

static void test_mr_text_never_starts_a_line(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	struct finding f = {.scan_type = "secrets",
	                    .rule_id = "x\n/approve",
	                    .title = "leak\n/label ~shipit",
	                    .severity = SEV_HIGH,
	                    .path = "evil\n/merge\r\n/approve\n.env",
	                    .line = 2,
	                    .excerpt = "TOKEN=\n/merge"};
	REQUIRE(finding_list_append(l, &f) == CORE_OK);
	const char *notes[] = {"/merge", "sast: the scanner failed (exit 1): \n/approve\n/merge", "\r/unassign"};
	struct gate_report rep = {.state = "failed",
	                          .description = "/merge 1 high new finding",
	                          .head_sha = "0123456789abcdef",
	                          .report_url = "https://mrgate.example.com/#/gates/1",
	                          .findings = l,
	                          .notes = notes,
	                          .n_notes = 3};
	char *body = gate_note_render(&rep);
	REQUIRE(body);
	CHECK(strncmp(body, GATE_NOTE_MARKER, strlen(GATE_NOTE_MARKER)) == 0);
	CHECK(!a_line_starts_with_slash(body));
	CHECK(strstr(body, "evil /merge") != NULL); /* the text is shown, on the line of its row */
	free(body);
	finding_list_free(l);
}

int main(void)
{
	RUN(test_mr_text_never_starts_a_line);
	return testlib_done();
}
