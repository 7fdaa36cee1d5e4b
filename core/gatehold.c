/*
 * core/gatehold.c
 *    A gate run's state posted into the pipeline GitLab's merge check reads (see gatehold.h).
 */
#include "gatehold.h"

#include "gate_status.h"
#include "jsonx.h"
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCANNING "mrgate is scanning the changes"

struct hold_run {
	int64_t id, project_id, source_project_id, mr_iid;
	char head_sha[72];
	char post[16]; /* the state to post now: pending | success | failed | canceled (superseded), or "" (nothing) */
	char desc[300];
};

static const char RUN_COLS[] =
    "SELECT id, project_id, source_project_id, mr_iid, head_sha, state, coalesce(status_posted, '') AS posted,"
    " coalesce(description, '') AS description FROM gate_runs ";

static void fill(const PGresult *r, struct hold_run *h)
{
	memset(h, 0, sizeof(*h));
	h->id = store_i64(r, 0, "id", 0);
	h->project_id = store_i64(r, 0, "project_id", 0);
	h->source_project_id = store_i64(r, 0, "source_project_id", 0);
	h->mr_iid = store_i64(r, 0, "mr_iid", 0);
	snprintf(h->head_sha, sizeof(h->head_sha), "%s", store_str(r, 0, "head_sha"));
	const char *state = store_str(r, 0, "state"), *posted = store_str(r, 0, "posted");
	if (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0) {
		snprintf(h->post, sizeof(h->post), "pending");
		snprintf(h->desc, sizeof(h->desc), SCANNING);
	} else if (((strcmp(state, "done") == 0 || strcmp(state, "error") == 0) &&
	            (strcmp(posted, "success") == 0 || strcmp(posted, "failed") == 0)) ||
	           (strcmp(state, "superseded") == 0 && strcmp(posted, "canceled") == 0)) {
		snprintf(h->post, sizeof(h->post), "%s", posted);
		snprintf(h->desc, sizeof(h->desc), "%s", store_str(r, 0, "description"));
	}
}

/* One run by a WHERE clause and its parameters; *found false when there is none. */
static enum core_status load_run(struct store *db, const char *where, const struct store_params *p, struct hold_run *h,
                                 bool *found)
{
	char sql[600];
	PGresult *r = NULL;
	snprintf(sql, sizeof(sql), "%s%s", RUN_COLS, where);
	*found = false;
	enum core_status st = store_run1(db, sql, p, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		fill(r, h);
		*found = true;
	}
	PQclear(r);
	return st;
}

static enum core_status load_by_id(struct store *db, int64_t run_id, struct hold_run *h, bool *found)
{
	struct store_params p = {0};
	store_param_i64(&p, run_id);
	return load_run(db, "WHERE id = $1::bigint", &p, h, found);
}

static enum core_status reload(struct store *db, struct hold_run *h)
{
	bool found = false;
	enum core_status st = load_by_id(db, h->id, h, &found);
	if (st == CORE_OK && !found)
		h->post[0] = '\0';
	return st;
}

/* The state last posted by this run into the pipeline ("" when none). */
static enum core_status posted_state(struct store *db, int64_t run_id, int64_t pipeline_id, char *out, size_t cap)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	store_param_i64(&p, run_id);
	store_param_i64(&p, pipeline_id);
	out[0] = '\0';
	enum core_status st = store_run1(db,
	                                 "SELECT state FROM gate_pipeline_posts WHERE run_id = $1::bigint AND"
	                                 " pipeline_id = $2::bigint",
	                                 &p, &r);
	if (st == CORE_OK && PQntuples(r) > 0)
		snprintf(out, cap, "%s", store_str(r, 0, "state"));
	PQclear(r);
	return st;
}

/*
 * Post h's state into the pipeline until what is there is what the run says now (a run finishing meanwhile is
 * caught by the re-read). CORE_OK when the pipeline holds the run's state (or there is nothing to post).
 */
