/*
 * core/gate.c
 *    The merge-request gate: config adapter, queue, workers, one run, reports and reads (see gate.h).
 */
#include "gate.h"

#include "diff.h"
#include "gateconfig.h"
#include "gatehold.h"
#include "gitlab.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "pathglob.h"
#include "scan_sarif.h"
#include "scan_secrets.h"
#include "scanrun.h"
#include "settings.h"
#include "treediff.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const gate_scan_names[GATE_SCAN_COUNT] = {"secrets", "sast", "dependencies", "iac", "license", "malware"};

#define LEASE_MARGIN_S      120
#define MAX_STORED_FINDINGS 5000
#define MAX_NOTES           16

/* --- config adapter ----------------------------------------------------------------------------------------- */

void gate_config_clear(struct gate_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_ignore; i++)
		free(c->ignore_paths[i]);
	free(c->ignore_paths);
	c->ignore_paths = NULL;
	c->n_ignore = 0;
}

enum core_status gate_config_from_json(const struct json_object *eff, bool unmanaged, struct gate_config *out)
{
	gate_config_clear(out);
	memset(out, 0, sizeof(*out));
	out->fail_on = FAIL_ON_HIGH;
	out->comment = GATE_COMMENT_ON_FINDINGS;
	if (!eff || !json_object_is_type((struct json_object *)eff, json_type_object))
		return CORE_EINVAL;
	bool enabled = false;
	jsonx_bool(eff, "enabled", &enabled);
	const char *s = NULL;
	if (jsonx_str(eff, "fail_on", &s) && fail_on_parse(s, &out->fail_on) != CORE_OK)
		return CORE_EINVAL;
	if (jsonx_str(eff, "comment", &s)) {
		if (strcmp(s, "off") == 0)
			out->comment = GATE_COMMENT_OFF;
		else if (strcmp(s, "always") == 0)
			out->comment = GATE_COMMENT_ALWAYS;
		else if (strcmp(s, "on_findings") == 0)
			out->comment = GATE_COMMENT_ON_FINDINGS;
		else
			return CORE_EINVAL;
	}
	struct json_object *arr = NULL;
	if (jsonx_array(eff, "scans", &arr)) {
		size_t n = json_object_array_length(arr);
		for (size_t i = 0; i < n; i++) {
			const char *name = NULL;
			if (!jsonx_as_str(json_object_array_get_idx(arr, i), &name))
				return CORE_EINVAL;
			for (int k = 0; k < GATE_SCAN_COUNT; k++)
				if (strcmp(name, gate_scan_names[k]) == 0)
					out->scans[k] = true;
		}
	} else {
		out->scans[GATE_SCAN_SECRETS] = true;
	}
	if (jsonx_array(eff, "ignore_paths", &arr)) {
		size_t n = json_object_array_length(arr);
		out->ignore_paths = calloc(n ? n : 1, sizeof(char *));
		if (!out->ignore_paths)
			return CORE_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			const char *g = NULL;
			if (!jsonx_as_str(json_object_array_get_idx(arr, i), &g))
				return CORE_EINVAL;
			out->ignore_paths[out->n_ignore] = strdup(g);
			if (!out->ignore_paths[out->n_ignore])
				return CORE_ENOMEM;
			out->n_ignore++;
		}
	}
	out->gated = enabled && !unmanaged;
	if (unmanaged)
		snprintf(out->why_not, sizeof(out->why_not), "repo is unmanaged");
	else if (!enabled)
		snprintf(out->why_not, sizeof(out->why_not), "gate is not enabled for this repo");
	return CORE_OK;
}

enum core_status gate_config_load(struct store *db, int64_t repo_id, struct gate_config *out)
{
	struct json_object *o = NULL;
	memset(out, 0, sizeof(*out));
	enum core_status st = gateconfig_get_repo(db, repo_id, &o);
	if (st == CORE_ENOTFOUND) {
		snprintf(out->why_not, sizeof(out->why_not), "project %lld is not a repo mrgate knows (sync the group)",
		         (long long)repo_id);
		return CORE_OK;
	}
	if (st != CORE_OK)
		return st;
	bool unmanaged = false;
	jsonx_bool(o, "unmanaged", &unmanaged);
	st = gate_config_from_json(jsonx_get(o, "effective"), unmanaged, out);
	if (st == CORE_EINVAL) {
		log_error("the effective config of repo %lld cannot be read: not gating it", (long long)repo_id);
		out->gated = false;
		snprintf(out->why_not, sizeof(out->why_not), "the repo's effective config cannot be read");
		st = CORE_OK;
	}
	const char *status = NULL;
	if (st == CORE_OK && out->gated && jsonx_str(o, "status", &status) &&
	    (strcmp(status, "removed") == 0 || strcmp(status, "archived") == 0 ||
	     strcmp(status, "pending_deletion") == 0)) {
		out->gated = false;
		snprintf(out->why_not, sizeof(out->why_not), "repo is %s", status);
	}
	json_object_put(o);
	return st;
}

/* --- queue ------------------------------------------------------------------------------------------------------ */

enum core_status gate_enqueue(struct store_conn *c, const struct gate_mr_event *ev, int64_t event_id,
                              int64_t *run_id_out, bool *coalesced_out)
{
	PGresult *r = NULL;
	char pid[24], spid[24], iid[24], eid[24];
	*run_id_out = 0;
	*coalesced_out = false;
	snprintf(pid, sizeof(pid), "%lld", (long long)ev->project_id);
	snprintf(spid, sizeof(spid), "%lld", (long long)ev->source_project_id);
	snprintf(iid, sizeof(iid), "%lld", (long long)ev->mr_iid);
	snprintf(eid, sizeof(eid), "%lld", (long long)event_id);
	const char *p[] = {pid, iid, ev->head_sha};
	enum core_status st =
	    store_exec(c,
	               "SELECT id FROM gate_runs WHERE project_id = $1 AND mr_iid = $2 AND head_sha = $3"
	               " AND state = 'queued' ORDER BY id DESC LIMIT 1",
	               3, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) > 0) {
		*run_id_out = store_i64(r, 0, "id", 0);
		*coalesced_out = true;
	} else {
		PQclear(r);
		r = NULL;
		const char *pi[] = {pid, spid, iid, ev->head_sha, ev->source_branch, event_id > 0 ? eid : NULL};
		st = store_exec(
		    c,
		    "INSERT INTO gate_runs (project_id, source_project_id, mr_iid, head_sha, source_branch, event_id)"
		    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
		    6, pi, &r);
		if (st != CORE_OK)
			goto out;
		*run_id_out = store_i64(r, 0, "id", 0);
	}
	char rid[24];
	snprintf(rid, sizeof(rid), "%lld", (long long)*run_id_out);
	const char *ps[] = {pid, iid, ev->head_sha, rid};
	st = store_exec(c,
	                "UPDATE gate_runs SET state = 'superseded', superseded_by = $4, finished_at = now(),"
	                " lease_owner = NULL, lease_until = NULL"
	                " WHERE project_id = $1 AND mr_iid = $2 AND head_sha <> $3 AND state IN ('queued', 'running')"
	                " AND id < $4",
	                4, ps, NULL);
	if (st != CORE_OK)
		goto out;
	if (event_id > 0) {
		const char *pe[] = {eid, rid};
		st = store_exec(c, "UPDATE webhook_events SET run_id = $2 WHERE id = $1", 2, pe, NULL);
	}
out:
	PQclear(r);
	return st;
}

/* --- gating starts or stops for a repo (gate.h) ----------------------------------------------------------------- */

static const char *why_of(const struct gitlab_response *resp, enum core_status st);

#define OPEN_MRS_MAX      20000 /* a repo with more open MRs gets the rest gated on their next push */
#define STATUS_POST_TRIES 8

struct open_mr {
	int64_t iid, source_project_id;
	char sha[72];
	char branch[264];
};

struct open_mr_list {
	int64_t project_id;
	struct open_mr *v;
	size_t n, cap;
	int pages;
	bool truncated;
};

static bool sha_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 7 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static enum core_status open_mrs_page(struct json_object *page, void *user)
{
	struct open_mr_list *l = user;
	l->pages++;
	size_t n = json_object_array_length(page);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(page, i);
		const char *sha = NULL, *branch = NULL, *state = NULL;
		int64_t iid = 0, spid = 0;
		/* an MR without a head sha yet (diff still being prepared) is gated by its own webhook later */
		if (!jsonx_int64(e, "iid", &iid) || iid <= 0 || !jsonx_str(e, "sha", &sha) || !sha_ok(sha) ||
		    !jsonx_str(e, "source_branch", &branch) || !*branch || strlen(branch) > 255)
			continue;
		if (jsonx_str(e, "state", &state) && strcmp(state, "opened") != 0)
			continue;
		if (!jsonx_int64(e, "source_project_id", &spid) || spid <= 0)
			spid = l->project_id;
		if (l->n >= OPEN_MRS_MAX) {
			l->truncated = true;
			return CORE_OK;
		}
		if (l->n == l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 32;
			struct open_mr *nv = realloc(l->v, ncap * sizeof(*nv));
			if (!nv)
				return CORE_ENOMEM;
			l->v = nv;
			l->cap = ncap;
		}
		struct open_mr *m = &l->v[l->n++];
		m->iid = iid;
		m->source_project_id = spid;
		snprintf(m->sha, sizeof(m->sha), "%s", sha);
		snprintf(m->branch, sizeof(m->branch), "%s", branch);
	}
	return CORE_OK;
}

static bool transient(const struct gitlab_response *resp)
{
	if (!resp)
		return false;
	switch (resp->kind) {
	case GITLAB_ERR_RATE_LIMITED:
	case GITLAB_ERR_SERVER:
	case GITLAB_ERR_UNREACHABLE:
	case GITLAB_ERR_TIMEOUT:
	case GITLAB_ERR_MAYBE_APPLIED:
	case GITLAB_ERR_CONFLICT: return true;
	default: return false;
	}
}

/* Record a failed GitLab call in out (the first failure wins). */
static void open_mrs_fail(struct gate_open_mrs *out, const char *doing, enum core_status st,
                          const struct gitlab_response *resp)
{
	if (out->error[0])
		return;
	out->retryable = transient(resp);
	/* a long GitLab message is cut: the return value is checked only to say so to the compiler */
	if (snprintf(out->error, sizeof(out->error), "could not %s: %.300s%s", doing, why_of(resp, st),
	             out->retryable ? " (will be retried)" : "") >= (int)sizeof(out->error))
		out->error[sizeof(out->error) - 1] = '\0';
}

