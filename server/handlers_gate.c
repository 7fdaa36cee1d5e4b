/*
 * server/handlers_gate.c
 *    The GitLab webhook receiver (POST /hooks/gitlab) and the gate runs API (GET /api/gates, /api/gates/{id},
 *    POST /api/gates/{id}/bypass) and ignored findings (GET/POST /api/ignores, DELETE /api/ignores/{id}).
 *
 * The receiver is thin: check the token before reading the body (a stranger costs no allocation), read the body
 * under MRGATE_MAX_HOOK_BYTES, hand it to core/webhook.c, answer. Everything authenticated gets a 2xx once it is
 * recorded - also events that are not gated - because GitLab disables a hook after 4 failures in a row; only a
 * database outage answers 503, so that GitLab retries the delivery later.
 */
#include "connection.h"
#include "crypto.h"
#include "gate.h"
#include "gatebypass.h"
#include "http_json.h"
#include "ignores.h"
#include "jobs.h"
#include "jsonx.h"
#include "log.h"
#include "routes.h"
#include "webhook.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int h_hook_gitlab(struct req *r)
{
	struct connection_client *cc = NULL;
	struct connection_tuning tune;
	char *body = NULL;
	size_t len = 0;
	int status;
	app_gitlab_tuning(r->app, &tune);
	enum core_status st = connection_client_shared(r->app->db, r->app->secret_key, &tune, &cc);
	if (st != CORE_OK && st != CORE_ENOTFOUND && st != CORE_ECRYPTO) {
		status = http_send_status(r->conn, st, "could not check the webhook token: try again");
		goto out;
	}
	const char *secret = cc ? connection_client_webhook_secret(cc) : NULL;
	const char *token = mg_get_header(r->conn, "X-Gitlab-Token");
	if (!secret || !token || !crypto_equal(token, secret)) {
		struct webhook_delivery none = {.token = token, .event = mg_get_header(r->conn, "X-Gitlab-Event")};
		struct webhook_result res;
		webhook_receive(r->app->db, secret, &none, &res); /* counts and logs the refusal; stores nothing */
		status = http_send_error(r->conn, 401, "unauthorized",
		                         token ? "X-Gitlab-Token does not match this installation's webhook secret"
		                               : "X-Gitlab-Token header missing: set the hook's secret token");
		goto out;
	}
	if (!http_read_body(r->conn, r->app->cfg.max_hook_bytes, &body, &len, &status))
		goto out;
	struct webhook_delivery d = {.token = token,
	                             .event = mg_get_header(r->conn, "X-Gitlab-Event"),
	                             .idempotency_key = mg_get_header(r->conn, "Idempotency-Key"),
	                             .webhook_uuid = mg_get_header(r->conn, "X-Gitlab-Webhook-UUID"),
	                             .body = body,
	                             .len = len};
	struct webhook_result res;
	st = webhook_receive(r->app->db, secret, &d, &res);
	if (st == CORE_EUNAUTH) {
		status = http_send_error(r->conn, 401, "unauthorized",
		                         "X-Gitlab-Token does not match this installation's webhook secret");
		goto out;
	}
	if (st != CORE_OK) {
		/* not recorded: 503 makes GitLab deliver it again */
		status = http_send_error(r->conn, 503, core_status_code(st),
		                         "could not record the event (database unavailable?); GitLab will retry");
		goto out;
	}
	if (res.job_id && r->app->apply.jobs)
		jobs_runner_wake(r->app->apply.jobs);
	struct json_object *o = jx_object();
	json_object_object_add(o, "outcome", jx_str(webhook_outcome_name(res.outcome)));
	json_object_object_add(o, "event", jx_str(res.event_label));
	if (res.event_id)
		json_object_object_add(o, "event_id", jx_int(res.event_id));
	if (res.run_id)
		json_object_object_add(o, "run_id", jx_int(res.run_id));
	if (res.reason[0])
		json_object_object_add(o, "reason", jx_str(res.reason));
	status = http_send_json(r->conn, res.outcome == WEBHOOK_QUEUED ? 202 : 200, o);
out:
	free(body);
	connection_client_release(cc);
	return status;
}

/* A positive integer query parameter; false (400 sent) when present and malformed. */
static bool int_param(struct req *r, const char *name, int64_t *out, int *status)
{
	char buf[32];
	*out = 0;
	if (!http_query_param(r->ri, name, buf, sizeof(buf)) || !buf[0])
		return true;
	char *end;
	long long v = strtoll(buf, &end, 10);
	if (*end || v <= 0) {
		*status = http_send_error(r->conn, 400, "invalid_input", "%s must be a positive integer (got \"%s\")",
		                          name, buf);
		return false;
	}
	*out = v;
	return true;
}

int h_gates_list(struct req *r)
{
	struct gate_filter f;
	char verdict[24] = "", state[24] = "", err[200];
	int64_t limit = 0;
	int status = 0;
	memset(&f, 0, sizeof(f));
	if (!int_param(r, "repo", &f.repo_id, &status) || !int_param(r, "mr", &f.mr_iid, &status) ||
	    !int_param(r, "cursor", &f.before_id, &status) || !int_param(r, "limit", &limit, &status))
		return status;
	if (limit > 200)
		return http_send_error(r->conn, 400, "invalid_input", "limit must be from 1 to 200");
	f.limit = (int)limit;
	if (http_query_param(r->ri, "verdict", verdict, sizeof(verdict)) && verdict[0])
		f.verdict = verdict;
	if (http_query_param(r->ri, "state", state, sizeof(state)) && state[0])
		f.state = state;
	struct json_object *o = NULL;
	enum core_status st = gate_list(r->app->db, &f, &o, err, sizeof(err));
	if (st == CORE_EINVAL)
		return http_send_error(r->conn, 400, "invalid_input", "%s", err);
	return http_send_read(r->conn, st, o, "could not list gate runs", NULL);
}

