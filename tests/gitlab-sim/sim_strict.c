/*
 * tests/gitlab-sim/sim_strict.c
 *    GitLab's strict corners (see sim_strict.h; sources in README.md "Strictness").
 */
#include "sim_strict.h"

#include "sim_diff.h"
#include "sim_hooks.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void sim_settings_defaults(struct sim_settings *st)
{
	memset(st, 0, sizeof(*st));
	st->diff_max_files = 1000;
	st->diff_max_lines = 50000;
	st->diff_max_patch_bytes = 200 * 1024;
	st->allow_local_requests = false;
	st->archive_per_minute = 5;
	st->project_get_per_minute = 400;
	st->group_get_per_minute = 400;
	st->group_projects_per_minute = 600;
	st->notes_create_per_minute = 60;
	st->status_lock_ms = 50;
	st->status_lock_wait_ms = 10000; /* in_lock(..., sleep_sec: 0.5, retries: 20) */
	st->merge_check_ms = 300;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- settings -------------------------------------------------------------------------------------------------- */

struct int_setting {
	const char *name;
	size_t offset;
	int min, max;
};

#define INT_SETTING(f, lo, hi)                                                                                         \
	{                                                                                                              \
#f, offsetof(struct sim_settings, f), lo, hi                                                           \
	}
static const struct int_setting int_settings[] = {
    INT_SETTING(diff_max_files, 1, 3000),
    INT_SETTING(diff_max_lines, 1, 100000),
    INT_SETTING(diff_max_patch_bytes, 1, 512000),
    INT_SETTING(archive_per_minute, 0, 1000000),
    INT_SETTING(project_get_per_minute, 0, 1000000),
    INT_SETTING(group_get_per_minute, 0, 1000000),
    INT_SETTING(group_projects_per_minute, 0, 1000000),
    INT_SETTING(notes_create_per_minute, 0, 1000000),
    INT_SETTING(status_lock_ms, 0, 60000),
    INT_SETTING(status_lock_wait_ms, 0, 60000),
    INT_SETTING(merge_check_ms, 0, 60000),
};
#define N_INT_SETTINGS (sizeof(int_settings) / sizeof(int_settings[0]))

static struct json_object *settings_json(const struct sim_settings *st)
{
	struct json_object *o = json_object_new_object();
	for (size_t i = 0; i < N_INT_SETTINGS; i++)
		json_object_object_add(o, int_settings[i].name,
		                       json_object_new_int(*(const int *)((const char *)st + int_settings[i].offset)));
	json_object_object_add(o, "allow_local_requests_from_web_hooks_and_services",
	                       json_object_new_boolean(st->allow_local_requests));
	return o;
}

void sim_strict_settings_get(struct sim_req *r)
{
	sim_reply_json(r, 200, settings_json(&r->s->settings));
}

void sim_strict_settings_set(struct sim_req *r)
{
	struct sim_settings st = r->s->settings;
	json_object_object_foreach(r->params, key, val)
	{
		bool known = false;
		for (size_t i = 0; i < N_INT_SETTINGS && !known; i++) {
			if (strcmp(key, int_settings[i].name) != 0)
				continue;
			known = true;
			int64_t v = json_object_get_int64(val);
			if (!json_object_is_type(val, json_type_int) || v < int_settings[i].min ||
			    v > int_settings[i].max) {
				char *msg = sim_printf("%s must be an integer from %d to %d", key, int_settings[i].min,
				                       int_settings[i].max);
				sim_reply_error(r, 400, msg);
				free(msg);
				return;
			}
			*(int *)((char *)&st + int_settings[i].offset) = (int)v;
		}
		if (!known && strcmp(key, "allow_local_requests_from_web_hooks_and_services") == 0) {
			if (!json_object_is_type(val, json_type_boolean)) {
				sim_reply_error(r, 400,
				                "allow_local_requests_from_web_hooks_and_services must be a boolean");
				return;
			}
			st.allow_local_requests = json_object_get_boolean(val);
			known = true;
		}
		if (!known) {
			char *msg = sim_printf("unknown setting %s", key);
			sim_reply_error(r, 400, msg);
			free(msg);
			return;
		}
	}
	r->s->settings = st;
	sim_reply_json(r, 200, settings_json(&st));
}

/* --- diff limits ---------------------------------------------------------------------------------------------- */

/* Gitlab::Git::Util.count_lines: newlines, plus one for a last line without one. */
static size_t count_lines(const char *d)
{
	size_t n = 0, len = strlen(d);
	for (size_t i = 0; i < len; i++)
		n += d[i] == '\n';
	return len && d[len - 1] != '\n' ? n + 1 : n;
}

void sim_strict_diff_limits(const struct sim *s, const struct sim_change *changes, size_t n, bool *too_large,
                            size_t *kept_out, bool *overflow_out)
{
	const struct sim_settings *st = &s->settings;
	size_t max_bytes = (size_t)st->diff_max_files * 5 * 1024; /* "Average 5 KB per file" */
	size_t lines = 0, bytes = 0, i = 0;
	bool overflow = false;
	for (; i < n; i++) {
		if (i >= (size_t)st->diff_max_files) {
			overflow = true;
			break;
		}
		char *d = sim_unified_diff(changes[i].old_content, changes[i].new_content);
		size_t dl = count_lines(d), db = strlen(d);
		free(d);
		bool big = db >= (size_t)st->diff_max_patch_bytes;
		if (too_large)
			too_large[i] = big;
		/* the collection counts what it keeps: a too-large patch is pruned before it is counted */
		if (!big) {
			lines += dl;
			bytes += db;
		}
		if (lines >= (size_t)st->diff_max_lines || bytes >= max_bytes) {
			overflow = true; /* this diff pushed the collection over: GitLab discards it too */
			break;
		}
	}
	*kept_out = i;
	*overflow_out = overflow;
}

char *sim_strict_changes_count(const struct sim *s, const struct sim_mr *m)
{
	size_t kept = 0;
	bool overflow = false;
	sim_strict_diff_limits(s, m->changes, m->n_changes, NULL, &kept, &overflow);
	return overflow ? sim_printf("%zu+", kept) : sim_printf("%zu", kept);
}

/* --- per-endpoint limits and integer parameters ------------------------------------------------------------------ */

static bool is_integer(const char *v)
{
	if (!v || !*v)
		return false;
	const char *p = v + (*v == '-' || *v == '+');
	if (!*p)
		return false;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/* One fixed 60 s window per key; true when this request is over the limit. */
static bool over_limit(struct sim *s, const char *key, int per_minute)
{
	if (per_minute <= 0)
		return false;
	struct sim_rate_bucket *b = sim_rate_count(&s->endpoint_buckets, key);
	return b->count > per_minute;
}

bool sim_strict_before_handler(struct sim_req *r, const char *template_path)
{
	static const char *ints[] = {"page", "per_page", NULL};
	if (strcmp(r->method, "GET") == 0)
		for (size_t i = 0; ints[i]; i++) {
			struct json_object *v = sim_param_json(r, ints[i]);
			bool ok = !v || json_object_is_type(v, json_type_int) ||
			          (json_object_is_type(v, json_type_string) && is_integer(json_object_get_string(v)));
			if (!ok) {
				char *msg = sim_printf("%s is invalid", ints[i]);
				sim_reply_error(r, 400, msg);
				free(msg);
				return true;
			}
		}
	const struct sim_settings *st = &r->s->settings;
	int limit = 0;
	bool per_project = false;
	if (strcmp(r->method, "GET") == 0) {
		if (strcmp(template_path, "/api/v4/projects/:id/repository/archive") == 0 ||
		    strcmp(template_path, "/api/v4/projects/:id/repository/archive.tar.gz") == 0 ||
		    strncmp(template_path, "/api/v4/projects/:id/repository/archive", 39) == 0) {
			limit = st->archive_per_minute;
			per_project = true;
		} else if (strcmp(template_path, "/api/v4/projects/:id") == 0) {
			limit = st->project_get_per_minute;
		} else if (strcmp(template_path, "/api/v4/groups/:id") == 0) {
			limit = st->group_get_per_minute;
		} else if (strcmp(template_path, "/api/v4/groups/:id/projects") == 0) {
			limit = st->group_projects_per_minute;
		}
	} else if (strcmp(r->method, "POST") == 0 &&
	           strcmp(template_path, "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes") == 0) {
		limit = st->notes_create_per_minute;
	}
	if (limit <= 0)
		return false;
	/* keyed like Gitlab::ApplicationRateLimiter: the endpoint, the user, and the project for per-project ones */
	char *key = sim_printf("%s|%lld|%s", template_path, (long long)r->token->user->id,
	                       per_project ? sim_req_cap(r, 0) : "");
	bool over = over_limit(r->s, key, limit);
	free(key);
	if (!over)
		return false;
	struct json_object *m = json_object_new_object(), *o = json_object_new_object();
	json_object_object_add(
	    m, "error", json_object_new_string("This endpoint has been requested too many times. Try again later."));
	json_object_object_add(o, "message", m);
	sim_reply_json(r, 429, o);
	return true;
}

/* --- hook URLs and target URLs ---------------------------------------------------------------------------------- */

/* The host of an http(s) URL (brackets of an IPv6 literal removed), lower case, into out. false if none. */
static bool url_host(const char *url, char *out, size_t cap)
{
	const char *p = NULL;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	if (!p)
		return false;
	const char *end = p + strcspn(p, "/?#");
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	const char *hs = p, *he;
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (!he)
			return false;
	} else {
		he = memchr(p, ':', (size_t)(end - p));
		if (!he)
			he = end;
	}
	size_t n = (size_t)(he - hs);
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)hs[i]);
	out[n] = '\0';
	return true;
}