/* Every open MR of the repo, into *l. */
static enum core_status list_open_mrs(struct gitlab *gl, int64_t repo_id, struct open_mr_list *l,
                                      struct gate_open_mrs *out)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	l->project_id = repo_id;
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests?state=opened&per_page=100", (long long)repo_id);
	enum core_status st = gitlab_paginate(gl, path, open_mrs_page, l, &resp);
	out->reads += l->pages + (st != CORE_OK && resp ? 1 : 0);
	if (st == CORE_EFORBIDDEN && resp && resp->kind == GITLAB_ERR_FORBIDDEN) {
		/* merge requests are turned off for the project: none can be open */
		log_info("repo %lld: merge requests are not available (%s): no open ones to handle", (long long)repo_id,
		         why_of(resp, st));
		l->n = 0;
		st = CORE_OK;
	} else if (st != CORE_OK)
		open_mrs_fail(out, "list the open merge requests", st, resp);
	else if (l->truncated)
		log_warn("repo %lld has more than %d open merge requests: the rest are gated on their next push",
		         (long long)repo_id, OPEN_MRS_MAX);
	out->open_mrs = (int)l->n;
	gitlab_response_free(resp);
	return st;
}

/* Queue a run for one open MR unless one for its head sha is queued or running. */
static enum core_status enqueue_open_mr(struct store_conn *c, int64_t repo_id, const struct open_mr *m,
                                        bool *queued_out)
{
	PGresult *r = NULL;
	char pid[24], iid[24];
	*queued_out = false;
	snprintf(pid, sizeof(pid), "%lld", (long long)repo_id);
	snprintf(iid, sizeof(iid), "%lld", (long long)m->iid);
	const char *p[] = {pid, iid, m->sha};
	enum core_status st = store_begin(c);
	if (st != CORE_OK)
		goto out;
	/* the receiver's per-MR lock: a webhook for the same MR waits, and superseding sees one order */
	st = store_exec(c, "SELECT pg_advisory_xact_lock(hashtextextended('mrgate-mr:' || $1 || ':' || $2, 0))", 2, p,
	                NULL);
	if (st != CORE_OK)
		goto out;
	st = store_exec(c,
	                "SELECT 1 FROM gate_runs WHERE project_id = $1 AND mr_iid = $2 AND head_sha = $3"
	                " AND state IN ('queued', 'running') LIMIT 1",
	                3, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		struct gate_mr_event ev = {.project_id = repo_id,
		                           .source_project_id = m->source_project_id,
		                           .mr_iid = m->iid,
		                           .head_sha = m->sha,
		                           .source_branch = m->branch};
		int64_t run_id = 0;
		bool coalesced = false;
		st = gate_enqueue(c, &ev, 0, &run_id, &coalesced);
		if (st != CORE_OK)
			goto out;
		*queued_out = !coalesced;
	}
	st = store_commit(c);
out:
	if (st != CORE_OK)
		store_rollback(c);
	PQclear(r);
	return st;
}

enum core_status gate_enqueue_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool dry_run,
                                       struct gate_open_mrs *out)
{
	struct open_mr_list l;
	struct store_conn *c = NULL;
	memset(out, 0, sizeof(*out));
	memset(&l, 0, sizeof(l));
	enum core_status st = list_open_mrs(gl, repo_id, &l, out);
	if (st != CORE_OK)
		goto out;
	if (dry_run) {
		out->queued = (int)l.n;
		goto out;
	}
	if (l.n > 0 && (st = store_get(db, &c)) != CORE_OK)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		bool queued = false;
		if ((st = enqueue_open_mr(c, repo_id, &l.v[i], &queued)) != CORE_OK) {
			snprintf(out->error, sizeof(out->error),
			         "could not queue a gate run for merge request !%lld: %s", (long long)l.v[i].iid,
			         core_status_code(st));
			out->retryable = true;
			goto out;
		}
		if (queued)
			out->queued++;
	}
	if (out->queued > 0) {
		gate_kick();
		log_info("repo %lld is now gated: %d gate run%s queued for its open merge requests", (long long)repo_id,
		         out->queued, out->queued == 1 ? "" : "s");
	}
out:
	store_put(db, c);
	free(l.v);
	return st;
}

/* The refs of one head sha whose latest `mrgate` status still blocks (pending, running, failed). */
struct blocking {
	struct {
		int64_t id;
		char ref[264];
		char state[16];
	} v[16];
	size_t n;
	int pages;
};

static enum core_status statuses_page(struct json_object *page, void *user)
{
	struct blocking *b = user;
	b->pages++;
	size_t n = json_object_array_length(page);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(page, i);
		const char *name = NULL, *ref = NULL, *state = NULL;
		int64_t id = 0;
		if (!jsonx_str(e, "name", &name) || strcmp(name, GATE_STATUS_NAME) != 0 || !jsonx_str(e, "ref", &ref) ||
		    !*ref || strlen(ref) > 255 || !jsonx_str(e, "status", &state) || !jsonx_int64(e, "id", &id))
			continue;
		size_t k = 0;
		while (k < b->n && strcmp(b->v[k].ref, ref) != 0)
			k++;
		if (k == b->n) {
			if (b->n >= sizeof(b->v) / sizeof(b->v[0]))
				continue;
			b->n++;
			b->v[k].id = 0;
			snprintf(b->v[k].ref, sizeof(b->v[k].ref), "%s", ref);
		}
		if (id > b->v[k].id) { /* the newest status per ref is the one that counts */
			b->v[k].id = id;
			snprintf(b->v[k].state, sizeof(b->v[k].state), "%.15s", state);
		}
	}
	return CORE_OK;
}

static bool blocks(const char *state)
{
	return strcmp(state, "failed") == 0 || strcmp(state, "pending") == 0 || strcmp(state, "running") == 0;
}

/* POST the final `success` on sha/ref, retrying GitLab's 409 ("another update in progress"). */
static enum core_status post_removed(struct gitlab *gl, int64_t spid, const char *sha, const char *ref,
                                     struct gate_open_mrs *out)
{
	char path[160];
	enum core_status st = CORE_EINTERNAL;
	snprintf(path, sizeof(path), "/projects/%lld/statuses/%s", (long long)spid, sha);
	out->writes++;
	for (int attempt = 0; attempt < STATUS_POST_TRIES; attempt++) {
		struct json_object *body = json_object_new_object();
		struct gitlab_response *resp = NULL;
		json_object_object_add(body, "state", json_object_new_string("success"));
		json_object_object_add(body, "name", json_object_new_string(GATE_STATUS_NAME));
		json_object_object_add(body, "ref", json_object_new_string(ref));
		json_object_object_add(body, "description", json_object_new_string(GATE_REMOVED_DESCRIPTION));
		st = gitlab_request_ex(gl, "POST", path, body, GITLAB_CALL_IDEMPOTENT, &resp);
		json_object_put(body);
		if (st != CORE_OK && st != CORE_ECONFLICT) {
			char doing[200];
			snprintf(doing, sizeof(doing), "post the final status on %.12s", sha);
			open_mrs_fail(out, doing, st, resp);
		} else if (st == CORE_ECONFLICT && attempt + 1 == STATUS_POST_TRIES) {
			open_mrs_fail(out, "post the final status: GitLab kept answering 409", st, resp);
		}
		gitlab_response_free(resp);
		if (st != CORE_ECONFLICT)
			break;
		usleep((useconds_t)(250000u << (attempt < 4 ? attempt : 4)));
	}
	return st;
}

/* Dry run: does mrgate's record say the last status it posted on this head still blocks? */
static enum core_status recorded_blocking(struct store_conn *c, int64_t repo_id, const struct open_mr *m,
                                          bool *blocking_out)
{
	PGresult *r = NULL;
	char pid[24], iid[24];
	*blocking_out = false;
	snprintf(pid, sizeof(pid), "%lld", (long long)repo_id);
	snprintf(iid, sizeof(iid), "%lld", (long long)m->iid);
	const char *p[] = {pid, iid, m->sha};
	enum core_status st = store_exec(c,
	                                 "SELECT coalesce(status_posted, 'pending') AS s FROM gate_runs"
	                                 " WHERE project_id = $1 AND mr_iid = $2 AND head_sha = $3"
	                                 " AND (pending_posted OR status_posted IS NOT NULL) ORDER BY id DESC LIMIT 1",
	                                 3, p, &r);
	if (st == CORE_OK && PQntuples(r) == 1)
		*blocking_out = strcmp(store_str(r, 0, "s"), "success") != 0;
	PQclear(r);
	return st;
}

enum core_status gate_clear_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool dry_run,
                                     struct gate_open_mrs *out)
{
	struct open_mr_list l;
	struct store_conn *c = NULL;
	struct gitlab_response *resp = NULL;
	struct blocking *b = calloc(1, sizeof(*b));
	char pid[24], path[200];
	enum core_status first = CORE_OK; /* the first failure; the other MRs are still cleared */
	memset(out, 0, sizeof(*out));
	memset(&l, 0, sizeof(l));
	snprintf(pid, sizeof(pid), "%lld", (long long)repo_id);
	enum core_status st = b ? list_open_mrs(gl, repo_id, &l, out) : CORE_ENOMEM;
	/* a database connection only when there is something to do (apply holds one already) */
	if (st != CORE_OK || l.n == 0 || (st = store_get(db, &c)) != CORE_OK)
		goto out;
	if (!dry_run) {
		/* first end the runs in flight, so that none posts a verdict after the final status */
		const char *p[] = {pid, "the gate was removed for this repository"};
		if ((st = store_exec(c,
		                     "UPDATE gate_runs SET state = 'done', verdict = 'skipped', error = $2,"
		                     " finished_at = now(), lease_owner = NULL, lease_until = NULL"
		                     " WHERE project_id = $1 AND state IN ('queued', 'running')",
		                     2, p, NULL)) != CORE_OK)
			goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct open_mr *m = &l.v[i];
		if (dry_run) {
			bool blocking = false;
			if ((st = recorded_blocking(c, repo_id, m, &blocking)) != CORE_OK)
				goto out;
			out->cleared += blocking;
			continue;
		}
		memset(b, 0, sizeof(*b));
		snprintf(path, sizeof(path),
		         "/projects/%lld/repository/commits/%s/statuses?name=" GATE_STATUS_NAME "&per_page=100",
		         (long long)m->source_project_id, m->sha);
		gitlab_response_free(resp);
		resp = NULL;
		enum core_status gst = gitlab_paginate(gl, path, statuses_page, b, &resp);
		out->reads += b->pages + (gst != CORE_OK && resp ? 1 : 0);
		if (gst == CORE_ENOTFOUND)
			continue; /* the commit is gone (force push): nothing of ours on it blocks */
		if (gst != CORE_OK) {
			char doing[200];
			snprintf(doing, sizeof(doing), "read the statuses of merge request !%lld", (long long)m->iid);
			open_mrs_fail(out, doing, gst, resp);
			if (first == CORE_OK)
				first = gst;
			continue;
		}
		for (size_t k = 0; k < b->n; k++) {
			if (!blocks(b->v[k].state))
				continue;
			enum core_status pst = post_removed(gl, m->source_project_id, m->sha, b->v[k].ref, out);
			if (pst == CORE_OK)
				out->cleared++;
			else if (first == CORE_OK)
				first = pst;
		}
	}
	if (dry_run)
		out->writes = out->cleared;
	st = first;
	if (!dry_run && (out->cleared > 0 || st != CORE_OK))
		log_info("repo %lld is no longer gated: %d final status%s posted on its open merge requests%s%s",
		         (long long)repo_id, out->cleared, out->cleared == 1 ? "" : "es", out->error[0] ? "; " : "",
		         out->error);
out:
	store_put(db, c);
	gitlab_response_free(resp);
	free(l.v);
	free(b);
	return st;
}

