/*
 * core/hookmode.c
 *    The hook-mode switch (see hookmode.h).
 */
#include "hookmode.h"

#include "grouphook.h"
#include "jsonx.h"
#include "log.h"
#include "settings.h"
#include "xalloc.h"

#include <stdio.h>
#include <string.h>

/* A GitLab step's failure as the switch reports it: a refusal stays a conflict, anything else is GitLab's error. */
static enum core_status refused_or_upstream(enum core_status st)
{
	return st == CORE_ECONFLICT ? CORE_ECONFLICT : CORE_EUPSTREAM;
}

/* Make the group hook and prove that it delivers; an unproven hook is deleted again. */
static enum core_status group_hook_proven(const struct applyjob_env *env, struct connection_client *cc,
                                          int64_t group_id, char *msg, size_t cap)
{
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	struct gitlab *gl = connection_client_gitlab(cc);
	enum core_status st = applyjob_ctx(env, cc, hook_url, &ctx);
	if (st != CORE_OK) {
		snprintf(msg, cap, "the public URL is too long for a hook URL");
		return CORE_EINTERNAL;
	}
	st = grouphook_ensure(env->db, gl, &ctx, group_id, NULL, NULL, msg, cap);
	if (st != CORE_OK)
		return refused_or_upstream(st);
	st = grouphook_prove(env->db, gl, hook_url, group_id, GROUPHOOK_PROOF_WAIT_S, msg, cap);
	if (st != CORE_OK) {
		/* not proven: the group hook we made goes, project mode stays as it was */
		char rm[400] = "";
		if (grouphook_remove(env->db, gl, hook_url, group_id, rm, sizeof(rm)) != CORE_OK)
			log_warn("could not delete the unproven group webhook: %s", rm);
		log_warn("hook_mode group refused: %s", msg);
		return refused_or_upstream(st);
	}
	return CORE_OK;
}

enum core_status hookmode_prepare(const struct applyjob_env *env, const char *to, char *msg, size_t cap)
{
	if (strcmp(to, "group") != 0)
		return CORE_OK; /* back to project: the project hooks come first (hookmode_finish) */
	struct connection_client *cc = NULL;
	enum core_status st = connection_client_shared(env->db, env->secret_key, &env->tune, &cc);
	if (st == CORE_ENOTFOUND) {
		snprintf(msg, cap, "no GitLab connection: connect one first (%s)", GROUPHOOK_NEEDS);
		return CORE_ECONFLICT;
	}
	if (st != CORE_OK) {
		snprintf(msg, cap, "could not open the GitLab connection (%s)", core_status_code(st));
		return CORE_EUNAVAIL;
	}
	const struct connection_info *ci = connection_client_info(cc);
	struct gitlab *gl = connection_client_gitlab(cc);
	if (ci->group_access_level < 50) {
		snprintf(msg, cap, "%s: the token's role on %s is not Owner", GROUPHOOK_NEEDS, ci->group_full_path);
		st = CORE_ECONFLICT;
	} else if ((st = grouphook_probe(gl, ci->group_id, msg, cap)) != CORE_OK) {
		st = refused_or_upstream(st);
	} else if ((st = grouphook_plan_check(gl, ci->group_id, msg, cap)) != CORE_OK) {
		/* GitLab.com tells the plan: on free, group hooks never deliver */
		st = refused_or_upstream(st);
	} else {
		/* the group hook first, then proof that it delivers: only then may project hooks go */
		st = group_hook_proven(env, cc, ci->group_id, msg, cap);
	}
	connection_client_release(cc);
	return st;
}

