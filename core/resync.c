/*
 * core/resync.c
 *    Token health, discovery and the follow-up of one resync (see resync.h).
 */
#include "resync.h"

#include "audit.h"
#include "buf.h"
#include "grouphook.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "rows.h"
#include "settings.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Record the days left of a token from GET /personal_access_tokens/self. */
static void token_expiry_metric(const struct json_object *token)
{
	const char *exp = NULL;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (jsonx_str(token, "expires_at", &exp) && strptime(exp, "%Y-%m-%d", &tm)) {
		double days = difftime(timegm(&tm), time(NULL)) / 86400.0;
		metrics_set("mrgate_gitlab_token_expires_in_days", NULL, days);
	}
}

enum core_status resync_token_health(struct store *db, struct connection_client *cc)
{
	struct gitlab_response *resp = NULL;
	enum core_status st =
	    gitlab_request(connection_client_gitlab(cc), "GET", "/personal_access_tokens/self", NULL, &resp);
	const char *status = "ok", *problem = NULL;
	enum gitlab_error kind = resp ? resp->kind : GITLAB_ERR_NONE;
	if (st == CORE_OK) {
		token_expiry_metric(resp->json);
	} else if (kind == GITLAB_ERR_TOKEN_EXPIRED) {
		status = "expired";
		problem = "the GitLab token is expired: GitLab writes are stopped until the token is updated on the "
		          "Connection page";
	} else if (kind == GITLAB_ERR_TOKEN_REVOKED) {
		status = "revoked";
		problem = "the GitLab token was revoked: GitLab writes are stopped until the token is updated on the "
		          "Connection page";
	} else if (kind == GITLAB_ERR_TOKEN_INVALID) {
		status = "invalid";
		problem = "GitLab no longer accepts the token: GitLab writes are stopped until the token is updated on "
		          "the Connection page";
	} else {
		/* GitLab unreachable or an old GitLab without the endpoint: no verdict on the token */
		gitlab_response_free(resp);
		return st == CORE_ENOTFOUND ? CORE_OK : st;
	}
	gitlab_response_free(resp);
	metrics_set("mrgate_gitlab_token_ok", NULL, problem ? 0 : 1);
	enum core_status wst = connection_set_token_status(db, status, problem);
	if (problem) {
		log_warn("%s", problem);
		return CORE_EUNAUTH;
	}
	return wst;
}

enum core_status resync_begin(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out)
{
	struct connection_info ci;
	memset(&ci, 0, sizeof(ci));
	enum core_status st = connection_get(ctx->db, &ci);
	connection_info_clear(&ci);
	if (st != CORE_OK)
		return st;
	/* The previous run's follow-up (its apply job, or the moment before it starts) is still at work: a second run
	 * would mark the same repos again, and its job would find them taken ("another apply of this repository is
	 * running") and report drift that is not there. A run done 2 minutes ago without a summary lost its instance.
	 */
	PGresult *r = NULL;
	st = store_run1(ctx->db,
	                "SELECT id FROM sync_runs WHERE state = 'done' AND summary IS NULL AND ("
	                " finished_at >= now() - interval '2 minutes' OR EXISTS (SELECT 1 FROM jobs"
	                "  WHERE state IN ('queued', 'running') AND created_by = 'system (resync)'))"
	                " ORDER BY id DESC LIMIT 1",
	                NULL, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		if (run_id_out)
			*run_id_out = store_i64(r, 0, "id", 0);
		st = CORE_ECONFLICT;
	}
	PQclear(r);
	if (st != CORE_OK)
		return st;
	return discovery_begin(ctx->db, trigger, ctx->instance, run_id_out);
}

static void save_summary(struct store *db, int64_t run_id, struct json_object *summary)
{
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	store_param_str(&p, json_object_to_json_string_ext(summary, JSON_C_TO_STRING_PLAIN));
	store_run1(db, "UPDATE sync_runs SET summary = $2::jsonb WHERE id = $1", &p, NULL);
}

