/*
 * core/hookjobs.c
 *    The onboard and hold jobs (see hookjobs.h).
 */
#include "hookjobs.h"

#include "applyjob.h"
#include "gatehold.h"
#include "grouphook.h"
#include "jsonx.h"
#include "log.h"
#include "settings.h"
#include "xalloc.h"

#include <string.h>

enum job_outcome hookjobs_onboard(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	struct connection_client *cc = NULL;
	struct gateconfig_marked marked;
	struct settings set;
	enum job_outcome outcome;
	char msg[400] = "";
	memset(&marked, 0, sizeof(marked));
	if (!item->has_repo) {
		jobs_result_message(res, "an onboard item needs a project id");
		return JOB_ITEM_ERROR;
	}
	if (settings_get(env->db, env->default_resync_interval, &set) != CORE_OK)
		return JOB_ITEM_RETRY;
	if (strcmp(set.hook_mode, "group") != 0) {
		jobs_result_message(res, "not in group-hook mode: the next resync lists the project");
		return JOB_ITEM_SKIPPED;
	}
	if (!applyjob_client(env, res, "no GitLab connection", &cc, &outcome))
		return outcome;
	applyjob_slot_take(env);
	enum core_status st =
	    grouphook_onboard(env->db, connection_client_gitlab(cc), item->repo_id, &marked, msg, sizeof(msg));
	applyjob_slot_give(env);
	connection_client_release(cc);
	if (st != CORE_OK) {
		jobs_result_message(res, "%s", msg[0] ? msg : core_status_code(st));
		gateconfig_marked_clear(&marked);
		return st == CORE_ENOTFOUND ? JOB_ITEM_ERROR : JOB_ITEM_RETRY;
	}
	int64_t job_id = 0;
	if (marked.n > 0) {
		json_object_put(
		    applyjob_start(env, "system (project_create)", marked.run, marked.ids, marked.n, &job_id));
		log_info("onboard: %s (apply job %lld)", msg, (long long)job_id);
	}
	gateconfig_marked_clear(&marked);
	jobs_result_message(res, "%s", msg);
	if (job_id) {
		res->details = jx_object();
		json_object_object_add(res->details, "apply_job", jx_int(job_id));
	}
	return job_id ? JOB_ITEM_CHANGED : JOB_ITEM_UNCHANGED;
}

enum job_outcome hookjobs_hold(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	struct connection_client *cc = NULL;
	enum job_outcome outcome;
	int64_t pipeline_id = 0, mr_iid = 0;
	const char *sha = NULL;
	char msg[400] = "";
	if (!item->has_repo || !jsonx_int64(item->params, "pipeline_id", &pipeline_id) ||
	    !jsonx_int64(item->params, "mr_iid", &mr_iid) || !jsonx_str(item->params, "sha", &sha)) {
		jobs_result_message(res, "a hold item needs a project, pipeline_id, mr_iid and sha");
		return JOB_ITEM_ERROR;
	}
	if (!applyjob_client(env, res, "no GitLab connection", &cc, &outcome))
		return outcome;
	applyjob_slot_take(env);
	enum core_status st = gatehold_pipeline(env->db, connection_client_gitlab(cc), env->public_url, item->repo_id,
	                                        mr_iid, pipeline_id, sha, msg, sizeof(msg));
	applyjob_slot_give(env);
	connection_client_release(cc);
	jobs_result_message(res, "%s", msg[0] ? msg : core_status_code(st));
	if (st != CORE_OK)
		return st == CORE_ENOTFOUND || st == CORE_EINVAL || st == CORE_EFORBIDDEN ? JOB_ITEM_ERROR
		                                                                          : JOB_ITEM_RETRY;
	return JOB_ITEM_CHANGED;
}
