/*
 * core/gate_run.c
 *    One gate run, from claim to verdict (see gate_run.h).
 */
#include "gate_run.h"

#include "gate_inline.h"
#include "gate_report.h"
#include "gate_scan.h"
#include "gate_status.h"
#include "gate_store.h"
#include "gatebypass.h"
#include "gatehold.h"
#include "ignores.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "scan_secrets.h"
#include "settings.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_MARGIN_S 120

struct run {
	const struct gate_env *env;
	struct gate_queue_claim q; /* id, MR, head sha, attempts, pipeline_id and status_ref (updated as posted) */
	char target_url[256];
	int64_t started_ms;
	struct gate_config cfg;
	bool fail_open;
	struct gitlab *gl; /* borrowed from cc */
	struct connection_client *cc;
	struct gate_scan_state scan;
};

/* --- metrics ---------------------------------------------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_process(void)
{
	metrics_describe("mrgate_gate_verdicts_total", "counter",
	                 "finished gate runs by verdict (passed, failed, timeout, error, skipped, superseded)");
	metrics_describe("mrgate_gate_duration_seconds_sum", "counter",
	                 "total seconds from webhook to posted verdict, over finished gate runs");
	metrics_describe("mrgate_gate_duration_seconds_count", "counter", "finished gate runs timed");
	metrics_describe("mrgate_gate_duration_seconds_bucket", "counter",
	                 "finished gate runs by seconds from webhook to posted verdict (cumulative, le)");
	scan_secrets_init();
}

void gate_run_init(void)
{
	pthread_once(&init_once, init_process);
}

static void count_verdict(const char *verdict, double seconds)
{
	static const double bounds[] = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600};
	char labels[64];
	gate_run_init();
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

/* Seconds from the webhook to now. */
static double run_seconds(const struct run *r)
{
	return r->q.age_s + (double)(scanrun_now_ms() - r->started_ms) / 1000.0;
}

/* --- the run's row ---------------------------------------------------------------------------------------------- */

/* $1 = the run's id, $2 = our lease owner name: every write of a run's outcome is guarded by the lease. */
static void run_params(const struct run *r, struct store_params *p)
{
	memset(p, 0, sizeof(*p));
	store_param_i64(p, r->q.id);
	store_param_str(p, r->env->instance);
}

/* An UPDATE of the run's row under our lease: $1 id, $2 owner, then $3.. the given strings (NULL: SQL NULL). */
static void run_write(const struct run *r, const char *sql, const char *a, const char *b, const char *c)
{
	struct store_params p;
	run_params(r, &p);
	store_param_str(&p, a);
	store_param_str(&p, b);
	store_param_str(&p, c);
	store_run1(r->env->db, sql, &p, NULL);
}

/* Is the run still the one to report for its MR (not superseded, still ours)? */
static bool still_current(const struct run *r)
{
	struct store_params p;
	PGresult *res = NULL;
	bool ok = false;
	run_params(r, &p);
	if (store_run1(r->env->db, "SELECT (state = 'running' AND lease_owner = $2) AS ok FROM gate_runs WHERE id = $1",
	               &p, &res) == CORE_OK &&
	    PQntuples(res) == 1)
		ok = store_bool(res, 0, "ok", false);
	PQclear(res);
	return ok;
}

/* Finish a run that does not post a verdict (superseded, MR closed, repo no longer gated). */
static void finish_quiet(struct run *r, const char *state, const char *verdict, const char *why)
{
	run_write(r,
	          "UPDATE gate_runs SET state = $3, verdict = $4, error = $5, finished_at = now(), lease_owner = NULL,"
	          " lease_until = NULL WHERE id = $1 AND lease_owner = $2",
	          state, verdict, why);
	count_verdict(strcmp(state, "superseded") == 0 ? "superseded" : verdict, -1);
	log_info("gate run %lld (!%lld @ %.12s): %s", (long long)r->q.id, (long long)r->q.mr_iid, r->q.head_sha, why);
}

static enum core_status post_status(struct run *r, const char *state, const char *description, char *err,
                                    size_t errlen);

