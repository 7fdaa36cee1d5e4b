/*
 * core/discovery.c
 *    Listing the group's projects page by page into PostgreSQL.
 */
#include "discovery.h"

#include "jsonscan.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "rows.h"
#include "xalloc.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum core_status discovery_reap_stale(struct store *db)
{
	return store_run1(db,
	                  "UPDATE sync_runs SET state = 'failed', finished_at = now(),"
	                  " error = 'the instance running it stopped (no heartbeat for 2 minutes)'"
	                  " WHERE state = 'running' AND heartbeat < now() - interval '2 minutes'",
	                  NULL, NULL);
}

enum core_status discovery_begin(struct store *db, const char *trigger, const char *owner, int64_t *run_id_out)
{
	*run_id_out = 0;
	discovery_reap_stale(db);
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_str(&p, trigger);
	store_param_str(&p, owner);
	enum core_status st = store_run1(db,
	                                 "INSERT INTO sync_runs (trigger, owner, group_id) SELECT $1, $2, (SELECT "
	                                 "group_id FROM connection) RETURNING id",
	                                 &p, &r);
	if (st == CORE_ECONFLICT) { /* one runs already: say which */
		PQclear(r);
		r = NULL;
		/* r stays NULL when this fails too */
		store_run1(db, "SELECT id FROM sync_runs WHERE state = 'running'", NULL, &r);
	}
	if (r && PQntuples(r) > 0)
		*run_id_out = store_i64(r, 0, "id", 0);
	PQclear(r);
	return st;
}

/* Where the listing of one group's own projects stands (under the walk's mu). Pages are numbered from 1. */
struct group_list {
	int issued;    /* the highest page asked for (0: none yet) */
	int known;     /* the highest page whose answer said there is a next page */
	int last;      /* a page whose answer said there is none (0: not seen yet): no page after it is asked for */
	int in_flight; /* pages of this group being fetched */
};

/* The last count of new repos at which a sync analyzes the repos tables (1,000, then 10,000: see store_page). */
#define ANALYZE_LAST 10000

struct walk {
	struct store *db;
	struct gitlab *gl;
	int64_t run_id;
	char *root_path;                /* the root group's full_path: a verified project must still be under it */
	struct discovery_counts counts; /* under mu */
	void (*progress_cb)(const struct discovery_counts *c, void *user);
	void *user;
	/* the group tree, filled by on_group_page; the fan-out hands out pages of lists[] under mu */
	int64_t *groups;
	size_t ngroups, cap_groups, next;
	struct group_list *lists; /* one per group, made by list_projects */
	int in_flight;            /* pages being fetched, all groups */
	int spec_window;          /* pages a group's listing may run ahead of what GitLab said exists */
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* a page came back: more work may be known */
	enum core_status failed; /* the first failure of any worker (under mu); CORE_OK while none */
	bool progress_busy;      /* a lister is writing the counts to the run's row (under mu) */
	int analyze_at;          /* new repos at which the tables are analyzed next (under mu) */
	char msg[600];           /* its message */
};

/* One project entry reduced to the columns we keep, or NULL when it lacks an id or paths. */
/* A GitLab-supplied URL goes into the dashboard's links: keep only http(s) URLs without control characters. */
static const char *http_url_or_null(const char *u)
{
	if (!u || (strncasecmp(u, "https://", 8) != 0 && strncasecmp(u, "http://", 7) != 0) || strlen(u) > 2048)
		return NULL;
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return NULL;
	return u;
}

/* The members of a project entry discovery keeps (strings borrowed from the entry). */
struct project_fields {
	int64_t id, ns_id, project_level, group_level;
	const char *path, *name, *pwn, *ns_path, *web_url, *branch, *activity, *del, *del_old;
	bool archived;
	bool nul; /* a string member read holds a NUL character: read as a C string it would be cut short */
};

/* ns/path: GitLab's path_with_namespace is always its namespace's full path, '/', its path. */
static bool pwn_consistent(const struct project_fields *f)
{
	size_t n = strlen(f->ns_path);
	return strncmp(f->pwn, f->ns_path, n) == 0 && f->pwn[n] == '/' && strcmp(f->pwn + n + 1, f->path) == 0;
}

/* The row upsert_rows() stores for f, or NULL when it lacks an id or paths, holds a NUL character, or its
 * path_with_namespace is not its namespace path and path. */
static struct json_object *fields_row(const struct project_fields *f)
{
	if (f->nul || f->id <= 0 || !f->path || !f->pwn || !f->ns_path || !pwn_consistent(f))
		return NULL;
	/* the token's role, when GitLab includes permissions */
	int64_t level = f->project_level > f->group_level ? f->project_level : f->group_level;
	const char *web_url = http_url_or_null(f->web_url);
	struct json_object *o = jx_object();
	json_object_object_add(o, "id", jx_int(f->id));
	json_object_object_add(o, "path", jx_str(f->path));
	json_object_object_add(o, "name", jx_str(f->name ? f->name : f->path));
	json_object_object_add(o, "pwn", jx_str(f->pwn));
	json_object_object_add(o, "ns_id", f->ns_id ? jx_int(f->ns_id) : NULL);
	json_object_object_add(o, "ns", jx_str(f->ns_path));
	json_object_object_add(o, "web_url", jx_str(web_url));
	json_object_object_add(o, "branch", jx_str(f->branch));
	json_object_object_add(o, "archived", jx_bool(f->archived));
	/* pending deletion: marked_for_deletion_on (Premium) or marked_for_deletion_at (older) */
	json_object_object_add(o, "del", jx_bool(f->del != NULL || f->del_old != NULL));
	json_object_object_add(o, "level", level ? jx_int(level) : NULL);
	json_object_object_add(o, "activity", jx_str(f->activity));
	return o;
}

