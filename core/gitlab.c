/*
 * core/gitlab.c
 *    The GitLab REST client: requests, retries, 429 pauses, rate limiting, pagination, fan-out, metrics.
 *
 * One request ("xfer") lives through several attempts. An attempt is one HTTP exchange on a libcurl easy handle;
 * xfer_finish() looks at its outcome and either completes the xfer (response + status) or schedules a retry
 * (xfer->not_before_ms). gitlab_request() drives one xfer with curl_easy_perform() on a pooled easy handle (the
 * pool keeps connections alive between requests); gitlab_multi() drives many on one curl_multi handle, like
 * curl's docs/examples/10-at-a-time.c. Connections are not shared between threads (libcurl's shared connection
 * cache is not thread-safe); DNS and TLS sessions are, through a CURLSH with locks.
 */
#include "gitlab.h"

#include "buf.h"
#include "endpointlimit.h"
#include "jsonx.h"
#include "log.h"
#include "ratelimit.h"
#include "xalloc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef MRGATE_VERSION
#define MRGATE_VERSION "dev"
#endif

#define POOL_MAX        256
#define METRIC_ROWS_MAX 512
#define LINK_MAX        16384
#define PATH_MAX_LEN    8192

/* --- global ---------------------------------------------------------------------------------------------------- */

enum core_status gitlab_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return CORE_EINTERNAL;
	if (sodium_init() < 0)
		return CORE_EINTERNAL;
	return CORE_OK;
}

void gitlab_global_cleanup(void)
{
	curl_global_cleanup();
}

/* --- the client ---------------------------------------------------------------------------------------------- */

/* The first wait after a per-endpoint 429 (doubling per 429 in a row up to a minute): GitLab's per-endpoint
 * windows are a minute long, so the client's short retry backoff would only collect more 429s. */
#define ENDPOINT_BACKOFF_BASE_MS 1000

struct gitlab {
	char *api_root; /* "https://host/api/v4" */
	char *base;     /* "https://host", for messages */
	char *token;    /* sodium_malloc'd; only used to scrub messages */
	char *also;     /* sodium_malloc'd or NULL: gitlab_opts.scrub_also */
	char *ca_bundle;
	char *ca_pem; /* CA bundle as PEM text, handed to libcurl as a blob */
	long connect_timeout_ms, total_timeout_ms, backoff_base_ms, backoff_max_ms, max_pause_ms;
	size_t max_response;
	int max_retries;
	struct curl_slist *hdrs;      /* PRIVATE-TOKEN, Accept, Expect */
	struct curl_slist *hdrs_json; /* the same + Content-Type: application/json */
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	struct ratelimit *rl;
	struct endpointlimit *el; /* per-endpoint 429s (endpointlimit.h) */

	pthread_mutex_t pool_mu;
	CURL *pool[POOL_MAX];
	int n_pool;

	pthread_mutex_t metrics_mu;
	struct gitlab_metric_row *rows;
	size_t n_rows, cap_rows;
	uint64_t calls, retries, throttled, maybe_applied;

	/* token refusal latch (gitlab_on_token_rejected()) */
	_Atomic int rejected; /* enum gitlab_error; GITLAB_ERR_NONE while open */
	void (*on_rejected)(void *user, enum gitlab_error kind, const char *message);
	void *on_rejected_user;
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
	(void)h;
	(void)access;
	struct gitlab *gl = user;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&gl->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
	(void)h;
	struct gitlab *gl = user;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&gl->share_mu[data]);
}

static void set_err(char *err, size_t err_len, const char *msg)
{
	if (err && err_len > 0)
		snprintf(err, err_len, "%s", msg);
}

/* Zero every header string (one carries the token) before freeing the list. */
static void slist_free_zeroed(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data)
			sodium_memzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static bool valid_token(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 1024)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

/* The header lists: built once, read-only afterwards, so every handle of every thread can use them. */
static bool build_headers(struct gitlab *gl, const char *token)
{
	bool ok = false;
	size_t n = strlen("PRIVATE-TOKEN: ") + strlen(token) + 1;
	char *line = sodium_malloc(n);
	if (!line)
		return false;
	snprintf(line, n, "PRIVATE-TOKEN: %s", token);
	static const char *const common[] = {"Accept: application/json", "Expect:"};
	for (int j = 0; j < 2; j++) {
		struct curl_slist **l = j == 0 ? &gl->hdrs : &gl->hdrs_json;
		struct curl_slist *t = curl_slist_append(*l, line);
		if (!t)
			goto out;
		*l = t;
		for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
			t = curl_slist_append(*l, common[i]);
			if (!t)
				goto out;
			*l = t;
		}
	}
	struct curl_slist *t = curl_slist_append(gl->hdrs_json, "Content-Type: application/json");
	if (!t)
		goto out;
	gl->hdrs_json = t;
	ok = true;
out:
	sodium_free(line);
	return ok;
}

/* Check the options of gitlab_new(); false with err set when they cannot work. */
static bool opts_valid(const struct gitlab_opts *o, char *err, size_t err_len)
{
	if (!o || !o->base_url || !*o->base_url) {
		set_err(err, err_len, "the GitLab URL is missing");
		return false;
	}
	if (!o->token || !*o->token) {
		set_err(err, err_len, "the GitLab token is missing");
		return false;
	}
	if (strncasecmp(o->base_url, "https://", 8) != 0 && strncasecmp(o->base_url, "http://", 7) != 0) {
		set_err(err, err_len, "the GitLab URL must start with https:// or http://");
		return false;
	}
	for (const char *p = o->base_url; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '?' || *p == '#') {
			set_err(err, err_len, "the GitLab URL must be a plain base URL (no spaces, query or fragment)");
			return false;
		}
	}
	if (!valid_token(o->token)) {
		set_err(err, err_len, "the GitLab token contains spaces or control characters");
		return false;
	}
	if (o->ca_bundle_file && *o->ca_bundle_file && access(o->ca_bundle_file, R_OK) != 0) {
		if (err && err_len)
			snprintf(err, err_len, "cannot read the CA bundle file %s: %s", o->ca_bundle_file,
			         strerror(errno));
		return false;
	}
	if (sodium_init() < 0) {
		set_err(err, err_len, "libsodium could not be initialised");
		return false;
	}
	return true;
}

/* Copy the options' strings and limits into gl (the token into locked memory); false when that memory fails. */
static bool copy_opts(struct gitlab *gl, const struct gitlab_opts *o)
{
	/* Base and API root: strip trailing slashes and an "/api/v4" the user may have typed. */
	size_t blen = strlen(o->base_url);
	while (blen > 0 && o->base_url[blen - 1] == '/')
		blen--;
	if (blen >= 7 && strncmp(o->base_url + blen - 7, "/api/v4", 7) == 0)
		blen -= 7;
	while (blen > 0 && o->base_url[blen - 1] == '/')
		blen--;
	gl->base = xstrndup(o->base_url, blen);
	struct buf root = {0};
	buf_printf(&root, "%s/api/v4", gl->base);
	gl->api_root = buf_steal(&root);
	if (o->ca_bundle_file && *o->ca_bundle_file)
		gl->ca_bundle = xstrdup(o->ca_bundle_file);
	if (o->ca_bundle_pem && *o->ca_bundle_pem)
		gl->ca_pem = xstrdup(o->ca_bundle_pem);
	gl->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	gl->total_timeout_ms = o->total_timeout_ms > 0 ? o->total_timeout_ms : 60000;
	gl->max_response = o->max_response_bytes > 0 ? o->max_response_bytes : (size_t)32 << 20;
	gl->max_retries = o->max_retries >= 0 ? o->max_retries : 4;
	gl->backoff_base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms : 500;
	gl->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 30000;
	if (gl->backoff_max_ms < gl->backoff_base_ms)
		gl->backoff_max_ms = gl->backoff_base_ms;
	gl->max_pause_ms = o->max_pause_ms > 0 ? o->max_pause_ms : 300000;
	size_t tlen = strlen(o->token);
	gl->token = sodium_malloc(tlen + 1); /* guarded pages: may fail where malloc would not */
	if (!gl->token)
		return false;
	memcpy(gl->token, o->token, tlen + 1);
	if (o->scrub_also && *o->scrub_also) {
		size_t alen = strlen(o->scrub_also);
		gl->also = sodium_malloc(alen + 1);
		if (!gl->also)
			return false;
		memcpy(gl->also, o->scrub_also, alen + 1);
	}
	return true;
}

/* What gitlab_new() has initialised so far, for undoing it. */
struct new_state {
	int share_mu_n;
	bool pool_mu, metrics_mu;
};

