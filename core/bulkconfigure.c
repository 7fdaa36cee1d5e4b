/*
 * core/bulkconfigure.c
 *    POST /api/configure as one call (see bulkconfigure.h).
 */
#include "bulkconfigure.h"

#include "dryrun.h"
#include "jsonx.h"
#include "xalloc.h"

#include <stdio.h>
#include <string.h>

/* A failure with its code and message; returns st. */
static enum core_status failure(enum core_status st, const char *code, const char **code_out, char *err, size_t errlen,
                                const char *message)
{
	*code_out = code ? code : core_status_code(st);
	if (message)
		snprintf(err, errlen, "%s", message);
	return st;
}

/* The dry run's job into o: "plan_total", "plan_job_id", "plan_job". */
static enum core_status dryrun_plan_job(const struct applyjob_env *env, const char *actor,
                                        const struct configure_out *co, struct json_object *o)
{
	struct json_object *job = NULL;
	enum core_status st = dryrun_start(env, actor, co, &job);
	if (st != CORE_OK)
		return st;
	json_object_object_add(o, "plan_total", jx_int((int64_t)co->n_plan));
	json_object_object_add(o, "plan_job_id", json_object_get(jsonx_get(job, "id")));
	json_object_object_add(o, "plan_job", job);
	return CORE_OK;
}

enum core_status bulkconfigure_run(const struct applyjob_env *env, const struct configure_req *req,
                                   struct json_object **out, const char **code_out, char *err, size_t errlen)
{
	struct configure_out co;
	enum core_status st;
	memset(&co, 0, sizeof(co));
	*out = NULL;
	if (!req->dry_run) {
		/* a read-only token: refuse before anything is stored or sent */
		const char *code = NULL;
		st = connection_write_check(env->db, &code, err, errlen);
		if (st == CORE_ECONFLICT && strcmp(code, "token_read_only") == 0)
			return failure(st, code, code_out, err, errlen, NULL);
		if (st != CORE_OK && st != CORE_ECONFLICT)
			return failure(st, NULL, code_out, err, errlen, "could not read the GitLab connection");
	}
	st = configure_run(env->db, req, &co, err, errlen);
	if (st == CORE_ECONFLICT && co.summary) { /* it replaces more than the user was shown: what, in *out */
		*out = jx_object();
		json_object_object_add(*out, "summary", json_object_get(co.summary));
		configure_out_clear(&co);
		return failure(st, "overrides_changed", code_out, err, errlen, NULL);
	}
	if (st == CORE_ENOTFOUND) { /* a group no sync has listed: likely a typo, unless confirmed */
		size_t n = strlen(err);
		snprintf(err + n, errlen - n,
		         ", or, to store a config for a group still to come (its repositories inherit it once a sync "
		         "lists them), send \"confirm_new_group\": true");
		configure_out_clear(&co);
		return failure(CORE_EINVAL, "unknown_group", code_out, err, errlen, NULL);
	}
	if (st == CORE_EINVAL && co.outside_group) {
		configure_out_clear(&co);
		return failure(st, "outside_group", code_out, err, errlen, NULL);
	}
	if (st != CORE_OK) {
		bool selection = co.bad_selection;
		configure_out_clear(&co);
		return st == CORE_EINVAL
		           ? failure(st, selection ? "invalid_input" : "invalid_config", code_out, err, errlen, NULL)
		           : failure(st, NULL, code_out, err, errlen, "could not store the configuration");
	}
	struct json_object *o = jx_object();
	json_object_object_add(o, "summary", json_object_get(co.summary));
	json_object_object_add(o, "dry_run", jx_bool(req->dry_run));
	if (!req->dry_run)
		json_object_object_add(
		    o, "apply",
		    applyjob_start_marked(env, req->actor, &co.marked, req->reapply, req->resend_hook_tokens));
	else if ((st = dryrun_plan_job(env, req->actor, &co, o)) != CORE_OK)
		failure(st, NULL, code_out, err, errlen, "could not start the dry run's job");
	configure_out_clear(&co);
	if (st != CORE_OK) {
		json_object_put(o);
		return st;
	}
	*out = o;
	return CORE_OK;
}
