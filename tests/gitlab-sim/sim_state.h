/*
 * tests/gitlab-sim/sim_state.h
 *    The in-memory world of the GitLab simulator: tokens, users, groups, projects, hooks, pipelines,
 *    commit statuses, merge requests, notes, webhook deliveries, faults and request counters.
 *
 * Design: one process-wide struct sim guarded by one mutex (s->mu). Request handlers lock it, read or
 *    change the model, render their JSON and unlock before writing to the socket; webhook delivery
 *    threads lock it only to pick work and record results, never across a network call. Everything is
 *    addressed by id; "removed" entities stay in their vectors (marked) so ids are never reused.
 * Ownership: every string and child pointer in these structs is owned by its struct and freed by
 *    sim_state_clear(); functions returning pointers into the model return borrowed pointers that are
 *    valid only while s->mu is held.
 * Threading: every function here except sim_state_new/free expects s->mu to be held by the caller.
 */
#ifndef SIM_STATE_H
#define SIM_STATE_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIM_PROJECT_ID_BASE  1000  /* project ids start here, group ids at 1: a mixed-up id is caught */
#define SIM_LIST_COUNT_LIMIT 10000 /* above this many results x-total, x-total-pages, rel="last" go */

/* Token scopes (bit set). */
#define SIM_SCOPE_API              0x01u
#define SIM_SCOPE_READ_API         0x02u
#define SIM_SCOPE_READ_USER        0x04u
#define SIM_SCOPE_READ_REPOSITORY  0x08u
#define SIM_SCOPE_WRITE_REPOSITORY 0x10u
#define SIM_SCOPE_SELF_ROTATE      0x20u
#define SIM_SCOPE_SUDO             0x40u

enum sim_tier { SIM_TIER_FREE = 0, SIM_TIER_PREMIUM, SIM_TIER_ULTIMATE };
enum sim_token_kind { SIM_TOKEN_PERSONAL = 0, SIM_TOKEN_GROUP_ACCESS, SIM_TOKEN_SERVICE_ACCOUNT };

/* A growable array of owned pointers. */
struct sim_vec {
	void **items;
	size_t len;
	size_t cap;
};

struct sim_user {
	int64_t id;
	char *username;
	char *name;
	char *email;
	bool bot;
	char *created_at;
};

struct sim_access {
	char *path; /* a group full path or a project path_with_namespace */
	int level;  /* 10 guest, 20 reporter, 30 developer, 40 maintainer, 50 owner */
};

struct sim_token {
	int64_t id;
	char *token;
	char *name;
	char *description;
	enum sim_token_kind kind;
	unsigned scopes;
	char *expires_at; /* "YYYY-MM-DD" or NULL */
	bool revoked;
	bool admin;
	struct sim_user *user; /* borrowed from s->users */
	struct sim_access *access;
	size_t n_access;
	char *created_at;
	char *last_used_at;
};

struct sim_group {
	int64_t id;
	char *name;
	char *path;
	char *full_path;
	char *description;
	char *visibility;
	struct sim_group *parent; /* borrowed */
	int tier;                 /* enum sim_tier, or -1 = inherit from the parent */
	char *created_at;
	bool removed;
};

struct sim_file {
	char *path;
	char *content; /* for a symlink, its target */
	unsigned mode; /* git's file mode: 0100644 (also when 0), 0100755 (executable) or 0120000 (symlink) */
};

/* A commit is a full snapshot of the tree (small test repos). */
struct sim_commit {
	char sha[41];
	char parent[41];
	char *ref;
	char *message;
	char *created_at;
	struct sim_file *files;
	size_t n_files;
};

struct sim_project {
	int64_t id;
	char *name;
	char *path;
	char *path_with_namespace;
	char *description;
	char *default_branch;
	char *visibility;
	struct sim_group *ns; /* borrowed */
	bool archived;
	char *marked_for_deletion_on; /* "YYYY-MM-DD" or NULL */
	bool removed;
	char *created_at;
	char *last_activity_at;
	struct json_object *settings; /* PUT-able merge settings; NULL = defaults */
	struct sim_vec commits;       /* struct sim_commit*, [0] = default branch head */
	int64_t next_mr_iid;
	int64_t next_pipeline_iid;
};

struct sim_hook {
	int64_t id;
	bool group_hook;
	int64_t owner_id; /* project id or group id */
	char *url;
	char *token;                  /* secret, never rendered by the API */
	struct json_object *attrs;    /* flags and plain attributes rendered as is */
	struct json_object *headers;  /* custom headers: object key -> value */
	struct json_object *url_vars; /* url variables: object key -> value */
	char *created_at;
	int failures; /* consecutive failed deliveries */
	char *alert_status;
	time_t disabled_until; /* 0 = none */
	bool removed;
};