/* The locks and the libcurl share handle (DNS cache and TLS sessions shared by all handles of gl). */
static bool sync_init(struct gitlab *gl, struct new_state *ns)
{
	for (; ns->share_mu_n < CURL_LOCK_DATA_LAST; ns->share_mu_n++)
		if (pthread_mutex_init(&gl->share_mu[ns->share_mu_n], NULL) != 0)
			return false;
	if (pthread_mutex_init(&gl->pool_mu, NULL) != 0)
		return false;
	ns->pool_mu = true;
	if (pthread_mutex_init(&gl->metrics_mu, NULL) != 0)
		return false;
	ns->metrics_mu = true;
	gl->share = curl_share_init();
	return gl->share && curl_share_setopt(gl->share, CURLSHOPT_LOCKFUNC, share_lock) == CURLSHE_OK &&
	       curl_share_setopt(gl->share, CURLSHOPT_UNLOCKFUNC, share_unlock) == CURLSHE_OK &&
	       curl_share_setopt(gl->share, CURLSHOPT_USERDATA, gl) == CURLSHE_OK &&
	       curl_share_setopt(gl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK &&
	       curl_share_setopt(gl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK;
}

/* Free a client, as far as ns says it was initialised (gitlab_free: all of it; gitlab_new: what it got to). */
static void free_client(struct gitlab *gl, const struct new_state *ns)
{
	if (gl->share)
		curl_share_cleanup(gl->share);
	for (int i = 0; i < ns->share_mu_n; i++)
		pthread_mutex_destroy(&gl->share_mu[i]);
	if (ns->pool_mu)
		pthread_mutex_destroy(&gl->pool_mu);
	if (ns->metrics_mu)
		pthread_mutex_destroy(&gl->metrics_mu);
	ratelimit_free(gl->rl);
	endpointlimit_free(gl->el);
	slist_free_zeroed(gl->hdrs);
	slist_free_zeroed(gl->hdrs_json);
	if (gl->token)
		sodium_free(gl->token);
	if (gl->also)
		sodium_free(gl->also);
	free(gl->ca_bundle);
	free(gl->ca_pem);
	free(gl->api_root);
	free(gl->base);
	free(gl->rows);
	free(gl);
}

struct gitlab *gitlab_new(const struct gitlab_opts *o, char *err, size_t err_len)
{
	set_err(err, err_len, "");
	if (!opts_valid(o, err, err_len))
		return NULL;
	struct gitlab *gl = xcalloc(1, sizeof(*gl));
	struct new_state ns = {0};
	bool ok = copy_opts(gl, o) && build_headers(gl, o->token);
	if (ok) {
		gl->rl = ratelimit_new(o->requests_per_minute > 0 ? o->requests_per_minute : 0);
		gl->el = endpointlimit_new();
		ok = gl->rl && gl->el && sync_init(gl, &ns);
	}
	if (!ok) {
		set_err(err, err_len, "out of memory while creating the GitLab client");
		free_client(gl, &ns);
		return NULL;
	}
	return gl;
}

void gitlab_free(struct gitlab *gl)
{
	if (!gl)
		return;
	for (int i = 0; i < gl->n_pool; i++)
		curl_easy_cleanup(gl->pool[i]);
	free_client(gl, &(struct new_state){CURL_LOCK_DATA_LAST, true, true});
}

const char *gitlab_api_root(const struct gitlab *gl)
{
	return gl->api_root;
}

static CURL *pool_get(struct gitlab *gl)
{
	CURL *h = NULL;
	pthread_mutex_lock(&gl->pool_mu);
	if (gl->n_pool > 0)
		h = gl->pool[--gl->n_pool];
	pthread_mutex_unlock(&gl->pool_mu);
	return h ? h : curl_easy_init();
}

/* Return a handle to the pool; curl_easy_reset() keeps its live connections for the next request. */
static void pool_put(struct gitlab *gl, CURL *h)
{
	if (!h)
		return;
	curl_easy_reset(h);
	pthread_mutex_lock(&gl->pool_mu);
	if (gl->n_pool < POOL_MAX) {
		gl->pool[gl->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&gl->pool_mu);
	if (h)
		curl_easy_cleanup(h);
}

/* --- names, statuses ---------------------------------------------------------------------------------------- */

const char *gitlab_error_name(enum gitlab_error kind)
{
	switch (kind) {
	case GITLAB_ERR_NONE: return "none";
	case GITLAB_ERR_TOKEN_INVALID: return "token_invalid";
	case GITLAB_ERR_TOKEN_EXPIRED: return "token_expired";
	case GITLAB_ERR_TOKEN_REVOKED: return "token_revoked";
	case GITLAB_ERR_SCOPE: return "insufficient_scope";
	case GITLAB_ERR_FORBIDDEN: return "forbidden";
	case GITLAB_ERR_NOT_FOUND: return "not_found";
	case GITLAB_ERR_CONFLICT: return "conflict";
	case GITLAB_ERR_INVALID: return "invalid";
	case GITLAB_ERR_RATE_LIMITED: return "rate_limited";
	case GITLAB_ERR_SERVER: return "server_error";
	case GITLAB_ERR_HTTP: return "unexpected_status";
	case GITLAB_ERR_UNREACHABLE: return "unreachable";
	case GITLAB_ERR_TLS: return "tls";
	case GITLAB_ERR_TIMEOUT: return "timeout";
	case GITLAB_ERR_TOO_LARGE: return "too_large";
	case GITLAB_ERR_MAYBE_APPLIED: return "maybe_applied";
	case GITLAB_ERR_BAD_RESPONSE: return "bad_response";
	case GITLAB_ERR_REQUEST: return "bad_request";
	case GITLAB_ERR_INTERNAL: return "internal";
	case GITLAB_ERR_COUNT: break;
	}
	return "unknown";
}

enum core_status gitlab_error_status(enum gitlab_error kind)
{
	switch (kind) {
	case GITLAB_ERR_NONE: return CORE_OK;
	case GITLAB_ERR_TOKEN_INVALID:
	case GITLAB_ERR_TOKEN_EXPIRED:
	case GITLAB_ERR_TOKEN_REVOKED: return CORE_EUNAUTH;
	case GITLAB_ERR_SCOPE:
	case GITLAB_ERR_FORBIDDEN: return CORE_EFORBIDDEN;
	case GITLAB_ERR_NOT_FOUND: return CORE_ENOTFOUND;
	case GITLAB_ERR_CONFLICT: return CORE_ECONFLICT;
	case GITLAB_ERR_INVALID: return CORE_EINVAL;
	case GITLAB_ERR_RATE_LIMITED: return CORE_ETHROTTLED;
	case GITLAB_ERR_SERVER:
	case GITLAB_ERR_HTTP:
	case GITLAB_ERR_BAD_RESPONSE: return CORE_EUPSTREAM;
	case GITLAB_ERR_UNREACHABLE:
	case GITLAB_ERR_TLS: return CORE_EUNAVAIL;
	case GITLAB_ERR_TIMEOUT: return CORE_ETIMEOUT;
	case GITLAB_ERR_TOO_LARGE: return CORE_ETOOLARGE;
	case GITLAB_ERR_MAYBE_APPLIED: return CORE_EUNAVAIL; /* callers override with the precise cause */
	case GITLAB_ERR_REQUEST: return CORE_EINVAL;
	case GITLAB_ERR_INTERNAL:
	case GITLAB_ERR_COUNT: break;
	}
	return CORE_EINTERNAL;
}

/* --- pure helpers -------------------------------------------------------------------------------------------- */

enum core_status gitlab_url_encode_path(const char *s, char **out)
{
	static const char hex[] = "0123456789ABCDEF";
	*out = NULL;
	if (!s)
		return CORE_EINVAL;
	size_t n = strlen(s);
	if (n > (SIZE_MAX - 1) / 3)
		return CORE_ETOOLARGE;
	char *r = malloc(n * 3 + 1), *w = r;
	if (!r)
		return CORE_ENOMEM;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*w++ = (char)*p;
		} else {
			*w++ = '%';
			*w++ = hex[*p >> 4];
			*w++ = hex[*p & 15];
		}
	}
	*w = '\0';
	*out = r;
	return CORE_OK;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool looks_like_sha(const char *s, size_t n)
{
	bool digit = false;
	if (n < 7 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digit = true;
		else if (!(s[i] >= 'a' && s[i] <= 'f') && !(s[i] >= 'A' && s[i] <= 'F'))
			return false;
	}
	return digit;
}

static bool seg_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Append src[0..n) to buf at *len, never past cap - 1. */
static void append(char *buf, size_t cap, size_t *len, const char *src, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, src, n);
	*len += n;
	buf[*len] = '\0';
}

/* The placeholder for an identifier segment that follows the collection segment prev[0..pn). */
static void placeholder(char *buf, size_t cap, size_t *len, const char *prev, size_t pn, bool sha)
{
	static const struct {
		const char *collection, *name;
	} named[] = {
	    {"projects", ":id"},
	    {"groups", ":id"},
	    {"users", ":id"},
	    {"namespaces", ":id"},
	    {"merge_requests", ":merge_request_iid"},
	    {"issues", ":issue_iid"},
	    {"branches", ":branch"},
	    {"tags", ":tag_name"},
	    {"files", ":file_path"},
	    {"custom_headers", ":key"},
	    {"url_variables", ":key"},
	    {"test", ":trigger"},
	};
	if (sha) {
		append(buf, cap, len, ":sha", 4);
		return;
	}
	for (size_t i = 0; prev && i < sizeof(named) / sizeof(named[0]); i++) {
		if (seg_is(prev, pn, named[i].collection)) {
			append(buf, cap, len, named[i].name, strlen(named[i].name));
			return;
		}
	}
	if (!prev || pn == 0 || prev[0] == ':') {
		append(buf, cap, len, ":id", 3);
		return;
	}
	append(buf, cap, len, ":", 1);
	if (pn > 3 && memcmp(prev + pn - 3, "ies", 3) == 0) {
		append(buf, cap, len, prev, pn - 3);
		append(buf, cap, len, "y", 1);
	} else if (pn > 1 && prev[pn - 1] == 's') {
		append(buf, cap, len, prev, pn - 1);
	} else {
		append(buf, cap, len, prev, pn);
	}
	append(buf, cap, len, "_id", 3);
}

void gitlab_path_template(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	const char *prev = NULL;
	size_t pn = 0;

	if (!buf || cap == 0)
		return;
	buf[0] = '\0';
	if (!path)
		return;
	size_t end = strcspn(path, "?#");
	const char *p = path;
	const char *stop = path + end;
	while (p < stop) {
		if (*p == '/') {
			append(buf, cap, &len, "/", 1);
			p++;
			continue;
		}
		const char *q = p;
		while (q < stop && *q != '/')
			q++;
		size_t n = (size_t)(q - p);
		bool always_named = prev && (seg_is(prev, pn, "branches") || seg_is(prev, pn, "tags") ||
		                             seg_is(prev, pn, "files") || seg_is(prev, pn, "custom_headers") ||
		                             seg_is(prev, pn, "url_variables") || seg_is(prev, pn, "test"));
		bool after_commit = prev && (seg_is(prev, pn, "statuses") || seg_is(prev, pn, "commits"));
		bool sha = looks_like_sha(p, n) && (after_commit || n >= 40);
		if (all_digits(p, n) || memchr(p, '%', n) || sha || always_named) {
			placeholder(buf, cap, &len, prev, pn, sha && !all_digits(p, n));
			prev = ":";
			pn = 1;
		} else {
			append(buf, cap, &len, p, n);
			prev = p;
			pn = n;
		}
		p = q;
	}
	if (len == 0)
		append(buf, cap, &len, "/", 1);
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Milliseconds from now until t, in [0, one day], without overflow whatever the two times. */
static int64_t ms_until(time_t t, time_t now)
{
	int64_t d;
	if (__builtin_sub_overflow((int64_t)t, (int64_t)now, &d))
		d = (int64_t)t > (int64_t)now ? INT64_MAX : 0;
	if (d < 0)
		d = 0;
	if (d > 86400)
		d = 86400;
	return d * 1000;
}

/* A header value without its leading and trailing blanks: the start, and its length in *n. */
static const char *trimmed(const char *value, size_t *n)
{
	value = skip_ws(value);
	*n = strlen(value);
	while (*n > 0 &&
	       (value[*n - 1] == ' ' || value[*n - 1] == '\t' || value[*n - 1] == '\r' || value[*n - 1] == '\n'))
		(*n)--;
	return value;
}

bool gitlab_parse_retry_after(const char *value, time_t now, int64_t *delay_ms_out)
{
	char v[128];
	size_t n = 0;
	if (!value)
		return false;
	value = trimmed(value, &n);
	if (n == 0 || n >= sizeof(v))
		return false;
	memcpy(v, value, n);
	v[n] = '\0';
	if (all_digits(v, n)) {
		int64_t secs = 0;
		for (size_t i = 0; i < n && secs <= 86400; i++)
			secs = secs * 10 + (v[i] - '0');
		if (secs > 86400)
			secs = 86400;
		*delay_ms_out = secs * 1000;
		return true;
	}
	/* An HTTP date must name a month and a time: this keeps curl_getdate() from accepting "-5" or "1.5". */
	bool alpha = false, colon = false;
	for (size_t i = 0; i < n; i++) {
		alpha |= isalpha((unsigned char)v[i]) != 0;
		colon |= v[i] == ':';
	}
	if (!alpha || !colon)
		return false;
	time_t t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return false;
	*delay_ms_out = ms_until(t, now);
	return true;
}

bool gitlab_parse_ratelimit_reset(const char *value, time_t now, int64_t *delay_ms_out)
{
	size_t n = 0;
	if (!value)
		return false;
	value = trimmed(value, &n);
	if (n == 0 || !all_digits(value, n))
		return false;
	/* Saturate instead of overflowing: any time past year 300,000 is "more than a day away" anyway. */
	int64_t secs = 0;
	for (size_t i = 0; i < n; i++) {
		secs = secs * 10 + (value[i] - '0');
		if (secs > 10000000000000LL) {
			secs = 10000000000000LL;
			break;
		}
	}
	*delay_ms_out = ms_until((time_t)secs, now);
	return true;
}

bool gitlab_parse_link_next(const char *link, char **url_out)
{
	*url_out = NULL;
	if (!link)
		return false;
	const char *p = link;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p != '<')
			return false;
		const char *u = p + 1;
		const char *ue = strchr(u, '>');
		if (!ue)
			return false;
		p = ue + 1;
		bool next = false;
		/* Parameters up to the next ',' outside quotes. */
		for (;;) {
			p = skip_ws(p);
			if (*p != ';')
				break;
			p = skip_ws(p + 1);
			const char *name = p;
			while (*p && *p != '=' && *p != ';' && *p != ',' && *p != ' ')
				p++;
			size_t nn = (size_t)(p - name);
			p = skip_ws(p);
			const char *val = "";
			size_t vn = 0;
			if (*p == '=') {
				p = skip_ws(p + 1);
				if (*p == '"') {
					val = ++p;
					while (*p && *p != '"')
						p++;
					vn = (size_t)(p - val);
					if (*p == '"')
						p++;
				} else {
					val = p;
					while (*p && *p != ';' && *p != ',' && *p != ' ')
						p++;
					vn = (size_t)(p - val);
				}
			}
			if (nn == 3 && strncasecmp(name, "rel", 3) == 0) {
				/* rel may list several space-separated relation types. */
				size_t i = 0;
				while (i < vn) {
					while (i < vn && val[i] == ' ')
						i++;
					size_t s = i;
					while (i < vn && val[i] != ' ')
						i++;
					if (i - s == 4 && strncasecmp(val + s, "next", 4) == 0)
						next = true;
				}
			}
		}
		if (next) {
			*url_out = strndup(u, (size_t)(ue - u));
			return *url_out != NULL;
		}
		while (*p && *p != ',')
			p++;
		if (!*p)
			return false;
	}
}