/* The string at dotted path `path` of p into *out (borrowed; untouched when absent or not a string); *nul set when
 * it holds a NUL character. */
static void member_str(struct json_object *p, const char *path, const char **out, bool *nul)
{
	struct json_object *v = jsonx_path(p, path);
	const char *s = NULL;
	if (!jsonx_as_str(v, &s))
		return;
	*nul = *nul || strlen(s) != (size_t)json_object_get_string_len(v);
	*out = s;
}

/* One project entry (a json-c tree) reduced to the columns we keep, or NULL when it lacks an id or paths. */
static struct json_object *project_row(struct json_object *p)
{
	struct project_fields f = {0};
	jsonx_int64(p, "id", &f.id);
	member_str(p, "path", &f.path, &f.nul);
	member_str(p, "path_with_namespace", &f.pwn, &f.nul);
	member_str(p, "namespace.full_path", &f.ns_path, &f.nul);
	member_str(p, "name", &f.name, &f.nul);
	jsonx_path_int64(p, "namespace.id", &f.ns_id);
	member_str(p, "web_url", &f.web_url, &f.nul);
	member_str(p, "default_branch", &f.branch, &f.nul);
	member_str(p, "last_activity_at", &f.activity, &f.nul);
	jsonx_bool(p, "archived", &f.archived);
	member_str(p, "marked_for_deletion_on", &f.del, &f.nul);
	member_str(p, "marked_for_deletion_at", &f.del_old, &f.nul);
	jsonx_path_int64(p, "permissions.project_access.access_level", &f.project_level);
	jsonx_path_int64(p, "permissions.group_access.access_level", &f.group_level);
	return fields_row(&f);
}

/* The same members read by jscan_each() from a list page's text (core/jsonscan.h), in this order. */
static const char *const scan_paths[] = {
    "id",
    "path",
    "path_with_namespace",
    "namespace.full_path",
    "name",
    "namespace.id",
    "web_url",
    "default_branch",
    "last_activity_at",
    "archived",
    "marked_for_deletion_on",
    "marked_for_deletion_at",
    "permissions.project_access.access_level",
    "permissions.group_access.access_level",
};
enum { SCAN_STRINGS = 9 }; /* string members in scan_paths (decoded into bufs) */

struct page_rows {
	struct json_object *rows; /* the page's rows */
	int skipped;              /* entries fields_row() refuses */
	struct buf s[SCAN_STRINGS];
};

static enum core_status scanned_entry(const struct jscan_value *v, void *user)
{
	struct page_rows *pr = user;
	struct project_fields f = {0};
	const char **str[SCAN_STRINGS] = {&f.path,   &f.pwn,      &f.ns_path, &f.name,   &f.web_url,
	                                  &f.branch, &f.activity, &f.del,     &f.del_old};
	const int str_at[SCAN_STRINGS] = {1, 2, 3, 4, 6, 7, 8, 10, 11};
	for (int i = 0; i < SCAN_STRINGS; i++) {
		if (jscan_str(&v[str_at[i]], &pr->s[i]))
			*str[i] = buf_str(&pr->s[i]);
		else if (v[str_at[i]].type == JSCAN_STRING)
			f.nul = true; /* a string jscan_str() does not read holds a \u0000 */
	}
	jscan_int64(&v[0], &f.id);
	jscan_int64(&v[5], &f.ns_id);
	jscan_bool(&v[9], &f.archived);
	jscan_int64(&v[12], &f.project_level);
	jscan_int64(&v[13], &f.group_level);
	struct json_object *row = fields_row(&f);
	if (row)
		json_object_array_add(pr->rows, row);
	else
		pr->skipped++;
	return CORE_OK;
}

/*
 * Upsert a JSON array of project_row() objects, as listed by sync run run_id (0: not by a sync run); one result
 * row of counts (new_repos, updated, newly_archived, n). The run's progress is written apart (save_progress): a
 * page's statement that also updated the run's row held that row's lock through the stored-status refresh its
 * trigger runs, so the listers' pages were stored one at a time.
 */
