/*
 * server/handlers_config.c
 *    Gating configs (default, per group, per repo), bulk configure with dry run (core/dryrun.h), the audit log;
 *    a write answers with the apply job it started (core/applyjob.h).
 */
#include "applyjob.h"
#include "audit.h"
#include "bulkconfigure.h"
#include "config.h"
#include "configure.h"
#include "connection.h"
#include "gateconfig.h"
#include "http_json.h"
#include "jobs_view.h"
#include "json_util.h"
#include "jsonx.h"
#include "log.h"
#include "routes.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- helpers -------------------------------------------------------------------------------------------------- */

/* A config write in progress: the request body, the validated config, the stored result and the repos it marked. */
struct config_write {
	struct json_object *body, *cfg, *out;
	struct gateconfig_marked marked;
};

/*
 * Read the body and validate it as a config; *unmanaged, *new_group and *confirm_ungate, when not NULL, take the
 * "unmanaged", "confirm_new_group" and "confirm_ungate" members that sit beside the config fields. At the default_level
 * a field sent as null is refused, as is no field at all. A scan type with no scanner on this server needs
 * "confirm_no_scanner": true beside the fields, as POST /api/configure does (every merge request the config covers
 * would fail). On failure the 4xx has been sent and nothing is kept.
 */
static bool read_config(struct req *r, bool *unmanaged, bool *new_group, bool *confirm_ungate, bool default_level,
                        struct config_write *w, int *status)
{
	char err[400], missing[200];
	bool confirm = false;
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &w->body, status))
		return false;
	if (unmanaged) {
		if (!req_bool(r, w->body, "unmanaged", unmanaged, NULL, status))
			goto fail;
		json_object_object_del(w->body, "unmanaged");
	}
	if (new_group) {
		if (!req_bool(r, w->body, "confirm_new_group", new_group, NULL, status))
			goto fail;
		json_object_object_del(w->body, "confirm_new_group");
	}
	if (confirm_ungate) {
		if (!req_bool(r, w->body, "confirm_ungate", confirm_ungate, NULL, status))
			goto fail;
		json_object_object_del(w->body, "confirm_ungate");
	}
	if (!req_bool(r, w->body, "confirm_no_scanner", &confirm, NULL, status))
		goto fail;
	json_object_object_del(w->body, "confirm_no_scanner");
	/* at the default a field sent as null, or no field, would read as left out: its built-in value (a walk
	 * ungated every repo with "enabled": null); below it, null inherits */
	if ((default_level ? gateconfig_validate_default : gateconfig_validate)(w->body, &w->cfg, err, sizeof(err)) !=
	    CORE_OK) {
		*status = http_send_error(r->conn, 400, "invalid_config", "%s", err);
		goto fail;
	}
	if (confirm || !config_missing_scanners(&r->app->cfg, jsonx_get(w->cfg, "scans"), missing, sizeof(missing)))
		return true;
	*status =
	    http_send_error(r->conn, 400, "no_scanner",
	                    "no scanner on this server for %s: every merge request of the repositories this "
	                    "config covers would fail \"no scanner configured\"; configure one (MRGATE_SCANNER_*, "
	                    "see GET /api/scanners) or send \"confirm_no_scanner\": true",
	                    missing);
	json_object_put(w->cfg);
	w->cfg = NULL;
fail:
	json_object_put(w->body);
	w->body = NULL;
	return false;
}

/*
 * The answer of a config write, which frees w: its result (NULL: an empty object) with the apply it started when st
 * is CORE_OK; else 404 "not_found" with missing_fmt (when given) or the status's error with the message failed.
 */
__attribute__((format(printf, 5, 6))) static int reply_write(struct req *r, enum core_status st, struct config_write *w,
                                                             const char *failed, const char *missing_fmt, ...)
{
	json_object_put(w->body);
	json_object_put(w->cfg);
	if (st == CORE_OK) {
		struct json_object *obj = w->out ? w->out : jx_object();
		json_object_object_add(obj, "apply",
		                       applyjob_start_marked(&r->app->apply, r->who.actor, &w->marked, false, false));
		return http_send_json(r->conn, 200, obj);
	}
	json_object_put(w->out);
	gateconfig_marked_clear(&w->marked);
	if (st != CORE_ENOTFOUND || !missing_fmt)
		return http_send_status(r->conn, st, "%s", failed);
	char msg[400];
	va_list ap;
	va_start(ap, missing_fmt);
	vsnprintf(msg, sizeof(msg), missing_fmt, ap);
	va_end(ap);
	return http_send_error(r->conn, 404, "not_found", "%s", msg);
}

