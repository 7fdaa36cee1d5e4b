/*
 * core/repos.h
 *    Reading the discovered repositories: filtered, sorted, cursor-paged lists and single repos.
 *
 * Design: one parameterised query per page, written for the filters the request has (a shape): each filter value
 * is a parameter, except archived and status, written in from fixed lists so that each gets the plan of its own
 * index, and the page size; no user text enters the SQL. A shape without a substring (q) is prepared once per
 * connection (core/store.h STORE_PREPARE): planning every page cost PostgreSQL more than reading it. Everything is read
 * from the table repo_status_stored (sql/0011), where each repo's status and effective config are stored and kept
 * current by triggers in the transactions that change them, so a filter on status is an index condition, not a
 * computation per repo. Each shape has its index: by path (path COLLATE "C", id) and by last activity
 * (coalesce(last_activity_at, -infinity), id), partial on "not removed" for the default list and led by status for a
 * status filter; a group is the path prefix "group/" on the same path index (path_with_namespace is always
 * namespace_full_path/path); q is a trigram (pg_trgm) index; ids the primary key. The cursor is the last row's sort key
 * and id, so pages are stable while repos are added or removed, and a page of 50 is one indexed range scan for every
 * filter and sort (tests/db/test_repo_plans.c checks the plans). The page and its count are read in one snapshot (a
 * read-only repeatable-read transaction: a job committing between them showed "1-75 of 59"). The count is exact up
 * to REPOS_COUNT_CAP and stops reading there; a count is reused by the pages read in the snapshot it was counted in
 * (exact: any commit counts again), so paging costs one count. PostgreSQL sends the rows' columns and mrgate writes
 * each row object's JSON text itself, handed on verbatim (rows_verbatim), not built as a json-c tree: building the
 * objects, their timestamps and a cursor for every row in SQL was most of PostgreSQL's time for a page. The cursor is
 * opaque to clients (base64url of "p|<path>|<id>" or "a|<epoch micros>|<id>"), made for the last kept row only.
 * Each row carries the effective gating config ("config"), where each field came from
 * ("config_sources": field -> "default" | "group:<path>" | "repo"), "exception", "unmanaged" and "last_apply" {result,
 * message, at} (null before the first apply), all from repo_status_stored (computed as sql/0004 and 0007 define, stored
 * by 0011). The page's response text is kept with the snapshot it was read in (the page cache, repos_list_text):
 * a read of the same shape and parameters in that snapshot (nothing committed since) is answered from it after one
 * short statement that asks the snapshot, exact for the same reason as the count cache. Requests that miss the same
 * page for the same snapshot at once share one read (the others wait for it holding no database connection), and the
 * group filter is matched in any case, as GitLab matches paths (the group as GitLab spells it, looked up on a miss).
 * Ownership: *out objects are new JSON trees owned by the caller; text out-parameters are malloc'd, the caller's.
 */
#ifndef MRGATE_CORE_REPOS_H
#define MRGATE_CORE_REPOS_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

enum repos_sort { REPOS_SORT_PATH = 0, REPOS_SORT_ACTIVITY };

struct repos_filter {
	const char *q;      /* text contained in path_with_namespace (case-insensitive), or NULL */
	const char *group;  /* a group full path: repos in it and its subgroups, or NULL */
	const char *status; /* see repos_status_names, or NULL for every repo not removed */
	int archived;       /* -1 any, 0 not archived, 1 archived only */
	enum repos_sort sort;
	bool descending;
	const char *cursor; /* from a previous page's next_cursor, or NULL */
	int limit;          /* 1..500, default 50 */
	const int64_t *ids; /* restrict to these ids (selection), or NULL */
	int n_ids;
};

/* The status names the filter accepts, NULL-terminated. */
extern const char *const repos_status_names[];

/* Counts are exact up to this many repos; beyond, "count" says REPOS_COUNT_CAP and "count_capped" true. */
#define REPOS_COUNT_CAP 10000