enum core_status gitlab_next_page_path(const char *cur_path, const char *x_next_page, const char *link, char **next_out)
{
	enum core_status st = CORE_OK;
	char *url = NULL;
	*next_out = NULL;

	const char *xn = x_next_page ? skip_ws(x_next_page) : "";
	size_t xl = strlen(xn);
	while (xl > 0 && (xn[xl - 1] == ' ' || xn[xl - 1] == '\r' || xn[xl - 1] == '\n'))
		xl--;
	if (xl > 0 && xl <= 10 && all_digits(xn, xl) && cur_path) {
		/* Rebuild the query without any page= and add page=N. */
		const char *q = strchr(cur_path, '?');
		size_t plen = q ? (size_t)(q - cur_path) : strlen(cur_path);
		size_t cap = strlen(cur_path) + xl + 8;
		char *r = malloc(cap);
		if (!r)
			return CORE_ENOMEM;
		size_t len = 0;
		memcpy(r, cur_path, plen);
		len = plen;
		r[len++] = '?';
		if (q) {
			const char *a = q + 1;
			while (*a) {
				const char *e = strchr(a, '&');
				size_t n = e ? (size_t)(e - a) : strlen(a);
				bool is_page = n >= 5 && strncmp(a, "page=", 5) == 0;
				is_page = is_page || (n == 4 && strncmp(a, "page", 4) == 0);
				if (n > 0 && !is_page) {
					memcpy(r + len, a, n);
					len += n;
					r[len++] = '&';
				}
				a += n;
				if (*a == '&')
					a++;
			}
		}
		memcpy(r + len, "page=", 5);
		len += 5;
		memcpy(r + len, xn, xl);
		len += xl;
		r[len] = '\0';
		*next_out = r;
		return CORE_OK;
	}
	if (!link || !gitlab_parse_link_next(link, &url))
		goto out;
	/* Never follow the host named in the header: keep only what follows /api/v4 and send it to our root. */
	const char *api = strstr(url, "/api/v4/");
	if (!api) {
		st = CORE_EUPSTREAM;
		goto out;
	}
	const char *rest = api + 7;
	for (const char *c = rest; *c; c++) {
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '#') {
			st = CORE_EUPSTREAM;
			goto out;
		}
	}
	*next_out = strdup(rest);
	if (!*next_out)
		st = CORE_ENOMEM;
out:
	free(url);
	return st;
}

/* A single-line, printable copy of s[0..n) into out (for quoting non-JSON bodies). */
static void snippet(const char *s, size_t n, char *out, size_t cap)
{
	size_t len = 0;
	if (cap == 0)
		return;
	for (size_t i = 0; i < n && len + 1 < cap && len < 200; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c < 0x20 || c >= 0x7f)
			continue;
		if (c == ' ' && len > 0 && out[len - 1] == ' ')
			continue;
		out[len++] = (char)c;
	}
	while (len > 0 && out[len - 1] == ' ')
		len--;
	out[len] = '\0';
}

/*
 * GitLab's "message" may be a string, {"field": ["error", ...]} (validation), {"error": "..."} (rate limiter),
 * or an array: flatten it into "field error, error; field2 error".
 */
static void flatten_message(struct json_object *m, char *out, size_t cap)
{
	size_t len = strlen(out);
	const char *s;
	if (!m)
		return;
	if (jsonx_as_str(m, &s)) {
		append(out, cap, &len, s, strlen(s));
		return;
	}
	if (json_object_is_type(m, json_type_array)) {
		size_t n = json_object_array_length(m);
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				append(out, cap, &len, ", ", 2);
			flatten_message(json_object_array_get_idx(m, i), out, cap);
			len = strlen(out);
		}
		return;
	}
	if (json_object_is_type(m, json_type_object)) {
		bool first = true;
		json_object_object_foreach(m, key, val)
		{
			if (!first)
				append(out, cap, &len, "; ", 2);
			first = false;
			if (strcmp(key, "error") != 0 && strcmp(key, "base") != 0) {
				append(out, cap, &len, key, strlen(key));
				append(out, cap, &len, " ", 1);
			}
			flatten_message(val, out, cap);
			len = strlen(out);
		}
		return;
	}
	s = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	if (s)
		append(out, cap, &len, s, strlen(s));
}