/* --- pure helpers ----------------------------------------------------------------------------------------------- */

enum core_status gate_decide(const struct finding_list *findings, enum fail_on fail_on, const char *const *notes,
                             size_t n_notes, bool problems, bool timed_out, int timeout_s, bool fail_open,
                             struct gate_decision *out)
{
	const char *all[MAX_NOTES + 2];
	char tmo[64];
	size_t n = 0;
	memset(out, 0, sizeof(*out));
	if (timed_out) {
		snprintf(tmo, sizeof(tmo), "timed out after %d s", timeout_s);
		all[n++] = tmo;
	}
	for (size_t i = 0; i < n_notes && n < MAX_NOTES; i++)
		all[n++] = notes[i];
	bool unscanned = problems || timed_out;
	if (unscanned && fail_on != FAIL_ON_NEVER)
		all[n++] = fail_open ? "fail-open" : "fail-closed";
	bool failed = fail_on != FAIL_ON_NEVER && (findings_failed(findings, fail_on) || (unscanned && !fail_open));
	out->verdict = timed_out ? "timeout" : failed ? "failed" : "passed";
	out->state = failed ? "failed" : "success";
	return findings_describe(findings, fail_on, all, n, out->description, sizeof(out->description));
}

void gate_md_cell(const char *in, char *out, size_t cap, size_t max)
{
	size_t j = 0, len = in ? strlen(in) : 0;
	if (max > len)
		max = len;
	size_t cut = findings_utf8_cut(in ? in : "", len, max);
	for (size_t i = 0; i < cut && j + 3 < cap; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch == '`')
			continue;
		if (ch == '|') {
			out[j++] = '\\';
			out[j++] = '|';
		} else if (ch < 0x20 || ch == 0x7f) {
			out[j++] = ' ';
		} else if (ch == '<') {
			out[j++] = '&';
			if (j + 3 < cap) {
				out[j++] = 'l';
				out[j++] = 't';
				out[j++] = ';';
			}
		} else {
			out[j++] = (char)ch;
		}
	}
	if (cut < len && j + 4 < cap) {
		memcpy(out + j, "\xe2\x80\xa6", 3); /* … */
		j += 3;
	}
	out[j] = '\0';
}

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
		char *ns = realloc(b->s, ncap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
}

static const struct finding_list *sort_list; /* only for the comparator below, under sort_lock */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int by_severity(const void *a, const void *b)
{
	const struct finding *fa = &sort_list->items[*(const size_t *)a];
	const struct finding *fb = &sort_list->items[*(const size_t *)b];
	if (fa->severity != fb->severity)
		return fa->severity > fb->severity ? -1 : 1;
	int c = strcmp(fa->path, fb->path);
	if (c)
		return c;
	if (fa->line != fb->line)
		return fa->line < fb->line ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Indexes of l's findings, most severe first, then by path and line. malloc'd (NULL for an empty list). */
static size_t *sorted_indexes(const struct finding_list *l)
{
	if (!l || l->count == 0)
		return NULL;
	size_t *idx = malloc(l->count * sizeof(size_t));
	if (!idx)
		return NULL;
	for (size_t i = 0; i < l->count; i++)
		idx[i] = i;
	pthread_mutex_lock(&sort_lock);
	sort_list = l;
	qsort(idx, l->count, sizeof(size_t), by_severity);
	sort_list = NULL;
	pthread_mutex_unlock(&sort_lock);
	return idx;
}

/*
 * GitLab runs quick actions (/merge, /approve, /label, ...) from the lines of a note its author may run them, and
 * mrgate's bot is a Maintainer: no line of the note may start with '/'. Cells are already flattened to one line
 * (gate_md_cell); this pass makes it true by construction: a line that would start with '/' gets a Markdown escape
 * ("\/" renders as "/"). Takes s (malloc'd) and returns the result (s itself when nothing changed), NULL on OOM.
 */
static char *guard_quick_actions(char *s)
{
	size_t n = 0, len = strlen(s);
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' && (i == 0 || s[i - 1] == '\n' || s[i - 1] == '\r'))
			n++;
	if (n == 0)
		return s;
	char *o = malloc(len + n + 1);
	if (!o) {
		free(s);
		return NULL;
	}
	size_t j = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/' && (i == 0 || s[i - 1] == '\n' || s[i - 1] == '\r'))
			o[j++] = '\\';
		o[j++] = s[i];
	}
	o[j] = '\0';
	free(s);
	return o;
}

char *gate_note_render(const struct gate_report *r)
{
	struct sbuf b = {0};
	char cell[1200], cell2[1200], cell3[400], sha[16];
	bool ok = strcmp(r->state, "success") == 0;
	size_t count = r->findings ? r->findings->count : 0;
	snprintf(sha, sizeof(sha), "%.12s", r->head_sha ? r->head_sha : "");
	gate_md_cell(r->description, cell, sizeof(cell), 300);
	sb_add(&b, "%s\n### %s mrgate: %s\n\n**%s**\n\n", GATE_NOTE_MARKER,
	       ok ? ":white_check_mark:" : ":x:", ok ? "passed" : "failed", cell);
	sb_add(&b, "Head commit `%s`", sha);
	if (r->report_url && *r->report_url)
		sb_add(&b, " · [full report](%s)", r->report_url);
	sb_add(&b, "\n\n");
	if (count == 0) {
		sb_add(&b, "No new findings on the lines this merge request adds.\n");
	} else {
		size_t *idx = sorted_indexes(r->findings);
		if (!idx) {
			free(b.s);
			return NULL;
		}
		sb_add(&b, "| Severity | Scan | Rule | Location | Finding |\n|---|---|---|---|---|\n");
		size_t shown = count < GATE_NOTE_MAX_ROWS ? count : GATE_NOTE_MAX_ROWS;
		for (size_t i = 0; i < shown; i++) {
			const struct finding *f = &r->findings->items[idx[i]];
			gate_md_cell(f->path, cell, sizeof(cell), 200);
			gate_md_cell(f->title, cell2, sizeof(cell2), 200);
			gate_md_cell(f->rule_id, cell3, sizeof(cell3), 80);
			sb_add(&b, "| %s | %s | %s | `%s:%ld` | %s", severity_name(f->severity), f->scan_type, cell3,
			       cell, f->line, cell2);
			if (f->excerpt && *f->excerpt) {
				gate_md_cell(f->excerpt, cell, sizeof(cell), 160);
				sb_add(&b, " `%s`", cell);
			}
			sb_add(&b, " |\n");
		}
		if (count > shown)
			sb_add(&b, "\n… and %zu more finding%s: see the full report.\n", count - shown,
			       count - shown == 1 ? "" : "s");
		free(idx);
	}
	if (r->n_notes > 0) {
		sb_add(&b, "\n**Notes**\n\n");
		for (size_t i = 0; i < r->n_notes; i++) {
			gate_md_cell(r->notes[i], cell, sizeof(cell), 300);
			sb_add(&b, "- %s\n", cell);
		}
	}
	sb_add(&b, "\n<sub>This comment is edited in place on every push.</sub>\n");
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return guard_quick_actions(b.s);
}

/* --- workers ---------------------------------------------------------------------------------------------------- */

static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kick_cond = PTHREAD_COND_INITIALIZER;
static unsigned long kick_seq;

void gate_kick(void)
{
	pthread_mutex_lock(&kick_lock);
	kick_seq++;
	pthread_cond_broadcast(&kick_cond);
	pthread_mutex_unlock(&kick_lock);
}

struct gate_workers {
	struct gate_env env;
	pthread_t *threads;
	int n;
	bool stop; /* under kick_lock */
	pthread_t heartbeat;
	bool has_heartbeat;
};

/*
 * Leases. A claimed run is leased for env->lease_ms; the heartbeat thread of gate_workers renews the lease of every
 * run in flight in this process every third of it, like job items (core/jobs.c). A killed instance stops renewing,
 * so its runs are claimed again by another instance within one lease. Without a heartbeat (lease_ms 0) the lease
 * covers the whole gate timeout plus a margin, as before.
 */
static pthread_cond_t hb_cond = PTHREAD_COND_INITIALIZER; /* with kick_lock: the heartbeat waits here */
static pthread_mutex_t inflight_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t inflight[256 * 4]; /* ids of the runs this process executes (at most one per worker thread) */
static size_t n_inflight;

static bool inflight_add(int64_t id)
{
	bool ok = false;
	pthread_mutex_lock(&inflight_mu);
	if (n_inflight < sizeof(inflight) / sizeof(inflight[0])) {
		inflight[n_inflight++] = id;
		ok = true;
	}
	pthread_mutex_unlock(&inflight_mu);
	return ok;
}

static void inflight_remove(int64_t id)
{
	pthread_mutex_lock(&inflight_mu);
	for (size_t i = 0; i < n_inflight; i++)
		if (inflight[i] == id) {
			inflight[i] = inflight[--n_inflight];
			break;
		}
	pthread_mutex_unlock(&inflight_mu);
}

/* Renew the leases of this process's runs in flight; runs whose lease is no longer ours are logged. */
static void renew_leases(const struct gate_env *env)
{
	int64_t ids[sizeof(inflight) / sizeof(inflight[0])];
	size_t n;
	pthread_mutex_lock(&inflight_mu);
	n = n_inflight;
	memcpy(ids, inflight, n * sizeof(ids[0]));
	pthread_mutex_unlock(&inflight_mu);
	if (n == 0)
		return;
	char *arr = store_int64_array(ids, n), lease[16];
	if (!arr)
		return;
	snprintf(lease, sizeof(lease), "%d", env->lease_ms);
	const char *p[] = {arr, env->instance, lease};
	PGresult *res = NULL;
	if (store_query(env->db,
	                "UPDATE gate_runs SET lease_until = now() + $3::int * interval '1 millisecond',"
	                " heartbeat_at = now()"
	                " WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'running' RETURNING id",
	                3, p, &res) == CORE_OK &&
	    (size_t)PQntuples(res) < n)
		log_warn("gate: %zu of %zu runs in flight lost their lease (taken over or ended elsewhere)",
		         n - (size_t)PQntuples(res), n);
	PQclear(res);
	free(arr);
}

