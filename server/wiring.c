/*
 * server/wiring.c
 *    How this process connects the engines: the apply job handler (job engine -> apply engine, bounded by the
 *    GitLab slots), the jobs that configuration writes and resyncs start, and the resync's follow-up.
 *
 * Design: every GitLab change goes through a job of kind "apply" with one item per repo, so it survives a crash
 * (another instance, or this one restarted, takes the items over) and its progress is GET /api/jobs/{id}.
 * Writes are refused while the stored token is expired or revoked: the item fails with the reason.
 */
#include "app.h"
#include "apply.h"
#include "audit.h"
#include "gateconfig.h"
#include "gatehold.h"
#include "grouphook.h"
#include "jobs.h"
#include "jsonx.h"
#include "limiter.h"
#include "log.h"
#include "routes.h"
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void app_apply_ctx(const struct app *app, struct connection_client *cc, char *buf, size_t cap, struct apply_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	apply_hook_url(app->cfg.public_url, buf, cap);
	ctx->hook_url = buf;
	ctx->webhook_secret = connection_client_webhook_secret(cc);
	/* GitLab cannot verify TLS on a plain-http URL; the flag is meaningless there, so it is sent as false */
	ctx->ssl_verify = strncmp(buf, "https://", 8) == 0;
}

static enum job_outcome apply_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct app *app = user;
	struct connection_client *cc = NULL;
	struct connection_tuning tune;
	struct connection_info ci;
	struct apply_result ar;
	enum job_outcome outcome = JOB_ITEM_ERROR;
	int64_t run = 0;
	memset(&ci, 0, sizeof(ci));
	memset(&ar, 0, sizeof(ar));
	if (!item->has_repo) {
		jobs_result_message(res, "an apply item needs a repository");
		return JOB_ITEM_ERROR;
	}
	jsonx_int64(item->params, "run", &run);

	/* the token's health is read fresh: a resync may have found it expired since the client was opened */
	enum core_status st = connection_get(app->db, &ci);
	if (st == CORE_OK && strcmp(ci.token_status, "ok") != 0) {
		jobs_result_message(res, "%s",
		                    ci.token_problem[0] ? ci.token_problem : "the GitLab token is not valid");
		apply_abandon(app->db, &item->repo_id, 1, run, res->message);
		goto out;
	}
	if (st == CORE_OK && strcmp(ci.capability, "gate") != 0) {
		jobs_result_message(res, "the GitLab token is read-only: update the connection with a token that has "
		                         "the api scope");
		apply_abandon(app->db, &item->repo_id, 1, run, res->message);
		goto out;
	}
	app_gitlab_tuning(app, &tune);
	if (st == CORE_OK)
		st = connection_client_shared(app->db, app->secret_key, &tune, &cc);
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "no GitLab connection: connect one on the Connection page");
		apply_abandon(app->db, &item->repo_id, 1, run, res->message);
		goto out;
	}
	if (st != CORE_OK) {
		jobs_result_message(res, "could not open the GitLab connection (%s)", core_status_code(st));
		outcome = JOB_ITEM_RETRY;
		goto out;
	}
	char hook_url[600];
	struct apply_ctx ctx;
	app_apply_ctx(app, cc, hook_url, sizeof(hook_url), &ctx);
	ctx.run = run;
	struct settings set;
	if (settings_get(app->db, app->cfg.resync_interval, &set) == CORE_OK && strcmp(set.hook_mode, "group") == 0)
		ctx.group_mode = true; /* the group hook delivers: no project hook */
	limiter_acquire(app->gitlab_slots);
	st = apply_repo(app->db, connection_client_gitlab(cc), &ctx, item->repo_id, false, &ar);
	limiter_release(app->gitlab_slots);
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "repository %lld is unknown", (long long)item->repo_id);
		goto out;
	}
	if (st != CORE_OK) {
		jobs_result_message(res, "could not apply (%s)", core_status_code(st));
		outcome = JOB_ITEM_RETRY;
		goto out;
	}
	jobs_result_message(res, "%s", ar.message);
	res->details = json_object_new_object();
	json_object_object_add(res->details, "reads", json_object_new_int(ar.reads));
	json_object_object_add(res->details, "writes", json_object_new_int(ar.writes));
	switch (ar.outcome) {
	case APPLY_CHANGED: outcome = JOB_ITEM_CHANGED; break;
	case APPLY_UNCHANGED: outcome = JOB_ITEM_UNCHANGED; break;
	case APPLY_SKIPPED: outcome = JOB_ITEM_SKIPPED; break;
	case APPLY_ERROR: outcome = ar.retryable ? JOB_ITEM_RETRY : JOB_ITEM_ERROR; break;
	}
