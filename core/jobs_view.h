/*
 * core/jobs_view.h
 *    The read model of the job engine: one job's progress, a page of its items, a page of jobs, as JSON for the
 *    API and the CLI.
 *
 * Design: every answer is built from SQL by core/rows.h (a column is a member named and typed like the column),
 * so the JSON shape is the SELECT list below and nothing else; derived members (pending, percent, finished,
 * succeeded) are computed in the statement. Progress is one primary-key read of the jobs row (its counters are
 * kept by core/jobs.c in the statements that change items) plus a count of its running items over an index range.
 * Lists page the one way of core/rows.h: `limit`, `cursor` (an id we gave out, 0 for the first page) ->
 * {"items": [...], "next_cursor": id as text or null}.
 * Threading: every function borrows one pool connection for one statement; safe from any thread.
 * Ownership: *out is a new tree owned by the caller (json_object_put); NULL on error.
 */
#ifndef MRGATE_CORE_JOBS_VIEW_H
#define MRGATE_CORE_JOBS_VIEW_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdint.h>

#define JOBS_VIEW_LIST_MAX  500  /* the API's largest page of jobs */
#define JOBS_VIEW_ITEMS_MAX 1000 /* the API's largest page of items */

/*
 * One job: {id, kind, state, created_by, created_at, started_at, finished_at, params, total, done, pending,
 * running, changed, unchanged, skipped, failed, percent, finished, succeeded}. finished: state done, failed or
 * canceled; succeeded: done without failed items. CORE_ENOTFOUND when unknown.
 */
enum core_status jobs_view_get(struct store *db, int64_t job_id, struct json_object **out);

/*
 * Jobs newest first: {"items": [job as in jobs_view_get without params], "next_cursor"}; cursor 0 for the first
 * page; limit clamped to 1..JOBS_VIEW_LIST_MAX (0 = 50). Jobs of kind "hold" (one per CI pipeline event,
 * core/gatehold.h) and "dryrun" (a preview's, core/dryrun.h) are not listed; jobs_view_get reads them.
 */
enum core_status jobs_view_list(struct store *db, int limit, int64_t cursor, struct json_object **out);

/*
 * A page of a job's items in id order: {"items": [{id, repo_id, path_with_namespace, state, result, message,
 * details, attempts, started_at, finished_at}], "next_cursor"}. filter is NULL/"" (all), an item state (pending,
 * running, done, failed) or a result (changed, unchanged, skipped, error); limit is clamped to
 * 1..JOBS_VIEW_ITEMS_MAX (0 = 100). CORE_ENOTFOUND for an unknown job, CORE_EINVAL for an unknown filter.
 */
enum core_status jobs_view_items(struct store *db, int64_t job_id, const char *filter, int64_t cursor, int limit,
                                 struct json_object **out);

/*
 * A page of a dry run's plan (a job of kind "dryrun", core/dryrun.h) in plan order: {"items": [the details of each
 * finished item: its plan entry], "next_cursor"}; items still pending or running are not listed yet. limit as
 * jobs_view_items. CORE_ENOTFOUND for an unknown job, CORE_ESTATE for a job of another kind.
 */
enum core_status jobs_view_plan(struct store *db, int64_t job_id, int64_t cursor, int limit, struct json_object **out);

#endif
