/*
 * core/apply.c
 *    Reconciling one repo's webhook and merge setting with its gating config.
 */
#include "apply.h"

#include "crypto.h"
#include "gate.h"
#include "gateconfig.h"
#include "jsonx.h"
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MERGE_SETTING "only_allow_merge_if_pipeline_succeeds"
#define LOCK_CLASS    "7201"

/* Event flags our hook sets to false (GitLab defaults push_events to true, so it is always sent). */
static const char *const off_events[] = {"push_events",
                                         "tag_push_events",
                                         "issues_events",
                                         "confidential_issues_events",
                                         "note_events",
                                         "confidential_note_events",
                                         "job_events",
                                         "wiki_page_events",
                                         "deployment_events",
                                         "releases_events",
                                         NULL};

void apply_hook_url(const char *public_url, char *buf, size_t cap)
{
	size_t n = strlen(public_url);
	while (n > 0 && public_url[n - 1] == '/')
		n--;
	snprintf(buf, cap, "%.*s/hooks/gitlab", (int)n, public_url);
}

const char *apply_outcome_name(enum apply_outcome o)
{
	switch (o) {
	case APPLY_UNCHANGED: return "unchanged";
	case APPLY_CHANGED: return "changed";
	case APPLY_SKIPPED: return "skipped";
	case APPLY_ERROR: return "error";
	}
	return "error";
}

void apply_result_clear(struct apply_result *r)
{
	if (!r)
		return;
	json_object_put(r->plan);
	r->plan = NULL;
}

struct hook_info {
	int64_t id;
	bool flags_ok;
	char alert[32];
};

struct hooks_walk {
	const struct apply_ctx *ctx;
	struct hook_info v[64]; /* our copies; more than 64 duplicates are handled over several applies */
	size_t n;
	int pages;
};

static bool hook_flags_ok(struct json_object *h, const struct apply_ctx *ctx)
{
	bool b;
	if (!jsonx_bool(h, "merge_requests_events", &b) || !b)
		return false;
	/* pipeline events: the verdict is posted into each new head pipeline (core/gatehold.h) */
	if (!jsonx_bool(h, "pipeline_events", &b) || !b)
		return false;
	for (int i = 0; off_events[i]; i++)
		if (jsonx_bool(h, off_events[i], &b) && b)
			return false;
	if (jsonx_bool(h, "enable_ssl_verification", &b) && b != ctx->ssl_verify)
		return false;
	return true;
}

static enum core_status on_hooks_page(struct json_object *page, void *user)
{
	struct hooks_walk *w = user;
	w->pages++;
	for (size_t i = 0; i < json_object_array_length(page); i++) {
		struct json_object *h = json_object_array_get_idx(page, i);
		const char *url;
		int64_t id;
		if (!jsonx_str(h, "url", &url) || strcmp(url, w->ctx->hook_url) != 0 || !jsonx_int64(h, "id", &id))
			continue;
		if (w->n >= sizeof(w->v) / sizeof(w->v[0]))
			continue;
		struct hook_info *hi = &w->v[w->n++];
		hi->id = id;
		hi->flags_ok = hook_flags_ok(h, w->ctx);
		const char *alert = "";
		jsonx_str(h, "alert_status", &alert);
		snprintf(hi->alert, sizeof(hi->alert), "%s", alert);
	}
	return CORE_OK;
}

/* GitLab stops delivering to a hook after repeated failures (temporarily_disabled, disabled); "" is an old GitLab. */
static bool hook_executable(const struct hook_info *h)
{
	return h->alert[0] == '\0' || strcmp(h->alert, "executable") == 0;
}

static struct json_object *hook_body(const struct apply_ctx *ctx)
{
	struct json_object *b = json_object_new_object();
	json_object_object_add(b, "url", json_object_new_string(ctx->hook_url));
	json_object_object_add(b, "name", json_object_new_string("mrgate"));
	json_object_object_add(b, "token", json_object_new_string(ctx->webhook_secret));
	json_object_object_add(b, "merge_requests_events", json_object_new_boolean(1));
	json_object_object_add(b, "pipeline_events", json_object_new_boolean(1));
	for (int i = 0; off_events[i]; i++)
		json_object_object_add(b, off_events[i], json_object_new_boolean(0));
	json_object_object_add(b, "enable_ssl_verification", json_object_new_boolean(ctx->ssl_verify));
	return b;
}

