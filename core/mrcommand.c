/*
 * core/mrcommand.c
 *    "/mrgate" commands in merge request comments (see mrcommand.h).
 */
#include "mrcommand.h"

#include "applyjob.h"
#include "buf.h"
#include "connection.h"
#include "findings.h"
#include "gate_report.h"
#include "gatebypass.h"
#include "ignores.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX     "/mrgate"
#define VIA        "merge request comment"
#define USAGE_TEXT "`/mrgate bypass <reason>` or `/mrgate ignore <fingerprint or rule id> <reason>`"

/* --- the event (webhook side, no database) ---------------------------------------------------------------- */

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* The note starts with "/mrgate" followed by a blank, a line end or nothing. */
static bool starts_command(const char *text)
{
	size_t n = strlen(PREFIX);
	return strncmp(text, PREFIX, n) == 0 &&
	       (text[n] == '\0' || is_blank(text[n]) || text[n] == '\n' || text[n] == '\r');
}

/* Why a note event is not a command, or NULL when its kind is one (a new comment on a merge request). */
static const char *not_command_kind(const char *event, const struct json_object *p, const struct json_object *oa)
{
	const char *kind = "", *event_type = "", *type = "", *action = "create";
	bool flag = false;
	if (!event || strcmp(event, "Note Hook") != 0)
		return "confidential notes are not commands";
	jsonx_str(p, "object_kind", &kind);
	jsonx_str(p, "event_type", &event_type);
	if (strcmp(kind, "note") != 0)
		return "a note hook without object_kind note";
	if (strcmp(event_type, "confidential_note") == 0 || (jsonx_bool(oa, "internal", &flag) && flag) ||
	    (jsonx_bool(oa, "confidential", &flag) && flag))
		return "confidential notes are not commands";
	if (jsonx_bool(oa, "system", &flag) && flag)
		return "system notes are not commands";
	jsonx_str(oa, "action", &action); /* absent before GitLab 16.11, which sent note events on create only */
	if (strcmp(action, "create") != 0)
		return "edited comments are not commands (only a new comment is)";
	jsonx_str(oa, "noteable_type", &type);
	if (strcmp(type, "MergeRequest") != 0)
		return "comments outside merge requests are not commands";
	return NULL;
}

bool mrcommand_parse_event(const char *event, const struct json_object *payload, struct mrcommand_note *out, char *why,
                           size_t cap)
{
	struct json_object *oa = NULL;
	memset(out, 0, sizeof(*out));
	out->head_sha = out->username = "";
	if (!jsonx_object(payload, "object_attributes", &oa)) {
		snprintf(why, cap, "note event without object_attributes");
		return false;
	}
	const char *no = not_command_kind(event, payload, oa);
	if (no) {
		snprintf(why, cap, "%s", no);
		return false;
	}
	if (!jsonx_str(oa, "note", &out->text) || !starts_command(out->text)) {
		snprintf(why, cap, "a comment that is not a /mrgate command");
		return false;
	}
	if (!jsonx_int64(oa, "id", &out->note_id) || out->note_id <= 0 ||
	    !jsonx_int64(oa, "author_id", &out->author_id) || out->author_id <= 0 ||
	    !jsonx_path_int64(payload, "merge_request.iid", &out->mr_iid) || out->mr_iid <= 0 ||
	    !jsonx_path_int64(payload, "project.id", &out->project_id) || out->project_id <= 0) {
		snprintf(why, cap, "a /mrgate comment without note id, author_id, merge_request.iid or project.id");
		return false;
	}
	jsonx_path_str(payload, "user.username", &out->username);
	jsonx_path_str(payload, "merge_request.last_commit.id", &out->head_sha);
	if (strlen(out->head_sha) > 64)
		out->head_sha = "";
	if (strlen(out->username) > 255)
		out->username = "";
	return true;
}