static bool contains_ci(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

enum gitlab_error gitlab_classify_error(long http_status, const char *body, size_t body_len, char *msg, size_t msg_cap)
{
	struct json_object *j = NULL;
	const char *error = NULL, *desc = NULL, *scope = NULL;
	char gm[300] = ""; /* GitLab's own message, flattened */
	enum gitlab_error kind = GITLAB_ERR_HTTP;

	if (body && body_len > 0 && jsonx_parse(body, body_len, &j) == CORE_OK) {
		jsonx_str(j, "error", &error);
		jsonx_str(j, "error_description", &desc);
		jsonx_str(j, "scope", &scope);
		flatten_message(jsonx_get(j, "message"), gm, sizeof(gm));
		if (!gm[0] && error)
			snprintf(gm, sizeof(gm), "%s", error);
		if (!gm[0] && json_object_is_type(j, json_type_string))
			snprintf(gm, sizeof(gm), "%s", json_object_get_string(j));
	} else if (body && body_len > 0) {
		snippet(body, body_len, gm, sizeof(gm));
	}

	if (http_status == 401) {
		if (error && strcmp(error, "invalid_token") == 0 && contains_ci(desc, "expired")) {
			kind = GITLAB_ERR_TOKEN_EXPIRED;
			snprintf(msg, msg_cap,
			         "the token is expired: create or rotate a token and update it in mrgate");
		} else if (error && strcmp(error, "invalid_token") == 0 && contains_ci(desc, "revoked")) {
			kind = GITLAB_ERR_TOKEN_REVOKED;
			snprintf(msg, msg_cap, "the token was revoked: create a new token and update it in mrgate");
		} else if (error && strcmp(error, "invalid_token") == 0 && desc) {
			kind = GITLAB_ERR_TOKEN_INVALID;
			snprintf(msg, msg_cap, "the token is invalid: %s", desc);
		} else {
			kind = GITLAB_ERR_TOKEN_INVALID;
			snprintf(msg, msg_cap, "the token is invalid or unknown to GitLab (%s)",
			         gm[0] ? gm : "401 Unauthorized");
		}
	} else if (http_status == 403) {
		if (error && strcmp(error, "insufficient_scope") == 0) {
			kind = GITLAB_ERR_SCOPE;
			if (scope && *scope)
				snprintf(msg, msg_cap, "the token lacks the %s scope", scope);
			else
				snprintf(msg, msg_cap, "the token lacks a scope this request needs");
		} else {
			kind = GITLAB_ERR_FORBIDDEN;
			snprintf(msg, msg_cap, "the token's user is not allowed to do this (%s)",
			         gm[0] ? gm : "403 Forbidden");
		}
	} else if (http_status == 404) {
		kind = GITLAB_ERR_NOT_FOUND;
		snprintf(msg, msg_cap, "not found or the token has no access (%s)", gm[0] ? gm : "404 Not Found");
	} else if (http_status == 409) {
		kind = GITLAB_ERR_CONFLICT;
		snprintf(msg, msg_cap, "conflict: %s", gm[0] ? gm : "409 Conflict");
	} else if (http_status == 400 || http_status == 405 || http_status == 413 || http_status == 422) {
		kind = GITLAB_ERR_INVALID;
		snprintf(msg, msg_cap, "GitLab rejected the request (%ld): %s", http_status,
		         gm[0] ? gm : "no reason given");
	} else if (http_status == 429) {
		kind = GITLAB_ERR_RATE_LIMITED;
		snprintf(msg, msg_cap, "rate limited by GitLab%s%s", gm[0] ? ": " : "", gm);
	} else if (http_status >= 500 && http_status <= 599) {
		kind = GITLAB_ERR_SERVER;
		snprintf(msg, msg_cap, "GitLab failed with %ld%s%s", http_status, gm[0] ? ": " : "", gm);
	} else if (http_status >= 300 && http_status <= 399) {
		kind = GITLAB_ERR_HTTP;
		snprintf(msg, msg_cap, "GitLab redirected the request (%ld): check the GitLab URL (https, path prefix)",
		         http_status);
	} else {
		kind = GITLAB_ERR_HTTP;
		snprintf(msg, msg_cap, "unexpected answer %ld from GitLab%s%s", http_status, gm[0] ? ": " : "", gm);
	}
	json_object_put(j);
	return kind;
}

/* --- metrics ------------------------------------------------------------------------------------------------- */

static void metrics_count(struct gitlab *gl, const char *method, const char *endpoint, long status, bool retry,
                          bool throttled)
{
	pthread_mutex_lock(&gl->metrics_mu);
	gl->calls++;
	if (retry)
		gl->retries++;
	if (throttled)
		gl->throttled++;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < gl->n_rows; i++) {
			struct gitlab_metric_row *r = &gl->rows[i];
			if (r->status == status && strcmp(r->method, method) == 0 &&
			    strcmp(r->endpoint, endpoint) == 0) {
				r->count++;
				goto out;
			}
		}
		if (gl->n_rows < METRIC_ROWS_MAX || pass == 1) {
			if (gl->n_rows == gl->cap_rows) {
				gl->cap_rows = gl->cap_rows ? gl->cap_rows * 2 : 32;
				gl->rows = xrealloc(gl->rows, gl->cap_rows * sizeof(*gl->rows));
			}
			struct gitlab_metric_row *r = &gl->rows[gl->n_rows++];
			memset(r, 0, sizeof(*r));
			snprintf(r->method, sizeof(r->method), "%s", method);
			snprintf(r->endpoint, sizeof(r->endpoint), "%s", endpoint);
			r->status = status;
			r->count = 1;
			goto out;
		}
		endpoint = "other"; /* too many distinct templates: fold the rest */
	}
out:
	pthread_mutex_unlock(&gl->metrics_mu);
}

enum core_status gitlab_metrics_snapshot(struct gitlab *gl, struct gitlab_metrics **out)
{
	struct gitlab_metrics *m = xcalloc(1, sizeof(*m));
	pthread_mutex_lock(&gl->metrics_mu);
	if (gl->n_rows > 0) {
		m->rows = xmalloc(gl->n_rows * sizeof(*m->rows));
		memcpy(m->rows, gl->rows, gl->n_rows * sizeof(*m->rows));
	}
	m->n_rows = gl->n_rows;
	m->calls = gl->calls;
	m->retries = gl->retries;
	m->throttled = gl->throttled;
	m->maybe_applied = gl->maybe_applied;
	pthread_mutex_unlock(&gl->metrics_mu);
	*out = m;
	return CORE_OK;
}

void gitlab_metrics_free(struct gitlab_metrics *m)
{
	if (!m)
		return;
	free(m->rows);
	free(m);
}

/* --- one request through its attempts ------------------------------------------------------------------------- */

struct xfer {
	struct gitlab *gl;
	char method[8];
	char *path; /* owned */
	char *url;  /* owned: api_root + path */
	char *body; /* owned JSON text, or NULL */
	size_t body_len;
	bool idempotent;
	bool raw; /* GITLAB_CALL_RAW: keep a 2xx body as bytes */
	char tmpl[128];
	char ekey[ENDPOINTLIMIT_KEY_MAX]; /* endpointlimit key: method, template (and project for per-project limits) */
	int attempt;                      /* exchanges started */
	int64_t not_before_ms;            /* earliest start of the next attempt */
	int64_t started_ms;
	CURL *eh; /* gitlab_multi(): the handle while attached to the multi handle */
	char errbuf[CURL_ERROR_SIZE];

	/* The current attempt's answer. */
	struct buf ans; /* the answer's body, at most gl->max_response bytes */
	bool too_large;
	char h_retry_after[128], h_rl_remaining[32], h_rl_reset[32], h_next_page[32];
	struct buf h_link;  /* the Link header(s), joined with ", "; at most LINK_MAX bytes */
	bool link_too_long; /* a longer Link header came: refused, never cut (a cut one would end a list early) */

	/* The result. */
	bool done;
	enum core_status st;
	struct gitlab_response *resp;
};

static bool valid_method(const char *m)
{
	static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
	for (size_t i = 0; m && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(m, ok[i]) == 0)
			return true;
	return false;
}

static bool valid_path(const char *p)
{
	size_t n = p ? strlen(p) : 0;
	if (n == 0 || n > PATH_MAX_LEN || p[0] != '/' || (n > 1 && p[1] == '/'))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '#')
			return false;
	return true;
}

/* Replace every occurrence of secret in s (in place) by "[redacted]" (or '*' when shorter). */
static void scrub_one(const char *secret, char *s)
{
	size_t tl = secret ? strlen(secret) : 0;
	char *p;
	if (tl == 0)
		return;
	while ((p = strstr(s, secret)) != NULL) {
		static const char red[] = "[redacted]";
		size_t rl = sizeof(red) - 1;
		if (rl <= tl) {
			memcpy(p, red, rl);
			memmove(p + rl, p + tl, strlen(p + tl) + 1);
		} else {
			memset(p, '*', tl);
		}
	}
}

/* Hide the token and the other secret (gitlab_opts.scrub_also) in s. */
static void scrub(const struct gitlab *gl, char *s)
{
	scrub_one(gl->token, s);
	scrub_one(gl->also, s);
}

static void reset_attempt(struct xfer *x)
{
	buf_free(&x->ans);
	x->too_large = false;
	x->h_retry_after[0] = x->h_rl_remaining[0] = x->h_rl_reset[0] = x->h_next_page[0] = '\0';
	buf_free(&x->h_link);
	x->link_too_long = false;
	x->errbuf[0] = '\0';
}

static void xfer_clear(struct xfer *x)
{
	reset_attempt(x);
	free(x->path);
	free(x->url);
	free(x->body);
	gitlab_response_free(x->resp);
	memset(x, 0, sizeof(*x));
}

/* Complete x as failed: a response with kind, status and message (x->st becomes CORE_ENOMEM if even that fails). */
static void xfer_fail(struct xfer *x, enum core_status st, enum gitlab_error kind, long http_status, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));

static struct gitlab_response *response_new(void)
{
	struct gitlab_response *r = xcalloc(1, sizeof(*r));
	r->body = xstrdup("");
	return r;
}

static void xfer_fail(struct xfer *x, enum core_status st, enum gitlab_error kind, long http_status, const char *fmt,
                      ...)
{
	x->done = true;
	x->st = st;
	if (!x->resp)
		x->resp = response_new();
	if (!x->resp) {
		x->st = CORE_ENOMEM;
		return;
	}
	x->resp->kind = kind;
	x->resp->http_status = http_status;
	x->resp->attempts = x->attempt;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->resp->message, sizeof(x->resp->message), fmt, ap);
	va_end(ap);
	if (x->gl)
		scrub(x->gl, x->resp->message);
}