/*
 * A run superseded by a newer push after it posted pending on its head: that pending status would stay forever (its
 * external pipeline "pending" in the project's pipelines; never a verdict on a head the MR left), so it is canceled,
 * here and in every other pipeline the run entered (core/gatehold.h).
 */
static void cancel_superseded(struct run *r)
{
	char err[512] = "";
	if (!r->q.pending_posted)
		return;
	if (post_status(r, "canceled", GATE_SUPERSEDED_DESCRIPTION, err, sizeof(err)) != CORE_OK) {
		log_warn("gate run %lld: could not cancel its pending status after a newer push: %s",
		         (long long)r->q.id, err);
		return;
	}
	struct store_params p = {0};
	store_param_i64(&p, r->q.id);
	store_param_str(&p, GATE_SUPERSEDED_DESCRIPTION);
	store_run1(
	    r->env->db,
	    "UPDATE gate_runs SET status_posted = 'canceled', description = $2 WHERE id = $1 AND state = 'superseded'",
	    &p, NULL);
	gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->q.id, r->q.pipeline_id, r->q.status_ref);
}

/*
 * POST a commit status on the run's head (409 retried). A head pipeline that refuses it (gone, or not on this sha)
 * makes the run post on its source branch instead.
 */
static enum core_status post_status(struct run *r, const char *state, const char *description, char *err, size_t errlen)
{
	struct gitlab_response *resp = NULL;
	enum core_status st;
	for (;;) {
		struct gate_status s = {.state = state,
		                        .description = description,
		                        .ref = r->q.status_ref,
		                        .target_url = r->target_url,
		                        .pipeline_id = r->q.pipeline_id};
		st = gate_status_post(r->gl, r->q.source_project_id, r->q.head_sha, &s, GATE_STATUS_TRIES, &resp);
		if (st != CORE_ENOTFOUND || r->q.pipeline_id == 0)
			break;
		log_warn("gate run %lld: pipeline %lld refused the status (%s); posting on the branch",
		         (long long)r->q.id, (long long)r->q.pipeline_id, gate_status_why(resp, st));
		r->q.pipeline_id = 0;
		snprintf(r->q.status_ref, sizeof(r->q.status_ref), "%s", r->q.source_branch);
		gitlab_response_free(resp);
		resp = NULL;
	}
	if (st != CORE_OK)
		snprintf(err, errlen, "could not post the %s status on %.12s: %.300s", state, r->q.head_sha,
		         gate_status_why(resp, st));
	gitlab_response_free(resp);
	return st;
}

/* A transient failure: back to the queue with a backoff. */
static void requeue(struct run *r, const char *why)
{
	struct store_params p;
	run_params(r, &p);
	store_param_str(&p, why);
	store_param_i64(&p, 5 * r->q.attempts * r->q.attempts);
	store_run1(r->env->db,
	           "UPDATE gate_runs SET state = 'queued', error = $3, lease_owner = NULL,"
	           " lease_until = now() + make_interval(secs => $4::integer) WHERE id = $1 AND lease_owner = $2",
	           &p, NULL);
	log_warn("gate run %lld (!%lld @ %.12s) will be retried: %s", (long long)r->q.id, (long long)r->q.mr_iid,
	         r->q.head_sha, why);
}

