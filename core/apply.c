/*
 * core/apply.c
 *    The apply executor: reads one repo's GitLab state, asks the planner (core/apply_plan.h) what to change,
 *    performs the actions and records the outcome (see apply.h).
 */
#include "apply.h"

#include "buf.h"
#include "crypto.h"
#include "gate.h"
#include "jsonx.h"
#include "log.h"
#include "workpool.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MERGE_SETTING "only_allow_merge_if_pipeline_succeeds"

/* Event flags our hook sets to false (GitLab defaults push_events to true, so it is always sent). */
static const char *const off_events[] = {"push_events",
                                         "tag_push_events",
                                         "issues_events",
                                         "confidential_issues_events",
                                         "confidential_note_events",
                                         "job_events",
                                         "wiki_page_events",
                                         "deployment_events",
                                         "releases_events",
                                         NULL};

bool apply_hook_url(const char *public_url, char *buf, size_t cap)
{
	char *url = apply_hook_url_dup(public_url);
	bool fits = strlen(url) < cap;
	if (fits)
		memcpy(buf, url, strlen(url) + 1);
	else if (cap > 0)
		buf[0] = '\0';
	if (!fits)
		log_error("the webhook url of public url %s does not fit in %zu bytes", public_url, cap);
	free(url);
	return fits;
}

char *apply_hook_url_dup(const char *public_url)
{
	struct buf b = {0};
	size_t n = strlen(public_url);
	while (n > 0 && public_url[n - 1] == '/')
		n--;
	buf_append(&b, public_url, n);
	buf_puts(&b, "/hooks/gitlab");
	return buf_steal(&b);
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
	if (r->pending)
		apply_pending_settle(r->pending);
	r->pending = NULL;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Reading GitLab */

/* The project's hooks, as the planner reads them: every copy of ours up to APPLY_HOOKS_MAX, as many others. */
struct hook_list {
	const char *hook_url;
	bool ssl_verify;
	struct apply_hook_seen v[2 * APPLY_HOOKS_MAX]; /* url and alert_status owned */
	size_t n, ours, others;
	int pages;
};

static void hook_list_clear(struct hook_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free((char *)l->v[i].url);
		free((char *)l->v[i].alert_status);
	}
	l->n = l->ours = l->others = 0;
	l->pages = 0;
}

bool apply_hook_flags_ok(struct json_object *h, int ssl_verify)
{
	bool b;
	if (!jsonx_bool(h, "merge_requests_events", &b) || !b)
		return false;
	/* pipeline events: the verdict is posted into each new head pipeline (core/gatehold.h) */
	if (!jsonx_bool(h, "pipeline_events", &b) || !b)
		return false;
	/* note events: "/mrgate" commands in merge request comments (core/mrcommand.h) */
	if (!jsonx_bool(h, "note_events", &b) || !b)
		return false;
	for (int i = 0; off_events[i]; i++)
		if (jsonx_bool(h, off_events[i], &b) && b)
			return false;
	if (ssl_verify >= 0 && jsonx_bool(h, "enable_ssl_verification", &b) && b != (ssl_verify != 0))
		return false;
	return true;
}

static enum core_status on_hooks_page(struct json_object *page, void *user)
{
	struct hook_list *l = user;
	l->pages++;
	for (size_t i = 0; i < json_object_array_length(page); i++) {
		struct json_object *h = json_object_array_get_idx(page, i);
		const char *url, *alert = "";
		int64_t id;
		bool mr = false;
		if (!jsonx_str(h, "url", &url) || !jsonx_int64(h, "id", &id))
			continue;
		size_t *count = strcmp(url, l->hook_url) == 0 ? &l->ours : &l->others;
		if (*count >= APPLY_HOOKS_MAX)
			continue; /* more copies of ours are deleted by the next applies */
		(*count)++;
		jsonx_str(h, "alert_status", &alert);
		l->v[l->n++] = (struct apply_hook_seen){.id = id,
		                                        .url = xstrdup(url),
		                                        .alert_status = xstrdup(alert),
		                                        .flags_ok = apply_hook_flags_ok(h, l->ssl_verify),
		                                        .mr_events = jsonx_bool(h, "merge_requests_events", &mr) && mr};
	}
	return CORE_OK;
}

struct json_object *apply_hook_body(const struct apply_ctx *ctx)
{
	struct json_object *b = jx_object();
	json_object_object_add(b, "url", jx_str(ctx->hook_url));
	json_object_object_add(b, "name", jx_str("mrgate"));
	json_object_object_add(b, "token", jx_str(ctx->webhook_secret));
	json_object_object_add(b, "merge_requests_events", jx_bool(1));
	json_object_object_add(b, "pipeline_events", jx_bool(1));
	json_object_object_add(b, "note_events", jx_bool(1));
	for (int i = 0; off_events[i]; i++)
		json_object_object_add(b, off_events[i], jx_bool(0));
	json_object_object_add(b, "enable_ssl_verification", jx_bool(ctx->ssl_verify));
	return b;
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
			snprintf(res->message, sizeof(res->message), "could not %s: %s%.300s", doing,
			         strncmp(msg, "GitLab rejected the request", 27) == 0 ? ""
			                                                              : "GitLab rejected the request: ",
			         msg);
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

/* ---------------------------------------------------------------------------------------------------------- */
/* One apply */

/* The recorded hook token's SHA-256 hex of row (the repo as the database knows it), or NULL. */
static const char *row_token_sha(const struct apply_loaded *row)
{
	return row->has_token_sha ? row->token_sha : NULL;
}

/* One apply in progress: its inputs, the GitLab calls' state and what will be recorded. */
struct run {
	struct store *db;
	struct gitlab *gl;
	const struct apply_ctx *ctx;
	int64_t repo_id;
	bool dry_run;
	struct apply_result *res;
	struct gitlab_response *resp;                          /* the last call's answer */
	struct buf path;                                       /* the last call's path */
	struct buf done;                                       /* what changed, for the message */
	char *secret_sha;                                      /* SHA-256 hex of ctx->webhook_secret */
	struct json_object *plan_hooks, *upd, *del, *settings; /* borrowed from res->plan */
	struct json_object *read;                              /* res->plan "read": what was read, when */
	char *owner; /* the claim's owner (ctx->claim_owner or a random token), NULL: none (dry run) */
	/* recorded at the end */
	int64_t hook_id;
	char *token_sha, *alert; /* owned, NULL for none */
	bool prior_known, prior, merge_changed;
};

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v && *v ? xstrdup(v) : NULL;
}

