/*
 * core/grouphook.h
 *    Group-hook mode (DESIGN.md §3, GITLAB-API.md §4, §9.4): one webhook on the connected root group instead of one
 *    per project, and onboarding of the projects that GitLab announces with project_create.
 *
 * Design: the group hook is ours when its url equals ctx->hook_url; nobody else's hook is touched. It carries the
 * webhook secret, merge_requests_events true and every other event flag false (GitLab 17.6+ sends project events
 * to group hooks without a flag). Its id lives in the one-row table group_hook, whose row exists exactly while
 * group-hook mode is in force; repo_status reads a repo gated without a project hook while it exists
 * (sql/0007_group_hook.sql). Switching modes is ordered so that no repo is ever without a hook: to group, the group
 * hook first, then the project hooks are removed (apply with ctx->group_mode); to project, the project hooks first,
 * then grouphook_remove(). Project mode never calls anything here.
 * Threading: thread-safe (one database connection per call; the struct gitlab is shared).
 */
#ifndef MRGATE_CORE_GROUPHOOK_H
#define MRGATE_CORE_GROUPHOOK_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
#include "gateconfig.h"
#include "gitlab.h"
#include "status.h"
#include "store.h"

#define GROUPHOOK_NEEDS "group hooks need GitLab Premium or Ultimate and an Owner token"

/* GET /groups/:id/hooks: CORE_OK when the token may manage group hooks; else CORE_ECONFLICT (403/404: the tier or
 * the role; msg says so) or the transport's status (msg says why). */
enum core_status grouphook_probe(struct gitlab *gl, int64_t group_id, char *msg, size_t cap);

/*
 * Make the group carry exactly one executable hook of ours with the right flags and the current secret (read
 * before write; a disabled copy is replaced, duplicates deleted) and record it in group_hook. *changed: a write
 * was made (may be NULL). CORE_OK, or an error with advice in msg.
 */
enum core_status grouphook_ensure(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t group_id,
				  bool *changed, char *msg, size_t cap);

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