/* A transient failure goes back to the queue; after GATE_MAX_ATTEMPTS, or a permanent one, a final answer. */
static void fail_run(struct run *r, const char *why, bool permanent)
{
	if (!permanent && r->q.attempts < GATE_MAX_ATTEMPTS) {
		requeue(r, why);
		return;
	}
	/* a final answer for the MR, so that it is not left pending: fail-closed or fail-open */
	char desc[FINDINGS_DESCRIPTION_MAX + 1], err[300] = "", cut[200];
	bool open = r->fail_open || r->cfg.fail_on == FAIL_ON_NEVER;
	size_t n = findings_utf8_cut(why, strlen(why), 150);
	memcpy(cut, why, n);
	cut[n] = '\0';
	snprintf(desc, sizeof(desc), "could not evaluate the change (%s): %s", open ? "fail-open" : "fail-closed", cut);
	const char *posted = NULL;
	if (r->gl && r->q.status_ref[0] && still_current(r) &&
	    post_status(r, open ? "success" : "failed", desc, err, sizeof(err)) == CORE_OK)
		posted = open ? "success" : "failed";
	run_write(r,
	          "UPDATE gate_runs SET state = 'error', verdict = 'error', error = $3, description = $4,"
	          " status_posted = $5, finished_at = now(), lease_owner = NULL, lease_until = NULL"
	          " WHERE id = $1 AND lease_owner = $2",
	          why, desc, posted);
	if (posted)
		gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->q.id, r->q.pipeline_id, r->q.status_ref);
	count_verdict("error", run_seconds(r));
	log_error("gate run %lld (!%lld @ %.12s) failed: %s", (long long)r->q.id, (long long)r->q.mr_iid, r->q.head_sha,
	          why);
}

static bool permanent_status(enum core_status st)
{
	return st == CORE_ENOTFOUND || st == CORE_EFORBIDDEN || st == CORE_EUNAUTH || st == CORE_EINVAL ||
	       st == CORE_ECRYPTO;
}

/* --- 1. config and MR ------------------------------------------------------------------------------------------- */

static bool sha_ok(const char *s)
{
	size_t n = strspn(s, "0123456789abcdefABCDEF");
	return n >= 7 && n <= 64 && s[n] == '\0';
}

/* What the MR says beyond its head: source branch, changes_count, base sha, and the head pipeline to attach to. */
static void read_mr_fields(struct run *r, const struct json_object *mr)
{
	const char *branch = NULL, *count = NULL, *base = NULL, *pipe_sha = NULL, *pipe_ref = NULL;
	if (jsonx_str(mr, "source_branch", &branch) && *branch && strlen(branch) < sizeof(r->q.source_branch))
		snprintf(r->q.source_branch, sizeof(r->q.source_branch), "%s", branch);
	if (jsonx_str(mr, "changes_count", &count) && strlen(count) < sizeof(r->scan.changes_count))
		snprintf(r->scan.changes_count, sizeof(r->scan.changes_count), "%s", count);
	if (jsonx_path_str(mr, "diff_refs.base_sha", &base) && sha_ok(base))
		snprintf(r->scan.base_sha, sizeof(r->scan.base_sha), "%s", base);
	/* attach to the MR head pipeline when it is on the head sha (GITLAB-API.md §5.2) */
	int64_t pipe_id = 0;
	if (r->q.pipeline_id == 0 && !r->q.pending_posted && jsonx_path_int64(mr, "head_pipeline.id", &pipe_id) &&
	    jsonx_path_str(mr, "head_pipeline.sha", &pipe_sha) && strcmp(pipe_sha, r->q.head_sha) == 0) {
		r->q.pipeline_id = pipe_id;
		if (jsonx_path_str(mr, "head_pipeline.ref", &pipe_ref) && *pipe_ref &&
		    strlen(pipe_ref) < sizeof(r->q.status_ref))
			snprintf(r->q.status_ref, sizeof(r->q.status_ref), "%s", pipe_ref);
	}
	if (!r->q.status_ref[0])
		snprintf(r->q.status_ref, sizeof(r->q.status_ref), "%s", r->q.source_branch);
}

/* GET the MR: the head sha, state and head pipeline. CORE_ESTATE when superseded or no longer open. */
static enum core_status read_mr(struct run *r, char *err, size_t errlen)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	int64_t t0 = scanrun_now_ms();
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld", (long long)r->q.project_id,
	         (long long)r->q.mr_iid);
	enum core_status st = gitlab_request(r->gl, "GET", path, NULL, &resp);
	const char *sha = NULL, *state = NULL;
	if (st != CORE_OK) {
		snprintf(err, errlen, "could not read merge request !%lld: %.300s", (long long)r->q.mr_iid,
		         gate_status_why(resp, st));
	} else if (jsonx_str(resp->json, "sha", &sha) && *sha && strcmp(sha, r->q.head_sha) != 0) {
		snprintf(err, errlen, "superseded: the merge request's head is now %.12s", sha);
		st = CORE_ESTATE;
	} else if (jsonx_str(resp->json, "state", &state) && strcmp(state, "opened") != 0) {
		snprintf(err, errlen, "the merge request is %s", state);
		st = CORE_ESTATE;
	} else {
		read_mr_fields(r, resp->json);
	}
	gitlab_response_free(resp);
	gate_scan_timing(&r->scan, "mr_ms", t0);
	return st;
}