/* --- default -------------------------------------------------------------------------------------------------- */

int h_config_default_get(struct req *r)
{
	struct json_object *o = NULL;
	enum core_status st = gateconfig_get_default(r->app->db, &o);
	return http_send_read(r->conn, st, o, "could not read the default config", NULL);
}

int h_config_default_put(struct req *r)
{
	struct config_write w = {0};
	int status;
	if (!read_config(r, NULL, NULL, NULL, true, &w, &status))
		return status;
	enum core_status st = gateconfig_put_default(r->app->db, w.cfg, r->who.actor, &w.marked, &w.out);
	return reply_write(r, st, &w, "could not store the default config", NULL);
}

/* --- groups --------------------------------------------------------------------------------------------------- */

static bool group_path(struct req *r, int *status)
{
	if (!gateconfig_group_path_valid(r->params[0])) {
		*status =
		    http_send_error(r->conn, 400, "invalid_input",
		                    "\"%.200s\" is not a GitLab group path such as \"acme/platform\"", r->params[0]);
		return false;
	}
	return true;
}

int h_config_groups_list(struct req *r)
{
	struct json_object *o = NULL;
	enum core_status st = gateconfig_list_groups(r->app->db, &o);
	return http_send_read(r->conn, st, o, "could not list the group configs", NULL);
}

int h_config_group_get(struct req *r)
{
	int status;
	if (!group_path(r, &status))
		return status;
	struct json_object *o = NULL;
	enum core_status st = gateconfig_get_group(r->app->db, r->params[0], &o);
	if (st == CORE_ENOTFOUND)
		return http_send_error(r->conn, 404, "not_found",
		                       "group \"%.200s\" has no config of its own; it inherits the default",
		                       r->params[0]);
	return http_send_read(r->conn, st, o, "could not read the group config", NULL);
}

/*
 * 409 would_ungate for a group config change that stops gating repositories (u from gateconfig_put_group or
 * gateconfig_delete_group; its examples are handed to the answer): doing is "removing" or "saving", why says what
 * the repositories' config then is, retry how to make the change anyway.
 */
static int send_would_ungate(struct req *r, struct gateconfig_ungate *u, const char *doing, const char *why,
                             const char *retry)
{
	char msg[700];
	bool one = u->n == 1;
	snprintf(msg, sizeof(msg),
	         "%s the config of \"%.200s\" stops gating %lld %s: %s, and the job that follows would take mrgate's "
	         "webhook and merge block off %s on GitLab; nothing was changed (%s)",
	         doing, r->params[0], (long long)u->n, one ? "repository" : "repositories", why, one ? "it" : "them",
	         retry);
	struct json_object *o = jx_object();
	json_object_object_add(o, "error", jx_str("would_ungate"));
	json_object_object_add(o, "message", jx_str(msg));
	json_object_object_add(o, "ungated", jx_int(u->n));
	json_object_object_add(o, "examples", u->examples);
	u->examples = NULL;
	return http_send_json(r->conn, 409, o);
}