static void *heartbeat_main(void *arg)
{
	struct gate_workers *w = arg;
	int every = w->env.lease_ms / 3 > 0 ? w->env.lease_ms / 3 : 1;
	pthread_mutex_lock(&kick_lock);
	while (!w->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += every / 1000;
		ts.tv_nsec += (long)(every % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&hb_cond, &kick_lock, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&kick_lock);
		renew_leases(&w->env);
		pthread_mutex_lock(&kick_lock);
	}
	pthread_mutex_unlock(&kick_lock);
	return NULL;
}

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void describe_metrics(void)
{
	metrics_describe("mrgate_gate_verdicts_total", "counter",
	                 "finished gate runs by verdict (passed, failed, timeout, error, skipped, superseded)");
	metrics_describe("mrgate_gate_duration_seconds_sum", "counter",
	                 "total seconds from webhook to posted verdict, over finished gate runs");
	metrics_describe("mrgate_gate_duration_seconds_count", "counter", "finished gate runs timed");
	metrics_describe("mrgate_gate_duration_seconds_bucket", "counter",
	                 "finished gate runs by seconds from webhook to posted verdict (cumulative, le)");
}

static void count_verdict(const char *verdict, double seconds)
{
	static const double bounds[] = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600};
	char labels[64];
	pthread_once(&metrics_once, describe_metrics);
	snprintf(labels, sizeof(labels), "verdict=\"%s\"", verdict);
	metrics_inc("mrgate_gate_verdicts_total", labels, 1);
	if (seconds < 0)
		return;
	metrics_inc("mrgate_gate_duration_seconds_sum", "", seconds);
	metrics_inc("mrgate_gate_duration_seconds_count", "", 1);
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
		if (seconds <= bounds[i]) {
			snprintf(labels, sizeof(labels), "le=\"%g\"", bounds[i]);
			metrics_inc("mrgate_gate_duration_seconds_bucket", labels, 1);
		}
	metrics_inc("mrgate_gate_duration_seconds_bucket", "le=\"+Inf\"", 1);
}

static void *worker_main(void *arg)
{
	struct gate_workers *w = arg;
	unsigned long seen = 0;
	for (;;) {
		pthread_mutex_lock(&kick_lock);
		bool stop = w->stop;
		seen = kick_seq;
		pthread_mutex_unlock(&kick_lock);
		if (stop)
			break;
		bool ran = false;
		enum core_status st = gate_run_next(&w->env, &ran);
		if (ran && st == CORE_OK)
			continue;
		pthread_mutex_lock(&kick_lock);
		if (!w->stop && kick_seq == seen) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&kick_cond, &kick_lock, &ts);
		}
		pthread_mutex_unlock(&kick_lock);
	}
	return NULL;
}

struct gate_workers *gate_workers_start(const struct gate_env *env, int n)
{
	struct gate_workers *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->env = *env;
	w->threads = calloc((size_t)(n > 0 ? n : 1), sizeof(pthread_t));
	if (!w->threads) {
		free(w);
		return NULL;
	}
	pthread_once(&metrics_once, describe_metrics);
	scan_secrets_init();
	for (int i = 0; i < n; i++) {
		if (pthread_create(&w->threads[w->n], NULL, worker_main, w) != 0) {
			log_error("could not start gate worker %d: %s", i + 1, strerror(errno));
			break;
		}
		w->n++;
	}
	if (w->n == 0) {
		free(w->threads);
		free(w);
		return NULL;
	}
	if (w->env.lease_ms > 0) {
		w->has_heartbeat = pthread_create(&w->heartbeat, NULL, heartbeat_main, w) == 0;
		if (!w->has_heartbeat) {
			/* no heartbeat: fall back to leases that cover the whole run */
			log_warn("could not start the gate lease heartbeat: %s", strerror(errno));
			w->env.lease_ms = 0;
		}
	}
	log_info("%d gate worker%s started", w->n, w->n == 1 ? "" : "s");
	return w;
}

void gate_workers_stop(struct gate_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&kick_lock);
	w->stop = true;
	pthread_cond_broadcast(&kick_cond);
	pthread_cond_broadcast(&hb_cond);
	pthread_mutex_unlock(&kick_lock);
	for (int i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	if (w->has_heartbeat)
		pthread_join(w->heartbeat, NULL);
	free(w->threads);
	free(w);
}

/* --- one run ---------------------------------------------------------------------------------------------------- */

struct run {
	const struct gate_env *env;
	int64_t id, project_id, source_project_id, mr_iid, pipeline_id;
	char head_sha[72];
	char source_branch[264];
	char status_ref[264];
	char target_url[256];
	int attempts;
	bool pending_posted;
	double age_s; /* seconds since the run was queued, at claim */
	int64_t started_ms, deadline_ms;
	struct gate_config cfg;
	bool fail_open;
	struct gitlab *gl; /* borrowed from cc */
	struct connection_client *cc;
	struct diff_added_set *added;
	struct finding_list *findings;
	char *notes[MAX_NOTES];
	size_t n_notes;
	bool problems;
	bool timed_out;
	char workdir[SCANRUN_PATH_MAX];
	char tree[SCANRUN_PATH_MAX + 260];
	bool tree_tried;
	char tree_error[300];
	struct json_object *timings;
	int unscannable;
	char unscannable_first[200];
	char changes_count[24]; /* the MR's changes_count: "12", or "1000+" past GitLab's diff limits */
	char base_sha[72];      /* diff_refs.base_sha */
	size_t diff_entries;    /* entries the diffs API sent */
	char base_tree[SCANRUN_PATH_MAX + 260];
	char base_error[300];
};

static void run_note(struct run *r, bool problem, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void run_note(struct run *r, bool problem, const char *fmt, ...)
{
	if (problem)
		r->problems = true;
	if (r->n_notes >= MAX_NOTES)
		return;
	char buf[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->notes[r->n_notes] = strdup(buf);
	if (r->notes[r->n_notes])
		r->n_notes++;
}

static void run_timing(struct run *r, const char *phase, int64_t since_ms)
{
	if (r->timings)
		json_object_object_add(r->timings, phase, json_object_new_int64(scanrun_now_ms() - since_ms));
}

static bool past_deadline(const struct run *r)
{
	return scanrun_now_ms() >= r->deadline_ms;
}

/* The gitlab message of a failed call, or the status code. */
static const char *why_of(const struct gitlab_response *resp, enum core_status st)
{
	return resp && resp->message[0] ? resp->message : core_status_code(st);
}

/* Is the run still the one to report for its MR (not superseded, still ours)? */
static bool still_current(struct run *r)
{
	struct store_conn *c = NULL;
	PGresult *res = NULL;
	char id[24];
	bool ok = false;
	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	if (store_get(r->env->db, &c) != CORE_OK)
		return false;
	const char *p[] = {id, r->env->instance};
	if (store_exec(c, "SELECT (state = 'running' AND lease_owner = $2) AS ok FROM gate_runs WHERE id = $1", 2, p,
	               &res) == CORE_OK &&
	    PQntuples(res) == 1)
		ok = store_bool(res, 0, "ok", false);
	PQclear(res);
	store_put(r->env->db, c);
	return ok;
}

/* Run one UPDATE of this run (guarded by our lease), with $1 = id, $2 = owner and extra params after. */
static enum core_status run_update(struct run *r, const char *sql, int nextra, const char *const *extra)
{
	struct store_conn *c = NULL;
	char id[24];
	const char *p[12];
	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	p[0] = id;
	p[1] = r->env->instance;
	for (int i = 0; i < nextra && i < 10; i++)
		p[2 + i] = extra[i];
	enum core_status st = store_get(r->env->db, &c);
	if (st == CORE_OK)
		st = store_exec(c, sql, 2 + nextra, p, NULL);
	store_put(r->env->db, c);
	return st;
}

/*
 * POST a commit status, retrying GitLab's 409 ("another update in progress"). A repeated transition GitLab
 * refuses ("Cannot transition status via :enqueue from :pending") means the status is already there: success.
 */
static enum core_status post_status(struct run *r, const char *state, const char *description, char *err, size_t errlen)
{
	char path[256];
	enum core_status st = CORE_EINTERNAL;
	snprintf(path, sizeof(path), "/projects/%lld/statuses/%s", (long long)r->source_project_id, r->head_sha);
	for (int attempt = 0; attempt < 8; attempt++) {
		struct json_object *body = json_object_new_object();
		struct gitlab_response *resp = NULL;
		json_object_object_add(body, "state", json_object_new_string(state));
		json_object_object_add(body, "name", json_object_new_string(GATE_STATUS_NAME));
		json_object_object_add(body, "ref", json_object_new_string(r->status_ref));
		json_object_object_add(body, "description", json_object_new_string(description));
		if (r->target_url[0])
			json_object_object_add(body, "target_url", json_object_new_string(r->target_url));
		if (r->pipeline_id > 0)
			json_object_object_add(body, "pipeline_id", json_object_new_int64(r->pipeline_id));
		st = gitlab_request_ex(r->gl, "POST", path, body, GITLAB_CALL_IDEMPOTENT, &resp);
		json_object_put(body);
		if (st == CORE_EINVAL && resp && strstr(resp->body, "Cannot transition status"))
			st = CORE_OK;
		if (st == CORE_ENOTFOUND && r->pipeline_id > 0) {
			/* the head pipeline is gone or not on this sha: post on the branch instead */
			log_warn("gate run %lld: pipeline %lld refused the status (%s); posting on the branch",
			         (long long)r->id, (long long)r->pipeline_id, why_of(resp, st));
			r->pipeline_id = 0;
			snprintf(r->status_ref, sizeof(r->status_ref), "%s", r->source_branch);
			gitlab_response_free(resp);
			continue;
		}
		if (st != CORE_OK)
			snprintf(err, errlen, "could not post the %s status on %.12s: %.300s", state, r->head_sha,
			         why_of(resp, st));
		gitlab_response_free(resp);
		if (st != CORE_ECONFLICT)
			break;
		usleep((useconds_t)(250000u << (attempt < 4 ? attempt : 4)));
	}
	return st;
}

/* GET the MR: the head sha, state and head pipeline. CORE_ESTATE when superseded or no longer open. */
static enum core_status read_mr(struct run *r, char *err, size_t errlen)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld", (long long)r->project_id,
	         (long long)r->mr_iid);
	enum core_status st = gitlab_request(r->gl, "GET", path, NULL, &resp);
	if (st != CORE_OK) {
		snprintf(err, errlen, "could not read merge request !%lld: %.300s", (long long)r->mr_iid,
		         why_of(resp, st));
		goto out;
	}
	const char *sha = NULL, *state = NULL, *branch = NULL;
	jsonx_str(resp->json, "sha", &sha);
	jsonx_str(resp->json, "state", &state);
	if (sha && *sha && strcmp(sha, r->head_sha) != 0) {
		snprintf(err, errlen, "superseded: the merge request's head is now %.12s", sha);
		st = CORE_ESTATE;
		goto out;
	}
	if (state && strcmp(state, "opened") != 0) {
		snprintf(err, errlen, "the merge request is %s", state);
		st = CORE_ESTATE;
		goto out;
	}
	if (jsonx_str(resp->json, "source_branch", &branch) && *branch && strlen(branch) < sizeof(r->source_branch))
		snprintf(r->source_branch, sizeof(r->source_branch), "%s", branch);
	const char *count = NULL, *base = NULL;
	if (jsonx_str(resp->json, "changes_count", &count) && strlen(count) < sizeof(r->changes_count))
		snprintf(r->changes_count, sizeof(r->changes_count), "%s", count);
	if (jsonx_path_str(resp->json, "diff_refs.base_sha", &base) && sha_ok(base))
		snprintf(r->base_sha, sizeof(r->base_sha), "%s", base);
	/* attach to the MR head pipeline when it is on the head sha (GITLAB-API.md §5.2) */
	int64_t pipe_id = 0;
	const char *pipe_sha = NULL, *pipe_ref = NULL;
	if (r->pipeline_id == 0 && !r->pending_posted && jsonx_path_int64(resp->json, "head_pipeline.id", &pipe_id) &&
	    jsonx_path_str(resp->json, "head_pipeline.sha", &pipe_sha) && strcmp(pipe_sha, r->head_sha) == 0) {
		r->pipeline_id = pipe_id;
		if (jsonx_path_str(resp->json, "head_pipeline.ref", &pipe_ref) && *pipe_ref &&
		    strlen(pipe_ref) < sizeof(r->status_ref))
			snprintf(r->status_ref, sizeof(r->status_ref), "%s", pipe_ref);
	}
	if (!r->status_ref[0])
		snprintf(r->status_ref, sizeof(r->status_ref), "%s", r->source_branch);
out:
	gitlab_response_free(resp);
	return st;
}

