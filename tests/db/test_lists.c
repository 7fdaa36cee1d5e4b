/*
 * tests/db/test_lists.c
 *    The list read models page the one way (rows.h): walking `next_cursor` from the first page visits every row
 *    once, in order, and the last page says next_cursor null. Audit log (newest first, action prefix), users and
 *    tokens (by id), repos (by path and by last activity, both directions, to the microsecond).
 */
#include "audit.h"
#include "auth.h"
#include "crypto.h"
#include "discovery.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "repos.h"
#include "rows.h"
#include "testlib.h"
#include "users.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct store *db;

/* One page's next_cursor as a malloc'd string (NULL for null), and its items in *items (borrowed from page). */
static char *next_of(struct json_object *page, struct json_object **items)
{
	struct json_object *next = NULL;
	*items = json_object_object_get(page, "items");
	if (!json_object_object_get_ex(page, "next_cursor", &next) || !next)
		return NULL;
	return xstrdup(json_object_get_string(next));
}

static int64_t id_of(struct json_object *item)
{
	return json_object_get_int64(json_object_object_get(item, "id"));
}

/* One page of a list after cursor (0: the first page). */
typedef enum core_status (*page_fn)(int64_t cursor, struct json_object **page);

/*
 * Walk a list from its first page along next_cursor: the ids of every item in order into ids (at most max), the
 * number of items as the result, the pages in *pages. Every page holds at most `limit` items and names an "actor"
 * or a "username" when `who` is set.
 */
static int walk_ids(page_fn list, int limit, const char *who, int64_t *ids, int max, int *pages)
{
	int64_t cursor = 0;
	int n = 0;
	*pages = 0;
	for (;;) {
		struct json_object *page = NULL, *items = NULL;
		CHECK(list(cursor, &page) == CORE_OK);
		if (!page)
			break;
		char *next = next_of(page, &items);
		(*pages)++;
		CHECK((int)json_object_array_length(items) <= limit);
		for (size_t i = 0; i < json_object_array_length(items) && n < max; i++) {
			struct json_object *item = json_object_array_get_idx(items, i);
			ids[n++] = id_of(item);
			if (who)
				CHECK(json_object_object_get_ex(item, who, NULL));
		}
		json_object_put(page);
		if (!next)
			break;
		CHECK(rows_cursor_parse(next, &cursor));
		free(next);
	}
	return n;
}

static enum core_status audit_page(int64_t cursor, struct json_object **page)
{
	return audit_list(db, 3, cursor, "repo.", true, page);
}

static enum core_status users_page(int64_t cursor, struct json_object **page)
{
	return users_list(db, 2, cursor, page);
}

static enum core_status tokens_page(int64_t cursor, struct json_object **page)
{
	return tokens_list(db, 2, cursor, 0, page);
}

static void audit_pages(void)
{
	struct store_conn *c = NULL;
	REQUIRE(store_get(db, &c) == CORE_OK);
	for (int i = 0; i < 7; i++)
		REQUIRE(audit_write(c, "tester", i % 2 ? "repo.odd" : "repo.even", "t", NULL, NULL, NULL) == CORE_OK);
	store_put(db, c);

	int64_t seen[16];
	int pages = 0, n = walk_ids(audit_page, 3, "details", seen, 16, &pages);
	CHECK_INT(n, 7);
	CHECK_INT(pages, 3);
	for (int i = 1; i < n; i++)
		CHECK(seen[i] < seen[i - 1]); /* newest first, each once */

	/* the stored JSON columns come back as JSON; the action prefix filters */
	struct json_object *page = NULL, *items = NULL;
	REQUIRE(audit_list(db, 50, 0, "repo.odd", true, &page) == CORE_OK);
	char *next = next_of(page, &items);
	CHECK_INT((int64_t)json_object_array_length(items), 3);
	CHECK(next == NULL);
	struct json_object *first = json_object_array_get_idx(items, 0);
	CHECK_STR(json_object_get_string(json_object_object_get(first, "actor")), "tester");
	CHECK(json_object_is_type(json_object_object_get(first, "details"), json_type_null));
	json_object_put(page);
}

static void users_and_tokens_pages(void)
{
	char name[32];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		REQUIRE(auth_user_add(db, "tester", name, "correct horse battery", AUTH_ROLE_VIEWER, NULL) == CORE_OK);
		char *token = NULL;
		REQUIRE(auth_token_create(db, name, "ci", &token) == CORE_OK);
		crypto_free_secret(token);
	}
	page_fn lists[] = {users_page, tokens_page};
	for (size_t k = 0; k < 2; k++) {
		int64_t ids[16];
		int pages = 0, n = walk_ids(lists[k], 2, "username", ids, 16, &pages);
		CHECK_INT(n, 5);
		CHECK_INT(pages, 3);
		for (int i = 1; i < n; i++)
			CHECK(ids[i] > ids[i - 1]); /* by id, each once */
	}
}

