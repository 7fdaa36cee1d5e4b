/*
 * core/gate_queue.h
 *    The durable queue of gate runs (table gate_runs): queue a run for an MR head commit, claim the next claimable
 *    run under a lease, renew the leases of runs in flight.
 *
 * Design: the webhook receiver (core/webhook.c) and the open-MR gating (core/gate_open_mrs.h) queue a run inside
 * their own transaction (gate_enqueue) and announce it after the commit (gate_queue_announce); a newer head commit for
 * the same MR supersedes the older queued/running runs there, so a superseded run never posts its verdict. Runs are
 * claimed with FOR UPDATE SKIP LOCKED, oldest first: a queued run whose retry delay (lease_until) has passed, or a
 * running run whose lease ran out (its instance died). Every claim counts an attempt; the worker that owns a lease is
 * lease_owner, and every write of a run's outcome is guarded by it (core/gate_run.c), so a run taken over elsewhere is
 * never finished twice. gate_enqueue keeps its name from before this module existed. Threading: thread-safe;
 * gate_enqueue runs on the caller's connection (inside its transaction), the others borrow one from the pool.
 * Ownership: all results are written into caller structs.
 */
#ifndef MRGATE_CORE_GATE_QUEUE_H
#define MRGATE_CORE_GATE_QUEUE_H

#include "status.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NOTIFY channel: runs were queued (gate_queue_announce sends it after the commit). */
#define GATE_QUEUE_CHANNEL "mrgate_gate"
/* At most one announcement per process this often. */
#define GATE_NOTIFY_MS 20

/*
 * After a commit that queued runs, on any connection outside a transaction: NOTIFY GATE_QUEUE_CHANNEL (a statement
 * of its own) so that other instances' idle gate workers look, at most once every GATE_NOTIFY_MS per process
 * (the later calls within that time send nothing: a run queued then, with no announcement after it, reaches other
 * instances by their 10 s safety poll). This process's workers are woken by gate_kick() every time, so no run waits
 * for an announcement while they have room. Not sent inside the queueing transaction: PostgreSQL
 * serialises the commits of all transactions that notify behind one lock held through the WAL flush, which capped
 * gated webhook deliveries at about 900 a second on a machine that acks 2,800 without it.
 */
void gate_queue_announce(struct store_conn *c);

/*
 * A working token was stored for the group whose runs these are: queue again each MR's newest run of the last 7 days
 * that ended in error without posting any status (a revoked or expired token, or GitLab unreachable, left the MR
 * with no verdict on GitLab at all). On the caller's connection, inside its transaction; *n_out the runs queued.
 * Announce after the commit (gate_queue_announce). A run whose verdict reached GitLab is not run again.
 */
enum core_status gate_queue_retry_unposted(struct store_conn *c, int *n_out);

/* What the receiver learnt from a merge request event that changes code. Strings are borrowed. */
struct gate_mr_event {
	int64_t project_id;        /* target project: the gated repo */
	int64_t source_project_id; /* where the commit lives (forks) */
	int64_t mr_iid;
	const char *head_sha;
	const char *source_branch;
	const char *title; /* the MR's title when no delivery has it (a run queued by an apply); NULL otherwise */
};

/*
 * The SQL expression that takes one MR's transaction lock (pg_advisory_xact_lock; project and iid are SQL
 * expressions of type bigint or text, e.g. "$1"): deliveries and open-MR gating of one MR queue one at a time.
 */
#define GATE_MR_LOCK_SQL(project, iid)                                                                                 \
	"pg_advisory_xact_lock(hashtextextended('mrgate-mr:' || " project " || ':' || " iid ", 0))"

/*
 * Inside the caller's transaction, after it took the MR's lock (GATE_MR_LOCK_SQL) in an earlier statement, in one
 * statement: supersede queued/running runs of the same MR on another head sha, and queue a
 * run for this head sha unless one is already queued or running (then *coalesced_out is true and *run_id_out is that
 * run: its verdict is this head's; a second run of the same head, e.g. queued by the open-MR gating while the
 * delivery was on its way, would post a second verdict).
 * event_id 0: the run was not started by a webhook delivery (gate_enqueue_open_mrs).
 */
enum core_status gate_enqueue(struct store_conn *c, const struct gate_mr_event *ev, int64_t event_id,
                              int64_t *run_id_out, bool *coalesced_out);

/* A claimed run, as the queue row says. */
struct gate_queue_claim {
	int64_t id, project_id, source_project_id, mr_iid;
	int64_t pipeline_id; /* the pipeline its pending status went into (0: none, or posted on a ref) */
	int attempts;        /* including this claim */
	bool pending_posted;
	double age_s; /* seconds since the run was queued */
	char head_sha[72];
	char source_branch[264];
	char status_ref[264]; /* "" until its pending status was posted */
};

/* Claim the oldest claimable run for owner, leased for lease_ms. *claimed_out false when there was none. */
enum core_status gate_queue_claim(struct store *db, const char *owner, int64_t lease_ms, struct gate_queue_claim *out,
                                  bool *claimed_out);

/* Milliseconds until the earliest queued run's retry delay or running run's lease ends (0: claimable now);
 * *found_out false when no run is queued or running. */
enum core_status gate_queue_next_due_ms(struct store *db, long *ms_out, bool *found_out);

/* Extend the leases of owner's running runs ids[0..n) by lease_ms; held_out[i]: ids[i] was not lost, i.e. still
 * ours (renewed) or no longer running (its worker recorded its end, possibly while the renewal ran). */
enum core_status gate_queue_renew(struct store *db, const char *owner, int lease_ms, const int64_t *ids, size_t n,
                                  bool *held_out);

#endif
