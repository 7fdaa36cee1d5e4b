/*
 * core/applyjob.c
 *    The apply job: its handler, starting one, waiting for one (see applyjob.h).
 */
#include "applyjob.h"

#include "audit.h"
#include "crypto.h"
#include "jsonscan.h"
#include "jsonx.h"
#include "limiter.h"
#include "log.h"
#include "settings.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum core_status applyjob_ctx(const struct applyjob_env *env, struct connection_client *cc,
                              char hook_url[APPLYJOB_HOOK_URL_MAX], struct apply_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	hook_url[0] = '\0';
	/* apply_hook_url() appends "/hooks/gitlab" to the public URL without its trailing slashes */
	if (strlen(env->public_url) > PUBLICURL_MAX) {
		log_error("the public URL is longer than %d characters: its hook URL would be cut", PUBLICURL_MAX);
		return CORE_ETOOLARGE;
	}
	apply_hook_url(env->public_url, hook_url, APPLYJOB_HOOK_URL_MAX);
	ctx->hook_url = hook_url;
	ctx->webhook_secret = connection_client_webhook_secret(cc);
	/* GitLab cannot verify TLS on a plain-http URL; the flag is meaningless there, so it is sent as false */
	ctx->ssl_verify = strncmp(hook_url, "https://", 8) == 0;
	return CORE_OK;
}

bool applyjob_client(const struct applyjob_env *env, struct job_item_result *res, const char *missing,
                     struct connection_client **cc_out, enum job_outcome *outcome_out)
{
	*cc_out = NULL;
	enum core_status st = connection_client_shared(env->db, env->secret_key, &env->tune, cc_out);
	if (st == CORE_OK)
		return true;
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "%s", missing);
		*outcome_out = JOB_ITEM_ERROR;
	} else {
		jobs_result_message(res, "could not open the GitLab connection (%s)", core_status_code(st));
		*outcome_out = JOB_ITEM_RETRY;
	}
	return false;
}

void applyjob_slot_take(const struct applyjob_env *env)
{
	if (env->gitlab_slots)
		limiter_acquire(env->gitlab_slots);
}

void applyjob_slot_give(const struct applyjob_env *env)
{
	if (env->gitlab_slots)
		limiter_release(env->gitlab_slots);
}

/* Why the stored connection may not write (token expired, revoked or read-only), or NULL when it may. */
static const char *write_refusal(const struct connection_info *ci)
{
	if (strcmp(ci->token_status, "ok") != 0)
		return ci->token_problem[0] ? ci->token_problem : "the GitLab token is not valid";
	if (strcmp(ci->capability, "gate") != 0)
		return "the GitLab token is read-only: update the connection with a token that has the api scope";
	return NULL;
}

/* An apply result as the item's outcome, message and details. */
static enum job_outcome item_outcome(const struct apply_result *ar, struct job_item_result *res)
{
	jobs_result_message(res, "%s", ar->message);
	res->details = jx_object();
	json_object_object_add(res->details, "reads", jx_int(ar->reads));
	json_object_object_add(res->details, "writes", jx_int(ar->writes));
	if (ar->repaired)
		json_object_object_add(res->details, "repaired", jx_bool(1));
	struct json_object *read = jsonx_get(ar->plan, "read");
	if (read)
		json_object_object_add(res->details, "read", json_object_get(read));
	switch (ar->outcome) {
	case APPLY_CHANGED: return JOB_ITEM_CHANGED;
	case APPLY_UNCHANGED: return JOB_ITEM_UNCHANGED;
	case APPLY_SKIPPED: return JOB_ITEM_SKIPPED;
	case APPLY_ERROR: break;
	}
	return ar->retryable ? JOB_ITEM_RETRY : JOB_ITEM_ERROR;
}

#define NO_CONNECTION "no GitLab connection: connect one on the Connection page"

/* ---------------------------------------------------------------------------------------------------------- */
/* The job's context: what the items of one job share, read once per job (or per JOBCTX_REFRESH_SECONDS) */

#define JOBCTX_SLOTS           8      /* jobs whose context is kept at once; more run uncached */
#define JOBCTX_REFRESH_SECONDS 10     /* token health, the client and the hook mode are read again after this */
#define JOBCTX_LIST_MAX_AGE    300    /* the group lists are read again after this */
#define JOBCTX_MRS_MAX         200000 /* open MRs kept from the group list; past it repos list their own */
#define JOBCTX_PAGES_AHEAD_MAX 100    /* pages of the group project list asked for at once, at most */

struct listed_project {
	int64_t id;
	bool archived, pending, merge_on;
};

struct listed_mrs {
	int64_t project_id;
	char *json; /* the project's open MRs as a JSON array text */
};

struct jobctx {
	const struct applyjob_env *env;
	int64_t job_id;
	int refs;              /* guarded by g_jobctx.mu */
	bool retired;          /* guarded by g_jobctx.mu: freed at the last jobctx_put() */
	pthread_mutex_t mu;    /* guards everything below; held across the list reads (GitLab), never a connection */
	time_t checked;        /* when the fields below were read (0: never or failed) */
	enum job_outcome fail; /* JOB_ITEM_CHANGED: none; else the outcome of every item while checked is fresh */
	bool abandon;          /* ... and the item's repo is given up (apply_abandon) */
	bool canceled;         /* the job was canceled: items not started are skipped (atomic: set without mu) */
	char fail_message[600];
	struct connection_client *cc; /* a reference of ours */
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	char secret_sha[72]; /* SHA-256 hex of the webhook secret */
	bool ctx_ok;         /* hook_url fits (applyjob_ctx) */
	bool group_mode;
	int64_t group_id;
	/* the lists below, under list_mu (not mu: an item starting reads its context under mu while the list is read);
	 * lock order mu, then list_mu */
	pthread_mutex_t list_mu;
	/* GET /groups/:id/projects */
	int64_t projects_group; /* the group it lists */
	time_t projects_at;
	bool projects_ok;
	char projects_read_at[16];
	struct listed_project *projects;
	size_t n_projects, cap_projects;
	int pages;
	int projects_reading; /* 1 while jobctx_projects() reads the list (atomic: read without jc->mu) */
	int expected_pages;   /* the list's pages the repos mrgate knows fill, read by jobctx_refresh() (0: not read;
	                       * atomic: set under mu, read under list_mu) */
	bool use_lists;       /* under mu: the job has more repos than the list pages, so its items read the group's
	                       * lists (else each reads its own project and open MRs: one call instead of every page) */
	/* GET /groups/:id/merge_requests?state=opened */
	int64_t mrs_group;
	time_t mrs_at;
	bool mrs_ok;
	char mrs_read_at[16];
	struct listed_mrs *mrs;
	size_t n_mrs;
	struct apply_lists lists;
	/* the repos of this runner's items read and claimed ahead (apply_load_job_items), under pre_mu; items above
	 * pre_mark were not yet looked for (an item at or below it that is not here reads its own) */
	pthread_mutex_t pre_mu;
	int64_t pre_mark;
	struct apply_loaded *pre;
	size_t n_pre;
};