out:
	apply_result_clear(&ar);
	connection_info_clear(&ci);
	connection_client_release(cc);
	return outcome;
}

static struct json_object *start_apply_job(struct app *app, const char *actor, int64_t run, const int64_t *ids,
                                           size_t n, int64_t *job_id_out);

/*
 * Group-hook mode: a project GitLab announced with project_create (core/webhook.c queued the job). Read it, store
 * it so that it inherits its group's config, and start an apply job when that config gates it.
 */
static enum job_outcome onboard_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct app *app = user;
	struct connection_client *cc = NULL;
	struct connection_tuning tune;
	struct gateconfig_marked marked;
	struct settings set;
	char msg[400] = "";
	memset(&marked, 0, sizeof(marked));
	if (!item->has_repo) {
		jobs_result_message(res, "an onboard item needs a project id");
		return JOB_ITEM_ERROR;
	}
	if (settings_get(app->db, app->cfg.resync_interval, &set) != CORE_OK)
		return JOB_ITEM_RETRY;
	if (strcmp(set.hook_mode, "group") != 0) {
		jobs_result_message(res, "not in group-hook mode: the next resync lists the project");
		return JOB_ITEM_SKIPPED;
	}
	app_gitlab_tuning(app, &tune);
	enum core_status st = connection_client_shared(app->db, app->secret_key, &tune, &cc);
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "no GitLab connection");
		return JOB_ITEM_ERROR;
	}
	if (st != CORE_OK) {
		jobs_result_message(res, "could not open the GitLab connection (%s)", core_status_code(st));
		return JOB_ITEM_RETRY;
	}
	limiter_acquire(app->gitlab_slots);
	st = grouphook_onboard(app->db, connection_client_gitlab(cc), item->repo_id, &marked, msg, sizeof(msg));
	limiter_release(app->gitlab_slots);
	connection_client_release(cc);
	if (st != CORE_OK) {
		jobs_result_message(res, "%s", msg[0] ? msg : core_status_code(st));
		gateconfig_marked_clear(&marked);
		return st == CORE_ENOTFOUND ? JOB_ITEM_ERROR : JOB_ITEM_RETRY;
	}
	int64_t job_id = 0;
	if (marked.n > 0) {
		json_object_put(
		    start_apply_job(app, "system (project_create)", marked.run, marked.ids, marked.n, &job_id));
		log_info("onboard: %s (apply job %lld)", msg, (long long)job_id);
	}
	gateconfig_marked_clear(&marked);
	jobs_result_message(res, "%s", msg);
	if (job_id) {
		res->details = json_object_new_object();
		json_object_object_add(res->details, "apply_job", json_object_new_int64(job_id));
	}
	return job_id ? JOB_ITEM_CHANGED : JOB_ITEM_UNCHANGED;
}

/*
 * A pipeline event (core/webhook.c queued the job): post the MR's gate state into that pipeline so that GitLab's
 * merge check, which reads only the MR's head pipeline, sees it (core/gatehold.h).
 */
