/*
 * core/limiter.c
 *    Counting semaphore over a pthread mutex and condition variable.
 */
#include "limiter.h"

#include "cond.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct limiter {
	pthread_mutex_t mu;
	pthread_cond_t freed;       /* CLOCK_MONOTONIC */
	pthread_cond_t freed_first; /* limiter_acquire_first() waits here */
	int capacity;
	int in_use;
	int peak;
	int first_waiting; /* limiter_acquire_first() callers waiting: a freed slot is theirs */
};

struct limiter *limiter_new(int n)
{
	struct limiter *l = NULL;
	pthread_condattr_t ca;
	bool ca_ok = false, mu_ok = false, ok = false;

	if (n < 1)
		goto out;
	l = xcalloc(1, sizeof(*l));
	l->capacity = n;
	if (pthread_mutex_init(&l->mu, NULL) != 0)
		goto out;
	mu_ok = true;
	if (pthread_condattr_init(&ca) != 0)
		goto out;
	ca_ok = true;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 || pthread_cond_init(&l->freed, &ca) != 0)
		goto out;
	if (pthread_cond_init(&l->freed_first, &ca) != 0) {
		pthread_cond_destroy(&l->freed);
		goto out;
	}
	ok = true;
out:
	if (ca_ok)
		pthread_condattr_destroy(&ca);
	if (!ok) {
		if (mu_ok)
			pthread_mutex_destroy(&l->mu);
		free(l);
		l = NULL;
	}
	return l;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	pthread_cond_destroy(&l->freed);
	pthread_cond_destroy(&l->freed_first);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* Called with l->mu held and a slot free. */
static void take(struct limiter *l)
{
	l->in_use++;
	if (l->in_use > l->peak)
		l->peak = l->in_use;
}

/* A slot is free for an ordinary taker (l->mu held): none is waiting with limiter_acquire_first(). */
static bool free_for_all(const struct limiter *l)
{
	return l->in_use < l->capacity && l->first_waiting == 0;
}

void limiter_acquire(struct limiter *l)
{
	pthread_mutex_lock(&l->mu);
	while (!free_for_all(l))
		pthread_cond_wait(&l->freed, &l->mu);
	take(l);
	pthread_mutex_unlock(&l->mu);
}

void limiter_acquire_first(struct limiter *l)
{
	pthread_mutex_lock(&l->mu);
	l->first_waiting++;
	while (l->in_use >= l->capacity)
		pthread_cond_wait(&l->freed_first, &l->mu);
	l->first_waiting--;
	take(l);
	if (free_for_all(l)) /* ordinary takers held back while this one waited */
		pthread_cond_broadcast(&l->freed);
	pthread_mutex_unlock(&l->mu);
}

bool limiter_acquire_timed(struct limiter *l, long timeout_ms)
{
	struct timespec deadline = cond_deadline(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : 0);
	bool taken = false;

	pthread_mutex_lock(&l->mu);
	while (!free_for_all(l) && timeout_ms > 0) {
		if (pthread_cond_timedwait(&l->freed, &l->mu, &deadline) == ETIMEDOUT)
			break;
	}
	if (free_for_all(l)) {
		take(l);
		taken = true;
	}
	pthread_mutex_unlock(&l->mu);
	return taken;
}

void limiter_release(struct limiter *l)
{
	bool bogus = false;

	pthread_mutex_lock(&l->mu);
	if (l->in_use > 0) {
		l->in_use--;
		pthread_cond_signal(l->first_waiting > 0 ? &l->freed_first : &l->freed);
	} else {
		bogus = true;
	}
	pthread_mutex_unlock(&l->mu);
	if (bogus)
		log_error("limiter released more often than acquired");
}

int limiter_in_use(struct limiter *l)
{
	pthread_mutex_lock(&l->mu);
	int n = l->in_use;
	pthread_mutex_unlock(&l->mu);
	return n;
}

int limiter_peak(struct limiter *l)
{
	pthread_mutex_lock(&l->mu);
	int n = l->peak;
	pthread_mutex_unlock(&l->mu);
	return n;
}

int limiter_capacity(const struct limiter *l)
{
	return l->capacity;
}