/* Back to project mode once the apply job finished: delete the group hook when every repo has its project hook. */
static void group_hook_retire(const struct applyjob_env *env, int64_t job_id, char *msg, size_t cap)
{
	bool ok = !job_id || applyjob_wait(env, job_id, 600);
	struct json_object *j = NULL;
	int64_t failed = 0;
	if (ok && job_id && jobs_get(env->db, job_id, &j) == CORE_OK)
		jsonx_int64(j, "failed", &failed);
	json_object_put(j);
	if (!ok || failed > 0) {
		snprintf(msg, cap,
		         "the group webhook is kept: %lld repo%s did not get its project webhook yet (see job %lld); "
		         "the next resync retries",
		         (long long)failed, failed == 1 ? "" : "s", (long long)job_id);
		return;
	}
	struct connection_client *cc = NULL;
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	enum core_status st = connection_client_shared(env->db, env->secret_key, &env->tune, &cc);
	if (st == CORE_OK)
		st = applyjob_ctx(env, cc, hook_url, &ctx);
	if (st == CORE_OK) {
		st = grouphook_remove(env->db, connection_client_gitlab(cc), hook_url,
		                      connection_client_info(cc)->group_id, msg, cap);
		if (st == CORE_OK)
			snprintf(msg, cap, "project webhooks in place; group webhook removed");
	} else {
		snprintf(msg, cap, "could not open the GitLab connection to remove the group webhook");
	}
	connection_client_release(cc);
}

struct json_object *hookmode_finish(const struct applyjob_env *env, const char *actor, const char *from, const char *to)
{
	struct gateconfig_marked marked;
	struct json_object *d = jx_object();
	int64_t job_id = 0;
	char msg[400] = "";
	memset(&marked, 0, sizeof(marked));
	json_object_object_add(d, "from", jx_str(from));
	json_object_object_add(d, "to", jx_str(to));
	enum core_status st = grouphook_mark_gated(env->db, &marked);
	size_t n = marked.n;
	if (st == CORE_OK && marked.n > 0) {
		json_object_put(applyjob_start(env, actor, marked.run, marked.ids, marked.n, &job_id));
		if (!job_id)
			st = CORE_EINTERNAL;
	}
	gateconfig_marked_clear(&marked);
	json_object_object_add(d, "repos", jx_int((int64_t)n));
	json_object_object_add(d, "job_id", job_id ? jx_int(job_id) : NULL);
	if (st != CORE_OK)
		snprintf(msg, sizeof(msg), "could not start the apply job; the next resync completes the switch");
	else if (strcmp(to, "project") == 0)
		group_hook_retire(env, job_id, msg,
		                  sizeof(msg)); /* the project hooks are back before the group hook goes */
	else
		snprintf(msg, sizeof(msg),
		         job_id ? "group webhook in place; project webhooks being removed by apply job %lld"
		                : "group webhook in place; no project webhook to remove",
		         (long long)job_id);
	json_object_object_add(d, "message", jx_str(msg));
	grouphook_audit(env->db, actor, from, to, d);
	return d;
}

/* The unfinished hook-mode switch job, or 0, and the mode it switches to (to_out, "" when none). */
static enum core_status running_switch(struct store *db, int64_t *job_id_out, char to_out[16])
{
	PGresult *r = NULL;
	*job_id_out = 0;
	to_out[0] = '\0';
	enum core_status st =
	    store_run1(db,
	               "SELECT j.id, (SELECT i.payload ->> 'to' FROM job_items i WHERE i.job_id = j.id"
	               "  ORDER BY i.id LIMIT 1) AS to_mode"
	               " FROM jobs j WHERE j.kind = 'hookmode' AND j.state IN ('queued', 'running')"
	               " ORDER BY j.id LIMIT 1",
	               NULL, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		*job_id_out = store_i64(r, 0, "id", 0);
		snprintf(to_out, 16, "%s", store_str(r, 0, "to_mode") ? store_str(r, 0, "to_mode") : "");
	}
	PQclear(r);
	return st;
}

/* Start the switch job: one item, payload {"to"}. *job_out gets the job as jobs_get shows it. */
static enum core_status start_switch(const struct applyjob_env *env, const char *actor, const char *to,
                                     struct json_object **job_out)
{
	struct json_object *items = jx_array(), *it = jx_object(), *pl = jx_object();
	json_object_object_add(pl, "to", jx_str(to));
	json_object_object_add(it, "payload", pl);
	json_object_array_add(items, it);
	enum core_status st = jobs_submit_items(env->db, env->jobs, "hookmode", actor, items, job_out);
	json_object_put(items);
	return st;
}