static bool ignored(const struct run *r, const char *path)
{
	return r->cfg.n_ignore > 0 &&
	       pathglob_match_any((const char *const *)r->cfg.ignore_paths, r->cfg.n_ignore, path);
}

static void unscannable(struct run *r, const char *path)
{
	if (r->unscannable++ == 0)
		snprintf(r->unscannable_first, sizeof(r->unscannable_first), "%s", path);
}

static enum core_status diffs_page(struct json_object *page, void *user)
{
	struct run *r = user;
	size_t n = json_object_array_length(page);
	r->diff_entries += n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(page, i);
		const char *new_path = NULL, *old_path = NULL, *diff = NULL, *a_mode = NULL, *b_mode = NULL;
		bool deleted = false, added = false, renamed = false, collapsed = false, too_large = false;
		if (!jsonx_str(e, "new_path", &new_path) || !*new_path) {
			unscannable(r, "(an entry without new_path)");
			continue;
		}
		jsonx_str(e, "old_path", &old_path);
		jsonx_bool(e, "deleted_file", &deleted);
		jsonx_bool(e, "new_file", &added);
		jsonx_bool(e, "renamed_file", &renamed);
		jsonx_bool(e, "collapsed", &collapsed);
		jsonx_bool(e, "too_large", &too_large);
		jsonx_str(e, "a_mode", &a_mode);
		jsonx_str(e, "b_mode", &b_mode);
		if (ignored(r, new_path))
			continue;
		if (!jsonx_str(e, "diff", &diff))
			diff = "";
		if (collapsed || too_large) {
			unscannable(r, new_path);
			continue;
		}
		if (!*diff) {
			bool mode_change = a_mode && b_mode && strcmp(a_mode, b_mode) != 0;
			if (deleted || added || renamed || mode_change) {
				if (diff_added_set_add(r->added, new_path, "", 0, deleted) == CORE_ENOMEM)
					return CORE_ENOMEM;
			} else {
				unscannable(r, new_path); /* GitLab left out the text of a changed file */
			}
			continue;
		}
		enum core_status st = diff_added_set_add(r->added, new_path, diff, strlen(diff), deleted);
		if (st == CORE_ENOMEM)
			return st;
		if (st != CORE_OK)
			unscannable(r, new_path);
	}
	return CORE_OK;
}

static enum core_status fetch_diffs(struct run *r, char *err, size_t errlen)
{
	char path[160];
	struct gitlab_response *resp = NULL;
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/diffs?per_page=100", (long long)r->project_id,
	         (long long)r->mr_iid);
	enum core_status st = gitlab_paginate(r->gl, path, diffs_page, r, &resp);
	if (st != CORE_OK)
		snprintf(err, errlen, "could not read the merge request's diffs: %.300s", why_of(resp, st));
	gitlab_response_free(resp);
	return st;
}

/* Download and unpack the head tree once; false (tree_error set) when it cannot be had. */
static bool ensure_tree(struct run *r)
{
	if (r->tree_tried)
		return r->tree[0] != '\0';
	r->tree_tried = true;
	int64_t t0 = scanrun_now_ms();
	char path[200], dir[SCANRUN_PATH_MAX + 16], err[300];
	struct gitlab_response *resp = NULL;
	if (scanrun_workdir(r->workdir, sizeof(r->workdir)) != CORE_OK) {
		snprintf(r->tree_error, sizeof(r->tree_error), "no temporary directory for the head tree");
		return false;
	}
	snprintf(path, sizeof(path), "/projects/%lld/repository/archive.tar.gz?sha=%s", (long long)r->source_project_id,
	         r->head_sha);
	enum core_status st = gitlab_request_ex(r->gl, "GET", path, NULL, GITLAB_CALL_RAW, &resp);
	if (st != CORE_OK) {
		snprintf(r->tree_error, sizeof(r->tree_error), "could not download the head tree: %.200s",
		         why_of(resp, st));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/tree", r->workdir);
	char home[SCANRUN_PATH_MAX + 16];
	snprintf(home, sizeof(home), "%s/home", r->workdir);
	if (mkdir(dir, 0700) != 0 || mkdir(home, 0700) != 0) {
		snprintf(r->tree_error, sizeof(r->tree_error), "could not create the tree directory");
		goto out;
	}
	st = scanrun_extract_targz(resp->body, resp->body_len, dir, r->env->tree_max_bytes, SCANRUN_MAX_ENTRIES,
	                           r->deadline_ms, r->tree, sizeof(r->tree), err, sizeof(err));
	if (st == CORE_ETIMEOUT)
		r->timed_out = true;
	if (st != CORE_OK) {
		r->tree[0] = '\0';
		snprintf(r->tree_error, sizeof(r->tree_error), "%s", err);
	}
out:
	gitlab_response_free(resp);
	run_timing(r, "tree_ms", t0);
	return r->tree[0] != '\0';
}

/* Download and unpack the base tree (diff_refs.base_sha of the target project) once; false (base_error set) when it
 * cannot be had. Needs the work directory ensure_tree() made. */
static bool ensure_base_tree(struct run *r)
{
	if (r->base_tree[0])
		return true;
	if (r->base_error[0])
		return false;
	char path[200], dir[SCANRUN_PATH_MAX + 16], err[300];
	struct gitlab_response *resp = NULL;
	if (!r->base_sha[0]) {
		snprintf(r->base_error, sizeof(r->base_error), "GitLab gave no base commit for the merge request");
		return false;
	}
	int64_t t0 = scanrun_now_ms();
	snprintf(path, sizeof(path), "/projects/%lld/repository/archive.tar.gz?sha=%s", (long long)r->project_id,
	         r->base_sha);
	enum core_status st = gitlab_request_ex(r->gl, "GET", path, NULL, GITLAB_CALL_RAW, &resp);
	if (st != CORE_OK) {
		snprintf(r->base_error, sizeof(r->base_error), "could not download the base tree: %.200s",
		         why_of(resp, st));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/base", r->workdir);
	if (mkdir(dir, 0700) != 0) {
		snprintf(r->base_error, sizeof(r->base_error), "could not create the base tree directory");
		goto out;
	}
	st = scanrun_extract_targz(resp->body, resp->body_len, dir, r->env->tree_max_bytes, SCANRUN_MAX_ENTRIES,
	                           r->deadline_ms, r->base_tree, sizeof(r->base_tree), err, sizeof(err));
	if (st == CORE_ETIMEOUT)
		r->timed_out = true;
	if (st != CORE_OK) {
		r->base_tree[0] = '\0';
		snprintf(r->base_error, sizeof(r->base_error), "base tree: %.280s", err);
	}
out:
	gitlab_response_free(resp);
	run_timing(r, "base_tree_ms", t0);
	return r->base_tree[0] != '\0';
}

static bool skip_ignored(const char *path, void *user)
{
	return ignored(user, path);
}

/*
 * GitLab's diff limits (core/treediff.h): past an overflow the MR's changes_count reads "N+" and later files are
 * missing from the diffs; oversized files come without their text. Those files are scanned from the base and head
 * trees instead; whatever still cannot be read is a problem in the description (and fails by the fail mode).
 */
static void cover_unscanned(struct run *r)
{
	size_t n = strlen(r->changes_count);
	char *end = NULL;
	unsigned long long announced = n ? strtoull(r->changes_count, &end, 10) : 0;
	bool overflow = (n && r->changes_count[n - 1] == '+') || (end && *end == '\0' && announced > r->diff_entries);
	if (!overflow && r->unscannable == 0)
		return;
	char what[200], why[320];
	if (overflow)
		snprintf(what, sizeof(what), "GitLab's diff stopped at its limits (%s files changed, %zu sent)",
		         r->changes_count, r->diff_entries);
	else
		snprintf(what, sizeof(what), "%d file%s came without a full diff (e.g. %.120s)", r->unscannable,
		         r->unscannable == 1 ? "" : "s", r->unscannable_first);
	if (!ensure_tree(r)) {
		snprintf(why, sizeof(why), "%s", r->tree_error);
	} else if (!ensure_base_tree(r)) {
		snprintf(why, sizeof(why), "%s", r->base_error);
	} else {
		struct treediff_stats ts;
		int64_t t0 = scanrun_now_ms();
		enum core_status st =
		    treediff_add(r->base_tree, r->tree, r->added, skip_ignored, r, r->deadline_ms, &ts);
		run_timing(r, "treediff_ms", t0);
		if (st == CORE_OK) {
			run_note(r, false, "%s: %zu file%s scanned from the repository trees instead", what,
			         ts.added_files, ts.added_files == 1 ? "" : "s");
			if (ts.unreadable > 0)
				run_note(r, true,
				         "%zu changed file%s not scanned (unreadable in the head tree, e.g. %.120s)",
				         ts.unreadable, ts.unreadable == 1 ? "" : "s", ts.first_unreadable);
			return;
		}
		if (st == CORE_ETIMEOUT)
			r->timed_out = true;
		snprintf(why, sizeof(why), "the trees could not be compared (%s)", core_status_code(st));
	}
	if (overflow)
		run_note(r, true, "files past the first %zu not scanned (GitLab's diff limits; %.160s)",
		         r->diff_entries, why);
	else
		run_note(r, true, "%d file%s not scanned (GitLab sent no full diff, e.g. %.100s; %.160s)",
		         r->unscannable, r->unscannable == 1 ? "" : "s", r->unscannable_first, why);
}

static void run_sarif_scanner(struct run *r, enum gate_scan k)
{
	const char *type = gate_scan_names[k];
	const char *cmd = r->env->scanners[k];
	if (!cmd || !*cmd) {
		run_note(r, true, "%s: no scanner configured", type);
		return;
	}
	if (!ensure_tree(r)) {
		run_note(r, true, "%s: not run (%s)", type, r->tree_error);
		return;
	}
	if (past_deadline(r)) {
		r->timed_out = true;
		return;
	}
	int64_t t0 = scanrun_now_ms();
	char home[SCANRUN_PATH_MAX + 16], e_type[64], e_tree[SCANRUN_PATH_MAX + 300], e_sha[100];
	snprintf(home, sizeof(home), "%s/home", r->workdir);
	snprintf(e_type, sizeof(e_type), "MRGATE_SCAN_TYPE=%s", type);
	snprintf(e_tree, sizeof(e_tree), "MRGATE_SCAN_TREE=%s", r->tree);
	snprintf(e_sha, sizeof(e_sha), "MRGATE_SCAN_HEAD_SHA=%s", r->head_sha);
	const char *extra[] = {e_type, e_tree, e_sha, NULL};
	struct scanrun_result res;
	enum core_status st = scanrun_command(cmd, r->tree, home, extra, r->deadline_ms, SCAN_SARIF_MAX_BYTES, &res);
	char phase[48];
	snprintf(phase, sizeof(phase), "%s_ms", type);
	run_timing(r, phase, t0);
	if (st != CORE_OK) {
		run_note(r, true, "%s: the scanner could not be started", type);
		return;
	}
	if (res.timed_out) {
		r->timed_out = true;
		scanrun_result_clear(&res);
		return;
	}
	if (res.out_truncated) {
		run_note(r, true, "%s: scanner output over %u MiB", type, SCAN_SARIF_MAX_BYTES >> 20);
		scanrun_result_clear(&res);
		return;
	}
	struct scan_sarif_options opt = {.scan_type = type, .added = r->added, .root = r->tree};
	struct scan_sarif_stats stats;
	memset(&stats, 0, sizeof(stats));
	st = scan_sarif_parse(&opt, res.out, res.out_len, r->findings, &stats);
	if (st == CORE_ENOMEM || st == CORE_ETOOLARGE) {
		run_note(r, true, "%s: too many findings to count", type);
	} else if (st != CORE_OK) {
		run_note(r, true, "%s: the scanner failed (exit %d)%s%.160s", type, res.exit_code,
		         res.err_tail[0] ? ": " : "", res.err_tail);
	} else {
		if (stats.invalid > 0)
			run_note(r, true, "%s: %zu result%s could not be read", type, stats.invalid,
			         stats.invalid == 1 ? "" : "s");
		log_info("gate run %lld: %s scanner exit %d, %zu results, %zu on added lines, %zu elsewhere, %zu "
		         "without location, %zu skipped, %zu invalid",
		         (long long)r->id, type, res.exit_code, stats.results, stats.kept, stats.not_added,
		         stats.no_location, stats.skipped, stats.invalid);
	}
	scanrun_result_clear(&res);
}

/* Replace invalid UTF-8 by '?' (PostgreSQL refuses it) into a new string. */
static char *utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	size_t i = 0, j = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)s[i + k] >> 6) == 2;
		if (ok) {
			memcpy(o + j, s + i, len);
			j += len;
			i += len;
		} else {
			o[j++] = '?';
			i++;
		}
	}
	o[j] = '\0';
	return o;
}