static enum core_status upsert_rows(struct store_conn *c, struct json_object *rows, int64_t run_id, PGresult **r)
{
	struct store_params p = {0};
	store_param_str(&p, json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN));
	store_param_i64_or_null(&p, run_id);
	/*
	 * One statement per page. "inserted" tells new rows from updates (xmax is 0 for a fresh insert);
	 * "changed" is true only when a stored field differs, so a second run over an unchanged group updates
	 * nothing but last_seen; "newly_archived" counts transitions. A data-modifying WITH runs once whether or
	 * not the outer query reads it (PostgreSQL, "Data-Modifying Statements in WITH"). Prepared: a sync runs it once
	 * per page, and its plan does not depend on the page.
	 */
	return store_run(
	    c,
	    STORE_PREPARE
	    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, path text, name text,"
	    "   pwn text, ns_id bigint, ns text, web_url text, branch text, archived boolean, del boolean,"
	    "   level integer, activity timestamptz)),"
	    " old AS (SELECT r.id, r.archived, r.removed_at IS NOT NULL AS was_removed,"
	    "   (r.path, r.name, r.path_with_namespace, r.namespace_id, r.namespace_full_path, r.web_url,"
	    "    r.default_branch, r.archived, r.marked_for_deletion, r.access_level)"
	    "   IS DISTINCT FROM"
	    "   (x.path, x.name, x.pwn, x.ns_id, x.ns, x.web_url, x.branch, x.archived, x.del, x.level)"
	    "   AS differs"
	    "   FROM repos r JOIN x USING (id)),"
	    " up AS (INSERT INTO repos AS r (id, path, name, path_with_namespace, namespace_id,"
	    "   namespace_full_path, web_url, default_branch, archived, marked_for_deletion, access_level,"
	    "   last_activity_at, seen_sync)"
	    "   SELECT id, path, name, pwn, ns_id, ns, web_url, branch, archived, del, level, activity,"
	    "   $2::bigint FROM x"
	    "   ON CONFLICT (id) DO UPDATE SET path = EXCLUDED.path, name = EXCLUDED.name,"
	    "   path_with_namespace = EXCLUDED.path_with_namespace, namespace_id = EXCLUDED.namespace_id,"
	    "   namespace_full_path = EXCLUDED.namespace_full_path, web_url = EXCLUDED.web_url,"
	    "   default_branch = EXCLUDED.default_branch, archived = EXCLUDED.archived,"
	    "   marked_for_deletion = EXCLUDED.marked_for_deletion, access_level = EXCLUDED.access_level,"
	    "   last_activity_at = EXCLUDED.last_activity_at, seen_sync = coalesce(EXCLUDED.seen_sync, r.seen_sync),"
	    "   last_seen = now(), removed_at = NULL"
	    "   RETURNING r.id, (xmax = 0) AS inserted, r.archived),"
	    " n AS (SELECT count(*) FILTER (WHERE up.inserted) AS new_repos,"
	    "  count(*) FILTER (WHERE NOT up.inserted AND (old.differs OR old.was_removed)) AS updated,"
	    "  count(*) FILTER (WHERE up.archived AND (up.inserted OR NOT old.archived)) AS newly_archived,"
	    "  count(*) AS n"
	    "  FROM up LEFT JOIN old USING (id))"
	    " SELECT * FROM n",
	    &p, r);
}

/* Write counts k to run run_id's row, and beat its heartbeat. */
static enum core_status save_counts(struct store_conn *c, int64_t run_id, const struct discovery_counts *k)
{
	const int counts[] = {k->pages,   k->repos_seen, k->groups_seen, k->new_repos,
	                      k->updated, k->archived,   k->skipped};
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		store_param_i64(&p, counts[i]);
	return store_run(c,
	                 "UPDATE sync_runs SET pages = $2, repos_seen = $3, groups_seen = $4, new_repos = $5,"
	                 " updated = $6, archived = $7, skipped = $8, heartbeat = now() WHERE id = $1",
	                 &p, NULL);
}

/* The walk's counts (caller holds the lock, or is the only thread). */
static enum core_status save_progress(struct store_conn *c, struct walk *w)
{
	return save_counts(c, w->run_id, &w->counts);
}

static enum core_status save_progress_now(struct walk *w)
{
	struct store_conn *c = NULL;
	enum core_status st = store_get(w->db, &c);
	if (st == CORE_OK)
		st = save_progress(c, w);
	store_put(w->db, c);
	return st;
}

/* Add one upsert_rows() result to the walk's counts (caller holds the lock, or is the only thread). */
static void add_counts(struct discovery_counts *k, PGresult *r)
{
	k->repos_seen += (int)store_i64(r, 0, "n", 0);
	k->new_repos += (int)store_i64(r, 0, "new_repos", 0);
	k->updated += (int)store_i64(r, 0, "updated", 0);
	k->archived += (int)store_i64(r, 0, "newly_archived", 0);
}

/* Store one page's rows (borrowed) and count it; `skipped` entries of it had no id or paths. */
static bool under_root(const struct walk *w, const char *ns_path);

/* The rows of a page to store: those under the connected group, each id once (GitLab lists a project once; a
 * second row for an id would also be a second write of one row in one statement, which PostgreSQL refuses). The
 * others add to *skipped. A new array (the caller puts it). */
static struct json_object *rows_to_store(const struct walk *w, struct json_object *rows, int *skipped)
{
	struct json_object *kept = jx_array();
	size_t n = json_object_array_length(rows);
	for (size_t i = 0; i < n; i++) {
		struct json_object *row = json_object_array_get_idx(rows, i);
		int64_t id = 0;
		const char *ns = NULL;
		bool ok = jsonx_int64(row, "id", &id) && jsonx_str(row, "ns", &ns) && under_root(w, ns);
		for (size_t j = 0; ok && j < json_object_array_length(kept); j++) {
			int64_t other = 0;
			ok = !jsonx_int64(json_object_array_get_idx(kept, j), "id", &other) || other != id;
		}
		if (ok)
			json_object_array_add(kept, json_object_get(row));
		else
			(*skipped)++;
	}
	return kept;
}