/* The page cache's default size: 8 MiB of page text (MRGATE_REPO_LIST_CACHE_MB). */
#define REPOS_LIST_CACHE_DEFAULT_BYTES ((size_t)8 << 20)

/* The page cache's size in bytes of page text, its pages dropped; 0 turns it off. Set once at start. */
void repos_list_cache_set(size_t max_bytes);

/*
 * One page as the response's JSON text (*body_out, malloc'd, *len_out bytes; the same members as repos_list),
 * from the page cache when it holds this page read in the current snapshot. snapshot: one the caller read in
 * during this request (auth_identity.snapshot), or NULL or "" to ask the database: a page kept for it is the
 * database as of then, and a page kept for an older one is not asked about again (snapshots never come back).
 * Errors as repos_list().
 */
enum core_status repos_list_text(struct store *db, const struct repos_filter *f, const char *snapshot, char **body_out,
                                 size_t *len_out, char *err, size_t errlen);

/*
 * One page: {"items":[...], "count": N (matching the filter, all pages, at most REPOS_COUNT_CAP), "count_capped":
 * true when more than REPOS_COUNT_CAP match (the dashboard says "10,000+"), "next_cursor": "..."|null}.
 * CORE_EINVAL with a message in err for a bad status, sort or cursor.
 */
enum core_status repos_list(struct store *db, const struct repos_filter *f, struct json_object **out, char *err,
                            size_t errlen);

/*
 * The plans of the two statements repos_list() runs for f (EXPLAIN of the page, then of the count, each after a
 * "-- page" / "-- count" line) into *plan_out, malloc'd (the caller frees). For the plan test
 * (tests/db/test_repo_plans.c) and for finding out why a filter is slow. Errors as repos_list().
 */
enum core_status repos_explain(struct store *db, const struct repos_filter *f, char **plan_out, char *err,
                               size_t errlen);

/*
 * Every repo matching the filter (sort, cursor and limit are ignored), ordered by path, on the caller's connection
 * (inside its transaction): rows id, path_with_namespace, status. *res_out is the caller's (PQclear).
 */
enum core_status repos_select(struct store_conn *c, const struct repos_filter *f, PGresult **res_out, char *err,
                              size_t errlen);

/*
 * What the repos matching the filter (sort, cursor and limit ignored) have in common, for the Configure dialog
 * and the coverage chips: {"repos": N, "statuses": {status: n, ...}, "fields": {field: [{"value": v, "repos": n},
 * ...], ...}} where fields are those of the effective config, each with its distinct values, most common first
 * (a field whose one value has repos == N is agreed on; more than one value is mixed). CORE_EINVAL for a bad
 * status.
 */
enum core_status repos_summary(struct store *db, const struct repos_filter *f, struct json_object **out, char *err,
                               size_t errlen);

/* One repo by GitLab project id; CORE_ENOTFOUND when unknown. */
enum core_status repos_get(struct store *db, int64_t id, struct json_object **out);

/*
 * What happened to one repo, newest first: its job items, gate runs and audit entries about it, and the config
 * changes that reach it (Configure Scans of a selection it was in, the default's and its groups' configs), each of
 * those with what was set in words as message ({"items": [{at, kind: job|gate|audit, action, result, message,
 * job_id, gate_id, actor}]}).
 * CORE_ENOTFOUND for an unknown repo.
 */
enum core_status repos_history(struct store *db, int64_t id, int limit, struct json_object **out);

/* The group tree: [{id, full_path, name, parent_id, repos, gated}] ordered by path (repos and gated count the
 * group's subgroups too; gated: mrgate's hook and settings are on GitLab, i.e. the last successful apply left the
 * repo in a state other than off; read from repos and repo_gitlab_state only, not the repo_status view, so the
 * tree stays one cheap scan at 10,000 repos). */
enum core_status repos_groups(struct store *db, struct json_object **out);

#endif
