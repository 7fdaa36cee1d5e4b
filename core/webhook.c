/*
 * core/webhook.c
 *    Webhook deliveries: token check, dedupe, recording, queueing gate runs (see webhook.h).
 */
#include "webhook.h"

#include "crypto.h"
#include "gate.h"
#include "jobs.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *webhook_outcome_name(enum webhook_outcome o)
{
	switch (o) {
	case WEBHOOK_QUEUED: return "queued";
	case WEBHOOK_COALESCED: return "coalesced";
	case WEBHOOK_DUPLICATE: return "duplicate";
	case WEBHOOK_IGNORED: return "ignored";
	}
	return "ignored";
}

static const struct {
	const char *header;
	const char *label;
} event_labels[] = {
    {"Merge Request Hook", "merge_request"},
    {"Push Hook", "push"},
    {"Tag Push Hook", "tag_push"},
    {"Note Hook", "note"},
    {"Confidential Note Hook", "note"},
    {"Issue Hook", "issue"},
    {"Confidential Issue Hook", "issue"},
    {"Pipeline Hook", "pipeline"},
    {"Job Hook", "job"},
    {"Wiki Page Hook", "wiki_page"},
    {"Deployment Hook", "deployment"},
    {"Release Hook", "release"},
    {"Milestone Hook", "milestone"},
    {"Emoji Hook", "emoji"},
    {"Project Hook", "project"},
    {"Subgroup Hook", "subgroup"},
    {"Member Hook", "member"},
    {"Feature Flag Hook", "feature_flag"},
    {"Resource Access Token Hook", "resource_access_token"},
    {"Vulnerability Hook", "vulnerability"},
    {"System Hook", "system"},
};

const char *webhook_event_label(const char *event)
{
	if (!event)
		return "none";
	for (size_t i = 0; i < sizeof(event_labels) / sizeof(event_labels[0]); i++)
		if (strcmp(event, event_labels[i].header) == 0)
			return event_labels[i].label;
	return "other";
}

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void describe_metrics(void)
{
	metrics_describe("mrgate_webhook_events_total", "counter",
	                 "webhook deliveries by event kind and outcome (queued, coalesced, duplicate, ignored, "
	                 "unauthorized, error)");
}

static void count_event(const char *label, const char *outcome)
{
	char labels[128];
	pthread_once(&metrics_once, describe_metrics);
	snprintf(labels, sizeof(labels), "event=\"%s\",outcome=\"%s\"", label, outcome);
	metrics_inc("mrgate_webhook_events_total", labels, 1);
}

static bool sha_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 7 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

enum core_status webhook_parse_mr(const struct json_object *payload, struct webhook_mr *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	out->action = "";
	out->state = "";
	struct json_object *oa = NULL;
	if (!jsonx_object(payload, "object_attributes", &oa)) {
		snprintf(why, whylen, "payload has no object_attributes object");
		return CORE_EINVAL;
	}
	if (!jsonx_int64(oa, "iid", &out->iid) || out->iid <= 0) {
		snprintf(why, whylen, "object_attributes.iid is missing or not a positive integer");
		return CORE_EINVAL;
	}
	if (!jsonx_int64(oa, "target_project_id", &out->project_id) &&
	    !jsonx_path_int64(payload, "project.id", &out->project_id)) {
		snprintf(why, whylen, "neither object_attributes.target_project_id nor project.id is an integer");
		return CORE_EINVAL;
	}
	if (out->project_id <= 0) {
		snprintf(why, whylen, "the target project id is not positive");
		return CORE_EINVAL;
	}
	if (!jsonx_int64(oa, "source_project_id", &out->source_project_id) || out->source_project_id <= 0)
		out->source_project_id = out->project_id;
	jsonx_str(oa, "action", &out->action);
	jsonx_str(oa, "state", &out->state);
	out->has_oldrev = jsonx_get(oa, "oldrev") != NULL;
	if (!jsonx_path_str(oa, "last_commit.id", &out->head_sha) || !sha_valid(out->head_sha)) {
		snprintf(why, whylen, "object_attributes.last_commit.id is missing or not a commit sha");
		out->head_sha = NULL;
		return CORE_EINVAL;
	}
	if (!jsonx_str(oa, "source_branch", &out->source_branch) || !out->source_branch[0] ||
	    strlen(out->source_branch) > 255) {
		snprintf(why, whylen, "object_attributes.source_branch is missing or longer than 255 bytes");
		out->source_branch = NULL;
		return CORE_EINVAL;
	}
	return CORE_OK;
}