static void add_clean(struct json_object *o, const char *key, const char *v)
{
	char *c = utf8_clean(v ? v : "");
	json_object_object_add(o, key, json_object_new_string(c ? c : ""));
	free(c);
}

static struct json_object *counts_json(const struct finding_list *l)
{
	size_t counts[SEV_CRITICAL + 1];
	findings_count(l, counts);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "critical", json_object_new_int64((int64_t)counts[SEV_CRITICAL]));
	json_object_object_add(o, "high", json_object_new_int64((int64_t)counts[SEV_HIGH]));
	json_object_object_add(o, "medium", json_object_new_int64((int64_t)counts[SEV_MEDIUM]));
	json_object_object_add(o, "low", json_object_new_int64((int64_t)counts[SEV_LOW]));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)counts[0]));
	return o;
}

/* Store the findings and the decision (state stays running until the status is posted). */
static enum core_status store_results(struct run *r, const struct gate_decision *d)
{
	struct store_conn *c = NULL;
	struct json_object *arr = json_object_new_array(), *counts = counts_json(r->findings),
	                   *notes = json_object_new_array(), *scans = json_object_new_array();
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	size_t *idx = sorted_indexes(r->findings);
	size_t n = r->findings->count < MAX_STORED_FINDINGS ? r->findings->count : MAX_STORED_FINDINGS;
	for (size_t i = 0; i < n && idx; i++) {
		const struct finding *f = &r->findings->items[idx[i]];
		struct json_object *o = json_object_new_object();
		add_clean(o, "scan_type", f->scan_type);
		add_clean(o, "rule_id", f->rule_id);
		add_clean(o, "title", f->title);
		json_object_object_add(o, "severity", json_object_new_string(severity_name(f->severity)));
		add_clean(o, "path", f->path);
		json_object_object_add(o, "line",
		                       json_object_new_int64(f->line > 0 && f->line < 2147483647 ? f->line : 0));
		add_clean(o, "excerpt", f->excerpt);
		json_object_object_add(o, "fingerprint", json_object_new_string(f->fingerprint));
		json_object_array_add(arr, o);
	}
	free(idx);
	for (size_t i = 0; i < r->n_notes; i++) {
		char *cn = utf8_clean(r->notes[i]);
		json_object_array_add(notes, json_object_new_string(cn ? cn : ""));
		free(cn);
	}
	for (int k = 0; k < GATE_SCAN_COUNT; k++)
		if (r->cfg.scans[k])
			json_object_array_add(scans, json_object_new_string(gate_scan_names[k]));
	char *desc = utf8_clean(d->description);
	const char *p[] = {id,
	                   r->env->instance,
	                   json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN),
	                   d->verdict,
	                   desc ? desc : "",
	                   json_object_to_json_string_ext(counts, JSON_C_TO_STRING_PLAIN),
	                   json_object_to_json_string_ext(notes, JSON_C_TO_STRING_PLAIN),
	                   fail_on_name(r->cfg.fail_on),
	                   json_object_to_json_string_ext(scans, JSON_C_TO_STRING_PLAIN),
	                   json_object_to_json_string_ext(r->timings, JSON_C_TO_STRING_PLAIN)};
	enum core_status st = store_get(r->env->db, &c);
	if (st == CORE_OK)
		st = store_begin(c);
	if (st == CORE_OK)
		st = store_exec(c, "DELETE FROM gate_findings WHERE run_id = $1", 1, p, NULL);
	if (st == CORE_OK)
		st = store_exec(
		    c,
		    "INSERT INTO gate_findings (run_id, scan_type, rule_id, title, severity, path, line, excerpt,"
		    " fingerprint) SELECT $1, x.scan_type, x.rule_id, x.title, x.severity, x.path, x.line,"
		    " x.excerpt, x.fingerprint FROM jsonb_to_recordset($2::jsonb) AS x(scan_type text,"
		    " rule_id text, title text, severity text, path text, line integer, excerpt text,"
		    " fingerprint text)",
		    2, (const char *const[]){id, p[2]}, NULL);
	if (st == CORE_OK)
		st = store_exec(
		    c,
		    "UPDATE gate_runs SET verdict = $3, description = $4, counts = $5::jsonb, notes = $6::jsonb,"
		    " fail_on = $7, scans = ARRAY(SELECT jsonb_array_elements_text($8::jsonb)),"
		    " timings = $9::jsonb, error = NULL WHERE id = $1 AND lease_owner = $2",
		    9, (const char *const[]){id, r->env->instance, p[3], p[4], p[5], p[6], p[7], p[8], p[9]}, NULL);
	if (st == CORE_OK)
		st = store_commit(c);
	else if (c)
		store_rollback(c);
	store_put(r->env->db, c);
	free(desc);
	json_object_put(arr);
	json_object_put(counts);
	json_object_put(notes);
	json_object_put(scans);
	return st;
}

/* Find our note among the MR's notes after a POST that may have been applied. */
struct find_note {
	int64_t id;
};

static enum core_status find_note_page(struct json_object *page, void *user)
{
	struct find_note *fn = user;
	size_t n = json_object_array_length(page);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(page, i);
		const char *body = NULL;
		int64_t id = 0;
		if (jsonx_str(e, "body", &body) && strncmp(body, GATE_NOTE_MARKER, strlen(GATE_NOTE_MARKER)) == 0 &&
		    jsonx_int64(e, "id", &id))
			fn->id = id;
	}
	return CORE_OK;
}

