/*
 * core/limiter.h
 *    A counting semaphore that bounds how many GitLab operations run at once across all job workers.
 *
 * Design: limiter_new(n) allows n holders; limiter_acquire() blocks until a slot is free, limiter_release()
 * frees one. The apply engine wraps each GitLab exchange (or each repo's read-then-write sequence) in an
 * acquire/release pair, so however many worker threads run (MRGATE_WORKERS) at most MRGATE_GITLAB_CONCURRENCY
 * (default 8) talk to GitLab at once; the client's rate limiter (core/ratelimit.h) still paces the requests that
 * are let through. The bound is per process: two mrgate instances on one database each allow n, so a deployment
 * of k replicas may have k * n requests in flight (size n accordingly, or rely on the shared rate limit and
 * GitLab's RateLimit-* headers, which every instance follows).
 * limiter_acquire_timed() gives up after a timeout, for callers that must not block forever (shutdown).
 * Threading: every function is safe from any thread (one mutex and condition variable).
 * Ownership: limiter_new()'s result is freed with limiter_free() (NULL is fine) once no thread uses it.
 */
#ifndef MRGATE_CORE_LIMITER_H
#define MRGATE_CORE_LIMITER_H

#include <stdbool.h>

struct limiter;

/* A limiter of n (>= 1) slots; NULL when n < 1 or the condition variable cannot be made. */
struct limiter *limiter_new(int n);
void limiter_free(struct limiter *l);

/* Take a slot, waiting as long as needed. */
void limiter_acquire(struct limiter *l);
/*
 * The same, ahead of every limiter_acquire() waiting: the next slot freed is this caller's. For a taker of several
 * slots that holds the ones it has while it waits for the rest (a job's group list, read in pages side by side):
 * queued behind the other takers, it held them idle for up to 60 ms (docs/PERFORMANCE.md, session 30).
 */
void limiter_acquire_first(struct limiter *l);
/* Take a slot if one frees up within timeout_ms (0 = only if free now); true when taken. */
bool limiter_acquire_timed(struct limiter *l, long timeout_ms);
/* Give back a slot taken by an acquire. Releasing more than was acquired is a bug and is ignored (logged). */
void limiter_release(struct limiter *l);

/* Slots taken right now and the high-water mark since creation, for tests and metrics. */
int limiter_in_use(struct limiter *l);
int limiter_peak(struct limiter *l);
int limiter_capacity(const struct limiter *l);

#endif