/* A pipeline status of a pipeline that has not finished (GitLab's Ci::HasStatus active and blocked statuses). */
static bool pipeline_starting(const char *status)
{
	static const char *const starting[] = {
	    "created", "waiting_for_resource", "preparing", "pending", "running", "scheduled",
	    "manual",  "waiting_for_callback", NULL};
	for (int i = 0; starting[i]; i++)
		if (strcmp(status, starting[i]) == 0)
			return true;
	return false;
}

bool webhook_mr_changes_code(const struct webhook_mr *m, char *why, size_t whylen)
{
	if (m->state[0] && strcmp(m->state, "opened") != 0) {
		snprintf(why, whylen, "merge request is %s", m->state);
		return false;
	}
	if (strcmp(m->action, "open") == 0 || strcmp(m->action, "reopen") == 0)
		return true;
	if (strcmp(m->action, "update") == 0) {
		if (m->has_oldrev)
			return true;
		snprintf(why, whylen, "update without new commits (no oldrev)");
		return false;
	}
	snprintf(why, whylen, "action \"%.40s\" does not change code", m->action[0] ? m->action : "(none)");
	return false;
}

/* A header value usable as a key: printable ASCII, at most WEBHOOK_KEY_MAX bytes. */
static const char *usable_key(const char *v)
{
	if (!v || !*v || strlen(v) > WEBHOOK_KEY_MAX)
		return NULL;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return NULL;
	return v;
}

/* A text column value: printable, cut to max bytes (header values are untrusted). */
static void clean_text(const char *in, char *out, size_t cap)
{
	size_t j = 0;
	for (; in && *in && j + 1 < cap; in++)
		out[j++] = ((unsigned char)*in < 0x20 || (unsigned char)*in == 0x7f) ? ' ' : *in;
	out[j] = '\0';
}

enum core_status webhook_receive(struct store *db, const char *expected_secret, const struct webhook_delivery *d,
                                 struct webhook_result *out)
{
	enum core_status st;
	struct json_object *payload = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct gate_config cfg;
	struct webhook_mr mr;
	bool gate = false;
	int64_t project_event_id = 0; /* project_create / project_destroy (group or system hook) */
	bool project_created = false;
	bool hold = false; /* a pipeline event that starts a "hold" job */
	struct {
		int64_t id, project_id, mr_iid;
		const char *sha;
	} pipe = {0, 0, 0, NULL};
	char event_type[128], why[256] = "", ids[3][24];
	memset(out, 0, sizeof(*out));
	memset(&cfg, 0, sizeof(cfg));
	memset(&mr, 0, sizeof(mr));
	const char *label = webhook_event_label(d->event);
	snprintf(out->event_label, sizeof(out->event_label), "%s", label);

	/* 1. the token, in constant time; nothing is stored for a stranger */
	if (!expected_secret || !*expected_secret || !d->token || !crypto_equal(d->token, expected_secret)) {
		count_event(label, "unauthorized");
		return CORE_EUNAUTH;
	}

	/* 2. what is it */
	clean_text(d->event ? d->event : "(none)", event_type, sizeof(event_type));
	bool parsed = d->len > 0 && jsonx_parse(d->body, d->len, &payload) == CORE_OK &&
	              json_object_is_type(payload, json_type_object);
	if (!parsed) {
		snprintf(why, sizeof(why), "body is not a JSON object");
	} else if (strcmp(label, "project") == 0 || strcmp(label, "system") == 0) {
		const char *en = "";
		jsonx_str(payload, "event_name", &en);
		project_created = strcmp(en, "project_create") == 0;
		if ((project_created || strcmp(en, "project_destroy") == 0) &&
		    jsonx_int64(payload, "project_id", &project_event_id) && project_event_id > 0)
			snprintf(why, sizeof(why), "%s events are acted on in group-hook mode only", en);
		else {
			project_event_id = 0;
			snprintf(why, sizeof(why), "%s events are not gated", label);
		}
	} else if (strcmp(label, "pipeline") == 0) {
		/* a new pipeline of a gated repo: hold the verdict in it (core/gatehold.h); the job does the GitLab
		 * part */
		const char *source = "", *pstatus = "", *psha = "";
		jsonx_path_str(payload, "object_attributes.source", &source);
		jsonx_path_str(payload, "object_attributes.status", &pstatus);
		jsonx_path_int64(payload, "merge_request.iid", &pipe.mr_iid);
		if (!jsonx_path_int64(payload, "object_attributes.id", &pipe.id) || pipe.id <= 0 ||
		    !jsonx_path_int64(payload, "project.id", &pipe.project_id) || pipe.project_id <= 0 ||
		    !jsonx_path_str(payload, "object_attributes.sha", &psha) || !sha_valid(psha)) {
			snprintf(why, sizeof(why), "pipeline event without object_attributes.id, sha or project.id");
		} else if (strcmp(source, "external") == 0) {
			snprintf(why, sizeof(why), "external pipelines hold commit statuses, not CI jobs");
		} else if (!pipeline_starting(pstatus)) {
			snprintf(why, sizeof(why), "pipeline %s: verdicts are held when a pipeline starts",
			         pstatus[0] ? pstatus : "(no status)");
		} else {
			pipe.sha = psha;
			st = gate_config_load(db, pipe.project_id, &cfg);
			if (st != CORE_OK)
				goto out;
			if (cfg.gated)
				hold = true;
			else
				snprintf(why, sizeof(why), "%s", cfg.why_not);
		}
	} else if (strcmp(label, "merge_request") != 0) {
		snprintf(why, sizeof(why), "%s events are not gated", label);
	} else if (webhook_parse_mr(payload, &mr, why, sizeof(why)) != CORE_OK) {
		/* why says which field */
	} else if (webhook_mr_changes_code(&mr, why, sizeof(why))) {
		st = gate_config_load(db, mr.project_id, &cfg);
		if (st != CORE_OK)
			goto out; /* not recorded: 5xx, GitLab retries */
		if (cfg.gated)
			gate = true;
		else
			snprintf(why, sizeof(why), "%s", cfg.why_not);
	}