static struct {
	pthread_mutex_t mu;
	struct jobctx *slot[JOBCTX_SLOTS];
} g_jobctx = {PTHREAD_MUTEX_INITIALIZER, {0}};

/* jc->list_mu held */
static void jobctx_drop_lists(struct jobctx *jc)
{
	free(jc->projects);
	jc->projects = NULL;
	jc->n_projects = jc->cap_projects = 0;
	jc->projects_at = 0;
	jc->projects_ok = false;
	for (size_t i = 0; i < jc->n_mrs; i++)
		free(jc->mrs[i].json);
	free(jc->mrs);
	jc->mrs = NULL;
	jc->n_mrs = 0;
	jc->mrs_at = 0;
	jc->mrs_ok = false;
}

static void jobctx_free(struct jobctx *jc)
{
	/* read ahead for items that never ran (released on a stop): their claims run out (APPLY_CLAIM_SECONDS), and
	 * the items reclaim them at once when they run again (the same owner) */
	free(jc->pre);
	pthread_mutex_destroy(&jc->pre_mu);
	jobctx_drop_lists(jc);
	connection_client_release(jc->cc);
	pthread_mutex_destroy(&jc->list_mu);
	pthread_mutex_destroy(&jc->mu);
	free(jc);
}

static bool lists_project(void *user, int64_t repo_id, struct apply_listed *out, int *pages_out);
static bool lists_project_reading(void *user);
static struct json_object *lists_open_mrs(void *user, int64_t repo_id, char read_at[16], int *pages_out);

static struct jobctx *jobctx_new(const struct applyjob_env *env, int64_t job_id)
{
	struct jobctx *jc = xcalloc(1, sizeof(*jc));
	jc->env = env;
	jc->job_id = job_id;
	pthread_mutex_init(&jc->mu, NULL);
	pthread_mutex_init(&jc->list_mu, NULL);
	pthread_mutex_init(&jc->pre_mu, NULL);
	jc->lists = (struct apply_lists){
	    .project = lists_project, .project_reading = lists_project_reading, .open_mrs = lists_open_mrs, .user = jc};
	return jc;
}

/* The context of job_id, shared by its items; give it back with jobctx_put(). */
static struct jobctx *jobctx_get(const struct applyjob_env *env, int64_t job_id)
{
	struct jobctx *jc = NULL;
	int free_i = -1, idle_i = -1;
	pthread_mutex_lock(&g_jobctx.mu);
	for (int i = 0; i < JOBCTX_SLOTS && !jc; i++) {
		struct jobctx *c = g_jobctx.slot[i];
		if (c && c->job_id == job_id && c->env == env)
			jc = c;
		else if (!c)
			free_i = i;
		else if (c->refs == 0)
			idle_i = i;
	}
	if (!jc) {
		jc = jobctx_new(env, job_id);
		int i = free_i >= 0 ? free_i : idle_i;
		if (i >= 0) {
			if (g_jobctx.slot[i])
				jobctx_free(g_jobctx.slot[i]);
			g_jobctx.slot[i] = jc;
		} else {
			jc->retired = true; /* every slot busy: this one lives for the item only */
		}
	}
	jc->refs++;
	pthread_mutex_unlock(&g_jobctx.mu);
	return jc;
}

static void jobctx_put(struct jobctx *jc)
{
	pthread_mutex_lock(&g_jobctx.mu);
	bool last = --jc->refs == 0 && jc->retired;
	pthread_mutex_unlock(&g_jobctx.mu);
	if (last)
		jobctx_free(jc);
}

static void jobctx_failed(struct jobctx *jc, enum job_outcome outcome, bool abandon, const char *message)
{
	jc->fail = outcome;
	jc->abandon = abandon;
	snprintf(jc->fail_message, sizeof(jc->fail_message), "%s", message);
}

/* The pages of 100 that n projects fill, 1..JOBCTX_PAGES_AHEAD_MAX. */
static int pages_of(int64_t n)
{
	n = (n + 99) / 100;
	return n < 1 ? 1 : n > JOBCTX_PAGES_AHEAD_MAX ? JOBCTX_PAGES_AHEAD_MAX : (int)n;
}

/*
 * Read what every item needs, at most once per JOBCTX_REFRESH_SECONDS (jc->mu held): the connection's token health
 * (a resync may have found it expired since the client was opened: writes are refused while it is expired,
 * revoked or read-only), the shared client, the hook mode, a cancel, the pages the group list should have. A
 * transient failure is not kept: the next item reads again.
 */
