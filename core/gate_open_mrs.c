/*
 * core/gate_open_mrs.c
 *    Open merge requests when gating starts or stops for a repo (see gate_open_mrs.h).
 */
#include "gate_open_mrs.h"

#include "gate_queue.h"
#include "gate_status.h"
#include "gate_workers.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_MRS_MAX 20000 /* a repo with more open MRs gets the rest gated on their next push */

struct open_mr {
	int64_t iid, source_project_id;
	char sha[72];
	char branch[264];
	char title[512]; /* GitLab's title (at most 255 characters), cut at a character boundary to fit */
};

struct open_mr_list {
	int64_t project_id;
	struct open_mr *v;
	size_t n, cap;
	int pages;
	bool truncated;
};

static bool sha_ok(const char *s)
{
	size_t n = strspn(s, "0123456789abcdefABCDEF");
	return n >= 7 && n <= 64 && s[n] == '\0';
}

/* One entry of GET .../merge_requests into l, when it is an open MR with a head commit. */
static void open_mr_add(struct open_mr_list *l, const struct json_object *e)
{
	const char *sha = NULL, *branch = NULL, *state = NULL, *title = "";
	int64_t iid = 0, spid = 0;
	/* an MR without a head sha yet (diff still being prepared) is gated by its own webhook later */
	if (!jsonx_int64(e, "iid", &iid) || iid <= 0 || !jsonx_str(e, "sha", &sha) || !sha_ok(sha) ||
	    !jsonx_str(e, "source_branch", &branch) || !*branch || strlen(branch) > 255 ||
	    (jsonx_str(e, "state", &state) && strcmp(state, "opened") != 0))
		return;
	if (!jsonx_int64(e, "source_project_id", &spid) || spid <= 0)
		spid = l->project_id;
	if (l->n >= OPEN_MRS_MAX) {
		l->truncated = true;
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	struct open_mr *m = &l->v[l->n++];
	m->iid = iid;
	m->source_project_id = spid;
	snprintf(m->sha, sizeof(m->sha), "%s", sha);
	snprintf(m->branch, sizeof(m->branch), "%s", branch);
	jsonx_str(e, "title", &title);
	size_t n = strlen(title);
	if (n >= sizeof(m->title))
		for (n = sizeof(m->title) - 1; n > 0 && ((unsigned char)title[n] & 0xC0) == 0x80; n--)
			;
	memcpy(m->title, title, n);
	m->title[n] = '\0';
}

static enum core_status open_mrs_page(struct json_object *page, void *user)
{
	struct open_mr_list *l = user;
	l->pages++;
	for (size_t i = 0; i < json_object_array_length(page) && !l->truncated; i++)
		open_mr_add(l, json_object_array_get_idx(page, i));
	return CORE_OK;
}

static bool transient(const struct gitlab_response *resp)
{
	if (!resp)
		return false;
	switch (resp->kind) {
	case GITLAB_ERR_RATE_LIMITED:
	case GITLAB_ERR_SERVER:
	case GITLAB_ERR_UNREACHABLE:
	case GITLAB_ERR_TIMEOUT:
	case GITLAB_ERR_MAYBE_APPLIED:
	case GITLAB_ERR_CONFLICT: return true;
	default: return false;
	}
}

/* Record a failed GitLab call in out (the first failure wins). */
static void open_mrs_fail(struct gate_open_mrs *out, const char *doing, enum core_status st,
                          const struct gitlab_response *resp)
{
	if (out->error[0])
		return;
	out->retryable = transient(resp);
	/* a long GitLab message is cut: the return value is checked only to say so to the compiler */
	if (snprintf(out->error, sizeof(out->error), "could not %s: %.300s%s", doing, gate_status_why(resp, st),
	             out->retryable ? " (will be retried)" : "") >= (int)sizeof(out->error))
		out->error[sizeof(out->error) - 1] = '\0';
}

/* Every open MR of the repo, into *l (both reset first). */
static enum core_status list_open_mrs(struct gitlab *gl, int64_t repo_id, struct open_mr_list *l,
                                      struct gate_open_mrs *out)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	memset(out, 0, sizeof(*out));
	memset(l, 0, sizeof(*l));
	l->project_id = repo_id;
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests?state=opened&per_page=100", (long long)repo_id);
	enum core_status st = gitlab_paginate(gl, path, open_mrs_page, l, &resp);
	out->reads += l->pages + (st != CORE_OK && resp ? 1 : 0);
	if (st == CORE_EFORBIDDEN && resp && resp->kind == GITLAB_ERR_FORBIDDEN) {
		/* merge requests are turned off for the project: none can be open */
		log_info("repo %lld: merge requests are not available (%s): no open ones to handle", (long long)repo_id,
		         gate_status_why(resp, st));
		l->n = 0;
		st = CORE_OK;
	} else if (st != CORE_OK)
		open_mrs_fail(out, "list the open merge requests", st, resp);
	else if (l->truncated)
		log_warn("repo %lld has more than %d open merge requests: the rest are gated on their next push",
		         (long long)repo_id, OPEN_MRS_MAX);
	out->open_mrs = (int)l->n;
	gitlab_response_free(resp);
	return st;
}

