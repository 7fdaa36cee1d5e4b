/*
 * tests/gitlab-sim/sim_state.c
 *    The simulator's model: allocation, lookups, access resolution, deterministic ids/shas and seeding.
 *
 * Design: plain vectors of pointers; projects are indexed by (id - SIM_PROJECT_ID_BASE) and groups by
 *    (id - 1), because ids are handed out in order and never reused. Lookups by path scan linearly; a
 *    world of 10,050 projects scans in well under a millisecond.
 * Ownership: see sim_state.h. Allocation failure aborts: this is test infrastructure.
 */
#include "sim_state.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- small utilities ----------------------------------------------------------------------------------- */

void *sim_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "gitlab-sim: out of memory\n");
		abort();
	}
	return p;
}

void *sim_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "gitlab-sim: out of memory\n");
		abort();
	}
	return p;
}

char *sim_strdup(const char *s)
{
	if (!s)
		return NULL;
	return sim_strndup(s, strlen(s));
}

char *sim_strndup(const char *s, size_t n)
{
	char *d = sim_xmalloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *sim_vprintf(const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0)
		n = 0;
	char *buf = sim_xmalloc((size_t)n + 1);
	vsnprintf(buf, (size_t)n + 1, fmt, again);
	va_end(again);
	return buf;
}

char *sim_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *buf = sim_vprintf(fmt, ap);
	va_end(ap);
	return buf;
}

void sim_buf_put(struct sim_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *data = realloc(b->data, cap);
		if (!data) {
			fprintf(stderr, "gitlab-sim: out of memory\n");
			abort();
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sim_buf_puts(struct sim_buf *b, const char *s)
{
	sim_buf_put(b, s, strlen(s));
}

bool sim_vec_push(struct sim_vec *v, void *item)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void **items = realloc(v->items, cap * sizeof(*items));
		if (!items)
			return false;
		v->items = items;
		v->cap = cap;
	}
	v->items[v->len++] = item;
	return true;
}

void sim_vec_reverse(struct sim_vec *v)
{
	for (size_t i = 0; i < v->len / 2; i++) {
		void *t = v->items[i];
		v->items[i] = v->items[v->len - 1 - i];
		v->items[v->len - 1 - i] = t;
	}
}

struct sim_rate_bucket *sim_rate_count(struct sim_vec *buckets, const char *key)
{
	struct sim_rate_bucket *b = NULL;
	for (size_t i = 0; i < buckets->len && !b; i++) {
		struct sim_rate_bucket *k = buckets->items[i];
		if (strcmp(k->key, key) == 0)
			b = k;
	}
	if (!b) {
		b = sim_xcalloc(1, sizeof(*b));
		b->key = sim_strdup(key);
		sim_vec_push(buckets, b);
	}
	time_t now = time(NULL);
	if (!b->window_start || now >= b->window_start + 60) {
		b->window_start = now;
		b->count = 0;
	}
	b->count++;
	return b;
}

void sim_deadline(int timeout_ms, struct timespec *out)
{
	clock_gettime(CLOCK_REALTIME, out);
	out->tv_sec += timeout_ms / 1000;
	out->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}