/* Step 1: config, fail mode, GitLab client, MR. false when the run ended here. */
static bool prepare(struct run *r)
{
	char err[512] = "";
	enum core_status st = gate_config_load(r->env->db, r->q.project_id, &r->cfg);
	if (st != CORE_OK) {
		fail_run(r, "could not read the repo's config", false);
		return false;
	}
	if (!r->cfg.gated) {
		finish_quiet(r, "done", "skipped", r->cfg.why_not);
		return false;
	}
	struct settings set;
	memset(&set, 0, sizeof(set));
	if (settings_get(r->env->db, r->env->default_resync_interval, &set) == CORE_OK)
		r->fail_open = set.fail_open;
	st = connection_client_shared(r->env->db, r->env->secret_key, &r->env->tune, &r->cc);
	if (st != CORE_OK) {
		fail_run(r, "no usable GitLab connection", st == CORE_ENOTFOUND || st == CORE_ECRYPTO);
		return false;
	}
	r->gl = connection_client_gitlab(r->cc);
	r->scan.gl = r->gl;
	st = read_mr(r, err, sizeof(err));
	if (st == CORE_ESTATE) {
		bool superseded = strncmp(err, "superseded", 10) == 0;
		finish_quiet(r, superseded ? "superseded" : "done", superseded ? NULL : "skipped", err);
		return false;
	}
	if (st != CORE_OK) {
		fail_run(r, err, permanent_status(st));
		return false;
	}
	if (r->env->public_url && strlen(r->env->public_url) < 200)
		snprintf(r->target_url, sizeof(r->target_url), "%s/#/gates/%lld", r->env->public_url,
		         (long long)r->q.id);
	return true;
}

/* Step 2: pending, at once (once per run, also over retries). false when the run ended here. */
static bool post_pending(struct run *r)
{
	char err[512] = "";
	if (r->q.pending_posted)
		return true;
	if (!still_current(r)) {
		finish_quiet(r, "superseded", NULL, "superseded before it started");
		cancel_superseded(r); /* a pending status of an earlier attempt */
		return false;
	}
	int64_t t0 = scanrun_now_ms();
	enum core_status st = post_status(r, "pending", "mrgate is scanning the changes", err, sizeof(err));
	gate_scan_timing(&r->scan, "pending_ms", t0);
	if (st != CORE_OK) {
		fail_run(r, err, permanent_status(st) && st != CORE_EINVAL);
		return false;
	}
	struct store_params p;
	run_params(r, &p);
	store_param_i64_or_null(&p, r->q.pipeline_id);
	store_param_str(&p, r->q.status_ref);
	store_run1(r->env->db,
	           "UPDATE gate_runs SET pending_posted = true, pipeline_id = $3::bigint, status_ref = $4"
	           " WHERE id = $1 AND lease_owner = $2",
	           &p, NULL);
	r->q.pending_posted = true;
	/* the MR's head pipeline may be another one (merged results, a CI pipeline): pending there too */
	gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->q.id, r->q.pipeline_id, r->q.status_ref);
	return true;
}