static enum job_outcome hold_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct app *app = user;
	struct connection_client *cc = NULL;
	struct connection_tuning tune;
	int64_t pipeline_id = 0, mr_iid = 0;
	const char *sha = NULL;
	char msg[400] = "";
	if (!item->has_repo || !jsonx_int64(item->params, "pipeline_id", &pipeline_id) ||
	    !jsonx_int64(item->params, "mr_iid", &mr_iid) || !jsonx_str(item->params, "sha", &sha)) {
		jobs_result_message(res, "a hold item needs a project, pipeline_id, mr_iid and sha");
		return JOB_ITEM_ERROR;
	}
	app_gitlab_tuning(app, &tune);
	enum core_status st = connection_client_shared(app->db, app->secret_key, &tune, &cc);
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "no GitLab connection");
		return JOB_ITEM_ERROR;
	}
	if (st != CORE_OK) {
		jobs_result_message(res, "could not open the GitLab connection (%s)", core_status_code(st));
		return JOB_ITEM_RETRY;
	}
	limiter_acquire(app->gitlab_slots);
	st = gatehold_pipeline(app->db, connection_client_gitlab(cc), app->cfg.public_url, item->repo_id, mr_iid,
	                       pipeline_id, sha, msg, sizeof(msg));
	limiter_release(app->gitlab_slots);
	connection_client_release(cc);
	jobs_result_message(res, "%s", msg[0] ? msg : core_status_code(st));
	if (st != CORE_OK)
		return st == CORE_ENOTFOUND || st == CORE_EINVAL || st == CORE_EFORBIDDEN ? JOB_ITEM_ERROR
		                                                                          : JOB_ITEM_RETRY;
	return JOB_ITEM_CHANGED;
}

struct jobs_runner *app_jobs_start(struct app *app)
{
	app->gitlab_slots = limiter_new(app->cfg.gitlab_concurrency);
	if (!app->gitlab_slots)
		return NULL;
	struct jobs_runner_opts o;
	memset(&o, 0, sizeof(o));
	/* enough workers to fill the GitLab slots: a worker waiting on the database holds no slot */
	o.workers = app->cfg.workers > app->cfg.gitlab_concurrency ? app->cfg.workers : app->cfg.gitlab_concurrency;
	o.backoff_base_ms = app->cfg.gitlab_backoff_ms * 2;
	o.lease_ms = app->cfg.job_lease_ms;
	o.owner = app->instance;
	struct jobs_runner *r = jobs_runner_start(app->db, &o);
	if (r && (jobs_register(r, "apply", apply_item, app) != CORE_OK ||
	          jobs_register(r, "onboard", onboard_item, app) != CORE_OK ||
	          jobs_register(r, "hold", hold_item, app) != CORE_OK)) {
		jobs_runner_stop(r);
		r = NULL;
	}
	return r;
}

/* Create an apply job for ids (marked with run); the job's JSON, or NULL when it could not be created. */
static struct json_object *start_apply_job(struct app *app, const char *actor, int64_t run, const int64_t *ids,
                                           size_t n, int64_t *job_id_out)
{
	char params[64];
	snprintf(params, sizeof(params), "{\"run\": %lld}", (long long)run);
	int64_t job_id = 0;
	struct json_object *job = NULL;
	if (jobs_create(app->db, "apply", actor, params, ids, n, &job_id) != CORE_OK) {
		apply_abandon(app->db, ids, n, run, "could not create the apply job");
		return NULL;
	}
	if (app->jobs)
		jobs_runner_wake(app->jobs);
	if (jobs_get(app->db, job_id, &job) != CORE_OK)
		job = NULL;
	if (job_id_out)
		*job_id_out = job_id;
	return job;
}