/* Append "what [id]" to the summary of changes. */
static void note(struct run *u, const char *what, int64_t id)
{
	buf_puts(&u->done, u->done.len ? "; " : "");
	if (id) /* "(hook id 201)": a bare "created webhook 201" read like an HTTP status */
		buf_printf(&u->done, "%s (hook id %lld)", what, (long long)id);
	else
		buf_puts(&u->done, what);
}

/* One GitLab call on /projects/:id{suffix}[/hook_id] (hook_id 0: none); the answer is u->resp. */
static void slot_take(const struct run *u)
{
	if (u->ctx->slots)
		limiter_acquire(u->ctx->slots);
}

static void slot_give(const struct run *u)
{
	if (u->ctx->slots)
		limiter_release(u->ctx->slots);
}

static enum core_status call(struct run *u, const char *method, struct json_object *body, const char *suffix,
                             int64_t hook_id)
{
	buf_reset(&u->path);
	buf_printf(&u->path, "/projects/%lld%s", (long long)u->repo_id, suffix);
	if (hook_id)
		buf_printf(&u->path, "/%lld", (long long)hook_id);
	gitlab_response_free(u->resp);
	u->resp = NULL;
	slot_take(u);
	enum core_status st = gitlab_request(u->gl, method, buf_str(&u->path), body, &u->resp);
	slot_give(u);
	return st;
}

/* GET every page of the project's hooks into l; the reads are counted. */
static enum core_status list_hooks(struct run *u, struct hook_list *l)
{
	hook_list_clear(l);
	buf_reset(&u->path);
	buf_printf(&u->path, "/projects/%lld/hooks?per_page=100", (long long)u->repo_id);
	gitlab_response_free(u->resp);
	u->resp = NULL;
	slot_take(u);
	enum core_status st = gitlab_paginate(u->gl, buf_str(&u->path), on_hooks_page, l, &u->resp);
	slot_give(u);
	u->res->reads += l->pages;
	return st;
}

/* "what" read "how" at the current time, into res->plan "read". */
static void noted_read(struct run *u, const char *what, const char *how, const char *at)
{
	char now[16];
	if (!at) {
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(now, sizeof(now), "%H:%M:%S", &tm);
		at = now;
	}
	struct buf b = {0};
	buf_printf(&b, "%s read %s at %s", what, how, at);
	json_object_array_add(u->read, jx_str(buf_str(&b)));
	buf_free(&b);
}

#define REPO_FIELDS                                                                                                    \
	" rs.archived, rs.marked_for_deletion, rs.removed_at IS NOT NULL AS removed, rs.unmanaged,"                    \
	" rs.gitlab_want, coalesce(rs.gitlab_have, 'off') AS gitlab_have, gs.hook_id, gs.hook_token_sha256,"           \
	" gs.merge_setting_prior, coalesce(gs.merge_setting_changed, false) AS merge_changed"
#define REPO_COLUMNS                                                                                                   \
	REPO_FIELDS " FROM repo_status rs LEFT JOIN repo_gitlab_state gs ON gs.repo_id = rs.id WHERE rs.id = $1"

/* Row i of a REPO_FIELDS result into row. */
static void read_row(const PGresult *r, int i, struct apply_loaded *row)
{
	const char *want = store_str(r, i, "gitlab_want"), *sha = store_str(r, i, "hook_token_sha256");
	row->archived = store_bool(r, i, "archived", false);
	row->pending = store_bool(r, i, "marked_for_deletion", false);
	row->removed = store_bool(r, i, "removed", false);
	row->unmanaged = store_bool(r, i, "unmanaged", false);
	row->want_gate = want && strcmp(want, "off") != 0;
	row->want_block = want && strcmp(want, "hook+merge") == 0;
	row->have_on = strcmp(store_str(r, i, "gitlab_have"), "off") != 0;
	row->in_state = row->have_on && want && strcmp(want, store_str(r, i, "gitlab_have")) == 0;
	row->hook_id = store_i64(r, i, "hook_id", 0);
	row->has_token_sha = sha != NULL;
	snprintf(row->token_sha, sizeof(row->token_sha), "%s", sha ? sha : "");
	row->prior_known = store_str(r, i, "merge_setting_prior") != NULL;
	row->prior = store_bool(r, i, "merge_setting_prior", false);
	row->changed = store_bool(r, i, "merge_changed", false);
}

/*
 * Load the repo's record; with u->owner, claim it in the same statement (a claim held by another apply that has
 * not expired stays theirs: *claimed_out false). One statement, no connection kept.
 */
