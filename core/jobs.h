/*
 * core/jobs.h
 *    The job engine: jobs made of items (usually one per repo), stored in PostgreSQL and worked off by worker
 *    threads of any number of mrgate instances sharing the database.
 *    Three files: core/jobs.c is the queue (create, claim, record, retry, cancel: every statement that changes a
 *    job), core/jobs_runner.c the worker pool (jobs_runner_*, jobs_register) that drives it, core/jobs_view.h/.c
 *    the read model for the API (progress, items, the list of jobs).
 *
 * Design
 *   Tables jobs and job_items (sql/0003_jobs.sql). An item is claimed by one statement:
 *     UPDATE job_items ... WHERE id IN (SELECT ... WHERE state IN ('pending','running') AND not_before <= now()
 *                                       ORDER BY not_before, id LIMIT k FOR UPDATE SKIP LOCKED)
 *   which sets state = 'running', lease_owner = the worker, lease_until = not_before = now() + lease and counts
 *   an attempt. not_before is "the earliest time anyone may claim the item": the backoff end of a pending item,
 *   the lease end of a running one. So an item whose worker crashed, hung or was SIGKILLed becomes claimable
 *   again when its lease runs out (a takeover), and a restarted server simply resumes: there is no in-process
 *   state to recover. Concurrent claimers skip each other's locked rows, so claims never block and never hand
 *   one item to two workers at the same time.
 *
 *   Leases are renewed by a heartbeat thread of the runner every lease/3 for every item the runner holds (the
 *   item running and the ones claimed in the same batch), so an item may run far longer than its lease while its
 *   process is alive. A runner that learns its lease was lost (a renewal matched nothing) flags the item:
 *   jobs_item_lease_lost() turns true, and a handler that checks it before a write can stop early.
 *
 *   Recording a result (jobs_finish(_batch), jobs_requeue, jobs_release) only succeeds while the recorder still holds
 *   the lease: WHERE id = $1 AND lease_owner = $2 AND state = 'running'. The guarantee is therefore
 *     - at most once recording: every item gets exactly one final result (done or failed), and a worker whose
 *       lease was taken over cannot record anything afterwards (CORE_ECONFLICT, counted as "lease lost");
 *     - at most one holder at any time: between a claim and the lease end nobody else can claim the item;
 *     - at least once execution: the handler of an item can run more than once when a lease is lost while
 *       the handler still runs (a process frozen for longer than the lease, a database outage that blocks
 *       renewals) or when a process dies after the side effect and before recording. Handlers must therefore
 *       be idempotent; the apply engine reads GitLab's state before it writes, so a repeated run finds the
 *       work done and records "unchanged".
 *   An item that is taken over again and again (its handler crashes the process) stops after max_attempts
 *   claims and is recorded as failed without running the handler again.
 *
 *   Waking, not polling: a runner given a listen_url keeps one LISTEN connection (core/pglisten.h, outside the
 *   pool) on JOBS_CHANNEL. Every statement that makes items claimable sends pg_notify in its own transaction
 *   (jobs_create*, jobs_retry_failed, jobs_requeue, jobs_release), so nothing is announced before it commits.
 *   Idle workers send no statement at all: they sleep until the runner's waker thread pokes one of them, on a
 *   notification, when the earliest known not_before falls due (learnt by jobs_next_due_ms after an empty claim:
 *   retry backoffs, leases of other instances) or on a slow safety poll (idle_poll_ms, 10 s). A worker that
 *   claims takes the shares of the workers idle at that moment too and hands each its batch (one claim statement
 *   starts them all), then pokes the next idle one, so a burst fans out over the workers and the chain ends with
 *   one empty claim. Without a listen_url (or while the database is away) the waker pokes every poll_ms instead.
 *
 *   Batches: a worker claims its share of the due items, ceil(due / workers) between 1 and claim_batch
 *   (jobs_claim_share; a claim for idle siblings too takes at most 4 each: it locks every item it takes while
 *   every worker waits for it), so a large job is claimed claim_batch items per statement while a small one, and
 *   the last items of a large one, are spread over every worker. A worker out of items when nothing is due (its
 *   last claim found none, and no notification came since) takes half of the items a sibling has not started yet,
 *   off the end of its batch, so the last batches are not run one item after another while the other workers
 *   idle. A worker runs its batch's items one after the other and hands
 * each final outcome to the runner's recorder thread, which records everything handed to it since its last statement in
 * ONE statement (jobs_finish_batch), then the next. That statement updates only the items still leased to the runner
 * and moves each job's counters by exactly the items it recorded, so the at-most-once recording below holds item by
 * item. The heartbeat renews an outcome's item until it is recorded.
 *
 *   Progress counters (total, done, changed, unchanged, skipped, failed) live on the jobs row and are changed
 *   by the same statement that finishes, resets or cancels items (one data-modifying CTE: item UPDATE, then
 *   jobs UPDATE ... SET done = done + 1), so they are always consistent with the items and reading progress is
 *   a primary-key lookup, whatever the job size: polling a 10,000-item job every second costs one row read,
 *   not a scan of 10,000 items. done counts finished items of any result, so done = changed + unchanged +
 *   skipped + failed (a CHECK constraint) and percent = done * 100 / total. The price is that all finishers of
 *   one job update the same row: one recorder per runner does, so the workers of a process never wait for each
 *   other's lock on it (when every worker recorded its own batches, a no-change re-apply at 32 workers spent
 *   38-55 ms per finish statement waiting for the row).
 *   Locks are always taken items first, then the job row (claim, finish, retry, cancel), so they cannot
 *   deadlock with each other.
 *
 *   Job states: queued (created) -> running (an item was claimed) -> done (every item finished; a job with
 *   failed items is done with failed > 0, which the JSON reports as "failed": n and "succeeded": false) or
 *   canceled (jobs_cancel: pending items become done/skipped "canceled"; items already running finish and
 *   are counted, the job stays canceled). jobs_retry_failed() puts failed items back to pending with fresh
 *   attempts and the job back to running. 'failed' is reserved for a job that cannot run at all.
 *
 *   Outcomes: a handler returns JOB_ITEM_CHANGED / UNCHANGED / SKIPPED (item done), JOB_ITEM_ERROR (item
 *   failed, with the handler's message) or JOB_ITEM_RETRY for a transient error: the item goes back to pending
 *   with not_before = now + a jittered exponential backoff (base * 2^(attempt-1), capped, at least the
 *   handler's retry_after_ms), until max_attempts, when it fails with "gave up after N attempts: <message>".
 *
 *   GitLab concurrency is not bounded here but by a struct limiter (core/limiter.h) shared by the handlers,
 *   so worker threads may outnumber GitLab slots (items waiting for the database or the rate limiter do not hold
 *   one).
 *
 * Threading: the job functions taking a struct store are safe from any thread. A runner's functions are safe
 *   from any thread; handlers run on the runner's worker threads, several at once, so their user data must be
 *   thread-safe. Each worker borrows a pool connection per statement (never during the handler), plus one each
 *   for the heartbeat and the recorder: size the pool for workers + 2 + what the handlers use. The LISTEN connection is
 * not a pool connection. Allocation follows core/xalloc.h: out of memory aborts, so no function here returns
 * CORE_ENOMEM. Ownership: JSON outputs (*out) are new trees owned by the caller (json_object_put). Items from
 * jobs_claim() are freed with jobs_items_free(). Inside a handler, the item and everything it points to are borrowed
 * for the call; res->details and res->message pass to the engine.
 */
