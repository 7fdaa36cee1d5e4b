/*
 * tests/unit/test_mrcommand.c
 *    The pure parts of "/mrgate" comment commands (core/mrcommand.h): which note events are commands, how a command
 *    line parses, and that quoted user text can neither leave its code span nor start a line.
 */
#include "buf.h"
#include "gate_report.h"
#include "jsonx.h"
#include "mrcommand.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A comment event as GitLab sends it (webhook_events.md "Comment on a merge request"), with object_attributes.key
 * set to the JSON text value when key is not NULL. */
static struct json_object *event(const char *note, const char *key, const char *value)
{
	char text[2048];
	snprintf(text, sizeof(text),
	         "{\"object_kind\":\"note\",\"event_type\":\"note\",\"user\":{\"id\":7,\"username\":\"mia\"},"
	         "\"project_id\":42,\"project\":{\"id\":42},\"object_attributes\":{\"id\":1244,\"note\":\"%s\","
	         "\"noteable_type\":\"MergeRequest\",\"author_id\":7,\"system\":false,\"action\":\"create\"},"
	         "\"merge_request\":{\"iid\":3,\"last_commit\":{\"id\":\"562e173be03b8ff2efb05345d12df18815438a4b\"}}}",
	         note);
	struct json_object *o = NULL, *v = NULL, *oa = NULL;
	CHECK(jsonx_parse(text, strlen(text), &o) == CORE_OK);
	if (key) {
		CHECK(jsonx_parse(value, strlen(value), &v) == CORE_OK);
		CHECK(jsonx_object(o, "object_attributes", &oa));
		json_object_object_add(oa, key, v);
	}
	return o;
}

static bool is_command(const char *header, const char *note, const char *key, const char *value, char *why, size_t cap)
{
	struct mrcommand_note n;
	struct json_object *o = event(note, key, value);
	bool yes = mrcommand_parse_event(header, o, &n, why, cap);
	if (yes) {
		CHECK(n.note_id == 1244 && n.project_id == 42 && n.mr_iid == 3 && n.author_id == 7);
		CHECK_STR(n.username, "mia");
		CHECK_STR(n.head_sha, "562e173be03b8ff2efb05345d12df18815438a4b");
	}
	json_object_put(o);
	return yes;
}

static void only_new_public_comments_on_merge_requests_are_commands(void)
{
	char why[256];
	CHECK(is_command("Note Hook", "/mrgate bypass ok", NULL, NULL, why, sizeof(why)));
	CHECK(is_command("Note Hook", "/mrgate", NULL, NULL, why, sizeof(why))); /* bare: answered with the usage */
	CHECK(is_command("Note Hook", "/mrgate\\nbypass", NULL, NULL, why, sizeof(why)));
	CHECK(!is_command("Note Hook", "/mrgatebypass ok", NULL, NULL, why, sizeof(why)));
	CHECK(!is_command("Note Hook", " /mrgate bypass ok", NULL, NULL, why, sizeof(why)));
	CHECK(!is_command("Note Hook", "lgtm", NULL, NULL, why, sizeof(why)));
	CHECK(strstr(why, "not a /mrgate command") != NULL);
	CHECK(!is_command("Confidential Note Hook", "/mrgate bypass ok", NULL, NULL, why, sizeof(why)));
	CHECK(strstr(why, "confidential") != NULL);
	CHECK(!is_command("Note Hook", "/mrgate bypass ok", "internal", "true", why, sizeof(why)));
	CHECK(!is_command("Note Hook", "/mrgate bypass ok", "action", "\"update\"", why, sizeof(why)));
	CHECK(strstr(why, "edited") != NULL);
	CHECK(!is_command("Note Hook", "/mrgate bypass ok", "noteable_type", "\"Issue\"", why, sizeof(why)));
	CHECK(strstr(why, "outside merge requests") != NULL);
	CHECK(!is_command("Note Hook", "/mrgate bypass ok", "system", "true", why, sizeof(why)));
}

