/*
 * tests/gitlab-sim/sim_strict.h
 *    Where GitLab is strict and a kinder double would hide a defect (issue 19): diff limits, per-endpoint rate
 *    limits, local hook URLs, addressable target URLs, quick actions in notes, the per-commit status lock, the
 *    asynchronous mergeability check and Grape's integer parameters. Each rule names its GitLab source in
 *    tests/gitlab-sim/README.md ("Strictness").
 *
 * Design: the switches are GitLab's application settings (struct sim_settings, GET|POST /__sim/settings), reset to
 *    GitLab's defaults by POST /__sim/reset; `--allow-local-hooks` turns allow_local_requests on at start (mrgate's
 *    own tests run on loopback, so they ask for it). Everything here runs with s->mu held, except
 *    sim_strict_status_lock()/unlock(), which sleep between short holds of it.
 * Ownership: JSON results are the caller's; nothing else outlives a call.
 */
#ifndef SIM_STRICT_H
#define SIM_STRICT_H

#include "sim_http.h"
#include "sim_state.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* GET|POST /__sim/settings (POST changes only the keys it names). */
void sim_strict_settings_get(struct sim_req *r);
void sim_strict_settings_set(struct sim_req *r);

/*
 * GitLab's diff limits (Gitlab::Git::DiffCollection#each_serialized_patch, Gitlab::Git::Diff#too_large?) over a
 * change list in order: the first *kept_out changes are stored, the rest are lost to an overflow
 * (*overflow_out). too_large (n entries, may be NULL) marks kept files whose patch is at least
 * diff_max_patch_bytes: GitLab stores them with an empty diff and too_large true.
 */
void sim_strict_diff_limits(const struct sim *s, const struct sim_change *changes, size_t n, bool *too_large,
                            size_t *kept_out, bool *overflow_out);
/* The MR's changes_count as GitLab renders it: "N", or "N+" after an overflow. Owned. */
char *sim_strict_changes_count(const struct sim *s, const struct sim_mr *m);

/* Called by sim_api_handle after authentication: page/per_page must be integers (Grape: 400 "<p> is invalid"),
 * and the per-endpoint limits (JSON 429 without RateLimit-* or Retry-After). true = answered, stop. */
bool sim_strict_before_handler(struct sim_req *r, const char *template_path);

/* UrlBlocker for hook URLs: false (the caller answers 422 "Invalid url given") for a loopback, private,
 * link-local or unspecified host unless allow_local_requests is set. */
bool sim_strict_hook_url_allowed(const struct sim *s, const char *url);

/* AddressableUrlValidator for a commit status target_url: http(s) scheme, a host, no blanks. */
bool sim_strict_addressable_url(const char *url);

/* Quick actions in a note written through the API (QuickActions::InterpretService): lines that start with
 * /merge or /approve, outside ``` fences, run as the note's author, and are recorded on the note. /merge acts
 * only when diff_head_sha (the request's merge_request_diff_head_sha) is the MR's head sha
 * (MergeOrchestrationService); it merges a mergeable MR, else sets auto-merge. diff_head_sha may be NULL. */
void sim_strict_quick_actions(struct sim *s, struct sim_mr *m, struct sim_note *n, const char *diff_head_sha);

/* The per-commit lock of POST /projects/:id/statuses/:sha (Ci::CreateCommitStatusService: in_lock, 0.5 s apart
 * for status_lock_wait_ms): take it before the handler runs, without s->mu held. false = still held by another
 * post: answer 409 "Another update to this commit status is in progress". */
bool sim_strict_status_lock(struct sim *s, const char *key);   /* once taken, holds it status_lock_ms first */
void sim_strict_status_unlock(struct sim *s, const char *key); /* after the handler, without s->mu held */

/* detailed_merge_status while the asynchronous mergeability check runs: "unchecked" or "checking", or NULL when
 * the check is done. Called by the MR renderer; a GET starts the check. */
const char *sim_strict_merge_check(struct sim *s, struct sim_mr *m);
/* A push or an open restarts the check. */
void sim_strict_merge_check_restart(const struct sim *s, struct sim_mr *m);

#endif