struct json_object *apply_plan_actions(struct json_object *plan)
{
	struct json_object *out = json_object_new_array(), *hooks = jsonx_get(plan, "hooks"), *v;
	char buf[160];
	int64_t n = 0;
	if (jsonx_int64(hooks, "create", &n) && n > 0)
		json_object_array_add(out, json_object_new_string("create webhook"));
	if ((v = jsonx_get(hooks, "update")) && json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0)
		json_object_array_add(out, json_object_new_string("update webhook"));
	if ((v = jsonx_get(hooks, "delete")) && json_object_is_type(v, json_type_array) &&
	    (n = (int64_t)json_object_array_length(v)) > 0) {
		snprintf(buf, sizeof(buf), n == 1 ? "delete webhook" : "delete %lld webhooks", (long long)n);
		json_object_array_add(out, json_object_new_string(buf));
	}
	struct json_object *settings = jsonx_get(plan, "settings");
	for (size_t i = 0;
	     settings && json_object_is_type(settings, json_type_array) && i < json_object_array_length(settings);
	     i++) {
		struct json_object *ch = jsonx_get(json_object_array_get_idx(settings, i), MERGE_SETTING);
		bool to = false;
		if (ch && jsonx_bool(ch, "to", &to))
			json_object_array_add(out, json_object_new_string(to ? "turn on Pipelines must succeed"
			                                                     : "turn off Pipelines must succeed"));
	}
	if (jsonx_int64(plan, "open_mrs_to_gate", &n) && n > 0) {
		snprintf(buf, sizeof(buf), "gate %lld open merge request%s", (long long)n, n == 1 ? "" : "s");
		json_object_array_add(out, json_object_new_string(buf));
	}
	if (jsonx_int64(plan, "statuses_to_clear", &n) && n > 0) {
		snprintf(buf, sizeof(buf), "clear the gate status of %lld merge request%s", (long long)n,
		         n == 1 ? "" : "s");
		json_object_array_add(out, json_object_new_string(buf));
	}
	return out;
}

/* Turn a failed GitLab call into advice in res. */
static void advise(struct apply_result *res, const char *doing, const char *what_needs, enum core_status st,
                   const struct gitlab_response *resp, const struct apply_ctx *ctx)
{
	enum gitlab_error kind = resp ? resp->kind : GITLAB_ERR_INTERNAL;
	const char *msg = resp && resp->message[0] ? resp->message : core_status_code(st);
	res->outcome = APPLY_ERROR;
	res->retryable = false;
	switch (kind) {
	case GITLAB_ERR_FORBIDDEN:
		snprintf(res->message, sizeof(res->message),
		         "could not %s: the token needs Maintainer on this project to %s", doing, what_needs);
		break;
	case GITLAB_ERR_SCOPE:
		snprintf(res->message, sizeof(res->message),
		         "could not %s: the token lacks the api scope; replace it with a token that has api", doing);
		break;
	case GITLAB_ERR_NOT_FOUND:
		snprintf(res->message, sizeof(res->message),
		         "could not %s: the project is gone or the token cannot see it", doing);
		break;
	case GITLAB_ERR_INVALID:
		if (strstr(doing, "webhook") && resp && (strcasestr(resp->body, "url") || strcasestr(msg, "url")))
			snprintf(res->message, sizeof(res->message),
			         "GitLab refused the webhook URL %.200s: on self-managed GitLab, allow requests to the "
			         "local "
			         "network or set MRGATE_PUBLIC_URL to an address GitLab can reach",
			         ctx->hook_url);
		else
			snprintf(res->message, sizeof(res->message),
			         "could not %s: GitLab rejected the request: %.300s", doing, msg);
		break;
	case GITLAB_ERR_RATE_LIMITED:
	case GITLAB_ERR_SERVER:
	case GITLAB_ERR_UNREACHABLE:
	case GITLAB_ERR_TIMEOUT:
	case GITLAB_ERR_MAYBE_APPLIED:
		res->retryable = true;
		snprintf(res->message, sizeof(res->message), "could not %s: %.300s (will be retried)", doing, msg);
		break;
	default: snprintf(res->message, sizeof(res->message), "could not %s: %.300s", doing, msg); break;
	}
}

