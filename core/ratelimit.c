/*
 * core/ratelimit.c
 *    Token bucket + GitLab-header tightening + shared pause (see ratelimit.h).
 */
#include "ratelimit.h"

#include "xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct ratelimit {
	pthread_mutex_t mu;
	double base_rate;  /* tokens per ms from the configuration; 0 = unlimited */
	double base_burst; /* bucket size for base_rate */
	double tokens;
	int64_t last_ms;   /* last refill */
	double tight_rate; /* tokens per ms allowed until tight_until_ms (from RateLimit-* headers) */
	double tight_burst;
	int64_t tight_until_ms;
	int64_t paused_until_ms;
};

int64_t ratelimit_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ratelimit *ratelimit_new(int per_minute)
{
	struct ratelimit *rl = NULL;
	if (per_minute < 0)
		return NULL;
	rl = xcalloc(1, sizeof(*rl));
	pthread_mutex_init(&rl->mu, NULL); /* default attributes: cannot fail on Linux */
	rl->base_rate = per_minute / 60000.0;
	rl->base_burst = per_minute / 6 > 1 ? per_minute / 6 : 1;
	rl->tokens = rl->base_burst;
	rl->last_ms = ratelimit_now_ms();
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

/* The rate (tokens/ms, < 0 for unlimited) and burst in force at now_ms. Called with the lock held. */
static double current_rate(const struct ratelimit *rl, int64_t now_ms, double *burst_out)
{
	double rate = rl->base_rate > 0 ? rl->base_rate : -1;
	double burst = rl->base_burst;
	if (now_ms < rl->tight_until_ms && (rate < 0 || rl->tight_rate < rate)) {
		rate = rl->tight_rate;
		burst = rl->tight_burst;
	}
	*burst_out = burst;
	return rate;
}

static void refill(struct ratelimit *rl, int64_t now_ms, double rate, double burst)
{
	if (now_ms > rl->last_ms && rate > 0)
		rl->tokens += (double)(now_ms - rl->last_ms) * rate;
	if (rl->tokens > burst)
		rl->tokens = burst;
	if (now_ms > rl->last_ms)
		rl->last_ms = now_ms;
}

bool ratelimit_try_acquire(struct ratelimit *rl, int64_t now_ms, int64_t *wait_ms_out)
{
	bool ok = false;
	int64_t wait = 1;
	double burst;

	pthread_mutex_lock(&rl->mu);
	if (now_ms < rl->paused_until_ms) {
		wait = rl->paused_until_ms - now_ms;
		goto out;
	}
	double rate = current_rate(rl, now_ms, &burst);
	if (rate < 0) {
		ok = true;
		goto out;
	}
	refill(rl, now_ms, rate, burst);
	if (rl->tokens >= 1.0) {
		rl->tokens -= 1.0;
		ok = true;
		goto out;
	}
	if (rate > 0)
		wait = (int64_t)((1.0 - rl->tokens) / rate) + 1;
	else
		wait = rl->tight_until_ms - now_ms;
	if (rl->tight_until_ms > now_ms && wait > rl->tight_until_ms - now_ms)
		wait = rl->tight_until_ms - now_ms; /* the tight window ends first: ask again then */
	if (wait < 1)
		wait = 1;
out:
	pthread_mutex_unlock(&rl->mu);
	if (wait_ms_out)
		*wait_ms_out = ok ? 0 : wait;
	return ok;
}

void ratelimit_pause_until(struct ratelimit *rl, int64_t until_ms)
{
	pthread_mutex_lock(&rl->mu);
	if (until_ms > rl->paused_until_ms)
		rl->paused_until_ms = until_ms;
	pthread_mutex_unlock(&rl->mu);
}

int64_t ratelimit_paused_until(struct ratelimit *rl)
{
	pthread_mutex_lock(&rl->mu);
	int64_t t = rl->paused_until_ms;
	pthread_mutex_unlock(&rl->mu);
	return t;
}

void ratelimit_observe(struct ratelimit *rl, int64_t now_ms, int64_t remaining, int64_t reset_in_ms)
{
	double burst;
	if (remaining < 0 || reset_in_ms <= 0)
		return;
	if (reset_in_ms > 3600 * 1000)
		reset_in_ms = 3600 * 1000; /* a bogus far reset must not stall us for longer than an hour */
	pthread_mutex_lock(&rl->mu);
	double old_rate = current_rate(rl, now_ms, &burst);
	refill(rl, now_ms, old_rate, burst);
	if (remaining == 0) {
		if (now_ms + reset_in_ms > rl->paused_until_ms)
			rl->paused_until_ms = now_ms + reset_in_ms;
	} else {
		rl->tight_rate = (double)remaining / (double)reset_in_ms;
		rl->tight_burst = remaining < rl->base_burst || rl->base_rate <= 0 ? (double)remaining : rl->base_burst;
		if (rl->tight_burst > 100)
			rl->tight_burst = 100;
		rl->tight_until_ms = now_ms + reset_in_ms;
		double nb;
		double new_rate = current_rate(rl, now_ms, &nb);
		if (new_rate >= 0 && rl->tokens > nb)
			rl->tokens = nb;
		if (old_rate < 0 && new_rate >= 0)
			rl->tokens = nb < 1 ? nb : 1; /* leaving unlimited: start with one slot, not a full bucket */
	}
	pthread_mutex_unlock(&rl->mu);
}

int64_t ratelimit_effective_per_minute(struct ratelimit *rl, int64_t now_ms)
{
	double burst;
	pthread_mutex_lock(&rl->mu);
	double rate = current_rate(rl, now_ms, &burst);
	pthread_mutex_unlock(&rl->mu);
	return rate < 0 ? 0 : (int64_t)(rate * 60000.0);
}
