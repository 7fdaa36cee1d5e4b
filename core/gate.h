/*
 * core/gate.h
 *    The merge-request gate: a durable queue of gate runs, the workers that evaluate one MR head commit each, and
 *    the reads behind GET /api/gates.
 *
 * Design: the webhook receiver (core/webhook.c) stores a gate run (state queued) in the same transaction as the
 * event and commits before GitLab gets its 2xx. Worker threads (gate_workers_start, in every `mrgate serve`)
 * claim queued runs with FOR UPDATE SKIP LOCKED under a lease (env->lease_ms, renewed by a heartbeat thread every
 * third of it, like job items); a run whose instance died is claimed again when its lease ends, so a crash between
 * store and run loses nothing and a killed instance's runs get their verdict within a lease. One run:
 *   1. reads the repo's effective config (gate_config_load, the one adapter to core/gateconfig) and the MR
 *      (GET .../merge_requests/:iid): a head sha other than the run's means a newer push superseded it;
 *   2. posts `pending` (name "mrgate", ref = the source branch, or the MR head pipeline's ref with pipeline_id when
 *      that pipeline is on the head sha: GITLAB-API.md §5.2) at once;
 *   3. fetches every page of the MR diffs; files GitLab did not send in full (collapsed, too_large, or an empty
 *      diff that is not a rename, mode change, new or deleted file) and files lost past GitLab's diff limits (the
 *      MR's changes_count "N+", or fewer entries than it announces) are read from the base and head trees instead
 *      (repository archives, core/treediff.h); what still cannot be read is "unscannable" unless ignore_paths
 *      cover it;
 *   4. runs the enabled scanners: secrets on the added lines; for sast, dependencies, iac, license and malware the
 *      configured command on the head tree (repository archive at the head sha, unpacked under a size cap into a
 *      temporary directory that is removed afterwards), its SARIF filtered to added lines (core/scan_sarif.h);
 *   5. drops findings under ignore_paths, stores the findings and the verdict, then - only if the run is still the
 *      MR's current one (checked right before posting) - posts `success` or `failed` with the description and a
 *      link to the dashboard's report, retrying GitLab's 409, and creates or edits the one sticky MR note.
 * Verdict: failed iff a counted finding has severity >= fail_on. Problems that leave part of the change unscanned
 * (no scanner configured for an enabled type, a scanner that failed, unscannable files, SARIF results that could
 * not be read: stats.invalid > 0 means results we cannot place, so they may sit on added lines) are notes in the
 * description and fail the gate when the fail mode is closed (the default). A run past the gate timeout posts
 * failed "timed out" (closed) or success "timed out" (open). fail_on never always posts success, with the counts.
 * A newer head commit for the same MR marks older queued/running runs superseded (the receiver does it; the
 * worker also compares with the MR's sha); a superseded run never posts its verdict.
 * Threading: gate_workers_* own their threads; every other function is thread-safe.
 * Ownership: struct gate_config owns its ignore_paths (gate_config_clear). JSON *out trees are the caller's.
 */
#ifndef MRGATE_CORE_GATE_H
#define MRGATE_CORE_GATE_H

#include "connection.h"
#include "crypto.h"
#include "findings.h"
#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATE_STATUS_NAME   "mrgate"
#define GATE_MAX_ATTEMPTS  3
#define GATE_NOTE_MARKER   "<!-- mrgate:gate-note -->"
#define GATE_NOTE_MAX_ROWS 50

enum gate_scan {
	GATE_SCAN_SECRETS = 0,
	GATE_SCAN_SAST,
	GATE_SCAN_DEPENDENCIES,
	GATE_SCAN_IAC,
	GATE_SCAN_LICENSE,
	GATE_SCAN_MALWARE,
	GATE_SCAN_COUNT
};
extern const char *const gate_scan_names[GATE_SCAN_COUNT]; /* "secrets", "sast", ... */

enum gate_comment { GATE_COMMENT_OFF = 0, GATE_COMMENT_ON_FINDINGS, GATE_COMMENT_ALWAYS };

/* The effective config of one repo, as the gate needs it. */
struct gate_config {
	bool gated;        /* the repo is known, enabled and managed */
	char why_not[160]; /* when not gated: why, for webhook_events.ignored_reason */
	enum fail_on fail_on;
	bool scans[GATE_SCAN_COUNT];
	enum gate_comment comment;
	char **ignore_paths; /* owned */
	size_t n_ignore;
};
void gate_config_clear(struct gate_config *c);

/*
 * The effective config of repo_id: the one adapter to the config model (core/gateconfig.h). An unknown repo is
 * CORE_OK with gated false and why_not set.
 */
enum core_status gate_config_load(struct store *db, int64_t repo_id, struct gate_config *out);
/* Pure: read an effective config object ({"enabled","fail_on","scans","comment","ignore_paths"}). */
enum core_status gate_config_from_json(const struct json_object *effective, bool unmanaged, struct gate_config *out);

/* What the receiver learnt from a merge request event that changes code. Strings are borrowed. */
struct gate_mr_event {
	int64_t project_id;        /* target project: the gated repo */
	int64_t source_project_id; /* where the commit lives (forks) */
	int64_t mr_iid;
	const char *head_sha;
	const char *source_branch;
};

/*
 * Inside the caller's transaction: supersede queued/running runs of the same MR on another head sha, and queue a
 * run for this head sha unless one is already queued (then *coalesced_out is true and *run_id_out is that run).
 * event_id 0: the run was not started by a webhook delivery (gate_enqueue_open_mrs).
 */
enum core_status gate_enqueue(struct store_conn *c, const struct gate_mr_event *ev, int64_t event_id,
                              int64_t *run_id_out, bool *coalesced_out);