int h_config_group_put(struct req *r)
{
	struct config_write w = {0};
	int status;
	bool new_group = false;
	struct gateconfig_ungate ungate = {0};
	if (!group_path(r, &status) || !read_config(r, NULL, &new_group, &ungate.confirmed, false, &w, &status))
		return status;
	if (json_object_object_length(w.cfg) == 0) {
		/* it would set nothing, yet be listed as a group config (a walk's Save of an empty form) */
		json_object_put(w.body);
		json_object_put(w.cfg);
		return http_send_error(
		    r->conn, 400, "invalid_config",
		    "a group config sets at least one field (a field left out or null is inherited): with none "
		    "it would change nothing; for the group to inherit everything, it needs no config (DELETE "
		    "removes one)");
	}
	char err[400];
	bool is_repo = false;
	enum core_status st = gateconfig_group_inside(r->app->db, r->params[0], &is_repo, err, sizeof(err));
	if (st == CORE_EINVAL) {
		json_object_put(w.body);
		json_object_put(w.cfg);
		return http_send_error(r->conn, 400, is_repo ? "not_a_group" : "outside_group", "%s", err);
	}
	/* a new config for a group no sync has listed: likely a typo (gating nothing), as in POST /api/configure */
	bool listed = true;
	if (st == CORE_OK && !new_group)
		st = gateconfig_group_listed(r->app->db, r->params[0], &listed);
	if (st == CORE_OK && !listed) {
		struct json_object *cur = NULL;
		st = gateconfig_get_group(r->app->db, r->params[0], &cur);
		json_object_put(cur);
		if (st == CORE_ENOTFOUND) {
			json_object_put(w.body);
			json_object_put(w.cfg);
			return http_send_error(
			    r->conn, 400, "unknown_group",
			    "no group \"%.200s\" has been listed by a sync (GET /api/groups lists "
			    "those that have): check the path, or, to store a config for a group still "
			    "to come (its repositories inherit it once a sync lists them), send "
			    "\"confirm_new_group\": true",
			    r->params[0]);
		}
	}
	if (st == CORE_OK)
		st = gateconfig_put_group(r->app->db, r->params[0], w.cfg, r->who.actor, &ungate, &w.marked, &w.out);
	if (st == CORE_ECONFLICT && ungate.n > 0) {
		/* a walk's Edit set "Gate these repositories" to Inherit: 92 repositories ungated, unannounced */
		json_object_put(w.body);
		json_object_put(w.cfg);
		return send_would_ungate(r, &ungate, "saving",
		                         ungate.n == 1 ? "with it, its config no longer enables gating"
		                                       : "with it, their config no longer enables gating",
		                         "send \"confirm_ungate\": true to save it anyway");
	}
	json_object_put(ungate.examples);
	if (st == CORE_OK && w.out)
		json_object_object_add(w.out, "ungated", jx_int(ungate.n));
	return reply_write(r, st, &w, "could not store the group config", NULL);
}

int h_config_group_delete(struct req *r)
{
	struct config_write w = {0};
	int status;
	if (!group_path(r, &status))
		return status;
	/* ?confirm_ungate=true: remove it even when that stops gating repositories (answered 409 would_ungate else) */
	struct gateconfig_ungate ungate = {0};
	int confirm = 0;
	if (!http_query_bool(r->conn, r->ri, "confirm_ungate", &confirm, &status))
		return status;
	ungate.confirmed = confirm == 1;
	enum core_status st = gateconfig_delete_group(r->app->db, r->params[0], r->who.actor, &ungate, &w.marked);
	if (st == CORE_ECONFLICT && ungate.n > 0)
		return send_would_ungate(r, &ungate, "removing",
		                         ungate.n == 1 ? "what it would inherit then does not enable gating"
		                                       : "what they would inherit then does not enable gating",
		                         "send confirm_ungate=true to remove it anyway");
	json_object_put(ungate.examples);
	if (st == CORE_OK) {
		w.out = jx_object();
		json_object_object_add(w.out, "ungated", jx_int(ungate.n));
	}
	return reply_write(r, st, &w, "could not remove the group config", "group \"%.200s\" has no config of its own",
	                   r->params[0]);
}

/* --- repos ---------------------------------------------------------------------------------------------------- */

int h_repo_config_get(struct req *r)
{
	static const struct req_read how = {REPO_ID_INVALID, gateconfig_get_repo,
	                                    "could not read the repository's config", REPO_MISSING};
	return req_read_by_id(r, &how);
}

int h_repo_config_put(struct req *r)
{
	struct config_write w = {0};
	int status;
	int64_t id;
	bool unmanaged = false;
	if (!req_path_id(r, REPO_ID_INVALID, &id, &status) ||
	    !read_config(r, &unmanaged, NULL, NULL, false, &w, &status))
		return status;
	enum core_status st = gateconfig_put_repo(r->app->db, id, w.cfg, unmanaged, r->who.actor, &w.marked, &w.out);
	return reply_write(r, st, &w, "could not store the repository's config", REPO_MISSING, (long long)id);
}