static enum core_status load_repo(struct run *u, struct apply_loaded *row, bool *claimed_out)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	store_param_i64(&p, u->repo_id);
	if (u->owner) {
		store_param_str(&p, u->owner);
		store_param_i64(&p, APPLY_CLAIM_SECONDS);
	}
	enum core_status st = store_run1(
	    u->db,
	    u->owner ? STORE_PREPARE
	        "WITH claim AS (INSERT INTO apply_claims (repo_id, owner, expires_at)"
	        " VALUES ($1, $2, now() + $3::bigint * interval '1 second')"
	        " ON CONFLICT (repo_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
	        " WHERE apply_claims.expires_at < now() OR apply_claims.owner = excluded.owner RETURNING 1)"
	        " SELECT EXISTS (SELECT 1 FROM claim) AS claimed," REPO_COLUMNS
	             : STORE_PREPARE "SELECT true AS claimed," REPO_COLUMNS,
	    &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	*claimed_out = st == CORE_OK && store_bool(r, 0, "claimed", false);
	if (st == CORE_OK)
		read_row(r, 0, row);
	PQclear(r);
	return st;
}

enum core_status apply_load_job_items(struct store *db, const int64_t *item_ids, const int64_t *repo_ids,
                                      size_t n_items, struct apply_loaded **out, size_t *n_out)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	struct buf keep_ids = {0}, keep_repos = {0};
	*out = NULL;
	*n_out = 0;
	if (n_items == 0)
		return CORE_OK;
	store_param_i64_array(&p, item_ids, n_items, &keep_ids);
	store_param_i64_array(&p, repo_ids, n_items, &keep_repos);
	store_param_i64(&p, APPLY_CLAIM_SECONDS);
	/* the claims in repo_id order, as every statement that writes many repos' rows (no deadlock between them) */
	enum core_status st =
	    store_run1(db,
	               STORE_PREPARE
	               "WITH mine AS (SELECT DISTINCT ON (repo_id) item_id, repo_id"
	               "  FROM unnest($1::bigint[], $2::bigint[]) AS u(item_id, repo_id) ORDER BY repo_id, item_id),"
	               " claim AS (INSERT INTO apply_claims (repo_id, owner, expires_at)"
	               "  SELECT repo_id, 'job-item-' || item_id, now() + $3::bigint * interval '1 second'"
	               "  FROM mine ORDER BY repo_id"
	               "  ON CONFLICT (repo_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
	               "  WHERE apply_claims.expires_at < now() OR apply_claims.owner = excluded.owner"
	               "  RETURNING repo_id)"
	               " SELECT m.item_id, m.repo_id, EXISTS (SELECT 1 FROM claim c WHERE c.repo_id = m.repo_id)"
	               "  AS claimed," REPO_FIELDS " FROM mine m JOIN repo_status rs ON rs.id = m.repo_id"
	               " LEFT JOIN repo_gitlab_state gs ON gs.repo_id = rs.id ORDER BY m.item_id",
	               &p, &r);
	int n = st == CORE_OK ? PQntuples(r) : 0;
	if (n > 0) {
		struct apply_loaded *v = xcalloc((size_t)n, sizeof(*v));
		for (int i = 0; i < n; i++) {
			read_row(r, i, &v[i]);
			v[i].item_id = store_i64(r, i, "item_id", 0);
			v[i].repo_id = store_i64(r, i, "repo_id", 0);
			v[i].claimed = store_bool(r, i, "claimed", false);
		}
		*out = v;
		*n_out = (size_t)n;
	}
	PQclear(r);
	buf_free(&keep_ids);
	buf_free(&keep_repos);
	return st;
}

/*
 * POST our hook. A POST that may have been applied is followed by a re-list: a hook with our URL that appeared is
 * taken as created (never POST blindly twice). False with res set on failure.
 */
static bool create_hook(struct run *u, struct hook_list *l)
{
	struct json_object *body = apply_hook_body(u->ctx);
	enum core_status st = call(u, "POST", body, "/hooks", 0);
	json_object_put(body);
	int64_t new_id = 0;
	if (st == CORE_OK && jsonx_int64(u->resp->json, "id", &new_id)) {
		u->hook_id = new_id;
		set_str(&u->token_sha, u->secret_sha);
		set_str(&u->alert, "executable");
		note(u, "created webhook", new_id);
		return true;
	}
	if (!u->resp || u->resp->kind != GITLAB_ERR_MAYBE_APPLIED) {
		advise(u->res, "create the webhook", "manage webhooks", st, u->resp, u->ctx);
		return false;
	}
	/* the disabled copies listed before cannot be the new one: it is the first executable copy now */
	const struct apply_hook_seen *keep = NULL;
	if (list_hooks(u, l) == CORE_OK)
		for (size_t i = 0; i < l->n && !keep; i++)
			if (strcmp(l->v[i].url, u->ctx->hook_url) == 0 &&
			    apply_plan_hook_executable(l->v[i].alert_status))
				keep = &l->v[i];
	if (!keep) {
		u->res->outcome = APPLY_ERROR;
		u->res->retryable = true;
		snprintf(
		    u->res->message, sizeof(u->res->message),
		    "could not create the webhook: GitLab did not confirm it and it is not listed (will be retried)");
		return false;
	}
	u->hook_id = keep->id;
	set_str(&u->token_sha, u->secret_sha);
	set_str(&u->alert, keep->alert_status);
	note(u, "created webhook", u->hook_id);
	return true;
}

