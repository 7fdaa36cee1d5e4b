/*
 * core/dryrun.c
 *    The plan of a configure dry run (see dryrun.h).
 */
#include "dryrun.h"

#include "buf.h"
#include "jsonx.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum core_status dryrun_read(const struct applyjob_env *env, struct connection_client *cc,
                             const struct configure_out *out, size_t first, size_t count,
                             struct apply_batch_item **items_out)
{
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	*items_out = NULL;
	enum core_status st = applyjob_ctx(env, cc, hook_url, &ctx);
	if (st != CORE_OK)
		return st;
	struct apply_batch_item *items = xcalloc(count ? count : 1, sizeof(*items));
	for (size_t i = 0; i < count; i++) {
		items[i].repo_id = out->plan_ids[first + i];
		items[i].want = &out->plan_wants[first + i];
	}
	void *lists_ref = NULL; /* the group's lists, read once for them all (as a preview job's items share them) */
	ctx.lists = applyjob_lists_open(env, count, &lists_ref);
	apply_batch(env->db, connection_client_gitlab(cc), &ctx, items, count, env->gitlab_concurrency, true);
	applyjob_lists_put(lists_ref);
	*items_out = items;
	return CORE_OK;
}

void dryrun_items_free(struct apply_batch_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		apply_result_clear(&items[i].res);
	free(items);
}

static struct json_object *entry_json(const struct apply_batch_item *item, const char *path)
{
	static const char *const copied[] = {"hooks", "settings", "open_mrs_to_gate", "statuses_to_clear", "read"};
	struct json_object *e = jx_object();
	const struct apply_want *w = item->want;
	json_object_object_add(e, "repo_id", jx_int(item->repo_id));
	json_object_object_add(e, "path_with_namespace", jx_str(path));
	json_object_object_add(e, "want", jx_str(!w->hook ? "off" : w->block_merge ? "hook+merge" : "hook"));
	json_object_object_add(e, "result", jx_str(apply_outcome_name(item->res.outcome)));
	json_object_object_add(e, "message", jx_str(item->res.message));
	json_object_object_add(e, "actions", apply_plan_actions(item->res.plan));
	for (size_t k = 0; k < sizeof(copied) / sizeof(copied[0]); k++) {
		struct json_object *v = jsonx_get(item->res.plan, copied[k]);
		if (v || k < 2) /* hooks and settings are always there (null without a plan) */
			json_object_object_add(e, copied[k], json_object_get(v));
	}
	return e;
}

/* ---- the dry run as a job (kind "dryrun") ---- */

#define NO_CONNECTION "no GitLab connection yet: connect one on the Connection page (or with PUT /api/connection)"

static const char *want_name(const struct apply_want *w)
{
	return !w->hook ? "off" : w->block_merge ? "hook+merge" : "hook";
}

static bool want_parse(const char *name, struct apply_want *w)
{
	w->hook = name && strcmp(name, "off") != 0;
	w->block_merge = name && strcmp(name, "hook+merge") == 0;
	return name && (strcmp(name, "off") == 0 || strcmp(name, "hook") == 0 || strcmp(name, "hook+merge") == 0);
}

/* Cancel actor's dry runs that are still queued or running: nobody reads their plans any more (the entries this
 * process's workers claimed are skipped too). */
static enum core_status end_earlier_previews(const struct applyjob_env *env, const char *actor)
{
	struct store *db = env->db;
	struct store_params p = {0};
	PGresult *r = NULL;
	store_param_str(&p, actor);
	enum core_status st = store_run1(db,
	                                 "SELECT id FROM jobs WHERE kind = 'dryrun' AND created_by = $1"
	                                 " AND state IN ('queued', 'running')",
	                                 &p, &r);
	for (int i = 0; st == CORE_OK && i < PQntuples(r); i++) {
		int64_t id = store_i64(r, i, "id", 0);
		st = jobs_cancel(db, id, NULL);
		if (st == CORE_OK)
			applyjob_note_canceled(env, id);
		else if (st == CORE_ESTATE) /* it finished meanwhile */
			st = CORE_OK;
	}
	PQclear(r);
	return st;
}