int h_repo_config_delete(struct req *r)
{
	struct config_write w = {0};
	int status;
	int64_t id;
	if (!req_path_id(r, REPO_ID_INVALID, &id, &status))
		return status;
	enum core_status st = gateconfig_delete_repo(r->app->db, id, r->who.actor, &w.marked);
	/* nothing deleted: a repo with no config of its own, or no repo at all */
	struct json_object *repo = NULL;
	bool known = st != CORE_ENOTFOUND || gateconfig_get_repo(r->app->db, id, &repo) != CORE_ENOTFOUND;
	json_object_put(repo);
	return reply_write(r, st, &w, "could not reset the repository's config",
	                   known ? "repository %lld has no config of its own; it already inherits" : REPO_MISSING,
	                   (long long)id);
}

/* --- bulk configure ------------------------------------------------------------------------------------------- */

/* Read the selection into req (ids points into *ids_out, which the caller frees). On failure the 400 is sent. */
static bool read_selection(struct req *r, struct json_object *body, struct configure_req *req, int64_t **ids_out,
                           int *status)
{
	struct json_object *sel = jsonx_get(body, "selection"), *arr = NULL, *flt = NULL;
	req->filter.archived = -1;
	if (sel && json_object_is_type(sel, json_type_array))
		arr = sel;
	else if (sel && json_object_is_type(sel, json_type_object)) {
		json_object_object_foreach(sel, key, val)
		{
			(void)val;
			if (strcmp(key, "ids") != 0 && strcmp(key, "filter") != 0) {
				*status = http_send_error(r->conn, 400, "invalid_input",
				                          "selection member \"%.60s\" is not valid: a selection is "
				                          "{\"ids\": [...]} or {\"filter\": {...}}",
				                          key);
				return false;
			}
		}
		jsonx_array(sel, "ids", &arr);
		jsonx_object(sel, "filter", &flt);
		/* both: which one was meant is unknown (the ids were taken and the filter ignored without a word) */
		if (jsonx_get(sel, "ids") && jsonx_get(sel, "filter")) {
			*status = http_send_error(r->conn, 400, "invalid_input",
			                          "the selection has both \"ids\" and \"filter\": send one of them");
			return false;
		}
	}
	if (!arr && !flt) {
		*status = http_send_error(r->conn, 400, "invalid_input",
		                          "field \"selection\" must be an array of repository ids, {\"ids\": [...]} or "
		                          "{\"filter\": {\"q\", \"group\", \"status\", \"archived\", \"path\"}}");
		return false;
	}
	if (arr) {
		size_t n = json_object_array_length(arr);
		if (n == 0 || n > 100000) {
			*status = http_send_error(r->conn, 400, "invalid_input",
			                          "the selection must name 1 to 100000 repositories");
			return false;
		}
		*ids_out = malloc(n * sizeof(int64_t));
		if (!*ids_out) {
			*status = http_send_status(r->conn, CORE_ENOMEM, "out of memory");
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(arr, i);
			if (!jsonx_as_int64(e, &(*ids_out)[i]) || (*ids_out)[i] <= 0) {
				/* json-c keeps a number past 2^64 as 2^64 - 1: not shown as if it had been sent */
				bool big = json_object_is_type(e, json_type_int) &&
				           json_object_get_int64(e) == INT64_MAX &&
				           json_object_get_uint64(e) >= (uint64_t)INT64_MAX;
				const char *sent =
				    big ? "a larger number" : json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
				*status =
				    http_send_error(r->conn, 400, "invalid_input",
				                    "selection ids are whole numbers from 1 to 9223372036854775807; "
				                    "id %zu of the list is not (%.40s)",
				                    i + 1, sent);
				return false;
			}
		}
		req->ids = *ids_out;
		req->n_ids = n;
		return true;
	}
	json_object_object_foreach(flt, key, val)
	{
		const char *s = NULL;
		bool b;
		/* an empty or null member is refused, not read as "any": a script's unset variable selected every
		 * repository and changed the default config */
		if (!val || (json_object_is_type(val, json_type_string) && json_object_get_string_len(val) == 0)) {
			*status = http_send_error(r->conn, 400, "invalid_input",
			                          "filter member \"%.60s\" is %s: leave it out to select without it",
			                          key, val ? "empty" : "null");
			return false;
		}
		if (strcmp(key, "archived") == 0) {
			if (!jsonx_as_bool(val, &b))
				goto bad;
			req->filter.archived = b;
			continue;
		}
		if (!jsonx_as_str(val, &s))
			goto bad;
		if (strcmp(key, "q") == 0)
			req->filter.q = s;
		else if (strcmp(key, "group") == 0)
			req->filter.group = s;
		else if (strcmp(key, "status") == 0)
			req->filter.status = s;
		else if (strcmp(key, "path") == 0)
			req->path_glob = s;
		else
			goto bad;
		continue;
	bad:
		*status = http_send_error(r->conn, 400, "invalid_input",
		                          "filter member \"%.60s\" is not valid: a filter has q, group, status, path "
		                          "(strings) and archived (boolean)",
		                          key);
		return false;
	}
	return true;
}