/* The command's first line, at most MRCOMMAND_TEXT_MAX bytes cut at a character boundary (malloc'd). */
static char *first_line(const char *text)
{
	size_t n = strcspn(text, "\r\n");
	n = findings_utf8_cut(text, n, MRCOMMAND_TEXT_MAX);
	return xstrndup(text, n);
}

enum core_status mrcommand_enqueue(struct store_conn *c, const struct mrcommand_note *n, int64_t event_id,
                                   int64_t *job_id_out, bool *queued_out)
{
	*job_id_out = 0;
	*queued_out = false;
	/* ids: note, project, MR, author, event (0: none) */
	int64_t ids[] = {n->note_id, n->project_id, n->mr_iid, n->author_id, event_id};
	char *line = first_line(n->text);
	struct buf keep = {0};
	struct store_params p = {0};
	store_param_i64_array(&p, ids, 5, &keep);
	store_param_str(&p, n->username);
	store_param_str(&p, n->head_sha);
	store_param_str(&p, line);
	PGresult *r = NULL;
	/* the note's row, once; its job's params (what the job needs of the event) made by the same statement */
	enum core_status st = store_run(
	    c,
	    "WITH v AS (SELECT $1::bigint[] AS i), ins AS (INSERT INTO mr_commands (note_id, project_id, mr_iid,"
	    " author_id, event_id) SELECT i[1], i[2], i[3], i[4], nullif(i[5], 0) FROM v ON CONFLICT (note_id)"
	    " DO NOTHING RETURNING note_id, mr_iid, author_id, event_id)"
	    " SELECT jsonb_build_object('event', event_id, 'note_id', note_id, 'mr_iid', mr_iid, 'author_id', "
	    "author_id,"
	    " 'username', $2::text, 'head_sha', $3::text, 'command', $4::text)::text AS params FROM ins",
	    &p, &r);
	free(line);
	buf_free(&keep);
	if (st == CORE_OK && PQntuples(r) > 0)
		st = jobs_create_in_tx(c, "mrcommand", "system (webhook)", store_str(r, 0, "params"), &n->project_id, 1,
		                       job_id_out);
	PQclear(r);
	if (st != CORE_OK || *job_id_out == 0)
		return st;
	struct store_params u = {0};
	store_param_i64(&u, *job_id_out);
	store_param_i64(&u, n->note_id);
	st = store_run(c, "UPDATE mr_commands SET job_id = $1::bigint WHERE note_id = $2::bigint", &u, NULL);
	*queued_out = st == CORE_OK;
	return st;
}

/* --- the command text (pure) -------------------------------------------------------------------------------- */

static char *skip_blanks(char *s)
{
	while (is_blank(*s))
		s++;
	return s;
}

/* The next blank-separated word of *s, NUL-terminated in place; *s moves past it. */
static char *next_word(char **s)
{
	char *w = skip_blanks(*s), *e = w;
	while (*e && !is_blank(*e))
		e++;
	*s = *e ? e + 1 : e;
	*e = '\0';
	return w;
}