static enum core_status xfer_init(struct xfer *x, struct gitlab *gl, const char *method, const char *path,
                                  struct json_object *body, unsigned flags)
{
	memset(x, 0, sizeof(*x));
	x->gl = gl;
	if (!valid_method(method)) {
		xfer_fail(x, CORE_EINVAL, GITLAB_ERR_REQUEST, 0, "unsupported HTTP method %.10s",
		          method ? method : "(null)");
		return x->st;
	}
	snprintf(x->method, sizeof(x->method), "%s", method);
	if (!valid_path(path)) {
		xfer_fail(x, CORE_EINVAL, GITLAB_ERR_REQUEST, 0,
		          "the request path must start with one '/' and contain no spaces or control characters");
		return x->st;
	}
	gitlab_path_template(path, x->tmpl, sizeof(x->tmpl));
	endpointlimit_key(x->method, x->tmpl, path, x->ekey, sizeof(x->ekey));
	x->path = xstrdup(path);
	struct buf url = {0};
	buf_puts(&url, gl->api_root);
	buf_puts(&url, path);
	x->url = buf_steal(&url);
	if (body) {
		size_t n = 0;
		const char *s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &n);
		if (!s)
			xalloc_oom("json text", 0); /* json-c fails only when out of memory */
		x->body = xstrndup(s, n);
		x->body_len = n;
	}
	x->idempotent = strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0;
	if (flags & GITLAB_CALL_IDEMPOTENT)
		x->idempotent = true;
	x->raw = (flags & GITLAB_CALL_RAW) != 0;
	return CORE_OK;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t n = size * nmemb;
	size_t max = x->gl->max_response;
	if (n > max || x->ans.len > max - n) {
		x->too_large = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	buf_append(&x->ans, data, n);
	return n;
}

/* Trim a header value's surrounding blanks and line end. */
static void header_trim(const char **v, size_t *n)
{
	while (*n > 0 && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n > 0 && ((*v)[*n - 1] == '\r' || (*v)[*n - 1] == '\n' || (*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/* Copy the header value (trimmed) into dst; these headers are short numbers or dates, a longer value is cut. */
static void header_value(const char *v, size_t n, char *dst, size_t cap)
{
	header_trim(&v, &n);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue): forget the headers of the previous one. */
		x->h_retry_after[0] = x->h_rl_remaining[0] = x->h_rl_reset[0] = x->h_next_page[0] = '\0';
		buf_reset(&x->h_link);
		x->link_too_long = false;
		return n;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon)
		return n;
	size_t nl = (size_t)(colon - data);
	const char *v = colon + 1;
	size_t vl = n - nl - 1;
#define IS(name) (nl == strlen(name) && strncasecmp(data, name, nl) == 0)
	if (IS("retry-after")) {
		header_value(v, vl, x->h_retry_after, sizeof(x->h_retry_after));
	} else if (IS("ratelimit-remaining")) {
		header_value(v, vl, x->h_rl_remaining, sizeof(x->h_rl_remaining));
	} else if (IS("ratelimit-reset")) {
		header_value(v, vl, x->h_rl_reset, sizeof(x->h_rl_reset));
	} else if (IS("x-next-page")) {
		header_value(v, vl, x->h_next_page, sizeof(x->h_next_page));
	} else if (IS("content-length")) {
		char cl[32];
		header_value(v, vl, cl, sizeof(cl));
		size_t cn = strlen(cl);
		if (all_digits(cl, cn) && (cn > 18 || strtoull(cl, NULL, 10) > x->gl->max_response)) {
			x->too_large = true; /* refuse before receiving (or allocating) anything */
			return 0;
		}
	} else if (IS("link")) {
		header_trim(&v, &vl);
		if (x->h_link.len + vl + 3 > LINK_MAX) {
			x->link_too_long = true;
		} else {
			if (x->h_link.len)
				buf_puts(&x->h_link, ", ");
			buf_append(&x->h_link, v, vl);
		}
	}
#undef IS
	return n;
}

static bool xfer_setup(struct xfer *x, CURL *eh)
{
	struct gitlab *gl = x->gl;
	CURLcode c = CURLE_OK;
	reset_attempt(x);
#define SET(opt, val)                                                                                                  \
	if (c == CURLE_OK)                                                                                             \
	c = curl_easy_setopt(eh, opt, val)
	SET(CURLOPT_URL, x->url);
	SET(CURLOPT_SHARE, gl->share);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_HTTPHEADER, x->body ? gl->hdrs_json : gl->hdrs);
	SET(CURLOPT_USERAGENT, "mrgate/" MRGATE_VERSION);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_CONNECTTIMEOUT_MS, gl->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, gl->total_timeout_ms);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (gl->ca_bundle)
		SET(CURLOPT_CAINFO, gl->ca_bundle);
	if (gl->ca_pem) {
		struct curl_blob ca = {.data = gl->ca_pem, .len = strlen(gl->ca_pem), .flags = CURL_BLOB_COPY};
		SET(CURLOPT_CAINFO_BLOB, &ca);
	}
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)gl->max_response);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	/*
	 * libcurl silently re-sends a request whose reused connection dies before any answer. For a POST that may
	 * already be applied, so non-idempotent requests take a fresh connection: a failure is then reported to us.
	 */
	if (!x->idempotent) {
		SET(CURLOPT_FRESH_CONNECT, 1L);
		SET(CURLOPT_FORBID_REUSE, 1L); /* and closed after it: the handle keeps the connection it reuses */
	}
	SET(CURLOPT_MAXCONNECTS, 1L); /* a pooled handle keeps one idle connection, not five */
	if (strcmp(x->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(x->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(x->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
		SET(CURLOPT_POSTFIELDS, x->body ? x->body : "");
	} else {
		SET(CURLOPT_CUSTOMREQUEST, x->method);
		if (x->body) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
			SET(CURLOPT_POSTFIELDS, x->body);
		}
	}
#undef SET
	x->errbuf[0] = '\0';
	x->attempt++;
	x->started_ms = ratelimit_now_ms();
	return c == CURLE_OK;
}

/* Full jitter: a uniform delay in [0, min(max, base * 2^(attempt-1))]. */
static int64_t backoff_ms(const struct gitlab *gl, int attempt)
{
	int64_t cap = gl->backoff_base_ms;
	for (int i = 1; i < attempt && cap < gl->backoff_max_ms; i++)
		cap *= 2;
	if (cap > gl->backoff_max_ms)
		cap = gl->backoff_max_ms;
	if (cap > UINT32_MAX - 1)
		cap = UINT32_MAX - 1;
	return (int64_t)randombytes_uniform((uint32_t)cap + 1);
}

/* A header's decimal value of at most 12 digits: any arithmetic on it in seconds or milliseconds stays in int64. */
static bool parse_i64(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	if (!all_digits(s, n) || n > 12)
		return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

/* Feed RateLimit-Remaining / RateLimit-Reset to the limiter. */
static void observe_ratelimit(struct xfer *x, int64_t now_ms)
{
	int64_t remaining, in_ms;
	if (!parse_i64(x->h_rl_remaining, &remaining) ||
	    !gitlab_parse_ratelimit_reset(x->h_rl_reset, time(NULL), &in_ms))
		return;
	if (in_ms <= 0)
		return;
	ratelimit_observe(x->gl->rl, now_ms, remaining, in_ms + 1000); /* +1 s: the reset has 1 s granularity */
}

static bool retryable_status(long s)
{
	return s == 500 || s == 502 || s == 503 || s == 504 || (s >= 520 && s <= 527) || s == 529;
}

static bool is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED: return true;
	default: return false;
	}
}

