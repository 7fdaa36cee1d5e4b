/*
 * core/gitlab.h
 *    mrgate's GitLab REST API v4 client (libcurl + json-c).
 *
 * Design: one struct gitlab per GitLab base URL + token. Every request goes through the same pipeline:
 *   rate limiter (requests/minute, tightened by RateLimit-Remaining/-Reset) and the shared 429 pause
 *   -> one HTTP exchange (PRIVATE-TOKEN header, TLS verification on, optional CA bundle, connect and total
 *      timeouts, a cap on the response size, no redirects followed: a redirect would carry the token elsewhere)
 *   -> classification: success, retry (5xx/52x, resets, timeouts: jittered exponential backoff, "full jitter";
 *      429: Retry-After seconds or HTTP date, else RateLimit-Reset, else backoff, pausing every caller of this
 *      struct gitlab), or a precise error (enum gitlab_error + a human message + an enum core_status).
 * A POST that may have reached GitLab (reset, timeout after sending, or a 5xx answer) is never repeated: it fails
 * with kind GITLAB_ERR_MAYBE_APPLIED so the caller re-reads and decides. POSTs are retried only when GitLab
 * certainly did not act (connection refused, 429), unless the call is flagged GITLAB_CALL_IDEMPOTENT.
 * GET, HEAD, PUT and DELETE are retried. Pagination follows x-next-page, else Link rel="next"; it never relies on
 * x-total-pages (omitted above 10,000 records). gitlab_multi() fans out with curl_multi at bounded concurrency.
 * Every HTTP exchange is counted by method, path template (/projects/:id/hooks/:hook_id) and status, plus retries
 * and 429s, for /metrics. The token is never logged nor put in a message; messages that could echo it are scrubbed.
 * Messages follow PostgreSQL's style: lower case, no final period, they say why.
 *
 * Threading: gitlab_global_init() once at process start, before any thread uses the client, and
 * gitlab_global_cleanup() once at exit. A struct gitlab is safe to share between threads: all of them share its
 * rate limiter, pause state, DNS and TLS session caches and metrics. gitlab_request()/gitlab_paginate()/
 * gitlab_multi() block the calling thread (sleeping while paused or backing off).
 *
 * Ownership: gitlab_new() copies every string of the options; the token lives in memory zeroed on free.
 * Responses (*resp_out, calls[i].resp) belong to the caller: gitlab_response_free(). Request bodies are borrowed
 * for the duration of the call.
 */
#ifndef MRGATE_CORE_GITLAB_H
#define MRGATE_CORE_GITLAB_H

#include "status.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Call once at process start (curl_global_init, libsodium) / once at exit. gitlab_global_init: CORE_OK or
 * CORE_EINTERNAL. */
enum core_status gitlab_global_init(void);
void gitlab_global_cleanup(void);

struct gitlab;

struct gitlab_opts {
	const char *base_url;       /* "https://gitlab.com" or "https://git.example.com/gitlab"; "/api/v4" is appended
	                               unless the URL already ends with it; http:// or https:// only */
	const char *token;          /* PAT, group/project access token or service-account token */
	const char *scrub_also;     /* another secret hidden like the token in every message (the webhook secret, which
	                               GitLab may echo in an error); NULL = none */
	const char *ca_bundle_file; /* PEM file of CAs to trust instead of the system's; NULL = system store */
	const char *ca_bundle_pem;  /* or PEM text of those CAs, kept in memory (CURLOPT_CAINFO_BLOB): no file */
	long connect_timeout_ms;    /* 0 = 10,000 */
	long total_timeout_ms;      /* per HTTP exchange; 0 = 60,000 */
	size_t max_response_bytes;  /* 0 = 32 MiB */
	int requests_per_minute;    /* client-side limit; 0 = unlimited (GitLab's RateLimit-* headers still apply) */
	int max_retries;            /* retries after the first attempt; < 0 = 4 */
	long backoff_base_ms;       /* 0 = 500 */
	long backoff_max_ms;        /* 0 = 30,000 */
	long max_pause_ms;          /* a 429 pause or rate-limit wait longer than this fails the call with
	                               CORE_ETHROTTLED at once instead of blocking; 0 = 300,000 */
};

/*
 * A client for one GitLab. NULL when an option is invalid (no base URL or token, a scheme other than http(s),
 * a token with control characters, an unreadable CA bundle) or on allocation failure; the reason (never the
 * token) is written to err (when not NULL, err_len > 0).
 */
struct gitlab *gitlab_new(const struct gitlab_opts *o, char *err, size_t err_len);
void gitlab_free(struct gitlab *gl); /* NULL is fine; zeroes the token */