static enum core_status store_page(struct walk *w, struct json_object *page_rows, int skipped)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct json_object *rows = rows_to_store(w, page_rows, &skipped);
	if (skipped)
		log_info(
		    "discovery %lld: %d entries of a page of %zu skipped: no numeric id, path or namespace, a "
		    "path_with_namespace that is not the namespace's path and the path, a NUL character in a name, "
		    "outside the connected group, or listed twice",
		    (long long)w->run_id, skipped, json_object_array_length(page_rows) + (size_t)skipped);
	enum core_status st = store_get(w->db, &c);
	if (st != CORE_OK)
		goto out;
	st = upsert_rows(c, rows, w->run_id, &r);
	if (st != CORE_OK)
		goto out;
	pthread_mutex_lock(&w->mu);
	w->counts.skipped += skipped;
	w->counts.pages++;
	add_counts(&w->counts, r);
	if (w->progress_cb)
		w->progress_cb(&w->counts, w->user);
	/* the run's row shows the counts (and beats its heartbeat), written by one lister at a time from a copy, so
	 * that no lock is held across the write; the writer writes again while other pages added to them meanwhile */
	/* A first sync fills repos from empty. Until autovacuum comes round, the statistics say "a few rows", and a
	 * plan PL/pgSQL caches from them for the stored-status refresh reads every repo for each page: a sequential
	 * first sync of 100,000 repos spent 45 ms a page at the end instead of 10. At 1,000 and at 10,000 new repos
	 * the tables are analyzed at once by the lister that reached the count, which makes the cached plans be
	 * planned again. Not after: the planner scales the analyzed rows per page by the table's current size, so
	 * the plans stay the indexed ones as it grows, and an ANALYZE of 100,000 repos takes a second or more here,
	 * which a sync of exactly that many spent at its end, holding up its finish (autovacuum analyzes later). */
	bool analyze = w->counts.new_repos >= w->analyze_at;
	int analyze_n = w->counts.new_repos;
	if (analyze)
		w->analyze_at = w->analyze_at >= ANALYZE_LAST ? INT_MAX : w->analyze_at * 10;
	bool write = w->run_id && !w->progress_busy;
	w->progress_busy = w->progress_busy || write;
	while (write) {
		struct discovery_counts k = w->counts;
		pthread_mutex_unlock(&w->mu);
		st = save_counts(c, w->run_id, &k);
		pthread_mutex_lock(&w->mu);
		write = st == CORE_OK && memcmp(&k, &w->counts, sizeof(k)) != 0;
		w->progress_busy = write;
	}
	pthread_mutex_unlock(&w->mu);
	if (analyze && st == CORE_OK && store_run(c, "ANALYZE repos, repo_status_stored", NULL, NULL) != CORE_OK)
		log_warn("discovery: could not analyze the repos tables after %d new repos (the sync goes on)",
		         analyze_n);
out:
	PQclear(r);
	store_put(w->db, c);
	json_object_put(rows);
	return st;
}

/* gitlab_paginate()'s page callback: a page as a json-c tree. */
static enum core_status on_project_page(struct json_object *page, void *user)
{
	struct json_object *rows = jx_array();
	int skipped = 0;
	size_t n = json_object_array_length(page);
	for (size_t i = 0; i < n; i++) {
		struct json_object *row = project_row(json_object_array_get_idx(page, i));
		if (row)
			json_object_array_add(rows, row);
		else
			skipped++;
	}
	enum core_status st = store_page(user, rows, skipped);
	json_object_put(rows);
	return st;
}

/*
 * A group config stored under another case than GitLab's (written before the group existed, as "Demo/Later" for
 * GitLab's demo/later) matched none of its repos: configs match repos by their namespace's own spelling, so the
 * Defaults & groups page showed a config, even "gates", that gated nothing. Once the group is listed, that config
 * (the newest, when several spellings were stored, and only while none is stored under GitLab's) takes GitLab's
 * spelling, in one statement with its audit entry; the stored status of the repos under it follows (triggers).
 */
static enum core_status adopt_group_config(struct store_conn *c, const char *full_path)
{
	PGresult *r = NULL;
	enum core_status st = STORE_RUN(
	    c,
	    STORE_PREPARE
	    "WITH o AS (SELECT path FROM config_groups WHERE lower(path) = lower($1) AND path <> $1"
	    "   AND NOT EXISTS (SELECT 1 FROM config_groups WHERE path = $1)"
	    "  ORDER BY updated_at DESC, path COLLATE \"C\" LIMIT 1 FOR UPDATE),"
	    " u AS (UPDATE config_groups g SET path = $1, updated_at = now(), updated_by = 'system (sync)'"
	    "  FROM o WHERE g.path = o.path RETURNING o.path AS old, g.config)"
	    " INSERT INTO audit_log (actor, action, target, before, after, details)"
	    " SELECT 'system (sync)', 'config.group.respell', $1, jsonb_build_object('path', old, 'config', config),"
	    "  jsonb_build_object('path', $1::text, 'config', config), jsonb_build_object('message',"
	    "  'the config stored for ' || old || ' now applies to the synced group ' || $1 || ' (GitLab''s spelling)')"
	    " FROM u RETURNING details->>'message' AS message",
	    &r, STORE_STR(full_path));
	if (st == CORE_OK && PQntuples(r) == 1)
		log_info("sync: %s", store_str(r, 0, "message"));
	PQclear(r);
	return st;
}