enum core_status dryrun_start(const struct applyjob_env *env, const char *actor, const struct configure_out *out,
                              struct json_object **job_out)
{
	struct json_object *items = jx_array();
	for (size_t i = 0; i < out->n_plan; i++) {
		struct json_object *it = jx_object(), *pl = jx_object();
		json_object_object_add(pl, "want", jx_str(want_name(&out->plan_wants[i])));
		json_object_object_add(pl, "path", jx_str(out->plan_paths[i]));
		json_object_object_add(it, "repo_id", jx_int(out->plan_ids[i]));
		json_object_object_add(it, "payload", pl);
		json_object_array_add(items, it);
	}
	enum core_status st = end_earlier_previews(env, actor);
	if (st == CORE_OK)
		st = jobs_submit_items(env->db, env->jobs, "dryrun", actor, items, job_out);
	json_object_put(items);
	return st;
}

/* The item's outcome from the plan: an error (retried when transient), changes planned, or none. */
static enum job_outcome plan_outcome(const struct apply_result *res, struct job_item_result *out)
{
	if (res->outcome == APPLY_ERROR) {
		jobs_result_message(out, "%s", res->message);
		return res->retryable ? JOB_ITEM_RETRY : JOB_ITEM_ERROR;
	}
	if (res->outcome == APPLY_SKIPPED)
		return JOB_ITEM_SKIPPED;
	struct json_object *actions = apply_plan_actions(res->plan);
	size_t n = actions ? json_object_array_length(actions) : 0;
	json_object_put(actions);
	/* what an apply would do there, in words ("would create webhook, turn on Pipelines must succeed") */
	if (res->message[0])
		jobs_result_message(out, "%s", res->message);
	return n > 0 ? JOB_ITEM_CHANGED : JOB_ITEM_UNCHANGED;
}

enum job_outcome dryrun_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	struct connection_client *cc = NULL;
	struct apply_batch_item one;
	struct apply_want want;
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	enum job_outcome outcome = JOB_ITEM_ERROR;
	const char *path = NULL, *wname = NULL;

	memset(&one, 0, sizeof(one));
	if (!item->has_repo || !jsonx_str(item->payload, "want", &wname) || !want_parse(wname, &want)) {
		jobs_result_message(res, "a dry-run item needs a repository and its wanted state");
		return JOB_ITEM_ERROR;
	}
	jsonx_str(item->payload, "path", &path);
	if (!applyjob_client(env, res, NO_CONNECTION, &cc, &outcome))
		return outcome;
	if (applyjob_ctx(env, cc, hook_url, &ctx) != CORE_OK) {
		jobs_result_message(res, "the public URL is too long for a webhook URL");
		goto out;
	}
	one.repo_id = item->repo_id;
	one.want = &want;
	/* the group's lists, read once for the preview as for an apply job: a preview read each project alone (GET
	 * /projects/:id, GET hooks, GET its open MRs: 3 calls per repo where the apply makes 1 read and shares the
	 * pages); a slot is held around each GitLab exchange, none while the lists are waited for */
	void *lists_ref = NULL;
	bool canceled = false;
	ctx.lists = applyjob_lists_take(env, item->job_id, &lists_ref, &canceled);
	ctx.slots = env->gitlab_slots;
	if (canceled) {
		/* claimed before the cancel and not started: a walk's canceled preview read on for 61 repos */
		applyjob_lists_put(lists_ref);
		jobs_result_message(res, "canceled");
		outcome = JOB_ITEM_SKIPPED;
		goto out;
	}
	one.status = apply_repo_want(env->db, connection_client_gitlab(cc), &ctx, item->repo_id, &want, true, &one.res);
	applyjob_lists_put(lists_ref);
	if (one.status != CORE_OK) {
		jobs_result_message(res, "could not read the repository (%s)", core_status_code(one.status));
		outcome = one.status == CORE_ENOTFOUND ? JOB_ITEM_ERROR : JOB_ITEM_RETRY;
		goto out;
	}
	outcome = plan_outcome(&one.res, res);
	/* the plan entry, as the API pages it (GET /api/jobs/{id}/plan), with what reading it cost */
	res->details = entry_json(&one, path);
	json_object_object_add(res->details, "gitlab_reads", jx_int(one.res.reads));
	json_object_object_add(res->details, "gitlab_writes_planned", jx_int(one.res.writes));
out:
	apply_result_clear(&one.res);
	connection_client_release(cc);
	return outcome;
}
