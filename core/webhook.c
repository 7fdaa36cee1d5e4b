/*
 * core/webhook.c
 *    Webhook deliveries: token check, dedupe, recording, queueing gate runs (see webhook.h).
 */
#include "webhook.h"

#include "crypto.h"
#include "gate.h"
#include "jobs.h"
#include "json_util.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "mrcommand.h"
#include "xalloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* What a delivery is and what it asks for, decided before anything is stored. */
struct delivery_plan {
	const char *label;                      /* webhook_event_label() */
	struct json_object *payload;            /* parsed body (a JSON object), or NULL */
	struct gate_config cfg;                 /* the repo's gate config, when one was loaded */
	struct webhook_mr mr;                   /* a merge request event's fields (project_id 0 otherwise) */
	bool gate;                              /* queue a gate run for mr */
	bool hold;                              /* a starting pipeline of a gated repo: create a "hold" job */
	struct mrcommand_note note;             /* a "/mrgate" comment (note_id 0 otherwise) */
	bool command;                           /* ... on a gated repo: record it and queue its "mrcommand" job */
	int64_t project_event_id;               /* project_create / project_destroy (group or system hook) */
	bool project_created;                   /* ... and it is project_create */
	struct {                                /* the pipeline of a pipeline event */
		int64_t id, project_id, mr_iid; /* mr_iid 0: the payload names no merge request */
		const char *sha;
	} pipe;
	int64_t lookup_repo; /* the repo whose gate config decides (gate or hold), 0: none */
	bool tx;             /* more than the event's INSERT: record and act in one explicit transaction */
	char why[256];       /* why the event is not acted on */
};

/* Whether the loaded gate config gates the repo; why says why not. */
static bool cfg_gated(struct delivery_plan *k)
{
	if (!k->cfg.gated)
		snprintf(k->why, sizeof(k->why), "%s", k->cfg.why_not);
	return k->cfg.gated;
}

/* A Project Hook or System Hook event: project_create / project_destroy are acted on in group-hook mode. */
static void plan_project_event(struct delivery_plan *k)
{
	const char *en = "";
	jsonx_str(k->payload, "event_name", &en);
	k->project_created = strcmp(en, "project_create") == 0;
	if ((k->project_created || strcmp(en, "project_destroy") == 0) &&
	    jsonx_int64(k->payload, "project_id", &k->project_event_id) && k->project_event_id > 0) {
		snprintf(k->why, sizeof(k->why), "%s events are acted on in group-hook mode only", en);
	} else {
		k->project_event_id = 0;
		snprintf(k->why, sizeof(k->why), "%s events are not gated", k->label);
	}
}

/* A pipeline event: a new pipeline of a gated repo holds the verdict (core/gatehold.h); the job does the GitLab
 * part. Whether the repo is gated is looked up before the delivery is recorded (lookup_gate). */
static void plan_pipeline(struct delivery_plan *k)
{
	const char *source = "", *pstatus = "", *psha = "";
	const struct json_object *p = k->payload;
	jsonx_path_str(p, "object_attributes.source", &source);
	jsonx_path_str(p, "object_attributes.status", &pstatus);
	jsonx_path_int64(p, "merge_request.iid", &k->pipe.mr_iid);
	if (!jsonx_path_int64(p, "object_attributes.id", &k->pipe.id) || k->pipe.id <= 0 ||
	    !jsonx_path_int64(p, "project.id", &k->pipe.project_id) || k->pipe.project_id <= 0 ||
	    !jsonx_path_str(p, "object_attributes.sha", &psha) || !sha_valid(psha)) {
		snprintf(k->why, sizeof(k->why), "pipeline event without object_attributes.id, sha or project.id");
		return;
	}
	if (strcmp(source, "external") == 0) {
		snprintf(k->why, sizeof(k->why), "external pipelines hold commit statuses, not CI jobs");
		return;
	}
	if (!pipeline_starting(pstatus)) {
		snprintf(k->why, sizeof(k->why), "pipeline %s: verdicts are held when a pipeline starts",
		         pstatus[0] ? pstatus : "(no status)");
		return;
	}
	k->pipe.sha = psha;
	k->lookup_repo = k->pipe.project_id;
}

/* A merge request event: new code in an open MR of a gated repo is gated (the repo is looked up before the
 * delivery is recorded, lookup_gate). */
