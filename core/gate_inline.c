/*
 * core/gate_inline.c
 *    Findings as discussions on their lines (see gate_inline.h).
 */
#include "gate_inline.h"

#include "buf.h"
#include "connection.h"
#include "gate_report.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- pure: the plan and the body -------------------------------------------------------------------------------- */

static bool fingerprint_ok(const char *fp)
{
	return strspn(fp, "0123456789abcdef") == FINDING_FINGERPRINT_LEN && fp[FINDING_FINGERPRINT_LEN] == '\0';
}

bool gate_inline_placeable(const struct finding *f)
{
	return f && f->path && *f->path && f->line >= 1 && fingerprint_ok(f->fingerprint);
}

static const struct gate_inline_record *record_of(const struct gate_inline_record *recs, size_t n, const char *fp)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(recs[i].fingerprint, fp) == 0)
			return &recs[i];
	return NULL;
}

/* Is fp the fingerprint of a finding before position k of the order idx? */
static bool seen_before(const struct finding_list *l, const size_t *idx, size_t k, const char *fp)
{
	for (size_t j = 0; j < k; j++)
		if (strcmp(l->items[idx[j]].fingerprint, fp) == 0)
			return true;
	return false;
}

void gate_inline_plan(const struct finding_list *findings, const struct gate_inline_record *recs, size_t n_recs,
                      size_t max, struct gate_inline_plan *out)
{
	memset(out, 0, sizeof(*out));
	size_t n = findings ? findings->count : 0, on_line = 0;
	out->action = xcalloc(n + 1, sizeof(*out->action));
	out->resolve = xcalloc(n_recs + 1, sizeof(*out->resolve));
	size_t *idx = gate_report_order(findings);
	/* 1. findings that already have their discussion keep it (reopened when mrgate had resolved it) */
	for (size_t k = 0; k < n; k++) {
		const struct finding *f = &findings->items[idx[k]];
		const struct gate_inline_record *rec = record_of(recs, n_recs, f->fingerprint);
		if (!rec || seen_before(findings, idx, k, f->fingerprint))
			continue;
		out->action[idx[k]] =
		    rec->resolved && rec->resolved_by_gate && max > 0 ? GATE_INLINE_REOPEN : GATE_INLINE_KEEP;
		on_line++;
	}
	/* 2. new findings, most severe first, while there is room */
	for (size_t k = 0; k < n && on_line < max; k++) {
		const struct finding *f = &findings->items[idx[k]];
		if (out->action[idx[k]] != GATE_INLINE_NOTE || !gate_inline_placeable(f) ||
		    record_of(recs, n_recs, f->fingerprint) || seen_before(findings, idx, k, f->fingerprint))
			continue;
		out->action[idx[k]] = GATE_INLINE_POST;
		on_line++;
	}
	/* 3. open discussions whose finding is gone */
	for (size_t i = 0; i < n_recs; i++) {
		bool present = false;
		for (size_t k = 0; k < n && !present; k++)
			present = strcmp(findings->items[k].fingerprint, recs[i].fingerprint) == 0;
		if (!present && !recs[i].resolved)
			out->resolve[out->n_resolve++] = i;
	}
	free(idx);
}

void gate_inline_plan_clear(struct gate_inline_plan *p)
{
	free(p->action);
	free(p->resolve);
	memset(p, 0, sizeof(*p));
}

char *gate_inline_body(const struct finding *f, const char *report_url)
{
	struct buf b = {0};
	char title[1200], rule[400], excerpt[1200], path[1200];
	gate_md_cell(f->title, title, sizeof(title), 300);
	gate_md_cell(f->rule_id, rule, sizeof(rule), 80);
	gate_md_cell(f->path, path, sizeof(path), 200);
	buf_printf(&b, "%s%s -->\n**:warning: mrgate: %s %s finding** `%s`\n\n`%s`\n", GATE_INLINE_MARKER,
	           f->fingerprint, severity_name(f->severity), f->scan_type, rule, title);
	if (f->excerpt && *f->excerpt) {
		gate_md_cell(f->excerpt, excerpt, sizeof(excerpt), 160);
		buf_printf(&b, "\n`%s`\n", excerpt);
	}
	buf_printf(&b, "\nTo ignore it: comment `/mrgate ignore %s <reason>`\n", f->fingerprint);
	buf_printf(&b, "\n<sub>`%s:%ld` · fingerprint `%s`", path, f->line, f->fingerprint);
	if (report_url && *report_url)
		buf_printf(&b, " · [full report](%s)", report_url);
	buf_puts(&b, " · mrgate resolves this thread when a push removes the finding.</sub>\n");
	char *body = gate_note_guard(buf_str(&b));
	buf_free(&b);
	return body;
}