/* The API root requests are sent to, e.g. "https://gitlab.com/api/v4" (borrowed from gl). */
const char *gitlab_api_root(const struct gitlab *gl);

enum gitlab_error {
	GITLAB_ERR_NONE = 0,
	GITLAB_ERR_TOKEN_INVALID, /* 401: unknown, malformed or missing token */
	GITLAB_ERR_TOKEN_EXPIRED, /* 401 invalid_token "Token is expired" */
	GITLAB_ERR_TOKEN_REVOKED, /* 401 invalid_token "Token was revoked" */
	GITLAB_ERR_SCOPE,         /* 403 insufficient_scope */
	GITLAB_ERR_FORBIDDEN,     /* 403: the token's user lacks the role */
	GITLAB_ERR_NOT_FOUND,     /* 404: missing or not visible to the token */
	GITLAB_ERR_CONFLICT,      /* 409 */
	GITLAB_ERR_INVALID,       /* 400, 405, 413, 422: GitLab rejected the request */
	GITLAB_ERR_RATE_LIMITED,  /* 429 after the retries, or a pause longer than max_pause_ms */
	GITLAB_ERR_SERVER,        /* 5xx after the retries */
	GITLAB_ERR_HTTP,          /* another unexpected status (3xx redirect, 1xx, other 4xx) */
	GITLAB_ERR_UNREACHABLE,   /* DNS failure, connection refused, reset on an idempotent request */
	GITLAB_ERR_TLS,           /* certificate verification or handshake failed */
	GITLAB_ERR_TIMEOUT,       /* connect or total timeout */
	GITLAB_ERR_TOO_LARGE,     /* response over max_response_bytes */
	GITLAB_ERR_MAYBE_APPLIED, /* a POST failed after it may have reached GitLab: re-read, then decide */
	GITLAB_ERR_BAD_RESPONSE,  /* a 2xx whose body is not JSON, or a next-page link outside the API */
	GITLAB_ERR_REQUEST,       /* the caller's request is malformed (method, path) */
	GITLAB_ERR_INTERNAL,      /* out of memory, libcurl setup failure */
	GITLAB_ERR_COUNT
};

/* A stable name for the kind, e.g. "token_expired". Never NULL. */
const char *gitlab_error_name(enum gitlab_error kind);

struct gitlab_response {
	long http_status;         /* 0 when GitLab did not answer */
	struct json_object *json; /* owned; the parsed body, NULL when empty or not JSON (an error page) */
	char *body;               /* owned; the raw body, NUL-terminated (never NULL) */
	size_t body_len;
	char *next_page;        /* owned; path+query of the next page (x-next-page, else Link rel="next"), or NULL */
	int attempts;           /* HTTP exchanges made, retries included */
	enum gitlab_error kind; /* GITLAB_ERR_NONE on success */
	char message[512];      /* on failure: why, e.g. "the token is expired"; never contains the token */
};

void gitlab_response_free(struct gitlab_response *r); /* NULL is fine */

/* Flags of a call. */
#define GITLAB_CALL_IDEMPOTENT 0x1u /* a POST that is safe to repeat (e.g. a commit status): retry it like a PUT */
#define GITLAB_CALL_RAW        0x2u /* a 2xx body is kept as bytes (resp->body), not parsed as JSON (archives) */

/*
 * One request. method: GET, HEAD, POST, PUT, PATCH or DELETE. path_and_query: relative to the API root, starting
 * with '/', e.g. "/projects/42/hooks?per_page=100" (encode namespaced ids with gitlab_url_encode_path()).
 * body: sent as application/json when not NULL (borrowed). Returns the status of the call (CORE_OK for 2xx)
 * and sets *resp_out (also on failure, with kind and message; NULL only when even that allocation failed).
 * Status map: 401 CORE_EUNAUTH; 403 CORE_EFORBIDDEN; 404 CORE_ENOTFOUND; 409 CORE_ECONFLICT; 400/405/413/422
 * CORE_EINVAL; 429 CORE_ETHROTTLED; 5xx, other statuses, a bad body CORE_EUPSTREAM; unreachable and TLS
 * CORE_EUNAVAIL; timeouts CORE_ETIMEOUT; over the size cap CORE_ETOOLARGE; a malformed request CORE_EINVAL.
 * GITLAB_ERR_MAYBE_APPLIED comes with CORE_EUNAVAIL (reset), CORE_ETIMEOUT or CORE_EUPSTREAM (5xx).
 */
enum core_status gitlab_request(struct gitlab *gl, const char *method, const char *path_and_query,
                                struct json_object *body, struct gitlab_response **resp_out);