struct sim_pipeline {
	int64_t id;
	int64_t iid;
	int64_t project_id;
	char sha[41];
	char *ref;
	char *status;
	char *source;
	char *created_at;
	char *updated_at;
	struct sim_user *user; /* borrowed */
	char source_sha[41];   /* merged-results pipelines: the MR head the merge commit was made of, else "" */
	char target_sha[41];   /* merged-results pipelines: the target branch head, else "" */
	int64_t mr_iid;        /* merge request pipelines (detached, merged results), else 0 */
};

struct sim_status {
	int64_t id;
	int64_t project_id;
	int64_t pipeline_id;
	char sha[41];
	char *ref;
	char *name;
	char *status;
	char *description;
	char *target_url;
	double coverage;
	bool has_coverage;
	struct sim_user *author; /* borrowed */
	char *created_at;
	char *started_at;
	char *finished_at;
};

struct sim_change {
	char *path;
	char *old_content; /* NULL: the file is new */
	char *new_content; /* NULL: the file is deleted */
};

struct sim_mr {
	int64_t id;
	int64_t iid;
	int64_t project_id;
	char *title;
	char *description;
	char *source_branch;
	char *target_branch;
	char *state; /* opened, closed, merged */
	char sha[41];
	char base_sha[41];
	struct sim_change *changes;
	size_t n_changes;
	struct sim_user *author; /* borrowed */
	char *created_at;
	char *updated_at;
	char *closed_at;
	int64_t merge_checked_at_ms; /* the async mergeability check ends then (0 = done) */
	bool merge_check_started;    /* a GET asked for the check ("checking" rather than "unchecked") */
	bool auto_merge;             /* merge_when_pipeline_succeeds (set by /merge when not yet mergeable) */
	int64_t approved_by[8];      /* user ids of approvals (/approve) */
	size_t n_approved;
};

struct sim_note {
	int64_t id;
	int64_t mr_id;
	int64_t project_id;
	int64_t mr_iid;
	char *body;
	bool internal;
	struct sim_user *author; /* borrowed */
	char *created_at;
	char *updated_at;
	bool removed;
	struct json_object *quick_actions; /* array of quick actions run from this note (owned), NULL = none */
};

enum sim_delivery_state { SIM_DELIVERY_PENDING = 0, SIM_DELIVERY_RUNNING, SIM_DELIVERY_DONE };

struct sim_delivery {
	int64_t id;
	int64_t hook_id;
	int64_t redelivery_of; /* 0 = first attempt */
	char *event;           /* X-Gitlab-Event value */
	char *event_name;      /* "merge_request:open", "project_create", ... */
	char *idempotency_key;
	char *event_uuid;
	char *webhook_uuid;
	char *body;
	char *url;                   /* the hook's URL when the delivery was made */
	struct json_object *headers; /* request headers sent (object name -> value) */
	bool ssl_verify;
	enum sim_delivery_state state;
	long response_status; /* 0 = no HTTP answer */
	char *error;
	double duration_ms;
	char *created_at;
};

/* One scripted response: status+body+headers, a dropped connection, or a stall. */
struct sim_script_step {
	int status;
	char *body;
	struct json_object *headers; /* object name -> value, may be NULL */
	bool reset;
	int stall_ms;
};

struct sim_script {
	char *method;
	char *path; /* a concrete path or a route template */
	struct sim_script_step *steps;
	size_t n_steps;
	size_t next;
};

struct sim_faults {
	int latency_ms;
	int jitter_ms;
	double error_rate;
	double reset_rate;
	double stall_rate;
	int stall_ms;
	int rate_limit_per_minute; /* 0 = off */
	int hook_backoff_s;        /* first temporary disable lasts this long (GitLab: 60) */
};

/* GitLab application settings the simulator honours (sim_strict.c; GET|POST /__sim/settings). */
struct sim_settings {
	int diff_max_files;            /* diff_max_files, default 1000 */
	int diff_max_lines;            /* diff_max_lines, default 50,000 */
	int diff_max_patch_bytes;      /* diff_max_patch_bytes, default 200 KiB (one file's patch) */
	bool allow_local_requests;     /* allow_local_requests_from_web_hooks_and_services, default false */
	int archive_per_minute;        /* project_repositories_archive per project and user, default 5 (0 = off) */
	int project_get_per_minute;    /* GET /projects/:id per user, default 400 */
	int group_get_per_minute;      /* GET /groups/:id per user, default 400 */
	int group_projects_per_minute; /* GET /groups/:id/projects per user, default 600 */
	int notes_create_per_minute;   /* note creation per user, default 60 (GitLab.com) */
	int status_lock_ms;            /* how long a commit status post holds the project+sha lock, default 50 */
	int status_lock_wait_ms;       /* how long another post waits for it before its 409, default 10,000 */
	int merge_check_ms;            /* async mergeability check after open/push, default 300 */
};

