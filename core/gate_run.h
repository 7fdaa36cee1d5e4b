/*
 * core/gate_run.h
 *    One gate run: evaluate one merge request head commit and post mrgate's verdict on it.
 *
 * Design: a run claimed from the queue (core/gate_queue.h):
 *   1. reads the repo's effective config (core/gate_config.h) and the MR (GET .../merge_requests/:iid): a head sha
 *      other than the run's means a newer push superseded it; a closed MR or a repo no longer gated ends the run
 *      quietly (state done, verdict skipped);
 *   2. posts `pending` (name "mrgate", ref = the source branch, or the MR head pipeline's ref with pipeline_id when
 *      that pipeline is on the head sha: GITLAB-API.md §5.2) at once, and into the MR's head pipeline when that is
 *      another one (core/gatehold.h);
 *   3. scans (core/gate_scan.h: the diffs, the trees where GitLab's diffs fall short, the enabled scanners) and
 *      drops findings under ignore_paths;
 *   4. decides (core/gate_report.h), stores the findings and the verdict (core/gate_store.h), then - only if the run is
 * still the MR's current one (checked right before posting) - posts `success` or `failed` with the description and a
 * link to the dashboard's report, retrying GitLab's 409, brings every pipeline it entered to the verdict, and creates
 * or edits the one sticky MR note (table mr_notes remembers its id per MR); in comment mode inline it first opens or
 * resolves the discussions on the lines (core/gate_inline.h), and the note lists only what is not on a line. Every
 * write of a run's outcome is guarded by the run's lease (lease_owner = env->instance): a run another instance took
 * over is never finished twice. A transient failure puts the run back in the queue with a backoff (5 s * attempts²);
 * after GATE_MAX_ATTEMPTS, or at once for a permanent one (no GitLab connection, MR not found), the run posts a final
 * answer by the fail mode: failed "could not evaluate the change (fail-closed)" or success
 * "(fail-open)". A run past the gate timeout posts failed "timed out" (closed) or success "timed out" (open).
 * Threading: one run executes in the calling thread; runs in many threads at once share only the store pool and
 * the pooled GitLab client.
 * Ownership: struct gate_env's strings and key are borrowed for the callers' life.
 */
#ifndef MRGATE_CORE_GATE_RUN_H
#define MRGATE_CORE_GATE_RUN_H

#include "connection.h"
#include "gate_config.h"
#include "gate_queue.h"
#include "status.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATE_MAX_ATTEMPTS 3

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

/* Describe the gate's metrics and prepare the scanners; once per process, before the first run (idempotent). */
void gate_run_init(void);

/*
 * Claim the next claimable run for env->instance. Its lease is env->lease_ms, which the caller must renew
 * (core/gate_workers.c does, with gate_queue_renew) or, when env->lease_ms is 0, the whole gate timeout plus 120 s.
 */
enum core_status gate_run_claim(const struct gate_env *env, struct gate_queue_claim *out, bool *claimed_out);
/* Execute a claimed run in the calling thread, to its end (or its return to the queue). */
void gate_run_execute(const struct gate_env *env, const struct gate_queue_claim *claim);

/*
 * Claim one claimable run and execute it in the calling thread (nobody renews its lease: give an env whose lease_ms
 * is 0). *ran_out false when there was none.
 */
enum core_status gate_run_next(const struct gate_env *env, bool *ran_out);

#endif