/* The reason: the rest of the line, blanks trimmed at both ends (in place). */
static const char *rest_trimmed(char *s)
{
	s = skip_blanks(s);
	size_t n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

void mrcommand_parse_text(char *text, struct mrcommand_cmd *out)
{
	memset(out, 0, sizeof(*out));
	out->reason = "";
	text[strcspn(text, "\r\n")] = '\0';
	char *s = text + (strncmp(text, PREFIX, strlen(PREFIX)) == 0 ? strlen(PREFIX) : 0);
	char *verb = next_word(&s);
	if (strcmp(verb, "bypass") == 0) {
		out->verb = MRCOMMAND_BYPASS;
		out->reason = rest_trimmed(s);
		return;
	}
	if (strcmp(verb, "ignore") != 0) {
		snprintf(out->why, sizeof(out->why), "%s", verb[0] ? "unknown command" : "no command given");
		return;
	}
	char *target = next_word(&s);
	if (!target[0]) {
		snprintf(out->why, sizeof(out->why), "say which finding: its fingerprint or its rule id");
		return;
	}
	if (strlen(target) > MRCOMMAND_TARGET_MAX) {
		snprintf(out->why, sizeof(out->why), "a fingerprint or rule id is at most %d bytes",
		         MRCOMMAND_TARGET_MAX);
		return;
	}
	out->verb = MRCOMMAND_IGNORE;
	/* 12 to 64 hex characters, any case, are a fingerprint or its prefix; anything else names a rule */
	size_t len = strlen(target);
	out->fingerprint = len >= MRCOMMAND_PREFIX_MIN && len <= FINDING_FINGERPRINT_LEN &&
	                   strspn(target, "0123456789abcdefABCDEF") == len;
	for (char *p = target; out->fingerprint && *p; p++)
		*p = *p >= 'A' && *p <= 'F' ? (char)(*p - 'A' + 'a') : *p;
	snprintf(out->target, sizeof(out->target), "%s", target);
	out->reason = rest_trimmed(s);
}

/* --- the job -------------------------------------------------------------------------------------------------- */

/* What the job works with. */
struct cmd_ctx {
	const struct applyjob_env *env;
	struct gitlab *gl;
	int64_t project_id, mr_iid, note_id, author_id;
	const char *head_sha, *payload_username;
	struct json_object *params; /* the job's params (borrowed) */
	char username[256];         /* from the members API (the payload's when the user is no member) */
	char actor[300];            /* "gitlab:<username>": who mrgate records (no dashboard name has a ':') */
	int level;                  /* access level on the project, 0: no member */
	struct buf reply;           /* the reply decided */
	const char *outcome;        /* applied | refused */
};

static const char *level_name(int level)
{
	return level >= 50   ? "Owner"
	       : level >= 40 ? "Maintainer"
	       : level >= 30 ? "Developer"
	       : level >= 20 ? "Reporter"
	       : level >= 10 ? "Guest"
	       : level > 0   ? "Minimal access"
	                     : "not a member";
}

/* "@user" (GitLab usernames are [A-Za-z0-9_.-]; anything else is quoted). */
static void mention(struct buf *b, const char *username)
{
	bool plain = username[0] != '\0';
	for (const char *p = username; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.' || *p == '-'))
			plain = false;
	if (plain) {
		buf_putc(b, '@');
		buf_puts(b, username);
	} else {
		gate_md_code(b, username[0] ? username : "(unknown user)");
	}
}

__attribute__((format(printf, 3, 4))) static void reply(struct cmd_ctx *x, const char *outcome, const char *fmt, ...)
{
	char line[4096]; /* the longest reply: a quoted 200-byte target and a quoted 200-character reason */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one line, whatever a message from GitLab held: no line of a reply can start a quick action */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	x->outcome = outcome;
	buf_puts(&x->reply, line);
}

/* The commenter's access level on the project, inherited memberships included (404: no member). */
static enum core_status read_level(struct cmd_ctx *x)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	snprintf(path, sizeof(path), "/projects/%lld/members/all/%lld", (long long)x->project_id,
	         (long long)x->author_id);
	enum core_status st = gitlab_request(x->gl, "GET", path, NULL, &resp);
	int64_t level = 0;
	const char *name = "", *state = "active";
	if (st == CORE_OK) {
		jsonx_int64(resp->json, "access_level", &level);
		jsonx_str(resp->json, "username", &name);
		jsonx_str(resp->json, "state", &state);
		x->level = strcmp(state, "active") == 0 && level > 0 && level <= 100 ? (int)level : 0;
	} else if (st == CORE_ENOTFOUND) {
		x->level = 0;
		st = CORE_OK;
	}
	snprintf(x->username, sizeof(x->username), "%s", name[0] ? name : x->payload_username);
	if (x->username[0])
		snprintf(x->actor, sizeof(x->actor), "gitlab:%s", x->username);
	else
		snprintf(x->actor, sizeof(x->actor), "gitlab:user-%lld", (long long)x->author_id);
	gitlab_response_free(resp);
	return st;
}

/* The audit details of a command: how it came, the rights GitLab gave, and the command as its job has it (the
 * caller owns them). */
static struct json_object *audit_details(const struct cmd_ctx *x)
{
	struct json_object *d = jx_object();
	json_object_object_add(d, "via", jx_str(VIA));
	json_object_object_add(d, "access_level", jx_int(x->level));
	json_object_object_add(d, "command", json_object_get(x->params));
	return d;
}

/* The newest gate run of the MR: its id and head sha; *found false when the MR has none. */
static enum core_status newest_run(struct cmd_ctx *x, int64_t *run_id, char *sha, size_t cap, bool *found)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, x->project_id);
	store_param_i64(&p, x->mr_iid);
	enum core_status st = store_run1(x->env->db,
	                                 "SELECT id, head_sha FROM gate_runs WHERE project_id = $1::bigint AND"
	                                 " mr_iid = $2::bigint ORDER BY id DESC LIMIT 1",
	                                 &p, &r);
	*found = st == CORE_OK && PQntuples(r) > 0;
	if (*found) {
		*run_id = store_i64(r, 0, "id", 0);
		snprintf(sha, cap, "%s", store_str(r, 0, "head_sha"));
	}
	PQclear(r);
	return st;
}

