/*
 * core/gatebypass.c
 *    Bypassing a failed gate run (see gatebypass.h).
 */
#include "gatebypass.h"

#include "audit.h"
#include "findings.h"
#include "gate_report.h"
#include "gate_status.h"
#include "gatehold.h"
#include "jsonx.h"
#include "log.h"
#include "rows.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The run as it must be to be bypassed: finished, its failed status posted, and the newest run of its MR. */
#define BYPASSABLE                                                                                                     \
	" g.state = 'done' AND g.status_posted = 'failed' AND NOT EXISTS (SELECT 1 FROM gate_runs n"                   \
	" WHERE n.project_id = g.project_id AND n.mr_iid = g.mr_iid AND n.id > g.id)"

/*
 * A bypass claims its run before it calls GitLab, so two at once never both post: the run is done, so its lease
 * columns are free (the gate queue leases queued and running runs only); the claim is lease_owner "bypass <uuid>"
 * with lease_until two minutes on (a crashed bypass's claim expires). Claim, GitLab call and record are three
 * steps: no transaction or lock is held while GitLab answers.
 */
#define CLAIMED         "coalesce(g.lease_owner LIKE 'bypass %' AND g.lease_until > now(), false)"
#define CLAIM_LIFETIME  "interval '2 minutes'"
#define CLAIM_TOKEN_MAX 64

struct bypass_run {
	int64_t source_project_id, pipeline_id;
	char head_sha[72], status_ref[256], verdict[16], posted[16], state[16];
	char target[400]; /* "gate run N (group/repo !iid)": the audit entry's target */
	bool newest, claimed;
	bool gated; /* the repo is gated now: its effective config enabled, managed by mrgate */
};

/* The code point of the UTF-8 sequence at *p (valid UTF-8: the JSON parser checked it), advancing *p past it. */
static unsigned long next_cp(const unsigned char **p)
{
	const unsigned char *s = *p;
	unsigned long cp = s[0];
	int more = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
	cp &= more == 3 ? 0x07 : more == 2 ? 0x0f : more == 1 ? 0x1f : 0x7f;
	for (int i = 1; i <= more && s[i]; i++)
		cp = (cp << 6) | (s[i] & 0x3f);
	*p = s + 1 + more;
	return cp;
}

/* Characters a one-line reason shown to people must not hold: controls (C0, DEL, C1), line and paragraph
 * separators, and the invisible format characters that reorder or hide text (bidi overrides, zero widths). */
static bool cp_forbidden(unsigned long cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff;
}

static bool cp_blank(unsigned long cp)
{
	return cp == ' ' || cp == 0xa0 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f ||
	       cp == 0x3000;
}

/* The rule for both; purpose ends the message ("say why ..."). */
static int reason_ok(const char *reason, const char *purpose, char *msg, size_t cap)
{
	if (!reason) {
		snprintf(msg, cap, "field \"reason\" is required: %s", purpose);
		return 0;
	}
	size_t chars = 0, visible = 0;
	for (const unsigned char *p = (const unsigned char *)reason; *p; chars++) {
		unsigned long cp = next_cp(&p);
		if (cp_forbidden(cp)) {
			snprintf(msg, cap,
			         "field \"reason\" must be one line of plain text: character %zu (U+%04lX) is a "
			         "control, separator or invisible formatting character",
			         chars + 1, cp);
			return 0;
		}
		visible += !cp_blank(cp);
	}
	if (visible == 0) {
		snprintf(msg, cap, "field \"reason\" must not be empty: %s", purpose);
		return 0;
	}
	if (chars > GATE_BYPASS_REASON_MAX) {
		snprintf(msg, cap, "field \"reason\" must be at most %d characters (it is shown on GitLab)",
		         GATE_BYPASS_REASON_MAX);
		return 0;
	}
	return 1;
}

int gate_bypass_reason_ok(const char *reason, char *msg, size_t cap)
{
	return reason_ok(reason, "say why this merge request may merge with the findings", msg, cap);
}

int gate_ignore_reason_ok(const char *reason, char *msg, size_t cap)
{
	return reason_ok(reason, "say why this finding may be ignored", msg, cap);
}