/* --- GitLab and the table ---------------------------------------------------------------------------------------- */

struct sync {
	struct store_conn *c;
	struct gitlab *gl;
	const struct gate_inline_target *t;
	char base_sha[72], start_sha[72], head_sha[72];
	struct gate_inline_record *recs;
	size_t n_recs, cap_recs;
	int64_t bot_user_id; /* mrgate's GitLab user: only its discussions are adopted */
};

static bool sha_ok(const char *s)
{
	size_t n = s ? strspn(s, "0123456789abcdef") : 0;
	return n >= 7 && n <= 64 && s[n] == '\0';
}

/* The MR's diff_refs, only while its head is still the run's. */
static enum core_status read_diff_refs(struct sync *s)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	const char *base = NULL, *start = NULL, *head = NULL;
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld", (long long)s->t->project_id,
	         (long long)s->t->mr_iid);
	enum core_status st = gitlab_request(s->gl, "GET", path, NULL, &resp);
	if (st == CORE_OK && (!jsonx_path_str(resp->json, "diff_refs.base_sha", &base) || !sha_ok(base) ||
	                      !jsonx_path_str(resp->json, "diff_refs.start_sha", &start) || !sha_ok(start) ||
	                      !jsonx_path_str(resp->json, "diff_refs.head_sha", &head) || !sha_ok(head)))
		st = CORE_EUPSTREAM;
	else if (st == CORE_OK && strcmp(head, s->t->head_sha) != 0)
		st = CORE_ESTATE;
	if (st == CORE_OK) {
		snprintf(s->base_sha, sizeof(s->base_sha), "%s", base);
		snprintf(s->start_sha, sizeof(s->start_sha), "%s", start);
		snprintf(s->head_sha, sizeof(s->head_sha), "%s", head);
	} else {
		log_warn("gate run %lld: no inline comments: %s", (long long)s->t->run_id,
		         st == CORE_ESTATE          ? "the merge request has a newer head"
		         : resp && resp->message[0] ? resp->message
		                                    : "the merge request has no complete diff_refs");
	}
	gitlab_response_free(resp);
	return st;
}

static enum core_status load_records(struct sync *s)
{
	struct store_params p = {0};
	PGresult *res = NULL;
	store_param_i64(&p, s->t->project_id);
	store_param_i64(&p, s->t->mr_iid);
	enum core_status st =
	    store_run(s->c,
	              "SELECT fingerprint, discussion_id, resolved, resolved_by_gate FROM gate_discussions"
	              " WHERE project_id = $1 AND mr_iid = $2",
	              &p, &res);
	if (st == CORE_OK) {
		int n = PQntuples(res);
		s->cap_recs = (size_t)n + 1;
		s->recs = xcalloc(s->cap_recs, sizeof(*s->recs));
		for (int i = 0; i < n; i++) {
			struct gate_inline_record *r = &s->recs[s->n_recs];
			snprintf(r->fingerprint, sizeof(r->fingerprint), "%s", store_str(res, i, "fingerprint"));
			snprintf(r->discussion_id, sizeof(r->discussion_id), "%s", store_str(res, i, "discussion_id"));
			r->resolved = store_bool(res, i, "resolved", false);
			r->resolved_by_gate = store_bool(res, i, "resolved_by_gate", false);
			s->n_recs++;
		}
	}
	PQclear(res);
	return st;
}