static enum core_status do_bypass(struct cmd_ctx *x, const char *reason)
{
	int64_t run_id = 0;
	char sha[72] = "", msg[600] = "";
	bool found = false;
	enum core_status st = newest_run(x, &run_id, sha, sizeof(sha), &found);
	if (st != CORE_OK)
		return st;
	if (!found || (x->head_sha[0] && strcmp(sha, x->head_sha) != 0)) {
		reply(x, "refused",
		      "nothing to bypass: mrgate has no finished gate run on this merge request's head "
		      "commit yet. Wait for its verdict, then comment again.");
		return CORE_OK;
	}
	struct json_object *details = audit_details(x);
	struct gate_bypass_req req = {.run_id = run_id,
	                              .actor = x->actor,
	                              .reason = reason,
	                              .public_url = x->env->public_url,
	                              .audit_details = details};
	st = gate_bypass(x->env->db, x->gl, &req, msg, sizeof(msg));
	json_object_put(details);
	if (st == CORE_OK) {
		struct buf b = {0};
		gate_md_code(&b, reason);
		reply(x, "applied", "gate bypassed: commit `%.12s` now shows `success`, bypassed by you. Reason: %s",
		      sha, buf_str(&b));
		buf_free(&b);
		return CORE_OK;
	}
	if (st == CORE_EINVAL || st == CORE_ESTATE || st == CORE_ENOTFOUND || st == CORE_EUPSTREAM) {
		reply(x, "refused", "the gate was not bypassed: %s.", msg);
		return CORE_OK;
	}
	return st;
}

/* Did some gate run of this repo find this rule, or a fingerprint starting with the target? *matches: 0, 1 or 2
 * (2: more than one fingerprint has the prefix); fp_out the one fingerprint found. */
static enum core_status known_target(struct cmd_ctx *x, const struct mrcommand_cmd *cmd, int *matches, char *fp_out,
                                     size_t cap)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, x->project_id);
	store_param_str(&p, cmd->target);
	store_param_bool(&p, cmd->fingerprint);
	enum core_status st = store_run1(
	    x->env->db,
	    "SELECT DISTINCT CASE WHEN $3::boolean THEN f.fingerprint ELSE f.rule_id END AS t FROM gate_findings f"
	    " JOIN gate_runs g ON g.id = f.run_id WHERE g.project_id = $1::bigint AND"
	    " CASE WHEN $3::boolean THEN left(f.fingerprint, length($2)) = $2 ELSE f.rule_id = $2 END LIMIT 2",
	    &p, &r);
	*matches = st == CORE_OK ? PQntuples(r) : 0;
	snprintf(fp_out, cap, "%s", *matches == 1 ? store_str(r, 0, "t") : cmd->target);
	PQclear(r);
	return st;
}