/* The plan's hook actions, in order. False with res set on failure. */
static bool run_hook_actions(struct run *u, const struct apply_plan *plan, struct hook_list *l)
{
	if (plan->keep_id) {
		u->hook_id = plan->keep_id;
		set_str(&u->alert, plan->keep_alert);
	}
	for (size_t i = 0; i < plan->n; i++) {
		const struct apply_action *a = &plan->v[i];
		enum core_status st;
		switch (a->kind) {
		case APPLY_HOOK_CREATE:
			json_object_object_add(u->plan_hooks, "create", jx_int(1));
			u->res->writes++;
			if (!u->dry_run && !create_hook(u, l))
				return false;
			break;
		case APPLY_HOOK_UPDATE: {
			json_object_array_add(u->upd, jx_int(a->hook_id));
			u->res->writes++;
			if (u->dry_run)
				break;
			struct json_object *body = apply_hook_body(u->ctx);
			st = call(u, "PUT", body, "/hooks", a->hook_id);
			json_object_put(body);
			if (st != CORE_OK) {
				advise(u->res, "update the webhook", "manage webhooks", st, u->resp, u->ctx);
				return false;
			}
			set_str(&u->token_sha, u->secret_sha);
			const char *alert = NULL;
			if (jsonx_str(u->resp->json, "alert_status", &alert))
				set_str(&u->alert, alert);
			note(u, "updated webhook", a->hook_id);
			break;
		}
		case APPLY_HOOK_DELETE:
			json_object_array_add(u->del, jx_int(a->hook_id));
			u->res->writes++;
			if (u->dry_run)
				break;
			st = call(u, "DELETE", NULL, "/hooks", a->hook_id);
			if (st != CORE_OK && !(u->resp && u->resp->kind == GITLAB_ERR_NOT_FOUND)) {
				advise(u->res, "delete the webhook", "manage webhooks", st, u->resp, u->ctx);
				return false;
			}
			/* why, in the words of the item's result: gating off, group-hook mode, or a copy too many */
			note(u,
			     !plan->project_hook
			         ? (u->ctx->group_mode ? "the group webhook delivers: deleted the project webhook"
			                               : "gating is off: deleted mrgate's webhook")
			         : "deleted a duplicate or disabled webhook",
			     a->hook_id);
			break;
		default: break;
		}
	}
	if (!plan->project_hook) {
		u->hook_id = 0;
		set_str(&u->token_sha, NULL);
		set_str(&u->alert, NULL);
	}
	return true;
}

/*
 * The plan's merge setting action (the prior value is recorded in the database before the PUT that changes it).
 * False with res set when GitLab refused; a database failure is returned in *st_out.
 */
static bool run_merge_action(struct run *u, const struct apply_plan *plan, enum core_status *st_out)
{
	for (size_t i = 0; i < plan->n; i++) {
		const struct apply_action *a = &plan->v[i];
		if (a->kind != APPLY_MERGE_SET)
			continue;
		struct json_object *s = jx_object(), *ch = jx_object();
		json_object_object_add(ch, "from", jx_bool(a->from));
		json_object_object_add(ch, "to", jx_bool(a->to));
		json_object_object_add(s, MERGE_SETTING, ch);
		json_object_array_add(u->settings, s);
		u->res->writes++;
		if (u->dry_run)
			continue;
		if (a->record_prior) {
			struct store_params p = {0};
			u->prior_known = true;
			u->prior = a->from;
			u->merge_changed = true;
			store_param_i64(&p, u->repo_id);
			store_param_bool(&p, u->prior);
			if ((*st_out = store_run1(u->db,
			                          STORE_PREPARE
			                          "INSERT INTO repo_gitlab_state (repo_id, merge_setting_prior,"
			                          " merge_setting_changed) VALUES ($1, $2, true)"
			                          " ON CONFLICT (repo_id) DO UPDATE SET merge_setting_prior = $2,"
			                          " merge_setting_changed = true",
			                          &p, NULL)) != CORE_OK)
				return false;
		}
		struct json_object *body = jx_object();
		json_object_object_add(body, MERGE_SETTING, jx_bool(a->to));
		enum core_status st = call(u, "PUT", body, "", 0);
		json_object_put(body);
		if (st != CORE_OK) {
			advise(u->res,
			       plan->block_merge ? "turn on \"Pipelines must succeed\""
			                         : "restore \"Pipelines must succeed\"",
			       "change its merge settings", st, u->resp, u->ctx);
			return false;
		}
		/* in the plan's words (apply_plan.c), with the value a restore put back */
		note(u,
		     plan->block_merge ? "turned on Pipelines must succeed"
		     : a->to           ? "restored Pipelines must succeed to on, as it was before mrgate"
		                       : "restored Pipelines must succeed to off, as it was before mrgate",
		     0);
	}
	if (plan->forget_prior && !u->dry_run) {
		u->merge_changed = false;
		u->prior_known = false;
	}
	return true;
}

/*
 * Gating starts (gate) or stops for the repo: queue gate runs for its open MRs, or post final statuses that unblock
 * them. Runs once GitLab is in the new state and before that state is recorded: false (res holds the error) keeps
 * the old applied state, so the next apply makes the same transition and calls again. missed: gating goes on, and
 * our hook was down: only the MRs whose head never ran are gated (those it did not deliver); a failure is retried
 * by the item, and once the hook is recorded as repaired, new pushes are delivered again.
 */
