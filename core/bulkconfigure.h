/*
 * core/bulkconfigure.h
 *    POST /api/configure as one call: refuse a read-only token before anything is stored, store the configuration
 *    for the selection (core/configure.h), then start the apply job (core/applyjob.h) or, in a dry run, the job that
 *    reads the plan from GitLab (core/dryrun.h): the request itself never waits on GitLab.
 *
 * Design: a token GitLab refused (expired, revoked) does not stop a configure: the config is stored and applied
 * once the token is updated; only a read-only token, which could never apply it, is refused first. A dry run only
 * reads, so it is never refused for the token.
 * Errors come with the API's error code and a message, so the caller renders them as they are: CORE_ECONFLICT
 * "token_read_only", CORE_EINVAL "invalid_config", CORE_ECONFLICT "overrides_changed" (the apply would replace configs
 * req->expect_overridden does not name; nothing stored; *out is {"summary"} with what it would replace), anything
 * else core_status_code()'s code with what could not be done.
 * Threading: blocks the calling thread on the database only.
 * Ownership: env and req are borrowed; *out is the caller's: {"summary", "dry_run", "apply"} (apply: the job
 * started, or null when nothing needs GitLab changes) or, in a dry run, {"summary", "dry_run", "plan_total",
 * "plan_job_id", "plan_job"} (without a GitLab connection the job's items fail, saying so).
 */
#ifndef MRGATE_CORE_BULKCONFIGURE_H
#define MRGATE_CORE_BULKCONFIGURE_H

#include "applyjob.h"
#include "configure.h"
#include "status.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* On failure *code_out and err say what and why (and *out is NULL, but for "overrides_changed"). */
enum core_status bulkconfigure_run(const struct applyjob_env *env, const struct configure_req *req,
                                   struct json_object **out, const char **code_out, char *err, size_t errlen);

#endif