static void copy_str(const struct json_object *o, const char *key, char *out, size_t cap)
{
	const char *v = "";
	jsonx_str(o, key, &v);
	snprintf(out, cap, "%s", v);
}

static enum core_status load(struct store *db, int64_t id, struct bypass_run *b)
{
	struct json_object *o = NULL;
	struct store_params p = {0};
	store_param_i64(&p, id);
	enum core_status st = rows_query_one(
	    db,
	    "SELECT jsonb_build_object('source_project_id', g.source_project_id, 'pipeline_id',"
	    " coalesce(g.pipeline_id, 0), 'head_sha', g.head_sha, 'status_ref', coalesce(g.status_ref, "
	    "g.source_branch),"
	    " 'verdict', coalesce(g.verdict, ''), 'posted', coalesce(g.status_posted, ''), 'state', g.state,"
	    " 'newest', NOT EXISTS (SELECT 1 FROM gate_runs n WHERE n.project_id = g.project_id"
	    "   AND n.mr_iid = g.mr_iid AND n.id > g.id), 'claimed', " CLAIMED ","
	    " 'target', 'gate run ' || g.id || ' (' || coalesce(rp.path_with_namespace, 'project ' || g.project_id)"
	    "   || ' !' || g.mr_iid || ')',"
	    " 'gated', " GATE_BYPASS_REPO_GATED ")"
	    "::text AS j"
	    " FROM gate_runs g LEFT JOIN repos rp ON rp.id = g.project_id"
	    " LEFT JOIN repo_status_stored s ON s.id = g.project_id WHERE g.id = $1",
	    &p, &o);
	if (st == CORE_OK) {
		jsonx_int64(o, "source_project_id", &b->source_project_id);
		jsonx_int64(o, "pipeline_id", &b->pipeline_id);
		copy_str(o, "head_sha", b->head_sha, sizeof(b->head_sha));
		copy_str(o, "status_ref", b->status_ref, sizeof(b->status_ref));
		copy_str(o, "verdict", b->verdict, sizeof(b->verdict));
		copy_str(o, "posted", b->posted, sizeof(b->posted));
		copy_str(o, "state", b->state, sizeof(b->state));
		jsonx_bool(o, "newest", &b->newest);
		jsonx_bool(o, "claimed", &b->claimed);
		jsonx_bool(o, "gated", &b->gated);
		copy_str(o, "target", b->target, sizeof(b->target));
	}
	json_object_put(o);
	return st;
}

/* Why the run cannot be bypassed, or NULL when it can. */
static const char *refusal(const struct bypass_run *b)
{
	if (strcmp(b->verdict, "bypassed") == 0)
		return "this gate run is bypassed already";
	if (strcmp(b->state, "done") != 0)
		return "this gate run has not finished: wait for its verdict";
	if (!b->newest)
		return "a newer run of this merge request is its gate now (a newer push, or the repository gated "
		       "again): "
		       "bypass its newest run instead";
	if (b->claimed)
		return "this gate run is being bypassed by another request";
	if (strcmp(b->posted, "failed") != 0)
		return "only a failed gate can be bypassed: this run did not post a failed status";
	if (!b->gated)
		return "the repository is no longer gated by mrgate (gating turned off or unmanaged): its open merge "
		       "requests got a final \"gate removed\" status, and there is nothing to bypass";
	return NULL;
}

/* "bypassed by NAME: reason", cut at a character boundary to GitLab's limit. */
static void describe(const char *actor, const char *reason, char *out, size_t cap)
{
	char full[FINDINGS_DESCRIPTION_MAX * 2 + 300];
	int n = snprintf(full, sizeof(full), "bypassed by %s: %s", actor, reason);
	size_t len = n < 0 ? 0 : (size_t)n >= sizeof(full) ? sizeof(full) - 1 : (size_t)n;
	size_t keep =
	    findings_utf8_cut(full, len, cap - 1 < FINDINGS_DESCRIPTION_MAX ? cap - 1 : FINDINGS_DESCRIPTION_MAX);
	memcpy(out, full, keep);
	out[keep] = '\0';
}