static bool open_mrs(struct run *u, bool gate, bool missed)
{
	struct apply_result *res = u->res;
	struct gate_open_mrs om;
	struct json_object *listed = NULL;
	char at[16] = "";
	int pages = 0;
	if (gate && u->ctx->lists && u->ctx->lists->open_mrs)
		listed = u->ctx->lists->open_mrs(u->ctx->lists->user, u->repo_id, at, &pages);
	res->reads += pages;
	if (listed)
		noted_read(u, "open merge requests", "from the group's merge request list", at);
	else /* to gate them, or to clear mrgate's statuses on them */
		noted_read(u, "open merge requests", "from GET /projects/:id/merge_requests", NULL);
	enum core_status st;
	if (listed) {
		st = gate_enqueue_listed_mrs(u->db, u->repo_id, listed, missed, u->dry_run, &om);
	} else {
		slot_take(u); /* the GitLab reads and writes of the repo's MRs, and the runs they queue */
		st = gate ? gate_enqueue_open_mrs(u->db, u->gl, u->repo_id, missed, u->dry_run, &om)
		          : gate_clear_open_mrs(u->db, u->gl, u->repo_id, u->dry_run, &om);
		slot_give(u);
	}
	json_object_put(listed);
	res->reads += om.reads;
	res->writes += om.writes;
	if (st != CORE_OK && u->dry_run) {
		/* a plan is still a plan without this count */
		log_debug("apply repo %lld (dry run): open merge requests not counted: %s", (long long)u->repo_id,
		          om.error[0] ? om.error : core_status_code(st));
		return true;
	}
	if (u->dry_run) {
		json_object_object_add(res->plan, gate ? "open_mrs_to_gate" : "statuses_to_clear",
		                       jx_int(gate ? om.queued : om.cleared));
		return true;
	}
	if (st != CORE_OK) {
		res->outcome = APPLY_ERROR;
		res->retryable = om.error[0] ? om.retryable : true; /* no message: the database, transient */
		snprintf(res->message, sizeof(res->message), "%s%s%s", buf_str(&u->done), u->done.len ? "; " : "",
		         om.error[0] ? om.error
		         : gate      ? "could not queue gate runs for the open merge requests (will be retried)"
		                : "could not clear the gate's statuses on the open merge requests (will be retried)");
		return false;
	}
	struct buf what = {0};
	if (gate && om.queued > 0)
		buf_printf(&what, "queued gate runs for %d open merge request%s%s", om.queued,
		           om.queued == 1 ? "" : "s", missed ? " the webhook did not deliver while it was down" : "");
	else if (!gate && om.cleared > 0)
		buf_printf(&what, "posted %d final \"gate removed\" status%s on open merge requests", om.cleared,
		           om.cleared == 1 ? "" : "es");
	if (what.len)
		note(u, buf_str(&what), 0);
	buf_free(&what);
	return true;
}

/*
 * The outcomes of repos, written in one statement: each row of $1 (jsonb_to_recordset) is one repo's outcome and
 * the state reached; its claim (owner) is released. Rows are upserted in repo_id order, the lock order of every
 * statement that writes many repos' state (gateconfig_mark_apply's too), so that two batches cannot deadlock.
 * applied_state moves only when a want was reached (want not NULL); applying ends where the row was marked by
 * this apply's run, or unconditionally for an apply without one (run 0).
 */
#define OUTCOMES_SQL                                                                                                   \
	"WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(repo_id bigint, hook_id bigint, hook_url text,"   \
	"  token_sha text, alert text, prior boolean, changed boolean, want text, result text, message text,"          \
	"  run bigint, owner text)),"                                                                                  \
	" released AS (DELETE FROM apply_claims c USING v WHERE c.repo_id = v.repo_id AND c.owner = v.owner)"          \
	" INSERT INTO repo_gitlab_state AS g (repo_id, hook_id, hook_url, hook_token_sha256, hook_alert_status,"       \
	" merge_setting_prior, merge_setting_changed, applied_state, last_result, last_message, last_applied_at,"      \
	" applying)"                                                                                                   \
	" SELECT repo_id, hook_id, hook_url, token_sha, alert, prior, changed, coalesce(want, 'off'), result, "        \
	"message,"                                                                                                     \
	"  now(), false FROM v ORDER BY repo_id"                                                                       \
	" ON CONFLICT (repo_id) DO UPDATE SET hook_id = excluded.hook_id, hook_url = excluded.hook_url,"               \
	" hook_token_sha256 = excluded.hook_token_sha256, hook_alert_status = excluded.hook_alert_status,"             \
	" merge_setting_prior = excluded.merge_setting_prior, merge_setting_changed = excluded.merge_setting_changed," \
	" applied_state = coalesce((SELECT v.want FROM v WHERE v.repo_id = excluded.repo_id), g.applied_state),"       \
	" last_result = excluded.last_result, last_message = excluded.last_message, last_applied_at = now(),"          \
	" applying = CASE WHEN (SELECT v.run = 0 OR g.apply_run IS NOT DISTINCT FROM v.run FROM v"                     \
	"  WHERE v.repo_id = excluded.repo_id) THEN false ELSE g.applying END"

#define OUTBOX_GATHER_MS 2  /* how long a batch of outcomes gathers (job workers finish repos side by side) */
#define OUTBOX_FULL      16 /* outcomes that end the gathering */

/* Write rows (a JSON array of outcome rows) in one statement. */
static enum core_status write_outcomes(void *db, struct json_object *rows)
{
	struct store_params p = {0};
	store_param_str(&p, json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN));
	return store_run1(db, STORE_PREPARE OUTCOMES_SQL, &p, NULL);
}

