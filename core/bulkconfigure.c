/*
 * core/bulkconfigure.c
 *    POST /api/configure as one call (see bulkconfigure.h).
 */
#include "bulkconfigure.h"

#include "dryrun.h"
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

enum core_status bulkconfigure_run(const struct applyjob_env *env, const struct configure_req *req, int64_t plan_cursor,
                                   int64_t plan_limit, struct json_object **out, const char **code_out, char *err,
                                   size_t errlen)
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
	if (st != CORE_OK) {
		configure_out_clear(&co);
		return st == CORE_EINVAL
		           ? failure(st, "invalid_config", code_out, err, errlen, NULL)
		           : failure(st, NULL, code_out, err, errlen, "could not store the configuration");
	}
	struct json_object *o = jx_object();
	json_object_object_add(o, "summary", json_object_get(co.summary));
	json_object_object_add(o, "dry_run", jx_bool(req->dry_run));
	if (!req->dry_run)
		json_object_object_add(o, "apply", applyjob_start_marked(env, req->actor, &co.marked));
	else if ((st = dryrun_plan_page(env, &co, plan_cursor, plan_limit, o)) == CORE_ENOTFOUND)
		failure(st, "no_connection", code_out, err, errlen,
		        "no GitLab connection yet: connect one with PUT /api/connection");
	else if (st != CORE_OK)
		failure(st, NULL, code_out, err, errlen, "could not open the GitLab connection");
	configure_out_clear(&co);
	if (st != CORE_OK) {
		json_object_put(o);
		return st;
	}
	*out = o;
	return CORE_OK;
}