static void plan_mr(struct delivery_plan *k)
{
	if (webhook_parse_mr(k->payload, &k->mr, k->why, sizeof(k->why)) != CORE_OK ||
	    !webhook_mr_changes_code(&k->mr, k->why, sizeof(k->why)))
		return; /* why says which field or why not */
	k->lookup_repo = k->mr.project_id;
}

/* A comment event: a "/mrgate" command on a merge request of a gated repo is queued (core/mrcommand.h). */
static void plan_note(const struct webhook_delivery *d, struct delivery_plan *k)
{
	if (mrcommand_parse_event(d->event, k->payload, &k->note, k->why, sizeof(k->why)))
		k->lookup_repo = k->note.project_id;
	else
		k->note.note_id = 0;
}

/* What the delivery is, from its headers and body alone (no database). */
static void plan_delivery(const struct webhook_delivery *d, struct delivery_plan *k)
{
	char err[200] = "";
	bool parsed = d->len > 0 && json_parse_strict(d->body, d->len, &k->payload, err, sizeof(err)) == CORE_OK &&
	              json_object_is_type(k->payload, json_type_object);
	if (!parsed) {
		json_object_put(k->payload);
		k->payload = NULL;
		/* the parser's words say where (a duplicate key, a bad character), as a 400 to an API client does */
		snprintf(k->why, sizeof(k->why), "body is not a JSON object%s%s", err[0] ? ": " : "", err);
	} else if (strcmp(k->label, "project") == 0 || strcmp(k->label, "system") == 0) {
		plan_project_event(k);
	} else if (strcmp(k->label, "pipeline") == 0) {
		plan_pipeline(k);
	} else if (strcmp(k->label, "note") == 0) {
		plan_note(d, k);
	} else if (strcmp(k->label, "merge_request") != 0) {
		snprintf(k->why, sizeof(k->why), "%s events are not gated", k->label);
	} else {
		plan_mr(k);
	}
}

/* Is the repo of an MR or pipeline event gated? Read on c before the delivery is recorded, as a statement of its
 * own (a transaction around it would not keep a config from changing before the commit either: the gate run reads
 * the config again). Then decides k->tx: a lone INSERT commits on its own, an action joins it in one transaction.
 * Fails only when the gate config cannot be read (nothing recorded: 5xx, GitLab retries). */
static enum core_status lookup_gate(struct store_conn *c, struct delivery_plan *k)
{
	enum core_status st = CORE_OK;
	if (k->lookup_repo > 0)
		st = gate_config_load_conn(c, k->lookup_repo, &k->cfg);
	if (st == CORE_OK && k->lookup_repo > 0 && cfg_gated(k)) {
		k->command = k->note.note_id > 0;
		k->gate = k->mr.project_id > 0;
		k->hold = !k->gate && !k->command;
	}
	k->tx = k->gate || k->hold || k->command || k->project_event_id > 0;
	return st;
}

/* The event's INSERT; $10 true also takes the MR's lock (GATE_MR_LOCK_SQL) before the row is written. */
#define RECORD_MR_LOCK GATE_MR_LOCK_SQL("$5::bigint", "$6::bigint")
static const char record_sql[] = STORE_PREPARE
    "INSERT INTO webhook_events (idempotency_key, webhook_uuid, event_type, action, project_id, mr_iid, payload,"
    " payload_bytes, ignored_reason)"
    " SELECT $1, $2, $3, $4, $5::bigint, $6::bigint, $7::jsonb, $8::integer, $9"
    " FROM (SELECT CASE WHEN $10::boolean THEN " RECORD_MR_LOCK "::text END) AS l"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id";

/*
 * Record the delivery in webhook_events (deduplicated on its key), in the delivery's transaction when k->tx (open on
 * c), else as a statement of its own. A delivery that queues a gate run takes the MR's lock in the same statement
 * (GATE_MR_LOCK_SQL), so that the enqueue, a later statement, sees the runs of the MR's other deliveries.
 * *event_id_out is the new row's id, 0 for a duplicate.
 */