/* Step 3: diffs, trees, scanners, ignore_paths. false when the run ended here. */
static bool scan(struct run *r)
{
	char err[512] = "";
	gate_scan_init(&r->scan, true);
	if (!r->scan.added || !r->scan.findings) {
		fail_run(r, "out of memory", false);
		return false;
	}
	if (gate_scan_diffs(&r->scan, err, sizeof(err)) != CORE_OK) {
		fail_run(r, err, false);
		return false;
	}
	gate_scan_cover(&r->scan); /* GitLab's diff limits: read the rest from the trees, or say what was not scanned */
	gate_scan_all(&r->scan);
	gate_scan_drop_ignored(&r->scan);
	/* findings an editor ignored (core/ignores.h) are set apart: listed, not counted */
	struct ignore_set ignores;
	if (ignores_active(r->env->db, r->q.project_id, &ignores) != CORE_OK) {
		fail_run(r, "could not read the ignored findings", false);
		return false;
	}
	gate_scan_set_apart(&r->scan, &ignores);
	ignore_set_clear(&ignores);
	return true;
}

/* --- 4. the sticky note ----------------------------------------------------------------------------------------- */

/* Find our note among the MR's notes after a POST that may have been applied. */
static enum core_status find_note_page(struct json_object *page, void *user)
{
	int64_t *found = user;
	size_t n = json_object_array_length(page);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(page, i);
		const char *body = NULL;
		int64_t id = 0;
		if (jsonx_str(e, "body", &body) && strncmp(body, GATE_NOTE_MARKER, strlen(GATE_NOTE_MARKER)) == 0 &&
		    jsonx_int64(e, "id", &id))
			*found = id;
	}
	return CORE_OK;
}

/* Edit note_id (0: none yet) or create the note; the note's id after it, 0 when there is none. */
static int64_t note_write(struct run *r, int64_t note_id, const char *text)
{
	char path[200];
	struct gitlab_response *resp = NULL;
	struct json_object *jb = jx_object();
	json_object_object_add(jb, "body", jx_str(text));
	if (note_id > 0) {
		snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/notes/%lld",
		         (long long)r->q.project_id, (long long)r->q.mr_iid, (long long)note_id);
		enum core_status st = gitlab_request(r->gl, "PUT", path, jb, &resp);
		if (st == CORE_ENOTFOUND)
			note_id = 0; /* someone deleted it: make a new one */
		else if (st != CORE_OK)
			log_warn("gate run %lld: could not edit note %lld: %s", (long long)r->q.id, (long long)note_id,
			         gate_status_why(resp, st));
		gitlab_response_free(resp);
		resp = NULL;
	}
	if (note_id == 0) {
		snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/notes", (long long)r->q.project_id,
		         (long long)r->q.mr_iid);
		enum core_status st = gitlab_request(r->gl, "POST", path, jb, &resp);
		if (st == CORE_OK) {
			jsonx_int64(resp->json, "id", &note_id);
		} else if (resp && resp->kind == GITLAB_ERR_MAYBE_APPLIED) {
			char lpath[260];
			snprintf(lpath, sizeof(lpath), "%.150s?per_page=100&sort=desc&order_by=created_at", path);
			if (gitlab_paginate(r->gl, lpath, find_note_page, &note_id, NULL) != CORE_OK)
				note_id = 0;
		} else {
			log_warn("gate run %lld: could not create the MR note: %s", (long long)r->q.id,
			         gate_status_why(resp, st));
		}
	}
	gitlab_response_free(resp);
	json_object_put(jb);
	return note_id;
}

/*
 * Create or edit the sticky note. The MR's row in mr_notes is locked while GitLab is called, so two runs of one
 * MR never both create a note. Failures are logged, never fatal for the verdict.
 */