/* Create or edit the sticky note. Failures are logged, never fatal for the verdict. */
static void sticky_note(struct run *r, const struct gate_decision *d)
{
	struct store_conn *c = NULL;
	PGresult *res = NULL;
	struct gitlab_response *resp = NULL;
	char pid[24], iid[24], nid[24], path[200];
	char *body = NULL;
	bool want =
	    r->cfg.comment == GATE_COMMENT_ALWAYS ||
	    (r->cfg.comment == GATE_COMMENT_ON_FINDINGS && (r->findings->count > 0 || strcmp(d->state, "failed") == 0));
	snprintf(pid, sizeof(pid), "%lld", (long long)r->project_id);
	snprintf(iid, sizeof(iid), "%lld", (long long)r->mr_iid);
	const char *p[] = {pid, iid};
	if (store_get(r->env->db, &c) != CORE_OK)
		return;
	if (store_exec(c, "INSERT INTO mr_notes (project_id, mr_iid) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, p,
	               NULL) != CORE_OK ||
	    store_begin(c) != CORE_OK ||
	    store_exec(c, "SELECT note_id FROM mr_notes WHERE project_id = $1 AND mr_iid = $2 FOR UPDATE", 2, p,
	               &res) != CORE_OK ||
	    PQntuples(res) != 1)
		goto out;
	int64_t note_id = store_i64(res, 0, "note_id", 0);
	if (r->cfg.comment == GATE_COMMENT_OFF || (!want && note_id == 0))
		goto out;
	struct gate_report rep = {.state = d->state,
	                          .description = d->description,
	                          .head_sha = r->head_sha,
	                          .report_url = r->target_url,
	                          .findings = r->findings,
	                          .notes = (const char *const *)r->notes,
	                          .n_notes = r->n_notes};
	body = gate_note_render(&rep);
	if (!body)
		goto out;
	struct json_object *jb = json_object_new_object();
	json_object_object_add(jb, "body", json_object_new_string(body));
	enum core_status st = CORE_ENOTFOUND;
	if (note_id > 0) {
		snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/notes/%lld", (long long)r->project_id,
		         (long long)r->mr_iid, (long long)note_id);
		st = gitlab_request(r->gl, "PUT", path, jb, &resp);
		if (st == CORE_ENOTFOUND)
			note_id = 0; /* someone deleted it: make a new one */
		else if (st != CORE_OK)
			log_warn("gate run %lld: could not edit note %lld: %s", (long long)r->id, (long long)note_id,
			         why_of(resp, st));
		gitlab_response_free(resp);
		resp = NULL;
	}
	if (note_id == 0) {
		snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/notes", (long long)r->project_id,
		         (long long)r->mr_iid);
		st = gitlab_request(r->gl, "POST", path, jb, &resp);
		if (st == CORE_OK) {
			jsonx_int64(resp->json, "id", &note_id);
		} else if (resp && resp->kind == GITLAB_ERR_MAYBE_APPLIED) {
			struct find_note fn = {0};
			char lpath[260];
			snprintf(lpath, sizeof(lpath), "%.150s?per_page=100&sort=desc&order_by=created_at", path);
			if (gitlab_paginate(r->gl, lpath, find_note_page, &fn, NULL) == CORE_OK)
				note_id = fn.id;
		} else {
			log_warn("gate run %lld: could not create the MR note: %s", (long long)r->id, why_of(resp, st));
		}
	}
	json_object_put(jb);
	if (note_id > 0) {
		snprintf(nid, sizeof(nid), "%lld", (long long)note_id);
		const char *pu[] = {pid, iid, nid};
		if (store_exec(
		        c, "UPDATE mr_notes SET note_id = $3, updated_at = now() WHERE project_id = $1 AND mr_iid = $2",
		        3, pu, NULL) == CORE_OK &&
		    store_commit(c) == CORE_OK) {
			char rid[24];
			snprintf(rid, sizeof(rid), "%lld", (long long)r->id);
			const char *pr[] = {rid, nid};
			store_exec(c, "UPDATE gate_runs SET note_id = $2 WHERE id = $1", 2, pr, NULL);
		}
	}
out:
	store_rollback(c);
	PQclear(res);
	gitlab_response_free(resp);
	store_put(r->env->db, c);
	free(body);
}

/* Finish a run that does not post a verdict (superseded, MR closed, repo no longer gated). */
static void finish_quiet(struct run *r, const char *state, const char *verdict, const char *why)
{
	const char *p[] = {state, verdict, why};
	run_update(r,
	           "UPDATE gate_runs SET state = $3, verdict = $4, error = $5, finished_at = now(), lease_owner = NULL,"
	           " lease_until = NULL WHERE id = $1 AND lease_owner = $2",
	           3, p);
	count_verdict(strcmp(state, "superseded") == 0 ? "superseded" : verdict, -1);
	log_info("gate run %lld (!%lld @ %.12s): %s", (long long)r->id, (long long)r->mr_iid, r->head_sha, why);
}

/* A transient failure: back to the queue with a backoff, or a final error after GATE_MAX_ATTEMPTS. */
static void fail_run(struct run *r, const char *why, bool permanent)
{
	if (!permanent && r->attempts < GATE_MAX_ATTEMPTS) {
		char delay[16];
		snprintf(delay, sizeof(delay), "%d", 5 * r->attempts * r->attempts);
		const char *p[] = {why, delay};
		run_update(
		    r,
		    "UPDATE gate_runs SET state = 'queued', error = $3, lease_owner = NULL,"
		    " lease_until = now() + make_interval(secs => $4::integer) WHERE id = $1 AND lease_owner = $2",
		    2, p);
		log_warn("gate run %lld (!%lld @ %.12s) will be retried: %s", (long long)r->id, (long long)r->mr_iid,
		         r->head_sha, why);
		return;
	}
	/* a final answer for the MR, so that it is not left pending: fail-closed or fail-open */
	char desc[FINDINGS_DESCRIPTION_MAX + 1], err[300] = "";
	bool open = r->fail_open || r->cfg.fail_on == FAIL_ON_NEVER;
	char cut[200];
	size_t n = findings_utf8_cut(why, strlen(why), 150);
	memcpy(cut, why, n);
	cut[n] = '\0';
	snprintf(desc, sizeof(desc), "could not evaluate the change (%s): %s", open ? "fail-open" : "fail-closed", cut);
	const char *posted = NULL;
	if (r->gl && r->status_ref[0] && still_current(r) &&
	    post_status(r, open ? "success" : "failed", desc, err, sizeof(err)) == CORE_OK)
		posted = open ? "success" : "failed";
	const char *p[] = {why, desc, posted};
	run_update(r,
	           "UPDATE gate_runs SET state = 'error', verdict = 'error', error = $3, description = $4,"
	           " status_posted = $5, finished_at = now(), lease_owner = NULL, lease_until = NULL"
	           " WHERE id = $1 AND lease_owner = $2",
	           3, p);
	if (posted)
		gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->id, r->pipeline_id, r->status_ref);
	count_verdict("error", r->age_s + (double)(scanrun_now_ms() - r->started_ms) / 1000.0);
	log_error("gate run %lld (!%lld @ %.12s) failed: %s", (long long)r->id, (long long)r->mr_iid, r->head_sha, why);
}

static bool permanent_status(enum core_status st)
{
	return st == CORE_ENOTFOUND || st == CORE_EFORBIDDEN || st == CORE_EUNAUTH || st == CORE_EINVAL ||
	       st == CORE_ECRYPTO;
}

static void execute(struct run *r)
{
	char err[512] = "";
	int64_t t0;
	enum core_status st;

	/* 1. config, fail mode, client, MR */
	st = gate_config_load(r->env->db, r->project_id, &r->cfg);
	if (st != CORE_OK) {
		fail_run(r, "could not read the repo's config", false);
		return;
	}
	if (!r->cfg.gated) {
		finish_quiet(r, "done", "skipped", r->cfg.why_not);
		return;
	}
	struct settings set;
	memset(&set, 0, sizeof(set));
	if (settings_get(r->env->db, r->env->default_resync_interval, &set) == CORE_OK)
		r->fail_open = set.fail_open;
	st = connection_client_shared(r->env->db, r->env->secret_key, &r->env->tune, &r->cc);
	if (st != CORE_OK) {
		fail_run(r, "no usable GitLab connection", st == CORE_ENOTFOUND || st == CORE_ECRYPTO);
		return;
	}
	r->gl = connection_client_gitlab(r->cc);
	t0 = scanrun_now_ms();
	st = read_mr(r, err, sizeof(err));
	run_timing(r, "mr_ms", t0);
	if (st == CORE_ESTATE) {
		finish_quiet(r, strncmp(err, "superseded", 10) == 0 ? "superseded" : "done",
		             strncmp(err, "superseded", 10) == 0 ? NULL : "skipped", err);
		return;
	}
	if (st != CORE_OK) {
		fail_run(r, err, permanent_status(st));
		return;
	}
	if (r->env->public_url && strlen(r->env->public_url) < 200)
		snprintf(r->target_url, sizeof(r->target_url), "%s/#/gates/%lld", r->env->public_url, (long long)r->id);

	/* 2. pending, at once */
	if (!r->pending_posted) {
		if (!still_current(r)) {
			finish_quiet(r, "superseded", NULL, "superseded before it started");
			return;
		}
		t0 = scanrun_now_ms();
		st = post_status(r, "pending", "mrgate is scanning the changes", err, sizeof(err));
		run_timing(r, "pending_ms", t0);
		if (st != CORE_OK) {
			fail_run(r, err, permanent_status(st) && st != CORE_EINVAL);
			return;
		}
		char pipe[24];
		snprintf(pipe, sizeof(pipe), "%lld", (long long)r->pipeline_id);
		const char *p[] = {r->pipeline_id > 0 ? pipe : NULL, r->status_ref};
		run_update(r,
		           "UPDATE gate_runs SET pending_posted = true, pipeline_id = $3::bigint, status_ref = $4"
		           " WHERE id = $1 AND lease_owner = $2",
		           2, p);
		r->pending_posted = true;
		/* the MR's head pipeline may be another one (merged results, a CI pipeline): pending there too */
		gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->id, r->pipeline_id, r->status_ref);
	}

	/* 3. diffs */
	r->added = diff_added_set_new();
	r->findings = finding_list_new();
	if (!r->added || !r->findings) {
		fail_run(r, "out of memory", false);
		return;
	}
	t0 = scanrun_now_ms();
	st = fetch_diffs(r, err, sizeof(err));
	run_timing(r, "diffs_ms", t0);
	if (st != CORE_OK) {
		fail_run(r, err, false);
		return;
	}
	cover_unscanned(r); /* GitLab's diff limits: read the rest from the trees, or say what was not scanned */

	/* 4. scanners */
	if (r->cfg.scans[GATE_SCAN_SECRETS]) {
		t0 = scanrun_now_ms();
		st = scan_secrets_set(r->added, r->findings);
		run_timing(r, "secrets_ms", t0);
		if (st != CORE_OK)
			run_note(r, true, "secrets: the scan failed (%s)", core_status_code(st));
	}
	for (int k = GATE_SCAN_SAST; k < GATE_SCAN_COUNT && !r->timed_out; k++) {
		if (past_deadline(r))
			r->timed_out = true;
		else if (r->cfg.scans[k])
			run_sarif_scanner(r, (enum gate_scan)k);
	}
	if (past_deadline(r))
		r->timed_out = true;

	/* 5. ignore_paths, verdict, results */
	for (size_t i = r->findings->count; i-- > 0;)
		if (ignored(r, r->findings->items[i].path))
			finding_list_remove(r->findings, i);
	struct gate_decision d;
	st = gate_decide(r->findings, r->cfg.fail_on, (const char *const *)r->notes, r->n_notes, r->problems,
	                 r->timed_out, r->env->timeout_s, r->fail_open, &d);
	if (st != CORE_OK) {
		fail_run(r, "could not describe the verdict", false);
		return;
	}
	st = store_results(r, &d);
	if (st != CORE_OK) {
		fail_run(r, "could not store the results", false);
		return;
	}
	if (!still_current(r)) {
		finish_quiet(r, "superseded", NULL, "superseded while scanning: verdict not posted");
		return;
	}
	t0 = scanrun_now_ms();
	st = post_status(r, d.state, d.description, err, sizeof(err));
	run_timing(r, "status_ms", t0);
	if (st != CORE_OK) {
		fail_run(r, err, false);
		return;
	}
	double seconds = r->age_s + (double)(scanrun_now_ms() - r->started_ms) / 1000.0;
	const char *p[] = {d.state};
	run_update(r,
	           "UPDATE gate_runs SET state = 'done', status_posted = $3, finished_at = now(), lease_owner = NULL,"
	           " lease_until = NULL WHERE id = $1 AND lease_owner = $2",
	           1, p);
	count_verdict(d.verdict, seconds);
	log_info("gate run %lld (!%lld @ %.12s): %s - %s", (long long)r->id, (long long)r->mr_iid, r->head_sha, d.state,
	         d.description);
	/* the verdict into every pipeline the run left pending and into the MR's head pipeline now */
	gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->id, r->pipeline_id, r->status_ref);
	/* 6. the sticky note (after the status: the verdict is what blocks the merge) */
	if (r->cfg.comment != GATE_COMMENT_OFF) {
		t0 = scanrun_now_ms();
		sticky_note(r, &d);
		run_timing(r, "note_ms", t0);
	}
}