/* Every repo once, in the order the sort asks for, whatever the page size. */
static void walk_repos(enum repos_sort sort, bool desc, const char *const *want, int n_want)
{
	struct repos_filter f = {.archived = -1, .sort = sort, .descending = desc, .limit = 2};
	char *cursor = NULL, err[200];
	int n = 0;
	for (;;) {
		struct json_object *page = NULL, *items = NULL;
		f.cursor = cursor;
		REQUIRE(repos_list(db, &f, &page, err, sizeof(err)) == CORE_OK);
		page = testlib_as_client(page); /* the items are PostgreSQL's JSON text, written out as they came */
		free(cursor);
		cursor = next_of(page, &items);
		CHECK_INT(json_object_get_int64(json_object_object_get(page, "count")), n_want);
		for (size_t i = 0; i < json_object_array_length(items); i++, n++) {
			const char *p = json_object_get_string(
			    json_object_object_get(json_object_array_get_idx(items, i), "path_with_namespace"));
			CHECK(n < n_want && strcmp(p, want[n]) == 0);
		}
		json_object_put(page);
		if (!cursor)
			break;
	}
	CHECK_INT(n, n_want);
	/* a cursor of the other sort is refused */
	f.sort = sort == REPOS_SORT_PATH ? REPOS_SORT_ACTIVITY : REPOS_SORT_PATH;
	f.limit = 1;
	f.cursor = NULL;
	struct json_object *page = NULL, *items = NULL;
	REQUIRE(repos_list(db, &f, &page, err, sizeof(err)) == CORE_OK);
	char *other = next_of(page, &items);
	json_object_put(page);
	f.sort = sort;
	f.cursor = other;
	CHECK(repos_list(db, &f, &page, err, sizeof(err)) == CORE_EINVAL);
	free(other);
}

static void repos_pages(void)
{
	/* a long path (beyond any fixed buffer the cursor once went through), one without activity, and two active in
	 * the same second a microsecond apart (a cursor that kept whole seconds gave one of them twice) */
	char longname[700];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	static const char *const acts[] = {"2024-01-03T00:00:00.000002Z", "2024-01-01T00:00:00Z", NULL,
	                                   "2024-01-02T00:00:00.5Z", "2024-01-03T00:00:00.000003Z"};
	char paths[5][800];
	for (int i = 0; i < 5; i++) {
		snprintf(paths[i], sizeof(paths[i]), "acme/%s%d", i == 3 ? longname : "r", i);
		struct json_object *p = jx_object(), *ns = jx_object();
		json_object_object_add(p, "id", jx_int(100 + i));
		json_object_object_add(p, "path", jx_str(strchr(paths[i], '/') + 1));
		json_object_object_add(p, "path_with_namespace", jx_str(paths[i]));
		json_object_object_add(ns, "full_path", jx_str("acme"));
		json_object_object_add(p, "namespace", ns);
		json_object_object_add(p, "last_activity_at", jx_str(acts[i]));
		REQUIRE(discovery_upsert_project(db, p, NULL) == CORE_OK);
		json_object_put(p);
	}
	const char *by_path[] = {paths[0], paths[1], paths[2], paths[4], paths[3]}; /* "r4" < "xxx…3" */
	const char *by_path_desc[] = {paths[3], paths[4], paths[2], paths[1], paths[0]};
	const char *by_act[] = {paths[2], paths[1], paths[3], paths[0], paths[4]}; /* no activity first */
	const char *by_act_desc[] = {paths[4], paths[0], paths[3], paths[1], paths[2]};
	walk_repos(REPOS_SORT_PATH, false, by_path, 5);
	walk_repos(REPOS_SORT_PATH, true, by_path_desc, 5);
	walk_repos(REPOS_SORT_ACTIVITY, false, by_act, 5);
	walk_repos(REPOS_SORT_ACTIVITY, true, by_act_desc, 5);
}

/* The count of a filter (and whether it came from the count cache). */
static int64_t count_of(const struct repos_filter *f, bool *cached)
{
	char err[200];
	struct json_object *page = NULL;
	double before = metrics_get("mrgate_repo_list_counts_total", "source=\"cache\"");
	CHECK(repos_list(db, f, &page, err, sizeof(err)) == CORE_OK);
	*cached = metrics_get("mrgate_repo_list_counts_total", "source=\"cache\"") > before;
	int64_t n = json_object_get_int64(json_object_object_get(page, "count"));
	json_object_put(page);
	return n;
}

