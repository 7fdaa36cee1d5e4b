/*
 * server/handlers_jobs.c
 *    Jobs: list, progress with items, retry of failed items, cancel.
 */
#include "http_json.h"
#include "jobs.h"
#include "routes.h"
#include "xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool job_id(struct req *r, int64_t *id, int *status)
{
	return req_path_id(r, "a job id is a positive integer", id, status);
}

/* The job as it is after a change (retry, cancel), or {} when it cannot be read back: the change is done anyway. */
static struct json_object *job_now(struct req *r, int64_t id)
{
	struct json_object *job = NULL;
	if (jobs_get(r->app->db, id, &job) != CORE_OK)
		job = jx_object();
	return job;
}

int h_jobs_list(struct req *r)
{
	long limit = 50;
	int64_t cursor = 0;
	int status;
	if (!http_query_limit(r->conn, r->ri, "limit", 1, 500, &limit, &status) ||
	    !http_query_cursor(r->conn, r->ri, "cursor", &cursor, &status))
		return status;
	struct json_object *o = NULL;
	enum core_status st = jobs_list(r->app->db, (int)limit, cursor, &o);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not list the jobs");
	return http_send_json(r->conn, 200, o);
}

int h_job_get(struct req *r)
{
	int64_t id;
	int status;
	if (!job_id(r, &id, &status))
		return status;
	long limit = 100;
	int64_t after = 0;
	if (!http_query_limit(r->conn, r->ri, "items_limit", 0, 1000, &limit, &status) ||
	    !http_query_cursor(r->conn, r->ri, "items_cursor", &after, &status))
		return status;
	char filter[16] = "";
	if (!http_query_param(r->ri, "items", filter, sizeof(filter)))
		http_query_param(r->ri, "result", filter, sizeof(filter));
	struct json_object *job = NULL, *items = NULL;
	enum core_status st = jobs_get(r->app->db, id, &job);
	if (st != CORE_OK)
		return http_send_failure(r->conn, st, "could not read the job", "no job with id %lld", (long long)id);
	if (limit > 0) {
		st = jobs_items(r->app->db, id, filter[0] ? filter : NULL, after, (int)limit, &items);
		if (st == CORE_EINVAL) {
			json_object_put(job);
			return http_send_error(
			    r->conn, 400, "invalid_input",
			    "items must be one of pending, running, done, failed, changed, unchanged, "
			    "skipped, error");
		}
		if (st != CORE_OK) {
			json_object_put(job);
			return http_send_status(r->conn, st, "could not read the job's items");
		}
		/* the items as an array, and the cursor of the next page beside it */
		struct json_object *arr = NULL, *next = NULL;
		json_object_object_get_ex(items, "items", &arr);
		json_object_object_get_ex(items, "next_cursor", &next);
		json_object_object_add(job, "items", json_object_get(arr));
		json_object_object_add(job, "items_next_cursor", json_object_get(next));
		json_object_put(items);
	}
	return http_send_json(r->conn, 200, job);
}

int h_job_retry(struct req *r)
{
	int64_t id, n = 0;
	int status;
	if (!job_id(r, &id, &status))
		return status;
	enum core_status st = jobs_retry_failed(r->app->db, id, r->who.actor, &n);
	if (st == CORE_ESTATE)
		return http_send_error(
		    r->conn, 409, "bad_state",
		    "a webhook-mode switch is not retried: an admin switches again from the settings");
	if (st != CORE_OK)
		return http_send_failure(r->conn, st, "could not retry the job", "no job with id %lld", (long long)id);
	if (r->app->apply.jobs)
		jobs_runner_wake(r->app->apply.jobs);
	struct json_object *job = job_now(r, id);
	json_object_object_add(job, "retried", jx_int(n));
	return http_send_json(r->conn, 200, job);
}

int h_job_cancel(struct req *r)
{
	int64_t id;
	int status;
	if (!job_id(r, &id, &status))
		return status;
	enum core_status st = jobs_cancel(r->app->db, id, r->who.actor);
	if (st == CORE_ESTATE)
		return http_send_error(r->conn, 409, "bad_state", "job %lld has already finished", (long long)id);
	if (st == CORE_ECONFLICT)
		return http_send_error(
		    r->conn, 409, "bad_state",
		    "job %lld is a webhook-mode switch, which runs to its end so that no repository is "
		    "left with both kinds of webhook or neither; an admin switches back from the settings",
		    (long long)id);
	if (st == CORE_OK && r->app->apply.jobs)
		applyjob_note_canceled(&r->app->apply, id); /* the items claimed here and not started are skipped */
	if (st != CORE_OK)
		return http_send_failure(r->conn, st, "could not cancel the job", "no job with id %lld", (long long)id);
	return http_send_json(r->conn, 200, job_now(r, id));
}
