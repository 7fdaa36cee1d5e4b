/*
 * tests/gitlab-sim/sim_pipelines.c
 *    A project's own CI pipelines and the merge API (see sim_pipelines.h).
 */
#include "sim_pipelines.h"

#include "sim_api.h"
#include "sim_hooks.h"
#include "sim_render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CI_JOB "ci"

static const char *valid_status(const char *st)
{
	static const char *ok[] = {"created", "pending", "running", "success", "failed", "canceled", "skipped", NULL};
	for (size_t i = 0; st && ok[i]; i++)
		if (strcmp(ok[i], st) == 0)
			return ok[i];
	return NULL;
}

static struct sim_status *ci_job(struct sim *s, struct sim_pipeline *pl)
{
	for (size_t i = 0; i < s->statuses.len; i++) {
		struct sim_status *st = s->statuses.items[i];
		if (st->pipeline_id == pl->id && strcmp(st->name, CI_JOB) == 0 && st->author == s->root_user)
			return st;
	}
	return NULL;
}

/* Set the CI job's status, recompute the pipeline, fire a Pipeline Hook when its status changed. */
static void set_ci_status(struct sim *s, struct sim_pipeline *pl, const char *status, bool created,
                          struct json_object *ids)
{
	struct sim_status *st = ci_job(s, pl);
	if (!st)
		st = sim_status_add(s, pl->project_id, pl->id, pl->sha, pl->ref, CI_JOB, s->root_user);
	free(st->status);
	st->status = sim_strdup(status);
	char before[32];
	snprintf(before, sizeof(before), "%s", created ? "" : pl->status);
	sim_pipeline_refresh(s, pl);
	if (strcmp(before, pl->status) != 0)
		sim_hooks_fire_pipeline(s, pl, ids);
}

static struct sim_commit *merge_commit(struct sim *s, struct sim_project *p, struct sim_mr *m, const char *ref)
{
	struct sim_commit *head = sim_project_commit(p, m->sha);
	char *msg = sim_printf("Merge branch '%s' into '%s'", m->source_branch, m->target_branch);
	struct sim_commit *c = sim_project_add_commit(s, p, ref, m->sha, msg);
	free(msg);
	if (head && head->n_files) {
		c->files = sim_xcalloc(head->n_files, sizeof(*c->files));
		for (size_t i = 0; i < head->n_files; i++) {
			c->files[i].path = sim_strdup(head->files[i].path);
			c->files[i].content = sim_strdup(head->files[i].content);
		}
		c->n_files = head->n_files;
	}
	return c;
}

static void reply_pipeline(struct sim_req *r, struct sim_pipeline *pl, struct json_object *ids, int status)
{
	bool wait = false;
	sim_param_bool(r, "wait", &wait);
	if (wait)
		for (size_t i = 0; i < json_object_array_length(ids); i++)
			sim_hooks_wait(r->s, json_object_get_int64(json_object_array_get_idx(ids, i)), 30000);
	struct json_object *o = sim_render_pipeline(r->s, pl, true);
	json_object_object_add(o, "source_sha", pl->source_sha[0] ? json_object_new_string(pl->source_sha) : NULL);
	json_object_object_add(o, "mr_iid", pl->mr_iid ? json_object_new_int64(pl->mr_iid) : NULL);
	json_object_object_add(o, "deliveries", ids);
	sim_reply_json(r, status, o);
}

/* POST /__sim/pipelines {"project_id","iid","kind":"branch|detached|merged_results","status":"running"} */
static void c_pipeline_create(struct sim_req *r)
{
	struct sim *s = r->s;
	int64_t pid = 0, iid = 0;
	if (!sim_param_int(r, "project_id", &pid) || !sim_param_int(r, "iid", &iid)) {
		sim_reply_error(r, 400, "project_id and iid (of a merge request) are required");
		return;
	}
	struct sim_project *p = sim_project_by_id(s, pid);
	struct sim_mr *m = p ? sim_mr_find(s, pid, iid) : NULL;
	if (!m) {
		sim_reply_error(r, 404, "no such merge request");
		return;
	}
	const char *kind = sim_param(r, "kind") ? sim_param(r, "kind") : "branch";
	const char *status = valid_status(sim_param(r, "status") ? sim_param(r, "status") : "running");
	if (!status) {
		sim_reply_error(r, 400,
		                "status must be created, pending, running, success, failed, canceled or skipped");
		return;
	}
	struct sim_pipeline *pl = sim_xcalloc(1, sizeof(*pl));
	char ref[96];
	if (strcmp(kind, "branch") == 0) {
		snprintf(ref, sizeof(ref), "%s", m->source_branch);
		memcpy(pl->sha, m->sha, sizeof(pl->sha));
		pl->source = sim_strdup("push");
	} else if (strcmp(kind, "detached") == 0) {
		snprintf(ref, sizeof(ref), "refs/merge-requests/%lld/head", (long long)m->iid);
		memcpy(pl->sha, m->sha, sizeof(pl->sha));
		pl->source = sim_strdup("merge_request_event");
		pl->mr_iid = m->iid;
	} else if (strcmp(kind, "merged_results") == 0) {
		snprintf(ref, sizeof(ref), "refs/merge-requests/%lld/merge", (long long)m->iid);
		struct sim_commit *c = merge_commit(s, p, m, ref);
		memcpy(pl->sha, c->sha, sizeof(pl->sha));
		memcpy(pl->source_sha, m->sha, sizeof(pl->source_sha));
		memcpy(pl->target_sha, m->base_sha, sizeof(pl->target_sha));
		pl->source = sim_strdup("merge_request_event");
		pl->mr_iid = m->iid;
	} else {
		free(pl);
		sim_reply_error(r, 400, "kind must be branch, detached or merged_results");
		return;
	}
	pl->id = s->next_pipeline_id++;
	pl->iid = p->next_pipeline_iid++;
	pl->project_id = p->id;
	pl->ref = sim_strdup(ref);
	pl->status = sim_strdup("created");
	pl->created_at = sim_now_iso();
	pl->updated_at = sim_now_iso();
	pl->user = s->root_user;
	sim_vec_push(&s->pipelines, pl);
	struct json_object *ids = json_object_new_array();
	set_ci_status(s, pl, status, true, ids);
	reply_pipeline(r, pl, ids, 201);
}