struct outbox *apply_outbox_new(struct store *db)
{
	return outbox_new(write_outcomes, db, OUTBOX_GATHER_MS, OUTBOX_FULL);
}

struct apply_pending {
	struct outbox_ticket *ticket;
	struct store *db;
	int64_t repo_id;
	char *owner; /* the claim's owner (a secret of the apply: freed with crypto_free_secret) */
};

/* Release repo_id's claim by owner (an outcome that was not stored); a failure leaves it to expire. */
static void release_claim(struct store *db, int64_t repo_id, const char *owner)
{
	struct store_params p = {0};
	store_param_i64(&p, repo_id);
	store_param_str(&p, owner);
	store_run1(db, "DELETE FROM apply_claims WHERE repo_id = $1 AND owner = $2", &p, NULL);
}

void apply_release_loaded(struct store *db, const struct apply_loaded *l)
{
	char owner[48];
	if (!l->claimed)
		return;
	snprintf(owner, sizeof(owner), "job-item-%lld", (long long)l->item_id);
	release_claim(db, l->repo_id, owner);
}

enum core_status apply_pending_settle(void *arg)
{
	struct apply_pending *p = arg;
	enum core_status st = outbox_settle(p->ticket);
	if (st != CORE_OK) {
		log_warn("apply repo %lld: the outcome was not stored (%s)", (long long)p->repo_id,
		         core_status_code(st));
		release_claim(p->db, p->repo_id, p->owner);
	}
	crypto_free_secret(p->owner);
	free(p);
	return st;
}

/*
 * Store the outcome and the state reached in repo_gitlab_state, releasing the claim; with ctx->post_outcome only
 * queue it (res->pending).
 */
static enum core_status record(struct run *u, const char *want)
{
	struct apply_result *res = u->res;
	bool ok = res->outcome == APPLY_CHANGED || res->outcome == APPLY_UNCHANGED;
	struct json_object *row = jx_object();
	json_object_object_add(row, "repo_id", jx_int(u->repo_id));
	json_object_object_add(row, "hook_id", u->hook_id ? jx_int(u->hook_id) : NULL);
	json_object_object_add(row, "hook_url", u->hook_id ? jx_str(u->ctx->hook_url) : NULL);
	json_object_object_add(row, "token_sha", u->hook_id && u->token_sha ? jx_str(u->token_sha) : NULL);
	json_object_object_add(row, "alert", u->hook_id && u->alert ? jx_str(u->alert) : NULL);
	json_object_object_add(row, "prior", u->prior_known ? jx_bool(u->prior) : NULL);
	json_object_object_add(row, "changed", jx_bool(u->merge_changed));
	json_object_object_add(row, "want", ok && want ? jx_str(want) : NULL);
	json_object_object_add(row, "result", jx_str(apply_outcome_name(res->outcome)));
	json_object_object_add(row, "message", res->message[0] ? jx_str(res->message) : NULL);
	json_object_object_add(row, "run", jx_int(u->ctx->run));
	json_object_object_add(row, "owner", jx_str(u->owner));
	enum core_status st = CORE_OK;
	if (u->ctx->outbox && u->ctx->post_outcome) {
		struct apply_pending *p = xcalloc(1, sizeof(*p));
		p->ticket = outbox_post(u->ctx->outbox, row); /* the row is the outbox's now */
		row = NULL;
		p->db = u->db;
		p->repo_id = u->repo_id;
		p->owner = xstrdup(u->owner);
		res->pending = p;
	} else if (u->ctx->outbox) {
		st = outbox_write(u->ctx->outbox, row);
	} else {
		struct json_object *rows = jx_array();
		json_object_array_add(rows, json_object_get(row));
		st = write_outcomes(u->db, rows);
		json_object_put(rows);
	}
	json_object_put(row);
	return st;
}

static void skipped(struct apply_result *res, const char *why)
{
	res->outcome = APPLY_SKIPPED;
	snprintf(res->message, sizeof(res->message), "skipped: the repository is %s", why);
}

/*
 * The project's archived state, pending deletion and merge setting into seen: from the job's group project list
 * when it holds the repo, else GET /projects/:id. False with res set on failure.
 */
static bool read_project(struct run *u, struct apply_seen *seen)
{
	struct apply_listed li;
	int pages = 0;
	bool listed = u->ctx->lists && u->ctx->lists->project &&
	              u->ctx->lists->project(u->ctx->lists->user, u->repo_id, &li, &pages);
	u->res->reads += pages;
	if (listed) {
		seen->project_read = true;
		seen->project_archived = li.archived;
		seen->project_pending_deletion = li.pending_deletion;
		seen->merge_on = li.merge_on;
		noted_read(u, "merge setting", "from the group's project list", li.read_at);
		return true;
	}
	noted_read(u, "merge setting", "from GET /projects/:id", NULL);
	enum core_status st = call(u, "GET", NULL, "", 0);
	u->res->reads++;
	if (st != CORE_OK) {
		advise(u->res, "read the project's settings", "change its merge settings", st, u->resp, u->ctx);
		return false;
	}
	const char *mfd = NULL;
	seen->project_read = true;
	jsonx_bool(u->resp->json, "archived", &seen->project_archived);
	seen->project_pending_deletion = jsonx_str(u->resp->json, "marked_for_deletion_at", &mfd) ||
	                                 jsonx_str(u->resp->json, "marked_for_deletion_on", &mfd);
	jsonx_bool(u->resp->json, MERGE_SETTING, &seen->merge_on); /* null reads as false */
	return true;
}