static bool host_is_local(const char *h)
{
	size_t n = strlen(h);
	if (strcmp(h, "localhost") == 0 || (n > 10 && strcmp(h + n - 10, ".localhost") == 0))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, h, &a4) == 1) {
		uint32_t ip = ntohl(a4.s_addr);
		return (ip >> 24) == 127 || (ip >> 24) == 10 || (ip >> 24) == 0 || (ip >> 20) == (172u << 4 | 1) ||
		       (ip >> 16) == (192u << 8 | 168) || (ip >> 16) == (169u << 8 | 254) ||
		       (ip >> 22) == (100u << 2 | 1); /* 100.64.0.0/10, shared address space */
	}
	if (inet_pton(AF_INET6, h, &a6) == 1) {
		static const unsigned char loop[16] = {[15] = 1}, any[16] = {0};
		const unsigned char *b = a6.s6_addr;
		return memcmp(b, loop, 16) == 0 || memcmp(b, any, 16) == 0 || (b[0] & 0xfe) == 0xfc ||
		       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
	}
	return false;
}

bool sim_strict_hook_url_allowed(const struct sim *s, const char *url)
{
	char host[256];
	if (s->settings.allow_local_requests)
		return true;
	return url_host(url, host, sizeof(host)) && !host_is_local(host);
}