#ifndef MRGATE_CORE_JOBS_H
#define MRGATE_CORE_JOBS_H

#include "jobs_view.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOBS_MAX_KINDS   16            /* handlers a runner can hold */
#define JOBS_KIND_MAX    32            /* bytes of a kind name */
#define JOBS_MESSAGE_MAX 2000          /* bytes of a stored item message (longer ones are cut on a UTF-8 boundary) */
#define JOBS_CHANNEL     "mrgate_jobs" /* NOTIFY channel: items became claimable (created, retried, released) */

enum job_outcome {
	JOB_ITEM_CHANGED = 0, /* done, something was changed */
	JOB_ITEM_UNCHANGED,   /* done, nothing needed changing */
	JOB_ITEM_SKIPPED,     /* done, deliberately not processed (archived repo, ...) */
	JOB_ITEM_ERROR,       /* failed for good: the message says why */
	JOB_ITEM_RETRY        /* a transient error: run again later (backoff), up to max_attempts */
};

/* One claimed item, as a handler sees it. */
struct job_item {
	int64_t id;
	int64_t job_id;
	char *kind;
	bool has_repo;
	int64_t repo_id;             /* GitLab project id when has_repo */
	struct json_object *payload; /* the item's payload, or NULL */
	struct json_object *params;  /* the job's params (an object, never NULL) */
	char *created_by;            /* who created the job */
	int attempt;                 /* 1 on the first run; a takeover counts as an attempt */
	bool takeover;               /* claimed from a worker whose lease had expired */
	int lost_;                   /* internal: set (atomically) when a renewal found the lease lost */
};