static void sticky_note(struct run *r, const struct gate_decision *d, const bool *inline_shown)
{
	struct store_conn *c = NULL;
	PGresult *res = NULL;
	struct store_params p = {0};
	bool want = r->cfg.comment == GATE_COMMENT_ALWAYS ||
	            ((r->cfg.comment == GATE_COMMENT_ON_FINDINGS || r->cfg.comment == GATE_COMMENT_INLINE) &&
	             (r->scan.findings->count > 0 || strcmp(d->state, "failed") == 0));
	store_param_i64(&p, r->q.project_id);
	store_param_i64(&p, r->q.mr_iid);
	if (store_get(r->env->db, &c) != CORE_OK)
		return;
	if (store_run(c, "INSERT INTO mr_notes (project_id, mr_iid) VALUES ($1, $2) ON CONFLICT DO NOTHING", &p,
	              NULL) != CORE_OK ||
	    store_begin(c) != CORE_OK ||
	    store_run(c, "SELECT note_id FROM mr_notes WHERE project_id = $1 AND mr_iid = $2 FOR UPDATE", &p, &res) !=
	        CORE_OK ||
	    PQntuples(res) != 1)
		goto out;
	int64_t note_id = store_i64(res, 0, "note_id", 0);
	if (r->cfg.comment == GATE_COMMENT_OFF || (!want && note_id == 0))
		goto out;
	PGresult *by = NULL; /* a carried bypass: who and why head the note (core/gatebypass.h) */
	struct store_params pb = {0};
	store_param_i64(&pb, r->q.id);
	if (strcmp(d->verdict, "bypassed") == 0 &&
	    (store_run(c, "SELECT bypassed_by, bypass_reason FROM gate_runs WHERE id = $1", &pb, &by) != CORE_OK ||
	     PQntuples(by) != 1)) {
		PQclear(by);
		goto out;
	}
	struct gate_report rep = {.state = d->state,
	                          .description = d->description,
	                          .head_sha = r->q.head_sha,
	                          .report_url = r->target_url,
	                          .findings = r->scan.findings,
	                          .ignored = r->scan.ignored,
	                          .ignore_reasons = (const char *const *)r->scan.ignore_reasons,
	                          .notes = (const char *const *)r->scan.notes,
	                          .n_notes = r->scan.n_notes,
	                          .inline_shown = inline_shown,
	                          .bypassed_by = by ? store_str(by, 0, "bypassed_by") : NULL,
	                          .bypass_reason = by ? store_str(by, 0, "bypass_reason") : NULL};
	char *text = gate_note_render(&rep);
	PQclear(by);
	note_id = note_write(r, note_id, text);
	free(text);
	if (note_id > 0) {
		store_param_i64(&p, note_id);
		struct store_params pr = {0};
		store_param_i64(&pr, r->q.id);
		store_param_i64(&pr, note_id);
		if (store_run(
		        c, "UPDATE mr_notes SET note_id = $3, updated_at = now() WHERE project_id = $1 AND mr_iid = $2",
		        &p, NULL) == CORE_OK &&
		    store_commit(c) == CORE_OK)
			store_run(c, "UPDATE gate_runs SET note_id = $2 WHERE id = $1", &pr, NULL);
	}
out:
	store_rollback(c);
	PQclear(res);
	store_put(r->env->db, c);
}

/* --- the whole run ---------------------------------------------------------------------------------------------- */