/* $1 repo, $2 MR iid, $3 head sha: the parameters of every statement about one open MR. */
static void mr_params(struct store_params *p, int64_t repo_id, const struct open_mr *m)
{
	memset(p, 0, sizeof(*p));
	store_param_i64(p, repo_id);
	store_param_i64(p, m->iid);
	store_param_str(p, m->sha);
}

/* Is a run for this head sha queued or running (unseen_only: is there any run for it)? */
static enum core_status head_busy(struct store_conn *c, const struct store_params *p, bool unseen_only, bool *busy_out)
{
	PGresult *r = NULL;
	enum core_status st =
	    store_run(c,
	              unseen_only ? "SELECT EXISTS (SELECT 1 FROM gate_runs WHERE project_id = $1 AND mr_iid = $2"
	                            " AND head_sha = $3) AS busy"
	                          : "SELECT EXISTS (SELECT 1 FROM gate_runs WHERE project_id = $1 AND mr_iid = $2"
	                            " AND head_sha = $3 AND state IN ('queued', 'running')) AS busy",
	              p, &r);
	*busy_out = st != CORE_OK || store_bool(r, 0, "busy", true);
	PQclear(r);
	return st;
}

/* Queue a run for one open MR unless one for its head sha is queued or running (unseen_only: exists). */
static enum core_status enqueue_open_mr(struct store_conn *c, int64_t repo_id, const struct open_mr *m,
                                        bool unseen_only, bool *queued_out)
{
	struct store_params p, lock = {0};
	bool busy = true;
	*queued_out = false;
	mr_params(&p, repo_id, m);
	store_param_i64(&lock, repo_id);
	store_param_i64(&lock, m->iid);
	enum core_status st = store_begin(c);
	if (st != CORE_OK)
		goto out;
	/* the receiver's per-MR lock: a webhook for the same MR waits, and superseding sees one order */
	st = store_run(c, "SELECT pg_advisory_xact_lock(hashtextextended('mrgate-mr:' || $1 || ':' || $2, 0))", &lock,
	               NULL);
	if (st != CORE_OK)
		goto out;
	if ((st = head_busy(c, &p, unseen_only, &busy)) != CORE_OK)
		goto out;
	if (!busy) {
		struct gate_mr_event ev = {.project_id = repo_id,
		                           .source_project_id = m->source_project_id,
		                           .mr_iid = m->iid,
		                           .head_sha = m->sha,
		                           .source_branch = m->branch,
		                           .title = m->title[0] ? m->title : NULL};
		int64_t run_id = 0;
		bool coalesced = false;
		st = gate_enqueue(c, &ev, 0, &run_id, &coalesced);
		if (st != CORE_OK)
			goto out;
		*queued_out = !coalesced;
	}
	st = store_commit(c);
out:
	if (st != CORE_OK)
		store_rollback(c);
	return st;
}

/* Queue a gate run for each MR of l (what would be, in a dry run); a connection only while the rows are written. */
static enum core_status enqueue_list(struct store *db, int64_t repo_id, const struct open_mr_list *l, bool unseen_only,
                                     bool dry_run, struct gate_open_mrs *out)
{
	struct store_conn *c = NULL;
	enum core_status st = CORE_OK;
	if (dry_run) {
		out->queued = (int)l->n;
		goto out;
	}
	if (l->n > 0 && (st = store_get(db, &c)) != CORE_OK)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		bool queued = false;
		if ((st = enqueue_open_mr(c, repo_id, &l->v[i], unseen_only, &queued)) != CORE_OK) {
			snprintf(out->error, sizeof(out->error),
			         "could not queue a gate run for merge request !%lld: %s", (long long)l->v[i].iid,
			         core_status_code(st));
			out->retryable = true;
			break; /* the runs queued before it are committed: announced below all the same */
		}
		if (queued)
			out->queued++;
	}
	if (out->queued > 0) {
		gate_queue_announce(c); /* c is out of any transaction: a failed enqueue rolled its own back */
		gate_kick();
		log_info("repo %lld %s: %d gate run%s queued for its open merge requests%s", (long long)repo_id,
		         unseen_only ? "has its webhook back" : "is now gated", out->queued,
		         out->queued == 1 ? "" : "s", unseen_only ? " that were never gated" : "");
	}