bool sim_strict_addressable_url(const char *url)
{
	char host[256];
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ')
			return false;
	return url_host(url, host, sizeof(host));
}

/* --- quick actions ---------------------------------------------------------------------------------------------- */

static void record_action(struct sim_note *n, const char *what)
{
	if (!n->quick_actions)
		n->quick_actions = json_object_new_array();
	json_object_array_add(n->quick_actions, json_object_new_string(what));
}

void sim_strict_quick_actions(struct sim *s, struct sim_mr *m, struct sim_note *n, const char *diff_head_sha)
{
	bool fenced = false;
	const char *line = n->body;
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (len >= 3 && strncmp(line, "```", 3) == 0)
			fenced = !fenced;
		else if (!fenced && *line == '/') {
			size_t w = 1;
			while (w < len && (isalnum((unsigned char)line[w]) || line[w] == '_'))
				w++;
			bool ends = w == len || line[w] == ' ' || line[w] == '\t' || line[w] == '\r';
			if (ends && w == 6 && strncmp(line, "/merge", 6) == 0 && strcmp(m->state, "opened") == 0 &&
			    diff_head_sha && strcmp(diff_head_sha, m->sha) == 0) {
				/* MergeService when mergeable, else auto-merge (merge_when_pipeline_succeeds) */
				const char *check = sim_strict_merge_check(s, m);
				struct sim_pipeline *hp = sim_mr_head_pipeline(s, m);
				bool waits = hp && (strcmp(hp->status, "success") != 0);
				if (!check && !waits) {
					free(m->state);
					m->state = sim_strdup("merged");
					free(m->updated_at);
					m->updated_at = sim_now_iso();
					sim_hooks_fire_mr(s, m, "merge", NULL, NULL);
					record_action(n, "merge");
				} else {
					m->auto_merge = true;
					record_action(n, "merge_when_pipeline_succeeds");
				}
			} else if (ends && w == 8 && strncmp(line, "/approve", 8) == 0 &&
			           strcmp(m->state, "opened") == 0) {
				bool already = false;
				for (size_t i = 0; i < m->n_approved; i++)
					already = already || m->approved_by[i] == n->author->id;
				if (!already && m->n_approved < sizeof(m->approved_by) / sizeof(m->approved_by[0]))
					m->approved_by[m->n_approved++] = n->author->id;
				record_action(n, "approve");
			}
		}
		line = eol ? eol + 1 : NULL;
	}
}