static void jobctx_refresh(struct jobctx *jc)
{
	const struct applyjob_env *env = jc->env;
	time_t now = time(NULL);
	if (jc->checked && now - jc->checked < JOBCTX_REFRESH_SECONDS)
		return;
	struct connection_info ci;
	struct settings set;
	struct job_item_result tmp = {0};
	enum job_outcome outcome = JOB_ITEM_RETRY;
	memset(&ci, 0, sizeof(ci));
	connection_client_release(jc->cc);
	jc->cc = NULL;
	jc->fail = JOB_ITEM_CHANGED;
	jc->checked = now;
	/* a cancel made by another instance (this one's set canceled at once: applyjob_note_canceled); how many pages
	 * of 100 the group's project list should have (the repos mrgate knows: jobctx_projects_read), and whether the
	 * job has more repos than that */
	PGresult *jr = NULL;
	if (STORE_RUN1(env->db,
	               "SELECT state, total, (SELECT count(*) FROM repos WHERE removed_at IS NULL) AS n FROM jobs"
	               " WHERE id = $1",
	               &jr, STORE_I64(jc->job_id)) == CORE_OK &&
	    PQntuples(jr) == 1) {
		if (strcmp(store_str(jr, 0, "state"), "canceled") == 0)
			__atomic_store_n(&jc->canceled, true, __ATOMIC_RELAXED);
		int64_t known = store_i64(jr, 0, "n", 0);
		__atomic_store_n(&jc->expected_pages, pages_of(known), __ATOMIC_RELAXED);
		/* every page, not only those asked for at once (pages_of caps those) */
		jc->use_lists = store_i64(jr, 0, "total", 0) > (known + 99) / 100;
	}
	PQclear(jr);
	enum core_status st = connection_get(env->db, &ci);
	const char *refusal = st == CORE_OK ? write_refusal(&ci) : NULL;
	if (refusal) {
		jobctx_failed(jc, JOB_ITEM_ERROR, true, refusal);
	} else if (st == CORE_ENOTFOUND) {
		jobctx_failed(jc, JOB_ITEM_ERROR, true, NO_CONNECTION);
	} else if (st != CORE_OK) {
		char why[120];
		snprintf(why, sizeof(why), "could not open the GitLab connection (%s)", core_status_code(st));
		jobctx_failed(jc, JOB_ITEM_RETRY, false, why);
		jc->checked = 0;
	} else if (!applyjob_client(env, &tmp, NO_CONNECTION, &jc->cc, &outcome)) {
		jobctx_failed(jc, outcome, outcome == JOB_ITEM_ERROR, tmp.message ? tmp.message : NO_CONNECTION);
		jc->checked = outcome == JOB_ITEM_ERROR ? now : 0;
	} else if (settings_get(env->db, env->default_resync_interval, &set) != CORE_OK) {
		jobctx_failed(jc, JOB_ITEM_RETRY, false, "could not read the settings (will be retried)");
		jc->checked = 0;
	} else {
		struct apply_ctx ctx;
		jc->ctx_ok = applyjob_ctx(env, jc->cc, jc->hook_url, &ctx) == CORE_OK;
		char *sha = crypto_sha256_hex(ctx.webhook_secret ? ctx.webhook_secret : "",
		                              ctx.webhook_secret ? strlen(ctx.webhook_secret) : 0);
		snprintf(jc->secret_sha, sizeof(jc->secret_sha), "%s", sha ? sha : "");
		free(sha);
		jc->group_mode = strcmp(set.hook_mode, "group") == 0; /* the group hook delivers: no project hook */
		if (ci.group_id != jc->group_id) {                    /* another group: the lists read are not its */
			pthread_mutex_lock(&jc->list_mu);
			jobctx_drop_lists(jc);
			pthread_mutex_unlock(&jc->list_mu);
		}
		jc->group_id = ci.group_id;
	}
	free(tmp.message);
	connection_info_clear(&ci);
}

static void hhmmss(char out[16])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 16, "%H:%M:%S", &tm);
}

static void listed_add(struct jobctx *jc, const struct listed_project *lp)
{
	if (jc->n_projects == jc->cap_projects) {
		jc->cap_projects = jc->cap_projects ? jc->cap_projects * 2 : 256;
		jc->projects = xrealloc(jc->projects, jc->cap_projects * sizeof(*jc->projects));
	}
	jc->projects[jc->n_projects++] = *lp;
}

/* One project of the group list into jc->projects. */
static enum core_status on_project(struct json_object *p, void *user)
{
	struct jobctx *jc = user;
	const char *mfd = NULL;
	struct listed_project lp = {0};
	if (!jsonx_int64(p, "id", &lp.id) || lp.id <= 0)
		return CORE_OK;
	jsonx_bool(p, "archived", &lp.archived);
	lp.pending = jsonx_str(p, "marked_for_deletion_at", &mfd) || jsonx_str(p, "marked_for_deletion_on", &mfd);
	jsonx_bool(p, "only_allow_merge_if_pipeline_succeeds", &lp.merge_on); /* null reads as false */
	listed_add(jc, &lp);
	return CORE_OK;
}

/* The members of a project read from a page's text (core/jsonscan.h), as on_project() reads them from a tree. */
static const char *const project_paths[] = {"id", "archived", "marked_for_deletion_at", "marked_for_deletion_on",
                                            "only_allow_merge_if_pipeline_succeeds"};

static enum core_status on_scanned_project(const struct jscan_value *v, void *user)
{
	struct jobctx *jc = user;
	struct listed_project lp = {0};
	if (!jscan_int64(&v[0], &lp.id) || lp.id <= 0)
		return CORE_OK;
	jscan_bool(&v[1], &lp.archived);
	lp.pending = v[2].type == JSCAN_STRING || v[3].type == JSCAN_STRING;
	jscan_bool(&v[4], &lp.merge_on); /* null reads as false */
	listed_add(jc, &lp);
	return CORE_OK;
}

static int by_project_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b; /* both structs start with the project id */
	return x < y ? -1 : x > y;
}

/* How many pages of 100 the group's project list should have: the repos mrgate knows there (at least 1), as the
 * job's context read them, or now. */
static int jobctx_expected_pages(struct jobctx *jc)
{
	int k = __atomic_load_n(&jc->expected_pages, __ATOMIC_RELAXED);
	if (k > 0)
		return k;
	PGresult *r = NULL;
	int64_t n = 0;
	if (store_run1(jc->env->db, STORE_PREPARE "SELECT count(*) AS n FROM repos WHERE removed_at IS NULL", NULL,
	               &r) == CORE_OK)
		n = store_i64(r, 0, "n", 0);
	PQclear(r);
	return pages_of(n);
}

/* The GitLab slots a list read holds (jobctx_projects_read). */
struct held_slots {
	const struct applyjob_env *env;
	int n;
};

static void give_slot_but_one(void *user)
{
	struct held_slots *h = user;
	if (h->n > 1) {
		applyjob_slot_give(h->env);
		h->n--;
	}
}

