/*
 * core/endpointlimit.h
 *    Back-off per GitLab endpoint (and per project for per-project limits) after GitLab's per-endpoint 429s.
 *
 * Design: GitLab has two kinds of 429 (GITLAB-API.md §10). The instance-wide limit (Rack::Attack) answers plain
 * text with RateLimit-* and Retry-After headers: every request of the user is refused, so the client pauses every
 * request to that GitLab (core/ratelimit.h). The application limits of single endpoints
 * (Gitlab::ApplicationRateLimiter: repository archive 5 a minute per project and user, GET /projects/:id 400/min, GET
 * /groups/:id 400/min, GET /groups/:id/projects 600/min, note creation 60/min on GitLab.com) answer JSON
 * {"message":{"error":"This endpoint has been requested too many times. Try again later."}} with neither header:
 * only that endpoint (for the archive, of that project) is refused and everything else keeps working. For those,
 * this table makes every caller of the same key wait, with a delay that doubles per 429 in a row (base, 2 x base,
 * ... up to ENDPOINTLIMIT_MAX_MS, GitLab's windows being a minute), and a success of the key ends the streak. When
 * the wait is over, one request probes the endpoint and the others wait for its answer (a probe that gets no answer
 * lets the next one go after ENDPOINTLIMIT_PROBE_MS). So a limited endpoint gets a few 429s a minute at most,
 * however many workers want it, and no other request waits.
 * Keys: "METHOD /template" (gitlab_path_template), plus "@<project id or path>" for the per-project limits
 * (endpointlimit_key(); a path longer than ENDPOINTLIMIT_ID_MAX becomes "@#<its hash>", never a cut prefix). The table
 * holds ENDPOINTLIMIT_SLOTS keys; the least recently used one is recycled. Threading: every function is thread-safe
 * (one mutex per table). Ownership: keys are copied.
 */
#ifndef MRGATE_CORE_ENDPOINTLIMIT_H
#define MRGATE_CORE_ENDPOINTLIMIT_H

#include <stddef.h>
#include <stdint.h>

#define ENDPOINTLIMIT_SLOTS    256
#define ENDPOINTLIMIT_KEY_MAX  192 /* fits every template with "@" and a project segment of ENDPOINTLIMIT_ID_MAX */
#define ENDPOINTLIMIT_ID_MAX   64  /* a longer project segment is replaced by "#" and its 64-bit hash */
#define ENDPOINTLIMIT_MAX_MS   60000
#define ENDPOINTLIMIT_PROBE_MS 10000
#define ENDPOINTLIMIT_POLL_MS  200

struct endpointlimit;

struct endpointlimit *endpointlimit_new(void);    /* never NULL (core/xalloc.h) */
void endpointlimit_free(struct endpointlimit *t); /* NULL is fine */

/*
 * The key of a request: method and path template, and for per-project limits (the repository archive) the
 * project segment of the concrete path. Always NUL-terminates out (cap > 0).
 */
void endpointlimit_key(const char *method, const char *tmpl, const char *path, char *out, size_t cap);

/* A per-endpoint 429 on key at now_ms: returns the delay (ms) before the key may be tried again; *streak_out (may be
 * NULL) gets the number of 429s in a row. base_ms >= 1. */
int64_t endpointlimit_throttled(struct endpointlimit *t, const char *key, int64_t now_ms, int64_t base_ms,
                                int *streak_out);
/* Milliseconds until key may be tried (0 = now: when the key is backing off, the caller is its probe). */
int64_t endpointlimit_wait(struct endpointlimit *t, const char *key, int64_t now_ms);
/* A success on key: the streak ends. */
void endpointlimit_ok(struct endpointlimit *t, const char *key);

#endif