static bool is_reset(CURLcode rc)
{
	return rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
	       rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

/* Build the successful response (the answer x->ans becomes its body). */
static void xfer_succeed(struct xfer *x, long http)
{
	struct gitlab_response *r = response_new();
	if (!r) {
		xfer_fail(x, CORE_ENOMEM, GITLAB_ERR_INTERNAL, http, "out of memory");
		return;
	}
	x->resp = r;
	r->http_status = http;
	r->attempts = x->attempt;
	if (x->ans.p) {
		free(r->body);
		r->body_len = x->ans.len;
		r->body = buf_steal(&x->ans);
	}
	if (r->body_len > 0 && strcmp(x->method, "HEAD") != 0 && !x->raw &&
	    jsonx_parse(r->body, r->body_len, &r->json) != CORE_OK) {
		xfer_fail(x, CORE_EUPSTREAM, GITLAB_ERR_BAD_RESPONSE, http,
		          "GitLab answered %ld to %s %s with a body that is not JSON (a proxy or login page in front "
		          "of GitLab?)",
		          http, x->method, x->tmpl);
		return;
	}
	if (strcmp(x->method, "GET") == 0 && x->link_too_long) {
		xfer_fail(x, CORE_EUPSTREAM, GITLAB_ERR_BAD_RESPONSE, http,
		          "GitLab's Link header for GET %s is longer than %d bytes", x->tmpl, LINK_MAX);
		return;
	}
	if (strcmp(x->method, "GET") == 0) {
		const char *link = x->h_link.len ? buf_str(&x->h_link) : NULL;
		enum core_status st = gitlab_next_page_path(x->path, x->h_next_page, link, &r->next_page);
		if (st == CORE_ENOMEM) {
			xfer_fail(x, CORE_ENOMEM, GITLAB_ERR_INTERNAL, http, "out of memory");
			return;
		}
		if (st != CORE_OK) {
			xfer_fail(x, CORE_EUPSTREAM, GITLAB_ERR_BAD_RESPONSE, http,
			          "GitLab's next-page link for GET %s does not point into its API", x->tmpl);
			return;
		}
	}
	x->done = true;
	x->st = CORE_OK;
}

/* Move GitLab's error answer into the failed response, for callers that want more than the message. */
static void keep_body(struct xfer *x)
{
	if (!x->resp || !x->ans.p || x->st == CORE_ENOMEM)
		return;
	free(x->resp->body);
	x->resp->body_len = x->ans.len;
	x->resp->body = buf_steal(&x->ans);
	if (x->resp->body_len > 0 && jsonx_parse(x->resp->body, x->resp->body_len, &x->resp->json) != CORE_OK)
		x->resp->json = NULL;
}

/* Schedule a retry after delay_ms; false when the retries are used up. */
static bool xfer_retry(struct xfer *x, int64_t now_ms, int64_t delay_ms)
{
	if (x->attempt > x->gl->max_retries)
		return false;
	x->not_before_ms = now_ms + delay_ms;
	return true;
}

/*
 * Which 429 is it? The instance-wide limit (Rack::Attack) always sends Retry-After, with a plain-text body; GitLab's
 * per-endpoint limits send a JSON body and no Retry-After (informational RateLimit-* headers may still come along,
 * they describe the instance-wide budget, not this endpoint).
 */
static bool per_endpoint_429(const struct xfer *x)
{
	if (x->h_retry_after[0])
		return false;
	size_t i = 0;
	const char *b = x->ans.p;
	while (i < x->ans.len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
		i++;
	return i < x->ans.len ? b[i] == '{' : !x->h_rl_reset[0];
}

/*
 * A per-endpoint 429 (per_endpoint_429): one of GitLab's per-endpoint limits (endpointlimit.h), not the
 * instance-wide one. Only this endpoint (and project) backs off, with a delay that grows per 429 in a row; nothing
 * else pauses.
 */
static void endpoint_throttled(struct xfer *x, int64_t now, long http)
{
	struct gitlab *gl = x->gl;
	int streak = 0;
	int64_t delay = endpointlimit_throttled(gl->el, x->ekey, now, ENDPOINT_BACKOFF_BASE_MS, &streak);
	log_info("gitlab: %s %s is rate limited by GitLab (429 %d in a row); that endpoint waits %" PRId64
	         " ms, other requests go on",
	         x->method, x->tmpl, streak, delay);
	if (delay <= gl->max_pause_ms && xfer_retry(x, now, delay))
		return;
	char gm[400];
	gitlab_classify_error(http, x->ans.p, x->ans.len, gm, sizeof(gm));
	xfer_fail(x, CORE_ETHROTTLED, GITLAB_ERR_RATE_LIMITED, http,
	          "%s (GitLab limits %s %s; retry after %" PRId64 " s)", gm, x->method, x->tmpl, (delay + 999) / 1000);
	keep_body(x);
}

/*
 * Judge the attempt that just ended with rc: complete x (x->done) or schedule a retry (x->not_before_ms).
 */
static const char *rejected_words(enum gitlab_error kind)
{
	return kind == GITLAB_ERR_TOKEN_EXPIRED   ? "the token is expired"
	       : kind == GITLAB_ERR_TOKEN_REVOKED ? "the token was revoked"
	                                          : "GitLab does not accept the token";
}

void gitlab_on_token_rejected(struct gitlab *gl, void (*fn)(void *user, enum gitlab_error kind, const char *message),
                              void *user)
{
	gl->on_rejected = fn;
	gl->on_rejected_user = user;
}

void gitlab_set_token_rejected(struct gitlab *gl, enum gitlab_error kind)
{
	int open = GITLAB_ERR_NONE;
	atomic_compare_exchange_strong(&gl->rejected, &open, (int)kind);
}

enum gitlab_error gitlab_token_rejected(struct gitlab *gl)
{
	return (enum gitlab_error)atomic_load(&gl->rejected);
}

/* A 401 that refuses the token: close the latch; the first one calls the callback. */
static void token_refused(struct gitlab *gl, enum gitlab_error kind, const char *message)
{
	if (kind != GITLAB_ERR_TOKEN_EXPIRED && kind != GITLAB_ERR_TOKEN_REVOKED && kind != GITLAB_ERR_TOKEN_INVALID)
		return;
	int open = GITLAB_ERR_NONE;
	if (atomic_compare_exchange_strong(&gl->rejected, &open, (int)kind)) {
		/* which token (its last 4 characters, as the Connection page shows them): a token being tried read as
		 * if the stored one had been refused */
		size_t n = gl->token ? strlen(gl->token) : 0;
		log_warn("gitlab: %s (the token ending in %s at %s); no further request is sent with that token",
		         rejected_words(kind), n >= 12 ? gl->token + n - 4 : "(hidden)",
		         gl->base ? gl->base : "GitLab");
		if (gl->on_rejected)
			gl->on_rejected(gl->on_rejected_user, kind, message);
	}
}

/* May x start now? ADMIT_WAIT sets *wait_ms; ADMIT_FAIL completes x (the pause is longer than allowed). */
/* GitLab's 429 without a per-endpoint meaning: everyone pauses, for Retry-After, RateLimit-Reset or a backoff. */
static void answered_429(struct xfer *x, long http, int64_t now)
{
	struct gitlab *gl = x->gl;
	int64_t delay = -1, reset;
	if (!gitlab_parse_retry_after(x->h_retry_after, time(NULL), &delay) && parse_i64(x->h_rl_reset, &reset) &&
	    reset > 0) {
		delay = (reset - (int64_t)time(NULL)) * 1000 + 1000;
		if (delay < 0)
			delay = 0;
	}
	if (delay < 0) {
		int64_t b = backoff_ms(gl, x->attempt);
		delay = gl->backoff_base_ms + b; /* no hint: at least the base, never zero */
	}
	ratelimit_pause_until(gl->rl, now + delay);
	log_info("gitlab: rate limited (429) on %s %s; pausing requests to %s for %" PRId64 " ms", x->method, x->tmpl,
	         gl->base, delay);
	if (delay <= gl->max_pause_ms && xfer_retry(x, now, delay))
		return;
	char gm[400];
	gitlab_classify_error(http, x->ans.p, x->ans.len, gm, sizeof(gm));
	xfer_fail(x, CORE_ETHROTTLED, GITLAB_ERR_RATE_LIMITED, http, "%s (retry after %" PRId64 " s)", gm,
	          (delay + 999) / 1000);
	keep_body(x);
}

/* An exchange that got an HTTP answer: success, a pause or a retry, or the classified failure. */
static void xfer_answered(struct xfer *x, long http, int64_t now)
{
	struct gitlab *gl = x->gl;
	observe_ratelimit(x, now);
	if (http != 429)
		endpointlimit_ok(gl->el, x->ekey); /* the endpoint answered: its back-off (if any) is over */
	if (http >= 200 && http <= 299) {
		xfer_succeed(x, http);
		return;
	}
	if (http == 429 && per_endpoint_429(x)) {
		endpoint_throttled(x, now, http);
		return;
	}
	if (http == 429) {
		answered_429(x, http, now);
		return;
	}
	if (retryable_status(http)) {
		if (!x->idempotent) {
			char gm[400];
			gitlab_classify_error(http, x->ans.p, x->ans.len, gm, sizeof(gm));
			pthread_mutex_lock(&gl->metrics_mu);
			gl->maybe_applied++;
			pthread_mutex_unlock(&gl->metrics_mu);
			xfer_fail(x, CORE_EUPSTREAM, GITLAB_ERR_MAYBE_APPLIED, http,
			          "%s %s may have been applied: %s; re-read before retrying", x->method, x->tmpl, gm);
			keep_body(x);
			return;
		}
		int64_t delay = backoff_ms(gl, x->attempt), ra;
		if (gitlab_parse_retry_after(x->h_retry_after, time(NULL), &ra) && ra > delay)
			delay = ra < gl->backoff_max_ms ? ra : gl->backoff_max_ms;
		if (xfer_retry(x, now, delay))
			return;
	}
	char gm[480];
	enum gitlab_error kind = gitlab_classify_error(http, x->ans.p, x->ans.len, gm, sizeof(gm));
	xfer_fail(x, gitlab_error_status(kind), kind, http, "%s", gm);
	keep_body(x);
	if (http == 401)
		token_refused(gl, kind, x->resp ? x->resp->message : gm);
}

/* An exchange that got no HTTP answer (libcurl's rc): a retry when nothing can have been applied, else a failure. */
static void xfer_transport_failed(struct xfer *x, CURLcode rc, long http, long req_size, int64_t now)
{
	struct gitlab *gl = x->gl;
	char why[CURL_ERROR_SIZE + 64];
	snprintf(why, sizeof(why), "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
	if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		xfer_fail(x, CORE_ETOOLARGE, GITLAB_ERR_TOO_LARGE, http,
		          "GitLab's answer to %s %s is larger than the %zu byte cap", x->method, x->tmpl,
		          gl->max_response);
		return;
	}
	if (is_tls_error(rc)) {
		if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		    rc == CURLE_SSL_ISSUER_ERROR)
			xfer_fail(
			    x, CORE_EUNAVAIL, GITLAB_ERR_TLS, 0,
			    "TLS verification of GitLab at %s failed: %s (for a private CA, set the CA bundle file)",
			    gl->base, why);
		else
			xfer_fail(x, CORE_EUNAVAIL, GITLAB_ERR_TLS, 0, "TLS handshake with GitLab at %s failed: %s",
			          gl->base, why);
		return;
	}
	bool not_sent = req_size == 0;
	if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_CONNECT) {
		if (xfer_retry(x, now, backoff_ms(gl, x->attempt)))
			return;
		xfer_fail(x, CORE_EUNAVAIL, GITLAB_ERR_UNREACHABLE, 0, "GitLab at %s is unreachable: %s", gl->base,
		          why);
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT || is_reset(rc)) {
		bool timeout = rc == CURLE_OPERATION_TIMEDOUT;
		if (!x->idempotent && !not_sent) {
			pthread_mutex_lock(&gl->metrics_mu);
			gl->maybe_applied++;
			pthread_mutex_unlock(&gl->metrics_mu);
			xfer_fail(x, timeout ? CORE_ETIMEOUT : CORE_EUNAVAIL, GITLAB_ERR_MAYBE_APPLIED, 0,
			          "%s %s may have been applied: %s (%s); re-read before retrying", x->method, x->tmpl,
			          timeout ? "GitLab did not answer in time" : "the connection was reset", why);
			return;
		}
		if (xfer_retry(x, now, backoff_ms(gl, x->attempt)))
			return;
		if (timeout)
			xfer_fail(x, CORE_ETIMEOUT, GITLAB_ERR_TIMEOUT, 0,
			          "GitLab at %s did not answer %s %s in time: %s", gl->base, x->method, x->tmpl, why);
		else
			xfer_fail(x, CORE_EUNAVAIL, GITLAB_ERR_UNREACHABLE, 0,
			          "GitLab at %s is unreachable: the connection was reset (%s)", gl->base, why);
		return;
	}
	if (rc == CURLE_OUT_OF_MEMORY) {
		xfer_fail(x, CORE_ENOMEM, GITLAB_ERR_INTERNAL, 0, "out of memory");
		return;
	}
	if (rc == CURLE_WEIRD_SERVER_REPLY || rc == CURLE_UNSUPPORTED_PROTOCOL) {
		xfer_fail(x, CORE_EUPSTREAM, GITLAB_ERR_HTTP, 0, "GitLab at %s answered something that is not HTTP: %s",
		          gl->base, why);
		return;
	}
	xfer_fail(x, CORE_EUNAVAIL, GITLAB_ERR_UNREACHABLE, 0, "request to GitLab at %s failed: %s", gl->base, why);
}