/* Record (or re-record) a discussion, at once: a crash after this posts nothing twice. */
static void store_record(struct sync *s, const char *fingerprint, const char *discussion_id, const char *path,
                         int64_t line, bool resolved)
{
	struct store_params p = {0};
	store_param_i64(&p, s->t->project_id);
	store_param_i64(&p, s->t->mr_iid);
	store_param_str(&p, fingerprint);
	store_param_str(&p, discussion_id);
	store_param_str(&p, path);
	store_param_i64(&p, line);
	store_param_bool(&p, resolved);
	store_run(s->c,
	          "INSERT INTO gate_discussions (project_id, mr_iid, fingerprint, discussion_id, path, line, resolved)"
	          " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project_id, mr_iid, fingerprint) DO UPDATE SET"
	          " discussion_id = EXCLUDED.discussion_id, path = EXCLUDED.path, line = EXCLUDED.line,"
	          " resolved = EXCLUDED.resolved, resolved_by_gate = false, updated_at = now()",
	          &p, NULL);
}

/* A record's new state; gone: the discussion no longer exists on GitLab (the row is dropped). */
static void store_state(struct sync *s, const char *fingerprint, bool resolved, bool gone)
{
	struct store_params p = {0};
	store_param_i64(&p, s->t->project_id);
	store_param_i64(&p, s->t->mr_iid);
	store_param_str(&p, fingerprint);
	if (gone) {
		store_run(s->c,
		          "DELETE FROM gate_discussions WHERE project_id = $1 AND mr_iid = $2 AND fingerprint = $3", &p,
		          NULL);
		return;
	}
	store_param_bool(&p, resolved);
	store_run(s->c,
	          "UPDATE gate_discussions SET resolved = $4, resolved_by_gate = $4, updated_at = now()"
	          " WHERE project_id = $1 AND mr_iid = $2 AND fingerprint = $3",
	          &p, NULL);
}

static const struct gate_inline_record *find_record(const struct sync *s, const char *fingerprint)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (strcmp(s->recs[i].fingerprint, fingerprint) == 0)
			return &s->recs[i];
	return NULL;
}

/*
 * One of the MR's discussions: when its first note starts with the marker of a fingerprint the table does not know
 * (a run that died between GitLab's answer and the table, or an answer lost on the way), record it as found.
 */
static enum core_status adopt_item(struct json_object *d, void *user)
{
	struct sync *s = user;
	struct json_object *notes = NULL, *first = NULL;
	const char *id = NULL, *body = NULL, *path = "";
	char fp[FINDING_FINGERPRINT_LEN + 1];
	size_t m = strlen(GATE_INLINE_MARKER);
	int64_t line = 0;
	bool resolved = false;
	if (!jsonx_str(d, "id", &id) || !gitlab_discussion_id_ok(id) || !jsonx_array(d, "notes", &notes) ||
	    json_object_array_length(notes) == 0)
		return CORE_OK;
	first = json_object_array_get_idx(notes, 0);
	int64_t author = 0; /* anyone can write a marker; only mrgate's own notes are its discussions */
	if (!jsonx_path_int64(first, "author.id", &author) || author != s->bot_user_id ||
	    !jsonx_str(first, "body", &body) || strncmp(body, GATE_INLINE_MARKER, m) != 0 ||
	    strlen(body) < m + FINDING_FINGERPRINT_LEN + 4 ||
	    strncmp(body + m + FINDING_FINGERPRINT_LEN, " -->", 4) != 0)
		return CORE_OK;
	memcpy(fp, body + m, FINDING_FINGERPRINT_LEN);
	fp[FINDING_FINGERPRINT_LEN] = '\0';
	if (!fingerprint_ok(fp) || find_record(s, fp))
		return CORE_OK;
	jsonx_bool(first, "resolved", &resolved);
	jsonx_path_str(first, "position.new_path", &path);
	jsonx_path_int64(first, "position.new_line", &line);
	if (s->n_recs + 1 >= s->cap_recs) {
		s->cap_recs = s->cap_recs * 2 + 8;
		s->recs = xrealloc(s->recs, s->cap_recs * sizeof(*s->recs));
	}
	struct gate_inline_record *r = &s->recs[s->n_recs++];
	memset(r, 0, sizeof(*r));
	snprintf(r->fingerprint, sizeof(r->fingerprint), "%s", fp);
	snprintf(r->discussion_id, sizeof(r->discussion_id), "%s", id);
	r->resolved = resolved; /* resolved by whom is not known: left as it is */
	store_record(s, fp, id, path ? path : "", line, resolved);
	return CORE_OK;
}

