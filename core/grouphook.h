/*
 * core/grouphook.h
 *    Group-hook mode (DESIGN.md §3, GITLAB-API.md §4, §9.4): one webhook on the connected root group instead of one
 *    per project, and onboarding of the projects that GitLab announces with project_create.
 *
 * Design: the group hook is ours when its url equals ctx->hook_url; nobody else's hook is touched. It carries the
 * webhook secret, merge_requests_events, pipeline_events (core/gatehold.h), note_events (core/mrcommand.h) and
 * project_events true (GitLab 17.6+ sends project_create/project_destroy only to group hooks with project_events) and
 * every other event flag false. Group hooks deliver only when the top-level group is licensed (Premium/Ultimate), while
 * GitLab's group-hooks API has no licence check: a hook made on a Free group is accepted and never fires. So a switch
 * to group mode is proven before any project hook goes: the plan GitLab reports for the group (GET /namespaces/:id,
 * GitLab.com) must not be free, and a test delivery of the new hook (POST /groups/:id/hooks/:hook_id/test/push_events)
 * must reach the receiver. Its id lives in the one-row table group_hook, whose row exists exactly while group-hook mode
 * is in force; repo_status reads a repo gated without a project hook while it exists (sql/0007_group_hook.sql).
 * Switching modes is ordered so that no repo is ever without a hook: to group, the group hook first, then the project
 * hooks are removed (apply with ctx->group_mode); to project, the project hooks first, then grouphook_remove(). Project
 * mode never calls anything here. Threading: thread-safe (one database connection per call; the struct gitlab is
 * shared).
 */
#ifndef MRGATE_CORE_GROUPHOOK_H
#define MRGATE_CORE_GROUPHOOK_H

#include "apply.h"
#include "gateconfig.h"
#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROUPHOOK_NEEDS "group hooks need GitLab Premium or Ultimate and an Owner token"

/* GET /groups/:id/hooks: CORE_OK when the token may manage group hooks; else CORE_ECONFLICT (403/404: the tier or
 * the role; msg says so) or the transport's status (msg says why). */
enum core_status grouphook_probe(struct gitlab *gl, int64_t group_id, char *msg, size_t cap);

/*
 * Make the group carry exactly one executable hook of ours with the right flags and the current secret (read
 * before write; a disabled copy is replaced, duplicates deleted) and record it in group_hook. *changed: a write
 * was made. *was_down: group-hook mode was in force (group_hook had its row) and GitLab could not deliver merge
 * request events to it: no executable copy of ours, or the one kept had merge_requests_events off; the MRs opened
 * meanwhile were never delivered (core/resync.c has them gated). Either may be NULL. CORE_OK, or an error with
 * advice in msg.
 */
enum core_status grouphook_ensure(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t group_id,
                                  bool *changed, bool *was_down, char *msg, size_t cap);

/* Seconds grouphook_prove() waits for the test delivery to be recorded. */
#define GROUPHOOK_PROOF_WAIT_S 10

/*
 * GET /namespaces/:id: CORE_ECONFLICT (msg says why) when GitLab reports the group's plan as free (GitLab.com); CORE_OK
 * when it reports another plan or none (self-managed reports "default": the test delivery decides); the transport's
 * status when GitLab could not be asked.
 */
enum core_status grouphook_plan_check(struct gitlab *gl, int64_t group_id, char *msg, size_t cap);

/*
 * Prove that the recorded group hook delivers: trigger GitLab's test delivery (push_events sample; our hooks never
 * ask for push events, so a Push Hook recorded after the trigger is this test's) and wait up to wait_s seconds for
 * it in webhook_events. CORE_OK when it arrived; CORE_ECONFLICT with why in msg when GitLab refused the test
 * (old GitLab: 404; receiver unreachable: 422; 5 tests a minute: 429) or it never arrived; else the store's or
 * the transport's status.
 */
enum core_status grouphook_prove(struct store *db, struct gitlab *gl, const char *hook_url, int64_t group_id,
                                 int wait_s, char *msg, size_t cap);

/* Delete every hook of ours on the group, then the group_hook row. */
enum core_status grouphook_remove(struct store *db, struct gitlab *gl, const char *hook_url, int64_t group_id,
                                  char *msg, size_t cap);

/* Whether group_hook has its row (group-hook mode is in force on GitLab). */
enum core_status grouphook_active(struct store *db, bool *out);

/* Mark for apply every manageable repo whose last apply gated it (a mode switch re-applies them all). */
enum core_status grouphook_mark_gated(struct store *db, struct gateconfig_marked *out);

/*
 * A project GitLab announced (project_create): GET /projects/:id, store it with discovery's mapping (so it
 * inherits its group's config) and, when its effective config is enabled, mark it for apply (*out). msg says what
 * happened. CORE_OK also when there is nothing to do.
 */
enum core_status grouphook_onboard(struct store *db, struct gitlab *gl, int64_t project_id,
                                   struct gateconfig_marked *out, char *msg, size_t cap);

/* Audit a mode switch ("settings.hook_mode", before/after and details, borrowed). */
enum core_status grouphook_audit(struct store *db, const char *actor, const char *from, const char *to,
                                 struct json_object *details);

#endif