static void xfer_finish(struct xfer *x, CURL *eh, CURLcode rc)
{
	int64_t now = ratelimit_now_ms();
	long http = 0;
	curl_easy_getinfo(eh, CURLINFO_RESPONSE_CODE, &http);
	long req_size = 0;
	curl_easy_getinfo(eh, CURLINFO_REQUEST_SIZE, &req_size);
	long counted = rc == CURLE_OK ? http : 0;

	metrics_count(x->gl, x->method, x->tmpl, counted, x->attempt > 1, counted == 429);
	log_debug("gitlab %s %s -> %ld%s%s in %" PRId64 " ms (attempt %d)", x->method, x->tmpl, counted,
	          rc != CURLE_OK ? " " : "", rc != CURLE_OK ? curl_easy_strerror(rc) : "", now - x->started_ms,
	          x->attempt);
	if (rc == CURLE_OK)
		xfer_answered(x, http, now);
	else
		xfer_transport_failed(x, rc, http, req_size, now);
}

enum admit { ADMIT_GO, ADMIT_WAIT, ADMIT_FAIL, ADMIT_PARK /* only this endpoint waits (endpointlimit.h) */ };

static enum admit xfer_admit(struct xfer *x, int64_t now, int64_t *wait_ms)
{
	struct gitlab *gl = x->gl;
	int rejected = atomic_load(&gl->rejected);
	if (rejected != GITLAB_ERR_NONE) {
		xfer_fail(x, CORE_EUNAUTH, (enum gitlab_error)rejected, 0,
		          "not sent: %s; update the token on the Connection page", rejected_words(rejected));
		return ADMIT_FAIL;
	}
	if (now < x->not_before_ms) {
		*wait_ms = x->not_before_ms - now;
		return ADMIT_WAIT;
	}
	int64_t w = endpointlimit_wait(gl->el, x->ekey, now);
	if (w > 0) { /* this endpoint is backing off after GitLab's per-endpoint 429s; others are not held */
		if (w > gl->max_pause_ms) {
			xfer_fail(x, CORE_ETHROTTLED, GITLAB_ERR_RATE_LIMITED, 0,
			          "rate limited by GitLab: %s %s waits %" PRId64 " s more", x->method, x->tmpl,
			          (w + 999) / 1000);
			return ADMIT_FAIL;
		}
		*wait_ms = w;
		return ADMIT_PARK;
	}
	if (ratelimit_try_acquire(gl->rl, now, &w))
		return ADMIT_GO;
	if (w > gl->max_pause_ms) {
		int64_t paused = ratelimit_paused_until(gl->rl) - now;
		if (paused > 0)
			xfer_fail(x, CORE_ETHROTTLED, GITLAB_ERR_RATE_LIMITED, 0,
			          "rate limited by GitLab: requests are paused for %" PRId64 " s more",
			          (paused + 999) / 1000);
		else
			xfer_fail(x, CORE_ETHROTTLED, GITLAB_ERR_RATE_LIMITED, 0,
			          "rate limited: the next request slot is %" PRId64 " s away", (w + 999) / 1000);
		return ADMIT_FAIL;
	}
	*wait_ms = w;
	return ADMIT_WAIT;
}

static void sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Take the result out of x: the status, and the response into *resp_out. */
static enum core_status xfer_take(struct xfer *x, struct gitlab_response **resp_out)
{
	enum core_status st = x->st;
	if (x->resp) {
		x->resp->attempts = x->attempt;
		if (st != CORE_OK)
			log_debug("gitlab %s %s failed: %s", x->method, x->tmpl, x->resp->message);
	}
	*resp_out = x->resp;
	x->resp = NULL;
	return st;
}

enum core_status gitlab_request_ex(struct gitlab *gl, const char *method, const char *path_and_query,
                                   struct json_object *body, unsigned flags, struct gitlab_response **resp_out)
{
	struct xfer x;
	CURL *eh = NULL;
	enum core_status st;

	if (!resp_out)
		return CORE_EINVAL;
	*resp_out = NULL;
	if (!gl)
		return CORE_EINVAL;
	if (xfer_init(&x, gl, method, path_and_query, body, flags) != CORE_OK)
		goto out;
	while (!x.done) {
		int64_t wait = 0;
		enum admit a = xfer_admit(&x, ratelimit_now_ms(), &wait);
		if (a == ADMIT_FAIL)
			break;
		if (a == ADMIT_WAIT || a == ADMIT_PARK) {
			sleep_ms(wait);
			continue;
		}
		eh = pool_get(gl);
		if (!eh || !xfer_setup(&x, eh)) {
			xfer_fail(&x, CORE_EINTERNAL, GITLAB_ERR_INTERNAL, 0, "could not set up a libcurl handle");
			break;
		}
		CURLcode rc = curl_easy_perform(eh);
		xfer_finish(&x, eh, rc);
		pool_put(gl, eh);
		eh = NULL;
	}
out:
	if (eh)
		curl_easy_cleanup(eh);
	st = xfer_take(&x, resp_out);
	xfer_clear(&x);
	return st;
}

enum core_status gitlab_request(struct gitlab *gl, const char *method, const char *path_and_query,
                                struct json_object *body, struct gitlab_response **resp_out)
{
	return gitlab_request_ex(gl, method, path_and_query, body, 0, resp_out);
}

void gitlab_response_free(struct gitlab_response *r)
{
	if (!r)
		return;
	json_object_put(r->json);
	free(r->body);
	free(r->next_page);
	free(r);
}

/* --- pagination -------------------------------------------------------------------------------------------- */

enum core_status gitlab_paginate(struct gitlab *gl, const char *path_and_query,
                                 enum core_status (*page_cb)(struct json_object *page, void *user), void *user,
                                 struct gitlab_response **err_out)
{
	enum core_status st = CORE_EINVAL;
	struct gitlab_response *r = NULL;
	char *path = NULL;

	if (err_out)
		*err_out = NULL;
	if (!gl || !path_and_query || !page_cb)
		goto out;
	path = xstrdup(path_and_query);
	for (long pages = 0;; pages++) {
		st = gitlab_request(gl, "GET", path, NULL, &r);
		if (st != CORE_OK)
			goto out;
		if (!r->json || !json_object_is_type(r->json, json_type_array)) {
			st = CORE_EUPSTREAM;
			r->kind = GITLAB_ERR_BAD_RESPONSE;
			snprintf(r->message, sizeof(r->message),
			         "GitLab answered GET %s with something other than a list", path);
			goto out;
		}
		if (pages >= 1000000) {
			st = CORE_EUPSTREAM;
			r->kind = GITLAB_ERR_BAD_RESPONSE;
			snprintf(r->message, sizeof(r->message), "GitLab's list at GET %s has over a million pages",
			         path);
			goto out;
		}
		st = page_cb(r->json, user);
		if (st != CORE_OK) {
			gitlab_response_free(r);
			r = NULL;
			goto out;
		}
		if (!r->next_page)
			break;
		if (strcmp(r->next_page, path) == 0) {
			st = CORE_EUPSTREAM;
			r->kind = GITLAB_ERR_BAD_RESPONSE;
			snprintf(r->message, sizeof(r->message), "GitLab's next page of GET %s is the same page", path);
			goto out;
		}
		free(path);
		path = r->next_page;
		r->next_page = NULL;
		gitlab_response_free(r);
		r = NULL;
	}
	st = CORE_OK;
out:
	if (st != CORE_OK && r && err_out) {
		*err_out = r;
		r = NULL;
	}
	gitlab_response_free(r);
	free(path);
	return st;
}

struct paginate_items {
	enum core_status (*item_cb)(struct json_object *item, void *user);
	void *user;
	int pages;
};

static enum core_status paginate_items_page(struct json_object *page, void *user)
{
	struct paginate_items *w = user;
	enum core_status st = CORE_OK;
	w->pages++;
	for (size_t i = 0; st == CORE_OK && i < json_object_array_length(page); i++)
		st = w->item_cb(json_object_array_get_idx(page, i), w->user);
	return st;
}

enum core_status gitlab_paginate_items(struct gitlab *gl, const char *path_and_query,
                                       enum core_status (*item_cb)(struct json_object *item, void *user), void *user,
                                       int *pages_out, struct gitlab_response **err_out)
{
	struct paginate_items w = {.item_cb = item_cb, .user = user};
	enum core_status st = gitlab_paginate(gl, path_and_query, paginate_items_page, &w, err_out);
	if (pages_out)
		*pages_out = w.pages;
	return st;
}

/* --- fan-out ---------------------------------------------------------------------------------------------------- */

