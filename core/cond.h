/*
 * core/cond.h
 *    Two helpers around pthread condition variables that the engines (job runner, gate workers, scheduler, limiter)
 *    had each written for themselves.
 *
 * Design: cond_deadline turns "ms from now" into the absolute time pthread_cond_timedwait wants, on the clock the
 * condition variable was made with (CLOCK_MONOTONIC when it was set with pthread_condattr_setclock, else
 * CLOCK_REALTIME): passing the wrong clock is the classic bug that makes a wait return at once or never.
 * cond_raise sets a flag under its mutex and wakes every waiter: the way to tell threads to stop (they test the
 * flag under the same mutex after each wake-up, so none can miss it).
 * Threading: both are safe from any thread; cond_raise takes mu itself, so the caller must not hold it.
 * Ownership: nothing is allocated; the mutex, condition variable and flag stay the caller's.
 */
#ifndef MRGATE_CORE_COND_H
#define MRGATE_CORE_COND_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* The time ms (>= 0) milliseconds from now on clock, normalised (tv_nsec < 1e9). */
struct timespec cond_deadline(clockid_t clock, long ms);

/* Lock mu, set *flag to true, wake every waiter of cv, unlock. */
void cond_raise(pthread_mutex_t *mu, pthread_cond_t *cv, bool *flag);

#endif