void sim_iso_time(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

char *sim_now_iso(void)
{
	char buf[32];
	sim_iso_time(time(NULL), buf);
	return sim_strdup(buf);
}

void sim_today(char out[11])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

void sim_http_date(time_t t, char out[40])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void sim_sha_for(uint64_t seed, char out[41])
{
	uint64_t x = seed * 0x2545F4914F6CDD1Dull + 17;
	uint64_t a = splitmix64(&x), b = splitmix64(&x), c = splitmix64(&x);
	snprintf(out, 41, "%016llx%016llx%08llx", (unsigned long long)a, (unsigned long long)b,
	         (unsigned long long)(c >> 32));
}

void sim_new_sha(struct sim *s, char out[41])
{
	sim_sha_for(0x5eed000000000000ull + ++s->sha_counter, out);
}

char *sim_new_uuid(struct sim *s)
{
	uint64_t x = 0xfeedull + ++s->uuid_counter + ((uint64_t)time(NULL) << 20);
	uint64_t a = splitmix64(&x), b = splitmix64(&x);
	return sim_printf("%08llx-%04llx-4%03llx-%04llx-%012llx", (unsigned long long)(a >> 32),
	                  (unsigned long long)((a >> 16) & 0xffff), (unsigned long long)(a & 0xfff),
	                  (unsigned long long)(((b >> 48) & 0x3fff) | 0x8000),
	                  (unsigned long long)(b & 0xffffffffffffull));
}

double sim_random(struct sim *s)
{
	return (double)(splitmix64(&s->rng) >> 11) / (double)(1ull << 53);
}

bool sim_parse_int64(const char *str, int64_t *out)
{
	if (!str || !*str)
		return false;
	for (const char *p = str; *p; p++)
		if (!isdigit((unsigned char)*p) && !(p == str && *p == '-'))
			return false;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(str, &end, 10);
	if (errno || !end || *end)
		return false;
	*out = v;
	return true;
}

/* --- lifetime ------------------------------------------------------------------------------------------ */

struct sim *sim_state_new(const char *instance_url)
{
	struct sim *s = sim_xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->delivery_cv, NULL);
	pthread_cond_init(&s->renders_cv, NULL);
	s->instance_url = sim_strdup(instance_url);
	s->webhook_timeout_s = 10;
	s->rng = 42;
	sim_state_clear(s);
	return s;
}

static void free_files(struct sim_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		free(f[i].content);
	}
	free(f);
}