static enum core_status record_delivery(struct store_conn *c, const struct webhook_delivery *d,
                                        const struct delivery_plan *k, int64_t *event_id_out)
{
	*event_id_out = 0;
	const char *key = usable_key(d->idempotency_key);
	if (!key)
		key = usable_key(d->webhook_uuid);
	char uuid[WEBHOOK_KEY_MAX + 1], event_type[128], action[64] = "";
	clean_text(d->webhook_uuid, uuid, sizeof(uuid));
	clean_text(d->event ? d->event : "(none)", event_type, sizeof(event_type));
	if (k->mr.action)
		clean_text(k->mr.action, action, sizeof(action));
	/* jsonb refuses \u0000; such a payload (and a big one) is recorded without its body */
	bool keep = k->payload && d->len <= WEBHOOK_PAYLOAD_KEEP && !memmem(d->body, d->len, "\\u0000", 6);
	for (;;) {
		struct store_params p = {0};
		store_param_str(&p, key);
		store_param_str(&p, uuid[0] ? uuid : NULL);
		store_param_str(&p, event_type);
		store_param_str(&p, action[0] ? action : NULL);
		store_param_i64_or_null(&p, k->mr.project_id > 0 ? k->mr.project_id : 0);
		store_param_i64_or_null(&p, k->mr.iid > 0 ? k->mr.iid : 0);
		store_param_str(&p, keep ? d->body : NULL);
		store_param_i64(&p, (int64_t)d->len);
		store_param_str(&p, k->gate ? NULL : k->why);
		store_param_bool(&p, k->gate);
		PGresult *r = NULL;
		enum core_status st = store_run(c, record_sql, &p, &r);
		if (st == CORE_OK && PQntuples(r) > 0)
			*event_id_out = store_i64(r, 0, "id", 0);
		PQclear(r);
		if (st == CORE_EINVAL && keep) {
			/* PostgreSQL refused the body as jsonb (e.g. a lone surrogate escape): record the event without
			 * it, in a new transaction (the lookup's answer is kept) */
			keep = false;
			if (k->tx) {
				store_rollback(c);
				if ((st = store_begin(c)) != CORE_OK)
					return st;
			}
			continue;
		}
		return st;
	}
}

/* Queue (or join) the gate run of a merge request event, in the delivery's transaction. */
static enum core_status act_gate(struct store_conn *c, const struct delivery_plan *k, struct webhook_result *out)
{
	struct gate_mr_event ev = {.project_id = k->mr.project_id,
	                           .source_project_id = k->mr.source_project_id,
	                           .mr_iid = k->mr.iid,
	                           .head_sha = k->mr.head_sha,
	                           .source_branch = k->mr.source_branch};
	bool coalesced = false;
	enum core_status st = gate_enqueue(c, &ev, out->event_id, &out->run_id, &coalesced);
	if (st != CORE_OK)
		return st;
	out->outcome = coalesced ? WEBHOOK_COALESCED : WEBHOOK_QUEUED;
	if (coalesced)
		snprintf(out->reason, sizeof(out->reason),
		         "a gate run for this head commit is already queued or running");
	return CORE_OK;
}

/* Create the "hold" job of a starting pipeline, in the delivery's transaction. */
static enum core_status act_hold(struct store_conn *c, struct delivery_plan *k, struct webhook_result *out)
{
	enum core_status st = CORE_OK;
	out->outcome = WEBHOOK_IGNORED;
	if (k->pipe.mr_iid <= 0) {
		/* a branch pipeline: the MR is the one whose latest gate run is on this sha */
		PGresult *rm = NULL;
		struct store_params mp = {0};
		store_param_i64(&mp, k->pipe.project_id);
		store_param_str(&mp, k->pipe.sha);
		st = store_run(c,
		               "SELECT mr_iid FROM gate_runs WHERE project_id = $1::bigint AND head_sha = $2"
		               " ORDER BY id DESC LIMIT 1",
		               &mp, &rm);
		if (st == CORE_OK && PQntuples(rm) > 0)
			k->pipe.mr_iid = store_i64(rm, 0, "mr_iid", 0);
		PQclear(rm);
		if (st != CORE_OK)
			return st;
	}
	if (k->pipe.mr_iid <= 0) {
		snprintf(out->reason, sizeof(out->reason), "pipeline %lld: no merge request gate run on %.12s",
		         (long long)k->pipe.id, k->pipe.sha);
		return CORE_OK;
	}
	struct json_object *params = jx_object();
	json_object_object_add(params, "event", jx_int(out->event_id));
	json_object_object_add(params, "pipeline_id", jx_int(k->pipe.id));
	json_object_object_add(params, "sha", jx_str(k->pipe.sha));
	json_object_object_add(params, "mr_iid", jx_int(k->pipe.mr_iid));
	st = jobs_create_in_tx(c, "hold", "system (webhook)", json_object_to_json_string(params), &k->pipe.project_id,
	                       1, &out->job_id);
	json_object_put(params);
	if (st != CORE_OK)
		return st;
	out->outcome = WEBHOOK_QUEUED;
	snprintf(out->reason, sizeof(out->reason), "pipeline %lld of !%lld: holding the verdict (job %lld)",
	         (long long)k->pipe.id, (long long)k->pipe.mr_iid, (long long)out->job_id);
	return CORE_OK;
}