int h_configure(struct req *r)
{
	struct json_object *body = NULL, *o = NULL;
	struct configure_req req;
	int64_t *ids = NULL;
	int status;
	char err[400];
	memset(&req, 0, sizeof(req));
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	/* a member not known is refused: "dryrun" for dry_run was ignored, and the change stored for real */
	static const char *const members[] = {"selection",
	                                      "config",
	                                      "dry_run",
	                                      "reapply",
	                                      "confirm_no_scanner",
	                                      "confirm_new_group",
	                                      "expect_overridden",
	                                      "plan_limit",
	                                      "plan_cursor",
	                                      "resend_hook_tokens"};
	if (json_object_is_type(body, json_type_object)) {
		json_object_object_foreach(body, key, val)
		{
			(void)val;
			bool known = false;
			for (size_t i = 0; i < sizeof(members) / sizeof(members[0]) && !known; i++)
				known = strcmp(key, members[i]) == 0;
			if (!known) {
				status =
				    http_send_error(r->conn, 400, "invalid_input",
				                    "member \"%.60s\" is not valid: a configure has selection, config, "
				                    "dry_run, reapply, resend_hook_tokens, confirm_no_scanner, "
				                    "confirm_new_group and expect_overridden",
				                    key);
				goto out;
			}
		}
	}
	if (!read_selection(r, body, &req, &ids, &status))
		goto out;
	if (!req_bool(r, body, "dry_run", &req.dry_run, NULL, &status) ||
	    !req_bool(r, body, "reapply", &req.reapply, NULL, &status) ||
	    !req_bool(r, body, "resend_hook_tokens", &req.resend_hook_tokens, NULL, &status))
		goto out;
	if (req.resend_hook_tokens && (!req.reapply || req.dry_run)) {
		status =
		    http_send_error(r->conn, 400, "invalid_input",
		                    "\"resend_hook_tokens\" goes with \"reapply\": true and not with a dry run (it "
		                    "updates the hook of every selected repository, which is all a preview would say)");
		goto out;
	}
	/* a re-apply changes no field unless told: "config" may be left out (the same as {}) */
	if (req.reapply && json_object_is_type(body, json_type_object) &&
	    !json_object_object_get_ex(body, "config", NULL))
		json_object_object_add(body, "config", json_object_new_object());
	if (!(req.config = jsonx_get(body, "config"))) {
		status = http_send_error(r->conn, 400, "invalid_config",
		                         "field \"config\" must be an object with some of the fields enabled, fail_on, "
		                         "scans, block_merge, comment, ignore_paths (with \"reapply\": true it may be "
		                         "left out)");
		goto out;
	}
	/* a configure is a patch: a field left out keeps what each repo has, so null would mean the same without a word
	 * (a walk sent "enabled": null to un-gate and nothing changed) */
	if (json_object_is_type(req.config, json_type_object)) {
		json_object_object_foreach(req.config, key, val)
		{
			if (!val) {
				status = http_send_error(
				    r->conn, 400, "invalid_config",
				    "field \"%.60s\" is null: a configure changes only the fields sent, so "
				    "leave it out to keep what each repository has, or send a value",
				    key);
				goto out;
			}
		}
	}
	/* the plan is no longer in this answer: a dry run is a job whose plan pages with GET /api/jobs/{id}/plan */
	if (jsonx_get(body, "plan_limit") || jsonx_get(body, "plan_cursor")) {
		status = http_send_error(
		    r->conn, 400, "invalid_input",
		    "a dry run is a job: read its plan with GET /api/jobs/{plan_job_id}/plan?limit=&cursor="
		    ", not with plan_limit or plan_cursor");
		goto out;
	}
	/* a scan type with no scanner on this server fails every merge request: only on explicit confirmation */
	bool confirm = false;
	if (!req_bool(r, body, "confirm_no_scanner", &confirm, NULL, &status))
		goto out;
	char missing[200];
	if (!confirm &&
	    config_missing_scanners(&r->app->cfg, jsonx_get(req.config, "scans"), missing, sizeof(missing))) {
		status = http_send_error(
		    r->conn, 400, "no_scanner",
		    "no scanner on this server for %s: every merge request of the selected repositories "
		    "would fail \"no scanner configured\"; configure one (MRGATE_SCANNER_*, see GET "
		    "/api/scanners) or send \"confirm_no_scanner\": true",
		    missing);
		goto out;
	}
	if (!req_bool(r, body, "confirm_new_group", &req.confirm_new_group, NULL, &status))
		goto out;
	/* what the user was shown the configure replaces (the dashboard sends its preview's summary.overridden) */
	struct json_object *expect = NULL; /* present as null: refused too, never read as "nothing expected" */
	if (json_object_object_get_ex(body, "expect_overridden", &expect) &&
	    !configure_expect_check(req.expect_overridden = expect, err, sizeof(err))) {
		status = http_send_error(r->conn, 400, "invalid_input", "%s", err);
		goto out;
	}
	req.actor = r->who.actor;
	const char *code = NULL;
	enum core_status st = bulkconfigure_run(&r->app->apply, &req, &o, &code, err, sizeof(err));
	if (st != CORE_OK && o) { /* overrides_changed: the error with what the configure would replace */
		json_object_object_add(o, "error", jx_str(code));
		json_object_object_add(o, "message", jx_str(err));
		status = http_send_json(r->conn, http_status_of(st), o);
	} else if (st != CORE_OK)
		status = http_send_error(r->conn, http_status_of(st), code, "%s", err);
	else /* a job started (the apply, or the dry run's): 202 */
		status = http_send_json(r->conn, jsonx_get(o, "apply") || jsonx_get(o, "plan_job") ? 202 : 200, o);
out:
	json_object_put(body);
	free(ids);
	return status;
}