struct json_object *configure_start_apply(struct app *app, const char *actor, struct gateconfig_marked *marked)
{
	if (marked->n == 0) {
		gateconfig_marked_clear(marked);
		return NULL;
	}
	int64_t job_id = 0;
	struct json_object *job = start_apply_job(app, actor, marked->run, marked->ids, marked->n, &job_id);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "run", json_object_new_int64(marked->run));
	json_object_object_add(o, "repos", json_object_new_int64((int64_t)marked->n));
	json_object_object_add(o, "job_id", job_id ? json_object_new_int64(job_id) : NULL);
	json_object_object_add(o, "job", job);
	gateconfig_marked_clear(marked);
	return o;
}

/* --- resync ------------------------------------------------------------------------------------------------------ */

/* ids from a one-column result into a malloc'd array. */
static int64_t *collect_ids(const PGresult *r, size_t *n_out)
{
	size_t n = (size_t)PQntuples(r);
	int64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ids[i] = store_i64(r, (int)i, "id", 0);
	*n_out = n;
	return ids;
}

/* Wait for a job to finish (polling its counters); false when this process is stopping or it takes too long. */
static bool wait_job(struct app *app, int64_t job_id, int max_seconds)
{
	for (int i = 0; i < max_seconds * 4 && !__atomic_load_n(&app->stopping, __ATOMIC_RELAXED); i++) {
		struct json_object *j = NULL;
		bool finished = false;
		if (jobs_get(app->db, job_id, &j) == CORE_OK)
			jsonx_bool(j, "finished", &finished);
		json_object_put(j);
		if (finished)
			return true;
		struct timespec ts = {0, 250 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

/*
 * After a complete discovery: re-check every repo we gate (drift: our hook deleted, edited, duplicated or disabled
 * by GitLab; the merge setting changed by hand) and, when auto_gate_new_repos is on, apply new repos whose
 * inherited config is enabled. Runs one apply job, waits for it, and summarises it.
 */
static enum core_status resync_after(void *user, struct connection_client *cc, int64_t run_id,
                                     const struct discovery_counts *counts, struct json_object *summary)
{
	(void)counts;
	struct app *app = user;
	struct settings set;
	struct store_conn *c = NULL;
	PGresult *rg = NULL, *ro = NULL, *rs = NULL;
	int64_t *gated = NULL, *known = NULL, job_id = 0;
	size_t n_gated = 0, n_known = 0;
	struct json_object *repaired_repos = NULL;
	struct gateconfig_marked marked;
	memset(&marked, 0, sizeof(marked));
	char run[24];
	snprintf(run, sizeof(run), "%lld", (long long)run_id);
	enum core_status st = settings_get(app->db, app->cfg.resync_interval, &set);
	if (st != CORE_OK)
		return st;
	if (strcmp(set.hook_mode, "group") == 0 && cc) {
		/* group-hook mode: the group hook is checked (exists, flags, executable, token) and repaired */
		char hook_url[600], msg[400] = "";
		struct apply_ctx ctx;
		bool changed = false;
		app_apply_ctx(app, cc, hook_url, sizeof(hook_url), &ctx);
		const struct connection_info *ci = connection_client_info(cc);
		limiter_acquire(app->gitlab_slots);
		enum core_status gst = grouphook_ensure(app->db, connection_client_gitlab(cc), &ctx, ci->group_id,
		                                        &changed, msg, sizeof(msg));
		limiter_release(app->gitlab_slots);
		if (gst != CORE_OK)
			log_warn("resync %lld: group webhook: %s", (long long)run_id, msg);
		else if (changed)
			log_info("resync %lld: %s", (long long)run_id, msg);
		struct json_object *gh = json_object_new_object();
		json_object_object_add(gh, "ok", json_object_new_boolean(gst == CORE_OK));
		json_object_object_add(gh, "repaired", json_object_new_boolean(changed));
		json_object_object_add(gh, "message", json_object_new_string(msg));
		json_object_object_add(summary, "group_hook", gh);
	}
	st = store_get(app->db, &c);
	if (st != CORE_OK)
		return st;
	st = store_begin(c);
	/* repos that carry our hook now: each is re-read, and repaired where it drifted */
	if (st == CORE_OK)
		st = store_exec(c,
		                "SELECT r.id FROM repos r JOIN repo_gitlab_state s ON s.repo_id = r.id"
		                " WHERE r.removed_at IS NULL AND NOT r.archived AND NOT r.marked_for_deletion"
		                " AND s.applied_state <> 'off' ORDER BY r.id",
		                0, NULL, &rg);
	/* repos known before this run: their pending changes are applied; new ones only with auto-gate */
	const char *p[] = {run};
	if (st == CORE_OK)
		st = store_exec(c,
		                "SELECT r.id FROM repos r, sync_runs s WHERE s.id = $1 AND r.removed_at IS NULL"
		                " AND r.first_seen < s.started_at ORDER BY r.id",
		                1, p, &ro);
	if (st == CORE_OK) {
		gated = collect_ids(rg, &n_gated);
		known = collect_ids(ro, &n_known);
		if (!gated || !known)
			st = CORE_ENOMEM;
	}
	if (st == CORE_OK)
		st = gateconfig_mark_apply(c, set.auto_gate_new_repos, NULL, set.auto_gate_new_repos ? NULL : known,
		                           set.auto_gate_new_repos ? 0 : n_known, gated, n_gated, &marked);
	if (st == CORE_OK)
		st = store_commit(c);
	store_put(app->db, c);
	c = NULL;
	if (st != CORE_OK)
		goto out;

	int repaired = 0, failed = 0, newly_gated = 0, drifted = 0, checked = (int)marked.n;
	if (marked.n > 0) {
		struct json_object *job =
		    start_apply_job(app, "system (resync)", marked.run, marked.ids, marked.n, &job_id);
		json_object_put(job);
		if (!job_id) {
			st = CORE_EINTERNAL;
			goto out;
		}
		if (!wait_job(app, job_id, 3600))
			log_warn("resync %lld: apply job %lld still running; its summary will be partial",
			         (long long)run_id, (long long)job_id);
		st = store_get(app->db, &c);
		if (st != CORE_OK)
			goto out;
		char jid[24];
		snprintf(jid, sizeof(jid), "%lld", (long long)job_id);
		char *arr = store_int64_array(gated, n_gated);
		if (!arr) {
			st = CORE_ENOMEM;
			goto out;
		}
		const char *p2[] = {jid, arr};
		st = store_exec(
		    c,
		    "SELECT count(*) FILTER (WHERE i.repo_id = ANY($2::bigint[]) AND i.result = 'changed')"
		    "  AS repaired,"
		    " count(*) FILTER (WHERE i.result = 'error') AS failed,"
		    " count(*) FILTER (WHERE NOT i.repo_id = ANY($2::bigint[]) AND i.result = 'changed')"
		    "  AS newly_gated,"
		    " count(*) FILTER (WHERE i.repo_id = ANY($2::bigint[]) AND i.result IN ('changed', 'error'))"
		    "  AS drifted,"
		    " coalesce(jsonb_agg(r.path_with_namespace ORDER BY r.path_with_namespace)"
		    "  FILTER (WHERE i.repo_id = ANY($2::bigint[]) AND i.result = 'changed'), '[]')::text"
		    "  AS repaired_paths"
		    " FROM job_items i LEFT JOIN repos r ON r.id = i.repo_id WHERE i.job_id = $1",
		    2, p2, &rs);
		free(arr);
		if (st != CORE_OK)
			goto out;
		repaired = (int)store_i64(rs, 0, "repaired", 0);
		failed = (int)store_i64(rs, 0, "failed", 0);
		newly_gated = (int)store_i64(rs, 0, "newly_gated", 0);
		drifted = (int)store_i64(rs, 0, "drifted", 0);
		const char *paths = store_str(rs, 0, "repaired_paths");
		if (!paths || jsonx_parse(paths, strlen(paths), &repaired_repos) != CORE_OK)
			repaired_repos = json_object_new_array();
		if (repaired > 0) {
			struct json_object *d = json_object_new_object();
			json_object_object_add(d, "sync_run", json_object_new_int64(run_id));
			json_object_object_add(d, "job", json_object_new_int64(job_id));
			json_object_object_add(d, "repaired", json_object_get(repaired_repos));
			audit_write(c, "system (resync)", "resync.repair", NULL, NULL, NULL, d);
			json_object_put(d);
		}
	}
	json_object_object_add(summary, "checked", json_object_new_int(checked));
	/* drifted: gated repos found out of their wanted state (repaired, or failed: the failure says why) */
	json_object_object_add(summary, "drifted", json_object_new_int(drifted));
	json_object_object_add(summary, "repaired", json_object_new_int(repaired));
	json_object_object_add(summary, "repaired_repos", repaired_repos ? repaired_repos : json_object_new_array());
	repaired_repos = NULL;
	json_object_object_add(summary, "newly_gated", json_object_new_int(newly_gated));
	json_object_object_add(summary, "failed", json_object_new_int(failed));
	json_object_object_add(summary, "job_id", job_id ? json_object_new_int64(job_id) : NULL);
out:
	json_object_put(repaired_repos);
	PQclear(rg);
	PQclear(ro);
	PQclear(rs);
	store_put(app->db, c);
	free(gated);
	free(known);
	gateconfig_marked_clear(&marked);
	return st;
}

void app_resync_ctx(struct app *app, struct resync_ctx *out)
{
	memset(out, 0, sizeof(*out));
	out->db = app->db;
	out->key = app->secret_key;
	app_gitlab_tuning(app, &out->tune);
	out->instance = app->instance;
	out->concurrency = app->cfg.gitlab_concurrency;
	/* only a server runs jobs; the CLI's sync lists repos and leaves applies to the server */
	out->after = app->jobs ? resync_after : NULL;
	out->user = app;
}

/* --- hook mode switch (group-hook mode) -------------------------------------------------------------------------- */

int app_hook_mode_prepare(struct app *app, const char *to, char *msg, size_t cap)
{
	if (strcmp(to, "group") != 0)
		return 0; /* back to project: the project hooks come first (app_hook_mode_finish) */
	struct connection_client *cc = NULL;
	struct connection_tuning tune;
	app_gitlab_tuning(app, &tune);
	enum core_status st = connection_client_shared(app->db, app->secret_key, &tune, &cc);
	if (st == CORE_ENOTFOUND) {
		snprintf(msg, cap, "no GitLab connection: connect one first (%s)", GROUPHOOK_NEEDS);
		return 409;
	}
	if (st != CORE_OK) {
		snprintf(msg, cap, "could not open the GitLab connection (%s)", core_status_code(st));
		return 503;
	}
	const struct connection_info *ci = connection_client_info(cc);
	int status = 0;
	if (ci->group_access_level < 50) {
		snprintf(msg, cap, "%s: the token's role on %s is not Owner", GROUPHOOK_NEEDS, ci->group_full_path);
		status = 409;
		goto out;
	}
	st = grouphook_probe(connection_client_gitlab(cc), ci->group_id, msg, cap);
	if (st == CORE_ECONFLICT) {
		status = 409;
		goto out;
	}
	if (st != CORE_OK) {
		status = 502;
		goto out;
	}
	/* GitLab.com tells the plan: on free, group hooks never deliver */
	st = grouphook_plan_check(connection_client_gitlab(cc), ci->group_id, msg, cap);
	if (st != CORE_OK) {
		status = st == CORE_ECONFLICT ? 409 : 502;
		goto out;
	}
	/* the group hook first, then proof that it delivers: only then may project hooks go */
	char hook_url[600];
	struct apply_ctx ctx;
	app_apply_ctx(app, cc, hook_url, sizeof(hook_url), &ctx);
	st = grouphook_ensure(app->db, connection_client_gitlab(cc), &ctx, ci->group_id, NULL, msg, cap);
	if (st != CORE_OK) {
		status = st == CORE_ECONFLICT ? 409 : 502;
		goto out;
	}
	st = grouphook_prove(app->db, connection_client_gitlab(cc), hook_url, ci->group_id, GROUPHOOK_PROOF_WAIT_S, msg,
	                     cap);
	if (st != CORE_OK) {
		/* not proven: the group hook we made goes, project mode stays as it was */
		char rm[400] = "";
		if (grouphook_remove(app->db, connection_client_gitlab(cc), hook_url, ci->group_id, rm, sizeof(rm)) !=
		    CORE_OK)
			log_warn("could not delete the unproven group webhook: %s", rm);
		log_warn("hook_mode group refused: %s", msg);
		status = st == CORE_ECONFLICT ? 409 : 502;
	}
out:
	connection_client_release(cc);
	return status;
}

struct json_object *app_hook_mode_finish(struct app *app, const char *actor, const char *from, const char *to)
{
	struct gateconfig_marked marked;
	struct json_object *d = json_object_new_object();
	int64_t job_id = 0;
	memset(&marked, 0, sizeof(marked));
	json_object_object_add(d, "from", json_object_new_string(from));
	json_object_object_add(d, "to", json_object_new_string(to));
	enum core_status st = grouphook_mark_gated(app->db, &marked);
	size_t n = marked.n;
	if (st == CORE_OK && marked.n > 0) {
		json_object_put(start_apply_job(app, actor, marked.run, marked.ids, marked.n, &job_id));
		if (!job_id)
			st = CORE_EINTERNAL;
	}
	gateconfig_marked_clear(&marked);
	json_object_object_add(d, "repos", json_object_new_int64((int64_t)n));
	json_object_object_add(d, "job_id", job_id ? json_object_new_int64(job_id) : NULL);
	if (st != CORE_OK) {
		json_object_object_add(d, "message",
		                       json_object_new_string("could not start the apply job; the next "
		                                              "resync completes the switch"));
		goto out;
	}
	if (strcmp(to, "project") == 0) {
		/* the project hooks are back on every gated repo before the group hook goes */
		bool ok = !job_id || wait_job(app, job_id, 600);
		struct json_object *j = NULL;
		int64_t failed = 0;
		if (ok && job_id && jobs_get(app->db, job_id, &j) == CORE_OK)
			jsonx_int64(j, "failed", &failed);
		json_object_put(j);
		char msg[400] = "";
		if (!ok || failed > 0) {
			snprintf(msg, sizeof(msg),
			         "the group webhook is kept: %lld repo%s did not get its project webhook yet (see job "
			         "%lld); "
			         "the next resync retries",
			         (long long)failed, failed == 1 ? "" : "s", (long long)job_id);
		} else {
			struct connection_client *cc = NULL;
			struct connection_tuning tune;
			app_gitlab_tuning(app, &tune);
			st = connection_client_shared(app->db, app->secret_key, &tune, &cc);
			if (st == CORE_OK) {
				char hook_url[600];
				struct apply_ctx ctx;
				app_apply_ctx(app, cc, hook_url, sizeof(hook_url), &ctx);
				st = grouphook_remove(app->db, connection_client_gitlab(cc), hook_url,
				                      connection_client_info(cc)->group_id, msg, sizeof(msg));
				if (st == CORE_OK)
					snprintf(msg, sizeof(msg), "project webhooks in place; group webhook removed");
			} else {
				snprintf(msg, sizeof(msg),
				         "could not open the GitLab connection to remove the group webhook");
			}
			connection_client_release(cc);
		}
		json_object_object_add(d, "message", json_object_new_string(msg));
	} else {
		json_object_object_add(d, "message",
		                       json_object_new_string("group webhook in place; project webhooks "
		                                              "being removed by the apply job"));
	}
out:
	grouphook_audit(app->db, actor, from, to, d);
	return d;
}