static enum core_status upsert_group(struct store_conn *c, struct walk *w, struct json_object *g)
{
	int64_t id, parent = 0;
	const char *full_path, *name;
	if (!jsonx_int64(g, "id", &id) || !jsonx_str(g, "full_path", &full_path))
		return CORE_OK; /* skip what cannot be read */
	if (!jsonx_str(g, "name", &name))
		name = full_path;
	jsonx_int64(g, "parent_id", &parent);
	/* a path can move to another id (a group deleted and re-created): the newest listing wins */
	struct store_params pd = {0};
	store_param_str(&pd, full_path);
	store_param_i64(&pd, id);
	enum core_status st =
	    store_run(c, "DELETE FROM gitlab_groups WHERE full_path = $1 AND id <> $2::bigint", &pd, NULL);
	if (st != CORE_OK)
		return st;
	st = STORE_RUN(c,
	               "INSERT INTO gitlab_groups AS g (id, full_path, name, parent_id, seen_sync)"
	               " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET full_path = $2, name = $3,"
	               " parent_id = $4, seen_sync = $5, last_seen = now(), removed_at = NULL",
	               NULL, STORE_I64(id), STORE_STR(full_path), STORE_STR(name), STORE_I64_OR_NULL(parent),
	               STORE_I64(w->run_id));
	if (st == CORE_OK)
		st = adopt_group_config(c, full_path);
	if (st != CORE_OK)
		return st;
	w->counts.groups_seen++;
	if (w->ngroups == w->cap_groups) {
		w->cap_groups = w->cap_groups ? w->cap_groups * 2 : 64;
		w->groups = xrealloc(w->groups, w->cap_groups * sizeof(*w->groups));
	}
	w->groups[w->ngroups++] = id;
	return CORE_OK;
}

static enum core_status on_group_page(struct json_object *page, void *user)
{
	struct walk *w = user;
	struct store_conn *c = NULL;
	enum core_status st = store_get(w->db, &c);
	if (st != CORE_OK)
		return st;
	size_t n = json_object_array_length(page);
	for (size_t i = 0; i < n && st == CORE_OK; i++)
		st = upsert_group(c, w, json_object_array_get_idx(page, i));
	store_put(w->db, c);
	return st;
}

static enum core_status finish(struct store *db, struct walk *w, bool ok, const char *error)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get_begin(db, &c);
	if (st != CORE_OK)
		return st;
	struct store_params p = {0};
	store_param_i64(&p, w->run_id);
	if (ok) {
		/* only a complete listing can tell what disappeared; a repo listed by two groups (moved between
		 * them during the run) was counted per page: the run saw each repo it stamped once */
		st = store_run(c,
		               "WITH gone AS (UPDATE repos SET removed_at = now() WHERE removed_at IS NULL"
		               " AND seen_sync IS DISTINCT FROM $1::bigint RETURNING id)"
		               " SELECT (SELECT count(*) FROM gone) AS n,"
		               " (SELECT count(*) FROM repos WHERE seen_sync = $1::bigint) AS seen",
		               &p, &r);
		if (st == CORE_OK) {
			w->counts.removed = (int)store_i64(r, 0, "n", 0);
			w->counts.repos_seen = (int)store_i64(r, 0, "seen", 0);
		}
		if (st == CORE_OK)
			st = store_run(c,
			               "UPDATE gitlab_groups SET removed_at = now() WHERE removed_at IS NULL"
			               " AND seen_sync IS DISTINCT FROM $1::bigint",
			               &p, NULL);
	}
	if (st == CORE_OK)
		st = save_progress(c, w);
	if (st == CORE_OK) {
		store_param_str(&p, ok ? "done" : "failed");
		store_param_str(&p, error);
		store_param_i64(&p, w->counts.removed);
		st = store_run(c,
		               "UPDATE sync_runs SET state = $2, error = $3, removed = $4, finished_at = now()"
		               " WHERE id = $1",
		               &p, NULL);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	PQclear(r);
	store_put(db, c);
	return st;
}

/* A failure of any worker stops the others at their next group; the first one's message is kept. */
static void walk_fail(struct walk *w, enum core_status st, const char *fmt, const char *detail, int64_t id)
{
	pthread_mutex_lock(&w->mu);
	if (w->failed == CORE_OK) {
		w->failed = st;
		snprintf(w->msg, sizeof(w->msg), fmt, (long long)id, w->counts.pages, detail);
	}
	pthread_mutex_unlock(&w->mu);
}

/*
 * The next page to fetch (under mu): false when there is nothing to do now. In order of preference: the first page
 * of a group not started yet; the next page of a group whose last answer said there is one; when neither exists and
 * a worker would idle, a page ahead of the last answer of a group still being listed (offset pages can be asked in
 * any order: GitLab offers no keyset here), at most spec_window ahead. A page past the end comes back empty and
 * costs one call, so the look-ahead is kept for the tail of the walk, when fewer groups than workers are left, and
 * for groups of 5 pages or more; a walk with one worker is strictly sequential.
 */