/*
 * Perform the plan's actions in order: hooks, the merge setting, the open merge requests. False when one failed
 * (res says why; a database failure is in *st_out).
 */
static bool perform(struct run *u, const struct apply_plan *plan, enum core_status *st_out)
{
	/* a re-list after a maybe-applied POST fills its own list: the plan's hooks stay as they were read */
	struct hook_list *relist = xcalloc(1, sizeof(*relist));
	relist->hook_url = u->ctx->hook_url;
	relist->ssl_verify = u->ctx->ssl_verify;
	bool ok = run_hook_actions(u, plan, relist) && run_merge_action(u, plan, st_out) && *st_out == CORE_OK;
	size_t gate = apply_plan_count(plan, APPLY_OPEN_MRS_GATE), clear = apply_plan_count(plan, APPLY_OPEN_MRS_CLEAR),
	       missed = apply_plan_count(plan, APPLY_OPEN_MRS_MISSED);
	if (ok && (gate || clear || missed))
		ok = open_mrs(u, gate > 0 || missed > 0, missed > 0);
	hook_list_clear(relist);
	free(relist);
	return ok;
}

/*
 * Read GitLab (the hooks; the project when the plan needs it), plan, perform. The outcome is in u->res;
 * a database failure is returned.
 */
static enum core_status reconcile(struct run *u, const struct apply_loaded *row, const struct apply_want *want,
                                  struct apply_plan *plan)
{
	struct apply_result *res = u->res;
	struct hook_list *l = xcalloc(1, sizeof(*l));
	enum core_status st = CORE_OK;
	struct apply_seen seen = {.archived = row->archived,
	                          .pending_deletion = row->pending,
	                          .removed = row->removed,
	                          .unmanaged = row->unmanaged,
	                          .applied = row->have_on,
	                          .hook_id = row->hook_id,
	                          .token_sha = row_token_sha(row),
	                          .merge_changed = row->changed,
	                          .prior = row->prior};
	struct apply_goal goal = {.hook_url = u->ctx->hook_url,
	                          .token_sha = u->secret_sha,
	                          .gate = want ? want->hook : row->want_gate,
	                          .block_merge = want ? want->block_merge : row->want_block,
	                          .group_mode = u->ctx->group_mode,
	                          .group_hook_was_down = u->ctx->group_hook_was_down,
	                          .resend_token = u->ctx->resend_token};

	apply_plan_make(&seen, &goal, plan); /* skipped without a call? */
	if (!plan->skip) {
		l->hook_url = u->ctx->hook_url;
		l->ssl_verify = u->ctx->ssl_verify;
		/* the project first: in a job it comes from the group's list, which the job's first items then read at
		 * its start on slots still free, instead of after their hooks; while another item reads that list, the
		 * hooks first, on a slot the list leaves free, instead of waiting for it idle */
		const struct apply_lists *li = u->ctx->lists;
		bool project = apply_plan_needs_project(&seen, &goal);
		bool hooks_first = project && apply_plan_needs_hooks(&seen, &goal) && li && li->project_reading &&
		                   li->project_reading(li->user);
		if (project && !hooks_first && !read_project(u, &seen))
			goto out;
		if (apply_plan_needs_hooks(&seen, &goal)) {
			enum core_status gst = list_hooks(u, l);
			if (gst != CORE_OK) {
				res->reads++;
				advise(res, "list the project's webhooks", "manage webhooks", gst, u->resp, u->ctx);
				goto out;
			}
			seen.hooks_read = true;
			seen.hooks = l->v;
			seen.n_hooks = l->n;
			noted_read(u, "webhooks", "from GET /projects/:id/hooks", NULL);
		}
		if (hooks_first && !read_project(u, &seen))
			goto out;
		apply_plan_make(&seen, &goal, plan);
	}
	if (plan->skip) {
		skipped(res, plan->skip);
		goto out;
	}
	if (!perform(u, plan, &st))
		goto out;
	res->outcome = res->writes > 0 ? APPLY_CHANGED : APPLY_UNCHANGED;
	/* a write where the record said none was needed, for the stored config and the same secret: a repair */
	res->repaired = res->outcome == APPLY_CHANGED && !u->dry_run && !want && row->in_state &&
	                (!row_token_sha(row) || !u->secret_sha || strcmp(row->token_sha, u->secret_sha) == 0) &&
	                !(plan->token_resent && apply_plan_count(plan, APPLY_HOOK_CREATE) +
	                                                apply_plan_count(plan, APPLY_HOOK_DELETE) +
	                                                apply_plan_count(plan, APPLY_MERGE_SET) ==
	                                            0);
	if (res->outcome == APPLY_CHANGED && !u->dry_run)
		snprintf(res->message, sizeof(res->message), "%s", buf_str(&u->done));
	else if (u->dry_run && res->writes) {
		/* what it would do, in the plan's words (a walk read only "would change GitLab" on a preview's rows) */
		struct json_object *acts = apply_plan_actions(res->plan);
		struct buf b = {0};
		for (size_t i = 0; i < json_object_array_length(acts); i++)
			buf_printf(&b, "%s%s", i ? ", " : "would ",
			           json_object_get_string(json_object_array_get_idx(acts, i)));
		snprintf(res->message, sizeof(res->message), "%s", b.len ? buf_str(&b) : "would change GitLab");
		buf_free(&b);
		json_object_put(acts);
	} else if (u->dry_run)
		snprintf(res->message, sizeof(res->message), "%s", "already in the wanted state");
out:
	hook_list_clear(l);
	free(l);
	return st;
}