/* Adopt every discussion of ours the table misses. false when the MR's discussions could not be read. */
static bool adopt(struct sync *s)
{
	struct gitlab_response *err = NULL;
	enum core_status st = gitlab_mr_discussions_each(s->gl, s->t->project_id, s->t->mr_iid, adopt_item, s, &err);
	if (st != CORE_OK)
		log_warn("gate run %lld: could not read the merge request's discussions: %s", (long long)s->t->run_id,
		         err ? err->message : "no answer");
	gitlab_response_free(err);
	return st == CORE_OK;
}

static struct json_object *position_body(const struct sync *s, const struct finding *f)
{
	/* an added line: new_line only; old_path is required and, without renames, the same path */
	const char *const keys[] = {"position_type", "base_sha", "start_sha", "head_sha", "old_path", "new_path"};
	const char *const values[] = {"text", s->base_sha, s->start_sha, s->head_sha, f->path, f->path};
	struct json_object *o = jx_object(), *pos = jx_object();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_object_object_add(pos, keys[i], jx_str(values[i]));
	json_object_object_add(pos, "new_line", jx_int(f->line));
	char *text = gate_inline_body(f, s->t->report_url);
	json_object_object_add(o, "body", jx_str(text));
	free(text);
	json_object_object_add(o, "position", pos);
	return o;
}

/* Open finding f's discussion. true when it is on its line (posted now, or found after an unanswered POST). */
static bool post_one(struct sync *s, const struct finding *f)
{
	char id[65] = "";
	struct gitlab_response *resp = NULL;
	struct json_object *body = position_body(s, f);
	enum core_status st = gitlab_mr_discussion_create(s->gl, s->t->project_id, s->t->mr_iid, body, id, &resp);
	json_object_put(body);
	if (st != CORE_OK && resp && resp->kind == GITLAB_ERR_MAYBE_APPLIED && adopt(s) &&
	    find_record(s, f->fingerprint)) {
		gitlab_response_free(resp); /* it reached GitLab after all: adopted (and recorded) */
		return true;
	}
	if (st == CORE_OK)
		store_record(s, f->fingerprint, id, f->path, f->line, false);
	else
		log_warn("gate run %lld: could not comment on %.200s:%ld (listed in the note instead): %s",
		         (long long)s->t->run_id, f->path, f->line, resp ? resp->message : "no answer");
	gitlab_response_free(resp);
	return st == CORE_OK;
}

/* Resolve or reopen a record's discussion. true when GitLab took it. */
static bool set_resolved(struct sync *s, const struct gate_inline_record *rec, bool resolved)
{
	struct gitlab_response *resp = NULL;
	enum core_status st =
	    gitlab_mr_discussion_resolve(s->gl, s->t->project_id, s->t->mr_iid, rec->discussion_id, resolved, &resp);
	if (st == CORE_OK || st == CORE_ENOTFOUND)
		store_state(s, rec->fingerprint, resolved, st == CORE_ENOTFOUND);
	else
		log_warn("gate run %lld: could not %s discussion %s: %s", (long long)s->t->run_id,
		         resolved ? "resolve" : "reopen", rec->discussion_id,
		         resp ? resp->message : "bad discussion id");
	gitlab_response_free(resp);
	return st == CORE_OK;
}