/* The cluster's current snapshot (xmin:xmax:in progress); malloc'd, NULL when it cannot be read. */
static char *snapshot_now(void)
{
	PGresult *r = NULL;
	bool ok = store_run1(db, "SELECT pg_current_snapshot()::text AS s", NULL, &r) == CORE_OK;
	CHECK(ok);
	char *s = ok ? xstrdup(store_str(r, 0, "s")) : NULL;
	PQclear(r);
	return s;
}

/*
 * Count f again, expecting the cached count n. A commit anywhere in the cluster (another test's database) moves the
 * snapshot and rightly counts again, so the read is retried until one runs in an unmoved snapshot and is served from
 * the cache (the read after a recount in a new snapshot is the one that can be).
 */
static void count_again_cached(const struct repos_filter *f, int64_t n)
{
	bool cached = false, still = false;
	for (int attempt = 0; attempt < 20 && !(still && cached); attempt++) {
		char *before = snapshot_now();
		CHECK_INT(count_of(f, &cached), n);
		char *after = snapshot_now();
		still = before && after && strcmp(before, after) == 0;
		free(before);
		free(after);
	}
	CHECK(still); /* 20 reads each overlapped by another commit: the cluster is too busy to tell */
	CHECK(cached);
}

/* A count is taken from the cache only in the snapshot it was counted in: any commit counts again, exactly. */
static void counts_are_cached_per_snapshot(void)
{
	repos_list_cache_set(0); /* a page from the page cache counts nothing: the counts' own cache alone */
	struct repos_filter f = {.q = "r", .archived = -1, .limit = 1};
	bool cached = true;
	int64_t n = count_of(&f, &cached);
	CHECK(n >= 4 && !cached);
	count_again_cached(&f, n); /* nothing committed since: the same count, not counted again */
	f.limit = 2;               /* another page size of the same filter: the same count */
	count_again_cached(&f, n);
	struct json_object *p = jx_object(), *ns = jx_object();
	json_object_object_add(p, "id", jx_int(200));
	json_object_object_add(p, "path", jx_str("r-new"));
	json_object_object_add(p, "path_with_namespace", jx_str("acme/r-new"));
	json_object_object_add(ns, "full_path", jx_str("acme"));
	json_object_object_add(p, "namespace", ns);
	REQUIRE(discovery_upsert_project(db, p, NULL) == CORE_OK);
	json_object_put(p);
	CHECK_INT(count_of(&f, &cached), n + 1); /* a repo was added: counted again */
	CHECK(!cached);
	testlib_sql(db, "UPDATE repos SET removed_at = now() WHERE id = 200");
	CHECK_INT(count_of(&f, &cached), n); /* and removed */
	CHECK(!cached);
	struct repos_filter other = {.q = "r0", .archived = -1, .limit = 1};
	CHECK_INT(count_of(&other, &cached), 1); /* another filter is another count */
	CHECK(!cached);
	repos_list_cache_set(REPOS_LIST_CACHE_DEFAULT_BYTES);
}

/* A page's text (and whether it came from the page cache). */
static char *page_of(const struct repos_filter *f, bool *cached)
{
	char err[200], *text = NULL;
	size_t len = 0;
	double before = metrics_get("mrgate_repo_list_pages_total", "source=\"cache\"");
	CHECK(repos_list_text(db, f, NULL, &text, &len, err, sizeof(err)) == CORE_OK);
	*cached = metrics_get("mrgate_repo_list_pages_total", "source=\"cache\"") > before;
	CHECK(text && strlen(text) == len);
	return text ? text : xstrdup("");
}

/* Read f again, expecting the text want from the page cache (retried while other commits move the snapshot, as
 * count_again_cached). */
static void page_again_cached(const struct repos_filter *f, const char *want)
{
	bool cached = false, still = false;
	for (int attempt = 0; attempt < 20 && !(still && cached); attempt++) {
		char *before = snapshot_now();
		char *text = page_of(f, &cached);
		CHECK_STR(text, want);
		free(text);
		char *after = snapshot_now();
		still = before && after && strcmp(before, after) == 0;
		free(before);
		free(after);
	}
	CHECK(still);
	CHECK(cached);
}

/* A page's text is taken from the cache only in the snapshot it was read in: a commit anywhere reads it again, and
 * a transaction that wrote but has not committed is not seen until it commits. */