/* What a handler reports besides its outcome. Zeroed before the call. */
struct job_item_result {
	char *message;               /* malloc'd text (jobs_result_message()), or NULL; freed by the engine */
	struct json_object *details; /* any JSON, or NULL; the engine takes ownership */
	long retry_after_ms;         /* JOB_ITEM_RETRY: wait at least this long (e.g. GitLab's Retry-After) */
	/*
	 * Work the handler left unfinished (NULL: none), e.g. its own rows queued for a group commit: the engine calls
	 * settle(settle_arg) exactly once, on the recorder before the item's final outcome is stored (so a finished
	 * item's work is stored), or at once for a retry. A status other than CORE_OK makes the item a retry.
	 */
	enum core_status (*settle)(void *arg);
	void *settle_arg;
};

/* Set res->message from a printf format (replaces a previous one; capped at 2,000 bytes). */
void jobs_result_message(struct job_item_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when the runner learnt that this item's lease was taken over: its result will not be recorded. */
bool jobs_item_lease_lost(const struct job_item *item);

/* A valid job kind: [a-z][a-z0-9_]*, up to JOBS_KIND_MAX bytes. */
bool jobs_kind_valid(const char *kind);
/* The stored result of a final outcome ("changed", "unchanged", "skipped", "error"); NULL for RETRY. */
const char *jobs_outcome_result(enum job_outcome o);

/* ---- Creating and reading jobs (for the HTTP layer and the CLI) ---- */

/*
 * Create a job of `kind` ([a-z][a-z0-9_]*, up to 32) with one pending item per distinct repo id (duplicates are
 * dropped, first-occurrence order is kept), in one INSERT ... SELECT unnest($n::bigint[]). params_json is a JSON
 * object text or NULL ({}). A job of no items is created done. CORE_EINVAL for a bad kind, params or creator.
 * The _in_tx variant runs on the caller's connection and leaves transaction control to it (so a job commits
 * together with the configs and audit rows that caused it); jobs_create() runs its own transaction.
 * The statement that inserts the items also sends NOTIFY mrgate_jobs (JOBS_CHANNEL), delivered when the caller
 * commits: listening runners of every instance wake at once; jobs_runner_wake() still wakes the local runner.
 */
enum core_status jobs_create(struct store *db, const char *kind, const char *created_by, const char *params_json,
                             const int64_t *repo_ids, size_t n, int64_t *job_id_out);
enum core_status jobs_create_in_tx(struct store_conn *c, const char *kind, const char *created_by,
                                   const char *params_json, const int64_t *repo_ids, size_t n, int64_t *job_id_out);
/*
 * Same with explicit items: items_json is a JSON array of {"repo_id": int or null, "payload": any}. A repo id
 * given twice is CORE_ECONFLICT.
 */
enum core_status jobs_create_items_in_tx(struct store_conn *c, const char *kind, const char *created_by,
                                         const char *params_json, const char *items_json, int64_t *job_id_out);
/* The same in a transaction of its own. */
enum core_status jobs_create_items(struct store *db, const char *kind, const char *created_by, const char *params_json,
                                   const char *items_json, int64_t *job_id_out);

/*
 * The read model (jobs_get, jobs_list, jobs_items) is core/jobs_view.h; these names stay for the callers written
 * before the split and page the one way of core/rows.h: {"items", "next_cursor"}.
 */
static inline enum core_status jobs_get(struct store *db, int64_t job_id, struct json_object **out)
{
	return jobs_view_get(db, job_id, out);
}
static inline enum core_status jobs_items(struct store *db, int64_t job_id, const char *filter, int64_t cursor,
                                          int limit, struct json_object **out)
{
	return jobs_view_items(db, job_id, filter, cursor, limit, out);
}
static inline enum core_status jobs_list(struct store *db, int limit, int64_t cursor, struct json_object **out)
{
	return jobs_view_list(db, limit, cursor, out);
}

/*
 * Put the job's failed items back to pending (attempts reset for a whole new budget, the earlier ones kept in
 * attempts_before, which the API adds back) and the job back to running; *n_out (may be NULL)
 * gets how many. A job without failed items is left as it is (n = 0). CORE_ENOTFOUND for an unknown job.
 */
/* CORE_ESTATE for a webhook-mode switch job (never retried: an admin switches again). With an actor (borrowed; NULL
 * for none) a retry of at least one item writes the audit entry job.retry (target "job N", failed n -> 0, details:
 * kind, retried) in the same transaction. */
enum core_status jobs_retry_failed(struct store *db, int64_t job_id, const char *actor, int64_t *n_out);

/*
 * Cancel a queued or running job: pending items (and running ones whose lease has already expired) become done
 * with result skipped and message "canceled"; items being worked on finish normally. Canceling a canceled job is
 * fine; CORE_ESTATE for a job that already finished, CORE_ENOTFOUND for an unknown one, CORE_ECONFLICT for a
 * webhook-mode switch (it runs to its end). The repos of the skipped items lose the "applying" mark their apply job's
 * run gave them (repo_gitlab_state.apply_run = params.run). With an actor (borrowed; NULL for mrgate's own cancels)
 * the audit entry job.cancel (target "job N", details: kind, skipped, done_before, total) commits with the cancel;
 * a dry run's cancel is not audited (it changes nothing on GitLab, and the dashboard cancels the previews it drops).
 * Items a worker has claimed but not started are the handler's to skip (applyjob_note_canceled).
 */
enum core_status jobs_cancel(struct store *db, int64_t job_id, const char *actor);

/* ---- The worker pool ---- */

struct jobs_runner_opts {
	int workers;            /* worker threads (MRGATE_WORKERS); 0 = 4 */
	int lease_ms;           /* lease length; 0 = 60,000; renewed every lease/3 */
	int poll_ms;            /* poll interval without notifications (no listen_url, database away); 0 = 200 */
	const char *listen_url; /* database URL for a LISTEN connection (copied); NULL: poll every poll_ms */
	int idle_poll_ms;       /* with notifications: the safety poll; 0 = 10,000 */
	int claim_batch;        /* most items a worker claims per statement (its share of the due ones); 0 = 1 */
	int max_attempts;       /* claims before an item fails for good; 0 = 5 */
	int backoff_base_ms;    /* first retry delay (doubles per attempt, jittered to [d/2, d]); 0 = 1,000 */
	int backoff_max_ms;     /* cap of the retry delay; 0 = 300,000 */
	const char *owner;      /* lease owner name; NULL = "hostname:pid:random", unique per runner */
};

struct jobs_runner;

/*
 * Start a runner of o->workers threads (o may be NULL for the defaults) on db, which must outlive it. Workers
 * only claim items of the kinds registered so far, so register handlers right after starting. NULL on failure.
 */
struct jobs_runner *jobs_runner_start(struct store *db, const struct jobs_runner_opts *o);

/*
 * Register the handler of a job kind (before or after start). CORE_EINVAL for a bad kind, CORE_ECONFLICT when
 * the kind has a handler already, CORE_ETOOLARGE past 16 kinds. user is passed to every call and must stay valid
 * until jobs_runner_stop() returns.
 */
enum core_status jobs_register(struct jobs_runner *r, const char *kind,
                               enum job_outcome (*handler)(void *user, const struct job_item *item,
                                                           struct job_item_result *res),
                               void *user);

/*
 * Call finished(user, job_id) (user as registered) once a batch this runner records finishes a job of kind: every
 * item has its outcome (done or failed; not on a cancel). It runs on the recorder after the commit; a process that
 * stops in between does not call it (the items keep what it would read). Again after a retry finishes the job anew.
 * CORE_ENOTFOUND when kind has no handler yet.
 */
enum core_status jobs_on_finished(struct jobs_runner *r, const char *kind,
                                  void (*finished)(void *user, int64_t job_id));

/*
 * Create a job of kind with items (a JSON array as jobs_create_items takes, borrowed) in its own transaction and wake
 * the local runner r (NULL: none); *job_out gets the job as jobs_get shows it (the caller's).
 */
enum core_status jobs_submit_items(struct store *db, struct jobs_runner *r, const char *kind, const char *created_by,
                                   struct json_object *items, struct json_object **job_out);

/* Make an idle worker look for work now (after jobs_create; the job's NOTIFY also does, once committed). NULL is
 * fine. */
void jobs_runner_wake(struct jobs_runner *r);

/* The runner's lease owner name (borrowed, lives as long as the runner). */
const char *jobs_runner_owner(const struct jobs_runner *r);

/*
 * The items of job_id with a repo that r's workers hold now (claimed or handed to them, not yet done: the item a
 * worker runs included) with an id above after_id: at most max of them, their ids and repo ids into ids and repos,
 * in id order; the number written. Items claimed and given back (a stop, a hand-out left over) are not held.
 */
int jobs_runner_held(struct jobs_runner *r, int64_t job_id, int64_t after_id, int64_t *ids, int64_t *repos, int max);

struct jobs_runner_stats {
	long long claimed;    /* items claimed */
	long long takeovers;  /* of which taken over from an expired lease */
	long long recorded;   /* final results recorded (done or failed) */
	long long retried;    /* items put back for a retry */
	long long lease_lost; /* results rejected because the lease had been taken over */
	long long released;   /* claimed items handed back unstarted at stop */
	long long stolen;     /* items a worker out of items took from a sibling's batch (nothing else was due) */
};
void jobs_runner_stats(struct jobs_runner *r, struct jobs_runner_stats *out);

/*
 * Stop gracefully and free the runner: no new claims; each worker finishes the item it is running (leases are
 * renewed meanwhile), hands back the items it claimed but did not start, and exits; then the recorder records the
 * outcomes it was handed, and the heartbeat stops.
 * Returns once every thread is joined. NULL is fine.
 */
void jobs_runner_stop(struct jobs_runner *r);

/* Tests only: stop renewing leases, as a frozen or killed process would, so that they expire and are taken over. */
void jobs_runner_test_stop_heartbeat(struct jobs_runner *r);

/* ---- The queue primitives the runner is made of (exported for tests and tools) ---- */

/*
 * Claim up to max items of the given kinds for owner with a lease of lease_ms. *items_out gets an array of *n_out
 * items (NULL when none), freed with jobs_items_free(). Moves their jobs from queued to running.
 */
enum core_status jobs_claim(struct store *db, const char *owner, const char *const *kinds, int n_kinds, int max,
                            int lease_ms, struct job_item **items_out, int *n_out);
/*
 * The same, for one of `share` claimers working off the same queue (a runner's workers): it takes its share of
 * what is claimable now, ceil(claimable / share), at least 1 and at most max, so a large job is claimed max items at
 * a time while every claimer could take a batch of max, and a small job, or the end of a large one, a few items at a
 * time, spread over the claimers. A lone claimer (share 1, jobs_claim) takes up to max. The claim is made for
 * `claimers` of them at once (1..share: a worker and the idle siblings it hands batches to), which take that many
 * shares. max and share are 1..1000 (CORE_EINVAL else).
 * A claim that starts a large job gathers job_items' statistics again (its items are most of what is claimable;
 * the statistics say almost none is). With stale_out NULL it does so before returning; else it sets *stale_out
 * (false otherwise) and the caller runs jobs_analyze() once the batches it claimed for its siblings are handed out:
 * every one of them waits for this call to return.
 */
enum core_status jobs_claim_share(struct store *db, const char *owner, const char *const *kinds, int n_kinds, int max,
                                  int share, int claimers, int lease_ms, struct job_item **items_out, int *n_out,
                                  bool *stale_out);
/* Gather job_items' statistics again (what jobs_claim_share's *stale_out asks for); a failure changes nothing. */
void jobs_analyze(struct store *db);
/* The claim statement jobs_claim_share runs, $1 the owner and $2 the lease in ms (owned: free()); NULL for bad
 * arguments. For tests that look at its plan. */
char *jobs_claim_sql(const char *const *kinds, int n_kinds, int max, int share, int claimers);
/*
 * Milliseconds until the earliest item of these kinds becomes claimable (0: one is claimable now); *found_out
 * false when no pending or running item exists. What an idle runner sleeps for at most besides notifications.
 */
enum core_status jobs_next_due_ms(struct store *db, const char *const *kinds, int n_kinds, long *ms_out,
                                  bool *found_out);
void jobs_items_free(struct job_item *items, int n); /* NULL is fine */

/*
 * Record the final outcome (CHANGED, UNCHANGED, SKIPPED or ERROR) of an item held by owner, with an optional
 * message and details (JSON text), and update the job's counters; *job_finished_out (may be NULL) is true when
 * this was the job's last item. CORE_ECONFLICT when owner no longer holds the item's lease (nothing is recorded),
 * CORE_EINVAL for JOB_ITEM_RETRY or an unknown outcome.
 */
enum core_status jobs_finish(struct store *db, const char *owner, int64_t item_id, enum job_outcome outcome,
                             const char *message, const char *details_json, bool *job_finished_out);

/*
 * Record the final outcomes of several items held by owner in one statement (the batch a worker ran), moving the
 * counters of their jobs by exactly what was recorded. Per record: recorded (false: owner no longer held the
 * item's lease, nothing was recorded for it), job_id and job_finished (this batch recorded its job's last item)
 * are set on CORE_OK. CORE_EINVAL for a RETRY or unknown outcome (nothing recorded).
 */
struct jobs_record {
	int64_t item_id;
	enum job_outcome outcome;
	const char *message;      /* borrowed, NULL for none; cut to JOBS_MESSAGE_MAX */
	const char *details_json; /* borrowed JSON text, NULL for none */
	bool recorded;            /* out */
	int64_t job_id;           /* out, when recorded */
	bool job_finished;        /* out */
};
enum core_status jobs_finish_batch(struct store *db, const char *owner, struct jobs_record *recs, int n);

/* Put an item held by owner back to pending, claimable after delay_ms, keeping message as the last error.
 * CORE_ECONFLICT when the lease was lost. */
enum core_status jobs_requeue(struct store *db, const char *owner, int64_t item_id, long delay_ms, const char *message);

/* Hand back claimed items that were not started (their attempt is not counted); *n_out gets how many. */
enum core_status jobs_release(struct store *db, const char *owner, const int64_t *item_ids, int n, int *n_out);

/* Extend the lease of items held by owner to now + lease_ms. held_out[i] (may be NULL) tells whether owner still
 * held item_ids[i]. */
enum core_status jobs_renew(struct store *db, const char *owner, const int64_t *item_ids, int n, int lease_ms,
                            bool *held_out);

/* The retry delay before attempt `attempt` + 1: min(max, base * 2^(attempt-1)) jittered to [d/2, d], at least
 * at_least_ms. Exported for tests. */
long jobs_backoff_ms(int attempt, long base_ms, long max_ms, long at_least_ms);

#endif