int h_gate_get(struct req *r)
{
	static const struct req_read how = {"the gate run id must be a positive integer", gate_get,
	                                    "could not read the gate run", "no gate run %lld"};
	return req_read_by_id(r, &how);
}

int h_gate_bypass(struct req *r)
{
	static const char *const fields[] = {"reason", NULL};
	int64_t id;
	int status;
	struct json_object *body = NULL;
	struct connection_client *cc = NULL;
	char msg[400];
	const char *code = NULL;
	if (!req_path_id(r, "the gate run id must be a positive integer", &id, &status) ||
	    !http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	if (!req_only_fields(r, body, fields, &status))
		goto out;
	const char *reason = NULL;
	if (jsonx_get(body, "reason") && !jsonx_str(body, "reason", &reason)) {
		status = http_send_error(r->conn, 400, "invalid_input", "field \"reason\" must be a string");
		goto out;
	}
	if (!gate_bypass_reason_ok(reason, msg, sizeof(msg))) {
		status = http_send_error(r->conn, 400, "invalid_input", "%s", msg);
		goto out;
	}
	enum core_status st = connection_write_check(r->app->db, &code, msg, sizeof(msg));
	if (st == CORE_ECONFLICT) {
		status = http_send_error(r->conn, 409, code, "%s", msg);
		goto out;
	}
	struct connection_tuning tune;
	app_gitlab_tuning(r->app, &tune);
	if (st == CORE_OK)
		st = connection_client_shared(r->app->db, r->app->secret_key, &tune, &cc);
	if (st == CORE_ENOTFOUND) {
		status =
		    http_send_error(r->conn, 409, "no_connection", "no GitLab connection: the status cannot be posted");
		goto out;
	}
	if (st != CORE_OK) {
		status = http_send_status(r->conn, st, "could not open the GitLab connection");
		goto out;
	}
	struct gate_bypass_req req = {
	    .run_id = id, .actor = r->who.actor, .reason = reason, .public_url = r->app->cfg.public_url};
	st = gate_bypass(r->app->db, connection_client_gitlab(cc), &req, msg, sizeof(msg));
	if (st == CORE_OK) {
		struct json_object *run = NULL;
		st = gate_get(r->app->db, id, &run);
		status = st == CORE_OK
		             ? http_send_json(r->conn, 200, run)
		             : http_send_status(r->conn, st, "the run was bypassed but could not be read back");
	} else if (st == CORE_ESTATE) {
		status = http_send_error(r->conn, 409, "bad_state", "%s", msg);
	} else if (st == CORE_EINVAL || st == CORE_ENOTFOUND) {
		status = http_send_error(r->conn, http_status_of(st), core_status_code(st), "%s", msg);
	} else {
		status = http_send_status(r->conn, st, "could not bypass the gate run: %s", msg);
	}
out:
	connection_client_release(cc);
	json_object_put(body);
	return status;
}

int h_ignores_list(struct req *r)
{
	struct ignores_filter f = {.expired = -1};
	char group[1001] = "", rule[201] = "";
	long limit = 50;
	int status;
	bool has_group = false, has_rule = false;
	if (!int_param(r, "repo", &f.repo_id, &status) ||
	    !http_query_limit(r->conn, r->ri, "limit", 1, 200, &limit, &status) ||
	    !http_query_cursor(r->conn, r->ri, "cursor", &f.before_id, &status) ||
	    !http_query_text(r->conn, r->ri, "group", group, sizeof(group), &has_group, &status) ||
	    !http_query_text(r->conn, r->ri, "rule", rule, sizeof(rule), &has_rule, &status))
		return status;
	if (!http_query_bool(r->conn, r->ri, "expired", &f.expired, &status))
		return status;
	f.group = has_group && group[0] ? group : NULL;
	f.rule = has_rule && rule[0] ? rule : NULL;
	f.limit = (int)limit;
	struct json_object *o = NULL;
	enum core_status st = ignores_list(r->app->db, &f, &o);
	return http_send_read(r->conn, st, o, "could not list the ignores", NULL);
}

int h_ignore_create(struct req *r)
{
	struct json_object *body = NULL, *o = NULL;
	int status;
	char msg[300];
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	enum core_status st = ignores_create(r->app->db, r->who.actor, body, &o, msg, sizeof(msg));
	if (st == CORE_OK)
		status = http_send_json(r->conn, 201, o);
	else if (st == CORE_EINVAL || st == CORE_ENOTFOUND || st == CORE_ECONFLICT)
		status = http_send_error(r->conn, http_status_of(st), core_status_code(st), "%s", msg);
	else
		status = http_send_status(r->conn, st, "could not store the ignore");
	json_object_put(body);
	return status;
}

int h_ignore_delete(struct req *r)
{
	static const struct req_delete how = {"the ignore id must be a positive integer", ignores_delete,
	                                      "could not delete the ignore", "no ignore %lld"};
	return req_delete_by_id(r, &how);
}