/* Record a "/mrgate" comment and queue its job, in the delivery's transaction (once per note id). */
static enum core_status act_command(struct store_conn *c, struct delivery_plan *k, struct webhook_result *out)
{
	bool queued = false;
	enum core_status st = mrcommand_enqueue(c, &k->note, out->event_id, &out->job_id, &queued);
	if (st != CORE_OK)
		return st;
	out->outcome = queued ? WEBHOOK_QUEUED : WEBHOOK_DUPLICATE;
	if (queued)
		snprintf(out->reason, sizeof(out->reason), "/mrgate command in note %lld on !%lld (job %lld)",
		         (long long)k->note.note_id, (long long)k->note.mr_iid, (long long)out->job_id);
	else
		snprintf(out->reason, sizeof(out->reason), "note %lld was received before: a command is handled once",
		         (long long)k->note.note_id);
	return CORE_OK;
}

/* Group-hook mode: onboard a new repo (a job: the GitLab read happens after we answered), or mark a deleted one
 * removed; in project mode these events are recorded and ignored. In the delivery's transaction. */
static enum core_status act_project_event(struct store_conn *c, struct delivery_plan *k, struct webhook_result *out)
{
	PGresult *rm = NULL;
	enum core_status st =
	    store_run(c, "SELECT 1 FROM settings WHERE key = 'hook_mode' AND value = '\"group\"'::jsonb", NULL, &rm);
	bool group_mode = st == CORE_OK && PQntuples(rm) > 0;
	PQclear(rm);
	if (st != CORE_OK)
		return st;
	long long pid = (long long)k->project_event_id;
	out->outcome = WEBHOOK_IGNORED;
	snprintf(out->reason, sizeof(out->reason), "%s", k->why);
	if (group_mode && k->project_created) {
		struct json_object *params = jx_object();
		json_object_object_add(params, "event", jx_int(out->event_id));
		st = jobs_create_in_tx(c, "onboard", "system (webhook)", json_object_to_json_string(params),
		                       &k->project_event_id, 1, &out->job_id);
		json_object_put(params);
		if (st != CORE_OK)
			return st;
		out->outcome = WEBHOOK_QUEUED;
		snprintf(out->reason, sizeof(out->reason), "project %lld created: onboarding (job %lld)", pid,
		         (long long)out->job_id);
	} else if (group_mode) {
		struct store_params pp = {0};
		store_param_i64(&pp, k->project_event_id);
		st =
		    store_run(c, "UPDATE repos SET removed_at = now() WHERE id = $1 AND removed_at IS NULL", &pp, NULL);
		if (st != CORE_OK)
			return st;
		snprintf(out->reason, sizeof(out->reason), "project %lld deleted: marked removed", pid);
	}
	return CORE_OK;
}

/*
 * Look the repo up, record the delivery and act on it: the gated-repo lookup, then one transaction on c (BEGIN, the
 * event, the enqueue, COMMIT) when there is something to act on, else the event's INSERT alone. Committed (durably,
 * with PostgreSQL's fsync) when this returns CORE_OK.
 */
static enum core_status record_and_act(struct store_conn *c, const struct webhook_delivery *d, struct delivery_plan *k,
                                       struct webhook_result *out)
{
	enum core_status st = lookup_gate(c, k);
	if (st == CORE_OK && k->tx)
		st = store_begin(c);
	if (st == CORE_OK)
		st = record_delivery(c, d, k, &out->event_id);
	if (st != CORE_OK)
		return st;
	if (out->event_id == 0) {
		out->outcome = WEBHOOK_DUPLICATE;
		snprintf(out->reason, sizeof(out->reason), "already received (same %s)",
		         usable_key(d->idempotency_key) ? "Idempotency-Key" : "X-Gitlab-Webhook-UUID");
	} else if (k->gate) {
		st = act_gate(c, k, out);
	} else if (k->hold) {
		st = act_hold(c, k, out);
	} else if (k->command) {
		st = act_command(c, k, out);
	} else if (k->project_event_id > 0) {
		st = act_project_event(c, k, out);
	} else {
		out->outcome = WEBHOOK_IGNORED;
		snprintf(out->reason, sizeof(out->reason), "%s", k->why);
	}
	return st == CORE_OK && k->tx ? store_commit(c) : st;
}

