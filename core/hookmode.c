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
	st = grouphook_ensure(env->db, gl, &ctx, group_id, NULL, msg, cap);
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
		snprintf(msg, sizeof(msg), "group webhook in place; project webhooks being removed by the apply job");
	json_object_object_add(d, "message", jx_str(msg));
	grouphook_audit(env->db, actor, from, to, d);
	return d;
}

enum core_status hookmode_settings_put(const struct applyjob_env *env, struct json_object *body, const char *actor,
                                       bool *refused_out, char *msg, size_t cap)
{
	struct settings before;
	const char *to = NULL;
	*refused_out = false;
	enum core_status st = settings_check(body, msg, cap);
	if (st == CORE_OK)
		st = settings_get(env->db, env->default_resync_interval, &before);
	if (st != CORE_OK)
		return st;
	/* a hook_mode change is checked against GitLab and prepared before anything is stored */
	if (jsonx_str(body, "hook_mode", &to) && strcmp(to, before.hook_mode) == 0)
		to = NULL;
	if (to && (st = hookmode_prepare(env, to, msg, cap)) != CORE_OK) {
		*refused_out = true;
		return st;
	}
	st = settings_put(env->db, body, actor, env->default_resync_interval, msg, cap);
	if (st == CORE_OK && to) {
		struct json_object *sw = hookmode_finish(env, actor, before.hook_mode, to);
		log_info("hook_mode switched to %s: %s", to, json_object_to_json_string(sw));
		json_object_put(sw);
	}
	return st;
}