struct record_args {
	const struct gate_bypass_req *req;
	const char *description, *target, *claim;
};

/* In one transaction: the verdict, if the run is still bypassable, and the audit entry. */
static enum core_status record_tx(struct store_conn *c, void *user)
{
	const struct record_args *a = user;
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, a->req->run_id);
	store_param_str(&p, a->req->actor);
	store_param_str(&p, a->req->reason);
	store_param_str(&p, a->description);
	store_param_str(&p, a->claim);
	enum core_status st = store_run(
	    c,
	    "UPDATE gate_runs g SET verdict = 'bypassed', status_posted = 'success', description = $4,"
	    " bypassed_by = $2, bypass_reason = $3, bypassed_at = now(), lease_owner = NULL,"
	    " lease_until = NULL WHERE g.id = $1 AND g.lease_owner = $5 AND" BYPASSABLE " RETURNING g.verdict",
	    &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ESTATE; /* a newer push arrived (or the claim expired and another bypass took it) */
	PQclear(r);
	if (st != CORE_OK)
		return st;
	struct json_object *after = jx_object(), *before = jx_object();
	json_object_object_add(after, "verdict", jx_str("bypassed"));
	json_object_object_add(after, "reason", jx_str(a->req->reason));
	json_object_object_add(before, "verdict", jx_str("failed"));
	st = audit_write(c, a->req->actor, "gate.bypass", a->target, before, after, a->req->audit_details);
	json_object_put(before);
	json_object_put(after);
	return st;
}

/* The run's stored findings (kept apart: those an ignore matched, with its reason) as lists for the note. */
static void stored_findings(const PGresult *r, struct finding_list *found, struct finding_list *ignored,
                            const char **reasons)
{
	for (int i = 0; i < PQntuples(r); i++) {
		enum severity sev;
		if (severity_parse(store_str(r, i, "severity"), &sev) != CORE_OK)
			continue;
		struct finding f = finding_make(store_str(r, i, "scan_type"), store_str(r, i, "rule_id"),
		                                store_str(r, i, "title"), sev, store_str(r, i, "path"),
		                                (long)store_i64(r, i, "line", 0), store_str(r, i, "excerpt"));
		snprintf(f.fingerprint, sizeof(f.fingerprint), "%s", store_str(r, i, "fingerprint"));
		const char *why = store_str(r, i, "ignore_reason");
		if (why && finding_list_append(ignored, &f) == CORE_OK)
			reasons[ignored->count - 1] = why;
		else if (!why)
			finding_list_append(found, &f);
	}
}

/* One statement about one gate run, its id as $1 (the result, when any, is the caller's: PQclear). */
static enum core_status on_run(struct store *db, const char *sql, int64_t run_id, PGresult **res_out)
{
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	return store_run1(db, sql, &p, res_out);
}