#define REFUSED_LOG_SECONDS 60 /* at most one line a minute about refused deliveries, whoever sends them */

/*
 * Say in the log that deliveries are refused, at most once a minute (with how many since the last line): a hook whose
 * secret token was edited in GitLab (GitLab's API never shows a hook's token, so no apply can see it) delivers
 * nothing to mrgate, and its repository's merge requests went ungated without a word. Nothing of the request is
 * logged (it is a stranger's until the token matches): the operator finds the hook in GitLab's "Recent events".
 */
static void log_refused(const char *event, bool had_token, bool configured)
{
	static int64_t last;
	static int since;
	int n = __atomic_add_fetch(&since, 1, __ATOMIC_RELAXED);
	int64_t now = (int64_t)time(NULL), prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
	if (now - prev < REFUSED_LOG_SECONDS ||
	    !__atomic_compare_exchange_n(&last, &prev, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	n = __atomic_exchange_n(&since, 0, __ATOMIC_RELAXED);
	if (!configured)
		log_warn("webhook: refused %d %s (a %s event): no GitLab connection, so no webhook secret to match", n,
		         n == 1 ? "delivery" : "deliveries", event);
	else if (strcmp(event, "none") ==
	         0) /* a walk's bare POST read as "the latest a none event ... edited in GitLab?" */
		log_warn(
		    "webhook: refused %d %s since this line last appeared (the latest with no X-Gitlab-Event header, "
		    "%s): not a GitLab webhook delivery",
		    n, n == 1 ? "request" : "requests",
		    had_token ? "with a wrong X-Gitlab-Token" : "no X-Gitlab-Token");
	else
		log_warn("webhook: refused %d %s since this line last appeared (the latest a \"%s\" event, %s): a "
		         "repository whose hook "
		         "carries another secret token (edited in GitLab?) is not gated; find the hook by its failed "
		         "\"Recent "
		         "events\" in GitLab and re-apply the repository with \"resend_hook_tokens\" (GitLab disables "
		         "such a "
		         "hook after 4 failures, and the next resync then repairs it)",
		         n, n == 1 ? "delivery" : "deliveries", event,
		         had_token ? "with a wrong X-Gitlab-Token" : "without X-Gitlab-Token");
}

enum core_status webhook_receive(struct store *db, const char *expected_secret, const struct webhook_delivery *d,
                                 struct webhook_result *out)
{
	struct delivery_plan k;
	memset(out, 0, sizeof(*out));
	memset(&k, 0, sizeof(k));
	k.mr.action = k.mr.state = "";
	k.label = webhook_event_label(d->event);
	snprintf(out->event_label, sizeof(out->event_label), "%s", k.label);

	/* 1. the token, in constant time; nothing is stored for a stranger */
	if (!expected_secret || !*expected_secret || !d->token || !crypto_equal(d->token, expected_secret)) {
		count_event(k.label, "unauthorized");
		log_refused(k.label, d->token != NULL, expected_secret && *expected_secret);
		return CORE_EUNAUTH;
	}
	/* 2. what is it; 3. look up, record (and queue) in one transaction */
	struct store_conn *c = NULL;
	plan_delivery(d, &k);
	enum core_status st = store_get(db, &c);
	if (st == CORE_OK)
		st = record_and_act(c, d, &k, out);
	if (st != CORE_OK)
		store_rollback(c);
	else if (k.gate && out->outcome == WEBHOOK_QUEUED)
		gate_queue_announce(c); /* other instances' gate workers; ours are kicked below */
	store_put(db, c);
	json_object_put(k.payload);
	gate_config_clear(&k.cfg);
	if (st == CORE_OK) {
		count_event(k.label, webhook_outcome_name(out->outcome));
		if (out->outcome == WEBHOOK_QUEUED)
			gate_kick();
		log_info("webhook %s: %s%s%s (event %lld, run %lld)", k.label, webhook_outcome_name(out->outcome),
		         out->reason[0] ? ": " : "", out->reason, (long long)out->event_id, (long long)out->run_id);
	} else {
		count_event(k.label, "error");
		log_error("could not record a %s webhook delivery: %s", k.label, core_status_code(st));
	}
	return st;
}