/* Append "what [id]" to the summary of changes. */
static void note(char *buf, size_t cap, const char *what, int64_t id)
{
	size_t len = strlen(buf);
	if (len + 3 >= cap)
		return;
	if (id)
		snprintf(buf + len, cap - len, "%s%s %lld", len ? "; " : "", what, (long long)id);
	else
		snprintf(buf + len, cap - len, "%s%s", len ? "; " : "", what);
}

struct repo_row {
	bool archived, pending, removed;
	char want[16];
	char have[16]; /* the applied state recorded by the last successful apply */
	int64_t hook_id;
	char token_sha[80];
	bool prior_known, prior, changed;
};

static enum core_status load_repo(struct store_conn *c, const char *id, struct repo_row *row)
{
	PGresult *r = NULL;
	const char *p[] = {id};
	enum core_status st = store_exec(
	    c,
	    "SELECT rs.archived, rs.marked_for_deletion, rs.removed_at IS NOT NULL AS removed, rs.gitlab_want,"
	    " rs.gitlab_have,"
	    " gs.hook_id, gs.hook_token_sha256, gs.merge_setting_prior, coalesce(gs.merge_setting_changed, false)"
	    " AS merge_changed FROM repo_status rs LEFT JOIN repo_gitlab_state gs ON gs.repo_id = rs.id"
	    " WHERE rs.id = $1",
	    1, p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK) {
		row->archived = store_bool(r, 0, "archived", false);
		row->pending = store_bool(r, 0, "marked_for_deletion", false);
		row->removed = store_bool(r, 0, "removed", false);
		snprintf(row->want, sizeof(row->want), "%s", store_str(r, 0, "gitlab_want"));
		const char *have = store_str(r, 0, "gitlab_have");
		snprintf(row->have, sizeof(row->have), "%s", have ? have : "off");
		row->hook_id = store_i64(r, 0, "hook_id", 0);
		const char *sha = store_str(r, 0, "hook_token_sha256");
		snprintf(row->token_sha, sizeof(row->token_sha), "%s", sha ? sha : "");
		row->prior_known = store_str(r, 0, "merge_setting_prior") != NULL;
		row->prior = store_bool(r, 0, "merge_setting_prior", false);
		row->changed = store_bool(r, 0, "merge_changed", false);
	}
	PQclear(r);
	return st;
}

/*
 * Gating starts (want_hook) or stops for the repo: queue gate runs for its open MRs, or post final statuses that
 * unblock them. Runs once GitLab is in the new state and before that state is recorded: false (res holds the
 * error) keeps the old applied state, so the next apply makes the same transition and calls again.
 */
static bool open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool want_hook, bool dry_run,
                     struct apply_result *res, char *done, size_t done_cap)
{
	struct gate_open_mrs om;
	enum core_status st = want_hook ? gate_enqueue_open_mrs(db, gl, repo_id, dry_run, &om)
	                                : gate_clear_open_mrs(db, gl, repo_id, dry_run, &om);
	res->reads += om.reads;
	res->writes += om.writes;
	if (st != CORE_OK && dry_run) {
		/* a plan is still a plan without this count */
		log_debug("apply repo %lld (dry run): open merge requests not counted: %s", (long long)repo_id,
		          om.error[0] ? om.error : core_status_code(st));
		return true;
	}
	if (dry_run) {
		json_object_object_add(res->plan, want_hook ? "open_mrs_to_gate" : "statuses_to_clear",
		                       json_object_new_int(want_hook ? om.queued : om.cleared));
		return true;
	}
	if (st != CORE_OK) {
		res->outcome = APPLY_ERROR;
		res->retryable = om.error[0] ? om.retryable : true; /* no message: the database, transient */
		snprintf(res->message, sizeof(res->message), "%s%s%s", done, done[0] ? "; " : "",
		         om.error[0] ? om.error
		         : want_hook
		             ? "could not queue gate runs for the open merge requests (will be retried)"
		             : "could not clear the gate's statuses on the open merge requests (will be retried)");
		return false;
	}
	char what[120];
	if (want_hook && om.queued > 0)
		snprintf(what, sizeof(what), "queued gate runs for %d open merge request%s", om.queued,
		         om.queued == 1 ? "" : "s");
	else if (!want_hook && om.cleared > 0)
		snprintf(what, sizeof(what), "posted %d final \"gate removed\" status%s on open merge requests",
		         om.cleared, om.cleared == 1 ? "" : "es");
	else
		return true;
	note(done, done_cap, what, 0);
	return true;
}

