/*
 * core/hookjobs.h
 *    The jobs a GitLab webhook event queues (core/webhook.c): "onboard" for a project GitLab announced in
 *    group-hook mode, "hold" for a pipeline of a gated merge request.
 *
 * Design: the webhook answers GitLab at once and leaves the GitLab calls to a job, so a slow or failing GitLab
 * never delays a delivery and the work survives a crash. Both handlers read GitLab through the shared client
 * within the process's GitLab slots (core/applyjob.h), and classify failures the same way: a missing connection
 * or an item that cannot succeed is an error, anything transient is retried with backoff.
 *   onboard: read the new project, store it so that it inherits its group's config (grouphook_onboard) and start
 *            an apply job when that config gates it.
 *   hold:    post the MR's gate state into the pipeline, so that GitLab's merge check, which reads only the MR's
 *            head pipeline, sees it (core/gatehold.h).
 * Threading: the handlers run on the job workers, several at once (core/jobs.h).
 * Ownership: user is the process's struct applyjob_env (borrowed); item and res as core/jobs.h says.
 */
#ifndef MRGATE_CORE_HOOKJOBS_H
#define MRGATE_CORE_HOOKJOBS_H

#include "jobs.h"

/* Job kind "onboard": item->repo_id is the project GitLab announced with project_create. */
enum job_outcome hookjobs_onboard(void *user, const struct job_item *item, struct job_item_result *res);

/* Job kind "hold": item->repo_id is the project; params carry pipeline_id, mr_iid and sha. */
enum job_outcome hookjobs_hold(void *user, const struct job_item *item, struct job_item_result *res);

#endif
