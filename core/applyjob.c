/*
 * core/applyjob.c
 *    The apply job: its handler, starting one, waiting for one (see applyjob.h).
 */
#include "applyjob.h"

#include "jsonx.h"
#include "limiter.h"
#include "log.h"
#include "settings.h"
#include "xalloc.h"

#include <string.h>
#include <time.h>

enum core_status applyjob_ctx(const struct applyjob_env *env, struct connection_client *cc,
                              char hook_url[APPLYJOB_HOOK_URL_MAX], struct apply_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	hook_url[0] = '\0';
	/* apply_hook_url() appends "/hooks/gitlab" to the public URL without its trailing slashes */
	if (strlen(env->public_url) > PUBLICURL_MAX) {
		log_error("the public URL is longer than %d characters: its hook URL would be cut", PUBLICURL_MAX);
		return CORE_ETOOLARGE;
	}
	apply_hook_url(env->public_url, hook_url, APPLYJOB_HOOK_URL_MAX);
	ctx->hook_url = hook_url;
	ctx->webhook_secret = connection_client_webhook_secret(cc);
	/* GitLab cannot verify TLS on a plain-http URL; the flag is meaningless there, so it is sent as false */
	ctx->ssl_verify = strncmp(hook_url, "https://", 8) == 0;
	return CORE_OK;
}

bool applyjob_client(const struct applyjob_env *env, struct job_item_result *res, const char *missing,
                     struct connection_client **cc_out, enum job_outcome *outcome_out)
{
	*cc_out = NULL;
	enum core_status st = connection_client_shared(env->db, env->secret_key, &env->tune, cc_out);
	if (st == CORE_OK)
		return true;
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "%s", missing);
		*outcome_out = JOB_ITEM_ERROR;
	} else {
		jobs_result_message(res, "could not open the GitLab connection (%s)", core_status_code(st));
		*outcome_out = JOB_ITEM_RETRY;
	}
	return false;
}

void applyjob_slot_take(const struct applyjob_env *env)
{
	if (env->gitlab_slots)
		limiter_acquire(env->gitlab_slots);
}

void applyjob_slot_give(const struct applyjob_env *env)
{
	if (env->gitlab_slots)
		limiter_release(env->gitlab_slots);
}

/* Why the stored connection may not write (token expired, revoked or read-only), or NULL when it may. */
static const char *write_refusal(const struct connection_info *ci)
{
	if (strcmp(ci->token_status, "ok") != 0)
		return ci->token_problem[0] ? ci->token_problem : "the GitLab token is not valid";
	if (strcmp(ci->capability, "gate") != 0)
		return "the GitLab token is read-only: update the connection with a token that has the api scope";
	return NULL;
}

/* An apply result as the item's outcome, message and details. */
static enum job_outcome item_outcome(const struct apply_result *ar, struct job_item_result *res)
{
	jobs_result_message(res, "%s", ar->message);
	res->details = jx_object();
	json_object_object_add(res->details, "reads", jx_int(ar->reads));
	json_object_object_add(res->details, "writes", jx_int(ar->writes));
	switch (ar->outcome) {
	case APPLY_CHANGED: return JOB_ITEM_CHANGED;
	case APPLY_UNCHANGED: return JOB_ITEM_UNCHANGED;
	case APPLY_SKIPPED: return JOB_ITEM_SKIPPED;
	case APPLY_ERROR: break;
	}
	return ar->retryable ? JOB_ITEM_RETRY : JOB_ITEM_ERROR;
}

/* Apply one repo with an open client; the item's outcome. */
static enum job_outcome apply_one(const struct applyjob_env *env, struct connection_client *cc, int64_t repo_id,
                                  int64_t run, struct job_item_result *res)
{
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	struct apply_result ar;
	struct settings set;
	memset(&ar, 0, sizeof(ar));
	enum core_status st = applyjob_ctx(env, cc, hook_url, &ctx);
	if (st != CORE_OK) {
		jobs_result_message(res, "the public URL is too long for a hook URL");
		return JOB_ITEM_ERROR;
	}
	ctx.run = run;
	if (settings_get(env->db, env->default_resync_interval, &set) == CORE_OK && strcmp(set.hook_mode, "group") == 0)
		ctx.group_mode = true; /* the group hook delivers: no project hook */
	applyjob_slot_take(env);
	st = apply_repo(env->db, connection_client_gitlab(cc), &ctx, repo_id, false, &ar);
	applyjob_slot_give(env);
	enum job_outcome outcome = JOB_ITEM_RETRY;
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "repository %lld is unknown", (long long)repo_id);
		outcome = JOB_ITEM_ERROR;
	} else if (st != CORE_OK) {
		jobs_result_message(res, "could not apply (%s)", core_status_code(st));
	} else {
		outcome = item_outcome(&ar, res);
	}
	apply_result_clear(&ar);
	return outcome;
}

