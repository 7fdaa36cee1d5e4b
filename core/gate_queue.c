/*
 * core/gate_queue.c
 *    The queue of gate runs: enqueue, claim, renew (see gate_queue.h).
 */
#include "gate_queue.h"

#include "buf.h"
#include "pglisten.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One statement: find a queued run of this head (coalesce) or queue one, supersede the MR's runs on other heads
 * and link the delivery's event to the run. The caller holds the MR's lock (GATE_MR_LOCK_SQL) from an earlier
 * statement, so this statement's snapshot sees the other deliveries' runs. */
enum core_status gate_enqueue(struct store_conn *c, const struct gate_mr_event *ev, int64_t event_id,
                              int64_t *run_id_out, bool *coalesced_out)
{
	PGresult *r = NULL;
	*run_id_out = 0;
	*coalesced_out = false;
	enum core_status st = STORE_RUN(
	    c,
	    STORE_PREPARE
	    "WITH queued AS (SELECT id FROM gate_runs WHERE project_id = $1::bigint AND mr_iid = $3::bigint"
	    "   AND head_sha = $4::text AND state IN ('queued', 'running') ORDER BY id DESC LIMIT 1),"
	    " fresh AS (INSERT INTO gate_runs"
	    "   (project_id, source_project_id, mr_iid, head_sha, source_branch, event_id, mr_title)"
	    "   SELECT $1::bigint, $2::bigint, $3::bigint, $4::text, $5::text, $6::bigint, $7::text"
	    "   WHERE NOT EXISTS (SELECT 1 FROM queued) RETURNING id),"
	    " run AS (SELECT id, true AS coalesced FROM queued UNION ALL SELECT id, false FROM fresh),"
	    " superseded AS (UPDATE gate_runs g SET state = 'superseded', superseded_by = run.id, finished_at = now(),"
	    "   lease_owner = NULL, lease_until = NULL FROM run"
	    "   WHERE g.project_id = $1::bigint AND g.mr_iid = $3::bigint AND g.head_sha <> $4::text"
	    "   AND g.state IN ('queued', 'running') AND g.id < run.id),"
	    " linked AS (UPDATE webhook_events e SET run_id = run.id FROM run WHERE e.id = $6::bigint)"
	    " SELECT id, coalesced FROM run",
	    &r, STORE_I64(ev->project_id), STORE_I64(ev->source_project_id), STORE_I64(ev->mr_iid),
	    STORE_STR(ev->head_sha), STORE_STR(ev->source_branch), STORE_I64_OR_NULL(event_id > 0 ? event_id : 0),
	    STORE_STR(ev->title));
	if (st == CORE_OK && PQntuples(r) > 0) {
		*run_id_out = store_i64(r, 0, "id", 0);
		*coalesced_out = store_bool(r, 0, "coalesced", false);
	} else if (st == CORE_OK) {
		st = CORE_EINTERNAL; /* the statement always yields the run */
	}
	PQclear(r);
	return st;
}