out:
	store_put(db, c);
	return st;
}

enum core_status gate_enqueue_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool unseen_only,
                                       bool dry_run, struct gate_open_mrs *out)
{
	struct open_mr_list l;
	enum core_status st = list_open_mrs(gl, repo_id, &l, out);
	if (st == CORE_OK)
		st = enqueue_list(db, repo_id, &l, unseen_only, dry_run, out);
	free(l.v);
	return st;
}

enum core_status gate_enqueue_listed_mrs(struct store *db, int64_t repo_id, struct json_object *mrs, bool unseen_only,
                                         bool dry_run, struct gate_open_mrs *out)
{
	struct open_mr_list l;
	memset(out, 0, sizeof(*out));
	memset(&l, 0, sizeof(l));
	l.project_id = repo_id;
	if (mrs && json_object_is_type(mrs, json_type_array))
		open_mrs_page(mrs, &l);
	l.pages = 0; /* the job read the list: no call of this repo's */
	out->open_mrs = (int)l.n;
	enum core_status st = enqueue_list(db, repo_id, &l, unseen_only, dry_run, out);
	free(l.v);
	return st;
}

/* The refs of one head sha whose latest `mrgate` status still blocks (pending, running, failed). */
struct blocking {
	struct {
		int64_t id;
		char ref[264];
		char state[16];
	} v[16];
	size_t n;
	int pages;
};

/* One commit status into b: the newest `mrgate` status per ref is the one that counts. */
static void status_add(struct blocking *b, const struct json_object *e)
{
	const char *name = NULL, *ref = NULL, *state = NULL;
	int64_t id = 0;
	if (!jsonx_str(e, "name", &name) || strcmp(name, GATE_STATUS_NAME) != 0 || !jsonx_str(e, "ref", &ref) ||
	    !*ref || strlen(ref) > 255 || !jsonx_str(e, "status", &state) || !jsonx_int64(e, "id", &id))
		return;
	size_t k = 0;
	while (k < b->n && strcmp(b->v[k].ref, ref) != 0)
		k++;
	if (k == b->n) {
		if (b->n >= sizeof(b->v) / sizeof(b->v[0]))
			return;
		b->n++;
		b->v[k].id = 0;
		snprintf(b->v[k].ref, sizeof(b->v[k].ref), "%s", ref);
	}
	if (id > b->v[k].id) {
		b->v[k].id = id;
		snprintf(b->v[k].state, sizeof(b->v[k].state), "%.15s", state);
	}
}

static enum core_status statuses_page(struct json_object *page, void *user)
{
	struct blocking *b = user;
	b->pages++;
	for (size_t i = 0; i < json_object_array_length(page); i++)
		status_add(b, json_object_array_get_idx(page, i));
	return CORE_OK;
}

static bool blocks(const char *state)
{
	return strcmp(state, "failed") == 0 || strcmp(state, "pending") == 0 || strcmp(state, "running") == 0;
}

/* POST the final `success` on sha/ref, retrying GitLab's 409 ("another update in progress"). */
static enum core_status post_removed(struct gitlab *gl, int64_t spid, const char *sha, const char *ref,
                                     struct gate_open_mrs *out)
{
	struct gitlab_response *resp = NULL;
	struct gate_status s = {.state = "success", .description = GATE_REMOVED_DESCRIPTION, .ref = ref};
	out->writes++;
	enum core_status st = gate_status_post(gl, spid, sha, &s, GATE_STATUS_TRIES, &resp);
	if (st == CORE_ECONFLICT) {
		open_mrs_fail(out, "post the final status: GitLab kept answering 409", st, resp);
	} else if (st != CORE_OK) {
		char doing[200];
		snprintf(doing, sizeof(doing), "post the final status on %.12s", sha);
		open_mrs_fail(out, doing, st, resp);
	}
	gitlab_response_free(resp);
	return st;
}

