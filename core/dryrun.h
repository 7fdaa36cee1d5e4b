/*
 * core/dryrun.h
 *    The plan of a configure dry run (core/configure.h): for the repos a configure would apply, what GitLab would
 *    get, read from GitLab and written nowhere.
 *
 * Design: configure_run(dry_run) says which repos would be applied and the state each would be brought to; this
 * reads those repos' GitLab side (apply in dry-run mode) and describes the writes. The CLI reads the whole plan in
 * the foreground (dryrun_read, apply_batch at the process's GitLab concurrency); the API makes it a job (below).
 * Threading: dryrun_read blocks the calling thread on GitLab (the CLI's foreground dry run); dryrun_item runs on
 *   the job workers; dryrun_start only writes the job. Safe from any thread.
 * Ownership: env, cc and out are borrowed; *items_out is the caller's (dryrun_items_free), *job_out too.
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
 * The API's dry run is a job of kind "dryrun" (core/jobs.h) so no request waits on GitLab: one item per plan entry
 * (payload {"want", "path"}), each read from GitLab by dryrun_item on the job workers under the process's GitLab
 * slots, sharing the job's reads of the group's lists as an apply job's items do (applyjob_lists_take); the item's
 * details are its plan entry (as dryrun_plan_page's, plus gitlab_reads and
 * gitlab_writes_planned), its outcome changed (GitLab would change), unchanged, skipped or error (with GitLab's
 * advice; a transient error is retried). GET /api/jobs/{id}/plan pages the entries (jobs_view_plan).
 * dryrun_start creates the job for out's plan (an empty plan makes a job that is done at once) and wakes the local
 * runner; *job_out gets the job as jobs_get shows it. It first cancels the actor's dry runs still queued or
 * running (one preview per user at a time: an abandoned one would keep spending GitLab's rate limit).
 */
enum core_status dryrun_start(const struct applyjob_env *env, const char *actor, const struct configure_out *out,
                              struct json_object **job_out);
/* The handler of kind "dryrun"; user is the applyjob_env. */
enum job_outcome dryrun_item(void *user, const struct job_item *item, struct job_item_result *res);

#endif