/* The same with flags (GITLAB_CALL_*). */
enum core_status gitlab_request_ex(struct gitlab *gl, const char *method, const char *path_and_query,
                                   struct json_object *body, unsigned flags, struct gitlab_response **resp_out);

/*
 * GET every page of a list: page_cb(page, user) is called with each page's JSON array (borrowed for the call;
 * take a reference with json_object_get() to keep it) until there is no next page. A non-CORE_OK status from
 * page_cb stops the walk and is returned. On a GitLab failure the status is returned and *err_out (when not
 * NULL) gets the failing response (the caller frees it); *err_out is NULL otherwise. A page that is not an
 * array is CORE_EUPSTREAM; so is a next page equal to the current one (a loop).
 */
enum core_status gitlab_paginate(struct gitlab *gl, const char *path_and_query,
                                 enum core_status (*page_cb)(struct json_object *page, void *user), void *user,
                                 struct gitlab_response **err_out);

/*
 * gitlab_paginate() element by element: item_cb(item, user) for each element of every page (borrowed for the
 * call); a non-CORE_OK status from it stops the walk and is returned. *pages_out (may be NULL) gets the pages read.
 */
enum core_status gitlab_paginate_items(struct gitlab *gl, const char *path_and_query,
                                       enum core_status (*item_cb)(struct json_object *item, void *user), void *user,
                                       int *pages_out, struct gitlab_response **err_out);

/* One call of a fan-out. The caller fills the inputs; gitlab_multi() fills the outputs. */
struct gitlab_call {
	const char *method;           /* in, borrowed */
	const char *path;             /* in, borrowed: path and query as for gitlab_request() */
	struct json_object *body;     /* in, borrowed, may be NULL */
	unsigned flags;               /* in: GITLAB_CALL_* */
	void *user;                   /* in: free for the caller */
	enum core_status status;      /* out */
	struct gitlab_response *resp; /* out, owned by the caller: gitlab_response_free() */
};

/*
 * Run n calls with at most `concurrency` (>= 1) HTTP exchanges in flight, started in order and refilled as
 * transfers finish, each under the same rate-limit, pause and retry rules as gitlab_request(). Returns CORE_OK
 * when every call ran (look at calls[i].status and calls[i].resp), or CORE_EINVAL/CORE_ENOMEM/CORE_EINTERNAL
 * when the fan-out could not run (then calls not yet run have status CORE_EINTERNAL and may lack a resp).
 */
enum core_status gitlab_multi(struct gitlab *gl, struct gitlab_call *calls, size_t n, int concurrency);

/*
 * gitlab_multi() that also calls narrowed(user) from the calling thread each time the exchanges it may still have
 * in flight, min(concurrency, calls not yet finished), drop by one: a caller that holds a slot of a shared limit per
 * exchange gives one back there instead of holding it idle until the last call ends (narrowed may be NULL).
 */
enum core_status gitlab_multi_narrowing(struct gitlab *gl, struct gitlab_call *calls, size_t n, int concurrency,
                                        void (*narrowed)(void *user), void *user);

/*
 * Token refusal latch. After the first answer 401 with kind GITLAB_ERR_TOKEN_EXPIRED, _REVOKED or _INVALID, every
 * later call on gl fails at once with that kind, CORE_EUNAUTH, http_status 0 and a message saying the call was not
 * sent, without an HTTP exchange (GitLab would only refuse it again; 1,000 repos would cost 1,000 401s). fn(user,
 * kind, message) is called once, from the thread that received the 401 (set it before sharing gl; it must not call
 * gl). gitlab_set_token_rejected() latches from outside, for a token already known to be refused (no callback).
 */
void gitlab_on_token_rejected(struct gitlab *gl, void (*fn)(void *user, enum gitlab_error kind, const char *message),
                              void *user);
void gitlab_set_token_rejected(struct gitlab *gl, enum gitlab_error kind);
/* GITLAB_ERR_NONE while the latch is open. */
enum gitlab_error gitlab_token_rejected(struct gitlab *gl);

/* --- metrics ------------------------------------------------------------------------------------------------ */

struct gitlab_metric_row {
	char method[8];
	char endpoint[128]; /* path template, e.g. "/projects/:id/hooks/:hook_id"; "other" past 512 templates */
	long status;        /* HTTP status; 0 = no answer (unreachable, reset, timeout, TLS) */
	uint64_t count;
};

