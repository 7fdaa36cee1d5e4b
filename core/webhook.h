/*
 * core/webhook.h
 *    The GitLab webhook receiver's logic: authenticate a delivery, record it once, and queue a gate run for a
 *    merge request event that changes code.
 *
 * Design (DESIGN.md §4, GITLAB-API.md §9): the X-Gitlab-Token header is compared with the installation's webhook
 * secret in constant time; a missing or wrong token is CORE_EUNAUTH and nothing is stored. Every authenticated
 * delivery is recorded in webhook_events - also the ones not gated, with the reason - because GitLab disables a
 * hook after 4 failed deliveries in a row: the receiver answers 2xx to everything it merely ignores. Deliveries
 * are deduplicated on Idempotency-Key (stable across GitLab's retries of one event), else X-Gitlab-Webhook-UUID.
 * A merge request event is gated when its action is open or reopen, or update with object_attributes.oldrev
 * (new commits), the MR is open, and its target project is a gated repo (core/gate.h gate_config_load_conn).
 * One delivery writes in one transaction, committed (durably) before the caller answers, with as few statements as
 * it needs, each prepared once per connection (STORE_PREPARE): a gated open is the gated-repo lookup (a read of
 * stored state by key), then BEGIN, the event's INSERT (which also takes an advisory lock per MR, so that deliveries
 * of one MR queue one at a time and superseding sees the other's run), the enqueue (one statement,
 * core/gate_queue.h), COMMIT; a delivery that acts on nothing is the lookup (when it names a repo) and its INSERT
 * alone. The gate workers of this process are woken directly (gate_kick); other instances' by a NOTIFY sent after
 * the commit, at most every GATE_NOTIFY_MS (core/gate_queue.h): a NOTIFY inside the delivery's transaction would
 * serialise every commit behind PostgreSQL's one notification lock, flush included.
 * Group-hook mode (settings hook_mode "group"): a Project Hook or System Hook event project_create creates a job
 * of kind "onboard" for the project in the same transaction (the GitLab read is done there, not here);
 * project_destroy marks the repo removed. In project mode they are recorded and ignored.
 * Pipeline events (X-Gitlab-Event: Pipeline Hook) of a gated repo whose pipeline has not finished and is not an
 * external one create a job of kind "hold" (params: pipeline_id, sha, mr_iid) that posts the MR's gate state into
 * that pipeline (core/gatehold.h); the MR is the payload's merge_request, else the one whose latest gate run is on
 * the pipeline's sha.
 * The payload is kept (jsonb) when at most WEBHOOK_PAYLOAD_KEEP bytes.
 * Threading: thread-safe; one database connection per call.
 * Ownership: the delivery's strings are borrowed; struct webhook_mr borrows from the parsed payload.
 */
#ifndef MRGATE_CORE_WEBHOOK_H
#define MRGATE_CORE_WEBHOOK_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_PAYLOAD_KEEP (256u * 1024)
#define WEBHOOK_KEY_MAX      200 /* longer Idempotency-Key / UUID values are refused as keys (not stored) */

struct webhook_delivery {
	const char *token;           /* X-Gitlab-Token, or NULL */
	const char *event;           /* X-Gitlab-Event, or NULL */
	const char *idempotency_key; /* Idempotency-Key, or NULL */
	const char *webhook_uuid;    /* X-Gitlab-Webhook-UUID, or NULL */
	const char *body;
	size_t len;
};

enum webhook_outcome { WEBHOOK_QUEUED = 0, WEBHOOK_COALESCED, WEBHOOK_DUPLICATE, WEBHOOK_IGNORED };
const char *webhook_outcome_name(enum webhook_outcome o); /* "queued", "coalesced", "duplicate", "ignored" */

struct webhook_result {
	enum webhook_outcome outcome;
	int64_t event_id; /* 0 for a duplicate */
	int64_t run_id;   /* the gate run queued (or joined), else 0 */
	int64_t job_id;   /* the "onboard" (project_create) or "hold" (pipeline) job created (wake the runner), or 0 */
	char reason[256]; /* why an event was ignored */
	char event_label[32]; /* the event kind for metrics: merge_request, push, note, ..., other */
};

/*
 * Receive one delivery. expected_secret: the installation's webhook secret (NULL when there is no connection:
 * every delivery is then CORE_EUNAUTH). CORE_OK with *out filled for everything authenticated and recorded;
 * CORE_EUNAUTH for a missing or wrong token (nothing stored; counted, and logged at most once a minute with what
 * to do: a hook token edited in GitLab cannot be seen otherwise); CORE_EUNAVAIL and other store errors when the
 * event could not be recorded (the caller answers 5xx so that GitLab retries).
 */
enum core_status webhook_receive(struct store *db, const char *expected_secret, const struct webhook_delivery *d,
                                 struct webhook_result *out);

/* --- pure helpers (exposed for tests) --------------------------------------------------------------------------- */

struct webhook_mr {
	int64_t project_id;        /* object_attributes.target_project_id, else project.id */
	int64_t source_project_id; /* object_attributes.source_project_id, else project_id */
	int64_t iid;
	const char *action;   /* "" when absent */
	const char *state;    /* "" when absent */
	const char *head_sha; /* object_attributes.last_commit.id */
	const char *source_branch;
	bool has_oldrev;
};

/* Read a merge request payload; CORE_EINVAL with why for a missing or mistyped field. */
enum core_status webhook_parse_mr(const struct json_object *payload, struct webhook_mr *out, char *why, size_t whylen);
/* open, reopen, or update with oldrev, on an open MR. why says what else it is. */
bool webhook_mr_changes_code(const struct webhook_mr *m, char *why, size_t whylen);
/* The metrics label of an X-Gitlab-Event value ("Merge Request Hook" -> "merge_request"; unknown -> "other"). */
const char *webhook_event_label(const char *event);

#endif