enum core_status resync_listed_only(struct store *db, int64_t run_id, const struct discovery_counts *counts)
{
	struct json_object *summary = jx_object();
	json_object_object_add(summary, "new", jx_int(counts->new_repos));
	json_object_object_add(summary, "removed", jx_int(counts->removed));
	json_object_object_add(summary, "archived", jx_int(counts->archived));
	json_object_object_add(summary, "listed_only", jx_bool(1));
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	store_param_str(&p, json_object_to_json_string_ext(summary, JSON_C_TO_STRING_PLAIN));
	enum core_status st = store_run1(db, "UPDATE sync_runs SET summary = $2::jsonb WHERE id = $1", &p, NULL);
	json_object_put(summary);
	return st;
}

/* --- the follow-up ----------------------------------------------------------------------------------------------- */

/*
 * Group-hook mode: the group hook is checked (exists, flags, executable, token) and repaired; summary.group_hook.
 * True when it was down (grouphook_ensure): the follow-up's apply then gates the open MRs it did not deliver.
 */
static bool after_group_hook(const struct applyjob_env *env, struct connection_client *cc, int64_t run_id,
                             struct json_object *summary)
{
	char hook_url[APPLYJOB_HOOK_URL_MAX], msg[400] = "";
	struct apply_ctx ctx;
	bool changed = false, was_down = false;
	enum core_status st = applyjob_ctx(env, cc, hook_url, &ctx);
	if (st == CORE_OK) {
		applyjob_slot_take(env);
		st = grouphook_ensure(env->db, connection_client_gitlab(cc), &ctx, connection_client_info(cc)->group_id,
		                      &changed, &was_down, msg, sizeof(msg));
		applyjob_slot_give(env);
	}
	if (st != CORE_OK)
		log_warn("resync %lld: group webhook: %s", (long long)run_id, msg);
	else if (changed)
		log_info("resync %lld: %s%s", (long long)run_id, msg,
		         was_down ? " (it was down: the open merge requests it did not deliver are gated)" : "");
	struct json_object *gh = jx_object();
	json_object_object_add(gh, "ok", jx_bool(st == CORE_OK));
	json_object_object_add(gh, "repaired", jx_bool(changed));
	json_object_object_add(gh, "was_down", jx_bool(st == CORE_OK && was_down));
	json_object_object_add(gh, "message", jx_str(msg));
	json_object_object_add(summary, "group_hook", gh);
	return st == CORE_OK && was_down;
}