static void free_vec(struct sim_vec *v, void (*fn)(void *))
{
	for (size_t i = 0; i < v->len; i++)
		fn(v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

/* free() each pointer of a destructor's list of owned members (strings, arrays, the struct itself last). */
static void free_each(void *const ptrs[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ptrs[i]);
}
#define FREE_EACH(...) free_each((void *const[]){__VA_ARGS__}, sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))

static void user_free(void *p)
{
	struct sim_user *u = p;
	FREE_EACH(u->username, u->name, u->email, u->created_at, u);
}

static void token_free(void *p)
{
	struct sim_token *t = p;
	FREE_EACH(t->token, t->name, t->description, t->expires_at);
	for (size_t i = 0; i < t->n_access; i++)
		free(t->access[i].path);
	FREE_EACH(t->access, t->created_at, t->last_used_at, t);
}

static void group_free(void *p)
{
	struct sim_group *g = p;
	FREE_EACH(g->name, g->path, g->full_path, g->description, g->visibility, g->created_at, g);
}

static void commit_free(void *p)
{
	struct sim_commit *c = p;
	FREE_EACH(c->ref, c->message, c->created_at);
	free_files(c->files, c->n_files);
	free(c);
}

static void project_free(void *p)
{
	struct sim_project *pr = p;
	FREE_EACH(pr->name, pr->path, pr->path_with_namespace, pr->description, pr->default_branch, pr->visibility,
	          pr->marked_for_deletion_on, pr->created_at, pr->last_activity_at);
	json_object_put(pr->settings);
	free_vec(&pr->commits, commit_free);
	free(pr);
}

void sim_hook_free(struct sim_hook *h)
{
	json_object_put(h->attrs);
	json_object_put(h->headers);
	json_object_put(h->url_vars);
	FREE_EACH(h->url, h->token, h->created_at, h->alert_status, h);
}

static void hook_free(void *p)
{
	sim_hook_free(p);
}

static void pipeline_free(void *p)
{
	struct sim_pipeline *pl = p;
	FREE_EACH(pl->ref, pl->status, pl->source, pl->created_at, pl->updated_at, pl);
}

static void status_free(void *p)
{
	struct sim_status *st = p;
	FREE_EACH(st->ref, st->name, st->status, st->description, st->target_url, st->created_at, st->started_at,
	          st->finished_at, st);
}

static void mr_free(void *p)
{
	struct sim_mr *m = p;
	FREE_EACH(m->title, m->description, m->source_branch, m->target_branch, m->state);
	for (size_t i = 0; i < m->n_changes; i++) {
		free(m->changes[i].path);
		free(m->changes[i].old_content);
		free(m->changes[i].new_content);
	}
	FREE_EACH(m->changes, m->created_at, m->updated_at, m->closed_at, m);
}

static void note_free(void *p)
{
	struct sim_note *n = p;
	json_object_put(n->quick_actions);
	FREE_EACH(n->body, n->created_at, n->updated_at, n);
}

static void delivery_free(void *p)
{
	struct sim_delivery *d = p;
	json_object_put(d->headers);
	FREE_EACH(d->event, d->event_name, d->idempotency_key, d->event_uuid, d->webhook_uuid, d->body, d->url,
	          d->error, d->created_at, d);
}

static void script_free(void *p)
{
	struct sim_script *sc = p;
	for (size_t i = 0; i < sc->n_steps; i++) {
		free(sc->steps[i].body);
		json_object_put(sc->steps[i].headers);
	}
	FREE_EACH(sc->steps, sc->method, sc->path, sc);
}

static void bucket_free(void *p)
{
	struct sim_rate_bucket *b = p;
	free(b->key);
	free(b);
}

void sim_state_clear(struct sim *s)
{
	/* Deliveries still running keep their record: a worker holds no pointer across the unlock. */
	free_vec(&s->deliveries, delivery_free);
	free_vec(&s->notes, note_free);
	free_vec(&s->mrs, mr_free);
	free_vec(&s->statuses, status_free);
	free_vec(&s->pipelines, pipeline_free);
	free_vec(&s->hooks, hook_free);
	free_vec(&s->projects, project_free);
	free_vec(&s->groups, group_free);
	free_vec(&s->tokens, token_free);
	free_vec(&s->users, user_free);
	free_vec(&s->scripts, script_free);
	free_vec(&s->rate_buckets, bucket_free);
	free_vec(&s->endpoint_buckets, bucket_free);
	free_vec(&s->status_locks, bucket_free);
	json_object_put(s->counters);
	s->counters = json_object_new_object();
	s->counter_total = s->counter_writes = s->counter_rate_limited = s->counter_connections = 0;
	s->counter_pages_unlocked = 0;
	s->peak_renders = 0;
	int64_t *const counters[] = {&s->next_user_id, &s->next_token_id,    &s->next_group_id,
	                             &s->next_hook_id, &s->next_pipeline_id, &s->next_status_id,
	                             &s->next_mr_id,   &s->next_note_id,     &s->next_delivery_id};
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		*counters[i] = 1; /* ids start at 1, as GitLab's */
	s->sha_counter = 0;
	s->generation++;
	memset(&s->faults, 0, sizeof(s->faults));
	s->faults.hook_backoff_s = 60;
	sim_settings_defaults(&s->settings);
	s->root_user = sim_user_get_or_add(s, "root", "Administrator", false);
}

void sim_state_free(struct sim *s)
{
	if (!s)
		return;
	sim_state_clear(s);
	free_vec(&s->users, user_free);
	json_object_put(s->counters);
	free(s->instance_url);
	pthread_cond_destroy(&s->delivery_cv);
	pthread_cond_destroy(&s->renders_cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void sim_wait_renders(struct sim *s)
{
	while (s->renders > 0)
		pthread_cond_wait(&s->renders_cv, &s->mu);
}

/* --- users and tokens ---------------------------------------------------------------------------------- */

struct sim_user *sim_user_get_or_add(struct sim *s, const char *username, const char *name, bool bot)
{
	for (size_t i = 0; i < s->users.len; i++) {
		struct sim_user *u = s->users.items[i];
		if (strcmp(u->username, username) == 0)
			return u;
	}
	struct sim_user *u = sim_xcalloc(1, sizeof(*u));
	u->id = s->next_user_id++;
	u->username = sim_strdup(username);
	u->name = sim_strdup(name ? name : username);
	u->email = sim_printf("%s@example.com", username);
	u->bot = bot;
	char ts[32];
	sim_iso_time(1704067200 + u->id, ts);
	u->created_at = sim_strdup(ts);
	sim_vec_push(&s->users, u);
	return u;
}

struct sim_user *sim_user_by_id(struct sim *s, int64_t id)
{
	for (size_t i = 0; i < s->users.len; i++) {
		struct sim_user *u = s->users.items[i];
		if (u->id == id)
			return u;
	}
	return NULL;
}

struct sim_token *sim_token_find(struct sim *s, const char *token)
{
	if (!token)
		return NULL;
	for (size_t i = 0; i < s->tokens.len; i++) {
		struct sim_token *t = s->tokens.items[i];
		if (strcmp(t->token, token) == 0)
			return t;
	}
	return NULL;
}

bool sim_token_expired(const struct sim_token *t)
{
	if (!t->expires_at)
		return false;
	char today[11];
	sim_today(today);
	/* GitLab: a token expires at the start of its expires_at day (expires_at <= today). */
	return strcmp(t->expires_at, today) <= 0;
}

static const struct {
	const char *name;
	unsigned bit;
} scope_names[] = {
    {"api", SIM_SCOPE_API},
    {"read_api", SIM_SCOPE_READ_API},
    {"read_user", SIM_SCOPE_READ_USER},
    {"read_repository", SIM_SCOPE_READ_REPOSITORY},
    {"write_repository", SIM_SCOPE_WRITE_REPOSITORY},
    {"self_rotate", SIM_SCOPE_SELF_ROTATE},
    {"sudo", SIM_SCOPE_SUDO},
};

unsigned sim_scope_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
		if (strcmp(scope_names[i].name, name) == 0)
			return scope_names[i].bit;
	return 0;
}

void sim_scope_names(unsigned scopes, struct json_object *array_out)
{
	for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
		if (scopes & scope_names[i].bit)
			json_object_array_add(array_out, json_object_new_string(scope_names[i].name));
}

/* --- groups and projects ------------------------------------------------------------------------------- */

/*
 * Lookups written once for every kind of thing the simulator keeps:
 * SIM_BY_ID writes sim_<kind>_by_id: the id is the position in s-><vec> counted from base (ids are never reused);
 * SIM_BY_PATH writes sim_<kind>_by_path (compared case-insensitively, as GitLab does) and sim_<kind>_by_ref (a
 * number is the id, anything else a path). A removed one is never found.
 */
#define SIM_BY_ID(kind, vec, base)                                                                                     \
	struct sim_##kind *sim_##kind##_by_id(struct sim *s, int64_t id)                                               \
	{                                                                                                              \
		if (id < (base) || (size_t)(id - (base)) >= s->vec.len)                                                \
			return NULL;                                                                                   \
		struct sim_##kind *x = s->vec.items[id - (base)];                                                      \
		return x->removed ? NULL : x;                                                                          \
	}
#define SIM_BY_PATH(kind, vec, path_field)                                                                             \
	struct sim_##kind *sim_##kind##_by_path(struct sim *s, const char *path)                                       \
	{                                                                                                              \
		for (size_t i = 0; i < s->vec.len; i++) {                                                              \
			struct sim_##kind *x = s->vec.items[i];                                                        \
			if (!x->removed && strcasecmp(x->path_field, path) == 0)                                       \
				return x;                                                                              \
		}                                                                                                      \
		return NULL;                                                                                           \
	}                                                                                                              \
	struct sim_##kind *sim_##kind##_by_ref(struct sim *s, const char *id_or_path)                                  \
	{                                                                                                              \
		int64_t n = 0;                                                                                         \
		return sim_parse_int64(id_or_path, &n) ? sim_##kind##_by_id(s, n)                                      \
		                                       : sim_##kind##_by_path(s, id_or_path);                          \
	}

SIM_BY_ID(group, groups, 1)
SIM_BY_PATH(group, groups, full_path)

static char *title_case(const char *path)
{
	char *n = sim_strdup(path);
	bool start = true;
	for (char *p = n; *p; p++) {
		if (*p == '-' || *p == '_') {
			*p = ' ';
			start = true;
		} else if (start) {
			*p = (char)toupper((unsigned char)*p);
			start = false;
		}
	}
	return n;
}

struct sim_group *sim_group_ensure(struct sim *s, const char *full_path, int tier)
{
	struct sim_group *g = sim_group_by_path(s, full_path);
	if (g)
		return g;
	struct sim_group *parent = NULL;
	const char *slash = strrchr(full_path, '/');
	const char *leaf = full_path;
	if (slash) {
		char *ppath = sim_strndup(full_path, (size_t)(slash - full_path));
		parent = sim_group_ensure(s, ppath, -1);
		free(ppath);
		leaf = slash + 1;
	}
	g = sim_xcalloc(1, sizeof(*g));
	g->id = s->next_group_id++;
	g->path = sim_strdup(leaf);
	g->name = title_case(leaf);
	g->full_path = sim_strdup(full_path);
	g->description = sim_printf("Group %s", full_path);
	g->visibility = sim_strdup("private");
	g->parent = parent;
	g->tier = parent ? tier : (tier < 0 ? SIM_TIER_FREE : tier);
	char ts[32];
	sim_iso_time(1704067200 + g->id * 60, ts);
	g->created_at = sim_strdup(ts);
	sim_vec_push(&s->groups, g);
	return g;
}

bool sim_group_is_under(const struct sim_group *g, const struct sim_group *ancestor)
{
	for (; g; g = g->parent)
		if (g == ancestor)
			return true;
	return false;
}

int sim_group_tier(const struct sim_group *g)
{
	for (; g; g = g->parent)
		if (g->tier >= 0)
			return g->tier;
	return SIM_TIER_FREE;
}

SIM_BY_ID(project, projects, SIM_PROJECT_ID_BASE)
SIM_BY_PATH(project, projects, path_with_namespace)

struct sim_project *sim_project_add(struct sim *s, struct sim_group *ns, const char *path, const char *name)
{
	struct sim_project *p = sim_xcalloc(1, sizeof(*p));
	p->id = SIM_PROJECT_ID_BASE + (int64_t)s->projects.len;
	p->path = sim_strdup(path);
	p->name = name ? sim_strdup(name) : title_case(path);
	p->path_with_namespace = sim_printf("%s/%s", ns->full_path, path);
	p->description = sim_printf("Simulated project %s", p->path_with_namespace);
	p->default_branch = sim_strdup("main");
	p->visibility = sim_strdup("private");
	p->ns = ns;
	char ts[32];
	sim_iso_time(1704153600 + (p->id - SIM_PROJECT_ID_BASE) * 60, ts);
	p->created_at = sim_strdup(ts);
	p->last_activity_at = sim_strdup(ts);
	p->next_mr_iid = 1;
	p->next_pipeline_iid = 1;
	struct sim_commit *c = sim_xcalloc(1, sizeof(*c));
	sim_sha_for((uint64_t)p->id, c->sha);
	c->ref = sim_strdup("main");
	c->message = sim_strdup("Initial commit");
	c->created_at = sim_strdup(ts);
	/* The default tree: one README. */
	c->files = sim_xcalloc(1, sizeof(*c->files));
	c->files[0].path = sim_strdup("README.md");
	c->files[0].content = sim_printf("# %s\n\n%s\n", p->name, p->description);
	c->n_files = 1;
	sim_vec_push(&p->commits, c);
	sim_vec_push(&s->projects, p);
	return p;
}

struct sim_commit *sim_project_commit(struct sim_project *p, const char *sha)
{
	if (!sha)
		return NULL;
	size_t n = strlen(sha);
	if (n < 7 || n > 40)
		return NULL;
	for (size_t i = 0; i < p->commits.len; i++) {
		struct sim_commit *c = p->commits.items[i];
		if (strncmp(c->sha, sha, n) == 0)
			return c;
	}
	return NULL;
}

struct sim_commit *sim_project_add_commit(struct sim *s, struct sim_project *p, const char *ref, const char *parent,
                                          const char *message)
{
	struct sim_commit *c = sim_xcalloc(1, sizeof(*c));
	sim_new_sha(s, c->sha);
	if (parent)
		snprintf(c->parent, sizeof(c->parent), "%s", parent);
	c->ref = sim_strdup(ref);
	c->message = sim_strdup(message ? message : "Update files");
	c->created_at = sim_now_iso();
	sim_vec_push(&p->commits, c);
	return c;
}

size_t sim_commit_tree(const struct sim_project *p, const struct sim_commit *c, const struct sim_file **files_out)
{
	(void)p;
	*files_out = c->files;
	return c->n_files;
}

const char *sim_commit_file(const struct sim_project *p, const struct sim_commit *c, const char *path)
{
	const struct sim_file *files;
	size_t n = sim_commit_tree(p, c, &files);
	for (size_t i = 0; i < n; i++)
		if (strcmp(files[i].path, path) == 0)
			return files[i].content;
	return NULL;
}

/* --- access -------------------------------------------------------------------------------------------- */

static int access_for_path(const struct sim_token *t, const char *path)
{
	int best = 0;
	for (size_t i = 0; i < t->n_access; i++)
		if (t->access[i].level > best && strcasecmp(t->access[i].path, path) == 0)
			best = t->access[i].level;
	return best;
}

/* The token's best level on path (NULL: none) and on g and every group above it (GitLab's inherited membership). */
static int access_best(const struct sim_token *t, const char *path, const struct sim_group *g)
{
	if (!t)
		return 0;
	if (t->admin)
		return 50;
	int best = path ? access_for_path(t, path) : 0;
	for (; g; g = g->parent) {
		int l = access_for_path(t, g->full_path);
		if (l > best)
			best = l;
	}
	return best;
}

int sim_access_group(const struct sim_token *t, const struct sim_group *g)
{
	return access_best(t, NULL, g);
}

int sim_access_project(const struct sim_token *t, const struct sim_project *p)
{
	return access_best(t, p->path_with_namespace, p->ns);
}

bool sim_can_see_project(const struct sim_token *t, const struct sim_project *p)
{
	if (strcmp(p->visibility, "private") != 0)
		return true;
	return sim_access_project(t, p) > 0;
}

bool sim_can_see_group(const struct sim_token *t, const struct sim_group *g)
{
	if (strcmp(g->visibility, "private") != 0 || sim_access_group(t, g) > 0)
		return true;
	/* A member of something below a group can see the group (as GitLab shows the ancestors). */
	size_t n = strlen(g->full_path);
	for (size_t i = 0; t && i < t->n_access; i++)
		if (strncasecmp(t->access[i].path, g->full_path, n) == 0 && t->access[i].path[n] == '/')
			return true;
	return false;
}

/* --- seeding ------------------------------------------------------------------------------------------- */

long sim_seed(struct sim *s, const char *root, long n_projects, int depth, int fanout, int tier, const char *visibility)
{
	if (depth < 0)
		depth = 0;
	if (depth > 6)
		depth = 6;
	if (fanout < 1)
		fanout = 1;
	if (fanout > 50)
		fanout = 50;
	struct sim_group *top = sim_group_ensure(s, root, tier);
	if (!top->parent && tier >= 0)
		top->tier = tier;
	/* Breadth-first: level k has fanout^k groups named g<i> (level 1), s<i> (deeper). */
	struct sim_vec all = {0};
	sim_vec_push(&all, top);
	size_t level_start = 0, level_end = 1;
	for (int d = 1; d <= depth; d++) {
		for (size_t i = level_start; i < level_end; i++) {
			struct sim_group *parent = all.items[i];
			for (int k = 1; k <= fanout; k++) {
				char *fp = sim_printf("%s/%s%02d", parent->full_path, d == 1 ? "team" : "sub", k);
				sim_vec_push(&all, sim_group_ensure(s, fp, -1));
				free(fp);
			}
		}
		level_start = level_end;
		level_end = all.len;
	}
	long made = 0;
	/* Only projects that existed before this call can clash (the names made here are distinct): a fresh
	 * seed of 100,000 projects is linear, not a scan of everything per project. */
	size_t existing = s->projects.len;
	for (long i = 0; i < n_projects; i++) {
		struct sim_group *ns = all.items[(size_t)i % all.len];
		char *path = sim_printf("%s-%05ld", top->path, i + 1);
		char *pwn = sim_printf("%s/%s", ns->full_path, path);
		bool clash = false;
		for (size_t k = 0; k < existing && !clash; k++) {
			struct sim_project *q = s->projects.items[k];
			clash = !q->removed && strcasecmp(q->path_with_namespace, pwn) == 0;
		}
		if (!clash) {
			struct sim_project *p = sim_project_add(s, ns, path, NULL);
			if (visibility) {
				free(p->visibility);
				p->visibility = sim_strdup(visibility);
			}
			made++;
		}
		free(path);
		free(pwn);
	}
	free(all.items);
	return made;
}

/* --- hooks, pipelines, MRs, notes ---------------------------------------------------------------------- */

SIM_BY_ID(hook, hooks, 1)

struct sim_status *sim_status_add(struct sim *s, int64_t project_id, int64_t pipeline_id, const char *sha,
                                  const char *ref, const char *name, struct sim_user *author)
{
	struct sim_status *st = sim_xcalloc(1, sizeof(*st));
	st->id = s->next_status_id++;
	st->project_id = project_id;
	st->pipeline_id = pipeline_id;
	snprintf(st->sha, sizeof(st->sha), "%s", sha);
	st->ref = sim_strdup(ref);
	st->name = sim_strdup(name);
	st->status = sim_strdup("created");
	st->author = author;
	st->created_at = sim_now_iso();
	sim_vec_push(&s->statuses, st);
	return st;
}

struct sim_pipeline *sim_pipeline_by_id(struct sim *s, int64_t id)
{
	if (id < 1 || (size_t)(id - 1) >= s->pipelines.len)
		return NULL;
	return s->pipelines.items[id - 1];
}

struct sim_mr *sim_mr_find(struct sim *s, int64_t project_id, int64_t iid)
{
	for (size_t i = 0; i < s->mrs.len; i++) {
		struct sim_mr *m = s->mrs.items[i];
		if (m->project_id == project_id && m->iid == iid)
			return m;
	}
	return NULL;
}

SIM_BY_ID(note, notes, 1)

struct sim_pipeline *sim_mr_head_pipeline(struct sim *s, const struct sim_mr *mr)
{
	/*
	 * MergeRequest#find_actual_head_pipeline: all_pipelines.for_sha_or_source_sha(diff_head_sha).first, where
	 * all_pipelines (Ci::PipelinesForMergeRequestFinder) are the MR's own pipelines (source merge_request_event:
	 * detached on the head sha, merged results with the head as source_sha) and the source branch's other pipelines
	 * (external ones included), sorted "CASE source WHEN merge_request_event THEN 0 ELSE 1 END, id DESC": any merge
	 * request pipeline wins over a newer branch pipeline.
	 */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = s->pipelines.len; i > 0; i--) {
			struct sim_pipeline *pl = s->pipelines.items[i - 1];
			if (pl->project_id != mr->project_id)
				continue;
			bool mr_pipeline = strcmp(pl->source, "merge_request_event") == 0;
			if (pass == 0 && mr_pipeline && pl->mr_iid == mr->iid &&
			    (strcmp(pl->sha, mr->sha) == 0 || strcmp(pl->source_sha, mr->sha) == 0))
				return pl;
			if (pass == 1 && !mr_pipeline && strcmp(pl->ref, mr->source_branch) == 0 &&
			    strcmp(pl->sha, mr->sha) == 0)
				return pl;
		}
	}
	return NULL;
}

void sim_pipeline_refresh(struct sim *s, struct sim_pipeline *pl)
{
	/* Latest job per name decides; failed > running > pending > canceled > success > skipped. */
	static const char *order[] = {"failed", "running", "pending", "created", "canceled", "success", "skipped"};
	int best = -1;
	struct sim_vec jobs = {0};
	for (size_t i = 0; i < s->statuses.len; i++) {
		struct sim_status *st = s->statuses.items[i];
		if (st->pipeline_id == pl->id)
			sim_vec_push(&jobs, st);
	}
	for (size_t i = 0; i < jobs.len; i++) {
		struct sim_status *st = jobs.items[i];
		bool superseded = false;
		for (size_t j = i + 1; j < jobs.len && !superseded; j++)
			superseded = strcmp(((struct sim_status *)jobs.items[j])->name, st->name) == 0;
		if (superseded)
			continue;
		for (int k = 0; k < (int)(sizeof(order) / sizeof(order[0])); k++)
			if (strcmp(order[k], st->status) == 0 && (best < 0 || k < best))
				best = k;
	}
	free(jobs.items);
	free(pl->status);
	pl->status = sim_strdup(best < 0 ? "created" : (strcmp(order[best], "created") == 0 ? "pending" : order[best]));
	free(pl->updated_at);
	pl->updated_at = sim_now_iso();
}

/* --- counters ------------------------------------------------------------------------------------------ */

void sim_count_request(struct sim *s, const char *method, const char *template_path, int status)
{
	char key[512];
	snprintf(key, sizeof(key), "%s %s", method, template_path);
	struct json_object *v = NULL;
	if (json_object_object_get_ex(s->counters, key, &v))
		json_object_set_int64(v, json_object_get_int64(v) + 1);
	else
		json_object_object_add(s->counters, key, json_object_new_int64(1));
	s->counter_total++;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		s->counter_writes++;
	(void)status;
}
