/*
 * core/gate_workers.h
 *    The pool of gate worker threads of one `mrgate serve`, and the wake-up call that tells them a run was queued.
 *
 * Design: each worker claims the next claimable run (core/gate_run.h) and executes it; with nothing to claim it
 * sleeps until gate_kick() or for one second (runs queued by another instance, retry delays running out). With
 * env->lease_ms > 0 a heartbeat thread renews, every third of the lease, the leases of the runs this pool has in
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
/* Start n worker threads. NULL when none could start. */
struct gate_workers *gate_workers_start(const struct gate_env *env, int n);
/* Stop and join the workers (a run in progress finishes first). NULL is fine. */
void gate_workers_stop(struct gate_workers *w);
/* Wake idle workers of this process: a run was queued. */
void gate_kick(void);

#endif