/* The ids of a one-column result ("id"), malloc'd. */
static int64_t *ids_of(const PGresult *r, size_t *n_out)
{
	size_t n = (size_t)PQntuples(r);
	int64_t *ids = xmalloc((n ? n : 1) * sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = store_i64(r, (int)i, "id", 0);
	*n_out = n;
	return ids;
}

/*
 * Mark for apply, in one transaction: every repo that carries our hook now (re-read, repaired where it drifted)
 * and the pending changes of the repos known before this run; new repos only with auto_gate_new_repos.
 * *gated_out (malloc'd) gets the repos gated before the follow-up.
 */
static enum core_status after_mark(const struct applyjob_env *env, const struct settings *set, int64_t run_id,
                                   struct gateconfig_marked *marked, int64_t **gated_out, size_t *n_gated_out)
{
	struct store_conn *c = NULL;
	PGresult *rg = NULL, *ro = NULL;
	int64_t *known = NULL;
	size_t n_known = 0;
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	enum core_status st = store_get_begin(env->db, &c);
	if (st == CORE_OK)
		st = store_run(c,
		               "SELECT r.id FROM repos r JOIN repo_gitlab_state s ON s.repo_id = r.id"
		               " WHERE r.removed_at IS NULL AND NOT r.archived AND NOT r.marked_for_deletion"
		               " AND s.applied_state <> 'off' ORDER BY r.id",
		               NULL, &rg);
	if (st == CORE_OK)
		st = store_run(c,
		               "SELECT r.id FROM repos r, sync_runs s WHERE s.id = $1 AND r.removed_at IS NULL"
		               " AND r.first_seen < s.started_at ORDER BY r.id",
		               &p, &ro);
	if (st == CORE_OK) {
		*gated_out = ids_of(rg, n_gated_out);
		known = ids_of(ro, &n_known);
		bool all_new = set->auto_gate_new_repos;
		/* the gated repos are checked (their hooks re-read, repaired where they drifted): they stay "gated" */
		st = gateconfig_mark_apply(c, all_new, NULL, all_new ? NULL : known, all_new ? 0 : n_known, *gated_out,
		                           *n_gated_out, true, marked);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	PQclear(rg);
	PQclear(ro);
	free(known);
	store_put(env->db, c);
	return st;
}

/*
 * The apply job's outcome over the repos gated before it, into summary: drifted (gated repos found out of their
 * wanted state: repaired, or failed, and the failure says why), repaired (+ repaired_repos, their paths), applied
 * (gated repos whose pending change was applied, such as an ungate GitLab refused before: no drift), newly_gated,
 * failed. A repair is audited.
 */
static enum core_status after_summarise(const struct applyjob_env *env, int64_t run_id, int64_t job_id,
                                        const int64_t *gated, size_t n_gated, struct json_object *summary)
{
	struct store_conn *c = NULL;
	PGresult *rs = NULL;
	struct buf keep = {0};
	struct store_params p = {0};
	store_param_i64(&p, job_id);
	store_param_i64_array(&p, gated, n_gated, &keep);
	enum core_status st = store_get(env->db, &c);
	if (st == CORE_OK)
		st = store_run(
		    c,
		    /* a repair is a write where the record said GitLab had the wanted state (the item's details say
		     * "repaired"); a gated repo's pending change (an ungate GitLab refused before) is applied */
		    "SELECT count(*) FILTER (WHERE gated AND (repaired OR i.result = 'error')) AS drifted,"
		    " count(*) FILTER (WHERE gated AND repaired) AS repaired,"
		    " coalesce(jsonb_agg(r.path_with_namespace ORDER BY r.path_with_namespace)"
		    "  FILTER (WHERE gated AND repaired), '[]') AS repaired_repos,"
		    " count(*) FILTER (WHERE gated AND i.result = 'changed' AND NOT repaired) AS applied,"
		    " count(*) FILTER (WHERE NOT gated AND i.result = 'changed') AS newly_gated,"
		    " count(*) FILTER (WHERE i.result = 'error') AS failed"
		    " FROM job_items i LEFT JOIN repos r ON r.id = i.repo_id,"
		    " LATERAL (SELECT i.repo_id = ANY($2::bigint[]) AS gated,"
		    "  i.result = 'changed' AND i.details @> '{\"repaired\": true}' AS repaired) k"
		    " WHERE i.job_id = $1",
		    &p, &rs);
	buf_free(&keep);
	if (st == CORE_OK) {
		struct json_object *row = rows_row(rs, 0);
		int64_t repaired = 0;
		json_object_object_foreach(row, key, val) json_object_object_add(summary, key, json_object_get(val));
		if (jsonx_int64(row, "repaired", &repaired) && repaired > 0) {
			/* the audit page shows details.message for an entry without before/after */
			struct json_object *paths = jsonx_get(row, "repaired_repos");
			struct buf msg = {0}, target = {0};
			buf_printf(&msg, "sync run %" PRId64 " repaired drift on %" PRId64 " %s:", run_id, repaired,
			           repaired == 1 ? "repository" : "repositories");
			size_t np = json_object_array_length(paths), shown = np < 10 ? np : 10;
			for (size_t i = 0; i < shown; i++)
				buf_printf(&msg, "%s %s", i ? "," : "",
				           json_object_get_string(json_object_array_get_idx(paths, i)));
			if (np > shown)
				buf_printf(&msg, " and %zu more", np - shown);
			buf_printf(&target, "job %" PRId64, job_id);
			struct json_object *d = jx_object();
			json_object_object_add(d, "sync_run", jx_int(run_id));
			json_object_object_add(d, "job", jx_int(job_id));
			json_object_object_add(d, "repaired", json_object_get(paths));
			json_object_object_add(d, "message", jx_str(buf_str(&msg)));
			audit_write(c, "system (resync)", "resync.repair", buf_str(&target), NULL, NULL, d);
			json_object_put(d);
			buf_free(&msg);
			buf_free(&target);
		}
		json_object_put(row);
	}
	PQclear(rs);
	store_put(env->db, c);
	return st;
}

/* A follow-up that applied nothing. */
static void after_nothing(struct json_object *summary)
{
	static const char *const zero[] = {"drifted", "repaired", "newly_gated", "failed"};
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		json_object_object_add(summary, zero[i], jx_int(0));
	json_object_object_add(summary, "repaired_repos", jx_array());
}

/* After a complete discovery (see resync.h): mark, run one apply job, wait for it, summarise. */
static enum core_status resync_after(const struct applyjob_env *env, struct connection_client *cc, int64_t run_id,
                                     struct json_object *summary)
{
	struct settings set;
	struct gateconfig_marked marked;
	int64_t *gated = NULL, job_id = 0;
	size_t n_gated = 0;
	memset(&marked, 0, sizeof(marked));
	enum core_status st = settings_get(env->db, env->default_resync_interval, &set);
	if (st != CORE_OK)
		return st;
	bool group_hook_was_down = false;
	if (strcmp(set.hook_mode, "group") == 0 && cc)
		group_hook_was_down = after_group_hook(env, cc, run_id, summary);
	st = after_mark(env, &set, run_id, &marked, &gated, &n_gated);
	if (st == CORE_OK && marked.n > 0) {
		json_object_put(applyjob_start_after_sync(env, "system (resync)", marked.run, marked.ids, marked.n,
		                                          group_hook_was_down, &job_id));
		if (!job_id)
			st = CORE_EINTERNAL;
		else if (!applyjob_wait(env, job_id, 3600))
			log_warn("resync %lld: apply job %lld still running; its summary will be partial",
			         (long long)run_id, (long long)job_id);
		if (st == CORE_OK)
			st = after_summarise(env, run_id, job_id, gated, n_gated, summary);
	} else if (st == CORE_OK) {
		after_nothing(summary);
	}
	if (st == CORE_OK) {
		json_object_object_add(summary, "checked", jx_int((int64_t)marked.n));
		json_object_object_add(summary, "job_id", job_id ? jx_int(job_id) : NULL);
	}
	free(gated);
	gateconfig_marked_clear(&marked);
	return st;
}

/* --- one run ------------------------------------------------------------------------------------------------------ */

enum core_status resync_execute(const struct resync_ctx *ctx, int64_t run_id)
{
	struct connection_client *cc = NULL;
	struct json_object *summary = NULL;
	enum core_status st = connection_client_shared(ctx->db, ctx->key, &ctx->tune, &cc);
	if (st != CORE_OK) {
		discovery_fail(ctx->db, run_id, "could not open the GitLab connection (see the server log)");
		return st;
	}
	st = resync_token_health(ctx->db, cc);
	if (st == CORE_EUNAUTH) {
		struct connection_info ci;
		memset(&ci, 0, sizeof(ci));
		connection_get(ctx->db, &ci);
		discovery_fail(ctx->db, run_id, ci.token_problem[0] ? ci.token_problem : "the token is not valid");
		connection_info_clear(&ci);
		goto out;
	}
	struct discovery_counts counts;
	st = discovery_execute(ctx->db, connection_client_gitlab(cc), connection_client_info(cc)->group_id, run_id,
	                       ctx->concurrency, NULL, NULL, &counts);
	if (st != CORE_OK)
		goto out;
	summary = jx_object();
	json_object_object_add(summary, "new", jx_int(counts.new_repos));
	json_object_object_add(summary, "removed", jx_int(counts.removed));
	json_object_object_add(summary, "archived", jx_int(counts.archived));
	if (ctx->apply)
		st = resync_after(ctx->apply, cc, run_id, summary);
	save_summary(ctx->db, run_id, summary);
out:
	json_object_put(summary);
	connection_client_release(cc);
	return st;
}

enum core_status resync_run(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out)
{
	int64_t run = 0;
	enum core_status st = resync_begin(ctx, trigger, &run);
	if (run_id_out)
		*run_id_out = run;
	if (st != CORE_OK)
		return st;
	return resync_execute(ctx, run);
}
