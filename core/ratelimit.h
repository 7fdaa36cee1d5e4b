/*
 * core/ratelimit.h
 *    A client-side rate limiter for one GitLab: a token bucket of requests per minute, tightened by the
 *    RateLimit-Remaining/-Reset headers GitLab sends, and a shared "paused until" time set by 429 answers.
 *
 * Design: the bucket holds up to max(1, per_minute / 6) tokens (ten seconds of burst) and refills at
 * per_minute / 60000 tokens per ms; per_minute 0 means no client-side limit. When GitLab reports
 * RateLimit-Remaining r with a reset in d ms, the remaining requests are spread over the time left: until the
 * reset the rate is at most r / d and the burst at most r (r == 0 pauses until the reset). A pause (from a 429)
 * blocks every caller until it ends; pauses only ever extend. Times are CLOCK_MONOTONIC milliseconds
 * (ratelimit_now_ms()); wall-clock deadlines from headers are converted by the caller.
 * Threading: every function is safe from any thread; one mutex guards the state.
 * Ownership: ratelimit_new() returns a limiter the caller frees with ratelimit_free() (NULL is fine).
 */
#ifndef MRGATE_CORE_RATELIMIT_H
#define MRGATE_CORE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* A limiter of per_minute requests per minute (0 = unlimited); NULL when per_minute < 0. */
struct ratelimit *ratelimit_new(int per_minute);
void ratelimit_free(struct ratelimit *rl);

/* The monotonic clock in milliseconds. */
int64_t ratelimit_now_ms(void);

/*
 * Take one request slot if one is free at now_ms and no pause is in force; true when taken. Otherwise false and
 * *wait_ms_out (when not NULL) is how long to wait before asking again (at least 1).
 */
bool ratelimit_try_acquire(struct ratelimit *rl, int64_t now_ms, int64_t *wait_ms_out);

/* Pause every caller until until_ms (monotonic). An earlier pause than the current one changes nothing. */
void ratelimit_pause_until(struct ratelimit *rl, int64_t until_ms);
/* The current pause end (monotonic ms), or 0 when none was ever set. */
int64_t ratelimit_paused_until(struct ratelimit *rl);

/*
 * Tell the limiter what GitLab reported at now_ms: `remaining` requests left (RateLimit-Remaining) until
 * now_ms + reset_in_ms (RateLimit-Reset). Negative remaining or reset_in_ms <= 0 are ignored.
 */
void ratelimit_observe(struct ratelimit *rl, int64_t now_ms, int64_t remaining, int64_t reset_in_ms);

/* The current effective rate in requests per minute (rounded down), or 0 when unlimited; for tests and metrics. */
int64_t ratelimit_effective_per_minute(struct ratelimit *rl, int64_t now_ms);

#endif