/*
 * Read the list at path (its query ends with per_page=100) into jc: the pages the repos mrgate knows fill, asked for
 * at once (page=1..k, at most the GitLab concurrency in flight; the workers that need it wait on jc->list_mu
 * meanwhile, the others go on), then on
 * from the last one's next page, one at a time, when the group has grown. An empty page ends the list. Offset pages
 * read side by side are no less consistent than read one after another: a project missing from both (one deleted
 * between two reads shifts the next page) is read alone by its repo (listed() finds nothing). *err_out: a failing
 * page's response.
 */
static enum core_status jobctx_projects_read(struct jobctx *jc, struct gitlab *gl, const char *path,
                                             struct gitlab_response **err_out)
{
	int k = jobctx_expected_pages(jc);
	struct gitlab_call *calls = xcalloc((size_t)k, sizeof(*calls));
	char(*paths)[224] = xcalloc((size_t)k, sizeof(*paths));
	for (int i = 0; i < k; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s&page=%d", path, i + 1);
		calls[i].method = "GET";
		calls[i].path = paths[i];
		calls[i].flags = GITLAB_CALL_RAW; /* read by jscan_each(): no json-c tree of 100 whole projects */
	}
	/* a slot per page in flight, as many as the pages up to every slot: the other items free theirs after their
	 * current call (none waits for the list holding one), so this waits about one call */
	static pthread_mutex_t taking = PTHREAD_MUTEX_INITIALIZER; /* one taker of several slots at a time: two lists
	                                                             taking them one by one could each hold some and
	                                                             wait for the rest forever */
	struct limiter *slots = jc->env->gitlab_slots;
	int conc = slots ? limiter_capacity(slots) : jc->env->gitlab_concurrency;
	conc = conc < 1 ? 1 : conc < k ? conc : k;
	pthread_mutex_lock(&taking);
	for (int i = 0; i < conc; i++) /* ahead of the items waiting for one: it holds those it has meanwhile */
		if (jc->env->gitlab_slots)
			limiter_acquire_first(jc->env->gitlab_slots);
	pthread_mutex_unlock(&taking);
	/* a page's slot goes back as soon as no page is left for it, not when the last page is in (those came back
	 * 21-75 ms after they were asked for, and the slots of the early ones stood idle: docs/PERFORMANCE.md,
	 * session 30); one is kept for the pages after these */
	struct held_slots held = {.env = jc->env, .n = conc};
	enum core_status st = gitlab_multi_narrowing(gl, calls, (size_t)k, conc, give_slot_but_one, &held);
	const char *next = NULL;
	bool ended = false;
	for (int i = 0; i < k && st == CORE_OK && !ended; i++) {
		jc->pages++;
		st = calls[i].status;
		struct gitlab_response *resp = calls[i].resp;
		size_t n = 0;
		char why[200];
		if (st == CORE_OK && jscan_each(resp->body, resp->body_len, project_paths,
		                                sizeof(project_paths) / sizeof(project_paths[0]), on_scanned_project,
		                                jc, &n, why, sizeof(why)) != CORE_OK) {
			st = CORE_EUPSTREAM;
			resp->kind = GITLAB_ERR_BAD_RESPONSE;
			snprintf(resp->message, sizeof(resp->message),
			         "GitLab answered GET %s with something other than a JSON list (%s)", calls[i].path,
			         why);
		}
		if (st != CORE_OK) {
			*err_out = calls[i].resp;
			calls[i].resp = NULL;
			break;
		}
		ended = n == 0 || !resp->next_page;
		next = calls[i].resp->next_page;
	}
	for (; held.n > 1; held.n--) /* the rest, if the group grew, one page at a time on one slot */
		applyjob_slot_give(jc->env);
	if (st == CORE_OK && !ended && next) {
		int more = 0;
		st = gitlab_paginate_items(gl, next, on_project, jc, &more, err_out);
		jc->pages += more;
	}
	applyjob_slot_give(jc->env);
	for (int i = 0; i < k; i++)
		gitlab_response_free(calls[i].resp);
	free(calls);
	free(paths);
	return st;
}

/*
 * Sort the list by id for listed(). A project listed more than once (offset pages read side by side: one deleted
 * meanwhile shifts the next page; or a faulty answer) is kept once when every copy agrees, and dropped when they
 * differ: which copy holds is unknown, so its repo reads the project alone (GET /projects/:id) instead of trusting a
 * merge setting that may be the stale one.
 */
static void listed_sort(struct jobctx *jc)
{
	qsort(jc->projects, jc->n_projects, sizeof(*jc->projects), by_project_id);
	size_t out = 0;
	for (size_t i = 0; i < jc->n_projects;) {
		const struct listed_project *a = &jc->projects[i];
		size_t j = i + 1;
		bool agree = true;
		for (; j < jc->n_projects && jc->projects[j].id == a->id; j++)
			agree = agree && jc->projects[j].archived == a->archived &&
			        jc->projects[j].pending == a->pending && jc->projects[j].merge_on == a->merge_on;
		if (agree)
			jc->projects[out++] = *a;
		else
			log_warn("apply job %lld: project %lld is listed %zu times with different attributes: it is "
			         "read alone",
			         (long long)jc->job_id, (long long)a->id, j - i);
		i = j;
	}
	jc->n_projects = out;
}

/*
 * The projects of group gid through cc, read again when older than JOBCTX_LIST_MAX_AGE or of another group
 * (jc->list_mu held); the pages read.
 */
static int jobctx_projects(struct jobctx *jc, struct connection_client *cc, int64_t gid)
{
	if (!cc || gid <= 0 ||
	    (jc->projects_group == gid && jc->projects_at && time(NULL) - jc->projects_at < JOBCTX_LIST_MAX_AGE))
		return 0;
	char path[200];
	struct gitlab_response *resp = NULL;
	free(jc->projects);
	jc->projects = NULL;
	jc->n_projects = jc->cap_projects = 0;
	jc->pages = 0;
	jc->projects_group = gid;
	jc->projects_at = time(NULL);
	__atomic_store_n(&jc->projects_reading, 1, __ATOMIC_RELEASE);
	hhmmss(jc->projects_read_at);
	snprintf(path, sizeof(path),
	         "/groups/%lld/projects?include_subgroups=true&with_shared=false&order_by=id&sort=asc&per_page=100",
	         (long long)gid);
	enum core_status st = jobctx_projects_read(jc, connection_client_gitlab(cc), path, &resp);
	jc->projects_ok = st == CORE_OK;
	if (st != CORE_OK)
		log_warn("apply job %lld: could not list the group's projects (%s): each repo is read alone",
		         (long long)jc->job_id, resp && resp->message[0] ? resp->message : core_status_code(st));
	else
		listed_sort(jc);
	__atomic_store_n(&jc->projects_reading, 0, __ATOMIC_RELEASE);
	gitlab_response_free(resp);
	return jc->pages + (st != CORE_OK);
}

