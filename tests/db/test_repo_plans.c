/*
 * tests/db/test_repo_plans.c
 *    Every shape of the repo list is an indexed read: on 20,000 repos in every status (seeded in SQL, then
 *    VACUUM ANALYZE as autovacuum leaves a real table), EXPLAIN of the page and of the count that repos_list() runs
 *    (repos_explain(), the same statements with the same parameters) reads repo_status_stored through an index and
 *    never scans it whole, for each status filter (none and every status), each sort (path, activity; both
 *    directions), alone and with q, a group, a subgroup, archived, ids and a cursor. And the count: exact below
 *    10,000, 10,000 with count_capped above.
 */
#include "repos.h"
#include "store.h"
#include "testlib.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store *db;

#define N_REPOS 20000

/* 20,000 repos under g0..g9/s0..s6 in every status (see the moduli), two done syncs so that some are `new`. */
static void seed(void)
{
	testlib_sql(db, "INSERT INTO sync_runs (trigger, owner, state, started_at, finished_at) VALUES"
	                " ('api', 't', 'done', now() - interval '2 days', now() - interval '2 days'),"
	                " ('api', 't', 'done', now() - interval '1 hour', now() - interval '1 hour')");
	testlib_sql(db, "INSERT INTO repos (id, path, name, path_with_namespace, namespace_full_path, archived,"
	                " marked_for_deletion, removed_at, last_activity_at, first_seen)"
	                " SELECT i, 'r' || i, 'r' || i, 'g' || i % 10 || '/s' || i % 7 || '/r' || i,"
	                "  'g' || i % 10 || '/s' || i % 7, i % 97 = 0, i % 101 = 0,"
	                "  CASE WHEN i % 89 = 0 THEN now() END,"
	                "  CASE WHEN i % 13 <> 0 THEN now() - i * interval '1 minute' END,"
	                "  CASE WHEN i % 50 = 0 THEN now() ELSE now() - interval '3 days' END"
	                " FROM generate_series(1, 20000) i");
	testlib_sql(db, "INSERT INTO config_groups (path, config) VALUES ('g1', '{\"enabled\": true}'),"
	                " ('g2/s3', '{\"enabled\": true, \"block_merge\": true}')");
	testlib_sql(db,
	            "INSERT INTO config_repos (repo_id, config, unmanaged)"
	            " SELECT id, CASE WHEN id % 71 = 0 THEN '{\"fail_on\": \"low\"}'::jsonb ELSE '{}' END, id % 73 = 0"
	            " FROM repos WHERE id % 71 = 0 OR id % 73 = 0");
	testlib_sql(db,
	            "INSERT INTO repo_gitlab_state (repo_id, hook_id, applied_state, last_result, hook_alert_status,"
	            " applying)"
	            " SELECT id, id, 'hook', CASE WHEN id % 61 = 0 THEN 'error' ELSE 'changed' END,"
	            "  CASE WHEN id % 59 = 0 THEN 'disabled' ELSE 'executable' END, id % 67 = 0"
	            " FROM repos WHERE id % 3 = 0");
	testlib_sql(db, "VACUUM ANALYZE repo_status_stored");
	testlib_sql(db, "VACUUM ANALYZE repos");
}

/* Every status occurs in the seed (so each status filter is planned against real rows). */
static void every_status_seeded(void)
{
	for (int i = 0; repos_status_names[i]; i++) {
		struct repos_filter f = {.status = repos_status_names[i], .archived = -1, .limit = 1};
		struct json_object *page = NULL;
		char err[256] = "";
		REQUIRE(repos_list(db, &f, &page, err, sizeof(err)) == CORE_OK);
		int64_t n = json_object_get_int64(json_object_object_get(page, "count"));
		if (n == 0)
			fprintf(stderr, "  no repo is %s\n", repos_status_names[i]);
		CHECK(n > 0);
		json_object_put(page);
	}
}