static bool pick_page(struct walk *w, size_t *group_out, int *page_out)
{
	for (; w->next < w->ngroups; w->next++)
		if (w->lists[w->next].issued == 0) {
			*group_out = w->next;
			*page_out = 1;
			return true;
		}
	size_t ahead = SIZE_MAX;
	for (size_t i = 0; i < w->ngroups; i++) {
		const struct group_list *g = &w->lists[i];
		if (g->last != 0)
			continue;
		if (g->issued <= g->known) { /* the next page exists */
			*group_out = i;
			*page_out = g->issued + 1;
			return true;
		}
		/* only a group that has shown it is large (5 pages or more) is read ahead, by at most as many pages as
		 * it has shown: small groups cost no call past their end */
		int window = g->known < w->spec_window ? g->known : w->spec_window;
		if (ahead == SIZE_MAX && g->known >= 4 && g->issued < g->known + 1 + window)
			ahead = i;
	}
	if (ahead == SIZE_MAX)
		return false;
	*group_out = ahead;
	*page_out = w->lists[ahead].issued + 1;
	return true;
}

/* Fetch and store page `page` of group i's own projects (not its subgroups', which are other groups of the list);
 * *more_out: GitLab said there is a next page. */
static enum core_status list_page(struct walk *w, size_t i, int page, bool *more_out, struct gitlab_response **err_out)
{
	char path[240];
	struct gitlab_response *r = NULL;
	*more_out = false;
	snprintf(path, sizeof(path),
	         "/groups/%lld/projects?include_subgroups=false&with_shared=false&per_page=100&order_by=id&sort=asc"
	         "&page=%d",
	         (long long)w->groups[i], page);
	/* the page is read as text by jscan_each(), without a json-c tree of its 100 whole projects */
	enum core_status st = gitlab_request_ex(w->gl, "GET", path, NULL, GITLAB_CALL_RAW, &r);
	if (st != CORE_OK) {
		*err_out = r;
		return st;
	}
	struct page_rows pr = {.rows = jx_array()};
	size_t n = 0;
	char why[200];
	st = jscan_each(r->body, r->body_len, scan_paths, sizeof(scan_paths) / sizeof(scan_paths[0]), scanned_entry,
	                &pr, &n, why, sizeof(why));
	if (st != CORE_OK) {
		st = CORE_EUPSTREAM;
		r->kind = GITLAB_ERR_BAD_RESPONSE;
		snprintf(r->message, sizeof(r->message),
		         "GitLab answered GET %s with something other than a JSON list (%s)", path, why);
		*err_out = r;
		r = NULL;
	} else if (n > 100) { /* asked per_page=100 */
		st = CORE_EUPSTREAM;
		r->kind = GITLAB_ERR_BAD_RESPONSE;
		snprintf(r->message, sizeof(r->message), "GitLab answered GET %s with %zu projects on a page of 100",
		         path, n);
		*err_out = r;
		r = NULL;
	} else {
		*more_out = r->next_page != NULL;
		/* an empty page past the end (asked ahead) is a call, not a page of the list */
		if (page == 1 || n > 0)
			st = store_page(w, pr.rows, pr.skipped);
	}
	json_object_put(pr.rows);
	for (int i = 0; i < SCAN_STRINGS; i++)
		buf_free(&pr.s[i]);
	gitlab_response_free(r);
	return st;
}

/* One worker of the fan-out: fetches pages that pick_page() hands out until every group is listed or a worker
 * failed. */