static void run_free(struct run *r)
{
	gate_config_clear(&r->cfg);
	diff_added_set_free(r->added);
	finding_list_free(r->findings);
	for (size_t i = 0; i < r->n_notes; i++)
		free(r->notes[i]);
	scanrun_rmtree(r->workdir);
	connection_client_release(r->cc);
	json_object_put(r->timings);
}

enum core_status gate_run_next(const struct gate_env *env, bool *ran_out)
{
	struct store_conn *c = NULL;
	PGresult *res = NULL;
	char lease[16];
	*ran_out = false;
	/* with a heartbeat (gate_workers): one lease, renewed; else the whole run and a margin, in milliseconds */
	snprintf(lease, sizeof(lease), "%lld",
	         env->lease_ms > 0 ? (long long)env->lease_ms : ((long long)env->timeout_s + LEASE_MARGIN_S) * 1000);
	enum core_status st = store_get(env->db, &c);
	if (st != CORE_OK)
		return st;
	const char *p[] = {env->instance, lease};
	st = store_exec(
	    c,
	    "UPDATE gate_runs SET state = 'running', lease_owner = $1,"
	    " lease_until = now() + $2::bigint * interval '1 millisecond', heartbeat_at = now(),"
	    " attempts = attempts + 1, started_at = coalesce(started_at, now())"
	    " WHERE id = (SELECT id FROM gate_runs"
	    "   WHERE (state = 'queued' AND (lease_until IS NULL OR lease_until <= now()))"
	    "      OR (state = 'running' AND lease_until < now())"
	    "   ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
	    " RETURNING id, project_id, source_project_id, mr_iid, head_sha, source_branch, attempts,"
	    " pending_posted, coalesce(pipeline_id, 0) AS pipeline_id, coalesce(status_ref, '') AS status_ref,"
	    " extract(epoch FROM now() - created_at)::float8 AS age",
	    2, p, &res);
	store_put(env->db, c);
	if (st != CORE_OK || PQntuples(res) == 0) {
		PQclear(res);
		return st;
	}
	*ran_out = true;
	struct run *r = calloc(1, sizeof(*r));
	if (!r) {
		PQclear(res);
		return CORE_ENOMEM;
	}
	r->env = env;
	r->id = store_i64(res, 0, "id", 0);
	r->project_id = store_i64(res, 0, "project_id", 0);
	r->source_project_id = store_i64(res, 0, "source_project_id", 0);
	r->mr_iid = store_i64(res, 0, "mr_iid", 0);
	r->attempts = (int)store_i64(res, 0, "attempts", 1);
	r->pending_posted = store_bool(res, 0, "pending_posted", false);
	r->pipeline_id = store_i64(res, 0, "pipeline_id", 0);
	const char *age = store_str(res, 0, "age");
	r->age_s = age ? strtod(age, NULL) : 0;
	snprintf(r->head_sha, sizeof(r->head_sha), "%s", store_str(res, 0, "head_sha"));
	snprintf(r->source_branch, sizeof(r->source_branch), "%s", store_str(res, 0, "source_branch"));
	snprintf(r->status_ref, sizeof(r->status_ref), "%s", store_str(res, 0, "status_ref"));
	PQclear(res);
	r->started_ms = scanrun_now_ms();
	r->deadline_ms = r->started_ms + (int64_t)env->timeout_s * 1000;
	r->timings = json_object_new_object();
	log_debug("gate run %lld claimed (attempt %d)", (long long)r->id, r->attempts);
	bool renewed = env->lease_ms > 0 && inflight_add(r->id);
	if (env->lease_ms > 0 && !renewed)
		log_warn("gate run %lld: no heartbeat slot, its lease may run out before it ends", (long long)r->id);
	if (r->attempts > GATE_MAX_ATTEMPTS + 1) {
		/* a run that keeps dying with its worker: give up with a final answer */
		fail_run(r, "gave up after repeated worker failures", true);
	} else {
		execute(r);
	}
	if (renewed)
		inflight_remove(r->id);
	run_free(r);
	free(r);
	return CORE_OK;
}

/* --- reads ------------------------------------------------------------------------------------------------------ */

#define RUN_JSON                                                                                                       \
	"jsonb_build_object('id', g.id, 'repo_id', g.project_id, 'path_with_namespace', rp.path_with_namespace,"       \
	" 'source_project_id', g.source_project_id, 'mr_iid', g.mr_iid, 'head_sha', g.head_sha,"                       \
	" 'source_branch', g.source_branch, 'state', g.state, 'verdict', g.verdict, 'description', g.description,"     \
	" 'fail_on', g.fail_on, 'scans', to_jsonb(g.scans), 'counts', g.counts, 'notes', g.notes, 'error', g.error,"   \
	" 'pipeline_id', g.pipeline_id, 'status_posted', g.status_posted, 'note_id', g.note_id,"                       \
	" 'timings', g.timings, 'attempts', g.attempts, 'superseded_by', g.superseded_by, 'event_id', g.event_id,"     \
	" 'created_at', g.created_at, 'started_at', g.started_at, 'finished_at', g.finished_at,"                       \
	" 'mr_title', (SELECT e.payload #>> '{object_attributes,title}' FROM webhook_events e WHERE e.id = "           \
	"g.event_id),"                                                                                                 \
	" 'mr_web_url', coalesce((SELECT e.payload #>> '{object_attributes,url}' FROM webhook_events e"                \
	"   WHERE e.id = g.event_id), rp.web_url || '/-/merge_requests/' || g.mr_iid))"

static bool one_of(const char *v, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return true;
	return false;
}

enum core_status gate_list(struct store *db, const struct gate_filter *f, struct json_object **out, char *err,
                           size_t errlen)
{
	static const char *const verdicts[] = {"passed", "failed", "error", "timeout", "skipped", NULL};
	static const char *const states[] = {"queued", "running", "done", "superseded", "error", NULL};
	*out = NULL;
	if (f->verdict && !one_of(f->verdict, verdicts)) {
		snprintf(err, errlen, "verdict must be one of passed, failed, error, timeout, skipped");
		return CORE_EINVAL;
	}
	if (f->state && !one_of(f->state, states)) {
		snprintf(err, errlen, "state must be one of queued, running, done, superseded, error");
		return CORE_EINVAL;
	}
	int limit = f->limit <= 0 ? 50 : f->limit > 200 ? 200 : f->limit;
	char repo[24], mr[24], before[24], lim[16];
	snprintf(repo, sizeof(repo), "%lld", (long long)f->repo_id);
	snprintf(mr, sizeof(mr), "%lld", (long long)f->mr_iid);
	snprintf(before, sizeof(before), "%lld", (long long)f->before_id);
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *p[] = {f->repo_id > 0 ? repo : NULL,
	                   f->mr_iid > 0 ? mr : NULL,
	                   f->verdict,
	                   f->state,
	                   f->before_id > 0 ? before : NULL,
	                   lim};
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK)
		return st;
	st = store_exec(c,
	                "SELECT g.id, " RUN_JSON
	                "::text AS j FROM gate_runs g LEFT JOIN repos rp ON rp.id = g.project_id"
	                " WHERE ($1::bigint IS NULL OR g.project_id = $1::bigint)"
	                " AND ($2::bigint IS NULL OR g.mr_iid = $2::bigint)"
	                " AND ($3::text IS NULL OR g.verdict = $3) AND ($4::text IS NULL OR g.state = $4)"
	                " AND ($5::bigint IS NULL OR g.id < $5::bigint)"
	                " ORDER BY g.id DESC LIMIT $6::integer",
	                6, p, &r);
	if (st != CORE_OK)
		goto out;
	struct json_object *items = json_object_new_array(), *o = json_object_new_object();
	int n = PQntuples(r);
	for (int i = 0; i < n && i < limit; i++) {
		struct json_object *row = NULL;
		const char *j = store_str(r, i, "j");
		if (j && jsonx_parse(j, strlen(j), &row) == CORE_OK)
			json_object_array_add(items, row);
	}
	json_object_object_add(o, "items", items);
	if (n > limit) {
		char next[24];
		snprintf(next, sizeof(next), "%lld", (long long)store_i64(r, limit - 1, "id", 0));
		json_object_object_add(o, "next_cursor", json_object_new_string(next));
	} else {
		json_object_object_add(o, "next_cursor", NULL);
	}
	*out = o;
out:
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status gate_get(struct store *db, int64_t id, struct json_object **out)
{
	*out = NULL;
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *p[] = {ids};
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK)
		return st;
	st = store_exec(
	    c,
	    "SELECT (" RUN_JSON " || jsonb_build_object('findings', coalesce((SELECT jsonb_agg(jsonb_build_object("
	    "'scan_type', f.scan_type, 'rule_id', f.rule_id, 'title', f.title, 'severity', f.severity,"
	    " 'path', f.path, 'line', f.line, 'excerpt', f.excerpt, 'fingerprint', f.fingerprint) ORDER BY f.id)"
	    " FROM gate_findings f WHERE f.run_id = g.id), '[]'::jsonb)))::text AS j"
	    " FROM gate_runs g LEFT JOIN repos rp ON rp.id = g.project_id WHERE g.id = $1",
	    1, p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK) {
		const char *j = store_str(r, 0, "j");
		st = j ? jsonx_parse(j, strlen(j), out) : CORE_EINTERNAL;
		if (st != CORE_OK)
			st = CORE_EINTERNAL;
	}
	PQclear(r);
	store_put(db, c);
	return st;
}