/* Step 4: verdict, results, status, pipelines, note. */
static void conclude(struct run *r)
{
	char err[512] = "";
	struct gate_decision d;
	struct gate_set_apart apart = {.ignored = r->scan.ignored ? r->scan.ignored->count : 0,
	                               .skipped_files = r->scan.path_skipped};
	enum core_status st =
	    gate_decide(r->scan.findings, r->cfg.fail_on, (const char *const *)r->scan.notes, r->scan.n_notes, &apart,
	                r->scan.problems, r->scan.timed_out, r->env->timeout_s, r->fail_open, &d);
	if (st != CORE_OK) {
		fail_run(r, "could not describe the verdict", false);
		return;
	}
	if (gate_store_results(r->env->db, r->q.id, r->env->instance, &d, &r->cfg, &r->scan) != CORE_OK) {
		fail_run(r, "could not store the results", false);
		return;
	}
	if (!still_current(r)) {
		finish_quiet(r, "superseded", NULL, "superseded while scanning: verdict not posted");
		cancel_superseded(r);
		return;
	}
	/* an editor's bypass of this head commit holds until a new push (core/gatebypass.h) */
	if (strcmp(d.state, "failed") == 0 &&
	    gate_bypass_carry(r->env->db, r->q.id, d.description, sizeof(d.description))) {
		d.state = "success";
		d.verdict = "bypassed";
	}
	int64_t t0 = scanrun_now_ms();
	st = post_status(r, d.state, d.description, err, sizeof(err));
	gate_scan_timing(&r->scan, "status_ms", t0);
	if (st != CORE_OK) {
		fail_run(r, err, false);
		return;
	}
	double seconds = run_seconds(r);
	struct store_params p;
	run_params(r, &p);
	store_param_str(&p, d.state);
	store_run1(r->env->db,
	           "UPDATE gate_runs SET state = 'done', status_posted = $3, finished_at = now(), lease_owner = NULL,"
	           " lease_until = NULL WHERE id = $1 AND lease_owner = $2",
	           &p, NULL);
	count_verdict(d.verdict, seconds);
	log_info("gate run %lld (!%lld @ %.12s): %s - %s", (long long)r->q.id, (long long)r->q.mr_iid, r->q.head_sha,
	         d.state, d.description);
	/* the verdict into every pipeline the run left pending and into the MR's head pipeline now */
	gatehold_sync_run(r->env->db, r->gl, r->env->public_url, r->q.id, r->q.pipeline_id, r->q.status_ref);
	/* comment mode inline: a discussion on the line per new finding (core/gate_inline.h), the rest in the note; in
	 * any mode the threads an inline run opened are resolved once their finding is gone */
	t0 = scanrun_now_ms();
	struct gate_inline_target it = {.run_id = r->q.id,
	                                .project_id = r->q.project_id,
	                                .mr_iid = r->q.mr_iid,
	                                .head_sha = r->q.head_sha,
	                                .report_url = r->target_url,
	                                .post = r->cfg.comment == GATE_COMMENT_INLINE};
	bool *on_line = gate_inline_sync(r->env->db, r->gl, &it, r->scan.findings);
	/* the sticky note (after the status: the verdict is what blocks the merge) */
	if (r->cfg.comment != GATE_COMMENT_OFF) {
		sticky_note(r, &d, on_line);
		gate_scan_timing(&r->scan, "note_ms", t0);
	}
	free(on_line);
}

enum core_status gate_run_claim(const struct gate_env *env, struct gate_queue_claim *out, bool *claimed_out)
{
	/* with a heartbeat (gate_workers): one lease, renewed; else the whole run and a margin, in milliseconds */
	int64_t lease = env->lease_ms > 0 ? env->lease_ms : ((int64_t)env->timeout_s + LEASE_MARGIN_S) * 1000;
	return gate_queue_claim(env->db, env->instance, lease, out, claimed_out);
}

void gate_run_execute(const struct gate_env *env, const struct gate_queue_claim *claim)
{
	struct run *r = xcalloc(1, sizeof(*r));
	r->env = env;
	r->q = *claim;
	r->started_ms = scanrun_now_ms();
	r->scan = (struct gate_scan_state){.cfg = &r->cfg,
	                                   .scanners = env->scanners,
	                                   .tree_max_bytes = env->tree_max_bytes,
	                                   .run_id = r->q.id,
	                                   .project_id = r->q.project_id,
	                                   .source_project_id = r->q.source_project_id,
	                                   .mr_iid = r->q.mr_iid,
	                                   .head_sha = r->q.head_sha,
	                                   .deadline_ms = r->started_ms + (int64_t)env->timeout_s * 1000};
	gate_scan_init(&r->scan, false);
	log_debug("gate run %lld claimed (attempt %d)", (long long)r->q.id, r->q.attempts);
	if (r->q.attempts > GATE_MAX_ATTEMPTS + 1)
		/* a run that keeps dying with its worker: give up with a final answer */
		fail_run(r, "gave up after repeated worker failures", true);
	else if (prepare(r) && post_pending(r) && scan(r))
		conclude(r);
	gate_config_clear(&r->cfg);
	gate_scan_free(&r->scan);
	connection_client_release(r->cc);
	free(r);
}

enum core_status gate_run_next(const struct gate_env *env, bool *ran_out)
{
	struct gate_queue_claim claim;
	enum core_status st = gate_run_claim(env, &claim, ran_out);
	if (st == CORE_OK && *ran_out)
		gate_run_execute(env, &claim);
	return st;
}
