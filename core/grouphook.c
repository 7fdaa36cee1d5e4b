/*
 * core/grouphook.c
 *    The group hook of group-hook mode and the onboarding of announced projects (see grouphook.h).
 */
#include "grouphook.h"

#include "audit.h"
#include "crypto.h"
#include "discovery.h"
#include "jsonx.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Event flags a group hook has beyond a project hook's (core/apply.h), set to false. */
static const char *const group_off_events[] = {"subgroup_events", "member_events", NULL};

struct ghook {
	int64_t id;
	bool flags_ok;
	bool mr_events; /* merge_requests_events is on */
	bool executable;
	char alert[32];
};

/* The group's hooks with our URL (every one of them: extras are deleted, so none may be overlooked). */
struct ghooks {
	const struct apply_ctx *ctx;
	const char *url;
	struct ghook *v; /* grown by on_page (bounded by GitLab's hooks-per-group limit and its answer size) */
	size_t n, cap;
};

static void ghooks_free(struct ghooks *w)
{
	if (w)
		free(w->v);
	free(w);
}

static enum core_status on_page(struct json_object *page, void *user)
{
	struct ghooks *w = user;
	for (size_t i = 0; i < json_object_array_length(page); i++) {
		struct json_object *h = json_object_array_get_idx(page, i);
		const char *url, *alert = "";
		int64_t id;
		bool b;
		if (!jsonx_str(h, "url", &url) || strcmp(url, w->url) != 0 || !jsonx_int64(h, "id", &id))
			continue;
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 8;
			w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
		}
		struct ghook *g = &w->v[w->n++];
		memset(g, 0, sizeof(*g));
		g->id = id;
		g->flags_ok = apply_hook_flags_ok(h, w->ctx ? w->ctx->ssl_verify : -1);
		g->mr_events = jsonx_bool(h, "merge_requests_events", &b) && b;
		for (int k = 0; g->flags_ok && group_off_events[k]; k++)
			if (jsonx_bool(h, group_off_events[k], &b) && b)
				g->flags_ok = false;
		/* project_events (GitLab 17.6+) must be on; a GitLab without the attribute cannot be asked for it */
		if (g->flags_ok && jsonx_bool(h, "project_events", &b) && !b)
			g->flags_ok = false;
		jsonx_str(h, "alert_status", &alert);
		snprintf(g->alert, sizeof(g->alert), "%s", alert);
		g->executable = alert[0] == '\0' || strcmp(alert, "executable") == 0;
	}
	return CORE_OK;
}

/* The project hook's body (core/apply.h) with project events on and the group-only events off. */
static struct json_object *hook_body(const struct apply_ctx *ctx)
{
	struct json_object *b = apply_hook_body(ctx);
	json_object_object_add(b, "project_events", jx_bool(1));
	for (int i = 0; group_off_events[i]; i++)
		json_object_object_add(b, group_off_events[i], jx_bool(0));
	return b;
}

static void say(char *msg, size_t cap, const char *doing, const struct gitlab_response *resp, enum core_status st)
{
	if (!msg || !cap)
		return;
	if (resp && (resp->kind == GITLAB_ERR_FORBIDDEN || resp->kind == GITLAB_ERR_NOT_FOUND))
		snprintf(msg, cap, "could not %s: %s", doing, GROUPHOOK_NEEDS);
	else
		snprintf(msg, cap, "could not %s: %.300s", doing,
		         resp && resp->message[0] ? resp->message : core_status_code(st));
}

enum core_status grouphook_probe(struct gitlab *gl, int64_t group_id, char *msg, size_t cap)
{
	char path[96];
	struct gitlab_response *resp = NULL;
	snprintf(path, sizeof(path), "/groups/%lld/hooks?per_page=1", (long long)group_id);
	enum core_status st = gitlab_request(gl, "GET", path, NULL, &resp);
	if (st != CORE_OK) {
		say(msg, cap, "list the group's webhooks", resp, st);
		if (resp && (resp->kind == GITLAB_ERR_FORBIDDEN || resp->kind == GITLAB_ERR_NOT_FOUND))
			st = CORE_ECONFLICT;
	}
	gitlab_response_free(resp);
	return st;
}