static void pages_are_cached_per_snapshot(void)
{
	struct repos_filter f = {.archived = -1, .limit = 3};
	bool cached = true;
	char *first = page_of(&f, &cached);
	CHECK(!cached && strstr(first, "\"items\":[{") && strstr(first, "\"next_cursor\":\""));
	page_again_cached(&f, first);
	struct repos_filter other = {.archived = -1, .limit = 2}; /* another page size is another page */
	char *two = page_of(&other, &cached);
	CHECK(strcmp(two, first) != 0);
	free(two);
	/* a change committed through another connection: read again, and shows */
	testlib_sql(db, "UPDATE repos SET name = 'renamed-by-commit' WHERE id = 100");
	char *after = page_of(&f, &cached);
	CHECK(!cached && strstr(after, "renamed-by-commit"));
	/* a write in progress is not in the page; its commit is */
	struct store_conn *c = NULL;
	REQUIRE(store_get_begin(db, &c) == CORE_OK);
	REQUIRE(store_run(c, "UPDATE repos SET name = 'renamed-in-transaction' WHERE id = 100", NULL, NULL) == CORE_OK);
	char *during = page_of(&f, &cached);
	CHECK(!strstr(during, "renamed-in-transaction") && strstr(during, "renamed-by-commit"));
	REQUIRE(store_commit(c) == CORE_OK);
	store_put(db, c);
	char *committed = page_of(&f, &cached);
	CHECK(!cached && strstr(committed, "renamed-in-transaction"));
	/* off: every page is read */
	repos_list_cache_set(0);
	char *off = page_of(&f, &cached);
	CHECK_STR(off, committed);
	free(off);
	for (int i = 0; i < 3; i++) {
		off = page_of(&f, &cached);
		CHECK(!cached);
		free(off);
	}
	repos_list_cache_set(REPOS_LIST_CACHE_DEFAULT_BYTES);
	free(first);
	free(after);
	free(during);
	free(committed);
}

struct reader {
	struct repos_filter f;
	const char *snap;
	char *text;
	enum core_status st;
};

static void *read_page(void *arg)
{
	struct reader *rd = arg;
	char err[200];
	size_t len = 0;
	rd->st = repos_list_text(db, &rd->f, rd->snap, &rd->text, &len, err, sizeof(err));
	return NULL;
}

/*
 * Requests that miss the same page for the same snapshot while one of them reads it share that read (issue 15: at
 * 100,000 repos, 32 connections searching the same text each read it, 700 ms apiece). The read is held up by a
 * lock on the table until all have arrived; then one read answers all eight, with the same text as a read alone.
 */
static void concurrent_misses_share_one_read(void)
{
	struct repos_filter f = {.q = "r0", .archived = -1, .limit = 7};
	char err[200], *alone = NULL;
	size_t len = 0;
	repos_list_cache_set(0); /* the text of a read of its own, not from the cache */
	REQUIRE(repos_list_text(db, &f, NULL, &alone, &len, err, sizeof(err)) == CORE_OK);
	repos_list_cache_set(REPOS_LIST_CACHE_DEFAULT_BYTES);
	char *snap = snapshot_now();
	REQUIRE(snap);
	struct store_conn *lk = NULL;
	REQUIRE(store_get_begin(db, &lk) == CORE_OK);
	REQUIRE(store_run(lk, "LOCK TABLE repo_status_stored IN ACCESS EXCLUSIVE MODE", NULL, NULL) == CORE_OK);
	double read0 = metrics_get("mrgate_repo_list_pages_total", "source=\"read\""),
	       shared0 = metrics_get("mrgate_repo_list_pages_total", "source=\"shared\""),
	       cache0 = metrics_get("mrgate_repo_list_pages_total", "source=\"cache\"");
	enum { N = 8 };
	struct reader rd[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		rd[i] = (struct reader){.f = f, .snap = snap};
		REQUIRE(pthread_create(&t[i], NULL, read_page, &rd[i]) == 0);
	}
	struct timespec pause = {.tv_nsec = 500 * 1000 * 1000};
	nanosleep(&pause, NULL); /* every reader has missed: one reads, held by the lock, the others wait for it */
	store_rollback(lk);
	store_put(db, lk);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		CHECK(rd[i].st == CORE_OK);
		CHECK_STR(rd[i].text ? rd[i].text : "", alone);
		free(rd[i].text);
	}
	double reads = metrics_get("mrgate_repo_list_pages_total", "source=\"read\"") - read0,
	       shared = metrics_get("mrgate_repo_list_pages_total", "source=\"shared\"") - shared0,
	       cached = metrics_get("mrgate_repo_list_pages_total", "source=\"cache\"") - cache0;
	fprintf(stderr, "  %d readers: %.0f read, %.0f shared, %.0f from the cache\n", N, reads, shared, cached);
	CHECK(reads == 1);
	CHECK(shared == N - 1);
	free(snap);
	free(alone);
}

int main(void)
{
	db = testlib_db_start("lists", 4);
	RUN(audit_pages);
	RUN(users_and_tokens_pages);
	RUN(repos_pages);
	RUN(counts_are_cached_per_snapshot);
	RUN(pages_are_cached_per_snapshot);
	RUN(concurrent_misses_share_one_read);
	store_close(db);
	return testlib_done();
}