#define NO_CONNECTION "no GitLab connection: connect one on the Connection page"

enum job_outcome applyjob_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	struct connection_client *cc = NULL;
	struct connection_info ci;
	enum job_outcome outcome = JOB_ITEM_ERROR;
	int64_t run = 0;
	memset(&ci, 0, sizeof(ci));
	if (!item->has_repo) {
		jobs_result_message(res, "an apply item needs a repository");
		return JOB_ITEM_ERROR;
	}
	jsonx_int64(item->params, "run", &run);

	/* the token's health is read fresh: a resync may have found it expired since the client was opened */
	enum core_status st = connection_get(env->db, &ci);
	const char *refusal = st == CORE_OK ? write_refusal(&ci) : NULL;
	if (refusal) {
		jobs_result_message(res, "%s", refusal);
		apply_abandon(env->db, &item->repo_id, 1, run, res->message);
	} else if (st != CORE_OK && st != CORE_ENOTFOUND) {
		jobs_result_message(res, "could not open the GitLab connection (%s)", core_status_code(st));
		outcome = JOB_ITEM_RETRY;
	} else if (st == CORE_ENOTFOUND || !applyjob_client(env, res, NO_CONNECTION, &cc, &outcome)) {
		if (st == CORE_ENOTFOUND)
			jobs_result_message(res, NO_CONNECTION);
		if (outcome == JOB_ITEM_ERROR)
			apply_abandon(env->db, &item->repo_id, 1, run, res->message);
	} else {
		outcome = apply_one(env, cc, item->repo_id, run, res);
	}
	connection_info_clear(&ci);
	connection_client_release(cc);
	return outcome;
}

struct json_object *applyjob_start(const struct applyjob_env *env, const char *actor, int64_t run, const int64_t *ids,
                                   size_t n, int64_t *job_id_out)
{
	struct json_object *params = jx_object(), *job = NULL;
	json_object_object_add(params, "run", jx_int(run));
	int64_t job_id = 0;
	enum core_status st = jobs_create(
	    env->db, "apply", actor, json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN), ids, n, &job_id);
	json_object_put(params);
	if (job_id_out)
		*job_id_out = 0;
	if (st != CORE_OK) {
		apply_abandon(env->db, ids, n, run, "could not create the apply job");
		return NULL;
	}
	if (env->jobs)
		jobs_runner_wake(env->jobs);
	if (jobs_get(env->db, job_id, &job) != CORE_OK)
		job = NULL;
	if (job_id_out)
		*job_id_out = job_id;
	return job;
}

struct json_object *applyjob_start_marked(const struct applyjob_env *env, const char *actor,
                                          struct gateconfig_marked *marked)
{
	if (marked->n == 0) {
		gateconfig_marked_clear(marked);
		return NULL;
	}
	int64_t job_id = 0;
	struct json_object *job = applyjob_start(env, actor, marked->run, marked->ids, marked->n, &job_id);
	struct json_object *o = jx_object();
	json_object_object_add(o, "run", jx_int(marked->run));
	json_object_object_add(o, "repos", jx_int((int64_t)marked->n));
	json_object_object_add(o, "job_id", job_id ? jx_int(job_id) : NULL);
	json_object_object_add(o, "job", job);
	gateconfig_marked_clear(marked);
	return o;
}

static bool stopping(const struct applyjob_env *env)
{
	return env->stopping && __atomic_load_n(env->stopping, __ATOMIC_RELAXED);
}

bool applyjob_wait(const struct applyjob_env *env, int64_t job_id, int max_seconds)
{
	for (int i = 0; i < max_seconds * 4 && !stopping(env); i++) {
		struct json_object *j = NULL;
		bool finished = false;
		if (jobs_get(env->db, job_id, &j) == CORE_OK)
			jsonx_bool(j, "finished", &finished);
		json_object_put(j);
		if (finished)
			return true;
		struct timespec ts = {0, 250 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}
