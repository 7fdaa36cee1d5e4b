/*
 * core/gate_status.h
 *    mrgate's commit status on an MR head commit (name "mrgate"): the one POST /projects/:id/statuses/:sha that the
 *    gate run, the pipeline hold (core/gatehold.h) and the open-MR clearing (core/gate_open_mrs.h) all make.
 *
 * Design: GitLab refuses a transition to the state a status already has ("Cannot transition status via :enqueue
 * from :pending", 400): the status is there, so that is success. GitLab answers 409 while another update of the
 * same status is in progress: those callers that ask for tries > 1 retry it with a backoff (250 ms doubling, capped
 * at 4 s). A status joins the pipeline named by pipeline_id (which must be on sha), else the newest pipeline of sha
 * and ref, else a new external pipeline (GITLAB-API.md §5.2).
 * Threading: thread-safe (the struct gitlab is shared).
 * Ownership: *resp_out (the last response, may be NULL) is the caller's: gitlab_response_free().
 */
#ifndef MRGATE_CORE_GATE_STATUS_H
#define MRGATE_CORE_GATE_STATUS_H

#include "gitlab.h"
#include "status.h"

#include <stdint.h>

#define GATE_STATUS_NAME  "mrgate"
#define GATE_STATUS_TRIES 8 /* posts of one status while GitLab answers 409 */
/* The description of the `canceled` status that replaces the pending one of a run a newer push superseded. */
#define GATE_SUPERSEDED_DESCRIPTION "superseded by a newer push: mrgate gates the merge request's new head"

struct gate_status {
	const char *state;       /* pending | success | failed */
	const char *description; /* shown by GitLab next to the status */
	const char *ref;         /* NULL: GitLab takes the pipeline's */
	const char *target_url;  /* NULL or "": none */
	int64_t pipeline_id;     /* 0: none */
};

/* POST s on project_id's commit sha, up to tries times while GitLab answers 409. */
enum core_status gate_status_post(struct gitlab *gl, int64_t project_id, const char *sha, const struct gate_status *s,
                                  int tries, struct gitlab_response **resp_out);

/* The GitLab message of a failed call, or the status code: for error messages (borrowed). */
const char *gate_status_why(const struct gitlab_response *resp, enum core_status st);

#endif