static enum core_status do_ignore(struct cmd_ctx *x, const struct mrcommand_cmd *cmd)
{
	int matches = 0;
	char msg[600] = "", target[MRCOMMAND_TARGET_MAX + 1];
	struct buf t = {0}, rs = {0};
	enum core_status st = known_target(x, cmd, &matches, target, sizeof(target));
	gate_md_code(&t, target);
	gate_md_code(&rs, cmd->reason);
	if (st != CORE_OK)
		goto out;
	if (matches > 1) {
		reply(
		    x, "refused",
		    "nothing ignored: the fingerprint prefix %s is ambiguous: more than one finding of this repository "
		    "has a fingerprint starting with it. Give more of it (the full fingerprint is in mrgate's report).",
		    buf_str(&t));
		goto out;
	}
	if (matches == 0) {
		reply(x, "refused",
		      "nothing ignored: no gate run of this repository found a finding with the %s %s. Copy the "
		      "fingerprint or rule id from mrgate's report.",
		      cmd->fingerprint ? "fingerprint" : "rule id", buf_str(&t));
		goto out;
	}
	struct json_object *body = jx_object(), *made = NULL, *details = audit_details(x);
	json_object_object_add(body, cmd->fingerprint ? "fingerprint" : "rule_id", jx_str(target));
	json_object_object_add(body, "repo_id", jx_int(x->project_id));
	json_object_object_add(body, "reason", jx_str(cmd->reason));
	st = ignores_create_via(x->env->db, x->actor, details, body, &made, msg, sizeof(msg));
	int64_t id = 0;
	jsonx_int64(made, "id", &id);
	json_object_put(made);
	json_object_put(body);
	json_object_put(details);
	if (st == CORE_OK) {
		reply(x, "applied",
		      "ignored for this repository: %s %s (ignore %lld). Later gate runs list it as ignored and do not "
		      "count it; push again to gate this merge request with it ignored. Reason: %s",
		      cmd->fingerprint ? "the finding" : "every finding of rule", buf_str(&t), (long long)id,
		      buf_str(&rs));
	} else if (st == CORE_EINVAL || st == CORE_ECONFLICT || st == CORE_ENOTFOUND) {
		reply(x, "refused", "nothing ignored: %s.", msg);
		st = CORE_OK;
	}
out:
	buf_free(&t);
	buf_free(&rs);
	return st;
}

/* Read the commenter's rights, then carry the command out or say why not; x->reply gets the answer. */
static enum core_status decide(struct cmd_ctx *x, char *command)
{
	struct mrcommand_cmd cmd;
	char why[300];
	enum core_status st = read_level(x);
	if (st != CORE_OK)
		return st;
	mrcommand_parse_text(command, &cmd);
	mention(&x->reply, x->username);
	buf_puts(&x->reply, ": ");
	const char *what = cmd.verb == MRCOMMAND_IGNORE ? "ignore findings" : "bypass the gate";
	if (x->level < MRCOMMAND_MIN_LEVEL) {
		reply(x, "refused",
		      "only a Maintainer or Owner of this project may %s with `/mrgate` (your access level here: %s). "
		      "Nothing was changed.",
		      what, level_name(x->level));
		return CORE_OK;
	}
	if (cmd.verb == MRCOMMAND_USAGE) {
		reply(x, "refused", "%s: write " USAGE_TEXT ". Nothing was changed.", cmd.why);
		return CORE_OK;
	}
	if (!(cmd.verb == MRCOMMAND_IGNORE ? gate_ignore_reason_ok : gate_bypass_reason_ok)(cmd.reason, why,
	                                                                                    sizeof(why))) {
		reply(x, "refused", "give a reason on the same line: %s. Nothing was changed.",
		      cmd.reason[0] ? why : "the reason is missing (" USAGE_TEXT ")");
		return CORE_OK;
	}
	return cmd.verb == MRCOMMAND_BYPASS ? do_bypass(x, cmd.reason) : do_ignore(x, &cmd);
}

