/*
 * core/hookmode.h
 *    Switching settings.hook_mode between "project" (one webhook per gated repo) and "group" (one group webhook,
 *    core/grouphook.h) without a moment in which a gated repo has no webhook delivering.
 *
 * Design: the switch is a job of kind "hookmode" (hookmode_settings_put starts it, hookmode_item runs it), two steps
 * around storing the setting:
 *   hookmode_prepare() before: to "group", the token must be Owner of the group and GitLab must allow group hooks
 *     (Premium; GitLab.com's plan is read), then the group hook is made and proven to deliver; an unproven hook
 *     is deleted again and project mode stays. To "project" nothing is needed first.
 *   hookmode_finish() after: every gated repo is re-applied (project hooks deleted in group mode, put back in
 *     project mode); to "project" it waits for that job and deletes the group hook only when every repo has its
 *     project hook again (else the next resync retries). The switch is audited.
 * Statuses: CORE_ECONFLICT when GitLab or the connection does not allow the switch (the message says why),
 * CORE_EUNAVAIL when the connection cannot be opened, CORE_EUPSTREAM when GitLab failed; server/http_json.c maps
 * them to HTTP.
 * Threading: prepare and finish block the calling thread on GitLab (prepare waits up to GROUPHOOK_PROOF_WAIT_S for
 * the proof; finish up to 10 minutes for the apply job): they run in the "hookmode" job's item on a job worker,
 * never in a request (hookmode_settings_put only stores and starts the job). Ownership: env borrowed; the summary is
 * the caller's.
 */
#ifndef MRGATE_CORE_HOOKMODE_H
#define MRGATE_CORE_HOOKMODE_H

#include "applyjob.h"
#include "status.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Before storing hook_mode `to` ("project" or "group"): CORE_OK, or a status with the reason in msg (cap bytes). */
enum core_status hookmode_prepare(const struct applyjob_env *env, const char *to, char *msg, size_t cap);

/* After storing `to`: re-apply and finish the switch (see above); audited. The summary {from, to, repos, job_id,
 * message}, owned by the caller. */
struct json_object *hookmode_finish(const struct applyjob_env *env, const char *actor, const char *from,
                                    const char *to);

/*
 * PUT /api/settings: store the settings in body (settings_put); a hook_mode change is not made in the request
 * (it waits on GitLab: the proof up to GROUPHOOK_PROOF_WAIT_S, the way back up to 10 minutes) but by a job of kind
 * "hookmode" with one item, *job_out (as jobs_get shows it; NULL when hook_mode does not change). The other
 * settings of body are stored at once. CORE_EINVAL with msg for invalid settings (nothing stored), CORE_ECONFLICT
 * with msg while another switch job is unfinished.
 */
enum core_status hookmode_settings_put(const struct applyjob_env *env, struct json_object *body, const char *actor,
                                       struct json_object **job_out, char *msg, size_t cap);

/*
 * The handler of kind "hookmode" (user: the applyjob_env): hookmode_prepare, then hook_mode stored (audited as the
 * job's creator), then hookmode_finish. A refusal is the item's error with the reason (the mode stays); a switch
 * is "changed" with the summary as details and its message; a mode already in place is "unchanged".
 */
enum job_outcome hookmode_item(void *user, const struct job_item *item, struct job_item_result *res);

#endif