/* The plan carried out; shown[i] true for findings on their lines. */
static void carry_out(struct sync *s, const struct finding_list *findings, const struct gate_inline_plan *plan,
                      bool *shown)
{
	for (size_t k = 0; k < plan->n_resolve; k++)
		set_resolved(s, &s->recs[plan->resolve[k]], true);
	for (size_t i = 0; i < findings->count; i++) {
		const struct finding *f = &findings->items[i];
		switch (plan->action[i]) {
		case GATE_INLINE_KEEP: shown[i] = true; break;
		case GATE_INLINE_REOPEN:
			for (size_t k = 0; k < s->n_recs; k++)
				if (strcmp(s->recs[k].fingerprint, f->fingerprint) == 0)
					shown[i] = set_resolved(s, &s->recs[k], false);
			break;
		case GATE_INLINE_POST: shown[i] = post_one(s, f); break;
		case GATE_INLINE_NOTE: break;
		}
	}
}

/* Has the MR an open thread of mrgate's? (one query; true on a failure to read: sync then decides) */
static bool any_open(struct store *db, const struct gate_inline_target *t)
{
	struct store_params p = {0};
	PGresult *res = NULL;
	bool open = true;
	store_param_i64(&p, t->project_id);
	store_param_i64(&p, t->mr_iid);
	if (store_run1(db,
	               "SELECT EXISTS (SELECT 1 FROM gate_discussions WHERE project_id = $1 AND mr_iid = $2"
	               " AND NOT resolved) AS open",
	               &p, &res) == CORE_OK &&
	    PQntuples(res) == 1)
		open = store_bool(res, 0, "open", true);
	PQclear(res);
	return open;
}

static bool plan_posts(const struct gate_inline_plan *plan, const struct finding_list *findings)
{
	for (size_t i = 0; findings && i < findings->count; i++)
		if (plan->action[i] == GATE_INLINE_POST)
			return true;
	return false;
}

bool *gate_inline_sync(struct store *db, struct gitlab *gl, const struct gate_inline_target *t,
                       const struct finding_list *findings)
{
	struct sync s = {.gl = gl, .t = t};
	struct store_params p = {0};
	struct gate_inline_plan plan = {0};
	bool locked = false, any = false;
	bool *shown = NULL;
	if (!t->post && !any_open(db, t))
		return NULL; /* not in inline mode, and no thread of mrgate's to resolve */
	struct connection_info ci = {0};
	if (connection_get(db, &ci) == CORE_OK)
		s.bot_user_id = ci.user_id;
	connection_info_clear(&ci);
	if (!t->head_sha || read_diff_refs(&s) != CORE_OK || store_get(db, &s.c) != CORE_OK)
		return NULL;
	/* one run of an MR at a time: a session lock on this connection, released below (or with the session) */
	store_param_i64(&p, t->project_id);
	store_param_i64(&p, t->mr_iid);
	if (store_run(s.c, "SELECT pg_advisory_lock(hashtextextended('mrgate.gate_inline:' || $1 || ':' || $2, 0))", &p,
	              NULL) != CORE_OK)
		goto out;
	locked = true;
	if (load_records(&s) != CORE_OK) /* without them every finding would be posted again */
		goto out;
	gate_inline_plan(findings, s.recs, s.n_recs, t->post ? GATE_INLINE_MAX : 0, &plan);
	if (plan_posts(&plan, findings)) {
		/* something new to post: first adopt what an earlier run posted without recording it */
		size_t known = s.n_recs;
		if (!adopt(&s))
			goto out; /* GitLab is not answering: post nothing rather than twice */
		if (s.n_recs > known) {
			gate_inline_plan_clear(&plan);
			gate_inline_plan(findings, s.recs, s.n_recs, t->post ? GATE_INLINE_MAX : 0, &plan);
		}
	}
	shown = xcalloc((findings ? findings->count : 0) + 1, sizeof(bool));
	if (findings)
		carry_out(&s, findings, &plan, shown);
	for (size_t i = 0; findings && i < findings->count; i++)
		any = any || shown[i];
out:
	if (locked)
		store_run(s.c,
		          "SELECT pg_advisory_unlock(hashtextextended('mrgate.gate_inline:' || $1 || ':' || $2, 0))",
		          &p, NULL);
	store_put(db, s.c);
	gate_inline_plan_clear(&plan);
	free(s.recs);
	if (!any || !t->post) {
		free(shown);
		shown = NULL;
	}
	return shown;
}
