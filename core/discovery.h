/*
 * core/discovery.h
 *    Discovery ("sync"): list every project of the connected group and its subgroups and store it.
 *
 * Design: the group tree comes first (GET /groups/:id, GET /groups/:id/descendant_groups); then every group's own
 * projects are listed concurrently by `concurrency` workers (GET /groups/:id/projects?include_subgroups=false
 * &with_shared=false&per_page=100&order_by=id&sort=asc&page=N): first pages of groups not started yet, then next
 * pages that x-next-page / Link rel="next" said exist (never x-total-pages, which GitLab omits above 10,000 rows),
 * and, when a worker would otherwise idle at the tail (fewer groups left than workers, e.g. one flat group), pages
 * up to concurrency - 1 ahead of the last answer of a group of 5 pages or more; a page past the end answers empty
 * and ends that group. With one worker the walk is strictly sequential. Each page is validated field by field (an entry
 * without an integer id or a path is skipped and counted) and stored with one batched upsert, so memory stays at one
 * page per lister however large the group is (nothing holds the list: the run's stamp on each row, seen_sync, is the
 * list). GitLab offers only offset pagination for group project listings (keyset is for GET /projects alone,
 * shared/GITLAB-API.md §2.4): numbered pages are what can be asked for in any order.
 * A project moved between two subgroups while they were listed can be missed
 * by both listings: before anything is marked removed, repos that no listing saw are read one by one (up to 200;
 * above that one listing of the whole tree in id order decides), so removed and moved repos are told apart exactly.
 * A project listed by two groups (moved from one not yet listed to one listed later) is stored as the later
 * listing saw it and counted once; one moved between two groups both listed before the move is stored where it
 * was seen, and its new group is read by the next run. Repos that a complete run did not find are marked removed
 * (never deleted); a run that fails half-way marks nothing removed. A run is a row of sync_runs whose counters
 * (pages, repos seen) each page's upsert adds to in the same statement, so progress can be read while it runs
 * (repos_seen counts a repo per listing until the end, when it becomes the number of repos the run saw). At most
 * one run exists at a time (a unique index); a run whose instance died (no heartbeat for 2 minutes) is closed as
 * failed by the next one.
 * Threading: discovery_execute blocks the calling thread for the whole run and starts up to `concurrency` - 1
 * lister threads of its own, all joined before it returns.
 */
#ifndef MRGATE_CORE_DISCOVERY_H
#define MRGATE_CORE_DISCOVERY_H

#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/* Open a run row; CORE_ECONFLICT (with *run_id_out = the running one) when a run is in progress. */
enum core_status discovery_begin(struct store *db, const char *trigger, const char *owner, int64_t *run_id_out);

/*
 * Execute an opened run to the end against gl for group_id; the row ends 'done' or 'failed' with the error.
 * concurrency: groups listed at once (the GitLab concurrency setting). progress_cb (may be NULL) is called after
 * every page with the row's counters, from the lister threads but never from two at once.
 */
struct discovery_counts {
	int pages, repos_seen, groups_seen, new_repos, updated, removed, archived, skipped;
};
enum core_status discovery_execute(struct store *db, struct gitlab *gl, int64_t group_id, int64_t run_id,
                                   int concurrency, void (*progress_cb)(const struct discovery_counts *c, void *user),
                                   void *user, struct discovery_counts *counts_out);

/* The run's row as JSON ({id, state, trigger, started_at, finished_at, pages, repos_seen, ...}); run_id 0 for the
 * latest. CORE_ENOTFOUND when none. *out is the caller's. */
enum core_status discovery_get(struct store *db, int64_t run_id, struct json_object **out);

/* Mark an opened run failed without executing it (e.g. the connection could not be opened). */
enum core_status discovery_fail(struct store *db, int64_t run_id, const char *error);

/*
 * Store one project entry (GET /projects/:id or a list entry) with the same mapping as a run, outside any run (its
 * seen_sync is kept): a repo created on GitLab and announced by a webhook. CORE_EINVAL when it lacks an id or
 * paths. *inserted_out (may be NULL): the repo was new.
 */
enum core_status discovery_upsert_project(struct store *db, struct json_object *project, bool *inserted_out);

/* Close runs whose owner stopped beating (crashed instance). Called by discovery_begin. */
enum core_status discovery_reap_stale(struct store *db);

#endif
