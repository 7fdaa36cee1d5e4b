/*
 * tests/gitlab-sim/sim_pipelines.h
 *    CI pipelines beside mrgate's external ones: the control API that makes a project's own CI run (branch,
 *    detached merge-request and merged-results pipelines) and moves its status, and the merge API whose check reads
 *    the MR's head pipeline ("Pipelines must succeed").
 *
 * Design (GitLab's code, see README.md "Pipelines"): a pipeline belongs to a sha and a ref; a merged-results
 *    pipeline runs on refs/merge-requests/:iid/merge at a merge commit and remembers the MR head as source_sha.
 *    The MR's head pipeline is the newest of its pipelines whose sha or source_sha is the MR head
 *    (sim_mr_head_pipeline). A CI pipeline's jobs are one status named "ci" by the instance's root user, so its
 *    status is computed like any other (sim_pipeline_refresh); a Pipeline Hook fires on every status change.
 * Ownership: everything lives in struct sim; handlers run with the lock held.
 */
#ifndef SIM_PIPELINES_H
#define SIM_PIPELINES_H

#include "sim_http.h"
#include "sim_state.h"

#include <stdbool.h>

/* /__sim/pipelines routes; false when the path is not one of them (nothing replied). */
bool sim_pipelines_control(struct sim_req *r);
/* PUT /projects/:id/merge_requests/:merge_request_iid/merge */
void sim_h_mr_merge(struct sim_req *r);

#endif