enum core_status hookmode_settings_put(const struct applyjob_env *env, struct json_object *body, const char *actor,
                                       struct json_object **job_out, char *msg, size_t cap)
{
	struct settings before;
	const char *to = NULL;
	int64_t running = 0;
	*job_out = NULL;
	enum core_status st = settings_check(body, msg, cap);
	if (st == CORE_OK)
		st = settings_get(env->db, env->default_resync_interval, &before);
	if (st != CORE_OK)
		return st;
	/* while a switch runs, either mode is refused: the one it switches to is on its way, and the one stored now
	 * (which the switch is leaving) would be taken as "no change" and answered 200 while the switch ends in the
	 * other (a walk asked for project during a switch to group, read "hook_mode": "project", and got group) */
	const char *asked = NULL;
	char running_to[16];
	if (jsonx_str(body, "hook_mode", &asked) && (st = running_switch(env->db, &running, running_to)) == CORE_OK &&
	    running > 0) {
		if (strcmp(asked, running_to) == 0 || !running_to[0])
			snprintf(msg, cap,
			         "a webhook mode switch to %s is already running (job %lld): wait for it to finish; "
			         "nothing was stored",
			         running_to[0] ? running_to : "another mode", (long long)running);
		else
			snprintf(
			    msg, cap,
			    "a webhook mode switch to %s is running (job %lld): wait for it to finish, then switch "
			    "back to %s; nothing was stored",
			    running_to, (long long)running, asked);
		return CORE_ECONFLICT;
	}
	if (st != CORE_OK)
		return st;
	to = asked && strcmp(asked, before.hook_mode) != 0 ? asked : NULL;
	/* the other settings are stored now; hook_mode is stored by the switch job once GitLab allows it */
	struct json_object *rest = json_object_new_object();
	json_object_object_foreach(body, k, v)
	{
		if (strcmp(k, "hook_mode") != 0 || !to)
			json_object_object_add(rest, k, json_object_get(v));
	}
	if (json_object_object_length(rest) > 0)
		st = settings_put(env->db, rest, actor, env->default_resync_interval, msg, cap);
	json_object_put(rest);
	if (st == CORE_OK && to)
		st = start_switch(env, actor, to, job_out);
	return st;
}

enum job_outcome hookmode_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	struct settings before;
	const char *to = NULL;
	char msg[400] = "";
	if (!jsonx_str(item->payload, "to", &to) || (strcmp(to, "group") != 0 && strcmp(to, "project") != 0)) {
		jobs_result_message(res, "a webhook mode switch needs \"to\": group or project");
		return JOB_ITEM_ERROR;
	}
	if (settings_get(env->db, env->default_resync_interval, &before) != CORE_OK) {
		jobs_result_message(res, "could not read the settings");
		return JOB_ITEM_RETRY;
	}
	if (strcmp(before.hook_mode, to) == 0) {
		jobs_result_message(res, "the webhook mode is already %s", to);
		return JOB_ITEM_UNCHANGED;
	}
	/* checked against GitLab and prepared before anything is stored; a refusal leaves the mode as it was */
	enum core_status st = hookmode_prepare(env, to, msg, sizeof(msg));
	if (st != CORE_OK) {
		jobs_result_message(res, "%s", msg);
		return JOB_ITEM_ERROR;
	}
	struct json_object *set = jx_object();
	json_object_object_add(set, "hook_mode", jx_str(to));
	st = settings_put(env->db, set, item->created_by, env->default_resync_interval, msg, sizeof(msg));
	json_object_put(set);
	if (st != CORE_OK) {
		jobs_result_message(res, "could not store the webhook mode: %s", msg[0] ? msg : core_status_code(st));
		return JOB_ITEM_RETRY;
	}
	struct json_object *sw = hookmode_finish(env, item->created_by, before.hook_mode, to);
	const char *said = NULL;
	jsonx_str(sw, "message", &said);
	jobs_result_message(res, "switched to %s: %s", to, said ? said : "done");
	log_info("hook_mode switched to %s: %s", to, json_object_to_json_string(sw));
	res->details = sw;
	return JOB_ITEM_CHANGED;
}