struct sim_rate_bucket {
	char *key; /* token or client address */
	time_t window_start;
	int count;
};

struct sim {
	pthread_mutex_t mu;
	pthread_cond_t delivery_cv; /* signalled when a delivery is queued or finishes */
	bool stopping;
	uint64_t generation; /* bumped by sim_state_clear, so workers can tell a stale delivery id */
	uint64_t version;    /* moves on before s->mu is released after anything may have changed (sim_main.c,
	                        wait_deliveries, sim_hooks_wait): what was computed at another version is stale */
	/* Pages of projects written without s->mu (sim_api.c, reply_projects_page): while renders > 0 the projects,
	 * groups and tokens must not change, so whatever changes them calls sim_wait_renders() first, holding s->mu */
	int renders;
	pthread_cond_t renders_cv; /* signalled when renders drops to 0 */

	char *instance_url; /* X-Gitlab-Instance and the base of every web_url */
	int webhook_timeout_s;

	struct sim_vec users, tokens, groups, projects, hooks, pipelines, statuses, mrs, notes, deliveries;
	struct sim_vec scripts;      /* struct sim_script* */
	struct sim_vec rate_buckets; /* struct sim_rate_bucket* */
	struct json_object *counters;
	int64_t counter_total, counter_writes;
	int64_t counter_rate_limited;      /* answers 429 by the per-minute rate limit (faults.rate_limit_per_minute) */
	int64_t counter_connections;       /* TCP connections accepted (any path) */
	int64_t in_flight, peak_in_flight; /* API requests being answered now, and the most at once since a reset */
	int64_t counter_pages_unlocked;    /* pages of projects written without s->mu (renders) since a reset */
	int peak_renders;                  /* the most of those written at once since a reset */
	double busy_ms; /* the answering times of the API requests finished since a reset, summed (busy / wall = the
	                   mean number in flight) */

	int64_t next_user_id, next_token_id, next_group_id, next_hook_id, next_pipeline_id, next_status_id;
	int64_t next_mr_id, next_note_id, next_delivery_id;
	uint64_t sha_counter;
	uint64_t uuid_counter;
	uint64_t rng;

	struct sim_faults faults;
	struct sim_settings settings;
	struct sim_vec endpoint_buckets; /* struct sim_rate_bucket*, per-endpoint limits (sim_strict.c) */
	struct sim_vec status_locks;     /* struct sim_rate_bucket*, key project:sha, window_start = held until (ms) */
	struct sim_user *root_user;      /* author of simulated MRs and webhook "user" */
};

/* Lifetime. */
struct sim *sim_state_new(const char *instance_url);
void sim_state_free(struct sim *s); /* NULL is fine */

/*
 * Caller holds s->mu: returns (holding it) once no page of projects is being written without it. Called before
 * anything that may change projects, groups or tokens: every /__sim/ request, every /api/v4 request that is not a
 * GET or HEAD, and a handler that waited on a condition (it held s->mu no longer meanwhile).
 */
void sim_wait_renders(struct sim *s);
void sim_state_clear(struct sim *s); /* back to an empty world (no tokens, no groups) */

/* Vectors. sim_vec_push takes ownership of nothing; the caller frees items. Returns false on OOM. */
bool sim_vec_push(struct sim_vec *v, void *item);
void sim_vec_reverse(struct sim_vec *v); /* in place: GitLab's sort=desc over an ascending list */
/* Count one request against key's bucket in buckets (a vector of struct sim_rate_bucket, created on first use) in
 * fixed one-minute windows, as Rack::Attack's throttles count; returns the bucket. */
struct sim_rate_bucket *sim_rate_count(struct sim_vec *buckets, const char *key);

/* How sim_reply_json serialises a JSON answer; text rendered without json-c must match it byte for byte. */
#define SIM_JSON_TEXT (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A growable byte string: start from {0}; data is NUL-terminated once anything was put, and the caller frees it.
 * sim_buf_put aborts on OOM, as sim_xmalloc does. */
struct sim_buf {
	char *data;
	size_t len;
	size_t cap;
};
void sim_buf_put(struct sim_buf *b, const char *s, size_t n);
void sim_buf_puts(struct sim_buf *b, const char *s);                  /* a C string */
#define sim_buf_lit(b, lit) sim_buf_put((b), "" lit, sizeof(lit) - 1) /* a string literal */