enum core_status apply_repo(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t repo_id,
                            bool dry_run, struct apply_result *res_out)
{
	return apply_repo_want(db, gl, ctx, repo_id, NULL, dry_run, res_out);
}

enum core_status apply_repo_want(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t repo_id,
                                 const struct apply_want *want, bool dry_run, struct apply_result *res)
{
	memset(res, 0, sizeof(*res));
	res->plan = json_object_new_object();
	struct json_object *plan_hooks = json_object_new_object(), *upd = json_object_new_array(),
	                   *del = json_object_new_array(), *settings = json_object_new_array();
	json_object_object_add(plan_hooks, "create", json_object_new_int(0));
	json_object_object_add(plan_hooks, "update", upd);
	json_object_object_add(plan_hooks, "delete", del);
	json_object_object_add(res->plan, "hooks", plan_hooks);
	json_object_object_add(res->plan, "settings", settings);

	struct store_conn *c = NULL;
	struct gitlab_response *resp = NULL;
	struct json_object *body = NULL;
	struct hooks_walk *w = calloc(1, sizeof(*w));
	char *secret_sha = crypto_sha256_hex(ctx->webhook_secret, strlen(ctx->webhook_secret));
	char id[24], path[160], done[400] = "";
	bool locked = false;
	struct repo_row row;
	memset(&row, 0, sizeof(row));
	snprintf(id, sizeof(id), "%lld", (long long)repo_id);
	const char *pid[] = {id};
	enum core_status st = (!w || !secret_sha) ? CORE_ENOMEM : store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	if (!dry_run) {
		if ((st = store_exec(c, "SELECT pg_advisory_lock(" LOCK_CLASS ", hashint8($1::bigint))", 1, pid,
		                     NULL)) != CORE_OK)
			goto out;
		locked = true;
	}
	if ((st = load_repo(c, id, &row)) != CORE_OK)
		goto out;

	/* state to store at the end */
	int64_t hook_id = row.hook_id;
	char token_sha[80], alert[32] = "";
	snprintf(token_sha, sizeof(token_sha), "%s", row.token_sha);
	bool prior_known = row.prior_known, prior = row.prior, merge_changed = row.changed;
	bool want_hook = want ? want->hook : strcmp(row.want, "off") != 0;
	bool want_block = want_hook && (want ? want->block_merge : strcmp(row.want, "hook+merge") == 0);
	const char *want_name = !want_hook ? "off" : want_block ? "hook+merge" : "hook";
	/* group-hook mode: the group hook delivers this repo's events, so our project hook is not wanted */
	bool want_project_hook = want_hook && !ctx->group_mode;

	if (row.removed || row.archived || row.pending) {
		res->outcome = APPLY_SKIPPED;
		snprintf(res->message, sizeof(res->message), "skipped: the repository is %s",
		         row.removed    ? "no longer listed by GitLab"
		         : row.archived ? "archived"
		                        : "pending deletion");
		goto store;
	}

	/* 1. our hooks */
	w->ctx = ctx;
	snprintf(path, sizeof(path), "/projects/%s/hooks?per_page=100", id);
	enum core_status gst = gitlab_paginate(gl, path, on_hooks_page, w, &resp);
	res->reads += w->pages + (gst != CORE_OK ? 1 : 0);
	if (gst != CORE_OK) {
		advise(res, "list the project's webhooks", "manage webhooks", gst, resp, ctx);
		goto store;
	}
	/* a copy GitLab disabled (alert_status not executable) delivers nothing: it is replaced, never kept */
	struct hook_info *keep = NULL;
	if (want_project_hook) {
		for (size_t i = 0; i < w->n && !keep; i++)
			if (w->v[i].id == row.hook_id && hook_executable(&w->v[i]))
				keep = &w->v[i];
		for (size_t i = 0; i < w->n && !keep; i++)
			if (hook_executable(&w->v[i]))
				keep = &w->v[i];
	}
	if (want_project_hook && !keep) {
		json_object_object_add(plan_hooks, "create", json_object_new_int(1));
		res->writes++;
		if (!dry_run) {
			body = hook_body(ctx);
			snprintf(path, sizeof(path), "/projects/%s/hooks", id);
			gitlab_response_free(resp);
			resp = NULL;
			gst = gitlab_request(gl, "POST", path, body, &resp);
			int64_t new_id = 0;
			if (gst == CORE_OK && jsonx_int64(resp->json, "id", &new_id)) {
				hook_id = new_id;
				snprintf(token_sha, sizeof(token_sha), "%s", secret_sha);
				snprintf(alert, sizeof(alert), "executable");
				note(done, sizeof(done), "created webhook", new_id);
			} else if (resp && resp->kind == GITLAB_ERR_MAYBE_APPLIED) {
				/* it may exist now: re-read, then decide (never POST blindly twice) */
				w->n = 0;
				w->pages = 0;
				gitlab_response_free(resp);
				resp = NULL;
				snprintf(path, sizeof(path), "/projects/%s/hooks?per_page=100", id);
				enum core_status rst = gitlab_paginate(gl, path, on_hooks_page, w, &resp);
				res->reads += w->pages;
				for (size_t i = 0; rst == CORE_OK && i < w->n && !keep; i++)
					if (hook_executable(&w->v[i]))
						keep = &w->v[i]; /* the one just created; the delete step spares it */
				if (keep) {
					hook_id = keep->id;
					snprintf(token_sha, sizeof(token_sha), "%s", secret_sha);
					snprintf(alert, sizeof(alert), "%s", keep->alert);
					note(done, sizeof(done), "created webhook", hook_id);
				} else {
					res->outcome = APPLY_ERROR;
					res->retryable = true;
					snprintf(
					    res->message, sizeof(res->message),
					    "could not create the webhook: GitLab did not confirm it and it is not "
					    "listed (will be retried)");
					goto store;
				}
			} else {
				advise(res, "create the webhook", "manage webhooks", gst, resp, ctx);
				goto store;
			}
		}
	} else if (keep) {
		hook_id = keep->id;
		snprintf(alert, sizeof(alert), "%s", keep->alert);
		bool token_ok = row.hook_id == keep->id && strcmp(row.token_sha, secret_sha) == 0;
		if (!keep->flags_ok || !token_ok) {
			json_object_array_add(upd, json_object_new_int64(keep->id));
			res->writes++;
			if (!dry_run) {
				json_object_put(body);
				body = hook_body(ctx);
				snprintf(path, sizeof(path), "/projects/%s/hooks/%lld", id, (long long)keep->id);
				gitlab_response_free(resp);
				resp = NULL;
				gst = gitlab_request(gl, "PUT", path, body, &resp);
				if (gst != CORE_OK) {
					advise(res, "update the webhook", "manage webhooks", gst, resp, ctx);
					goto store;
				}
				snprintf(token_sha, sizeof(token_sha), "%s", secret_sha);
				const char *a = NULL;
				if (jsonx_str(resp->json, "alert_status", &a))
					snprintf(alert, sizeof(alert), "%s", a);
				note(done, sizeof(done), "updated webhook", keep->id);
			}
		}
	}
	for (size_t i = 0; i < w->n; i++) {
		if (keep && w->v[i].id == keep->id)
			continue;
		json_object_array_add(del, json_object_new_int64(w->v[i].id));
		res->writes++;
		if (dry_run)
			continue;
		snprintf(path, sizeof(path), "/projects/%s/hooks/%lld", id, (long long)w->v[i].id);
		gitlab_response_free(resp);
		resp = NULL;
		gst = gitlab_request(gl, "DELETE", path, NULL, &resp);
		if (gst != CORE_OK && !(resp && resp->kind == GITLAB_ERR_NOT_FOUND)) {
			advise(res, "delete the webhook", "manage webhooks", gst, resp, ctx);
			goto store;
		}
		note(done, sizeof(done), "deleted duplicate or unwanted webhook", w->v[i].id);
	}
	if (!want_project_hook) {
		hook_id = 0;
		token_sha[0] = '\0';
		alert[0] = '\0';
	}

	/* 2. the merge setting, only when it is wanted or a restore is owed */
	bool restore_owed = merge_changed && !want_block;
	if (want_block || restore_owed) {
		snprintf(path, sizeof(path), "/projects/%s", id);
		gitlab_response_free(resp);
		resp = NULL;
		gst = gitlab_request(gl, "GET", path, NULL, &resp);
		res->reads++;
		if (gst != CORE_OK) {
			advise(res, "read the project's settings", "change its merge settings", gst, resp, ctx);
			goto store;
		}
		bool archived = false, cur = false;
		const char *mfd = NULL;
		jsonx_bool(resp->json, "archived", &archived);
		if (archived || jsonx_str(resp->json, "marked_for_deletion_at", &mfd) ||
		    jsonx_str(resp->json, "marked_for_deletion_on", &mfd)) {
			res->outcome = APPLY_SKIPPED;
			snprintf(res->message, sizeof(res->message), "skipped: the repository is %s",
			         archived ? "archived" : "pending deletion");
			goto store;
		}
		jsonx_bool(resp->json, MERGE_SETTING, &cur); /* null reads as false */
		bool target = want_block ? true : prior;
		bool write = want_block ? !cur : cur != prior;
		if (write) {
			struct json_object *s = json_object_new_object(), *ch = json_object_new_object();
			json_object_object_add(ch, "from", json_object_new_boolean(cur));
			json_object_object_add(ch, "to", json_object_new_boolean(target));
			json_object_object_add(s, MERGE_SETTING, ch);
			json_object_array_add(settings, s);
			res->writes++;
		}
		if (write && !dry_run) {
			if (want_block && !merge_changed) {
				/* record the prior value before changing it, so a crash cannot lose it */
				prior_known = true;
				prior = cur;
				merge_changed = true;
				const char *pp[] = {id, prior ? "t" : "f"};
				if ((st = store_exec(c,
				                     "INSERT INTO repo_gitlab_state (repo_id, merge_setting_prior,"
				                     " merge_setting_changed) VALUES ($1, $2, true)"
				                     " ON CONFLICT (repo_id) DO UPDATE SET merge_setting_prior = $2,"
				                     " merge_setting_changed = true",
				                     2, pp, NULL)) != CORE_OK)
					goto out;
			}
			json_object_put(body);
			body = json_object_new_object();
			json_object_object_add(body, MERGE_SETTING, json_object_new_boolean(target));
			gitlab_response_free(resp);
			resp = NULL;
			gst = gitlab_request(gl, "PUT", path, body, &resp);
			if (gst != CORE_OK) {
				advise(res,
				       want_block ? "turn on \"Pipelines must succeed\""
				                  : "restore \"Pipelines must succeed\"",
				       "change its merge settings", gst, resp, ctx);
				goto store;
			}
			note(done, sizeof(done), want_block ? "turned on " MERGE_SETTING : "restored " MERGE_SETTING,
			     0);
		}
		if (!want_block && !dry_run) {
			merge_changed = false;
			prior_known = false;
		}
	}
	/* 3. the open merge requests, when gating starts or stops (gate.h) */
	if (want_hook != (strcmp(row.have, "off") != 0) &&
	    !open_mrs(db, gl, repo_id, want_hook, dry_run, res, done, sizeof(done)))
		goto store;

	res->outcome = res->writes > 0 ? APPLY_CHANGED : APPLY_UNCHANGED;
	if (res->outcome == APPLY_CHANGED && !dry_run)
		snprintf(res->message, sizeof(res->message), "%s", done);
	else if (dry_run)
		snprintf(res->message, sizeof(res->message), "%s",
		         res->writes ? "would change GitLab" : "already in the wanted state");

store:
	if (dry_run)
		goto out;
	{
		char hid[24], ms[32];
		snprintf(hid, sizeof(hid), "%lld", (long long)hook_id);
		snprintf(ms, sizeof(ms), "%lld", (long long)ctx->run);
		bool ok = res->outcome == APPLY_CHANGED || res->outcome == APPLY_UNCHANGED;
		const char *p[] = {id,
		                   hook_id ? hid : NULL,
		                   hook_id ? ctx->hook_url : NULL,
		                   hook_id && token_sha[0] ? token_sha : NULL,
		                   hook_id && alert[0] ? alert : NULL,
		                   prior_known ? (prior ? "t" : "f") : NULL,
		                   merge_changed ? "t" : "f",
		                   ok ? want_name : NULL,
		                   apply_outcome_name(res->outcome),
		                   res->message[0] ? res->message : NULL,
		                   ms};
		st = store_exec(
		    c,
		    "INSERT INTO repo_gitlab_state (repo_id, hook_id, hook_url, hook_token_sha256, hook_alert_status,"
		    " merge_setting_prior, merge_setting_changed, applied_state, last_result, last_message,"
		    " last_applied_at, applying)"
		    " VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 'off'), $9, $10, now(), false)"
		    " ON CONFLICT (repo_id) DO UPDATE SET hook_id = $2, hook_url = $3, hook_token_sha256 = $4,"
		    " hook_alert_status = $5, merge_setting_prior = $6, merge_setting_changed = $7,"
		    " applied_state = coalesce($8, repo_gitlab_state.applied_state), last_result = $9,"
		    " last_message = $10, last_applied_at = now(),"
		    " applying = CASE WHEN $11::bigint = 0 OR repo_gitlab_state.apply_run IS NOT DISTINCT FROM"
		    "   $11::bigint THEN false ELSE repo_gitlab_state.applying END",
		    11, p, NULL);
	}
out:
	if (res->outcome == APPLY_ERROR)
		log_warn("apply repo %s: %s", id, res->message);
	if (locked) {
		store_exec(c, "SELECT pg_advisory_unlock(" LOCK_CLASS ", hashint8($1::bigint))", 1, pid, NULL);
	}
	store_put(db, c);
	gitlab_response_free(resp);
	json_object_put(body);
	free(secret_sha);
	free(w);
	return st;
}