void gate_queue_announce(struct store_conn *c)
{
	static long last_ms = -GATE_NOTIFY_MS;
	long now = pglisten_now_ms(), prev = __atomic_load_n(&last_ms, __ATOMIC_RELAXED);
	if (now - prev < GATE_NOTIFY_MS ||
	    !__atomic_compare_exchange_n(&last_ms, &prev, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return; /* announced a moment ago, or another thread is announcing now */
	(void)store_run(c, "SELECT pg_notify('" GATE_QUEUE_CHANNEL "', '')", NULL, NULL); /* logged when it fails */
}

enum core_status gate_queue_retry_unposted(struct store_conn *c, int *n_out)
{
	PGresult *r = NULL;
	*n_out = 0;
	enum core_status st = store_run(
	    c,
	    "UPDATE gate_runs g SET state = 'queued', verdict = NULL, error = NULL, description = NULL, counts = NULL,"
	    " finished_at = NULL, attempts = 0, lease_owner = NULL, lease_until = NULL"
	    " WHERE g.state = 'error' AND g.status_posted IS NULL AND g.superseded_by IS NULL"
	    "   AND g.created_at > now() - interval '7 days'"
	    "   AND NOT EXISTS (SELECT 1 FROM gate_runs n WHERE n.project_id = g.project_id AND n.mr_iid = g.mr_iid"
	    "                   AND n.id > g.id)"
	    " RETURNING g.id",
	    NULL, &r);
	if (st == CORE_OK)
		*n_out = PQntuples(r);
	PQclear(r);
	return st;
}

enum core_status gate_queue_claim(struct store *db, const char *owner, int64_t lease_ms, struct gate_queue_claim *out,
                                  bool *claimed_out)
{
	PGresult *res = NULL;
	struct store_params p = {0};
	memset(out, 0, sizeof(*out));
	*claimed_out = false;
	store_param_str(&p, owner);
	store_param_i64(&p, lease_ms);
	enum core_status st = store_run1(
	    db,
	    "UPDATE gate_runs SET state = 'running', lease_owner = $1,"
	    " lease_until = now() + $2::bigint * interval '1 millisecond', heartbeat_at = now(),"
	    " attempts = attempts + 1, started_at = coalesce(started_at, now())"
	    " WHERE id = (SELECT id FROM gate_runs"
	    "   WHERE (state = 'queued' AND (lease_until IS NULL OR lease_until <= now()))"
	    "      OR (state = 'running' AND lease_until < now())"
	    "   ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
	    " RETURNING id, project_id, source_project_id, mr_iid, head_sha, source_branch, attempts,"
	    " pending_posted, coalesce(pipeline_id, 0) AS pipeline_id, coalesce(status_ref, '') AS status_ref,"
	    " extract(epoch FROM now() - created_at)::float8 AS age",
	    &p, &res);
	if (st != CORE_OK || PQntuples(res) == 0)
		goto out;
	*claimed_out = true;
	out->id = store_i64(res, 0, "id", 0);
	out->project_id = store_i64(res, 0, "project_id", 0);
	out->source_project_id = store_i64(res, 0, "source_project_id", 0);
	out->mr_iid = store_i64(res, 0, "mr_iid", 0);
	out->attempts = (int)store_i64(res, 0, "attempts", 1);
	out->pending_posted = store_bool(res, 0, "pending_posted", false);
	out->pipeline_id = store_i64(res, 0, "pipeline_id", 0);
	const char *age = store_str(res, 0, "age");
	out->age_s = age ? strtod(age, NULL) : 0;
	snprintf(out->head_sha, sizeof(out->head_sha), "%s", store_str(res, 0, "head_sha"));
	snprintf(out->source_branch, sizeof(out->source_branch), "%s", store_str(res, 0, "source_branch"));
	snprintf(out->status_ref, sizeof(out->status_ref), "%s", store_str(res, 0, "status_ref"));
out:
	PQclear(res);
	return st;
}

enum core_status gate_queue_renew(struct store *db, const char *owner, int lease_ms, const int64_t *ids, size_t n,
                                  bool *held_out)
{
	struct store_params p = {0};
	struct buf keep = {0};
	PGresult *res = NULL;
	store_param_i64_array(&p, ids, n, &keep);
	store_param_str(&p, owner);
	store_param_i64(&p, lease_ms);
	enum core_status st = store_run1(
	    db,
	    "UPDATE gate_runs SET lease_until = now() + $3::int * interval '1 millisecond', heartbeat_at = now()"
	    " WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'running' RETURNING id",
	    &p, &res);
	size_t not_renewed = 0;
	for (size_t i = 0; i < n; i++) {
		held_out[i] = false;
		for (int k = 0; st == CORE_OK && k < PQntuples(res); k++)
			if (store_i64(res, k, "id", 0) == ids[i])
				held_out[i] = true;
		not_renewed += !held_out[i];
	}
	PQclear(res);
	res = NULL;
	/* A run not renewed may have ended by its own worker between the caller's snapshot of its runs and the UPDATE
	 * (which re-reads a row committed meanwhile, where the worker's end is seen): read again, in a new snapshot,
	 * which of them another instance holds or queued again; the others are not lost. */
	struct store_params again = {0};
	struct buf keep_again = {0};
	store_param_i64_array(&again, ids, n, &keep_again);
	store_param_str(&again, owner);
	if (st == CORE_OK && not_renewed > 0)
		st = store_run1(db,
		                "SELECT id FROM gate_runs WHERE id = ANY($1::bigint[])"
		                " AND (state = 'queued' OR (state = 'running' AND lease_owner IS DISTINCT FROM $2))",
		                &again, &res);
	for (size_t i = 0; st == CORE_OK && i < n; i++) {
		bool lost = false;
		for (int k = 0; !held_out[i] && k < PQntuples(res); k++)
			lost = lost || store_i64(res, k, "id", 0) == ids[i];
		held_out[i] = held_out[i] || !lost;
	}
	PQclear(res);
	buf_free(&keep);
	buf_free(&keep_again);
	return st;
}

enum core_status gate_queue_next_due_ms(struct store *db, long *ms_out, bool *found_out)
{
	PGresult *res = NULL;
	*ms_out = 0;
	*found_out = false;
	/* a queued run without lease_until is claimable now; min() then is now */
	enum core_status st =
	    store_run1(db,
	               "SELECT ceil(extract(epoch FROM min(coalesce(lease_until, now())) - now()) * 1000)"
	               "::bigint AS ms FROM gate_runs WHERE state IN ('queued', 'running')",
	               NULL, &res);
	if (st == CORE_OK && store_str(res, 0, "ms")) {
		int64_t ms = store_i64(res, 0, "ms", 0);
		*found_out = true;
		*ms_out = ms > 0 ? (long)ms : 0;
	}
	PQclear(res);
	return st;
}