/* GET /api/jobs/{id}/plan?limit=&cursor=: the plan a dry-run job has read so far, with the job's progress. */
int h_job_plan(struct req *r)
{
	int64_t id = 0, after = 0;
	long limit = 100;
	int status;
	if (!req_path_id(r, "a job id is a positive integer", &id, &status))
		return status;
	if (!http_query_limit(r->conn, r->ri, "limit", 1, JOBS_VIEW_ITEMS_MAX, &limit, &status) ||
	    !http_query_cursor(r->conn, r->ri, "cursor", &after, &status))
		return status;
	struct json_object *page = NULL, *job = NULL;
	enum core_status st = jobs_view_plan(r->app->db, id, after, (int)limit, &page);
	if (st == CORE_ESTATE)
		return http_send_error(r->conn, 409, "not_a_dry_run", "job %lld is not a dry run: it has no plan",
		                       (long long)id);
	if (st == CORE_OK)
		st = jobs_view_get(r->app->db, id, &job);
	if (st != CORE_OK) {
		json_object_put(page);
		return http_send_failure(r->conn, st, "could not read the plan", "no job with id %lld", (long long)id);
	}
	json_object_object_add(page, "job", job);
	return http_send_json(r->conn, 200, page);
}

/* --- audit ---------------------------------------------------------------------------------------------------- */

int h_audit_list(struct req *r)
{
	char action[100] = "";
	long limit = 50;
	int status;
	int64_t before = 0;
	if (!http_query_limit(r->conn, r->ri, "limit", 1, 500, &limit, &status) ||
	    !http_query_cursor(r->conn, r->ri, "cursor", &before, &status))
		return status;
	bool has_action = false;
	if (!http_query_text(r->conn, r->ri, "action", action, sizeof(action), &has_action, &status))
		return status;
	if (strspn(action, "abcdefghijklmnopqrstuvwxyz0123456789._") != strlen(action))
		return http_send_error(r->conn, 400, "invalid_input",
		                       "action is the start of an audit action such as \"config.default.update\" or "
		                       "\"settings\": lower-case letters, digits, \".\" and \"_\"");
	struct json_object *o = NULL;
	enum core_status st = audit_list(r->app->db, (int)limit, before, action, r->who.is_admin, &o);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not read the audit log");
	return http_send_json(r->conn, 200, o);
}