static enum core_status post_into(struct store *db, struct gitlab *gl, const char *public_url, struct hold_run *h,
                                  int64_t pipeline_project, int64_t pipeline_id, const char *sha, char *msg, size_t cap)
{
	enum core_status st = CORE_OK;
	for (int round = 0; round < 3; round++) {
		char have[16];
		if (!h->post[0]) {
			snprintf(msg, cap, "run %lld has nothing to post", (long long)h->id);
			return CORE_OK;
		}
		st = posted_state(db, h->id, pipeline_id, have, sizeof(have));
		if (st != CORE_OK)
			return st;
		if (strcmp(have, h->post) == 0) {
			snprintf(msg, cap, "pipeline %lld holds run %lld's %s status", (long long)pipeline_id,
			         (long long)h->id, h->post);
			return CORE_OK;
		}
		char url[300] = "";
		if (public_url && *public_url && strlen(public_url) < 200)
			snprintf(url, sizeof(url), "%s/#/gates/%lld", public_url, (long long)h->id);
		/* no ref: GitLab takes the pipeline's (refs/merge-requests/:iid/merge for merged results) */
		struct gate_status s = {
		    .state = h->post, .description = h->desc, .target_url = url, .pipeline_id = pipeline_id};
		struct gitlab_response *resp = NULL;
		st = gate_status_post(gl, pipeline_project, sha, &s, 1, &resp);
		if (st != CORE_OK) {
			snprintf(msg, cap, "could not post run %lld's %s status into pipeline %lld: %.300s",
			         (long long)h->id, h->post, (long long)pipeline_id, gate_status_why(resp, st));
			gitlab_response_free(resp);
			return st;
		}
		gitlab_response_free(resp);
		st = STORE_RUN1(db,
		                "INSERT INTO gate_pipeline_posts (run_id, project_id, pipeline_id, sha, state)"
		                " VALUES ($1::bigint, $2::bigint, $3::bigint, $4, $5) ON CONFLICT (run_id, pipeline_id)"
		                " DO UPDATE SET state = $5, sha = $4, posted_at = now()",
		                NULL, STORE_I64(h->id), STORE_I64(pipeline_project), STORE_I64(pipeline_id),
		                STORE_STR(sha), STORE_STR(h->post));
		if (st != CORE_OK)
			return st;
		log_info("gate run %lld: %s status posted into pipeline %lld (%.12s)", (long long)h->id, h->post,
		         (long long)pipeline_id, sha);
		st = reload(db, h); /* the run may have finished while we posted */
		if (st != CORE_OK)
			return st;
	}
	snprintf(msg, cap, "pipeline %lld holds run %lld's %s status", (long long)pipeline_id, (long long)h->id,
	         h->post);
	return CORE_OK;
}

/* What the MR says now about its head. */
struct mr_head {
	bool open;
	char sha[72];
	int64_t hp_id, hp_project; /* its head pipeline (0: none) and that pipeline's project */
	char hp_sha[72];
	char hp_ref[264];
};

/* GET the MR. */
static enum core_status read_mr(struct gitlab *gl, int64_t project_id, int64_t iid, struct mr_head *h)
{
	char path[128];
	struct gitlab_response *resp = NULL;
	const char *s = "", *state = "", *ps = "", *pr = "";
	memset(h, 0, sizeof(*h));
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld", (long long)project_id, (long long)iid);
	enum core_status st = gitlab_request(gl, "GET", path, NULL, &resp);
	if (st == CORE_OK) {
		jsonx_str(resp->json, "sha", &s);
		jsonx_str(resp->json, "state", &state);
		h->open = strcmp(state, "opened") == 0;
		snprintf(h->sha, sizeof(h->sha), "%s", s);
		if (jsonx_path_int64(resp->json, "head_pipeline.id", &h->hp_id) &&
		    jsonx_path_str(resp->json, "head_pipeline.sha", &ps)) {
			snprintf(h->hp_sha, sizeof(h->hp_sha), "%s", ps);
			jsonx_path_str(resp->json, "head_pipeline.ref", &pr);
			snprintf(h->hp_ref, sizeof(h->hp_ref), "%s", pr ? pr : "");
			if (!jsonx_path_int64(resp->json, "head_pipeline.project_id", &h->hp_project))
				h->hp_project = project_id;
		} else {
			h->hp_id = 0;
		}
	}
	gitlab_response_free(resp);
	return st;
}