/* The note's row: the reply decided and posted so far. */
struct cmd_row {
	bool found;
	char *reply; /* NULL: not decided */
	int64_t reply_note_id;
	bool refused; /* decided: refused (the reply says why; nothing was changed) */
};

static enum core_status load_row(struct store *db, int64_t note_id, struct cmd_row *row)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	memset(row, 0, sizeof(*row));
	store_param_i64(&p, note_id);
	enum core_status st = store_run1(
	    db,
	    "SELECT reply, coalesce(reply_note_id, 0) AS reply_note_id, outcome = 'refused' AS refused FROM mr_commands"
	    " WHERE note_id = $1::bigint",
	    &p, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		row->found = true;
		const char *rep = store_str(r, 0, "reply");
		row->reply = rep ? xstrdup(rep) : NULL;
		row->reply_note_id = store_i64(r, 0, "reply_note_id", 0);
		row->refused = store_bool(r, 0, "refused", false);
	}
	PQclear(r);
	return st;
}

static enum core_status record(struct store *db, int64_t note_id, const char *outcome, const char *reply_text,
                               int64_t reply_note_id)
{
	struct store_params p = {0};
	store_param_i64(&p, note_id);
	store_param_str(&p, outcome);
	store_param_str(&p, reply_text);
	store_param_i64_or_null(&p, reply_note_id);
	return store_run1(db,
	                  "UPDATE mr_commands SET outcome = coalesce($2, outcome), reply = coalesce($3, reply),"
	                  " decided_at = coalesce(decided_at, now()),"
	                  " reply_note_id = coalesce($4::bigint, reply_note_id) WHERE note_id = $1::bigint",
	                  &p, NULL);
}

/* Post the reply as a new note on the MR; *note_id_out its id. */
static enum core_status post_reply(struct cmd_ctx *x, const char *text, int64_t *note_id_out)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	struct json_object *body = jx_object();
	json_object_object_add(body, "body", jx_str(text));
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/notes", (long long)x->project_id,
	         (long long)x->mr_iid);
	enum core_status st = gitlab_request(x->gl, "POST", path, body, &resp);
	if (st == CORE_OK)
		jsonx_int64(resp->json, "id", note_id_out);
	else
		log_warn("mrcommand: could not reply to note %lld on !%lld: %s", (long long)x->note_id,
		         (long long)x->mr_iid, resp && resp->message[0] ? resp->message : core_status_code(st));
	gitlab_response_free(resp);
	json_object_put(body);
	return st;
}

/* Was an earlier note of this author (a smaller id) refused in the last minute? A refusal for want of rights is
 * answered once a minute per commenter: anyone who may comment could otherwise spend the bot's note quota
 * (GitLab.com: 60 notes a minute) and hold up every merge request's sticky note. The caller has recorded its own
 * refusal first, so of notes decided at once the earliest is the one answered. */
static bool refused_lately(const struct cmd_ctx *x)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	store_param_i64(&p, x->author_id);
	store_param_i64(&p, x->note_id);
	enum core_status st =
	    store_run1(x->env->db,
	               "SELECT 1 FROM mr_commands WHERE author_id = $1::bigint AND note_id < $2::bigint"
	               " AND outcome = 'refused' AND decided_at > now() - interval '1 minute' LIMIT 1",
	               &p, &r);
	bool lately = st == CORE_OK && PQntuples(r) > 0;
	PQclear(r);
	return lately;
}