static enum core_status list_ours(struct gitlab *gl, int64_t group_id, struct ghooks *w, struct gitlab_response **resp)
{
	char path[96];
	w->n = 0;
	snprintf(path, sizeof(path), "/groups/%lld/hooks?per_page=100", (long long)group_id);
	return gitlab_paginate(gl, path, on_page, w, resp);
}

enum core_status grouphook_ensure(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t group_id,
                                  bool *changed, bool *was_down, char *msg, size_t cap)
{
	struct ghooks *w = xcalloc(1, sizeof(*w));
	struct gitlab_response *resp = NULL;
	struct json_object *body = NULL;
	char *sha = crypto_sha256_hex(ctx->webhook_secret, strlen(ctx->webhook_secret));
	char path[128], stored_sha[80] = "", alert[32] = "";
	int64_t stored_id = 0, keep_id = 0;
	bool wrote = false;
	PGresult *r = NULL;
	bool down = false;
	if (changed)
		*changed = false;
	if (was_down)
		*was_down = false;
	enum core_status st =
	    store_run1(db, "SELECT hook_id, coalesce(token_sha256, '') AS sha FROM group_hook WHERE id = 1", NULL, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		stored_id = store_i64(r, 0, "hook_id", 0);
		snprintf(stored_sha, sizeof(stored_sha), "%s", store_str(r, 0, "sha"));
	}
	PQclear(r);
	r = NULL;
	if (st != CORE_OK)
		goto out;
	w->ctx = ctx;
	w->url = ctx->hook_url;
	st = list_ours(gl, group_id, w, &resp);
	if (st != CORE_OK) {
		say(msg, cap, "list the group's webhooks", resp, st);
		goto out;
	}
	struct ghook *keep = NULL;
	for (size_t i = 0; i < w->n && !keep; i++)
		if (w->v[i].id == stored_id && w->v[i].executable)
			keep = &w->v[i];
	for (size_t i = 0; i < w->n && !keep; i++)
		if (w->v[i].executable)
			keep = &w->v[i];
	down = stored_id != 0 && (!keep || !keep->mr_events);
	if (!keep) {
		body = hook_body(ctx);
		snprintf(path, sizeof(path), "/groups/%lld/hooks", (long long)group_id);
		gitlab_response_free(resp);
		resp = NULL;
		st = gitlab_request(gl, "POST", path, body, &resp);
		if (st != CORE_OK || !jsonx_int64(resp->json, "id", &keep_id)) {
			say(msg, cap, "create the group webhook", resp, st);
			if (st == CORE_OK)
				st = CORE_EUPSTREAM;
			goto out;
		}
		wrote = true;
		snprintf(alert, sizeof(alert), "executable");
	} else {
		keep_id = keep->id;
		snprintf(alert, sizeof(alert), "%s", keep->alert);
		if (!keep->flags_ok || keep_id != stored_id || strcmp(stored_sha, sha) != 0) {
			body = hook_body(ctx);
			snprintf(path, sizeof(path), "/groups/%lld/hooks/%lld", (long long)group_id,
			         (long long)keep_id);
			gitlab_response_free(resp);
			resp = NULL;
			st = gitlab_request(gl, "PUT", path, body, &resp);
			if (st != CORE_OK) {
				say(msg, cap, "update the group webhook", resp, st);
				goto out;
			}
			wrote = true;
		}
	}
	for (size_t i = 0; i < w->n; i++) {
		if (w->v[i].id == keep_id)
			continue;
		snprintf(path, sizeof(path), "/groups/%lld/hooks/%lld", (long long)group_id, (long long)w->v[i].id);
		gitlab_response_free(resp);
		resp = NULL;
		st = gitlab_request(gl, "DELETE", path, NULL, &resp);
		if (st != CORE_OK && !(resp && resp->kind == GITLAB_ERR_NOT_FOUND)) {
			say(msg, cap, "delete a duplicate or disabled group webhook", resp, st);
			goto out;
		}
		st = CORE_OK;
		wrote = true;
	}
	struct store_params p = {0};
	store_param_i64(&p, group_id);
	store_param_i64(&p, keep_id);
	store_param_str(&p, ctx->hook_url);
	store_param_str(&p, sha);
	store_param_str(&p, alert[0] ? alert : NULL);
	st = store_run1(db,
	                "INSERT INTO group_hook (id, group_id, hook_id, hook_url, token_sha256, alert_status)"
	                " VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET group_id = $1, hook_id = $2,"
	                " hook_url = $3, token_sha256 = $4, alert_status = $5, checked_at = now()",
	                &p, NULL);
	if (st == CORE_OK && msg && cap)
		snprintf(msg, cap, "%s group webhook %lld", wrote ? "repaired or created" : "checked",
		         (long long)keep_id);
	if (changed)
		*changed = wrote;
	if (was_down && st == CORE_OK)
		*was_down = down;
out:
	gitlab_response_free(resp);
	json_object_put(body);
	free(sha);
	ghooks_free(w);
	return st;
}