static void *list_worker(void *arg)
{
	struct walk *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		size_t i = 0;
		int page = 0;
		if (w->failed != CORE_OK)
			break;
		if (!pick_page(w, &i, &page)) {
			if (w->in_flight == 0)
				break; /* every group has answered its last page */
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		struct group_list *g = &w->lists[i];
		g->issued = page;
		g->in_flight++;
		w->in_flight++;
		pthread_mutex_unlock(&w->mu);

		bool more = false;
		struct gitlab_response *err = NULL;
		enum core_status st = page > 1000000 ? CORE_EUPSTREAM : list_page(w, i, page, &more, &err);
		/* A subgroup deleted or moved away after the tree was listed: its projects, if they are still in the
		 * group, are found by verify_unseen() before anything is marked removed. The root group must answer. */
		if (st == CORE_ENOTFOUND && err && i > 0)
			st = CORE_OK;
		if (st != CORE_OK)
			walk_fail(w, st, "could not list the projects of group %lld (after %d pages): %s",
			          err              ? err->message
			          : page > 1000000 ? "over a million pages"
			                           : "the database failed",
			          w->groups[i]);
		gitlab_response_free(err);

		pthread_mutex_lock(&w->mu);
		g->in_flight--;
		w->in_flight--;
		if (more && page > g->known)
			g->known = page;
		if (!more && (g->last == 0 || page < g->last))
			g->last = page;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_cond_broadcast(&w->cv); /* failed or done: let the waiting workers see it */
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Run list_worker on up to `concurrency` threads (at least the calling one). */
static enum core_status list_projects(struct walk *w, int concurrency)
{
	enum { MAX_LISTERS = 32 };
	pthread_t t[MAX_LISTERS];
	size_t want = concurrency < 1 ? 1 : (size_t)concurrency;
	if (want > MAX_LISTERS)
		want = MAX_LISTERS;
	w->lists = xcalloc(w->ngroups ? w->ngroups : 1, sizeof(*w->lists));
	w->spec_window = (int)want - 1;
	size_t started = 0;
	while (started + 1 < want && pthread_create(&t[started], NULL, list_worker, w) == 0)
		started++;
	list_worker(w);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	return w->failed;
}

static bool under_root(const struct walk *w, const char *ns_path)
{
	size_t n = strlen(w->root_path);
	return n && strncmp(ns_path, w->root_path, n) == 0 && (ns_path[n] == '\0' || ns_path[n] == '/');
}

/*
 * Repos stored as present that no group listed in this run: deleted, moved out of the group, or moved from one
 * subgroup to another while the groups were being listed one by one (a listing per group can miss those, where one
 * listing in id order could not). Up to VERIFY_MAX of them are read one by one (GET /projects/:id): a project still
 * under the root group is stored as seen by this run; a 404 or a project elsewhere is left for finish() to mark
 * removed. Above that, one listing of the whole tree in id order decides instead. Any other failure fails the run,
 * so that nothing is marked removed on a guess.
 */
#define VERIFY_MAX 200
static enum core_status verify_unseen(struct walk *w, int64_t group_id, int concurrency)
{
	PGresult *r = NULL;
	struct gitlab_call *calls = NULL;
	char(*paths)[40] = NULL;
	struct json_object *rows = NULL;
	struct store_conn *c = NULL;
	PGresult *up = NULL;
	enum core_status st = STORE_RUN1(w->db,
	                                 "SELECT id FROM repos WHERE removed_at IS NULL AND seen_sync IS DISTINCT FROM"
	                                 " $1::bigint ORDER BY id LIMIT 201", /* VERIFY_MAX + 1 */
	                                 &r, STORE_I64(w->run_id));
	if (st != CORE_OK)
		goto out;
	int n = PQntuples(r);
	if (n == 0)
		goto out;
	if (n > VERIFY_MAX) {
		char path[200];
		struct gitlab_response *err = NULL;
		snprintf(
		    path, sizeof(path),
		    "/groups/%lld/projects?include_subgroups=true&with_shared=false&per_page=100&order_by=id&sort=asc",
		    (long long)group_id);
		/* the whole tree again (its pages add to the pages read; finish() counts the repos seen) */
		st = gitlab_paginate(w->gl, path, on_project_page, w, &err);
		if (st != CORE_OK)
			snprintf(w->msg, sizeof(w->msg), "could not list the projects of the group again: %s",
			         err ? err->message : "the database failed");
		gitlab_response_free(err);
		log_info("discovery %lld: %d repos not listed by their group, the whole tree was listed again",
		         (long long)w->run_id, n);
		goto out;
	}
	calls = xcalloc((size_t)n, sizeof(*calls));
	paths = xcalloc((size_t)n, sizeof(*paths));
	rows = jx_array();
	for (int i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/projects/%lld", (long long)store_i64(r, i, "id", 0));
		calls[i].method = "GET";
		calls[i].path = paths[i];
	}
	st = gitlab_multi(w->gl, calls, (size_t)n, concurrency < 1 ? 1 : concurrency);
	for (int i = 0; i < n && st == CORE_OK; i++) {
		const char *ns = NULL;
		if (calls[i].status == CORE_ENOTFOUND)
			continue; /* deleted, or no longer visible to the token */
		if (calls[i].status != CORE_OK) {
			st = calls[i].status;
			snprintf(w->msg, sizeof(w->msg), "could not check whether project %lld still exists: %s",
			         (long long)store_i64(r, i, "id", 0), calls[i].resp ? calls[i].resp->message : "");
			break;
		}
		if (!jsonx_path_str(calls[i].resp->json, "namespace.full_path", &ns) || !under_root(w, ns))
			continue; /* moved out of the group */
		struct json_object *row = project_row(calls[i].resp->json);
		if (!row)
			continue;
		/* a list entry carries no permissions: store what a listing would, so the next run sees no change */
		json_object_object_add(row, "level", NULL);
		json_object_array_add(rows, row);
	}
	if (st != CORE_OK || json_object_array_length(rows) == 0)
		goto out;
	st = store_get(w->db, &c);
	if (st == CORE_OK)
		st = upsert_rows(c, rows, w->run_id, &up);
	if (st == CORE_OK)
		add_counts(&w->counts, up);
	log_info("discovery %lld: %d repos not listed by their group were checked one by one, %d are still in the "
	         "group",
	         (long long)w->run_id, n, (int)json_object_array_length(rows));
out:
	for (int i = 0; calls && i < n; i++)
		gitlab_response_free(calls[i].resp);
	free(calls);
	free(paths);
	json_object_put(rows);
	PQclear(up);
	store_put(w->db, c);
	PQclear(r);
	return st;
}

enum core_status discovery_execute(struct store *db, struct gitlab *gl, int64_t group_id, int64_t run_id,
                                   int concurrency, void (*progress_cb)(const struct discovery_counts *c, void *user),
                                   void *user, struct discovery_counts *counts_out)
{
	struct walk w;
	struct gitlab_response *err = NULL;
	char path[200];
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.db = db;
	w.gl = gl;
	w.run_id = run_id;
	w.progress_cb = progress_cb;
	w.analyze_at = 1000;
	w.user = user;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* The root group itself, then its descendants. */
	snprintf(path, sizeof(path), "/groups/%lld?with_projects=false", (long long)group_id);
	struct gitlab_response *g = NULL;
	const char *root_path = NULL;
	enum core_status st = gitlab_request(gl, "GET", path, NULL, &g);
	if (st == CORE_OK && !jsonx_str(g->json, "full_path", &root_path)) {
		st = CORE_EUPSTREAM;
		snprintf(w.msg, sizeof(w.msg), "could not read group %lld: GitLab's answer has no full_path",
		         (long long)group_id);
	} else if (st == CORE_OK) {
		w.root_path = xstrdup(root_path);
		struct json_object *one = jx_array();
		json_object_array_add(one, json_object_get(g->json));
		st = on_group_page(one, &w);
		json_object_put(one);
	} else {
		snprintf(w.msg, sizeof(w.msg), "could not read group %lld: %s", (long long)group_id,
		         g ? g->message : "");
	}
	gitlab_response_free(g);
	if (st == CORE_OK) {
		snprintf(path, sizeof(path), "/groups/%lld/descendant_groups?per_page=100&order_by=id&sort=asc",
		         (long long)group_id);
		st = gitlab_paginate(gl, path, on_group_page, &w, &err);
		if (st != CORE_OK)
			snprintf(w.msg, sizeof(w.msg), "could not list the subgroups: %s",
			         err ? err->message : "the database failed");
	}
	gitlab_response_free(err);
	err = NULL;
	/* Each group's own projects, groups listed concurrently: pages of one group follow each other, but the run
	 * takes about (pages / concurrency) round trips instead of pages. */
	if (st == CORE_OK) { /* groups_seen; the listers add their pages to the row as they store them */
		st = save_progress_now(&w);
		if (st != CORE_OK)
			snprintf(w.msg, sizeof(w.msg), "could not record the run's progress: the database failed");
	}
	if (st == CORE_OK)
		st = list_projects(&w, concurrency);
	if (st == CORE_OK)
		st = verify_unseen(&w, group_id, concurrency);

	enum core_status fst = finish(db, &w, st == CORE_OK, st == CORE_OK ? NULL : w.msg);
	if (st == CORE_OK)
		st = fst;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	metrics_inc("mrgate_discovery_runs_total", st == CORE_OK ? "result=\"done\"" : "result=\"failed\"", 1);
	metrics_set("mrgate_discovery_last_duration_seconds", NULL, secs);
	metrics_set("mrgate_discovery_last_repos", NULL, w.counts.repos_seen);
	if (st == CORE_OK)
		log_info("discovery %lld done in %.1fs: %d repos in %d pages, %d new, %d updated, %d removed, %d "
		         "archived, %d groups",
		         (long long)run_id, secs, w.counts.repos_seen, w.counts.pages, w.counts.new_repos,
		         w.counts.updated, w.counts.removed, w.counts.archived, w.counts.groups_seen);
	else
		log_warn("discovery %lld failed after %.1fs: %s", (long long)run_id, secs, w.msg);
	if (counts_out)
		*counts_out = w.counts;
	free(w.groups);
	free(w.lists);
	free(w.root_path);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return st;
}

enum core_status discovery_fail(struct store *db, int64_t run_id, const char *error)
{
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	store_param_str(&p, error);
	return store_run1(db, "UPDATE sync_runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
	                  &p, NULL);
}

enum core_status discovery_get(struct store *db, int64_t run_id, struct json_object **out)
{
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	return rows_query_one(
	    db,
	    "SELECT id, trigger, state, " STORE_TS("started_at") " AS started_at, " STORE_TS(
	        "finished_at") " AS finished_at,"
	                       " round(extract(epoch FROM coalesce(finished_at, now()) - started_at), 3)::float8 AS "
	                       "seconds,"
	                       " pages, repos_seen, groups_seen, new_repos, updated, removed, archived, skipped, "
	                       "error, summary"
	                       " FROM sync_runs WHERE ($1::bigint = 0 OR id = $1::bigint) ORDER BY id DESC LIMIT 1",
	    &p, out);
}

enum core_status discovery_upsert_project(struct store *db, struct json_object *project, bool *inserted_out)
{
	struct json_object *row = project_row(project), *rows = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	if (inserted_out)
		*inserted_out = false;
	if (!row)
		return CORE_EINVAL;
	rows = jx_array();
	json_object_array_add(rows, row);
	enum core_status st = store_get(db, &c);
	if (st == CORE_OK)
		st = upsert_rows(c, rows, 0, &r);
	if (st == CORE_OK && inserted_out)
		*inserted_out = store_i64(r, 0, "new_repos", 0) > 0;
	PQclear(r);
	store_put(db, c);
	json_object_put(rows);
	return st;
}