/* The MR's sticky note, when the run wrote one, says the run is bypassed (edited in place; never created here). */
static void refresh_note(struct store *db, struct gitlab *gl, int64_t run_id, const char *description, const char *url)
{
	PGresult *run = NULL, *rows = NULL;
	if (on_run(
	        db,
	        "SELECT g.project_id, g.mr_iid, g.head_sha, g.notes::text AS notes, coalesce(g.note_id, 0) AS note_id,"
	        " g.bypassed_by, g.bypass_reason"
	        " FROM gate_runs g WHERE g.id = $1",
	        run_id, &run) != CORE_OK ||
	    PQntuples(run) == 0 || store_i64(run, 0, "note_id", 0) <= 0 ||
	    on_run(db,
	           "SELECT scan_type, rule_id, title, severity, path, line, coalesce(excerpt, '') AS excerpt,"
	           " fingerprint, ignore_reason FROM gate_findings WHERE run_id = $1 ORDER BY id",
	           run_id, &rows) != CORE_OK) {
		PQclear(run);
		return;
	}
	struct finding_list *found = finding_list_new(), *ignored = finding_list_new();
	const char **reasons = xcalloc((size_t)PQntuples(rows) + 1, sizeof(*reasons));
	stored_findings(rows, found, ignored, reasons);
	struct json_object *notes = NULL;
	const char *note_text[GATE_MAX_NOTES];
	size_t n_notes = 0;
	if (jsonx_parse(store_str(run, 0, "notes"), strlen(store_str(run, 0, "notes")), &notes) == CORE_OK)
		for (size_t i = 0; i < json_object_array_length(notes) && n_notes < GATE_MAX_NOTES; i++)
			note_text[n_notes++] = json_object_get_string(json_object_array_get_idx(notes, i));
	struct gate_report rep = {.state = "success",
	                          .description = description,
	                          .head_sha = store_str(run, 0, "head_sha"),
	                          .report_url = url,
	                          .findings = found,
	                          .ignored = ignored,
	                          .ignore_reasons = reasons,
	                          .notes = note_text,
	                          .n_notes = n_notes,
	                          .bypassed_by = store_str(run, 0, "bypassed_by"),
	                          .bypass_reason = store_str(run, 0, "bypass_reason")};
	char *text = gate_note_render(&rep), path[200];
	struct json_object *body = jx_object();
	json_object_object_add(body, "body", jx_str(text));
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/notes/%lld",
	         (long long)store_i64(run, 0, "project_id", 0), (long long)store_i64(run, 0, "mr_iid", 0),
	         (long long)store_i64(run, 0, "note_id", 0));
	struct gitlab_response *resp = NULL;
	enum core_status st = gitlab_request(gl, "PUT", path, body, &resp);
	if (st != CORE_OK)
		log_warn("gate run %lld: bypassed, but its note could not be edited: %s", (long long)run_id,
		         gate_status_why(resp, st));
	gitlab_response_free(resp);
	json_object_put(body);
	json_object_put(notes);
	free(text);
	free(reasons);
	finding_list_free(found);
	finding_list_free(ignored);
	PQclear(rows);
	PQclear(run);
}

/* Claim the run for this bypass (its own short statement); claim_out the token, "" when another holds it or the
 * run is no longer bypassable. */
static enum core_status claim(struct store *db, int64_t run_id, char *claim_out, size_t cap)
{
	PGresult *r = NULL;
	claim_out[0] = '\0';
	enum core_status st = on_run(db,
	                             "UPDATE gate_runs g SET lease_owner = 'bypass ' || gen_random_uuid(),"
	                             " lease_until = now() + " CLAIM_LIFETIME " WHERE g.id = $1 AND NOT " CLAIMED
	                             " AND" BYPASSABLE " RETURNING g.lease_owner",
	                             run_id, &r);
	if (st == CORE_OK && PQntuples(r) == 1)
		snprintf(claim_out, cap, "%s", store_str(r, 0, "lease_owner"));
	PQclear(r);
	return st;
}

/* Give the claim back (GitLab refused, or the record failed): the run can be bypassed again at once. */
static void release(struct store *db, int64_t run_id, const char *token)
{
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	store_param_str(&p, token);
	store_run1(db, "UPDATE gate_runs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
	           &p, NULL);
}

/* Why the claim was not had: the run as it is now says (another bypass holds or finished it, a newer push). */
static enum core_status claim_refused(struct store *db, int64_t run_id, char *msg, size_t cap)
{
	struct bypass_run b;
	memset(&b, 0, sizeof(b));
	enum core_status st = load(db, run_id, &b);
	const char *no = st == CORE_OK ? refusal(&b) : NULL;
	snprintf(msg, cap, "%s", no ? no : "this gate run is being bypassed by another request");
	return st == CORE_OK || st == CORE_ENOTFOUND ? CORE_ESTATE : st;
}