struct batch {
	struct store *db;
	struct gitlab *gl;
	const struct apply_ctx *ctx;
	struct apply_batch_item *items;
	size_t n;
	bool dry_run;
	atomic_size_t next;
};

static void *batch_worker(void *arg)
{
	struct batch *b = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->n)
			break;
		struct apply_batch_item *it = &b->items[i];
		it->status = apply_repo_want(b->db, b->gl, b->ctx, it->repo_id, it->want, b->dry_run, &it->res);
	}
	return NULL;
}

void apply_batch(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, struct apply_batch_item *items,
                 size_t n, int concurrency, bool dry_run)
{
	struct batch b = {.db = db, .gl = gl, .ctx = ctx, .items = items, .n = n, .dry_run = dry_run};
	atomic_init(&b.next, 0);
	pthread_t t[64];
	int nt = concurrency < 1 ? 1 : concurrency > 64 ? 64 : concurrency, started = 0;
	if ((size_t)nt > n)
		nt = (int)n;
	for (int i = 0; i < nt; i++)
		if (pthread_create(&t[started], NULL, batch_worker, &b) == 0)
			started++;
	if (started == 0)
		batch_worker(&b); /* no thread could start: do the work here */
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

enum core_status apply_abandon(struct store *db, const int64_t *ids, size_t n, int64_t run, const char *message)
{
	struct store_conn *c = NULL;
	char *arr = store_int64_array(ids, n), ms[24];
	snprintf(ms, sizeof(ms), "%lld", (long long)run);
	enum core_status st = arr ? store_get(db, &c) : CORE_ENOMEM;
	if (st == CORE_OK) {
		const char *p[] = {arr, message, ms};
		st = store_exec(c,
		                "UPDATE repo_gitlab_state SET last_result = 'error', last_message = $2,"
		                " last_applied_at = now(), applying = false"
		                " WHERE repo_id = ANY ($1::bigint[]) AND ($3::bigint = 0 OR apply_run = $3::bigint)",
		                3, p, NULL);
	}
	store_put(db, c);
	free(arr);
	return st;
}
