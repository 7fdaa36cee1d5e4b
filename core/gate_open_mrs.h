/*
 * core/gate_open_mrs.h
 *    Gating starts or stops for a repo: what that means for its open merge requests (DESIGN.md §3: open MRs are
 *    neither stranded nor left blocked).
 *
 * Design: core/apply.c decides *when* (the applied state it recorded goes from off to hook or hook+merge, or
 * back to off) and calls these once GitLab is in the new state and before it records that state; this module
 * knows *what* it means for merge requests. A failure is returned to apply, which keeps the old applied state,
 * so the next apply sees the same transition and calls again: both functions are idempotent.
 *
 * gate_enqueue_open_mrs(): lists the repo's open MRs (GET /projects/:id/merge_requests?state=opened, all pages)
 *   and queues a gate run for each head sha exactly as a webhook `open` event would (gate_enqueue, superseding
 *   runs on older heads, under the receiver's per-MR advisory lock), unless a run for that head sha is already
 *   queued or running (unseen_only: unless that head sha has any run at all, the MRs a hook that was down did not
 *   deliver). Then wakes the workers.
 * gate_clear_open_mrs(): ends the repo's queued and running gate runs (state done, verdict skipped: a worker that
 *   is mid-scan loses its lease and never posts), lists the open MRs, reads the `mrgate` statuses of each head
 *   sha (latest per pipeline) and, for every one that is pending, running or failed, posts a final `success`
 *   named `mrgate` "mrgate gate removed for this repository" on the same ref (409 retried). Statuses already
 *   `success` and statuses of other names are never touched.
 * gate_enqueue_listed_mrs(): the same for the MRs of a list already read (the job's GET /groups/:id/merge_requests,
 *   the entries of this repo: no GitLab call).
 * Both take a database connection from the pool only when the repo has open MRs, and never hold it across a
 * GitLab call (apply holds none either).
 * dry_run: only the one MR list is read; out->queued is what would be queued and out->cleared is estimated from
 * mrgate's own records (gate runs on the open heads whose last posted state is pending or failed); no write.
 * Threading: thread-safe (the struct gitlab is shared).
 * Ownership: results are written into *out.
 */
#ifndef MRGATE_CORE_GATE_OPEN_MRS_H
#define MRGATE_CORE_GATE_OPEN_MRS_H

#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define GATE_REMOVED_DESCRIPTION "mrgate gate removed for this repository"

struct gate_open_mrs {
	int open_mrs;      /* open MRs listed */
	int queued;        /* gate runs queued (dry run: that would be) */
	int cleared;       /* final statuses posted (dry run: estimated) */
	int reads, writes; /* GitLab calls made (status posts count once each, retries not) */
	bool retryable;    /* on failure: transient (5xx, timeout, 429, 409 after the retries) */
	char error[400];   /* on failure: why, lower case, e.g. "could not list the open merge requests: ..." */
};
enum core_status gate_enqueue_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool unseen_only,
                                       bool dry_run, struct gate_open_mrs *out);
enum core_status gate_enqueue_listed_mrs(struct store *db, int64_t repo_id, struct json_object *mrs, bool unseen_only,
                                         bool dry_run,
                                         struct gate_open_mrs *out); /* mrs borrowed (an array, NULL: none) */
enum core_status gate_clear_open_mrs(struct store *db, struct gitlab *gl, int64_t repo_id, bool dry_run,
                                     struct gate_open_mrs *out);

#endif