/* The state of one gitlab_multi() run. */
struct fanout {
	struct gitlab *gl;
	struct gitlab_call *calls;
	size_t n;
	int concurrency;
	struct xfer *xs; /* one per call; xs[i].gl is set once call i was started */
	size_t *waitq;   /* calls waiting for a retry or for the rate limiter (indexes into xs) */
	size_t n_wait, next_new, done;
	int running; /* attached to the multi handle */
	CURLM *m;
	size_t width;                 /* min(concurrency, n - done) when narrowed() was last called */
	void (*narrowed)(void *user); /* may be NULL */
	void *user;
};

/* Tell the caller of each exchange fewer that the run may still have in flight (gitlab_multi_narrowing). */
static void fanout_narrow(struct fanout *f)
{
	size_t left = f->n - f->done;
	size_t width = left < (size_t)f->concurrency ? left : (size_t)f->concurrency;
	for (; f->width > width; f->width--)
		if (f->narrowed)
			f->narrowed(f->user);
}

/*
 * The next call to start: a waiting one that is due (*wait_at: its place in the wait queue), else the next new one
 * (initialised here; *is_new). f->n when none can start now; *timeout shrinks to the earliest due waiting call.
 * A new call that cannot even be set up is done at once and skipped.
 */
static size_t fanout_pick(struct fanout *f, int64_t now, int64_t *timeout, size_t *wait_at, bool *is_new)
{
	*is_new = false;
	for (size_t w = 0; w < f->n_wait; w++) {
		const struct xfer *x = &f->xs[f->waitq[w]];
		if (x->not_before_ms <= now) {
			*wait_at = w;
			return f->waitq[w];
		}
		if (x->not_before_ms - now < *timeout)
			*timeout = x->not_before_ms - now;
	}
	while (f->next_new < f->n) {
		size_t i = f->next_new;
		const struct gitlab_call *c = &f->calls[i];
		if (xfer_init(&f->xs[i], f->gl, c->method, c->path, c->body, c->flags) == CORE_OK) {
			*is_new = true;
			return i;
		}
		f->next_new++;
		f->done++;
	}
	return f->n;
}

/* Attach call i to the multi handle; false (and the call is done, failed) when libcurl cannot take it. */
static bool fanout_attach(struct fanout *f, size_t i)
{
	CURL *eh = curl_easy_init();
	if (!eh || !xfer_setup(&f->xs[i], eh) || curl_multi_add_handle(f->m, eh) != CURLM_OK) {
		if (eh)
			curl_easy_cleanup(eh);
		xfer_fail(&f->xs[i], CORE_EINTERNAL, GITLAB_ERR_INTERNAL, 0, "could not set up a libcurl handle");
		f->done++;
		return false;
	}
	f->xs[i].eh = eh;
	f->running++;
	return true;
}

/* Start transfers while there is room: retries that are due first, then new calls in order. *timeout shrinks to
 * when the next waiting call is due. */
static void fanout_start(struct fanout *f, int64_t now, int64_t *timeout)
{
	while (f->running < f->concurrency) {
		size_t wait_at = 0;
		bool is_new = false;
		size_t pick = fanout_pick(f, now, timeout, &wait_at, &is_new);
		if (pick == f->n)
			break;
		int64_t wait = 0;
		enum admit a = xfer_admit(&f->xs[pick], now, &wait);
		if (a == ADMIT_PARK || a == ADMIT_WAIT) {
			/* PARK: only this endpoint backs off, start the others; WAIT: everything waits. A new call is
			 * parked among the waiting so that it keeps its place. */
			if (is_new) {
				f->waitq[f->n_wait++] = pick;
				f->next_new++;
			}
			if (a == ADMIT_PARK || is_new)
				f->xs[pick].not_before_ms = now + wait;
			if (wait < *timeout)
				*timeout = wait;
			if (a == ADMIT_WAIT)
				break;
			continue;
		}
		if (is_new)
			f->next_new++;
		else
			f->waitq[wait_at] = f->waitq[--f->n_wait];
		if (a == ADMIT_FAIL)
			f->done++;
		else
			fanout_attach(f, pick);
	}
}

/* Collect the transfers libcurl finished: done, or queued for their retry. True when any finished. */
static bool fanout_collect(struct fanout *f)
{
	CURLMsg *msg;
	int left;
	bool finished_any = false;
	while ((msg = curl_multi_info_read(f->m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *eh = msg->easy_handle;
		CURLcode rc = msg->data.result;
		struct xfer *x = NULL;
		curl_easy_getinfo(eh, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(f->m, eh);
		f->running--;
		finished_any = true;
		if (x) {
			x->eh = NULL;
			xfer_finish(x, eh, rc);
			if (x->done)
				f->done++;
			else
				f->waitq[f->n_wait++] = (size_t)(x - f->xs);
		}
		curl_easy_cleanup(eh);
	}
	return finished_any;
}

/* Hand every started call's result to its gitlab_call and free the run. */
static void fanout_end(struct fanout *f)
{
	/* Only when the multi handle itself failed can transfers still be attached. */
	for (size_t i = 0; i < f->n; i++) {
		if (f->xs[i].eh) {
			curl_multi_remove_handle(f->m, f->xs[i].eh);
			curl_easy_cleanup(f->xs[i].eh);
			f->xs[i].eh = NULL;
		}
	}
	if (f->m)
		curl_multi_cleanup(f->m);
	for (size_t i = 0; i < f->n; i++) {
		if (f->xs[i].gl) {
			if (f->xs[i].done)
				f->calls[i].status = xfer_take(&f->xs[i], &f->calls[i].resp);
			xfer_clear(&f->xs[i]);
		}
	}
	free(f->xs);
	free(f->waitq);
}

enum core_status gitlab_multi(struct gitlab *gl, struct gitlab_call *calls, size_t n, int concurrency)
{
	return gitlab_multi_narrowing(gl, calls, n, concurrency, NULL, NULL);
}

enum core_status gitlab_multi_narrowing(struct gitlab *gl, struct gitlab_call *calls, size_t n, int concurrency,
                                        void (*narrowed)(void *user), void *user)
{
	if (!gl || (!calls && n > 0) || concurrency < 1)
		return CORE_EINVAL;
	for (size_t i = 0; i < n; i++) {
		calls[i].status = CORE_EINTERNAL;
		calls[i].resp = NULL;
	}
	if (n == 0)
		return CORE_OK;
	struct fanout f = {.gl = gl,
	                   .calls = calls,
	                   .n = n,
	                   .concurrency = concurrency,
	                   .width = n < (size_t)concurrency ? n : (size_t)concurrency,
	                   .narrowed = narrowed,
	                   .user = user};
	f.xs = xcalloc(n, sizeof(*f.xs));
	f.waitq = xcalloc(n, sizeof(*f.waitq));
	enum core_status st = CORE_EINTERNAL;
	f.m = curl_multi_init();
	if (!f.m)
		goto out;
	curl_multi_setopt(f.m, CURLMOPT_MAXCONNECTS, (long)concurrency);
	while (f.done < n) {
		int64_t timeout = 1000;
		fanout_start(&f, ratelimit_now_ms(), &timeout);
		if (f.done == n)
			break;
		int still = 0;
		if (curl_multi_perform(f.m, &still) != CURLM_OK)
			goto out;
		if (fanout_collect(&f) || f.done == n) {
			fanout_narrow(&f);
			continue; /* refill at once */
		}
		if (curl_multi_poll(f.m, NULL, 0, (int)(timeout < 0 ? 0 : timeout), NULL) != CURLM_OK)
			goto out;
	}
	st = CORE_OK;
out:
	fanout_end(&f);
	return st;
}

/* --- merge request discussions (doc/api/discussions.md, "Merge requests") --------------------------------------- */

bool gitlab_discussion_id_ok(const char *id)
{
	size_t n = id ? strspn(id, "0123456789abcdef") : 0;
	return n >= 1 && n <= 64 && id[n] == '\0';
}

enum core_status gitlab_mr_discussion_create(struct gitlab *gl, int64_t project_id, int64_t mr_iid,
                                             struct json_object *body, char id_out[65],
                                             struct gitlab_response **resp_out)
{
	char path[128];
	const char *id = NULL;
	id_out[0] = '\0';
	snprintf(path, sizeof(path), "/projects/%" PRId64 "/merge_requests/%" PRId64 "/discussions", project_id,
	         mr_iid);
	enum core_status st = gitlab_request(gl, "POST", path, body, resp_out);
	if (st != CORE_OK)
		return st;
	if (!jsonx_str((*resp_out)->json, "id", &id) || !gitlab_discussion_id_ok(id)) {
		(*resp_out)->kind = GITLAB_ERR_BAD_RESPONSE;
		snprintf((*resp_out)->message, sizeof((*resp_out)->message), "the new discussion has no usable id");
		return CORE_EUPSTREAM;
	}
	snprintf(id_out, 65, "%s", id);
	return CORE_OK;
}

enum core_status gitlab_mr_discussion_resolve(struct gitlab *gl, int64_t project_id, int64_t mr_iid,
                                              const char *discussion_id, bool resolved,
                                              struct gitlab_response **resp_out)
{
	char path[200];
	*resp_out = NULL;
	if (!gitlab_discussion_id_ok(discussion_id))
		return CORE_EINVAL;
	snprintf(path, sizeof(path), "/projects/%" PRId64 "/merge_requests/%" PRId64 "/discussions/%s", project_id,
	         mr_iid, discussion_id);
	struct json_object *body = jx_object();
	json_object_object_add(body, "resolved", jx_bool(resolved));
	enum core_status st = gitlab_request(gl, "PUT", path, body, resp_out);
	json_object_put(body);
	return st;
}

enum core_status gitlab_mr_discussions_each(struct gitlab *gl, int64_t project_id, int64_t mr_iid,
                                            enum core_status (*item_cb)(struct json_object *item, void *user),
                                            void *user, struct gitlab_response **err_out)
{
	char path[160];
	snprintf(path, sizeof(path), "/projects/%" PRId64 "/merge_requests/%" PRId64 "/discussions?per_page=100",
	         project_id, mr_iid);
	return gitlab_paginate_items(gl, path, item_cb, user, NULL, err_out);
}