enum core_status gate_bypass(struct store *db, struct gitlab *gl, const struct gate_bypass_req *req, char *msg,
                             size_t cap)
{
	msg[0] = '\0';
	if (!gate_bypass_reason_ok(req->reason, msg, cap))
		return CORE_EINVAL;
	struct bypass_run b;
	memset(&b, 0, sizeof(b));
	enum core_status st = load(db, req->run_id, &b);
	if (st == CORE_ENOTFOUND) {
		snprintf(msg, cap, "no gate run %lld", (long long)req->run_id);
		return st;
	}
	if (st != CORE_OK) {
		snprintf(msg, cap, "could not read gate run %lld", (long long)req->run_id);
		return st;
	}
	const char *no = refusal(&b);
	if (no) {
		snprintf(msg, cap, "%s", no);
		return CORE_ESTATE;
	}
	char description[FINDINGS_DESCRIPTION_MAX + 1], url[600] = "", token[CLAIM_TOKEN_MAX];
	st = claim(db, req->run_id, token, sizeof(token));
	if (st != CORE_OK) {
		snprintf(msg, cap, "could not claim gate run %lld", (long long)req->run_id);
		return st;
	}
	if (!token[0])
		return claim_refused(db, req->run_id, msg, cap);
	describe(req->actor, req->reason, description, sizeof(description));
	if (req->public_url && req->public_url[0] && strlen(req->public_url) < 500)
		snprintf(url, sizeof(url), "%s/#/gates/%lld", req->public_url, (long long)req->run_id);
	/* The run's own pipeline first, then (when GitLab says it is gone or elsewhere) its branch, as the run does. */
	struct gitlab_response *resp = NULL;
	struct gate_status s = {.state = "success",
	                        .description = description,
	                        .ref = b.status_ref,
	                        .target_url = url,
	                        .pipeline_id = b.pipeline_id};
	st = gate_status_post(gl, b.source_project_id, b.head_sha, &s, GATE_STATUS_TRIES, &resp);
	if (st == CORE_ENOTFOUND && b.pipeline_id) {
		gitlab_response_free(resp);
		resp = NULL;
		s.pipeline_id = 0;
		st = gate_status_post(gl, b.source_project_id, b.head_sha, &s, GATE_STATUS_TRIES, &resp);
	}
	if (st != CORE_OK) {
		snprintf(msg, cap, "GitLab did not take the success status on %.12s: %.300s", b.head_sha,
		         gate_status_why(resp, st));
		gitlab_response_free(resp);
		release(db, req->run_id, token);
		return CORE_EUPSTREAM; /* GitLab refused (whatever its status: our caller's role is not the question) */
	}
	gitlab_response_free(resp);
	struct record_args ra = {.req = req, .description = description, .target = b.target, .claim = token};
	st = store_tx(db, record_tx, &ra);
	if (st != CORE_OK)
		release(db, req->run_id, token);
	if (st == CORE_ESTATE)
		snprintf(msg, cap, "a newer run of this merge request started while bypassing: bypass its newest run");
	else if (st != CORE_OK)
		snprintf(msg, cap, "GitLab shows the bypass but it could not be recorded: bypass again to record it");
	else { /* the pipelines the run's verdict was held in, and the sticky note, follow (errors are logged) */
		gatehold_sync_run(db, gl, req->public_url, req->run_id, s.pipeline_id, b.status_ref);
		refresh_note(db, gl, req->run_id, description, url);
	}
	return st;
}

bool gate_bypass_carry(struct store *db, int64_t run_id, char *description_out, size_t cap)
{
	PGresult *r = NULL;
	enum core_status st = on_run(
	    db,
	    "UPDATE gate_runs g SET verdict = 'bypassed', bypassed_by = b.bypassed_by, bypass_reason = b.bypass_reason,"
	    " bypassed_at = b.bypassed_at, description = b.description"
	    " FROM (SELECT p.bypassed_by, p.bypass_reason, p.bypassed_at, p.description, p.project_id, p.mr_iid,"
	    "   p.head_sha FROM gate_runs p, gate_runs me WHERE me.id = $1 AND p.project_id = me.project_id"
	    "   AND p.mr_iid = me.mr_iid AND p.head_sha = me.head_sha AND p.verdict = 'bypassed' AND p.id <> me.id"
	    "   ORDER BY p.id DESC LIMIT 1) b"
	    " WHERE g.id = $1 AND g.verdict IN ('failed', 'error', 'timeout') RETURNING g.description",
	    run_id, &r);
	bool carried = st == CORE_OK && PQntuples(r) > 0;
	if (carried)
		snprintf(description_out, cap, "%s", store_str(r, 0, "description"));
	PQclear(r);
	return carried;
}