enum core_status apply_repo(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t repo_id,
                            bool dry_run, struct apply_result *res_out)
{
	return apply_repo_want(db, gl, ctx, repo_id, NULL, dry_run, res_out);
}

/* The plan in res->plan, filled as the actions are reached: {"hooks": {create, update, delete}, "settings"}. */
static void plan_json(struct run *u)
{
	struct apply_result *res = u->res;
	res->plan = jx_object();
	u->plan_hooks = jx_object();
	u->upd = jx_array();
	u->del = jx_array();
	u->settings = jx_array();
	json_object_object_add(u->plan_hooks, "create", jx_int(0));
	json_object_object_add(u->plan_hooks, "update", u->upd);
	json_object_object_add(u->plan_hooks, "delete", u->del);
	json_object_object_add(res->plan, "hooks", u->plan_hooks);
	json_object_object_add(res->plan, "settings", u->settings);
	u->read = jx_array();
	json_object_object_add(res->plan, "read", u->read);
}

enum core_status apply_repo_want(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t repo_id,
                                 const struct apply_want *want, bool dry_run, struct apply_result *res)
{
	struct run u = {.db = db, .gl = gl, .ctx = ctx, .repo_id = repo_id, .dry_run = dry_run, .res = res};
	struct apply_loaded row = {0};
	struct apply_plan *plan = xcalloc(1, sizeof(*plan));
	bool claimed = false, recorded = false;

	memset(res, 0, sizeof(*res));
	plan_json(&u);
	u.done.max = 399; /* the summary of changes is a message: capped */
	u.secret_sha = ctx->webhook_secret_sha ? xstrdup(ctx->webhook_secret_sha)
	                                       : crypto_sha256_hex(ctx->webhook_secret, strlen(ctx->webhook_secret));
	u.owner = dry_run ? NULL : ctx->claim_owner ? xstrdup(ctx->claim_owner) : crypto_random_token("apply-");
	enum core_status st = CORE_OK;
	if (!u.secret_sha) {
		st = CORE_ENOMEM;
	} else if (ctx->loaded && ctx->loaded->repo_id == repo_id && u.owner && ctx->claim_owner) {
		row = *ctx->loaded; /* read and claimed for this item ahead of it */
		claimed = ctx->loaded->claimed;
	} else {
		st = load_repo(&u, &row, &claimed);
	}
	if (st != CORE_OK)
		goto out;
	if (!claimed) {
		res->outcome = APPLY_ERROR;
		res->retryable = true;
		res->held = true;
		snprintf(res->message, sizeof(res->message),
		         "another apply of this repository is running (will be retried)");
		goto out;
	}
	/* what is recorded at the end unless the actions change it */
	u.hook_id = row.hook_id;
	set_str(&u.token_sha, row_token_sha(&row));
	u.prior_known = row.prior_known;
	u.prior = row.prior;
	u.merge_changed = row.changed;
	if ((st = reconcile(&u, &row, want, plan)) == CORE_OK && !dry_run)
		recorded = (st = record(&u, plan->want)) == CORE_OK;
out:
	if (res->outcome == APPLY_ERROR)
		log_warn("apply repo %lld: %s", (long long)repo_id, res->message);
	if (u.owner && !recorded && (claimed || st == CORE_ENOTFOUND))
		release_claim(db, repo_id, u.owner);
	crypto_free_secret(u.owner);
	gitlab_response_free(u.resp);
	buf_free(&u.path);
	buf_free(&u.done);
	free(u.secret_sha);
	free(u.token_sha);
	free(u.alert);
	free(plan);
	return st;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Batches and abandoned repos */

struct batch {
	struct store *db;
	struct gitlab *gl;
	const struct apply_ctx *ctx;
	struct apply_batch_item *items;
	bool dry_run;
};

static void batch_item(void *arg, size_t i)
{
	struct batch *b = arg;
	struct apply_batch_item *it = &b->items[i];
	it->status = apply_repo_want(b->db, b->gl, b->ctx, it->repo_id, it->want, b->dry_run, &it->res);
}

void apply_batch(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, struct apply_batch_item *items,
                 size_t n, int concurrency, bool dry_run)
{
	struct batch b = {.db = db, .gl = gl, .ctx = ctx, .items = items, .dry_run = dry_run};
	workpool_run(n, concurrency, batch_item, &b);
}

enum core_status apply_unmark(struct store *db, int64_t id, int64_t run)
{
	return STORE_RUN1(db,
	                  "UPDATE repo_gitlab_state SET applying = false"
	                  " WHERE repo_id = $1 AND applying AND ($2::bigint = 0 OR apply_run = $2::bigint)",
	                  NULL, STORE_I64(id), STORE_I64(run));
}

enum core_status apply_abandon(struct store *db, const int64_t *ids, size_t n, int64_t run, const char *message)
{
	struct store_params p = {0};
	struct buf arr = {0};
	store_param_i64_array(&p, ids, n, &arr);
	store_param_str(&p, message);
	store_param_i64(&p, run);
	enum core_status st =
	    store_run1(db,
	               "UPDATE repo_gitlab_state SET last_result = 'error', last_message = $2,"
	               " last_applied_at = now(), applying = false"
	               " WHERE repo_id = ANY ($1::bigint[]) AND ($3::bigint = 0 OR apply_run = $3::bigint)",
	               &p, NULL);
	buf_free(&arr);
	return st;
}
