/*
 * core/dryrun.h
 *    The plan of a configure dry run (core/configure.h): for the repos a configure would apply, what GitLab would
 *    get, read from GitLab and written nowhere.
 *
 * Design: configure_run(dry_run) says which repos would be applied and the state each would be brought to; this
 * reads those repos' GitLab side with apply_batch(dry_run) at the process's GitLab concurrency and describes the
 * writes. The API pages the plan like every list (a page of plan_limit repos after plan_cursor, a repo id, and
 * plan_next_cursor); the CLI reads it whole.
 * Threading: blocks the calling thread on GitLab; safe from any thread.
 * Ownership: env, cc and out are borrowed; *items_out is the caller's (dryrun_items_free).
 */
#ifndef MRGATE_CORE_DRYRUN_H
#define MRGATE_CORE_DRYRUN_H

#include "applyjob.h"
#include "configure.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Read GitLab for the plan entries first .. first + count - 1 of out with the client cc: *items_out gets count
 * items (their res.plan says what would be written). CORE_ETOOLARGE when the hook URL cannot be made.
 */
enum core_status dryrun_read(const struct applyjob_env *env, struct connection_client *cc,
                             const struct configure_out *out, size_t first, size_t count,
                             struct apply_batch_item **items_out);
void dryrun_items_free(struct apply_batch_item *items, size_t n); /* NULL is fine */

/*
 * One page of the API's plan into o: "plan" (up to limit entries after the repo id cursor; limit 0: all),
 * "plan_total", "plan_next_cursor" (a string, or null on the last page), "gitlab_reads", "gitlab_writes_planned".
 * An entry: {repo_id, path_with_namespace, want (off | hook | hook+merge), result, message, actions, hooks,
 * settings[, open_mrs_to_gate, statuses_to_clear]}. Opens the shared GitLab client when the page is not empty:
 * CORE_ENOTFOUND without a connection.
 */
enum core_status dryrun_plan_page(const struct applyjob_env *env, const struct configure_out *out, int64_t cursor,
                                  int64_t limit, struct json_object *o);

#endif