static bool lists_project_reading(void *user)
{
	struct jobctx *jc = user;
	return __atomic_load_n(&jc->projects_reading, __ATOMIC_ACQUIRE) != 0;
}

static const struct listed_project *listed(const struct jobctx *jc, int64_t repo_id)
{
	if (!jc->projects_ok)
		return NULL;
	return bsearch(&repo_id, jc->projects, jc->n_projects, sizeof(*jc->projects), by_project_id);
}

/* The client and group the lists are read with, as the job's context has them now (cc retained: release it). */
static struct connection_client *lists_client(struct jobctx *jc, int64_t *gid)
{
	pthread_mutex_lock(&jc->mu);
	struct connection_client *cc = connection_client_retain(jc->cc);
	*gid = jc->group_id;
	pthread_mutex_unlock(&jc->mu);
	return cc;
}

static bool lists_project(void *user, int64_t repo_id, struct apply_listed *out, int *pages_out)
{
	struct jobctx *jc = user;
	int64_t gid = 0;
	struct connection_client *cc = lists_client(jc, &gid);
	pthread_mutex_lock(&jc->list_mu);
	*pages_out = jobctx_projects(jc, cc, gid);
	const struct listed_project *lp = listed(jc, repo_id);
	if (lp) {
		out->archived = lp->archived;
		out->pending_deletion = lp->pending;
		out->merge_on = lp->merge_on;
		snprintf(out->read_at, sizeof(out->read_at), "%s", jc->projects_read_at);
	}
	pthread_mutex_unlock(&jc->list_mu);
	connection_client_release(cc);
	return lp != NULL;
}

/* Open MRs grouped by project while the pages are read: {"<project id>": [mr, ...]}. */
struct mrs_walk {
	struct json_object *by_project;
	size_t n;
	int pages;
};

static enum core_status on_mr(struct json_object *mr, void *user)
{
	struct mrs_walk *w = user;
	struct json_object *arr = NULL;
	int64_t pid = 0;
	char key[24];
	if (!jsonx_int64(mr, "project_id", &pid) || pid <= 0)
		return CORE_OK;
	if (++w->n > JOBCTX_MRS_MAX)
		return CORE_ETOOLARGE;
	snprintf(key, sizeof(key), "%lld", (long long)pid);
	if (!json_object_object_get_ex(w->by_project, key, &arr)) {
		arr = jx_array();
		json_object_object_add(w->by_project, key, arr);
	}
	json_object_array_add(arr, json_object_get(mr));
	return CORE_OK;
}

/* The open MRs of group gid, read again when older than JOBCTX_LIST_MAX_AGE or of another group (jc->list_mu
 * held); the pages read. */
static int jobctx_mrs(struct jobctx *jc, struct connection_client *cc, int64_t gid)
{
	if (!cc || gid <= 0 || (jc->mrs_group == gid && jc->mrs_at && time(NULL) - jc->mrs_at < JOBCTX_LIST_MAX_AGE))
		return 0;
	char path[160];
	struct gitlab_response *resp = NULL;
	struct mrs_walk w = {.by_project = jx_object()};
	for (size_t i = 0; i < jc->n_mrs; i++)
		free(jc->mrs[i].json);
	free(jc->mrs);
	jc->mrs = NULL;
	jc->n_mrs = 0;
	jc->mrs_group = gid;
	jc->mrs_at = time(NULL);
	hhmmss(jc->mrs_read_at);
	snprintf(path, sizeof(path), "/groups/%lld/merge_requests?state=opened&scope=all&per_page=100", (long long)gid);
	applyjob_slot_take(jc->env);
	enum core_status st = gitlab_paginate_items(connection_client_gitlab(cc), path, on_mr, &w, &w.pages, &resp);
	applyjob_slot_give(jc->env);
	jc->mrs_ok = st == CORE_OK;
	if (st != CORE_OK) {
		log_warn("apply job %lld: could not list the group's open merge requests (%s): each repo lists its own",
		         (long long)jc->job_id, resp && resp->message[0] ? resp->message : core_status_code(st));
	} else {
		jc->mrs = xcalloc(json_object_object_length(w.by_project) + 1, sizeof(*jc->mrs));
		json_object_object_foreach(w.by_project, key, arr)
		{
			jc->mrs[jc->n_mrs].project_id = strtoll(key, NULL, 10);
			jc->mrs[jc->n_mrs++].json =
			    xstrdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
		}
		qsort(jc->mrs, jc->n_mrs, sizeof(*jc->mrs), by_project_id);
	}
	json_object_put(w.by_project);
	gitlab_response_free(resp);
	return w.pages + (st != CORE_OK);
}

static struct json_object *lists_open_mrs(void *user, int64_t repo_id, char read_at[16], int *pages_out)
{
	struct jobctx *jc = user;
	struct json_object *out = NULL;
	int64_t gid = 0;
	struct connection_client *cc = lists_client(jc, &gid);
	pthread_mutex_lock(&jc->list_mu);
	/* the group list holds the MRs of the group's projects only: a repo it does not list lists its own */
	*pages_out = jobctx_projects(jc, cc, gid);
	if (listed(jc, repo_id)) {
		*pages_out += jobctx_mrs(jc, cc, gid);
		if (jc->mrs_ok) {
			const struct listed_mrs *m =
			    bsearch(&repo_id, jc->mrs, jc->n_mrs, sizeof(*jc->mrs), by_project_id);
			out = m ? json_tokener_parse(m->json) : jx_array();
			snprintf(read_at, 16, "%s", jc->mrs_read_at);
		}
	}
	pthread_mutex_unlock(&jc->list_mu);
	connection_client_release(cc);
	return out;
}

/*
 * The repo of item, read and claimed ahead with the other items this runner holds of the job (one statement for
 * all of them instead of one each: the first items of a job are 32 at once), into *out; false when it must read
 * its own (an item claimed again, or the statement failed). Without load, only what was read ahead already.
 */