/* Strings, times, ids. sim_strdup(NULL) is NULL; aborts on OOM (a test double need not limp on). */
char *sim_strdup(const char *s);
char *sim_strndup(const char *s, size_t n);
char *sim_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* owned result */
char *sim_vprintf(const char *fmt, va_list ap);                               /* owned result */
void *sim_xmalloc(size_t n);
void *sim_xcalloc(size_t n, size_t size);
void sim_iso_time(time_t t, char out[32]);     /* 2024-01-01T00:00:00.000Z */
char *sim_now_iso(void);                       /* owned */
void sim_today(char out[11]);                  /* YYYY-MM-DD (UTC) */
void sim_http_date(time_t t, char out[40]);    /* RFC 7231 date */
void sim_new_sha(struct sim *s, char out[41]); /* deterministic per world */
void sim_sha_for(uint64_t seed, char out[41]); /* deterministic from a seed */
char *sim_new_uuid(struct sim *s);             /* owned, RFC 4122 shaped */
double sim_random(struct sim *s);              /* [0,1) */
bool sim_parse_int64(const char *str, int64_t *out);
/* CLOCK_REALTIME now + timeout_ms: the deadline of a pthread_cond_timedwait. */
void sim_deadline(int timeout_ms, struct timespec *out);

/* Users and tokens. */
struct sim_user *sim_user_get_or_add(struct sim *s, const char *username, const char *name, bool bot);
struct sim_user *sim_user_by_id(struct sim *s, int64_t id);
struct sim_token *sim_token_find(struct sim *s, const char *token);
bool sim_token_expired(const struct sim_token *t);
unsigned sim_scope_parse(const char *name); /* 0 if unknown */
void sim_scope_names(unsigned scopes, struct json_object *array_out);

/* Groups and projects. The _by_id, _by_path and _by_ref lookups are written by SIM_BY_ID/SIM_BY_PATH (sim_state.c). */
struct sim_group *sim_group_by_id(struct sim *s, int64_t id);
struct sim_group *sim_group_by_path(struct sim *s, const char *full_path);
struct sim_group *sim_group_ensure(struct sim *s, const char *full_path, int tier);   /* creates parents */
bool sim_group_is_under(const struct sim_group *g, const struct sim_group *ancestor); /* or equal */
int sim_group_tier(const struct sim_group *g);
struct sim_project *sim_project_by_id(struct sim *s, int64_t id);
struct sim_project *sim_project_by_path(struct sim *s, const char *path_with_namespace);
/* By GitLab's :id in a path: a number is the id, anything else the (decoded) full path. NULL: none (or removed). */
struct sim_group *sim_group_by_ref(struct sim *s, const char *id_or_path);
struct sim_project *sim_project_by_ref(struct sim *s, const char *id_or_path);
struct sim_project *sim_project_add(struct sim *s, struct sim_group *ns, const char *path, const char *name);
struct sim_commit *sim_project_commit(struct sim_project *p, const char *sha); /* or NULL */
struct sim_commit *sim_project_add_commit(struct sim *s, struct sim_project *p, const char *ref, const char *parent,
                                          const char *message);
const char *sim_commit_file(const struct sim_project *p, const struct sim_commit *c, const char *path);
size_t sim_commit_tree(const struct sim_project *p, const struct sim_commit *c,
                       const struct sim_file **files_out); /* borrowed array */

/* Access: the token's effective level on a project or group (0 = none); admin tokens get 50. */
int sim_access_project(const struct sim_token *t, const struct sim_project *p);
int sim_access_group(const struct sim_token *t, const struct sim_group *g);
bool sim_can_see_project(const struct sim_token *t, const struct sim_project *p);
bool sim_can_see_group(const struct sim_token *t, const struct sim_group *g);

/* Seeding. Deterministic: the same arguments give the same ids, paths and shas. Returns projects made. */
long sim_seed(struct sim *s, const char *root, long n_projects, int depth, int fanout, int tier,
              const char *visibility);

/* Hooks, pipelines, MRs, notes (sim_hook_by_id and sim_note_by_id are written by SIM_BY_ID). */
struct sim_hook *sim_hook_by_id(struct sim *s, int64_t id);
void sim_hook_free(struct sim_hook *h); /* a hook never pushed into s->hooks (s->hooks' own are freed by clear) */
struct sim_pipeline *sim_pipeline_by_id(struct sim *s, int64_t id);
/* A new commit status (state "created", the next id) in a pipeline, recorded in s->statuses, which owns it. */
struct sim_status *sim_status_add(struct sim *s, int64_t project_id, int64_t pipeline_id, const char *sha,
                                  const char *ref, const char *name, struct sim_user *author);
struct sim_mr *sim_mr_find(struct sim *s, int64_t project_id, int64_t iid);
struct sim_note *sim_note_by_id(struct sim *s, int64_t id);
struct sim_pipeline *sim_mr_head_pipeline(struct sim *s, const struct sim_mr *mr);
void sim_pipeline_refresh(struct sim *s, struct sim_pipeline *pl); /* recompute status from jobs */

/* GitLab's defaults for struct sim_settings (sim_strict.c). */
void sim_settings_defaults(struct sim_settings *st);

/* Counters. */
void sim_count_request(struct sim *s, const char *method, const char *template_path, int status);

#endif