/*
 * Gating starts or stops for a repo (DESIGN.md §3: open MRs are neither stranded nor left blocked).
 *
 * The split: core/apply.c decides *when* (the applied state it recorded goes from off to hook or hook+merge, or
 * back to off) and calls these once GitLab is in the new state and before it records that state; this module
 * knows *what* it means for merge requests. A failure is returned to apply, which keeps the old applied state,
 * so the next apply sees the same transition and calls again: both functions are idempotent.
 *
 * gate_enqueue_open_mrs(): lists the repo's open MRs (GET /projects/:id/merge_requests?state=opened, all pages)
 *   and queues a gate run for each head sha exactly as a webhook `open` event would (gate_enqueue, superseding
 *   runs on older heads), unless a run for that head sha is already queued or running. Then wakes the workers.
 * gate_clear_open_mrs(): ends the repo's queued and running gate runs (state done, verdict skipped: a worker that
 *   is mid-scan loses its lease and never posts), lists the open MRs, reads the `mrgate` statuses of each head
 *   sha (latest per pipeline) and, for every one that is pending, running or failed, posts a final `success`
 *   named `mrgate` "mrgate gate removed for this repository" on the same ref (409 retried). Statuses already
 *   `success` and statuses of other names are never touched.
 * Both take a second database connection from the pool (apply holds one) only when the repo has open MRs.
 * dry_run: only the one MR list is read; out->queued is what would be queued and out->cleared is estimated from
 * mrgate's own records (gate runs on the open heads whose last posted state is pending or failed); no write.
 */
struct gate_open_mrs {
	int open_mrs;      /* open MRs listed */
	int queued;        /* gate runs queued (dry run: that would be) */
	int cleared;       /* final statuses posted (dry run: estimated) */
	int reads, writes; /* GitLab calls made (status posts count once each, retries not) */
	bool retryable;    /* on failure: transient (5xx, timeout, 429, 409 after the retries) */
	char error[400];   /* on failure: why, lower case, e.g. "could not list the open merge requests: ..." */
};
enum core_status gate_enqueue_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool dry_run,
                                       struct gate_open_mrs *out);
enum core_status gate_clear_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool dry_run,
                                     struct gate_open_mrs *out);

#define GATE_REMOVED_DESCRIPTION "mrgate gate removed for this repository"

/* What a gate worker needs from the process. Strings and the key are borrowed for the workers' life. */
struct gate_env {
	struct store *db;
	const unsigned char *secret_key; /* CRYPTO_KEY_BYTES */
	struct connection_tuning tune;
	const char *public_url; /* for target_url: {public_url}/#/gates/{id} */
	const char *instance;   /* lease owner name */
	int lease_ms;           /* lease of a claimed run, renewed every third of it by gate_workers'
	                           heartbeat (a dead instance's runs are taken over after it); 0: no
	                           heartbeat, the lease covers timeout_s + 120 s */
	int timeout_s;
	size_t tree_max_bytes;
	const char *scanners[GATE_SCAN_COUNT]; /* command lines; NULL or "" = none configured ([secrets] unused) */
	int default_resync_interval;           /* for settings_get (fail mode) */
};

struct gate_workers;
/* Start n worker threads. NULL when none could start. */
struct gate_workers *gate_workers_start(const struct gate_env *env, int n);
/* Stop and join the workers (a run in progress finishes first). NULL is fine. */
void gate_workers_stop(struct gate_workers *w);
/* Wake idle workers of this process: a run was queued. */
void gate_kick(void);

/* Claim one claimable run and execute it in the calling thread. *ran_out false when there was none. */
enum core_status gate_run_next(const struct gate_env *env, bool *ran_out);

/* GET /api/gates */
struct gate_filter {
	int64_t repo_id;     /* 0 = any */
	int64_t mr_iid;      /* 0 = any */
	const char *verdict; /* NULL = any; passed | failed | error | timeout | skipped */
	const char *state;   /* NULL = any; queued | running | done | superseded | error */
	int64_t before_id;   /* cursor: runs with a smaller id; 0 = from the newest */
	int limit;           /* 1..200; 0 = 50 */
};
/* {"items": [...], "next_cursor": "id" | null}. CORE_EINVAL (message in err) for a bad verdict or state. */
enum core_status gate_list(struct store *db, const struct gate_filter *f, struct json_object **out, char *err,
                           size_t errlen);
/* One run with "findings": [...]; CORE_ENOTFOUND when unknown. */
enum core_status gate_get(struct store *db, int64_t id, struct json_object **out);

/* --- pure helpers (exposed for tests) --------------------------------------------------------------------------- */

/* The final state the commit status gets, and the verdict recorded. */
struct gate_decision {
	const char *verdict; /* passed | failed | timeout */
	const char *state;   /* success | failed */
	char description[FINDINGS_DESCRIPTION_MAX + 1];
};
/*
 * Decide: findings (already filtered), fail_on, notes (problems and remarks), problems = some part of the change
 * went unscanned, timed_out, fail_open. fail_on never always succeeds.
 */
enum core_status gate_decide(const struct finding_list *findings, enum fail_on fail_on, const char *const *notes,
                             size_t n_notes, bool problems, bool timed_out, int timeout_s, bool fail_open,
                             struct gate_decision *out);

struct gate_report {
	const char *state; /* success | failed */
	const char *description;
	const char *head_sha;
	const char *report_url; /* may be NULL */
	const struct finding_list *findings;
	const char *const *notes;
	size_t n_notes;
};
/* The sticky note's Markdown (starts with GATE_NOTE_MARKER); malloc'd, NULL when out of memory. */
char *gate_note_render(const struct gate_report *r);

/* Markdown table cell text: '|' escaped, control characters as spaces, backticks dropped, cut to max bytes. */
void gate_md_cell(const char *in, char *out, size_t cap, size_t max);

#endif