#define PRELOAD_MAX 256 /* items read ahead at once, at most (a job's start: 4 per worker; later claims 16) */

static bool preloaded(struct jobctx *jc, const struct job_item *item, bool load, struct apply_loaded *out)
{
	const struct applyjob_env *env = jc->env;
	bool found = false;
	if (!env->jobs)
		return false;
	pthread_mutex_lock(&jc->pre_mu);
	if (load && item->id > jc->pre_mark) {
		struct apply_loaded *v = NULL;
		size_t n = 0;
		int64_t ids[PRELOAD_MAX], repos[PRELOAD_MAX];
		int held = jobs_runner_held(env->jobs, item->job_id, jc->pre_mark, ids, repos, PRELOAD_MAX);
		if (apply_load_job_items(env->db, ids, repos, (size_t)held, &v, &n) == CORE_OK && n > 0) {
			jc->pre = xrealloc(jc->pre, (jc->n_pre + n) * sizeof(*jc->pre));
			memcpy(jc->pre + jc->n_pre, v, n * sizeof(*v));
			jc->n_pre += n;
			jc->pre_mark = v[n - 1].item_id; /* ordered by item id */
		}
		free(v);
	}
	for (size_t i = 0; i < jc->n_pre && !found; i++)
		if (jc->pre[i].item_id == item->id) {
			*out = jc->pre[i];
			jc->pre[i] = jc->pre[--jc->n_pre];
			found = true;
		}
	pthread_mutex_unlock(&jc->pre_mu);
	return found && out->repo_id == item->repo_id;
}

/* Apply one repo with an open client and ctx (filled from the job's context); the item's outcome. */
static enum job_outcome apply_one(const struct applyjob_env *env, struct connection_client *cc, struct apply_ctx *ctx,
                                  const struct job_item *item, struct job_item_result *res)
{
	char owner[48];
	struct apply_result ar;
	memset(&ar, 0, sizeof(ar));
	snprintf(owner, sizeof(owner), "job-item-%lld", (long long)item->id);
	ctx->claim_owner = owner;
	ctx->slots = env->gitlab_slots; /* around each GitLab exchange: the database work in between holds none */
	ctx->outbox = env->outbox;
	ctx->post_outcome = env->outbox != NULL; /* the worker goes on; the recorder settles it (res->settle) */
	enum core_status st = apply_repo(env->db, connection_client_gitlab(cc), ctx, item->repo_id, false, &ar);
	if (ar.pending) {
		res->settle = apply_pending_settle;
		res->settle_arg = ar.pending;
		ar.pending = NULL;
	}
	enum job_outcome outcome = JOB_ITEM_RETRY;
	if (st == CORE_ENOTFOUND) {
		jobs_result_message(res, "repository %lld is unknown", (long long)item->repo_id);
		outcome = JOB_ITEM_ERROR;
	} else if (st != CORE_OK) {
		jobs_result_message(res, "could not apply (%s)", core_status_code(st));
	} else {
		outcome = item_outcome(&ar, res);
	}
	apply_result_clear(&ar);
	return outcome;
}

enum job_outcome applyjob_item(void *user, const struct job_item *item, struct job_item_result *res)
{
	const struct applyjob_env *env = user;
	int64_t run = 0;
	bool group_hook_was_down = false, resend = false;
	char hook_url[APPLYJOB_HOOK_URL_MAX], sha[72];
	if (!item->has_repo) {
		jobs_result_message(res, "an apply item needs a repository");
		return JOB_ITEM_ERROR;
	}
	jsonx_int64(item->params, "run", &run);
	jsonx_bool(item->params, "group_hook_was_down", &group_hook_was_down);
	jsonx_bool(item->params, "resend_hook_tokens", &resend);
	struct jobctx *jc = jobctx_get(env, item->job_id);
	pthread_mutex_lock(&jc->mu);
	jobctx_refresh(jc);
	if (__atomic_load_n(&jc->canceled, __ATOMIC_RELAXED)) {
		pthread_mutex_unlock(&jc->mu);
		struct apply_loaded pre;
		if (preloaded(jc, item, false, &pre))
			apply_release_loaded(env->db, &pre);
		jobctx_put(jc);
		/* not started: the repo is no longer "applying"; a failure leaves the mark to the next apply or sync */
		if (apply_unmark(env->db, item->repo_id, run) != CORE_OK)
			log_warn("job %lld: could not take the applying mark off repo %lld", (long long)item->job_id,
			         (long long)item->repo_id);
		jobs_result_message(res, "canceled");
		return JOB_ITEM_SKIPPED;
	}
	enum job_outcome outcome = jc->fail;
	bool abandon = jc->abandon;
	if (outcome == JOB_ITEM_CHANGED && !jc->ctx_ok) {
		outcome = JOB_ITEM_ERROR;
		jobs_result_message(res, "the public URL is too long for a hook URL");
	} else if (outcome != JOB_ITEM_CHANGED) {
		jobs_result_message(res, "%s", jc->fail_message);
	}
	struct connection_client *cc = outcome == JOB_ITEM_CHANGED ? connection_client_retain(jc->cc) : NULL;
	/* copied while the lock is held: a refresh may rewrite the context (a new secret) */
	memcpy(hook_url, jc->hook_url, sizeof(hook_url));
	memcpy(sha, jc->secret_sha, sizeof(sha));
	struct apply_ctx ctx = {.hook_url = hook_url,
	                        .webhook_secret = cc ? connection_client_webhook_secret(cc) : NULL,
	                        .webhook_secret_sha = sha,
	                        .ssl_verify = strncmp(hook_url, "https://", 8) == 0,
	                        .run = run,
	                        .group_mode = jc->group_mode,
	                        .group_hook_was_down = jc->group_mode && group_hook_was_down,
	                        .resend_token = resend,
	                        .lists = jc->use_lists ? &jc->lists : NULL};
	pthread_mutex_unlock(&jc->mu);
	struct apply_loaded pre;
	bool have_pre = preloaded(jc, item, cc != NULL, &pre);
	if (cc) {
		ctx.loaded = have_pre ? &pre : NULL;
		outcome = apply_one(env, cc, &ctx, item, res);
	} else if (have_pre) {
		apply_release_loaded(env->db, &pre);
	}
	if (!cc && abandon)
		apply_abandon(env->db, &item->repo_id, 1, run, res->message);
	connection_client_release(cc);
	jobctx_put(jc);
	return outcome;
}

