/*
 * server/handlers_gitlab.c
 *    The GitLab connection, discovery runs ("sync"), the repository list, the group tree and the settings (a
 *    hook_mode change is switched by core/hookmode.h).
 */
#include "apply.h"
#include "buf.h"
#include "connection.h"
#include "discovery.h"
#include "gateconfig.h"
#include "hookmode.h"
#include "http_json.h"
#include "json_util.h"
#include "jsonx.h"
#include "log.h"
#include "publicurl.h"
#include "repos.h"
#include "resync.h"
#include "routes.h"
#include "scheduler.h"
#include "settings.h"
#include "textsafe.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"public_url", "hook_url", "reachable", "warning"}: can a GitLab reach mrgate's public URL (core/publicurl.h)? */
static struct json_object *public_url_json(const struct app *app)
{
	char why[600], hook[PUBLICURL_HOOK_URL_MAX];
	bool local = publicurl_local(app->cfg.public_url, why, sizeof(why));
	apply_hook_url(app->cfg.public_url, hook, sizeof(hook)); /* fits: publicurl_check bounds the public URL */
	struct json_object *o = jx_object();
	json_object_object_add(o, "public_url", jx_str(app->cfg.public_url));
	json_object_object_add(o, "hook_url", jx_str(hook));
	json_object_object_add(o, "reachable", jx_bool(!local));
	json_object_object_add(o, "warning", local ? jx_str(why) : NULL);
	return o;
}

/* GET /api/connection/public-url: also answers before a connection exists, so the warning comes before any apply. */
int h_public_url_get(struct req *r)
{
	return http_send_json(r->conn, 200, public_url_json(r->app));
}

static int no_connection(struct req *r)
{
	return http_send_error(
	    r->conn, 404, "no_connection",
	    "no GitLab connection yet: connect one on the Connection page (or with PUT /api/connection)");
}

int h_connection_get(struct req *r)
{
	struct connection_info ci;
	memset(&ci, 0, sizeof(ci));
	enum core_status st = connection_get(r->app->db, &ci);
	if (st == CORE_ENOTFOUND)
		return no_connection(r);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not read the connection");
	struct json_object *j = connection_info_json(&ci);
	if (j)
		json_object_object_add(j, "public_url", public_url_json(r->app));
	int status = http_send_json(r->conn, 200, j);
	connection_info_clear(&ci);
	return status;
}

int h_connection_put(struct req *r)
{
	struct json_object *body = NULL;
	struct connection_info ci;
	int status;
	memset(&ci, 0, sizeof(ci));
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	struct connection_input in;
	memset(&in, 0, sizeof(in));
	char group[32];
	int64_t gid;
	/* a misspelt member is refused, not dropped (a walk's "ca_bundel" connected without its CA) */
	static const char *const fields[] = {"gitlab_url", "group", "token", "ca_bundle", NULL};
	if (!req_only_fields(r, body, fields, &status))
		goto out;
	if (!jsonx_str(body, "gitlab_url", &in.gitlab_url)) {
		status =
		    http_send_error(r->conn, 400, "invalid_input",
		                    "field \"gitlab_url\" must be a string such as \"https://gitlab.com\" (got %s)",
		                    json_type_of(body, "gitlab_url"));
		goto out;
	}
	if (jsonx_int64(body, "group", &gid)) {
		snprintf(group, sizeof(group), "%lld", (long long)gid);
		in.group = group;
	} else if (!jsonx_str(body, "group", &in.group)) {
		status = http_send_error(
		    r->conn, 400, "invalid_input",
		    "field \"group\" must be a group id or full path such as \"acme/platform\" (got %s)",
		    json_type_of(body, "group"));
		goto out;
	}
	if (!jsonx_str(body, "token", &in.token)) {
		status = http_send_error(r->conn, 400, "invalid_input", "field \"token\" must be a string (got %s)",
		                         json_type_of(body, "token"));
		goto out;
	}
	struct json_object *ca;
	if (json_object_object_get_ex(body, "ca_bundle", &ca) && ca && !jsonx_str(body, "ca_bundle", &in.ca_bundle)) {
		status = http_send_error(r->conn, 400, "invalid_input", "field \"ca_bundle\" must be PEM text or null");
		goto out;
	}
	in.allow_hosts = r->app->cfg.gitlab_url_allow;
	struct connection_tuning tune;
	app_gitlab_tuning(r->app, &tune);
	/* A person is waiting: do not spend minutes retrying a GitLab that does not answer. */
	if (tune.max_retries > 1)
		tune.max_retries = 1;
	if (tune.total_timeout_ms > 20000)
		tune.total_timeout_ms = 20000;
	enum core_status st = connection_put(r->app->db, r->app->secret_key, &in, &tune, r->who.actor, &ci);
	switch (st) {
	case CORE_OK: {
		struct json_object *j = connection_info_json(&ci);
		if (j)
			json_object_object_add(j, "public_url", public_url_json(r->app));
		status = http_send_json(r->conn, 200, j);
		break;
	}
	case CORE_EINVAL: status = http_send_error(r->conn, 400, "invalid_input", "%s", ci.token_problem); break;
	case CORE_EUNAUTH: {
		char code[32];
		snprintf(code, sizeof(code), "token_%s", ci.token_status[0] ? ci.token_status : "invalid");
		status = http_send_error(r->conn, 400, code, "%s", ci.token_problem);
		break;
	}
	case CORE_ENOTFOUND: status = http_send_error(r->conn, 400, "group_not_found", "%s", ci.token_problem); break;
	case CORE_ECONFLICT: status = http_send_error(r->conn, 409, "busy", "%s", ci.token_problem); break;
	case CORE_EFORBIDDEN:
		status = http_send_error(r->conn, 400, "token_insufficient", "%s", ci.token_problem);
		break;
	case CORE_EUNAVAIL:
	case CORE_ETIMEOUT:
	case CORE_ETHROTTLED:
	case CORE_EUPSTREAM:
		if (ci.token_problem[0])
			status = http_send_error(r->conn, 502,
			                         strstr(ci.token_problem, "TLS") ? "gitlab_tls" : "gitlab_unreachable",
			                         "%s", ci.token_problem);
		else
			status = http_send_status(r->conn, st, "could not store the connection");
		break;
	default: status = http_send_status(r->conn, st, "could not store the connection"); break;
	}
out:
	connection_info_clear(&ci);
	json_object_put(body);
	return status;
}