/* --- the per-commit status lock ----------------------------------------------------------------------------------- */

static struct sim_rate_bucket *lock_entry(struct sim *s, const char *key, bool create)
{
	for (size_t i = 0; i < s->status_locks.len; i++) {
		struct sim_rate_bucket *b = s->status_locks.items[i];
		if (strcmp(b->key, key) == 0)
			return b;
	}
	if (!create)
		return NULL;
	struct sim_rate_bucket *b = sim_xcalloc(1, sizeof(*b));
	b->key = sim_strdup(key);
	sim_vec_push(&s->status_locks, b);
	return b;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

bool sim_strict_status_lock(struct sim *s, const char *key)
{
	int waited = 0;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		struct sim_rate_bucket *b = lock_entry(s, key, true);
		bool free_now = b->count == 0;
		if (free_now)
			b->count = 1;
		int wait = s->settings.status_lock_wait_ms, hold = s->settings.status_lock_ms;
		pthread_mutex_unlock(&s->mu);
		if (free_now) {
			if (hold > 0)
				sleep_ms(hold); /* GitLab works on the status while it holds the lock; the answer comes
				                   after */
			return true;
		}
		if (waited >= wait)
			return false;
		int step = wait - waited < 500 ? wait - waited : 500; /* sleep_sec: 0.5 */
		sleep_ms(step);
		waited += step;
	}
}

void sim_strict_status_unlock(struct sim *s, const char *key)
{
	pthread_mutex_lock(&s->mu);
	struct sim_rate_bucket *b = lock_entry(s, key, false);
	if (b)
		b->count = 0;
	pthread_mutex_unlock(&s->mu);
}

/* --- asynchronous mergeability ------------------------------------------------------------------------------------ */

const char *sim_strict_merge_check(struct sim *s, struct sim_mr *m)
{
	(void)s;
	if (m->merge_checked_at_ms == 0)
		return NULL;
	if (now_ms() >= m->merge_checked_at_ms && m->merge_check_started) {
		m->merge_checked_at_ms = 0;
		return NULL;
	}
	const char *st = m->merge_check_started ? "checking" : "unchecked";
	m->merge_check_started = true;
	return st;
}

void sim_strict_merge_check_restart(const struct sim *s, struct sim_mr *m)
{
	m->merge_check_started = false;
	m->merge_checked_at_ms = s->settings.merge_check_ms > 0 ? now_ms() + s->settings.merge_check_ms : 0;
}