/* The plan reads repo_status_stored through an index and never whole. */
static bool indexed(const char *plan)
{
	return !strstr(plan, "Seq Scan on repo_status_stored") &&
	       (strstr(plan, "Index Scan") || strstr(plan, "Index Only Scan") || strstr(plan, "Bitmap Index Scan"));
}

/* The first page's next_cursor for a filter (malloc'd). */
static char *second_page_cursor(struct repos_filter f)
{
	struct json_object *page = NULL;
	char err[256] = "";
	f.cursor = NULL;
	CHECK(repos_list(db, &f, &page, err, sizeof(err)) == CORE_OK);
	if (!page)
		return NULL;
	struct json_object *next = json_object_object_get(page, "next_cursor");
	char *c = next ? xstrdup(json_object_get_string(next)) : NULL;
	json_object_put(page);
	return c;
}

static void every_shape_uses_an_index(void)
{
	static const int64_t ids[] = {3, 300, 3000, 9999, 15000};
	int shapes = 0, bad = 0;
	for (int s = -1; s == -1 || repos_status_names[s]; s++)
		for (int sort = 0; sort < 2; sort++)
			for (int desc = 0; desc < 2; desc++)
				for (int extra = 0; extra < 8; extra++) {
					struct repos_filter f = {.status = s < 0 ? NULL : repos_status_names[s],
					                         .archived = -1,
					                         .sort = sort ? REPOS_SORT_ACTIVITY : REPOS_SORT_PATH,
					                         .descending = desc,
					                         .limit = 50};
					const char *what[] = {
					    "", "q", "group", "subgroup", "archived", "not archived", "ids", "cursor"};
					if (extra == 1)
						f.q = "g3/s2/r1";
					else if (extra == 2)
						f.group = "g4";
					else if (extra == 3)
						f.group = "g4/s1";
					else if (extra == 4)
						f.archived = 1;
					else if (extra == 5)
						f.archived = 0;
					else if (extra == 6) {
						f.ids = ids;
						f.n_ids = 5;
					}
					char *cursor = extra == 7 ? second_page_cursor(f) : NULL;
					f.cursor = cursor;
					char *plan = NULL, err[256] = "";
					REQUIRE(repos_explain(db, &f, &plan, err, sizeof(err)) == CORE_OK);
					shapes++;
					if (!indexed(plan)) {
						bad++;
						fprintf(stderr, "  status=%s sort=%s%s %s: not an indexed read:\n%s\n",
						        f.status ? f.status : "(any)", sort ? "activity" : "path",
						        desc ? " desc" : "", what[extra], plan);
					}
					free(plan);
					free(cursor);
				}
	printf("  %d list shapes explained, %d not indexed\n", shapes, bad);
	CHECK(bad == 0);
}

/* Exact below the cap; the cap and count_capped above it. */
static void count_capped_above_10000(void)
{
	struct repos_filter all = {.archived = -1, .limit = 50}, group = {.group = "g5", .archived = -1, .limit = 50};
	struct json_object *page = NULL;
	char err[256] = "";
	REQUIRE(repos_list(db, &all, &page, err, sizeof(err)) == CORE_OK);
	CHECK(json_object_get_int64(json_object_object_get(page, "count")) == REPOS_COUNT_CAP);
	CHECK(json_object_get_boolean(json_object_object_get(page, "count_capped")));
	json_object_put(page);
	REQUIRE(repos_list(db, &group, &page, err, sizeof(err)) == CORE_OK);
	/* g5: i % 10 = 5 -> 2,000 repos, minus the removed ones (i % 89 = 0) */
	int64_t want = 0;
	for (int i = 1; i <= N_REPOS; i++)
		want += i % 10 == 5 && i % 89 != 0;
	CHECK(json_object_get_int64(json_object_object_get(page, "count")) == want);
	CHECK(!json_object_get_boolean(json_object_object_get(page, "count_capped")));
	json_object_put(page);
}

int main(void)
{
	db = testlib_db_start("repo_plans", 2);
	seed();
	RUN(every_status_seeded);
	RUN(every_shape_uses_an_index);
	RUN(count_capped_above_10000);
	store_close(db);
	return testlib_done();
}