int h_connection_delete(struct req *r)
{
	char err[512] = "";
	enum core_status st = connection_delete(r->app->db, r->who.actor, err, sizeof(err));
	if (st == CORE_ENOTFOUND)
		return no_connection(r);
	if (st == CORE_ECONFLICT)
		return http_send_error(r->conn, 409, "busy", "%s", err);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not remove the connection");
	return http_send_raw(r->conn, 204, "application/json", "", 0, NULL);
}

/* --- discovery ------------------------------------------------------------------------------------------------- */

struct sync_job {
	struct app *app;
	int64_t run_id;
};

static void *sync_thread(void *arg)
{
	struct sync_job *job = arg;
	struct resync_ctx ctx;
	app_resync_ctx(job->app, &ctx);
	resync_execute(&ctx, job->run_id);
	free(job);
	return NULL;
}

int h_sync_start(struct req *r)
{
	struct resync_ctx ctx;
	app_resync_ctx(r->app, &ctx);
	int64_t run_id = 0;
	enum core_status st = resync_begin(&ctx, "api", &run_id);
	if (st == CORE_ENOTFOUND) /* nothing is missing from the request: the server has nothing to sync yet */
		return http_send_error(r->conn, 409, "no_connection",
		                       "no GitLab connection yet: connect one on the Connection page (or with PUT "
		                       "/api/connection), then sync");
	if (st == CORE_ECONFLICT)
		return http_send_error(
		    r->conn, 409, "sync_running",
		    "a sync is already running, or still applying what it found (run %lld); follow it"
		    " with GET /api/sync",
		    (long long)run_id);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not start a sync");
	struct sync_job *job = calloc(1, sizeof(*job));
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (job) {
		job->app = r->app;
		job->run_id = run_id;
	}
	if (!job || pthread_create(&t, &attr, sync_thread, job) != 0) {
		free(job);
		pthread_attr_destroy(&attr);
		discovery_fail(r->app->db, run_id, "could not start a thread");
		return http_send_status(r->conn, CORE_EINTERNAL, "could not start the sync");
	}
	pthread_attr_destroy(&attr);
	struct json_object *o = NULL;
	if (discovery_get(r->app->db, run_id, &o) != CORE_OK) {
		o = jx_object();
		json_object_object_add(o, "id", jx_int(run_id));
		json_object_object_add(o, "state", jx_str("running"));
	}
	return http_send_json(r->conn, 202, o);
}