/* Decide (once) and reply (once); the outcome of the item. */
static enum job_outcome run_command(struct cmd_ctx *x, struct cmd_row *row, char *command, bool own_note,
                                    struct job_item_result *res)
{
	enum core_status st = CORE_OK;
	if (!row->reply && own_note) {
		record(x->env->db, x->note_id, "skipped", NULL, 0);
		jobs_result_message(res, "note %lld was written by mrgate's own user: not a command",
		                    (long long)x->note_id);
		return JOB_ITEM_SKIPPED;
	}
	if (!row->reply) {
		st = decide(x, command);
		if (st == CORE_OK)
			st = record(x->env->db, x->note_id, x->outcome, buf_str(&x->reply), 0);
		if (st == CORE_OK && x->level < MRCOMMAND_MIN_LEVEL && refused_lately(x)) {
			record(x->env->db, x->note_id, "skipped", NULL, 0);
			jobs_result_message(
			    res, "note %lld: refused without a reply (this commenter got one less than a minute ago)",
			    (long long)x->note_id);
			return JOB_ITEM_SKIPPED;
		}
		if (st != CORE_OK) {
			jobs_result_message(res, "could not carry out note %lld: %s", (long long)x->note_id,
			                    core_status_code(st));
			return st == CORE_EFORBIDDEN || st == CORE_EUNAUTH ? JOB_ITEM_ERROR : JOB_ITEM_RETRY;
		}
		row->reply = buf_steal(&x->reply);
		row->refused = strcmp(x->outcome, "refused") == 0;
	}
	int64_t reply_id = 0;
	st = post_reply(x, row->reply, &reply_id);
	if (st != CORE_OK) {
		jobs_result_message(res, "decided, but the reply to note %lld could not be posted: %s",
		                    (long long)x->note_id, core_status_code(st));
		return st == CORE_EFORBIDDEN || st == CORE_ENOTFOUND ? JOB_ITEM_ERROR : JOB_ITEM_RETRY;
	}
	record(x->env->db, x->note_id, NULL, NULL, reply_id);
	/* a refusal changed nothing but the reply: skipped, with the reason (it was "changed", as if carried out) */
	jobs_result_message(res, "note %lld%s: %.300s", (long long)x->note_id, row->refused ? " refused" : "",
	                    row->reply);
	return row->refused ? JOB_ITEM_SKIPPED : JOB_ITEM_CHANGED;
}

enum job_outcome mrcommand_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	struct cmd_ctx x = {.env = env, .outcome = "refused"};
	const char *command = NULL;
	x.head_sha = x.payload_username = "";
	if (!item->has_repo || !jsonx_int64(item->params, "note_id", &x.note_id) ||
	    !jsonx_int64(item->params, "mr_iid", &x.mr_iid) || !jsonx_int64(item->params, "author_id", &x.author_id) ||
	    !jsonx_str(item->params, "command", &command)) {
		jobs_result_message(res, "an mrcommand item needs a project, note_id, mr_iid, author_id and command");
		return JOB_ITEM_ERROR;
	}
	x.project_id = item->repo_id;
	x.params = item->params;
	jsonx_str(item->params, "head_sha", &x.head_sha);
	jsonx_str(item->params, "username", &x.payload_username);
	struct cmd_row row;
	if (load_row(env->db, x.note_id, &row) != CORE_OK)
		return JOB_ITEM_RETRY;
	if (!row.found || row.reply_note_id > 0) {
		free(row.reply);
		jobs_result_message(res, "note %lld was answered already", (long long)x.note_id);
		return JOB_ITEM_UNCHANGED;
	}
	struct connection_client *cc = NULL;
	enum job_outcome outcome;
	if (!applyjob_client(env, res, "no GitLab connection", &cc, &outcome)) {
		free(row.reply);
		return outcome;
	}
	x.gl = connection_client_gitlab(cc);
	bool own = connection_client_info(cc)->user_id == x.author_id;
	char *text = xstrdup(command);
	applyjob_slot_take(env);
	outcome = run_command(&x, &row, text, own, res);
	applyjob_slot_give(env);
	connection_client_release(cc);
	free(text);
	free(row.reply);
	buf_free(&x.reply);
	return outcome;
}