static void command_lines_parse(void)
{
	struct mrcommand_cmd c;
	char t1[] = "/mrgate bypass   the key was rotated  \nsecond line /merge";
	mrcommand_parse_text(t1, &c);
	CHECK(c.verb == MRCOMMAND_BYPASS);
	CHECK_STR(c.reason, "the key was rotated");
	char fp[] = "/mrgate ignore a3808fab0912e674bca90674f67e784fee5708224c8bf7fa9aeaa97069806daf  fixture";
	mrcommand_parse_text(fp, &c);
	CHECK(c.verb == MRCOMMAND_IGNORE && c.fingerprint);
	CHECK_STR(c.reason, "fixture");
	char rule[] = "/mrgate ignore generic-api-key test data";
	mrcommand_parse_text(rule, &c);
	CHECK(c.verb == MRCOMMAND_IGNORE && !c.fingerprint);
	CHECK_STR(c.target, "generic-api-key");
	CHECK_STR(c.reason, "test data");
	char upper[] = "/mrgate ignore A3808FAB0912E674BCA90674F67E784FEE5708224C8BF7FA9AEAA97069806DAF x";
	mrcommand_parse_text(upper, &c);
	CHECK(c.verb == MRCOMMAND_IGNORE && c.fingerprint); /* any case: taken in lower case */
	CHECK_STR(c.target, "a3808fab0912e674bca90674f67e784fee5708224c8bf7fa9aeaa97069806daf");
	char prefix[] = "/mrgate ignore A3808fab0912 x";
	mrcommand_parse_text(prefix, &c);
	CHECK(c.verb == MRCOMMAND_IGNORE && c.fingerprint); /* a prefix of 12 or more hex characters */
	CHECK_STR(c.target, "a3808fab0912");
	char short_hex[] = "/mrgate ignore a3808fab091 x";
	mrcommand_parse_text(short_hex, &c);
	CHECK(c.verb == MRCOMMAND_IGNORE && !c.fingerprint); /* 11: a rule id */
	char none[] = "/mrgate ignore";
	mrcommand_parse_text(none, &c);
	CHECK(c.verb == MRCOMMAND_USAGE && strstr(c.why, "which finding") != NULL);
	char bare[] = "/mrgate";
	mrcommand_parse_text(bare, &c);
	CHECK(c.verb == MRCOMMAND_USAGE && strstr(c.why, "no command") != NULL);
	char other[] = "/mrgate approve";
	mrcommand_parse_text(other, &c);
	CHECK(c.verb == MRCOMMAND_USAGE && strstr(c.why, "unknown command") != NULL);
	char noreason[] = "/mrgate bypass";
	mrcommand_parse_text(noreason, &c);
	CHECK(c.verb == MRCOMMAND_BYPASS && c.reason[0] == '\0');
	char longrule[300];
	snprintf(longrule, sizeof(longrule), "/mrgate ignore %0250d why", 0);
	mrcommand_parse_text(longrule, &c);
	CHECK(c.verb == MRCOMMAND_USAGE && strstr(c.why, "at most") != NULL);
}

static void quoted_text_stays_inline(void)
{
	struct buf b = {0};
	gate_md_code(&b, "/merge");
	CHECK_STR(buf_str(&b), "` /merge `");
	buf_reset(&b);
	gate_md_code(&b, "a `b` ``c``");
	CHECK_STR(buf_str(&b), "``` a `b` ``c`` ```");
	buf_reset(&b);
	gate_md_code(&b, "x\n/merge\r\n/approve");
	CHECK(strchr(buf_str(&b), '\n') == NULL && strchr(buf_str(&b), '\r') == NULL);
	CHECK_STR(buf_str(&b), "` x /merge  /approve `");
	buf_free(&b);
}

int main(void)
{
	RUN(only_new_public_comments_on_merge_requests_are_commands);
	RUN(command_lines_parse);
	RUN(quoted_text_stays_inline);
	return testlib_done();
}
