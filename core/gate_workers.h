/*
 * core/gate_workers.h
 *    The pool of gate worker threads of one `mrgate serve`, and the wake-up call that tells them a run was queued.
 *
 * Design: each worker claims the next claimable run (core/gate_run.h) and executes it, then kicks an idle sibling
 * (there may be more); with nothing to claim it learns when the next queued run falls due (gate_queue_next_due_ms)
 * and sleeps until kicked: it sends no statement while idle. A waker thread holds the pool's LISTEN connection on
 * GATE_QUEUE_CHANNEL (core/pglisten.h; gate_queue_announce notifies after a commit that queued runs, so runs
 * queued by another instance wake it) and kicks one worker on a notification, when the due time comes and on a 10 s
 * safety poll (a dead instance's lease running out); without a listen URL, or while the database is away, every second.
 * With env->lease_ms > 0 a heartbeat thread renews, every third of the lease, the leases of the runs this pool has in
 * flight (core/gate_queue.h), like job items; a killed instance stops renewing, so another instance takes its runs
 * over within one lease. When the heartbeat cannot start, the pool falls back to leases that cover the whole run.
 * The pool's state (threads, the set of runs in flight, the stop flag) lives in struct gate_workers, owned by
 * whoever started it. gate_kick() is the one process-wide piece: the receiver and the open-MR gating call it
 * without a handle to the pool, so the wake-up signal (a sequence number and a condition variable) is static.
 * Threading: gate_workers_start/stop from one thread (the process's start and end); gate_kick from any thread.
 * Ownership: gate_workers_start copies env (its strings and key stay borrowed until gate_workers_stop returns);
 * the result is the caller's, freed by gate_workers_stop.
 */
#ifndef MRGATE_CORE_GATE_WORKERS_H
#define MRGATE_CORE_GATE_WORKERS_H

#include "gate_run.h"

struct gate_workers;
/* Start n worker threads; listen_url (copied; NULL: poll every second) is the database of the LISTEN connection.
 * NULL when none could start. */
struct gate_workers *gate_workers_start(const struct gate_env *env, int n, const char *listen_url);
/* Stop and join the workers (a run in progress finishes first). NULL is fine. */
void gate_workers_stop(struct gate_workers *w);
/* Wake an idle worker of this process: a run was queued (it wakes the next when it finds one). */
void gate_kick(void);

#endif