	/* 3. record (and queue) in one transaction */
	const char *key = usable_key(d->idempotency_key);
	if (!key)
		key = usable_key(d->webhook_uuid);
	char uuid[WEBHOOK_KEY_MAX + 1];
	clean_text(d->webhook_uuid, uuid, sizeof(uuid));
	/* jsonb refuses \u0000; such a payload (and a big one) is recorded without its body */
	bool keep = parsed && d->len <= WEBHOOK_PAYLOAD_KEEP && !memmem(d->body, d->len, "\\u0000", 6);
	const char *action = mr.action && mr.action[0] ? mr.action : NULL;
	char action_buf[64];
	if (action) {
		clean_text(action, action_buf, sizeof(action_buf));
		action = action_buf;
	}
	snprintf(ids[0], sizeof(ids[0]), "%lld", (long long)mr.project_id);
	snprintf(ids[1], sizeof(ids[1]), "%lld", (long long)mr.iid);
	snprintf(ids[2], sizeof(ids[2]), "%zu", d->len);
	st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
again:
	st = store_begin(c);
	if (st != CORE_OK)
		goto out;
	if (mr.project_id > 0) {
		/* one MR's deliveries one at a time, so that superseding sees the other transaction's run */
		const char *lp[] = {ids[0], ids[1]};
		st = store_exec(c, "SELECT pg_advisory_xact_lock(hashtextextended('mrgate-mr:' || $1 || ':' || $2, 0))",
		                2, lp, NULL);
		if (st != CORE_OK)
			goto out;
	}
	const char *p[] = {key,
	                   uuid[0] ? uuid : NULL,
	                   event_type,
	                   action,
	                   mr.project_id > 0 ? ids[0] : NULL,
	                   mr.iid > 0 ? ids[1] : NULL,
	                   keep ? d->body : NULL,
	                   ids[2],
	                   gate ? NULL : why};
	st = store_exec(
	    c,
	    "INSERT INTO webhook_events (idempotency_key, webhook_uuid, event_type, action, project_id, mr_iid,"
	    " payload, payload_bytes, ignored_reason)"
	    " VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint, $7::jsonb, $8::integer, $9)"
	    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
	    9, p, &r);
	if (st == CORE_EINVAL && keep) {
		/* PostgreSQL refused the body as jsonb (e.g. a lone surrogate escape): record the event without it */
		store_rollback(c);
		keep = false;
		goto again;
	}
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		out->outcome = WEBHOOK_DUPLICATE;
		snprintf(out->reason, sizeof(out->reason), "already received (same %s)",
		         usable_key(d->idempotency_key) ? "Idempotency-Key" : "X-Gitlab-Webhook-UUID");
		st = store_commit(c);
		goto out;
	}
	out->event_id = store_i64(r, 0, "id", 0);
	PQclear(r);
	r = NULL;
	if (gate) {
		struct gate_mr_event ev = {.project_id = mr.project_id,
		                           .source_project_id = mr.source_project_id,
		                           .mr_iid = mr.iid,
		                           .head_sha = mr.head_sha,
		                           .source_branch = mr.source_branch};
		bool coalesced = false;
		st = gate_enqueue(c, &ev, out->event_id, &out->run_id, &coalesced);
		if (st != CORE_OK)
			goto out;
		out->outcome = coalesced ? WEBHOOK_COALESCED : WEBHOOK_QUEUED;
		if (coalesced)
			snprintf(out->reason, sizeof(out->reason), "a gate run for this head commit is already queued");
	} else if (hold) {
		char pp[2][24];
		snprintf(pp[0], sizeof(pp[0]), "%lld", (long long)pipe.project_id);
		out->outcome = WEBHOOK_IGNORED;
		if (pipe.mr_iid <= 0) {
			/* a branch pipeline: the MR is the one whose latest gate run is on this sha */
			PGresult *rm = NULL;
			const char *mp[] = {pp[0], pipe.sha};
			st = store_exec(c,
			                "SELECT mr_iid FROM gate_runs WHERE project_id = $1::bigint AND head_sha = $2"
			                " ORDER BY id DESC LIMIT 1",
			                2, mp, &rm);
			if (st == CORE_OK && PQntuples(rm) > 0)
				pipe.mr_iid = store_i64(rm, 0, "mr_iid", 0);
			PQclear(rm);
			if (st != CORE_OK)
				goto out;
		}
		if (pipe.mr_iid <= 0) {
			snprintf(out->reason, sizeof(out->reason), "pipeline %lld: no merge request gate run on %.12s",
			         (long long)pipe.id, pipe.sha);
		} else {
			char params[256];
			snprintf(params, sizeof(params),
			         "{\"event\": %lld, \"pipeline_id\": %lld, \"sha\": \"%s\", \"mr_iid\": %lld}",
			         (long long)out->event_id, (long long)pipe.id, pipe.sha, (long long)pipe.mr_iid);
			st =
			    jobs_create_in_tx(c, "hold", "system (webhook)", params, &pipe.project_id, 1, &out->job_id);
			if (st != CORE_OK)
				goto out;
			out->outcome = WEBHOOK_QUEUED;
			snprintf(out->reason, sizeof(out->reason),
			         "pipeline %lld of !%lld: holding the verdict (job %lld)", (long long)pipe.id,
			         (long long)pipe.mr_iid, (long long)out->job_id);
		}
	} else if (project_event_id > 0) {
		/* group-hook mode: onboard a new repo (a job: the GitLab read happens after we answered), or mark a
		 * deleted one removed; in project mode these events are recorded and ignored */
		PGresult *rm = NULL;
		st = store_exec(c, "SELECT 1 FROM settings WHERE key = 'hook_mode' AND value = '\"group\"'::jsonb", 0,
		                NULL, &rm);
		bool group_mode = st == CORE_OK && PQntuples(rm) > 0;
		PQclear(rm);
		if (st != CORE_OK)
			goto out;
		char pid[24];
		snprintf(pid, sizeof(pid), "%lld", (long long)project_event_id);
		out->outcome = WEBHOOK_IGNORED;
		snprintf(out->reason, sizeof(out->reason), "%s", why);
		if (group_mode && project_created) {
			char params[64];
			snprintf(params, sizeof(params), "{\"event\": %lld}", (long long)out->event_id);
			st = jobs_create_in_tx(c, "onboard", "system (webhook)", params, &project_event_id, 1,
			                       &out->job_id);
			if (st != CORE_OK)
				goto out;
			out->outcome = WEBHOOK_QUEUED;
			snprintf(out->reason, sizeof(out->reason), "project %s created: onboarding (job %lld)", pid,
			         (long long)out->job_id);
		} else if (group_mode) {
			const char *pp[] = {pid};
			st = store_exec(c, "UPDATE repos SET removed_at = now() WHERE id = $1 AND removed_at IS NULL",
			                1, pp, NULL);
			if (st != CORE_OK)
				goto out;
			snprintf(out->reason, sizeof(out->reason), "project %s deleted: marked removed", pid);
		}
	} else {
		out->outcome = WEBHOOK_IGNORED;
		snprintf(out->reason, sizeof(out->reason), "%s", why);
	}
	st = store_commit(c);
out:
	if (st != CORE_OK && c)
		store_rollback(c);
	PQclear(r);
	store_put(db, c);
	json_object_put(payload);
	gate_config_clear(&cfg);
	if (st == CORE_OK) {
		count_event(label, webhook_outcome_name(out->outcome));
		if (out->outcome == WEBHOOK_QUEUED)
			gate_kick();
		log_info("webhook %s: %s%s%s (event %lld, run %lld)", label, webhook_outcome_name(out->outcome),
		         out->reason[0] ? ": " : "", out->reason, (long long)out->event_id, (long long)out->run_id);
	} else {
		count_event(label, "error");
		log_error("could not record a %s webhook delivery: %s", label, core_status_code(st));
	}
	return st;
}