enum core_status grouphook_remove(struct store *db, struct gitlab *gl, const char *hook_url, int64_t group_id,
                                  char *msg, size_t cap)
{
	struct ghooks *w = xcalloc(1, sizeof(*w));
	struct gitlab_response *resp = NULL;
	char path[128];
	w->url = hook_url;
	enum core_status st = list_ours(gl, group_id, w, &resp);
	if (st != CORE_OK)
		say(msg, cap, "list the group's webhooks", resp, st);
	for (size_t i = 0; st == CORE_OK && i < w->n; i++) {
		snprintf(path, sizeof(path), "/groups/%lld/hooks/%lld", (long long)group_id, (long long)w->v[i].id);
		gitlab_response_free(resp);
		resp = NULL;
		st = gitlab_request(gl, "DELETE", path, NULL, &resp);
		if (st != CORE_OK && resp && resp->kind == GITLAB_ERR_NOT_FOUND)
			st = CORE_OK;
		if (st != CORE_OK)
			say(msg, cap, "delete the group webhook", resp, st);
	}
	if (st == CORE_OK)
		st = store_run1(db, "DELETE FROM group_hook WHERE id = 1", NULL, NULL);
	gitlab_response_free(resp);
	ghooks_free(w);
	return st;
}

enum core_status grouphook_active(struct store *db, bool *out)
{
	PGresult *r = NULL;
	*out = false;
	enum core_status st = store_run1(db, "SELECT 1 FROM group_hook WHERE id = 1", NULL, &r);
	if (st == CORE_OK)
		*out = PQntuples(r) > 0;
	PQclear(r);
	return st;
}

/* Mark the repos whose ids sql selects (column "id") for apply, in one transaction; force: even when their wanted
 * state equals the applied one. */
static enum core_status mark_ids(struct store *db, const char *sql, const struct store_params *p, bool force,
                                 struct gateconfig_marked *out)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	int64_t *ids = NULL;
	size_t n = 0;
	enum core_status st = store_get_begin(db, &c);
	if (st != CORE_OK)
		return st;
	st = store_run(c, sql, p, &r);
	if (st == CORE_OK) {
		n = (size_t)PQntuples(r);
		ids = xmalloc((n ? n : 1) * sizeof(*ids));
		for (size_t i = 0; i < n; i++)
			ids[i] = store_i64(r, (int)i, "id", 0);
	}
	if (st == CORE_OK && n > 0)
		st = force ? gateconfig_mark_apply(c, false, NULL, ids, n, ids, n, false, out)
		           : gateconfig_mark_apply(c, false, NULL, ids, n, NULL, 0, false, out);
	if (st == CORE_OK)
		st = store_commit(c);
	else
		store_rollback(c);
	PQclear(r);
	store_put(db, c);
	free(ids);
	return st;
}