struct gitlab_metrics {
	struct gitlab_metric_row *rows; /* owned */
	size_t n_rows;
	uint64_t calls;         /* HTTP exchanges */
	uint64_t retries;       /* exchanges that were retries */
	uint64_t throttled;     /* 429 answers */
	uint64_t maybe_applied; /* POSTs failed with GITLAB_ERR_MAYBE_APPLIED */
};

/* A consistent copy of the counters; *out is the caller's (gitlab_metrics_free()). */
enum core_status gitlab_metrics_snapshot(struct gitlab *gl, struct gitlab_metrics **out);
void gitlab_metrics_free(struct gitlab_metrics *m); /* NULL is fine */

/* --- pure helpers, exposed for callers and tests --------------------------------------------------------------- */

/* URL-encode one path segment or namespaced id: "group/sub" -> "group%2Fsub" (all but A-Za-z0-9-._~). */
enum core_status gitlab_url_encode_path(const char *s, char **out);

/*
 * The metrics template of a path: the query is dropped, numeric segments, URL-encoded paths (containing '%')
 * and commit SHAs become placeholders named after the collection before them:
 * "/projects/42/hooks/7" -> "/projects/:id/hooks/:hook_id", "/groups/a%2Fb" -> "/groups/:id",
 * "/projects/1/merge_requests/3/notes" -> "/projects/:id/merge_requests/:merge_request_iid/notes".
 * Always NUL-terminates buf (cap > 0), truncating when needed.
 */
void gitlab_path_template(const char *path, char *buf, size_t cap);

/*
 * Retry-After: delta seconds ("120") or an HTTP date (IMF-fixdate, RFC 850, asctime) compared with `now`.
 * true with *delay_ms_out >= 0 (a date in the past gives 0); false when unparseable. Seconds are capped at a day.
 */
bool gitlab_parse_retry_after(const char *value, time_t now, int64_t *delay_ms_out);

/*
 * RateLimit-Reset: the Unix time (seconds) the window resets, compared with `now`. true with *delay_ms_out in
 * [0, one day] (a time in the past gives 0, any larger wait is capped); false when not a plain decimal number.
 */
bool gitlab_parse_ratelimit_reset(const char *value, time_t now, int64_t *delay_ms_out);

/* The URL of the rel="next" entry of a Link header; *url_out is malloc'd (caller frees). false when absent. */
bool gitlab_parse_link_next(const char *link, char **url_out);

/*
 * The path+query of the next page given the current request path, the x-next-page header (may be NULL or empty)
 * and the Link header (may be NULL): x-next-page replaces or adds page=N; otherwise the Link rel="next" URL is
 * reduced to what follows "/api/v4" (it is always sent to our own API root, never to a host named in a header).
 * CORE_OK with *next_out NULL when this is the last page; CORE_EUPSTREAM when a next link exists but is unusable.
 */
enum core_status gitlab_next_page_path(const char *cur_path, const char *x_next_page, const char *link,
                                       char **next_out);

/*
 * Classify a GitLab error answer (status and body, e.g. GITLAB-API.md §1.1) and write a message to msg.
 * Returns the kind; gitlab_error_status() maps a kind to a core status.
 */
enum gitlab_error gitlab_classify_error(long http_status, const char *body, size_t body_len, char *msg, size_t msg_cap);
enum core_status gitlab_error_status(enum gitlab_error kind);

/* --- merge request discussions (doc/api/discussions.md) -------------------------------------------------------- */

/* A discussion id as GitLab gives it (lower-case hex, 1..64 characters): safe to put in a path. */
bool gitlab_discussion_id_ok(const char *id);
/*
 * POST /projects/:id/merge_requests/:iid/discussions with body ({"body", "position": {...}}, borrowed); id_out gets
 * the new discussion's id. A 2xx without a usable id is CORE_EUPSTREAM. *resp_out as for gitlab_request().
 */
enum core_status gitlab_mr_discussion_create(struct gitlab *gl, int64_t project_id, int64_t mr_iid,
                                             struct json_object *body, char id_out[65],
                                             struct gitlab_response **resp_out);
/* PUT .../discussions/:discussion_id {"resolved": resolved}. CORE_EINVAL (and *resp_out NULL) for a bad id. */
enum core_status gitlab_mr_discussion_resolve(struct gitlab *gl, int64_t project_id, int64_t mr_iid,
                                              const char *discussion_id, bool resolved,
                                              struct gitlab_response **resp_out);
/* GET every page of the MR's discussions: item_cb for each (as gitlab_paginate_items()). */
enum core_status gitlab_mr_discussions_each(struct gitlab *gl, int64_t project_id, int64_t mr_iid,
                                            enum core_status (*item_cb)(struct json_object *item, void *user),
                                            void *user, struct gitlab_response **err_out);

#endif
