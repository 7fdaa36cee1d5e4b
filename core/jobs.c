/*
 * core/jobs.c
 *    The job queue in PostgreSQL: creating jobs, claims with FOR UPDATE SKIP LOCKED and leases, recording results
 *    with the job's counters, retry and cancel. See jobs.h for the design and the guarantees; the worker pool that
 *    drives these primitives is core/jobs_runner.c, the read model core/jobs_view.c.
 */
#include "jobs.h"

#include "audit.h"
#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------------- */
/* Small helpers */

bool jobs_kind_valid(const char *kind)
{
	size_t n = kind ? strlen(kind) : 0;
	return n > 0 && n <= JOBS_KIND_MAX && kind[0] >= 'a' && kind[0] <= 'z' &&
	       strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

const char *jobs_outcome_result(enum job_outcome o)
{
	switch (o) {
	case JOB_ITEM_CHANGED: return "changed";
	case JOB_ITEM_UNCHANGED: return "unchanged";
	case JOB_ITEM_SKIPPED: return "skipped";
	case JOB_ITEM_ERROR: return "error";
	case JOB_ITEM_RETRY: break;
	}
	return NULL;
}

/* A copy of msg cut to JOBS_MESSAGE_MAX bytes (on a UTF-8 boundary); NULL stays NULL. */
static char *message_dup(const char *msg)
{
	if (!msg)
		return NULL;
	size_t n = strlen(msg);
	if (n > JOBS_MESSAGE_MAX) {
		n = JOBS_MESSAGE_MAX;
		while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
			n--;
	}
	return xstrndup(msg, n);
}

void jobs_result_message(struct job_item_result *res, const char *fmt, ...)
{
	char text[JOBS_MESSAGE_MAX + 1]; /* the documented cap of a message: longer text is cut */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	free(res->message);
	res->message = message_dup(text);
}

bool jobs_item_lease_lost(const struct job_item *item)
{
	return __atomic_load_n(&item->lost_, __ATOMIC_ACQUIRE) != 0;
}

long jobs_backoff_ms(int attempt, long base_ms, long max_ms, long at_least_ms)
{
	long d = base_ms > 0 ? base_ms : 1;
	for (int i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	/* "equal jitter": half fixed, half random, so retries of many items spread out but never come too soon */
	long half = d / 2;
	long spread = half > 0x7ffffffeL ? 0x7ffffffeL : half;
	long jittered = half + (long)randombytes_uniform((uint32_t)spread + 1);
	if (jittered < at_least_ms)
		jittered = at_least_ms;
	return jittered;
}

/* st, or `none` when the statement ran but matched no row (*r is read after the statement ran). */
static enum core_status matched(enum core_status st, PGresult *const *r, enum core_status none)
{
	return st == CORE_OK && PQntuples(*r) == 0 ? none : st;
}

/* Parse JSON text from the database (trusted); NULL for NULL or unparsable text. */
static struct json_object *db_json(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Creating jobs */

static enum core_status create_job_row(struct store_conn *c, const char *kind, const char *created_by,
                                       const char *params_json, int64_t *job_id_out)
{
	struct store_params p = {0};
	PGresult *r = NULL;

	if (!jobs_kind_valid(kind) || !created_by || !*created_by)
		return CORE_EINVAL;
	store_param_str(&p, kind);
	store_param_str(&p, created_by);
	store_param_str(&p, params_json && *params_json ? params_json : "{}");
	enum core_status st =
	    store_run(c, "INSERT INTO jobs (kind, created_by, params) VALUES ($1, $2, $3::jsonb) RETURNING id", &p, &r);
	if (st == CORE_OK) {
		*job_id_out = store_i64(r, 0, "id", 0);
		st = *job_id_out > 0 ? CORE_OK : CORE_EINTERNAL;
	}
	PQclear(r);
	return st;
}

/* Set total from the inserted items (and finish an empty job at once); $3 is the job id. */
#define SET_TOTAL_TAIL                                                                                                 \
	" UPDATE jobs SET total = t.n, state = CASE WHEN t.n = 0 THEN 'done' ELSE state END,"                          \
	"   finished_at = CASE WHEN t.n = 0 THEN now() END"                                                            \
	" FROM (SELECT count(*)::int AS n FROM ins) t WHERE jobs.id = $3"                                              \
	" RETURNING pg_notify('" JOBS_CHANNEL "', '')"

/*
 * The job row, then its items by `items_sql` ($1 the items, already in p; $2 the kind; $3 the job id), in the
 * caller's transaction.
 */
static enum core_status create_job(struct store_conn *c, const char *kind, const char *created_by,
                                   const char *params_json, const char *items_sql, struct store_params *p,
                                   int64_t *job_id_out)
{
	int64_t job_id = 0;

	*job_id_out = 0;
	enum core_status st = create_job_row(c, kind, created_by, params_json, &job_id);
	if (st != CORE_OK)
		return st;
	store_param_str(p, kind);
	store_param_i64(p, job_id);
	st = store_run(c, items_sql, p, NULL);
	if (st == CORE_OK)
		*job_id_out = job_id;
	return st;
}

enum core_status jobs_create_in_tx(struct store_conn *c, const char *kind, const char *created_by,
                                   const char *params_json, const int64_t *repo_ids, size_t n, int64_t *job_id_out)
{
	struct store_params p = {0};
	struct buf arr = {0};

	*job_id_out = 0;
	if (n > 0 && !repo_ids)
		return CORE_EINVAL;
	store_param_i64_array(&p, repo_ids, n, &arr);
	enum core_status st = create_job(c, kind, created_by, params_json,
	                                 "WITH ins AS ("
	                                 " INSERT INTO job_items (job_id, kind, repo_id)"
	                                 " SELECT $3, $2, u.r FROM unnest($1::bigint[]) WITH ORDINALITY AS u(r, o)"
	                                 " GROUP BY u.r ORDER BY min(u.o)"
	                                 " RETURNING 1)" SET_TOTAL_TAIL,
	                                 &p, job_id_out);
	buf_free(&arr);
	return st;
}

enum core_status jobs_create_items_in_tx(struct store_conn *c, const char *kind, const char *created_by,
                                         const char *params_json, const char *items_json, int64_t *job_id_out)
{
	struct store_params p = {0};
	store_param_str(&p, items_json ? items_json : "[]");
	return create_job(c, kind, created_by, params_json,
	                  "WITH ins AS ("
	                  " INSERT INTO job_items (job_id, kind, repo_id, payload)"
	                  " SELECT $3, $2, (a.e->>'repo_id')::bigint, nullif(a.e->'payload', 'null'::jsonb)"
	                  " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(e, o) ORDER BY a.o"
	                  " RETURNING 1)" SET_TOTAL_TAIL,
	                  &p, job_id_out);
}

/* jobs_create_in_tx (repo_ids) or jobs_create_items_in_tx (items_json) in a transaction of its own. */
static enum core_status create_committed(struct store *db, const char *kind, const char *created_by,
                                         const char *params_json, const int64_t *repo_ids, size_t n,
                                         const char *items_json, int64_t *job_id_out)
{
	struct store_conn *c = NULL;
	enum core_status st;

	*job_id_out = 0;
	st = store_get_begin(db, &c);
	if (st != CORE_OK)
		goto out;
	st = items_json ? jobs_create_items_in_tx(c, kind, created_by, params_json, items_json, job_id_out)
	                : jobs_create_in_tx(c, kind, created_by, params_json, repo_ids, n, job_id_out);
	if (st == CORE_OK)
		st = store_commit(c);
	if (st != CORE_OK) {
		store_rollback(c);
		*job_id_out = 0;
	}
out:
	store_put(db, c);
	return st;
}

enum core_status jobs_create(struct store *db, const char *kind, const char *created_by, const char *params_json,
                             const int64_t *repo_ids, size_t n, int64_t *job_id_out)
{
	return create_committed(db, kind, created_by, params_json, repo_ids, n, NULL, job_id_out);
}

enum core_status jobs_create_items(struct store *db, const char *kind, const char *created_by, const char *params_json,
                                   const char *items_json, int64_t *job_id_out)
{
	return create_committed(db, kind, created_by, params_json, NULL, 0, items_json ? items_json : "[]", job_id_out);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Retry and cancel */

/* The audit entry of a user's retry or cancel of job job_id (target "job N"); takes before, after and details. */
static enum core_status audit_job(struct store_conn *c, const char *actor, const char *action, int64_t job_id,
                                  struct json_object *before, struct json_object *after, struct json_object *details)
{
	struct buf target = {0};
	buf_printf(&target, "job %" PRId64, job_id);
	enum core_status st = audit_write(c, actor, action, buf_str(&target), before, after, details);
	json_object_put(before);
	json_object_put(after);
	json_object_put(details);
	buf_free(&target);
	return st;
}

enum core_status jobs_retry_failed(struct store *db, int64_t job_id, const char *actor, int64_t *n_out)
{
	struct store_params p = {0};
	struct store_conn *c = NULL;
	PGresult *r = NULL;

	if (n_out)
		*n_out = 0;
	store_param_i64(&p, job_id);
	/* the retry and its audit entry commit together */
	enum core_status st = store_get_begin(db, &c);
	if (st != CORE_OK)
		return st;
	/* a webhook-mode switch is an admin's decision of its moment: retried by anyone later it would replay a stale
	 * one under the admin's name (found by a reviewer); it is started again from the settings instead */
	st = store_run(c, "SELECT kind FROM jobs WHERE id = $1", &p, &r);
	if (st == CORE_OK && PQntuples(r) > 0 && strcmp(store_str(r, 0, "kind"), "hookmode") == 0)
		st = CORE_ESTATE;
	PQclear(r);
	r = NULL;
	/* items first, then the job row: the lock order of every statement here */
	if (st == CORE_OK)
		st = matched(store_run(c,
		                       "WITH rs AS ("
		                       " UPDATE job_items SET state = 'pending', result = NULL, message = NULL,"
		                       "   details = NULL, attempts_before = attempts_before + attempts, attempts = 0,"
		                       "   not_before = now(), lease_owner = NULL,"
		                       "   lease_until = NULL, started_at = NULL, finished_at = NULL"
		                       " WHERE job_id = $1 AND state = 'failed' RETURNING 1),"
		                       " t AS (SELECT count(*)::int AS n FROM rs)"
		                       " UPDATE jobs SET done = done - t.n, failed = failed - t.n,"
		                       "   state = CASE WHEN t.n > 0 THEN 'running' ELSE state END,"
		                       "   finished_at = CASE WHEN t.n > 0 THEN NULL ELSE finished_at END"
		                       " FROM t WHERE jobs.id = $1 RETURNING t.n, jobs.kind, pg_notify('" JOBS_CHANNEL
		                       "', '')",
		                       &p, &r),
		             &r, CORE_ENOTFOUND);
	int64_t n = st == CORE_OK ? store_i64(r, 0, "n", 0) : 0;
	if (st == CORE_OK && n > 0 && actor) {
		/* the audit page shows "failed: 3 → 0" */
		struct json_object *before = jx_object(), *after = jx_object(), *details = jx_object();
		json_object_object_add(before, "failed", jx_int(n));
		json_object_object_add(after, "failed", jx_int(0));
		json_object_object_add(details, "kind", jx_str(store_str(r, 0, "kind")));
		json_object_object_add(details, "retried", jx_int(n));
		st = audit_job(c, actor, "job.retry", job_id, before, after, details);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	if (st == CORE_OK) {
		if (n_out)
			*n_out = n;
		if (n > 0)
			log_info("job %" PRId64 ": %" PRId64 " failed items queued again", job_id, n);
	}
	PQclear(r);
	store_rollback(c); /* nothing when committed */
	store_put(db, c);
	return st;
}

enum core_status jobs_cancel(struct store *db, int64_t job_id, const char *actor)
{
	struct store_params p = {0};
	struct store_conn *c = NULL;
	PGresult *r = NULL;

	store_param_i64(&p, job_id);
	/* the cancel and its audit entry commit together */
	enum core_status st = store_get_begin(db, &c);
	if (st != CORE_OK)
		return st;
	/* a webhook-mode switch runs to its end: stopped halfway it would leave both kinds of hooks in place */
	st = store_run(c, "SELECT kind FROM jobs WHERE id = $1", &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	else if (st == CORE_OK && strcmp(store_str(r, 0, "kind"), "hookmode") == 0)
		st = CORE_ECONFLICT;
	PQclear(r);
	r = NULL;
	if (st != CORE_OK)
		goto out;
	st = store_run(
	    c,
	    "WITH sk AS ("
	    " UPDATE job_items SET state = 'done', result = 'skipped', message = 'canceled',"
	    "   finished_at = now(), lease_until = NULL"
	    " WHERE id IN (SELECT id FROM job_items WHERE job_id = $1"
	    "   AND (state = 'pending' OR (state = 'running' AND lease_until < now())) ORDER BY id FOR UPDATE)"
	    "   AND (state = 'pending' OR (state = 'running' AND lease_until < now()))"
	    "   AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))"
	    " RETURNING 1),"
	    " t AS (SELECT count(*)::int AS n FROM sk)"
	    " UPDATE jobs SET done = done + t.n, skipped = skipped + t.n, state = 'canceled', finished_at = now()"
	    " FROM t WHERE jobs.id = $1 AND jobs.state IN ('queued', 'running')"
	    " RETURNING t.n, jobs.kind, jobs.total, jobs.done",
	    &p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 1) {
		int64_t n = store_i64(r, 0, "n", 0);
		bool dryrun = strcmp(store_str(r, 0, "kind"), "dryrun") == 0;
		/* the repos of the items skipped here are no longer "applying" (an apply job marked them with its run;
		 * the items claimed by a worker are skipped by their handler, applyjob_item); after the items and the
		 * job row: the lock order of every statement here */
		if (n > 0)
			st = store_run(c,
			               "UPDATE repo_gitlab_state g SET applying = false"
			               " FROM job_items i JOIN jobs j ON j.id = i.job_id"
			               " WHERE i.job_id = $1 AND i.state = 'done' AND i.result = 'skipped'"
			               "   AND i.message = 'canceled' AND g.repo_id = i.repo_id AND g.applying"
			               "   AND g.apply_run = (j.params->>'run')::bigint",
			               &p, NULL);
		/* a preview changes nothing on GitLab: the dashboard cancels the ones it no longer shows, unaudited */
		if (st == CORE_OK && actor && !dryrun) {
			struct json_object *before = jx_object(), *after = jx_object(), *details = jx_object();
			/* the audit page shows what differs: "state: running → canceled", "pending: 83 → 0" */
			json_object_object_add(before, "state", jx_str("running"));
			json_object_object_add(before, "pending", jx_int(n));
			json_object_object_add(after, "state", jx_str("canceled"));
			json_object_object_add(after, "pending", jx_int(0));
			json_object_object_add(details, "kind", jx_str(store_str(r, 0, "kind")));
			json_object_object_add(details, "skipped", jx_int(n));
			json_object_object_add(details, "done_before", jx_int(store_i64(r, 0, "done", 0) - n));
			json_object_object_add(details, "total", jx_int(store_i64(r, 0, "total", 0)));
			st = audit_job(c, actor, "job.cancel", job_id, before, after, details);
		}
		if (st == CORE_OK)
			st = store_commit(c);
		if (st == CORE_OK)
			log_info("job %" PRId64 " canceled by %s (%" PRId64 " items skipped)", job_id,
			         actor ? actor : "mrgate", n);
		goto out;
	}
	PQclear(r);
	r = NULL;
	st = store_run(c, "SELECT state FROM jobs WHERE id = $1", &p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	else if (strcmp(store_str(r, 0, "state"), "canceled") != 0)
		st = CORE_ESTATE;
out:
	PQclear(r);
	store_rollback(c); /* nothing when committed */
	store_put(db, c);
	return st;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Queue primitives */

void jobs_items_free(struct job_item *items, int n)
{
	if (!items)
		return;
	for (int i = 0; i < n; i++) {
		free(items[i].kind);
		free(items[i].created_by);
		json_object_put(items[i].payload);
		json_object_put(items[i].params);
	}
	free(items);
}

/* Row i of a claim's result as an item. */
static void claimed_item(const PGresult *r, int i, struct job_item *it)
{
	const char *kind = store_str(r, i, "kind"), *by = store_str(r, i, "created_by");
	const char *prev = store_str(r, i, "prev_state");
	it->id = store_i64(r, i, "id", 0);
	it->job_id = store_i64(r, i, "job_id", 0);
	it->kind = xstrdup(kind ? kind : "");
	it->has_repo = store_str(r, i, "repo_id") != NULL;
	it->repo_id = store_i64(r, i, "repo_id", 0);
	it->payload = db_json(store_str(r, i, "payload"));
	it->params = db_json(store_str(r, i, "params"));
	if (!it->params)
		it->params = jx_object();
	it->created_by = xstrdup(by ? by : "");
	it->attempt = (int)store_i64(r, i, "attempts", 1);
	it->takeover = prev && strcmp(prev, "running") == 0;
}

enum core_status jobs_claim(struct store *db, const char *owner, const char *const *kinds, int n_kinds, int max,
                            int lease_ms, struct job_item **items_out, int *n_out)
{
	return jobs_claim_share(db, owner, kinds, n_kinds, max, 1, 1, lease_ms, items_out, n_out, NULL);
}

/* A text[] literal of job kinds into *lit; false for a bad kind (kinds are [a-z][a-z0-9_]*: no quoting needed). */
static bool kinds_literal(const char *const *kinds, int n_kinds, struct buf *lit)
{
	if (n_kinds < 1 || n_kinds > JOBS_MAX_KINDS)
		return false;
	buf_putc(lit, '{');
	for (int i = 0; i < n_kinds; i++) {
		if (!jobs_kind_valid(kinds[i]))
			return false;
		buf_printf(lit, i ? ",%s" : "%s", kinds[i]);
	}
	buf_putc(lit, '}');
	return true;
}

/* A claim that starts a job of at least this many items refreshes job_items' statistics (jobs_claim_share). */
#define JOBS_ANALYZE_ITEMS 500

char *jobs_claim_sql(const char *const *kinds, int n_kinds, int max, int share, int claimers)
{
	struct buf kinds_lit = {0};
	if (max < 1 || max > 1000 || share < 1 || share > 1000 || claimers < 1 || claimers > share ||
	    !kinds_literal(kinds, n_kinds, &kinds_lit)) {
		buf_free(&kinds_lit);
		return NULL;
	}
	/* due: the claimable items, at most share * max of them counted; each claimer takes its share of them,
	 * ceil(due / share) (>= 1, <= max): max while every claimer could take a batch of max, and fewer towards the
	 * end, so that the last items are spread over the claimers; a lone claimer (share 1) takes max. (It took
	 * ceil(due / (share * max)), so that every claimer could take max batches: a 1,000-item job was claimed 4 at
	 * a time by 32 workers, 391 claim statements and as many reads ahead, the most frequent statements of a
	 * no-change re-apply; a runner's worker out of items now takes half of a sibling's instead, jobs_runner.c,
	 * docs/PERFORMANCE.md, session 31.) The items are only counted near the end: while the unfinished
	 * items of the active jobs (their counters) exceed that bound by more than the claimers can hold (share * max),
	 * as many are due. A count visited up to share * max * max rows, and after a job the index entries its items
	 * left, on every claim: in a no-change re-apply it was PostgreSQL's costliest statement.
	 *
	 * The kinds, max and share are in the text, not parameters, and the candidates are locked under a constant
	 * LIMIT max, the share taken from them after: the planner then knows that a claim touches at most max rows.
	 * With the share's expression as the scan's LIMIT it could not; it planned for a tenth of the claimable items
	 * and read every job item ever written (a hash join over job_items) or sorted every claimable one, on every
	 * claim: at 10,000 repos a claim took 40 ms, and the longer the history, the slower. The count is ordered as
	 * the claim index is so that it walks that index, not the table. Locked candidates beyond the share are let go
	 * when the statement ends; this claimer then pokes a sibling, which takes them.
	 *
	 * claimers: the shares of that many claimers are taken at once, from max * claimers candidates; a worker hands
	 * them to its idle siblings, so that the start of a job is one claim, not one per worker, each waking the next
	 * (docs/PERFORMANCE.md, session 30).
	 */
	struct buf out = {0}, *sql = &out;
	int cap = share * max, bound = cap + share * max, per = share;
	char take[200];
	if (share == 1)
		snprintf(take, sizeof(take), "%d", max);
	else
		snprintf(take, sizeof(take), "%d * least(%d, greatest(1, ((SELECT n FROM due) + %d) / %d))", claimers,
		         max, per - 1, per);
	const char *k = buf_str(&kinds_lit);
	buf_printf(sql,
	           STORE_PREPARE
	           "WITH due AS ("
	           " SELECT CASE WHEN (SELECT coalesce(sum(total - done), 0) FROM jobs"
	           "  WHERE state IN ('queued', 'running') AND kind = ANY('%s'::text[])) > %d THEN %d"
	           " ELSE (SELECT count(*)::int FROM (SELECT 1 FROM job_items"
	           " WHERE state IN ('pending', 'running') AND not_before <= now() AND kind = ANY('%s'::text[])"
	           " ORDER BY not_before, id LIMIT %d) d) END AS n),"
	           " cand AS ("
	           " SELECT id, state AS prev_state, not_before FROM job_items"
	           " WHERE state IN ('pending', 'running') AND not_before <= now() AND kind = ANY('%s'::text[])"
	           " ORDER BY not_before, id LIMIT %d FOR UPDATE SKIP LOCKED),"
	           " pick AS (SELECT id, prev_state FROM cand ORDER BY not_before, id LIMIT %s),"
	           " cl AS ("
	           " UPDATE job_items i SET state = 'running', lease_owner = $1,"
	           "   lease_until = now() + $2::int * interval '1 millisecond',"
	           "   not_before = now() + $2::int * interval '1 millisecond',"
	           "   attempts = i.attempts + 1, started_at = now()"
	           " FROM pick WHERE i.id = pick.id"
	           " RETURNING i.id, i.job_id, i.kind, i.repo_id, i.payload, i.attempts, pick.prev_state),"
	           " st AS ("
	           " UPDATE jobs SET state = 'running', started_at = coalesce(started_at, now())"
	           " WHERE id IN (SELECT job_id FROM cl) AND state = 'queued' RETURNING id, total)"
	           " SELECT cl.id, cl.job_id, cl.kind, cl.repo_id, cl.payload::text AS payload, cl.attempts,"
	           "   cl.prev_state, j.params::text AS params, j.created_by,"
	           "   (SELECT coalesce(max(total), 0) FROM st) AS started_total"
	           " FROM cl JOIN jobs j ON j.id = cl.job_id ORDER BY cl.id",
	           k, bound, cap, k, cap, k, max * claimers, take);
	buf_free(&kinds_lit);
	return buf_steal(&out);
}

enum core_status jobs_claim_share(struct store *db, const char *owner, const char *const *kinds, int n_kinds, int max,
                                  int share, int claimers, int lease_ms, struct job_item **items_out, int *n_out,
                                  bool *stale_out)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	enum core_status st = CORE_EINVAL;

	*items_out = NULL;
	*n_out = 0;
	if (stale_out)
		*stale_out = false;
	char *sql = owner && *owner && lease_ms >= 1 ? jobs_claim_sql(kinds, n_kinds, max, share, claimers) : NULL;
	if (!sql)
		goto out;
	store_param_str(&p, owner);
	store_param_i64(&p, lease_ms);
	st = store_run1(db, sql, &p, &r);
	free(sql);
	if (st != CORE_OK)
		goto out;
	int n = PQntuples(r);
	if (n == 0)
		goto out;
	struct job_item *items = xcalloc((size_t)n, sizeof(*items));
	for (int i = 0; i < n; i++)
		claimed_item(r, i, &items[i]);
	*items_out = items;
	*n_out = n;
	/*
	 * This claim started a large job: its items, just written, are most of what is claimable, and the planner's
	 * statistics, gathered while every item was finished, say almost none is. Planned on them, a claim read and
	 * sorted every claimable item (a bitmap scan) instead of walking the claim index to the first few: at 10,000
	 * items, in a third of the claims. So the statistics are gathered again now, once per large job, as after any
	 * bulk load (ANALYZE reads a sample: 20-100 ms at 20,000-300,000 items). Its failure changes nothing else.
	 */
	if (store_i64(r, 0, "started_total", 0) >= JOBS_ANALYZE_ITEMS) {
		if (stale_out)
			*stale_out = true;
		else
			jobs_analyze(db);
	}
out:
	PQclear(r);
	return st;
}

void jobs_analyze(struct store *db)
{
	(void)store_run1(db, "ANALYZE job_items (state, kind, not_before)", NULL, NULL);
}

/* The records as the JSON array the finish statement reads: [{"id", "result", "message"?, "details"?}]. */
static struct json_object *records_json(const struct jobs_record *recs, int n)
{
	struct json_object *arr = jx_array();
	for (int i = 0; i < n; i++) {
		struct json_object *o = jx_object();
		json_object_object_add(o, "id", json_object_new_int64(recs[i].item_id));
		json_object_object_add(o, "result", jx_str(jobs_outcome_result(recs[i].outcome)));
		char *msg = message_dup(recs[i].message);
		if (msg)
			json_object_object_add(o, "message", jx_str(msg));
		free(msg);
		struct json_object *d = db_json(recs[i].details_json);
		if (d)
			json_object_object_add(o, "details", d);
		json_object_array_add(arr, o);
	}
	return arr;
}

static void log_job_finished(const PGresult *r, int row)
{
	log_info("job %" PRId64 " (%s) %s: %" PRId64 " items, %" PRId64 " changed, %" PRId64 " unchanged, %" PRId64
	         " skipped, %" PRId64 " failed",
	         store_i64(r, row, "job_id", 0), store_str(r, row, "kind"), store_str(r, row, "state"),
	         store_i64(r, row, "total", 0), store_i64(r, row, "changed", 0), store_i64(r, row, "unchanged", 0),
	         store_i64(r, row, "skipped", 0), store_i64(r, row, "failed", 0));
}

/*
 * One statement: the items still leased to $2 get their results, their jobs' counters move by what was recorded.
 * Lock order, the same in every statement here that waits for rows: the items in id order (li; the heartbeat's
 * renewal of the same items, in another order, deadlocked with it), then the job rows in id order. Rows out: one
 * per recorded item (item_id, job_id), then one per job touched (item_id NULL) with its counters.
 */
#define FINISH_SQL                                                                                                     \
	STORE_PREPARE                                                                                                  \
	"WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, result text, message text,"            \
	" details jsonb)),"                                                                                            \
	" li AS (SELECT i.id FROM job_items i WHERE i.id IN (SELECT id FROM v) AND i.lease_owner = $2"                 \
	"   AND i.state = 'running' ORDER BY i.id FOR UPDATE),"                                                        \
	" it AS ("                                                                                                     \
	" UPDATE job_items i SET state = CASE WHEN v.result = 'error' THEN 'failed' ELSE 'done' END,"                  \
	"   result = v.result, message = v.message, details = v.details, finished_at = now(), lease_until = NULL"      \
	" FROM v JOIN li ON li.id = v.id WHERE i.id = v.id AND i.lease_owner = $2 AND i.state = 'running'"             \
	" RETURNING i.id, i.job_id, i.result),"                                                                        \
	" agg AS (SELECT job_id, count(*)::int AS n,"                                                                  \
	"   count(*) FILTER (WHERE result = 'changed')::int AS c, count(*) FILTER (WHERE result = "                    \
	"'unchanged')::int "                                                                                           \
	"AS u,"                                                                                                        \
	"   count(*) FILTER (WHERE result = 'skipped')::int AS s, count(*) FILTER (WHERE result = 'error')::int "      \
	"AS f"                                                                                                         \
	"   FROM it GROUP BY job_id),"                                                                                 \
	" lk AS (SELECT id FROM jobs WHERE id IN (SELECT job_id FROM agg) ORDER BY id FOR UPDATE),"                    \
	" j AS ("                                                                                                      \
	" UPDATE jobs SET done = jobs.done + agg.n, changed = jobs.changed + agg.c,"                                   \
	"   unchanged = jobs.unchanged + agg.u, skipped = jobs.skipped + agg.s, failed = jobs.failed + agg.f,"         \
	"   state = CASE WHEN jobs.state IN ('queued', 'running') AND jobs.done + agg.n >= jobs.total"                 \
	"                THEN 'done' ELSE jobs.state END,"                                                             \
	"   finished_at = CASE WHEN jobs.state IN ('queued', 'running') AND jobs.done + agg.n >= jobs.total"           \
	"                THEN now() ELSE jobs.finished_at END"                                                         \
	" FROM agg JOIN lk ON lk.id = agg.job_id WHERE jobs.id = agg.job_id"                                           \
	" RETURNING jobs.id, jobs.kind, jobs.state, jobs.total, jobs.done, jobs.changed, jobs.unchanged,"              \
	"   jobs.skipped, jobs.failed)"                                                                                \
	" SELECT it.id AS item_id, it.job_id, NULL AS kind, NULL AS state, NULL::int AS total, NULL::int AS done,"     \
	"   NULL::int AS changed, NULL::int AS unchanged, NULL::int AS skipped, NULL::int AS failed FROM it"           \
	" UNION ALL SELECT NULL, j.id, j.kind, j.state, j.total, j.done, j.changed, j.unchanged, j.skipped, "          \
	"j.failed"                                                                                                     \
	" FROM j"

enum core_status jobs_finish_batch(struct store *db, const char *owner, struct jobs_record *recs, int n)
{
	struct store_params p = {0};
	PGresult *r = NULL;

	for (int i = 0; i < n; i++)
		recs[i].recorded = recs[i].job_finished = false;
	if (!owner || n < 0)
		return CORE_EINVAL;
	for (int i = 0; i < n; i++)
		if (!jobs_outcome_result(recs[i].outcome))
			return CORE_EINVAL;
	if (n == 0)
		return CORE_OK;
	struct json_object *arr = records_json(recs, n);
	store_param_str(&p, json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
	store_param_str(&p, owner);
	enum core_status st = store_run1(db, FINISH_SQL, &p, &r);
	json_object_put(arr);
	if (st != CORE_OK)
		goto out;
	/* item rows first (what was recorded, in which job), then job rows (which jobs this finished) */
	for (int row = 0; row < PQntuples(r); row++) {
		int64_t item = store_i64(r, row, "item_id", 0);
		for (int i = 0; item > 0 && i < n; i++)
			if (recs[i].item_id == item) {
				recs[i].recorded = true;
				recs[i].job_id = store_i64(r, row, "job_id", 0);
			}
	}
	for (int row = 0; row < PQntuples(r); row++) {
		if (store_str(r, row, "item_id") || store_i64(r, row, "done", 0) != store_i64(r, row, "total", -1))
			continue;
		log_job_finished(r, row);
		for (int i = 0; i < n; i++)
			if (recs[i].recorded && recs[i].job_id == store_i64(r, row, "job_id", 0))
				recs[i].job_finished = true;
	}
out:
	PQclear(r);
	return st;
}

enum core_status jobs_finish(struct store *db, const char *owner, int64_t item_id, enum job_outcome outcome,
                             const char *message, const char *details_json, bool *job_finished_out)
{
	struct jobs_record rec = {
	    .item_id = item_id, .outcome = outcome, .message = message, .details_json = details_json};

	if (job_finished_out)
		*job_finished_out = false;
	enum core_status st = jobs_finish_batch(db, owner, &rec, 1);
	if (st == CORE_OK && !rec.recorded)
		st = CORE_ECONFLICT; /* no row: the lease was taken over, someone else owns the item */
	if (st == CORE_OK && job_finished_out)
		*job_finished_out = rec.job_finished;
	return st;
}

enum core_status jobs_requeue(struct store *db, const char *owner, int64_t item_id, long delay_ms, const char *message)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	char *msg = message_dup(message);

	store_param_i64(&p, item_id);
	store_param_str(&p, owner);
	store_param_i64(&p, delay_ms > 0 ? delay_ms : 0);
	store_param_str(&p, msg);
	enum core_status st =
	    matched(store_run1(db,
	                       "UPDATE job_items SET state = 'pending', lease_owner = NULL, lease_until = NULL,"
	                       "   not_before = now() + $3::bigint * interval '1 millisecond', message = $4"
	                       " WHERE id = $1 AND lease_owner = $2 AND state = 'running'"
	                       " RETURNING id, pg_notify('" JOBS_CHANNEL "', '')",
	                       &p, &r),
	            &r, CORE_ECONFLICT);
	free(msg);
	PQclear(r);
	return st;
}

/* The items of $1 held by $2, locked in id order (the lock order of FINISH_SQL). */
#define HELD_IN_ORDER                                                                                                  \
	"SELECT id FROM job_items WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'running'"             \
	" ORDER BY id FOR UPDATE"

/*
 * Run `sql` ($1 the item ids, $2 owner, and $3 lease_ms when lease_ms is not NULL) on items held by owner;
 * *res_out gets the RETURNING id rows. The statement of release and renew.
 */
static enum core_status held_items(struct store *db, const char *sql, const char *owner, const int64_t *item_ids, int n,
                                   const int *lease_ms, PGresult **res_out)
{
	struct store_params p = {0};
	struct buf arr = {0};
	store_param_i64_array(&p, item_ids, (size_t)n, &arr);
	store_param_str(&p, owner);
	if (lease_ms)
		store_param_i64(&p, *lease_ms);
	enum core_status st = store_run1(db, sql, &p, res_out);
	buf_free(&arr);
	return st;
}

enum core_status jobs_release(struct store *db, const char *owner, const int64_t *item_ids, int n, int *n_out)
{
	PGresult *r = NULL;

	if (n_out)
		*n_out = 0;
	if (n <= 0)
		return CORE_OK;
	enum core_status st =
	    held_items(db,
	               "WITH lk AS (" HELD_IN_ORDER ")"
	               " UPDATE job_items i SET state = 'pending', lease_owner = NULL, lease_until = NULL,"
	               "   not_before = now(), attempts = greatest(i.attempts - 1, 0)"
	               " FROM lk WHERE i.id = lk.id AND i.lease_owner = $2 AND i.state = 'running'"
	               " RETURNING i.id, pg_notify('" JOBS_CHANNEL "', '')",
	               owner, item_ids, n, NULL, &r);
	if (st == CORE_OK && n_out)
		*n_out = PQntuples(r);
	PQclear(r);
	return st;
}

enum core_status jobs_renew(struct store *db, const char *owner, const int64_t *item_ids, int n, int lease_ms,
                            bool *held_out)
{
	PGresult *r = NULL;

	if (n <= 0)
		return CORE_OK;
	enum core_status st =
	    held_items(db,
	               "WITH lk AS (" HELD_IN_ORDER ")"
	               " UPDATE job_items i SET lease_until = now() + $3::int * interval '1 millisecond',"
	               "   not_before = now() + $3::int * interval '1 millisecond'"
	               " FROM lk WHERE i.id = lk.id AND i.lease_owner = $2 AND i.state = 'running'"
	               " RETURNING i.id",
	               owner, item_ids, n, &lease_ms, &r);
	for (int i = 0; st == CORE_OK && held_out && i < n; i++) {
		held_out[i] = false;
		for (int k = 0; k < PQntuples(r); k++)
			if (store_i64(r, k, "id", 0) == item_ids[i])
				held_out[i] = true;
	}
	PQclear(r);
	return st;
}

enum core_status jobs_next_due_ms(struct store *db, const char *const *kinds, int n_kinds, long *ms_out,
                                  bool *found_out)
{
	struct store_params p = {0};
	struct buf lit = {0};
	PGresult *r = NULL;
	enum core_status st = CORE_EINVAL;

	*ms_out = 0;
	*found_out = false;
	if (!kinds_literal(kinds, n_kinds, &lit))
		goto out;
	store_param_str(&p, buf_str(&lit));
	st = store_run1(db,
	                "SELECT ceil(extract(epoch FROM min(not_before) - now()) * 1000)::bigint AS ms"
	                " FROM job_items WHERE state IN ('pending', 'running') AND kind = ANY($1::text[])",
	                &p, &r);
	if (st == CORE_OK && store_str(r, 0, "ms")) {
		int64_t ms = store_i64(r, 0, "ms", 0);
		*found_out = true;
		*ms_out = ms > 0 ? (long)ms : 0;
	}
out:
	buf_free(&lit);
	PQclear(r);
	return st;
}