enum core_status gatehold_pipeline(struct store *db, struct gitlab *gl, const char *public_url, int64_t project_id,
                                   int64_t mr_iid, int64_t pipeline_id, const char *sha, char *msg, size_t cap)
{
	struct hold_run h;
	struct mr_head mr;
	bool found = false;
	char iid[24];
	struct store_params p = {0};
	snprintf(iid, sizeof(iid), "%lld", (long long)mr_iid);
	store_param_i64(&p, project_id);
	store_param_i64(&p, mr_iid);
	enum core_status st = load_run(
	    db, "WHERE project_id = $1::bigint AND mr_iid = $2::bigint ORDER BY id DESC LIMIT 1", &p, &h, &found);
	if (st != CORE_OK)
		return st;
	if (!found || !h.post[0]) {
		snprintf(msg, cap, "!%s has no gate run with a status to hold", iid);
		return CORE_OK;
	}
	/* a later event of a pipeline that holds the state already (created, pending, running...) costs no call */
	char have[16];
	st = posted_state(db, h.id, pipeline_id, have, sizeof(have));
	if (st != CORE_OK)
		return st;
	if (strcmp(have, h.post) == 0) {
		snprintf(msg, cap, "pipeline %lld holds run %lld's %s status", (long long)pipeline_id, (long long)h.id,
		         h.post);
		return CORE_OK;
	}
	st = read_mr(gl, project_id, mr_iid, &mr);
	if (st != CORE_OK) {
		snprintf(msg, cap, "could not read merge request !%s (%s)", iid, core_status_code(st));
		return st;
	}
	if (!mr.open || strcmp(mr.sha, h.head_sha) != 0) {
		snprintf(msg, cap, "!%s is %s: nothing to hold", iid,
		         mr.open ? "at a newer head (a newer run posts)" : "not open");
		return CORE_OK;
	}
	return post_into(db, gl, public_url, &h, project_id, pipeline_id, sha, msg, cap);
}

void gatehold_sync_run(struct store *db, struct gitlab *gl, const char *public_url, int64_t run_id,
                       int64_t own_pipeline_id, const char *own_ref)
{
	struct hold_run h;
	struct mr_head mr;
	bool found = false;
	char msg[400] = "";
	PGresult *r = NULL;
	struct store_params p = {0};
	if (load_by_id(db, run_id, &h, &found) != CORE_OK || !found || !h.post[0])
		return;
	store_param_i64(&p, run_id);
	store_param_i64(&p, own_pipeline_id);
	/* every pipeline the run entered before, brought to its state now */
	if (store_run1(db,
	               "SELECT project_id, pipeline_id, sha FROM gate_pipeline_posts WHERE run_id = $1::bigint AND"
	               " pipeline_id <> $2::bigint ORDER BY pipeline_id",
	               &p, &r) == CORE_OK) {
		for (int i = 0; i < PQntuples(r); i++) {
			char sha[72];
			snprintf(sha, sizeof(sha), "%s", store_str(r, i, "sha"));
			if (post_into(db, gl, public_url, &h, store_i64(r, i, "project_id", 0),
			              store_i64(r, i, "pipeline_id", 0), sha, msg, sizeof(msg)) != CORE_OK)
				log_warn("gate run %lld: %s", (long long)run_id, msg);
		}
	}
	PQclear(r);
	/* the MR's head pipeline now: a CI pipeline made after our first post, or a merged-results one */
	if (read_mr(gl, h.project_id, h.mr_iid, &mr) != CORE_OK || !mr.open || strcmp(mr.sha, h.head_sha) != 0 ||
	    mr.hp_id == 0 || mr.hp_id == own_pipeline_id)
		return;
	/* a status posted without pipeline_id joined the newest pipeline of its sha and ref: when that is the head
	 * pipeline, the run's own post is already in it */
	if (own_pipeline_id == 0 && own_ref && strcmp(mr.hp_sha, h.head_sha) == 0 && strcmp(mr.hp_ref, own_ref) == 0)
		return;
	if (post_into(db, gl, public_url, &h, mr.hp_project, mr.hp_id, mr.hp_sha, msg, sizeof(msg)) != CORE_OK)
		log_warn("gate run %lld: %s", (long long)run_id, msg);
}