enum core_status grouphook_mark_gated(struct store *db, struct gateconfig_marked *out)
{
	return mark_ids(db,
	                "SELECT r.id FROM repos r JOIN repo_gitlab_state s ON s.repo_id = r.id"
	                " WHERE r.removed_at IS NULL AND NOT r.archived AND NOT r.marked_for_deletion"
	                " AND s.applied_state <> 'off' ORDER BY r.id",
	                NULL, true, out);
}

enum core_status grouphook_onboard(struct store *db, struct gitlab *gl, int64_t project_id,
                                   struct gateconfig_marked *out, char *msg, size_t cap)
{
	char path[64];
	struct gitlab_response *resp = NULL;
	bool inserted = false;
	long long id = (long long)project_id;
	snprintf(path, sizeof(path), "/projects/%lld", id);
	enum core_status st = gitlab_request(gl, "GET", path, NULL, &resp);
	if (st != CORE_OK) {
		say(msg, cap, "read the new project", resp, st);
		gitlab_response_free(resp);
		return st;
	}
	st = discovery_upsert_project(db, resp->json, &inserted);
	gitlab_response_free(resp);
	if (st == CORE_EINVAL) {
		snprintf(msg, cap, "GitLab's project %lld has no id or path: not stored", id);
		return CORE_OK;
	}
	if (st != CORE_OK) {
		snprintf(msg, cap, "could not store project %lld (%s)", id, core_status_code(st));
		return st;
	}
	/* marked only when its wanted state (from the inherited config) differs from the applied one */
	struct store_params p = {0};
	store_param_i64(&p, project_id);
	st = mark_ids(db, "SELECT id FROM repos WHERE id = $1", &p, false, out);
	if (st == CORE_OK)
		snprintf(msg, cap, "project %lld %s; %s", id, inserted ? "added" : "updated",
		         out->n ? "marked for apply" : "nothing to apply");
	return st;
}

enum core_status grouphook_audit(struct store *db, const char *actor, const char *from, const char *to,
                                 struct json_object *details)
{
	struct store_conn *c = NULL;
	struct json_object *b = jx_object(), *a = jx_object();
	json_object_object_add(b, "hook_mode", jx_str(from));
	json_object_object_add(a, "hook_mode", jx_str(to));
	enum core_status st = store_get(db, &c);
	if (st == CORE_OK)
		st = audit_write(c, actor, "settings.hook_mode", NULL, b, a, details);
	store_put(db, c);
	json_object_put(b);
	json_object_put(a);
	return st;
}

enum core_status grouphook_plan_check(struct gitlab *gl, int64_t group_id, char *msg, size_t cap)
{
	char path[64];
	struct gitlab_response *resp = NULL;
	const char *plan = NULL;
	snprintf(path, sizeof(path), "/namespaces/%lld", (long long)group_id);
	enum core_status st = gitlab_request(gl, "GET", path, NULL, &resp);
	if (st != CORE_OK) {
		bool transport = !resp || resp->http_status == 0 || resp->kind == GITLAB_ERR_SERVER ||
		                 resp->kind == GITLAB_ERR_RATE_LIMITED;
		if (transport)
			say(msg, cap, "read the group's plan", resp, st);
		gitlab_response_free(resp);
		return transport ? st : CORE_OK; /* an answer without a plan: the test delivery decides */
	}
	if (jsonx_str(resp->json, "plan", &plan) && (strcmp(plan, "free") == 0 || strcmp(plan, "bronze") == 0)) {
		snprintf(
		    msg, cap,
		    "%s: GitLab reports the group's plan as %s, where group webhooks deliver no event; the project "
		    "webhooks are kept",
		    GROUPHOOK_NEEDS, plan);
		st = CORE_ECONFLICT;
	}
	gitlab_response_free(resp);
	return st;
}

/* The id of the newest webhook event recorded (0 when none). */
static enum core_status last_event_id(struct store *db, int64_t *out)
{
	PGresult *r = NULL;
	*out = 0;
	enum core_status st = store_run1(db, "SELECT coalesce(max(id), 0) AS id FROM webhook_events", NULL, &r);
	if (st == CORE_OK)
		*out = store_i64(r, 0, "id", 0);
	PQclear(r);
	return st;
}