const struct apply_lists *applyjob_lists_take(const struct applyjob_env *env, int64_t job_id, void **ref,
                                              bool *canceled)
{
	struct jobctx *jc = jobctx_get(env, job_id);
	pthread_mutex_lock(&jc->mu);
	jobctx_refresh(jc);
	*canceled = __atomic_load_n(&jc->canceled, __ATOMIC_RELAXED);
	const struct apply_lists *lists = jc->use_lists && jc->fail == JOB_ITEM_CHANGED ? &jc->lists : NULL;
	pthread_mutex_unlock(&jc->mu);
	*ref = jc;
	return lists;
}

const struct apply_lists *applyjob_lists_open(const struct applyjob_env *env, size_t n_repos, void **ref)
{
	struct jobctx *jc = jobctx_new(env, 0); /* no job: its row is not found, its lists are its own */
	jc->retired = true;
	jc->refs = 1;
	pthread_mutex_lock(&jc->mu);
	jobctx_refresh(jc);
	PGresult *r = NULL;
	int64_t known = 0;
	if (store_run1(env->db, "SELECT count(*) AS n FROM repos WHERE removed_at IS NULL", NULL, &r) == CORE_OK)
		known = store_i64(r, 0, "n", 0);
	PQclear(r);
	__atomic_store_n(&jc->expected_pages, pages_of(known), __ATOMIC_RELAXED);
	jc->use_lists = (int64_t)n_repos > (known + 99) / 100;
	const struct apply_lists *lists = jc->use_lists && jc->fail == JOB_ITEM_CHANGED ? &jc->lists : NULL;
	pthread_mutex_unlock(&jc->mu);
	*ref = jc;
	return lists;
}

void applyjob_lists_put(void *ref)
{
	if (ref)
		jobctx_put(ref);
}

void applyjob_note_canceled(const struct applyjob_env *env, int64_t job_id)
{
	pthread_mutex_lock(&g_jobctx.mu);
	for (int i = 0; i < JOBCTX_SLOTS; i++) {
		struct jobctx *c = g_jobctx.slot[i];
		if (c && c->job_id == job_id && c->env == env)
			__atomic_store_n(&c->canceled, true, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&g_jobctx.mu);
}

/* Create the apply job of ids with params (borrowed) and wake the local runner; see applyjob_start(). */
static struct json_object *start_job(const struct applyjob_env *env, const char *actor, int64_t run, const int64_t *ids,
                                     size_t n, struct json_object *params, int64_t *job_id_out)
{
	struct json_object *job = NULL;
	int64_t job_id = 0;
	enum core_status st = jobs_create(
	    env->db, "apply", actor, json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN), ids, n, &job_id);
	if (job_id_out)
		*job_id_out = 0;
	if (st != CORE_OK) {
		apply_abandon(env->db, ids, n, run, "could not create the apply job");
		return NULL;
	}
	if (env->jobs) {
		jobs_runner_wake(env->jobs);
		/* read the job's context while the runner claims the first items: the first item would read it while
		 * every other one waits on its mutex (3-10 ms at a job's start; docs/PERFORMANCE.md, session 32) */
		struct jobctx *jc = jobctx_get(env, job_id);
		pthread_mutex_lock(&jc->mu);
		jobctx_refresh(jc);
		pthread_mutex_unlock(&jc->mu);
		jobctx_put(jc);
	}
	if (jobs_get(env->db, job_id, &job) != CORE_OK)
		job = NULL;
	if (job_id_out)
		*job_id_out = job_id;
	return job;
}

struct json_object *applyjob_start_after_sync(const struct applyjob_env *env, const char *actor, int64_t run,
                                              const int64_t *ids, size_t n, bool group_hook_was_down,
                                              int64_t *job_id_out)
{
	struct json_object *params = jx_object();
	json_object_object_add(params, "run", jx_int(run));
	if (group_hook_was_down)
		json_object_object_add(params, "group_hook_was_down", jx_bool(1));
	struct json_object *job = start_job(env, actor, run, ids, n, params, job_id_out);
	json_object_put(params);
	return job;
}

struct json_object *applyjob_start(const struct applyjob_env *env, const char *actor, int64_t run, const int64_t *ids,
                                   size_t n, int64_t *job_id_out)
{
	return applyjob_start_after_sync(env, actor, run, ids, n, false, job_id_out);
}

struct json_object *applyjob_start_marked(const struct applyjob_env *env, const char *actor,
                                          struct gateconfig_marked *marked, bool reapply, bool resend_tokens)
{
	if (marked->n == 0) {
		gateconfig_marked_clear(marked);
		return NULL;
	}
	int64_t job_id = 0;
	struct json_object *params = jx_object();
	json_object_object_add(params, "run", jx_int(marked->run));
	if (reapply)
		json_object_object_add(params, "reapply", jx_bool(1));
	if (resend_tokens)
		json_object_object_add(params, "resend_hook_tokens", jx_bool(1));
	struct json_object *job = start_job(env, actor, marked->run, marked->ids, marked->n, params, &job_id);
	json_object_put(params);
	struct json_object *o = jx_object();
	json_object_object_add(o, "run", jx_int(marked->run));
	json_object_object_add(o, "repos", jx_int((int64_t)marked->n));
	json_object_object_add(o, "job_id", job_id ? jx_int(job_id) : NULL);
	json_object_object_add(o, "job", job);
	gateconfig_marked_clear(marked);
	return o;
}

#define REPAIRS_SHOWN 10 /* repos named in a repair entry's message; details.repaired has them all */

/*
 * Write one "reapply.repair" entry: by actor, on target, details {id_key: id, repaired: paths, changes: done (path ->
 * what was done), message}, the message opening with `what` ("re-apply job 12"). Takes paths and done.
 */