/* Dry run: does mrgate's record say the last status it posted on this head still blocks? */
static enum core_status recorded_blocking(struct store_conn *c, int64_t repo_id, const struct open_mr *m,
                                          bool *blocking_out)
{
	PGresult *r = NULL;
	struct store_params p;
	*blocking_out = false;
	mr_params(&p, repo_id, m);
	enum core_status st = store_run(c,
	                                "SELECT coalesce(status_posted, 'pending') AS s FROM gate_runs"
	                                " WHERE project_id = $1 AND mr_iid = $2 AND head_sha = $3"
	                                " AND (pending_posted OR status_posted IS NOT NULL) ORDER BY id DESC LIMIT 1",
	                                &p, &r);
	if (st == CORE_OK && PQntuples(r) == 1)
		*blocking_out = strcmp(store_str(r, 0, "s"), "success") != 0;
	PQclear(r);
	return st;
}

/* End the repo's queued and running runs, so that none posts a verdict after the final status. */
static enum core_status end_runs(struct store *db, int64_t repo_id)
{
	struct store_params p = {0};
	store_param_i64(&p, repo_id);
	store_param_str(&p, "the gate was removed for this repository");
	return store_run1(db,
	                  "UPDATE gate_runs SET state = 'done', verdict = 'skipped', error = $2,"
	                  " finished_at = now(), lease_owner = NULL, lease_until = NULL"
	                  " WHERE project_id = $1 AND state IN ('queued', 'running')",
	                  &p, NULL);
}

/* Post the final success on every blocking `mrgate` status of one open MR; the first failure, or CORE_OK. */
static enum core_status clear_mr(struct gitlab *gl, const struct open_mr *m, struct blocking *b,
                                 struct gate_open_mrs *out)
{
	char path[200];
	struct gitlab_response *resp = NULL;
	enum core_status first = CORE_OK;
	memset(b, 0, sizeof(*b));
	snprintf(path, sizeof(path),
	         "/projects/%lld/repository/commits/%s/statuses?name=" GATE_STATUS_NAME "&per_page=100",
	         (long long)m->source_project_id, m->sha);
	enum core_status st = gitlab_paginate(gl, path, statuses_page, b, &resp);
	out->reads += b->pages + (st != CORE_OK && resp ? 1 : 0);
	if (st == CORE_ENOTFOUND) {
		st = CORE_OK; /* the commit is gone (force push): nothing of ours on it blocks */
	} else if (st != CORE_OK) {
		char doing[200];
		snprintf(doing, sizeof(doing), "read the statuses of merge request !%lld", (long long)m->iid);
		open_mrs_fail(out, doing, st, resp);
	} else {
		for (size_t k = 0; k < b->n; k++) {
			if (!blocks(b->v[k].state))
				continue;
			enum core_status pst = post_removed(gl, m->source_project_id, m->sha, b->v[k].ref, out);
			if (pst == CORE_OK)
				out->cleared++;
			else if (first == CORE_OK)
				first = pst;
		}
		st = first;
	}
	gitlab_response_free(resp);
	return st;
}

enum core_status gate_clear_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool dry_run,
                                     struct gate_open_mrs *out)
{
	struct open_mr_list l;
	enum core_status first = CORE_OK; /* the first failure; the other MRs are still cleared */
	enum core_status st = list_open_mrs(gl, repo_id, &l, out);
	struct store_conn *c = NULL;
	struct blocking *b = xcalloc(1, sizeof(*b));
	/* a database connection only when there is something to do, and never across a GitLab call */
	if (st != CORE_OK || l.n == 0 || (dry_run && (st = store_get(db, &c)) != CORE_OK))
		goto out;
	if (!dry_run && (st = end_runs(db, repo_id)) != CORE_OK)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		if (dry_run) {
			bool blocking = false;
			if ((st = recorded_blocking(c, repo_id, &l.v[i], &blocking)) != CORE_OK)
				goto out;
			out->cleared += blocking;
			continue;
		}
		enum core_status mst = clear_mr(gl, &l.v[i], b, out);
		if (mst != CORE_OK && first == CORE_OK)
			first = mst;
	}
	if (dry_run)
		out->writes = out->cleared;
	st = first;
	if (!dry_run && (out->cleared > 0 || st != CORE_OK))
		log_info("repo %lld is no longer gated: %d final status%s posted on its open merge requests%s%s",
		         (long long)repo_id, out->cleared, out->cleared == 1 ? "" : "es", out->error[0] ? "; " : "",
		         out->error);
out:
	store_put(db, c);
	free(l.v);
	free(b);
	return st;
}