/* Whether a Push Hook event newer than after_id was recorded (our hooks never ask for push events, so only a test
 * delivery through a hook carrying our secret records one). */
static enum core_status push_seen(struct store *db, int64_t after_id, bool *out)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, after_id);
	*out = false;
	enum core_status st = store_run1(
	    db, "SELECT 1 FROM webhook_events WHERE id > $1::bigint AND event_type = 'Push Hook' LIMIT 1", &p, &r);
	if (st == CORE_OK)
		*out = PQntuples(r) > 0;
	PQclear(r);
	return st;
}

enum core_status grouphook_prove(struct store *db, struct gitlab *gl, const char *hook_url, int64_t group_id,
                                 int wait_s, char *msg, size_t cap)
{
	PGresult *r = NULL;
	struct gitlab_response *resp = NULL;
	int64_t hook_id = 0, mark = 0;
	char path[128];
	enum core_status st = store_run1(db, "SELECT hook_id FROM group_hook WHERE id = 1", NULL, &r);
	if (st == CORE_OK && PQntuples(r) > 0)
		hook_id = store_i64(r, 0, "hook_id", 0);
	PQclear(r);
	if (st != CORE_OK)
		return st;
	if (!hook_id) {
		snprintf(msg, cap, "no group webhook recorded to test");
		return CORE_ECONFLICT;
	}
	st = last_event_id(db, &mark);
	if (st != CORE_OK)
		return st;
	/* push_events: its sample needs only a project with commits (merge_requests_events needs an MR in the group's
	 * first project), and no hook of ours asks for push events, so its arrival is this test's and no other's */
	snprintf(path, sizeof(path), "/groups/%lld/hooks/%lld/test/push_events", (long long)group_id,
	         (long long)hook_id);
	st = gitlab_request(gl, "POST", path, NULL, &resp);
	if (st != CORE_OK) {
		if (resp && resp->kind == GITLAB_ERR_NOT_FOUND)
			snprintf(msg, cap,
			         "could not test the group webhook: GitLab has no test delivery for group webhooks (it "
			         "needs GitLab 17.1 or later); the project webhooks are kept");
		else if (resp && resp->kind == GITLAB_ERR_INVALID)
			snprintf(msg, cap,
			         "GitLab could not deliver a test event of the group webhook to %.200s (%.200s): is "
			         "that URL "
			         "reachable from GitLab? the project webhooks are kept",
			         hook_url, resp->message[0] ? resp->message : "422");
		else if (resp && resp->kind == GITLAB_ERR_RATE_LIMITED)
			snprintf(
			    msg, cap,
			    "GitLab allows 5 webhook tests a minute: try again in a minute; the project webhooks are "
			    "kept");
		else
			say(msg, cap, "test the group webhook", resp, st);
		bool refused = resp && (resp->kind == GITLAB_ERR_NOT_FOUND || resp->kind == GITLAB_ERR_INVALID ||
		                        resp->kind == GITLAB_ERR_RATE_LIMITED || resp->kind == GITLAB_ERR_FORBIDDEN);
		gitlab_response_free(resp);
		return refused ? CORE_ECONFLICT : st;
	}
	gitlab_response_free(resp);
	/* GitLab delivers the test before it answers; a double, a proxy or a queue may take longer */
	bool seen = false;
	for (int i = 0; i <= wait_s * 4 && !seen; i++) {
		st = push_seen(db, mark, &seen);
		if (st != CORE_OK)
			return st;
		if (!seen) {
			struct timespec ts = {0, 250 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (!seen) {
		snprintf(
		    msg, cap,
		    "GitLab accepted a test delivery of the group webhook, but it did not reach %.200s within %d "
		    "seconds: the group is not on Premium or Ultimate, that URL is not reachable from GitLab, or the "
		    "GitLab is too old; the project webhooks are kept",
		    hook_url, wait_s);
		return CORE_ECONFLICT;
	}
	snprintf(msg, cap, "the group webhook delivered a test event to %.200s", hook_url);
	return CORE_OK;
}
