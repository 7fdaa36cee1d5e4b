/*
 * core/jobs.c
 *    Job queue in PostgreSQL (claims with FOR UPDATE SKIP LOCKED and leases), progress, and the worker pool.
 *    See jobs.h for the design and the guarantees.
 */
#include "jobs.h"

#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOBS_MAX_KINDS   16
#define JOBS_KIND_MAX    32
#define JOBS_MESSAGE_MAX 2000

#define TS(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---------------------------------------------------------------------------------------------------------- */
/* Small helpers */

static void i64_str(char *buf, size_t cap, int64_t v)
{
	snprintf(buf, cap, "%" PRId64, v);
}

static bool kind_valid(const char *kind)
{
	size_t n = kind ? strlen(kind) : 0;
	if (n == 0 || n > JOBS_KIND_MAX || kind[0] < 'a' || kind[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = kind[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

static const char *outcome_result(enum job_outcome o)
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
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, msg, n);
		s[n] = '\0';
	}
	return s;
}

void jobs_result_message(struct job_item_result *res, const char *fmt, ...)
{
	char buf[JOBS_MESSAGE_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(res->message);
	res->message = message_dup(buf);
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

/* Parse JSON text from the database (trusted); NULL for NULL or unparsable text. */
static struct json_object *db_json(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Creating jobs */

static enum core_status create_job_row(struct store_conn *c, const char *kind, const char *created_by,
                                       const char *params_json, int64_t *job_id_out)
{
	enum core_status st = CORE_EINVAL;
	PGresult *r = NULL;

	if (!kind_valid(kind) || !created_by || !*created_by)
		goto out;
	const char *p[] = {kind, created_by, params_json && *params_json ? params_json : "{}"};
	st = store_exec(c, "INSERT INTO jobs (kind, created_by, params) VALUES ($1, $2, $3::jsonb) RETURNING id", 3, p,
	                &r);
	if (st != CORE_OK)
		goto out;
	*job_id_out = store_i64(r, 0, "id", 0);
	st = *job_id_out > 0 ? CORE_OK : CORE_EINTERNAL;
out:
	PQclear(r);
	return st;
}

/* Set total from the inserted items (and finish an empty job at once). */
#define SET_TOTAL_TAIL                                                                                                 \
	" UPDATE jobs SET total = t.n, state = CASE WHEN t.n = 0 THEN 'done' ELSE state END,"                          \
	"   finished_at = CASE WHEN t.n = 0 THEN now() END"                                                            \
	" FROM (SELECT count(*)::int AS n FROM ins) t WHERE jobs.id = $1"

enum core_status jobs_create_in_tx(struct store_conn *c, const char *kind, const char *created_by,
                                   const char *params_json, const int64_t *repo_ids, size_t n, int64_t *job_id_out)
{
	enum core_status st;
	char *arr = NULL;
	char id[24];
	int64_t job_id = 0;

	*job_id_out = 0;
	st = CORE_EINVAL;
	if (n > 0 && !repo_ids)
		goto out;
	st = create_job_row(c, kind, created_by, params_json, &job_id);
	if (st != CORE_OK)
		goto out;
	st = CORE_ENOMEM;
	arr = store_int64_array(repo_ids, n);
	if (!arr)
		goto out;
	i64_str(id, sizeof(id), job_id);
	const char *p[] = {id, kind, arr};
	st = store_exec(c,
	                "WITH ins AS ("
	                " INSERT INTO job_items (job_id, kind, repo_id)"
	                " SELECT $1, $2, u.r FROM unnest($3::bigint[]) WITH ORDINALITY AS u(r, o)"
	                " GROUP BY u.r ORDER BY min(u.o)"
	                " RETURNING 1)" SET_TOTAL_TAIL,
	                3, p, NULL);
	if (st != CORE_OK)
		goto out;
	*job_id_out = job_id;
out:
	free(arr);
	return st;
}

enum core_status jobs_create_items_in_tx(struct store_conn *c, const char *kind, const char *created_by,
                                         const char *params_json, const char *items_json, int64_t *job_id_out)
{
	enum core_status st;
	char id[24];
	int64_t job_id = 0;

	*job_id_out = 0;
	st = create_job_row(c, kind, created_by, params_json, &job_id);
	if (st != CORE_OK)
		goto out;
	i64_str(id, sizeof(id), job_id);
	const char *p[] = {id, kind, items_json ? items_json : "[]"};
	st = store_exec(c,
	                "WITH ins AS ("
	                " INSERT INTO job_items (job_id, kind, repo_id, payload)"
	                " SELECT $1, $2, (a.e->>'repo_id')::bigint, nullif(a.e->'payload', 'null'::jsonb)"
	                " FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS a(e, o) ORDER BY a.o"
	                " RETURNING 1)" SET_TOTAL_TAIL,
	                3, p, NULL);
	if (st != CORE_OK)
		goto out;
	*job_id_out = job_id;
out:
	return st;
}

enum core_status jobs_create(struct store *db, const char *kind, const char *created_by, const char *params_json,
                             const int64_t *repo_ids, size_t n, int64_t *job_id_out)
{
	struct store_conn *c = NULL;
	enum core_status st;

	*job_id_out = 0;
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	st = store_begin(c);
	if (st != CORE_OK)
		goto out;
	st = jobs_create_in_tx(c, kind, created_by, params_json, repo_ids, n, job_id_out);
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

/* ---------------------------------------------------------------------------------------------------------- */
/* Reading jobs */

#define JOB_COLUMNS                                                                                                    \
	" j.id, j.kind, j.state, j.created_by, " TS("j.created_at") " AS created_at, " TS(                             \
	    "j.started_at") " AS started_at, " TS("j.finished_at") " AS finished_at, j.total, j.done, j.changed, "     \
	                                                           "j.unchanged,"                                      \
	                                                           " j.skipped, j.failed,"                             \
	                                                           " (SELECT count(*) FROM job_items i WHERE "         \
	                                                           "i.job_id = j.id AND i.state = 'running') AS "      \
	                                                           "running"

static struct json_object *job_json(const PGresult *r, int row, bool with_params)
{
	struct json_object *o = json_object_new_object();
	int64_t total = store_i64(r, row, "total", 0), done = store_i64(r, row, "done", 0);
	int64_t running = store_i64(r, row, "running", 0), failed = store_i64(r, row, "failed", 0);
	const char *state = store_str(r, row, "state");
	bool finished =
	    state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "canceled") == 0);
	int64_t pending = total - done - running;

	json_object_object_add(o, "id", json_object_new_int64(store_i64(r, row, "id", 0)));
	add_str(o, "kind", store_str(r, row, "kind"));
	add_str(o, "state", state);
	add_str(o, "created_by", store_str(r, row, "created_by"));
	add_str(o, "created_at", store_str(r, row, "created_at"));
	add_str(o, "started_at", store_str(r, row, "started_at"));
	add_str(o, "finished_at", store_str(r, row, "finished_at"));
	if (with_params) {
		struct json_object *params = db_json(store_str(r, row, "params"));
		json_object_object_add(o, "params", params ? params : json_object_new_object());
	}
	json_object_object_add(o, "total", json_object_new_int64(total));
	json_object_object_add(o, "done", json_object_new_int64(done));
	json_object_object_add(o, "pending", json_object_new_int64(pending > 0 ? pending : 0));
	json_object_object_add(o, "running", json_object_new_int64(running));
	json_object_object_add(o, "changed", json_object_new_int64(store_i64(r, row, "changed", 0)));
	json_object_object_add(o, "unchanged", json_object_new_int64(store_i64(r, row, "unchanged", 0)));
	json_object_object_add(o, "skipped", json_object_new_int64(store_i64(r, row, "skipped", 0)));
	json_object_object_add(o, "failed", json_object_new_int64(failed));
	json_object_object_add(o, "percent", json_object_new_int(total > 0 ? (int)(done * 100 / total) : 100));
	json_object_object_add(o, "finished", json_object_new_boolean(finished));
	json_object_object_add(o, "succeeded",
	                       json_object_new_boolean(finished && state && strcmp(state, "done") == 0 && failed == 0));
	return o;
}

enum core_status jobs_get(struct store *db, int64_t job_id, struct json_object **out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st;
	char id[24];

	*out = NULL;
	i64_str(id, sizeof(id), job_id);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {id};
	st = store_exec(c, "SELECT" JOB_COLUMNS ", j.params::text AS params FROM jobs j WHERE j.id = $1", 1, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = CORE_ENOTFOUND;
		goto out;
	}
	*out = job_json(r, 0, true);
	st = *out ? CORE_OK : CORE_ENOMEM;
out:
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status jobs_list(struct store *db, int limit, int64_t before_id, struct json_object **out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct json_object *o = NULL, *arr = NULL;
	enum core_status st;
	char before[24], lim[16];

	*out = NULL;
	if (limit <= 0)
		limit = 50;
	if (limit > 501)
		limit = 501; /* the API's largest page (500) and one more row that says whether a next page exists */
	i64_str(before, sizeof(before), before_id > 0 ? before_id : 0);
	snprintf(lim, sizeof(lim), "%d", limit);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {before, lim};
	st = store_exec(c,
	                "SELECT" JOB_COLUMNS " FROM jobs j WHERE ($1::bigint = 0 OR j.id < $1::bigint)"
	                " AND j.kind <> 'hold' ORDER BY j.id DESC LIMIT $2::int",
	                2, p, &r);
	if (st != CORE_OK)
		goto out;
	st = CORE_ENOMEM;
	o = json_object_new_object();
	arr = json_object_new_array();
	if (!o || !arr)
		goto out;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++)
		json_object_array_add(arr, job_json(r, i, false));
	json_object_object_add(o, "items", arr);
	arr = NULL;
	json_object_object_add(o, "next_before",
	                       n == limit ? json_object_new_int64(store_i64(r, n - 1, "id", 0)) : NULL);
	*out = o;
	o = NULL;
	st = CORE_OK;
out:
	json_object_put(arr);
	json_object_put(o);
	PQclear(r);
	store_put(db, c);
	return st;
}

static bool in_list(const char *s, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

enum core_status jobs_items(struct store *db, int64_t job_id, const char *filter, int64_t after_id, int limit,
                            struct json_object **out)
{
	static const char *const states[] = {"pending", "running", "done", "failed", NULL};
	static const char *const results[] = {"changed", "unchanged", "skipped", "error", NULL};
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct json_object *o = NULL, *arr = NULL;
	enum core_status st = CORE_EINVAL;
	const char *state = NULL, *result = NULL;
	char id[24], after[24], lim[16];

	*out = NULL;
	if (filter && *filter) {
		if (in_list(filter, states))
			state = filter;
		else if (in_list(filter, results))
			result = filter;
		else
			goto out;
	}
	if (limit <= 0)
		limit = 100;
	if (limit > 1001)
		limit = 1001; /* the API's largest page (1000) and one more row */
	i64_str(id, sizeof(id), job_id);
	i64_str(after, sizeof(after), after_id > 0 ? after_id : 0);
	snprintf(lim, sizeof(lim), "%d", limit);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p1[] = {id};
	st = store_exec(c, "SELECT 1 FROM jobs WHERE id = $1", 1, p1, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = CORE_ENOTFOUND;
		goto out;
	}
	PQclear(r);
	r = NULL;
	const char *p[] = {id, after, state, result, lim};
	st = store_exec(
	    c,
	    "SELECT i.id, i.repo_id, rp.path_with_namespace, i.state, i.result, i.message,"
	    " i.details::text AS details, i.attempts, " TS("i.started_at") " AS started_at, " TS(
	        "i.finished_at") " AS finished_at"
	                         " FROM job_items i LEFT JOIN repos rp ON rp.id = i.repo_id"
	                         " WHERE i.job_id = $1 AND i.id > $2::bigint"
	                         "   AND ($3::text IS NULL OR i.state = $3) AND ($4::text IS NULL OR i.result = $4)"
	                         " ORDER BY i.id LIMIT $5::int",
	    5, p, &r);
	if (st != CORE_OK)
		goto out;
	st = CORE_ENOMEM;
	o = json_object_new_object();
	arr = json_object_new_array();
	if (!o || !arr)
		goto out;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		struct json_object *it = json_object_new_object();
		json_object_object_add(it, "id", json_object_new_int64(store_i64(r, i, "id", 0)));
		json_object_object_add(it, "repo_id",
		                       store_str(r, i, "repo_id") ? json_object_new_int64(store_i64(r, i, "repo_id", 0))
		                                                  : NULL);
		add_str(it, "path_with_namespace", store_str(r, i, "path_with_namespace"));
		add_str(it, "state", store_str(r, i, "state"));
		add_str(it, "result", store_str(r, i, "result"));
		add_str(it, "message", store_str(r, i, "message"));
		json_object_object_add(it, "details", db_json(store_str(r, i, "details")));
		json_object_object_add(it, "attempts", json_object_new_int64(store_i64(r, i, "attempts", 0)));
		add_str(it, "started_at", store_str(r, i, "started_at"));
		add_str(it, "finished_at", store_str(r, i, "finished_at"));
		json_object_array_add(arr, it);
	}
	json_object_object_add(o, "items", arr);
	arr = NULL;
	json_object_object_add(o, "next_after",
	                       n == limit ? json_object_new_int64(store_i64(r, n - 1, "id", 0)) : NULL);
	*out = o;
	o = NULL;
	st = CORE_OK;
out:
	json_object_put(arr);
	json_object_put(o);
	PQclear(r);
	store_put(db, c);
	return st;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Retry and cancel */

enum core_status jobs_retry_failed(struct store *db, int64_t job_id, int64_t *n_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st;
	char id[24];

	if (n_out)
		*n_out = 0;
	i64_str(id, sizeof(id), job_id);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {id};
	/* items first, then the job row: the lock order of every statement here */
	st = store_exec(c,
	                "WITH rs AS ("
	                " UPDATE job_items SET state = 'pending', result = NULL, message = NULL, details = NULL,"
	                "   attempts = 0, not_before = now(), lease_owner = NULL, lease_until = NULL,"
	                "   started_at = NULL, finished_at = NULL"
	                " WHERE job_id = $1 AND state = 'failed' RETURNING 1),"
	                " t AS (SELECT count(*)::int AS n FROM rs)"
	                " UPDATE jobs SET done = done - t.n, failed = failed - t.n,"
	                "   state = CASE WHEN t.n > 0 THEN 'running' ELSE state END,"
	                "   finished_at = CASE WHEN t.n > 0 THEN NULL ELSE finished_at END"
	                " FROM t WHERE jobs.id = $1 RETURNING t.n",
	                1, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = CORE_ENOTFOUND;
		goto out;
	}
	int64_t n = store_i64(r, 0, "n", 0);
	if (n_out)
		*n_out = n;
	if (n > 0)
		log_info("job %" PRId64 ": %" PRId64 " failed items queued again", job_id, n);
out:
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status jobs_cancel(struct store *db, int64_t job_id)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st;
	char id[24];

	i64_str(id, sizeof(id), job_id);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {id};
	st = store_exec(c,
	                "WITH sk AS ("
	                " UPDATE job_items SET state = 'done', result = 'skipped', message = 'canceled',"
	                "   finished_at = now(), lease_until = NULL"
	                " WHERE job_id = $1 AND (state = 'pending' OR (state = 'running' AND lease_until < now()))"
	                "   AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))"
	                " RETURNING 1),"
	                " t AS (SELECT count(*)::int AS n FROM sk)"
	                " UPDATE jobs SET done = done + t.n, skipped = skipped + t.n, state = 'canceled',"
	                "   finished_at = now()"
	                " FROM t WHERE jobs.id = $1 AND jobs.state IN ('queued', 'running') RETURNING t.n",
	                1, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 1) {
		log_info("job %" PRId64 " canceled (%" PRId64 " items skipped)", job_id, store_i64(r, 0, "n", 0));
		goto out;
	}
	PQclear(r);
	r = NULL;
	st = store_exec(c, "SELECT state FROM jobs WHERE id = $1", 1, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	else if (strcmp(store_str(r, 0, "state"), "canceled") != 0)
		st = CORE_ESTATE;
out:
	PQclear(r);
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

enum core_status jobs_claim(struct store *db, const char *owner, const char *const *kinds, int n_kinds, int max,
                            int lease_ms, struct job_item **items_out, int *n_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct job_item *items = NULL;
	enum core_status st = CORE_EINVAL;
	char kinds_lit[JOBS_MAX_KINDS * (JOBS_KIND_MAX + 1) + 3], lease[16], lim[16];
	size_t len = 0;
	int n = 0;

	*items_out = NULL;
	*n_out = 0;
	if (!owner || !*owner || n_kinds < 1 || n_kinds > JOBS_MAX_KINDS || max < 1 || lease_ms < 1)
		goto out;
	kinds_lit[len++] = '{';
	for (int i = 0; i < n_kinds; i++) {
		if (!kind_valid(kinds[i]))
			goto out;
		len += (size_t)snprintf(kinds_lit + len, sizeof(kinds_lit) - len, i ? ",%s" : "%s", kinds[i]);
	}
	kinds_lit[len++] = '}';
	kinds_lit[len] = '\0';
	snprintf(lease, sizeof(lease), "%d", lease_ms);
	snprintf(lim, sizeof(lim), "%d", max);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {owner, lease, kinds_lit, lim};
	st = store_exec(c,
	                "WITH cand AS ("
	                " SELECT id, state AS prev_state FROM job_items"
	                " WHERE state IN ('pending', 'running') AND not_before <= now() AND kind = ANY($3::text[])"
	                " ORDER BY not_before, id LIMIT $4::int FOR UPDATE SKIP LOCKED),"
	                " cl AS ("
	                " UPDATE job_items i SET state = 'running', lease_owner = $1,"
	                "   lease_until = now() + $2::int * interval '1 millisecond',"
	                "   not_before = now() + $2::int * interval '1 millisecond',"
	                "   attempts = i.attempts + 1, started_at = now()"
	                " FROM cand WHERE i.id = cand.id"
	                " RETURNING i.id, i.job_id, i.kind, i.repo_id, i.payload, i.attempts, cand.prev_state),"
	                " st AS ("
	                " UPDATE jobs SET state = 'running', started_at = coalesce(started_at, now())"
	                " WHERE id IN (SELECT job_id FROM cl) AND state = 'queued' RETURNING id)"
	                " SELECT cl.id, cl.job_id, cl.kind, cl.repo_id, cl.payload::text AS payload, cl.attempts,"
	                "   cl.prev_state, j.params::text AS params, j.created_by"
	                " FROM cl JOIN jobs j ON j.id = cl.job_id ORDER BY cl.id",
	                4, p, &r);
	if (st != CORE_OK)
		goto out;
	n = PQntuples(r);
	if (n == 0)
		goto out;
	st = CORE_ENOMEM;
	items = calloc((size_t)n, sizeof(*items));
	if (!items)
		goto out;
	for (int i = 0; i < n; i++) {
		struct job_item *it = &items[i];
		it->id = store_i64(r, i, "id", 0);
		it->job_id = store_i64(r, i, "job_id", 0);
		it->kind = strdup(store_str(r, i, "kind") ? store_str(r, i, "kind") : "");
		it->has_repo = store_str(r, i, "repo_id") != NULL;
		it->repo_id = store_i64(r, i, "repo_id", 0);
		it->payload = db_json(store_str(r, i, "payload"));
		it->params = db_json(store_str(r, i, "params"));
		if (!it->params)
			it->params = json_object_new_object();
		it->created_by = strdup(store_str(r, i, "created_by") ? store_str(r, i, "created_by") : "");
		it->attempt = (int)store_i64(r, i, "attempts", 1);
		it->takeover = store_str(r, i, "prev_state") && strcmp(store_str(r, i, "prev_state"), "running") == 0;
		if (!it->kind || !it->created_by || !it->params) {
			/* the claim is committed: hand the items back before failing */
			int64_t *ids = calloc((size_t)n, sizeof(*ids));
			for (int k = 0; ids && k < n; k++)
				ids[k] = store_i64(r, k, "id", 0);
			store_put(db, c);
			c = NULL;
			if (ids)
				jobs_release(db, owner, ids, n, NULL);
			free(ids);
			goto out;
		}
	}
	*items_out = items;
	*n_out = n;
	items = NULL;
	st = CORE_OK;
out:
	jobs_items_free(items, n);
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status jobs_finish(struct store *db, const char *owner, int64_t item_id, enum job_outcome outcome,
                             const char *message, const char *details_json, bool *job_finished_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = CORE_EINVAL;
	const char *result = outcome_result(outcome);
	char id[24];
	char *msg = NULL;

	if (job_finished_out)
		*job_finished_out = false;
	if (!result || !owner)
		goto out;
	st = CORE_ENOMEM;
	msg = message_dup(message);
	if (message && !msg)
		goto out;
	i64_str(id, sizeof(id), item_id);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {id, owner, strcmp(result, "error") == 0 ? "failed" : "done", result, msg, details_json};
	st =
	    store_exec(c,
	               "WITH it AS ("
	               " UPDATE job_items SET state = $3, result = $4, message = $5, details = $6::jsonb,"
	               "   finished_at = now(), lease_until = NULL"
	               " WHERE id = $1 AND lease_owner = $2 AND state = 'running'"
	               " RETURNING job_id, result)"
	               " UPDATE jobs j SET done = j.done + 1,"
	               "   changed = j.changed + (it.result = 'changed')::int,"
	               "   unchanged = j.unchanged + (it.result = 'unchanged')::int,"
	               "   skipped = j.skipped + (it.result = 'skipped')::int,"
	               "   failed = j.failed + (it.result = 'error')::int,"
	               "   state = CASE WHEN j.state IN ('queued', 'running') AND j.done + 1 >= j.total"
	               "                THEN 'done' ELSE j.state END,"
	               "   finished_at = CASE WHEN j.state IN ('queued', 'running') AND j.done + 1 >= j.total"
	               "                THEN now() ELSE j.finished_at END"
	               " FROM it WHERE j.id = it.job_id"
	               " RETURNING j.id, j.kind, j.state, j.total, j.done, j.changed, j.unchanged, j.skipped, j.failed",
	               6, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = CORE_ECONFLICT; /* the lease was taken over: someone else owns the item now */
		goto out;
	}
	if (store_i64(r, 0, "done", 0) == store_i64(r, 0, "total", -1)) {
		if (job_finished_out)
			*job_finished_out = true;
		log_info("job %" PRId64 " (%s) %s: %" PRId64 " items, %" PRId64 " changed, %" PRId64
		         " unchanged, %" PRId64 " skipped, %" PRId64 " failed",
		         store_i64(r, 0, "id", 0), store_str(r, 0, "kind"), store_str(r, 0, "state"),
		         store_i64(r, 0, "total", 0), store_i64(r, 0, "changed", 0), store_i64(r, 0, "unchanged", 0),
		         store_i64(r, 0, "skipped", 0), store_i64(r, 0, "failed", 0));
	}
out:
	free(msg);
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status jobs_requeue(struct store *db, const char *owner, int64_t item_id, long delay_ms, const char *message)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = CORE_ENOMEM;
	char id[24], delay[24];
	char *msg = message_dup(message);

	if (message && !msg)
		goto out;
	i64_str(id, sizeof(id), item_id);
	snprintf(delay, sizeof(delay), "%ld", delay_ms > 0 ? delay_ms : 0);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {id, owner, delay, msg};
	st = store_exec(c,
	                "UPDATE job_items SET state = 'pending', lease_owner = NULL, lease_until = NULL,"
	                "   not_before = now() + $3::bigint * interval '1 millisecond', message = $4"
	                " WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING id",
	                4, p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ECONFLICT;
out:
	free(msg);
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status jobs_release(struct store *db, const char *owner, const int64_t *item_ids, int n, int *n_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = CORE_OK;
	char *arr = NULL;

	if (n_out)
		*n_out = 0;
	if (n <= 0)
		goto out;
	st = CORE_ENOMEM;
	arr = store_int64_array(item_ids, (size_t)n);
	if (!arr)
		goto out;
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {arr, owner};
	st = store_exec(c,
	                "UPDATE job_items SET state = 'pending', lease_owner = NULL, lease_until = NULL,"
	                "   not_before = now(), attempts = greatest(attempts - 1, 0)"
	                " WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'running' RETURNING id",
	                2, p, &r);
	if (st == CORE_OK && n_out)
		*n_out = PQntuples(r);
out:
	free(arr);
	PQclear(r);
	store_put(db, c);
	return st;
}

enum core_status jobs_renew(struct store *db, const char *owner, const int64_t *item_ids, int n, int lease_ms,
                            bool *held_out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = CORE_OK;
	char *arr = NULL;
	char lease[16];

	if (n <= 0)
		goto out;
	st = CORE_ENOMEM;
	arr = store_int64_array(item_ids, (size_t)n);
	if (!arr)
		goto out;
	snprintf(lease, sizeof(lease), "%d", lease_ms);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {arr, owner, lease};
	st = store_exec(c,
	                "UPDATE job_items SET lease_until = now() + $3::int * interval '1 millisecond',"
	                "   not_before = now() + $3::int * interval '1 millisecond'"
	                " WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'running' RETURNING id",
	                3, p, &r);
	if (st != CORE_OK || !held_out)
		goto out;
	for (int i = 0; i < n; i++) {
		held_out[i] = false;
		for (int k = 0; k < PQntuples(r); k++)
			if (store_i64(r, k, "id", 0) == item_ids[i])
				held_out[i] = true;
	}
out:
	free(arr);
	PQclear(r);
	store_put(db, c);
	return st;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The runner */

struct handler_entry {
	char kind[JOBS_KIND_MAX + 1];
	enum job_outcome (*fn)(void *user, const struct job_item *item, struct job_item_result *res);
	void *user;
};

struct worker {
	struct jobs_runner *r;
	pthread_t thread;
	bool started;
	/* the worker's current batch, guarded by r->mu: items[next..n) are held (claimed, not yet recorded) */
	struct job_item *items;
	int n;
	int next;
};

struct jobs_runner {
	struct store *db;
	struct jobs_runner_opts o;
	char owner[160];

	pthread_mutex_t mu;
	pthread_cond_t wake;    /* idle workers wait here (CLOCK_MONOTONIC) */
	pthread_cond_t hb_wake; /* the heartbeat waits here */
	unsigned long wake_seq;
	bool stopping;    /* workers: no new claims */
	bool hb_stopping; /* heartbeat: stop */
	bool hb_started;

	struct handler_entry handlers[JOBS_MAX_KINDS];
	int n_handlers;

	struct worker *workers;
	pthread_t hb_thread;

	struct jobs_runner_stats stats;
};

static void stat_add(long long *field, long long by)
{
	__atomic_add_fetch(field, by, __ATOMIC_RELAXED);
}

/* A deadline ms from now on CLOCK_MONOTONIC. */
static struct timespec deadline_in(long ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Sleep up to ms unless woken (wake_seq moved past seen) or stopping. */
static void idle_wait(struct jobs_runner *r, unsigned long seen, long ms)
{
	struct timespec until = deadline_in(ms);
	pthread_mutex_lock(&r->mu);
	while (!r->stopping && r->wake_seq == seen) {
		if (pthread_cond_timedwait(&r->wake, &r->mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&r->mu);
}

static void count_item(const char *kind, const char *result)
{
	char labels[128];
	snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"%s\"", kind, result);
	metrics_inc("mrgate_job_items_total", labels, 1);
}

static void lease_lost(struct jobs_runner *r, const struct job_item *it)
{
	char labels[64];
	stat_add(&r->stats.lease_lost, 1);
	snprintf(labels, sizeof(labels), "kind=\"%s\"", it->kind);
	metrics_inc("mrgate_job_lease_lost_total", labels, 1);
	log_warn("job %" PRId64 " item %" PRId64 ": result not recorded, the lease was taken over by another worker",
	         it->job_id, it->id);
}

/* Record a final outcome; CORE_ECONFLICT (lease lost) is counted and logged here. */
static void record(struct jobs_runner *r, const struct job_item *it, enum job_outcome oc, const char *msg,
                   struct json_object *details)
{
	const char *details_json = details ? json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN) : NULL;
	enum core_status st = jobs_finish(r->db, r->owner, it->id, oc, msg, details_json, NULL);
	if (st == CORE_OK) {
		stat_add(&r->stats.recorded, 1);
		count_item(it->kind, outcome_result(oc));
	} else if (st == CORE_ECONFLICT) {
		lease_lost(r, it);
	} else {
		/* the database is unreachable: the lease will expire and the item will be run again */
		log_error("job %" PRId64 " item %" PRId64 ": could not record the result: %s", it->job_id, it->id,
		          core_status_code(st));
	}
}

static void run_item(struct jobs_runner *r, const struct handler_entry *h, struct job_item *it)
{
	struct job_item_result res = {0};
	enum job_outcome oc;
	char *msg = NULL;

	if (it->attempt > r->o.max_attempts) {
		/* taken over again and again: the handler probably kills or hangs its worker */
		record(
		    r, it, JOB_ITEM_ERROR,
		    "gave up: the item's lease expired on every attempt (its worker stopped or hung while running it)",
		    NULL);
		goto out;
	}
	oc = h->fn(h->user, it, &res);
	if (oc == JOB_ITEM_RETRY) {
		if (it->attempt >= r->o.max_attempts) {
			size_t cap = JOBS_MESSAGE_MAX + 64;
			msg = malloc(cap);
			if (msg)
				snprintf(msg, cap, "gave up after %d attempts: %s", it->attempt,
				         res.message ? res.message : "transient error");
			record(r, it, JOB_ITEM_ERROR, msg ? msg : "gave up after repeated transient errors",
			       res.details);
			goto out;
		}
		long delay =
		    jobs_backoff_ms(it->attempt, r->o.backoff_base_ms, r->o.backoff_max_ms, res.retry_after_ms);
		enum core_status st = jobs_requeue(r->db, r->owner, it->id, delay, res.message);
		if (st == CORE_OK) {
			stat_add(&r->stats.retried, 1);
			count_item(it->kind, "retry");
			log_info("job %" PRId64 " item %" PRId64 ": attempt %d failed, retrying in %ld ms: %s",
			         it->job_id, it->id, it->attempt, delay, res.message ? res.message : "transient error");
		} else if (st == CORE_ECONFLICT) {
			lease_lost(r, it);
		}
		goto out;
	}
	if (!outcome_result(oc)) {
		record(r, it, JOB_ITEM_ERROR, "internal error: the job handler returned an unknown outcome", NULL);
		goto out;
	}
	record(r, it, oc, res.message, res.details);
out:
	free(msg);
	free(res.message);
	json_object_put(res.details);
}

/* The handler of kind, or NULL. Entries never move once registered. */
static const struct handler_entry *find_handler(struct jobs_runner *r, const char *kind)
{
	const struct handler_entry *h = NULL;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n_handlers && !h; i++)
		if (strcmp(r->handlers[i].kind, kind) == 0)
			h = &r->handlers[i];
	pthread_mutex_unlock(&r->mu);
	return h;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct jobs_runner *r = w->r;
	const char *kinds[JOBS_MAX_KINDS];
	long err_wait = r->o.poll_ms;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stopping;
		unsigned long seen = r->wake_seq;
		int nk = r->n_handlers;
		for (int i = 0; i < nk; i++)
			kinds[i] = r->handlers[i].kind;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		if (nk == 0) {
			idle_wait(r, seen, r->o.poll_ms);
			continue;
		}

		struct job_item *items = NULL;
		int n = 0;
		enum core_status st =
		    jobs_claim(r->db, r->owner, kinds, nk, r->o.claim_batch, r->o.lease_ms, &items, &n);
		if (st != CORE_OK) {
			/* the database is away: back off up to 5 s, the claim will work again once it is back */
			idle_wait(r, seen, err_wait);
			err_wait = err_wait * 2 > 5000 ? 5000 : err_wait * 2;
			continue;
		}
		err_wait = r->o.poll_ms;
		if (n == 0) {
			idle_wait(r, seen, r->o.poll_ms);
			continue;
		}

		stat_add(&r->stats.claimed, n);
		metrics_inc("mrgate_job_claims_total", NULL, n);
		for (int i = 0; i < n; i++) {
			if (items[i].takeover) {
				char labels[64];
				stat_add(&r->stats.takeovers, 1);
				snprintf(labels, sizeof(labels), "kind=\"%s\"", items[i].kind);
				metrics_inc("mrgate_job_lease_takeovers_total", labels, 1);
				log_warn("job %" PRId64 " item %" PRId64
				         ": taken over after its lease expired (attempt %d)",
				         items[i].job_id, items[i].id, items[i].attempt);
			}
		}
		/* a full batch suggests more work: let an idle sibling look now */
		if (n == r->o.claim_batch) {
			pthread_mutex_lock(&r->mu);
			pthread_cond_signal(&r->wake);
			pthread_mutex_unlock(&r->mu);
		}

		pthread_mutex_lock(&r->mu);
		w->items = items;
		w->n = n;
		w->next = 0;
		pthread_mutex_unlock(&r->mu);

		int i = 0;
		for (; i < n; i++) {
			pthread_mutex_lock(&r->mu);
			stop = r->stopping;
			pthread_mutex_unlock(&r->mu);
			if (stop)
				break;
			const struct handler_entry *h = find_handler(r, items[i].kind);
			if (h)
				run_item(r, h, &items[i]);
			else
				record(r, &items[i], JOB_ITEM_ERROR, "internal error: no handler for this job kind",
				       NULL);
			pthread_mutex_lock(&r->mu);
			w->next = i + 1;
			pthread_mutex_unlock(&r->mu);
		}
		if (i < n) {
			/* stopping: hand back what was claimed but not started */
			int64_t *ids = calloc((size_t)(n - i), sizeof(*ids));
			int released = 0;
			for (int k = i; ids && k < n; k++)
				ids[k - i] = items[k].id;
			/* without memory the leases simply expire and the items are taken over */
			if (ids && jobs_release(r->db, r->owner, ids, n - i, &released) == CORE_OK)
				stat_add(&r->stats.released, released);
			free(ids);
		}
		pthread_mutex_lock(&r->mu);
		w->items = NULL;
		w->n = w->next = 0;
		pthread_mutex_unlock(&r->mu);
		jobs_items_free(items, n);
	}
	return NULL;
}

static void *heartbeat_main(void *arg)
{
	struct jobs_runner *r = arg;
	long every = r->o.lease_ms / 3 > 0 ? r->o.lease_ms / 3 : 1;
	int cap = r->o.workers * r->o.claim_batch;
	int64_t *ids = calloc((size_t)cap, sizeof(*ids));
	bool *held = calloc((size_t)cap, sizeof(*held));

	if (!ids || !held) {
		log_error("job heartbeat: out of memory; leases will not be renewed");
		goto out;
	}
	for (;;) {
		struct timespec until = deadline_in(every);
		int n = 0;
		pthread_mutex_lock(&r->mu);
		while (!r->hb_stopping) {
			if (pthread_cond_timedwait(&r->hb_wake, &r->mu, &until) == ETIMEDOUT)
				break;
		}
		if (r->hb_stopping) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		for (int w = 0; w < r->o.workers; w++)
			for (int k = r->workers[w].next; k < r->workers[w].n && n < cap; k++)
				ids[n++] = r->workers[w].items[k].id;
		pthread_mutex_unlock(&r->mu);
		if (n == 0)
			continue;
		if (jobs_renew(r->db, r->owner, ids, n, r->o.lease_ms, held) != CORE_OK)
			continue; /* try again next beat; the lease may run out meanwhile */
		pthread_mutex_lock(&r->mu);
		for (int i = 0; i < n; i++) {
			if (held[i])
				continue;
			/* flag the item if it is still held by a worker (it may have finished meanwhile) */
			for (int w = 0; w < r->o.workers; w++)
				for (int k = r->workers[w].next; k < r->workers[w].n; k++)
					if (r->workers[w].items[k].id == ids[i])
						__atomic_store_n(&r->workers[w].items[k].lost_, 1, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&r->mu);
	}
out:
	free(ids);
	free(held);
	return NULL;
}

static void make_owner(char *buf, size_t cap)
{
	char host[65] = "";
	unsigned char rnd[4];
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(buf, cap, "%s:%ld:%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
}

static void describe_metrics(void)
{
	metrics_describe("mrgate_job_items_total", "counter",
	                 "Job items processed, by job kind and result (changed, unchanged, skipped, error, retry)");
	metrics_describe("mrgate_job_claims_total", "counter", "Job items claimed by this instance's workers");
	metrics_describe("mrgate_job_lease_takeovers_total", "counter",
	                 "Job items claimed after another worker's lease expired, by job kind");
	metrics_describe("mrgate_job_lease_lost_total", "counter",
	                 "Job item results not recorded because the lease had been taken over, by job kind");
}

static void stop_heartbeat(struct jobs_runner *r)
{
	pthread_mutex_lock(&r->mu);
	bool join = r->hb_started;
	r->hb_started = false;
	r->hb_stopping = true;
	pthread_cond_broadcast(&r->hb_wake);
	pthread_mutex_unlock(&r->mu);
	if (join)
		pthread_join(r->hb_thread, NULL);
}

void jobs_runner_test_stop_heartbeat(struct jobs_runner *r)
{
	stop_heartbeat(r);
}

struct jobs_runner *jobs_runner_start(struct store *db, const struct jobs_runner_opts *o)
{
	struct jobs_runner *r = NULL;
	pthread_condattr_t ca;
	bool ok = false, ca_ok = false, mu_ok = false, wake_ok = false, hb_ok = false;

	if (!db || sodium_init() < 0)
		goto out;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out;
	r->db = db;
	if (o)
		r->o = *o;
	r->o.owner = NULL;
	if (r->o.workers <= 0)
		r->o.workers = 4;
	if (r->o.lease_ms <= 0)
		r->o.lease_ms = 60000;
	if (r->o.poll_ms <= 0)
		r->o.poll_ms = 200;
	if (r->o.claim_batch <= 0)
		r->o.claim_batch = 1;
	if (r->o.max_attempts <= 0)
		r->o.max_attempts = 5;
	if (r->o.backoff_base_ms <= 0)
		r->o.backoff_base_ms = 1000;
	if (r->o.backoff_max_ms <= 0)
		r->o.backoff_max_ms = 300000;
	if (o && o->owner && *o->owner)
		snprintf(r->owner, sizeof(r->owner), "%s", o->owner);
	else
		make_owner(r->owner, sizeof(r->owner));

	if (pthread_mutex_init(&r->mu, NULL) != 0)
		goto out;
	mu_ok = true;
	if (pthread_condattr_init(&ca) != 0)
		goto out;
	ca_ok = true;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 || pthread_cond_init(&r->wake, &ca) != 0)
		goto out;
	wake_ok = true;
	if (pthread_cond_init(&r->hb_wake, &ca) != 0)
		goto out;
	hb_ok = true;
	r->workers = calloc((size_t)r->o.workers, sizeof(*r->workers));
	if (!r->workers)
		goto out;
	describe_metrics();

	if (pthread_create(&r->hb_thread, NULL, heartbeat_main, r) != 0)
		goto out;
	r->hb_started = true;
	for (int i = 0; i < r->o.workers; i++) {
		r->workers[i].r = r;
		if (pthread_create(&r->workers[i].thread, NULL, worker_main, &r->workers[i]) != 0)
			goto out;
		r->workers[i].started = true;
	}
	log_info("job runner %s started: %d workers, lease %d ms", r->owner, r->o.workers, r->o.lease_ms);
	ok = true;
out:
	if (ca_ok)
		pthread_condattr_destroy(&ca);
	if (!ok && r) {
		if (mu_ok && wake_ok && hb_ok && r->workers) {
			jobs_runner_stop(r); /* joins whatever was started and frees */
		} else {
			if (hb_ok)
				pthread_cond_destroy(&r->hb_wake);
			if (wake_ok)
				pthread_cond_destroy(&r->wake);
			if (mu_ok)
				pthread_mutex_destroy(&r->mu);
			free(r->workers);
			free(r);
		}
		r = NULL;
	}
	return r;
}

enum core_status jobs_register(struct jobs_runner *r, const char *kind,
                               enum job_outcome (*handler)(void *user, const struct job_item *item,
                                                           struct job_item_result *res),
                               void *user)
{
	enum core_status st = CORE_EINVAL;

	if (!r || !handler || !kind_valid(kind))
		goto out;
	pthread_mutex_lock(&r->mu);
	st = CORE_OK;
	for (int i = 0; i < r->n_handlers; i++)
		if (strcmp(r->handlers[i].kind, kind) == 0)
			st = CORE_ECONFLICT;
	if (st == CORE_OK && r->n_handlers >= JOBS_MAX_KINDS)
		st = CORE_ETOOLARGE;
	if (st == CORE_OK) {
		struct handler_entry *h = &r->handlers[r->n_handlers];
		snprintf(h->kind, sizeof(h->kind), "%s", kind);
		h->fn = handler;
		h->user = user;
		r->n_handlers++;
		r->wake_seq++;
		pthread_cond_broadcast(&r->wake);
	}
	pthread_mutex_unlock(&r->mu);
out:
	return st;
}

void jobs_runner_wake(struct jobs_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->wake_seq++;
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->mu);
}

const char *jobs_runner_owner(const struct jobs_runner *r)
{
	return r->owner;
}

void jobs_runner_stats(struct jobs_runner *r, struct jobs_runner_stats *out)
{
	out->claimed = __atomic_load_n(&r->stats.claimed, __ATOMIC_RELAXED);
	out->takeovers = __atomic_load_n(&r->stats.takeovers, __ATOMIC_RELAXED);
	out->recorded = __atomic_load_n(&r->stats.recorded, __ATOMIC_RELAXED);
	out->retried = __atomic_load_n(&r->stats.retried, __ATOMIC_RELAXED);
	out->lease_lost = __atomic_load_n(&r->stats.lease_lost, __ATOMIC_RELAXED);
	out->released = __atomic_load_n(&r->stats.released, __ATOMIC_RELAXED);
}

void jobs_runner_stop(struct jobs_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	r->wake_seq++;
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->o.workers; i++)
		if (r->workers[i].started)
			pthread_join(r->workers[i].thread, NULL);
	/* the heartbeat outlives the workers, so items finishing during the stop keep their leases */
	stop_heartbeat(r);
	log_info("job runner %s stopped", r->owner);
	pthread_cond_destroy(&r->hb_wake);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->mu);
	free(r->workers);
	free(r);
}