int h_sync_get(struct req *r)
{
	char idbuf[24];
	int64_t id = 0;
	if (http_query_param(r->ri, "id", idbuf, sizeof(idbuf))) {
		char *end;
		id = strtoll(idbuf, &end, 10);
		if (*end || id <= 0)
			return http_send_error(r->conn, 400, "invalid_input", "id must be a positive integer");
	}
	struct json_object *o = NULL;
	enum core_status st = discovery_get(r->app->db, id, &o);
	if (st == CORE_ENOTFOUND && id)
		return http_send_failure(r->conn, st, "could not read the sync", "no sync with id %lld", (long long)id);
	if (st != CORE_OK)
		return http_send_failure(r->conn, st, "could not read the sync",
		                         "no sync has run yet: start one with POST /api/sync");
	return http_send_json(r->conn, 200, o);
}

/* --- repositories ------------------------------------------------------------------------------------------------ */

int h_repos_list(struct req *r)
{
	char q[400] = "", group[600] = "", status[40] = "", sort[16] = "", order[8] = "";
	char cursor[1600] = "", err[300];
	struct repos_filter f;
	bool has_q, has_group, has_status, has_cursor;
	int sent;
	memset(&f, 0, sizeof(f));
	f.archived = -1;
	/* filters and the cursor are never cut: a group path cut short would list another group's repos */
	if (!http_query_text(r->conn, r->ri, "q", q, sizeof(q), &has_q, &sent) ||
	    !http_query_text(r->conn, r->ri, "group", group, sizeof(group), &has_group, &sent) ||
	    !http_query_text(r->conn, r->ri, "status", status, sizeof(status), &has_status, &sent) ||
	    !http_query_text(r->conn, r->ri, "cursor", cursor, sizeof(cursor), &has_cursor, &sent))
		return sent;
	/* a group no GitLab path can be listed nothing without a word, where Configure Scans refuses it: refused too
	 * (text that is not UTF-8 is the page statement's to refuse, with its own message) */
	size_t bad_at = 0;
	if (has_group && group[0] && !gateconfig_group_path_valid(group) &&
	    textsafe_utf8_valid(group, strlen(group), &bad_at))
		return http_send_error(
		    r->conn, 400, "invalid_input",
		    "group \"%.100s\" is not a GitLab group path: segments of letters, digits, _, - and ., "
		    "separated by /",
		    group);
	f.q = has_q ? q : NULL;
	f.group = has_group ? group : NULL;
	f.status = has_status ? status : NULL;
	f.cursor = has_cursor ? cursor : NULL;
	if (!http_query_bool(r->conn, r->ri, "archived", &f.archived, &sent))
		return sent;
	if (http_query_param(r->ri, "sort", sort, sizeof(sort))) {
		if (strcmp(sort, "path") == 0)
			f.sort = REPOS_SORT_PATH;
		else if (strcmp(sort, "activity") == 0)
			f.sort = REPOS_SORT_ACTIVITY;
		else
			return http_send_error(r->conn, 400, "invalid_input", "sort must be path or activity");
	}
	if (http_query_param(r->ri, "order", order, sizeof(order))) {
		if (strcmp(order, "desc") == 0)
			f.descending = true;
		else if (strcmp(order, "asc") != 0)
			return http_send_error(r->conn, 400, "invalid_input", "order must be asc or desc");
	}
	long limit = 0;
	if (!http_query_limit(r->conn, r->ri, "limit", 1, 500, &limit, &sent))
		return sent;
	f.limit = (int)limit;
	/* ids=1,2,3: only these repos (a selection of ticked rows, for its summary) */
	static const size_t max_ids = 1000;
	char *ids_txt = malloc(max_ids * 21 + 1);
	int64_t *ids = malloc(max_ids * sizeof(int64_t));
	if (!ids_txt || !ids) {
		free(ids_txt);
		free(ids);
		return http_send_status(r->conn, CORE_ENOMEM, "out of memory");
	}
	if (http_query_param(r->ri, "ids", ids_txt, max_ids * 21 + 1)) {
		size_t n = 0;
		for (char *save = NULL, *t = strtok_r(ids_txt, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (n == max_ids || !parse_positive_id(t, &ids[n])) {
				free(ids_txt);
				free(ids);
				return http_send_error(r->conn, 400, "invalid_input",
				                       "ids must be 1 to 1000 repository ids separated by commas");
			}
			n++;
		}
		if (n == 0) { /* "ids=": a selection of nothing is no filter a client means */
			free(ids_txt);
			free(ids);
			return http_send_error(r->conn, 400, "invalid_input",
			                       "ids must be 1 to 1000 repository ids separated by commas");
		}
		f.ids = ids;
		f.n_ids = (int)n;
	}
	free(ids_txt);
	char with[16] = "";
	if (http_query_param(r->ri, "with", with, sizeof(with)) && strcmp(with, "summary") != 0) {
		free(ids);
		return http_send_error(r->conn, 400, "invalid_input", "with must be summary");
	}
	char *page = NULL;
	size_t len = 0;
	struct json_object *sum = NULL;
	/* as of the request's start: the snapshot its identity was read in */
	enum core_status st = repos_list_text(r->app->db, &f, r->who.snapshot, &page, &len, err, sizeof(err));
	if (st == CORE_OK && with[0])
		st = repos_summary(r->app->db, &f, &sum, err, sizeof(err));
	free(ids);
	if (st == CORE_EINVAL) {
		free(page);
		return http_send_error(r->conn, 400, "invalid_input", "%s", err);
	}
	if (st != CORE_OK) {
		free(page);
		return http_send_status(r->conn, st, "could not list the repositories");
	}
	if (sum) { /* the page's object with "summary" as its last member */
		struct buf b = {0};
		buf_append(&b, page, len - 1);
		buf_puts(&b, ",\"summary\":");
		buf_puts(&b,
		         json_object_to_json_string_ext(sum, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		buf_putc(&b, '}');
		json_object_put(sum);
		free(page);
		len = b.len;
		page = buf_steal(&b);
	}
	http_send_raw(r->conn, 200, "application/json", page, len, NULL);
	free(page);
	return 200;
}

int h_repo_get(struct req *r)
{
	static const struct req_read how = {REPO_ID_INVALID, repos_get, "could not read the repository", REPO_MISSING};
	return req_read_by_id(r, &how);
}

/* GET /api/repos/{id}/history?limit=: the latest events, newest first (a walk's limit=5 was ignored). */
int h_repo_history(struct req *r)
{
	int64_t id;
	long limit = 200;
	int status;
	struct json_object *o = NULL;
	if (!req_path_id(r, REPO_ID_INVALID, &id, &status) ||
	    !http_query_limit(r->conn, r->ri, "limit", 1, 500, &limit, &status))
		return status;
	enum core_status st = repos_history(r->app->db, id, (int)limit, &o);
	return http_send_read(r->conn, st, o, "could not read the repository's history", REPO_MISSING, (long long)id);
}

int h_groups_list(struct req *r)
{
	struct json_object *o = NULL;
	enum core_status st = repos_groups(r->app->db, &o);
	return http_send_read(r->conn, st, o, "could not list the groups", NULL);
}

/* --- settings -------------------------------------------------------------------------------------------------- */

/* The settings with the scheduler's state and the last resync; job (taken, may be NULL) as "hook_mode_job". */
static int send_settings(struct req *r, struct json_object *job, int status)
{
	struct settings set;
	enum core_status st = settings_get(r->app->db, r->app->cfg.resync_interval, &set);
	if (st != CORE_OK) {
		json_object_put(job);
		return http_send_status(r->conn, st, "could not read the settings");
	}
	struct json_object *o = settings_json(&set), *sched = NULL, *last = NULL;
	if (scheduler_state_json(r->app->db, &sched) == CORE_OK)
		json_object_object_add(o, "scheduler", sched);
	if (discovery_get(r->app->db, 0, &last) == CORE_OK)
		json_object_object_add(o, "last_resync", last);
	else
		json_object_object_add(o, "last_resync", NULL);
	if (job)
		json_object_object_add(o, "hook_mode_job", job);
	return http_send_json(r->conn, status, o);
}

int h_settings_get(struct req *r)
{
	return send_settings(r, NULL, 200);
}

/* Which scan types this server can run (DESIGN §2: the dashboard says so before a user enables one). */
int h_scanners_get(struct req *r)
{
	return http_send_json(r->conn, 200, config_scanners_json(&r->app->cfg));
}

/* A hook_mode change answers 202 with the switch job (hook_mode_job); the mode changes when the job succeeds. */
int h_settings_put(struct req *r)
{
	struct json_object *body = NULL, *job = NULL;
	int status;
	char err[400] = "";
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	enum core_status st = hookmode_settings_put(&r->app->apply, body, r->who.actor, &job, err, sizeof(err));
	json_object_put(body);
	if (st == CORE_EINVAL)
		return http_send_error(r->conn, 400, "invalid_input", "%s", err);
	if (st == CORE_ECONFLICT)
		return http_send_error(r->conn, 409, "conflict", "%s", err);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not store the settings");
	return send_settings(r, job, job ? 202 : 200);
}
