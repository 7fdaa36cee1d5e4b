/*
 * core/resync.c
 *    Token health, discovery and the follow-up of one resync.
 */
#include "resync.h"

#include "jsonx.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum core_status resync_token_health(struct store *db, struct connection_client *cc)
{
	struct gitlab_response *resp = NULL;
	enum core_status st =
	    gitlab_request(connection_client_gitlab(cc), "GET", "/personal_access_tokens/self", NULL, &resp);
	const char *status = "ok";
	char problem[300] = "";
	if (st == CORE_OK) {
		const char *exp = NULL;
		if (jsonx_str(resp->json, "expires_at", &exp)) {
			struct tm tm;
			memset(&tm, 0, sizeof(tm));
			if (strptime(exp, "%Y-%m-%d", &tm)) {
				double days = difftime(timegm(&tm), time(NULL)) / 86400.0;
				metrics_set("mrgate_gitlab_token_expires_in_days", NULL, days);
			}
		}
	} else if (resp && resp->kind == GITLAB_ERR_TOKEN_EXPIRED) {
		status = "expired";
		snprintf(problem, sizeof(problem),
		         "the GitLab token is expired: GitLab writes are stopped until the "
		         "token is updated on the Connection page");
	} else if (resp && resp->kind == GITLAB_ERR_TOKEN_REVOKED) {
		status = "revoked";
		snprintf(problem, sizeof(problem),
		         "the GitLab token was revoked: GitLab writes are stopped until the "
		         "token is updated on the Connection page");
	} else if (resp && resp->kind == GITLAB_ERR_TOKEN_INVALID) {
		status = "invalid";
		snprintf(problem, sizeof(problem),
		         "GitLab no longer accepts the token: GitLab writes are stopped until "
		         "the token is updated on the Connection page");
	} else {
		/* GitLab unreachable or an old GitLab without the endpoint: no verdict on the token */
		gitlab_response_free(resp);
		return st == CORE_ENOTFOUND ? CORE_OK : st;
	}
	gitlab_response_free(resp);
	metrics_set("mrgate_gitlab_token_ok", NULL, strcmp(status, "ok") == 0 ? 1 : 0);
	enum core_status wst = connection_set_token_status(db, status, problem[0] ? problem : NULL);
	if (strcmp(status, "ok") != 0) {
		log_warn("%s", problem);
		return CORE_EUNAUTH;
	}
	return wst;
}

enum core_status resync_begin(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out)
{
	struct connection_info ci;
	memset(&ci, 0, sizeof(ci));
	enum core_status st = connection_get(ctx->db, &ci);
	connection_info_clear(&ci);
	if (st != CORE_OK)
		return st;
	return discovery_begin(ctx->db, trigger, ctx->instance, run_id_out);
}

static void save_summary(struct store *db, int64_t run_id, struct json_object *summary)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)run_id);
	const char *p[] = {id, json_object_to_json_string_ext(summary, JSON_C_TO_STRING_PLAIN)};
	store_query(db, "UPDATE sync_runs SET summary = $2::jsonb WHERE id = $1", 2, p, NULL);
}

enum core_status resync_execute(const struct resync_ctx *ctx, int64_t run_id)
{
	struct connection_client *cc = NULL;
	struct json_object *summary = NULL;
	enum core_status st = connection_client_shared(ctx->db, ctx->key, &ctx->tune, &cc);
	if (st != CORE_OK) {
		discovery_fail(ctx->db, run_id, "could not open the GitLab connection (see the server log)");
		return st;
	}
	st = resync_token_health(ctx->db, cc);
	if (st == CORE_EUNAUTH) {
		struct connection_info ci;
		memset(&ci, 0, sizeof(ci));
		connection_get(ctx->db, &ci);
		discovery_fail(ctx->db, run_id, ci.token_problem[0] ? ci.token_problem : "the token is not valid");
		connection_info_clear(&ci);
		goto out;
	}
	struct discovery_counts counts;
	st = discovery_execute(ctx->db, connection_client_gitlab(cc), connection_client_info(cc)->group_id, run_id,
	                       ctx->concurrency, NULL, NULL, &counts);
	if (st != CORE_OK)
		goto out;
	summary = json_object_new_object();
	json_object_object_add(summary, "new", json_object_new_int(counts.new_repos));
	json_object_object_add(summary, "removed", json_object_new_int(counts.removed));
	json_object_object_add(summary, "archived", json_object_new_int(counts.archived));
	if (ctx->after)
		st = ctx->after(ctx->user, cc, run_id, &counts, summary);
	save_summary(ctx->db, run_id, summary);
out:
	json_object_put(summary);
	connection_client_release(cc);
	return st;
}

enum core_status resync_run(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out)
{
	int64_t run = 0;
	enum core_status st = resync_begin(ctx, trigger, &run);
	if (run_id_out)
		*run_id_out = run;
	if (st != CORE_OK)
		return st;
	return resync_execute(ctx, run);
}
