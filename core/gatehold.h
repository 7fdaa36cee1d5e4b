/*
 * core/gatehold.h
 *    Hold a gate run's verdict in the pipeline GitLab's merge check reads.
 *
 * Design (docs/PIPELINES.md): with "Pipelines must succeed", GitLab looks only at the MR's head pipeline: the
 * newest merge request pipeline (detached or merged results, found by sha or source_sha) or else the newest pipeline
 * of the source branch on the head sha (Ci::PipelinesForMergeRequestFinder#sort). A commit status joins the pipeline
 * named by pipeline_id (which must be on the status's sha), else the newest pipeline of its sha and ref, else a new
 * external pipeline (Ci::CreateCommitStatusService). So a verdict posted before a project's CI pipeline exists, a
 * pipeline started after the verdict, and a merged-results pipeline (on a merge commit) would each leave the head
 * pipeline without mrgate's status, and the MR mergeable on CI alone. mrgate's hooks therefore ask for pipeline
 * events; for each new pipeline of an MR's head (and, as a safety net, for the MR's head pipeline when a run posts)
 * the run's current state - pending while it scans, then its verdict - is posted into that pipeline with
 * pipeline_id on the pipeline's own sha. gate_pipeline_posts (sql/0008) remembers what was posted where: the same
 * state is never posted twice into one pipeline (a pipeline event caused by our own post does nothing), and a run
 * that finishes replaces its pending status in every pipeline it entered.
 * The statuses go through core/gate_status.h, like the run's own; this module needs nothing else of the gate, so
 * the gate's modules may call it without an include circle.
 * Threading: thread-safe (one database connection per query; the struct gitlab is shared).
 * Ownership: inputs are borrowed; msg is the caller's buffer.
 */
#ifndef MRGATE_CORE_GATEHOLD_H
#define MRGATE_CORE_GATEHOLD_H

#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/*
 * A pipeline event of a gated repo (the "hold" job): post the state of the MR's latest gate run into the pipeline
 * (project_id, pipeline_id, sha) unless it is there already. mr_iid: the event's merge_request.iid. Nothing is
 * posted when the MR has no run, its latest run was superseded, or the MR's head moved on (a newer run will
 * post). public_url: for the status's link (may be NULL). msg says what happened. CORE_OK also when nothing was
 * to be done.
 */
enum core_status gatehold_pipeline(struct store *db, struct gitlab *gl, const char *public_url, int64_t project_id,
                                   int64_t mr_iid, int64_t pipeline_id, const char *sha, char *msg, size_t cap);

/*
 * After a run posted (pending or its verdict) into its own pipeline (own_pipeline_id, or 0 when it posted on the
 * ref own_ref without one): bring every other pipeline the run entered to the run's current state, and enter the
 * MR's head pipeline when it is another one (one GET of the MR). Errors are logged, never fatal: the run's own
 * status is already posted.
 */
void gatehold_sync_run(struct store *db, struct gitlab *gl, const char *public_url, int64_t run_id,
                       int64_t own_pipeline_id, const char *own_ref);

#endif