static enum core_status write_repairs(struct store_conn *c, const char *actor, const char *target, const char *what,
                                      const char *id_key, int64_t id, struct json_object *paths,
                                      struct json_object *done)
{
	struct buf msg = {0};
	struct json_object *d = jx_object();
	size_t np = json_object_array_length(paths), shown = np < REPAIRS_SHOWN ? np : REPAIRS_SHOWN;
	buf_printf(&msg, "%s repaired drift on %zu %s:", what, np, np == 1 ? "repository" : "repositories");
	for (size_t i = 0; i < shown; i++) {
		const char *path = json_object_get_string(json_object_array_get_idx(paths, i)), *done_there = NULL;
		jsonx_str(done, path, &done_there);
		buf_printf(&msg, "%s %s (%s)", i ? "," : "", path, done_there ? done_there : "repaired");
	}
	if (np > shown)
		buf_printf(&msg, " and %zu more", np - shown);
	json_object_object_add(d, id_key, jx_int(id));
	json_object_object_add(d, "repaired", paths);
	json_object_object_add(d, "changes", done);
	json_object_object_add(d, "message", jx_str(buf_str(&msg)));
	enum core_status st = audit_write(c, actor, "reapply.repair", target, NULL, NULL, d);
	json_object_put(d);
	buf_free(&msg);
	return st;
}

void applyjob_finished(void *user, int64_t job_id)
{
	const struct applyjob_env *env = user;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct buf target = {0}, what = {0};
	buf_printf(&target, "job %" PRId64, job_id);
	/* the repairs of an explicit re-apply, finished since this job's last entry (a retry finishes it again) */
	enum core_status st = store_get(env->db, &c);
	if (st == CORE_OK)
		st = STORE_RUN(
		    c,
		    /* the job first: the audit log is only searched for a re-apply's earlier entry */
		    "SELECT j.created_by, count(r.id) AS n,"
		    "  coalesce(jsonb_agg(r.path_with_namespace ORDER BY r.path_with_namespace)"
		    "   FILTER (WHERE r.id IS NOT NULL), '[]') AS paths,"
		    "  coalesce(jsonb_object_agg(r.path_with_namespace, coalesce(i.message, 'repaired'))"
		    "   FILTER (WHERE r.id IS NOT NULL), '{}') AS done"
		    " FROM jobs j"
		    " CROSS JOIN LATERAL (SELECT max(at) AS at FROM audit_log WHERE action = 'reapply.repair'"
		    "  AND target = $2 AND at >= j.created_at) prev"
		    " LEFT JOIN job_items i ON i.job_id = j.id AND i.result = 'changed'"
		    "  AND i.details @> '{\"repaired\": true}' AND (prev.at IS NULL OR i.finished_at > prev.at)"
		    " LEFT JOIN repos r ON r.id = i.repo_id"
		    " WHERE j.id = $1 AND j.kind = 'apply' AND j.params @> '{\"reapply\": true}'"
		    " GROUP BY j.created_by",
		    &r, STORE_I64(job_id), STORE_STR(buf_str(&target)));
	int64_t n = st == CORE_OK && PQntuples(r) == 1 ? store_i64(r, 0, "n", 0) : 0;
	if (n > 0) {
		struct json_object *paths = NULL, *done = NULL;
		const char *pj = store_str(r, 0, "paths"), *dj = store_str(r, 0, "done");
		if (!pj || jsonx_parse(pj, strlen(pj), &paths) != CORE_OK)
			paths = jx_array();
		if (!dj || jsonx_parse(dj, strlen(dj), &done) != CORE_OK)
			done = jx_object();
		buf_printf(&what, "re-apply job %" PRId64, job_id);
		/* the actor is who asked for the re-apply: the repair is theirs, as a resync's is the system's */
		st = write_repairs(c, store_str(r, 0, "created_by"), buf_str(&target), buf_str(&what), "job", job_id,
		                   paths, done);
	}
	if (st != CORE_OK)
		log_warn("job %" PRId64
		         ": could not write the audit entry of its repairs (%s); the job's items list them",
		         job_id, core_status_code(st));
	PQclear(r);
	store_put(env->db, c);
	buf_free(&target);
	buf_free(&what);
}

enum core_status applyjob_audit_repairs(struct store *db, const char *actor, int64_t run,
                                        const struct apply_batch_item *items, size_t n)
{
	int64_t *ids = xmalloc((n ? n : 1) * sizeof(*ids));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (items[i].status == CORE_OK && items[i].res.repaired)
			ids[k++] = items[i].repo_id;
	enum core_status st = CORE_OK;
	if (k > 0) {
		struct store_conn *c = NULL;
		PGresult *r = NULL;
		struct store_params p = {0};
		struct buf keep = {0}, target = {0}, what = {0};
		store_param_i64_array(&p, ids, k, &keep);
		if ((st = store_get(db, &c)) == CORE_OK)
			st = store_run(c,
			               "SELECT id, path_with_namespace FROM repos WHERE id = ANY($1::bigint[])"
			               " ORDER BY path_with_namespace",
			               &p, &r);
		if (st == CORE_OK) {
			struct json_object *paths = jx_array(), *done = jx_object();
			for (int row = 0; row < PQntuples(r); row++) {
				int64_t id = store_i64(r, row, "id", 0);
				const char *path = store_str(r, row, "path_with_namespace");
				json_object_array_add(paths, jx_str(path));
				for (size_t i = 0; i < n; i++)
					if (items[i].repo_id == id)
						json_object_object_add(done, path, jx_str(items[i].res.message));
			}
			buf_printf(&target, "run %" PRId64, run);
			buf_printf(&what, "re-apply (apply run %" PRId64 ")", run);
			st = write_repairs(c, actor, buf_str(&target), buf_str(&what), "run", run, paths, done);
		}
		PQclear(r);
		store_put(db, c);
		buf_free(&keep);
		buf_free(&target);
		buf_free(&what);
	}
	free(ids);
	return st;
}

static bool stopping(const struct applyjob_env *env)
{
	return env->stopping && __atomic_load_n(env->stopping, __ATOMIC_RELAXED);
}

bool applyjob_wait(const struct applyjob_env *env, int64_t job_id, int max_seconds)
{
	for (int i = 0; i < max_seconds * 4 && !stopping(env); i++) {
		struct json_object *j = NULL;
		bool finished = false;
		if (jobs_get(env->db, job_id, &j) == CORE_OK)
			jsonx_bool(j, "finished", &finished);
		json_object_put(j);
		if (finished)
			return true;
		struct timespec ts = {0, 250 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}
