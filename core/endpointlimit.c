/*
 * core/endpointlimit.c
 *    Back-off per GitLab endpoint after per-endpoint 429s (see endpointlimit.h).
 */
#include "endpointlimit.h"

#include "xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char key[ENDPOINTLIMIT_KEY_MAX];
	int64_t until_ms; /* no request before */
	int64_t used_ms;  /* last touched, for recycling */
	int64_t probe_ms; /* a probe request is in flight until then (0 = none) */
	int streak;       /* 429s in a row */
};

struct endpointlimit {
	pthread_mutex_t mu;
	struct slot slots[ENDPOINTLIMIT_SLOTS];
	size_t n;
};

struct endpointlimit *endpointlimit_new(void)
{
	struct endpointlimit *t = xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL); /* default attributes: cannot fail on Linux */
	return t;
}

void endpointlimit_free(struct endpointlimit *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* Templates whose GitLab limit counts per project (and user). */
static bool per_project(const char *tmpl)
{
	return strncmp(tmpl, "/projects/:id/repository/archive", 32) == 0;
}

/* FNV-1a of n bytes: a short stand-in for a project segment too long to keep whole. */
static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void endpointlimit_key(const char *method, const char *tmpl, const char *path, char *out, size_t cap)
{
	if (!per_project(tmpl) || strncmp(path, "/projects/", 10) != 0) {
		snprintf(out, cap, "%s %s", method, tmpl);
		return;
	}
	const char *id = path + 10;
	size_t n = strcspn(id, "/?");
	if (n <= ENDPOINTLIMIT_ID_MAX)
		snprintf(out, cap, "%s %s @%.*s", method, tmpl, (int)n, id);
	else /* a long namespaced path: its hash, so two projects never share a key by a common prefix */
		snprintf(out, cap, "%s %s @#%016llx", method, tmpl, (unsigned long long)fnv1a(id, n));
}

/* The slot of key (lock held); creates it (recycling the least recently used) when create. */
static struct slot *find(struct endpointlimit *t, const char *key, bool create, int64_t now_ms)
{
	struct slot *lru = NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->slots[i].key, key) == 0)
			return &t->slots[i];
		if (!lru || t->slots[i].used_ms < lru->used_ms)
			lru = &t->slots[i];
	}
	if (!create)
		return NULL;
	struct slot *s = t->n < ENDPOINTLIMIT_SLOTS ? &t->slots[t->n++] : lru;
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->used_ms = now_ms;
	return s;
}

int64_t endpointlimit_throttled(struct endpointlimit *t, const char *key, int64_t now_ms, int64_t base_ms,
                                int *streak_out)
{
	if (base_ms < 1)
		base_ms = 1;
	pthread_mutex_lock(&t->mu);
	struct slot *s = find(t, key, true, now_ms);
	s->streak++;
	int64_t delay = base_ms;
	for (int i = 1; i < s->streak && delay < ENDPOINTLIMIT_MAX_MS; i++)
		delay *= 2;
	if (delay > ENDPOINTLIMIT_MAX_MS)
		delay = ENDPOINTLIMIT_MAX_MS;
	if (s->until_ms < now_ms + delay)
		s->until_ms = now_ms + delay;
	s->probe_ms = 0;
	s->used_ms = now_ms;
	delay = s->until_ms - now_ms;
	if (streak_out)
		*streak_out = s->streak;
	pthread_mutex_unlock(&t->mu);
	return delay;
}

int64_t endpointlimit_wait(struct endpointlimit *t, const char *key, int64_t now_ms)
{
	pthread_mutex_lock(&t->mu);
	struct slot *s = find(t, key, false, now_ms);
	int64_t w = 0;
	if (s && s->until_ms > now_ms) {
		w = s->until_ms - now_ms;
	} else if (s && s->streak > 0) {
		/* the wait is over: one request probes the endpoint, the others wait for its answer */
		if (s->probe_ms > now_ms)
			w = ENDPOINTLIMIT_POLL_MS;
		else
			s->probe_ms = now_ms + ENDPOINTLIMIT_PROBE_MS;
	}
	pthread_mutex_unlock(&t->mu);
	return w;
}

void endpointlimit_ok(struct endpointlimit *t, const char *key)
{
	pthread_mutex_lock(&t->mu);
	struct slot *s = find(t, key, false, 0);
	if (s) {
		s->streak = 0;
		s->until_ms = 0;
		s->probe_ms = 0;
	}
	pthread_mutex_unlock(&t->mu);
}