/* POST /__sim/pipelines/:id {"status":"success"}: the CI job's new status */
static void c_pipeline_status(struct sim_req *r, const char *id)
{
	int64_t n = 0;
	struct sim_pipeline *pl = sim_parse_int64(id, &n) ? sim_pipeline_by_id(r->s, n) : NULL;
	if (!pl || !ci_job(r->s, pl)) {
		sim_reply_error(r, 404, "no such CI pipeline");
		return;
	}
	const char *status = valid_status(sim_param(r, "status"));
	if (!status) {
		sim_reply_error(r, 400,
		                "status must be created, pending, running, success, failed, canceled or skipped");
		return;
	}
	struct json_object *ids = json_object_new_array();
	set_ci_status(r->s, pl, status, false, ids);
	reply_pipeline(r, pl, ids, 200);
}

bool sim_pipelines_control(struct sim_req *r)
{
	if (r->n_segs < 2 || strcmp(r->segs[0], "__sim") != 0 || strcmp(r->segs[1], "pipelines") != 0 || r->n_segs > 3)
		return false;
	if (strcmp(r->method, "POST") != 0) {
		sim_reply_error(r, 405, "method not allowed");
		return true;
	}
	if (r->body_invalid) {
		sim_reply_error(r, 400, "the body is not valid JSON");
		return true;
	}
	if (r->n_segs == 2)
		c_pipeline_create(r);
	else
		c_pipeline_status(r, r->segs[2]);
	return true;
}

/*
 * PUT /projects/:id/merge_requests/:iid/merge (doc/api/merge_requests.md "Merge a merge request"): Developer; 405
 * "Method Not Allowed" when the MR cannot be merged (not open, or its merge checks - here "Pipelines must succeed",
 * read from the head pipeline - do not pass); 409 when `sha` is not the head. merge_when_pipeline_succeeds /
 * auto_merge are not modelled.
 */
void sim_h_mr_merge(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 30);
	if (!p)
		return;
	int64_t iid = 0;
	struct sim_mr *m = sim_parse_int64(sim_req_cap(r, 1), &iid) ? sim_mr_find(r->s, p->id, iid) : NULL;
	if (!m) {
		sim_reply_message(r, 404, "404 Not found");
		return;
	}
	const char *sha = sim_param(r, "sha");
	if (sha && strcmp(sha, m->sha) != 0) {
		char *msg = sim_printf("SHA does not match HEAD of source branch: %s", m->sha);
		sim_reply_message(r, 409, msg);
		free(msg);
		return;
	}
	/* The merge API checks mergeability synchronously (MergeRequest#mergeable? -> check_mergeability, async:
	 * false): an MR still `unchecked`/`checking` is judged now, not refused. */
	m->merge_checked_at_ms = 0;
	m->merge_check_started = false;
	struct json_object *o = sim_render_mr(r->s, m, r->token), *dms = NULL;
	bool mergeable = json_object_object_get_ex(o, "detailed_merge_status", &dms) &&
	                 strcmp(json_object_get_string(dms), "mergeable") == 0;
	json_object_put(o);
	if (!mergeable) {
		sim_reply_message(r, 405, "405 Method Not Allowed");
		return;
	}
	free(m->state);
	m->state = sim_strdup("merged");
	free(m->updated_at);
	m->updated_at = sim_now_iso();
	sim_hooks_fire_mr(r->s, m, "merge", NULL, NULL);
	sim_reply_json(r, 200, sim_render_mr(r->s, m, r->token));
}
