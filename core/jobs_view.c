/*
 * core/jobs_view.c
 *    Jobs and their items as JSON (see jobs_view.h).
 */
#include "jobs_view.h"

#include "rows.h"

#include <string.h>

/* The members of a job, in SQL (rows.h types them: counters are integers, finished/succeeded booleans). finished:
 * the job changes nothing more (a canceled job's items in flight have finished or been skipped). */
#define JOB_COLUMNS                                                                                                    \
	" j.id, j.kind, j.state, j.created_by, " STORE_TS("j.created_at") " AS created_at, " STORE_TS(                 \
	    "j.started_at") " AS started_at, " STORE_TS("j.finished_at") " AS finished_at, "
#define JOB_COUNTERS_FROM                                                                                              \
	" j.total, j.done, greatest(j.total - j.done - jr.running, 0) AS pending, jr.running, j.changed, j.unchanged," \
	" j.skipped, j.failed,"                                                                                        \
	" CASE WHEN j.total > 0 THEN (j.done::bigint * 100 / j.total)::int ELSE 100 END AS percent,"                   \
	" (j.state IN ('done', 'failed', 'canceled') AND j.done >= j.total) AS finished,"                              \
	" (j.state = 'done' AND j.failed = 0) AS succeeded"                                                            \
	" FROM jobs j CROSS JOIN LATERAL"                                                                              \
	" (SELECT count(*) AS running FROM job_items i WHERE i.job_id = j.id AND i.state = 'running') jr"

/* The members of an item. */
#define ITEM_COLUMNS                                                                                                   \
	" i.id, i.repo_id, rp.path_with_namespace, i.state, i.result, i.message, i.details, i.attempts_before + "      \
	"i.attempts AS attempts, " STORE_TS("i.started_at") " AS started_at, " STORE_TS(                               \
	    "i.finished_at") " AS finished_at"

static int clamp(int limit, int dflt, int max)
{
	if (limit <= 0)
		return dflt;
	return limit > max ? max : limit;
}

enum core_status jobs_view_get(struct store *db, int64_t job_id, struct json_object **out)
{
	struct store_params p = {0};
	store_param_i64(&p, job_id);
	return rows_query_one(
	    db, "SELECT" JOB_COLUMNS " coalesce(j.params, '{}'::jsonb) AS params," JOB_COUNTERS_FROM " WHERE j.id = $1",
	    &p, out);
}

enum core_status jobs_view_list(struct store *db, int limit, int64_t cursor, struct json_object **out)
{
	struct store_params p = {0};
	*out = NULL;
	limit = clamp(limit, 50, JOBS_VIEW_LIST_MAX);
	store_param_i64_or_null(&p, cursor > 0 ? cursor : 0);
	store_param_i64(&p, limit + 1);
	return rows_query_page(db,
	                       "SELECT" JOB_COLUMNS JOB_COUNTERS_FROM
	                       " WHERE ($1::bigint IS NULL OR j.id < $1) AND j.kind NOT IN ('hold', 'dryrun')"
	                       " ORDER BY j.id DESC LIMIT $2",
	                       &p, limit, "id", out);
}

static bool in_list(const char *s, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

enum core_status jobs_view_items(struct store *db, int64_t job_id, const char *filter, int64_t cursor, int limit,
                                 struct json_object **out)
{
	static const char *const states[] = {"pending", "running", "done", "failed", NULL};
	static const char *const results[] = {"changed", "unchanged", "skipped", "error", NULL};
	struct store_params p = {0};
	PGresult *r = NULL;
	const char *state = NULL, *result = NULL;

	*out = NULL;
	if (filter && *filter) {
		if (in_list(filter, states))
			state = filter;
		else if (in_list(filter, results))
			result = filter;
		else
			return CORE_EINVAL;
	}
	limit = clamp(limit, 100, JOBS_VIEW_ITEMS_MAX);
	store_param_i64(&p, job_id);
	enum core_status st = store_run1(db, "SELECT 1 FROM jobs WHERE id = $1", &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	PQclear(r);
	r = NULL;
	if (st != CORE_OK)
		return st;
	store_param_i64_or_null(&p, cursor > 0 ? cursor : 0);
	store_param_str(&p, state);
	store_param_str(&p, result);
	store_param_i64(&p, limit + 1);
	return rows_query_page(db,
	                       "SELECT" ITEM_COLUMNS " FROM job_items i LEFT JOIN repos rp ON rp.id = i.repo_id"
	                       " WHERE i.job_id = $1 AND ($2::bigint IS NULL OR i.id > $2)"
	                       "   AND ($3::text IS NULL OR i.state = $3) AND ($4::text IS NULL OR i.result = $4)"
	                       " ORDER BY i.id LIMIT $5",
	                       &p, limit, "id", out);
}

enum core_status jobs_view_plan(struct store *db, int64_t job_id, int64_t cursor, int limit, struct json_object **out)
{
	struct store_params p = {0};
	PGresult *r = NULL;

	*out = NULL;
	limit = clamp(limit, 100, JOBS_VIEW_ITEMS_MAX);
	store_param_i64(&p, job_id);
	enum core_status st = store_run1(db, "SELECT kind FROM jobs WHERE id = $1", &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	else if (st == CORE_OK && strcmp(store_str(r, 0, "kind"), "dryrun") != 0)
		st = CORE_ESTATE;
	PQclear(r);
	if (st != CORE_OK)
		return st;
	store_param_i64_or_null(&p, cursor > 0 ? cursor : 0);
	store_param_i64(&p, limit + 1);
	return rows_query_page(db,
	                       "SELECT i.id, i.details::text AS j FROM job_items i"
	                       " WHERE i.job_id = $1 AND ($2::bigint IS NULL OR i.id > $2)"
	                       "   AND i.state IN ('done', 'failed') AND i.details IS NOT NULL"
	                       " ORDER BY i.id LIMIT $3",
	                       &p, limit, "id", out);
}
