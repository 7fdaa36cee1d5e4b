/*
 * core/applyjob.h
 *    The apply job: how a stored gating config reaches GitLab. Every GitLab change goes through a job of kind
 *    "apply" (core/jobs.h) with one item per repo, worked off by the process's job workers with applyjob_item().
 *
 * Design: a write (a config, a bulk configure, an import, a resync, a hook-mode switch) marks repos for apply
 * (core/gateconfig.h) and starts a job with applyjob_start_marked() or applyjob_start(). The job survives a crash
 * (another instance, or this one restarted, takes the items over) and its progress is GET /api/jobs/{id}. A job
 * that cannot be created gives its repos up (apply_abandon) with the reason, so none stays "applying".
 * The items of one job share a context (process-wide, up to 8 jobs at once, freed when a later job needs its slot):
 * the connection's token health, the shared GitLab client and the hook mode, read once and again every 10 s (a
 * resync may have found the token expired since: writes are refused while the stored token is expired, revoked or
 * read-only, and the item fails with the reason), not per repo; and the job-wide GitLab lists apply reads from
 * (struct apply_lists, core/apply.h): the group's projects (GET /groups/:id/projects, include_subgroups, pages of
 * 100) when the first repo needs its merge setting or open MRs, the group's open MRs (GET
 * /groups/:id/merge_requests?state=opened&scope=all) when the first repo's gating starts, each read again after 5
 * minutes. A list that cannot be read is logged and its repos are read alone. The context's lock is held while a
 * list is read (the other items wait for it, none holds a database connection). Each item claims its repo with
 * its own id as owner ("job-item-N"), so an item taken over after a crash reclaims it at once. GitLab work is
 * bounded by the process's GitLab slots (core/limiter.h), taken around each GitLab exchange of an item (the
 * database work between them holds none, so with more workers than slots every slot stays busy) and around each
 * list read: the group's project list takes one slot per page it reads side by side (the pages the known repos fill,
 * at most every slot).
 *
 * struct applyjob_env is what the apply machinery needs of the process; the server fills one at start
 * (server/app.c), and the other orchestrations that start apply jobs take it too (core/hookjobs.h,
 * core/hookmode.h, core/resync.h).
 *
 * Threading: applyjob_item() runs on the job workers, several at once; every function is safe from any thread.
 *   applyjob_wait() blocks the calling thread.
 * Ownership: the env and what it points to are borrowed and must outlive the job runner. JSON results are new
 *   trees owned by the caller (json_object_put).
 */
#ifndef MRGATE_CORE_APPLYJOB_H
#define MRGATE_CORE_APPLYJOB_H

#include "apply.h"
#include "connection.h"
#include "gateconfig.h"
#include "jobs.h"
#include "publicurl.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct limiter;
struct jobs_runner;

struct applyjob_env {
	struct store *db;
	const unsigned char *secret_key; /* CRYPTO_KEY_BYTES */
	struct connection_tuning tune;   /* GitLab client tuning from the settings */
	const char *public_url;          /* makes the hook URL (checked by publicurl_check at start) */
	int default_resync_interval;     /* for settings_get() */
	int gitlab_concurrency;          /* repos a foreground batch (a dry run's plan) reads at once */
	struct limiter *gitlab_slots;    /* bounds the job workers' GitLab work; NULL: unbounded */
	struct jobs_runner *jobs;        /* this process's runner, woken by a new job; NULL: none (CLI commands) */
	struct outbox *outbox;           /* the job items' outcomes are written through it (owned by whoever set up
	                                    the env, freed after the runner stopped); NULL: each alone */
	const bool *stopping;            /* read atomically: the process is stopping (waits end); NULL: never */
};

/* Bytes that hold this process's hook URL. */
#define APPLYJOB_HOOK_URL_MAX PUBLICURL_HOOK_URL_MAX

/*
 * The apply context of this process for a connection: the hook URL ({public_url}/hooks/gitlab) written into
 * hook_url, the connection's webhook secret (borrowed from cc), ssl_verify for an https hook URL. CORE_ETOOLARGE
 * (logged) when the public URL is too long for the hook URL (publicurl_check refuses such a URL at start): a cut
 * hook URL would never match its hook again.
 */
enum core_status applyjob_ctx(const struct applyjob_env *env, struct connection_client *cc,
                              char hook_url[APPLYJOB_HOOK_URL_MAX], struct apply_ctx *ctx);

/*
 * Open the shared GitLab client for a job item. On failure res->message says why (missing: the message when there
 * is no connection) and *outcome_out is the item's outcome: JOB_ITEM_ERROR without a connection, JOB_ITEM_RETRY
 * for anything else. Release the client with connection_client_release().
 */
bool applyjob_client(const struct applyjob_env *env, struct job_item_result *res, const char *missing,
                     struct connection_client **cc_out, enum job_outcome *outcome_out);

/* Take and give back one of the process's GitLab slots (no-ops without a limiter). */
void applyjob_slot_take(const struct applyjob_env *env);
void applyjob_slot_give(const struct applyjob_env *env);

/*
 * The job-wide lists (the group's project list and open MRs, struct apply_lists) for an item of job_id that is not
 * an apply's: a preview's (core/dryrun.c). They are read once for the job and shared by its items as an apply job's
 * items share them, under the same rule: NULL (each repo reads its own project and MRs) unless the job has more
 * repos than the group's project list has pages, or while the job's context has no connection. *ref is the job's
 * context, held until applyjob_lists_put(*ref), which the caller calls once the item no longer uses the lists (also
 * when they are NULL). The callbacks take GitLab slots themselves: call apply with ctx->slots, holding none.
 * *canceled: the job was canceled (applyjob_note_canceled, or its state as the context last read it): an item not
 * started should not be.
 */
const struct apply_lists *applyjob_lists_take(const struct applyjob_env *env, int64_t job_id, void **ref,
                                              bool *canceled);
/* The same for n_repos applied or previewed without a job (the CLI's foreground apply_batch); *ref is given back
 * with applyjob_lists_put() too, after the batch. */
const struct apply_lists *applyjob_lists_open(const struct applyjob_env *env, size_t n_repos, void **ref);
void applyjob_lists_put(void *ref);

/* The handler of job kind "apply" (core/jobs.h): apply one repo (item->repo_id); user is the applyjob_env. An item
 * of a canceled job (applyjob_note_canceled, or the job's state read with the context every
 * JOBCTX_REFRESH_SECONDS) is not started: its repo's applying mark is taken off and the item is skipped "canceled".
 * Items are claimed a few at a time per worker, so a cancel reaches the claimed items this way and the pending ones
 * through jobs_cancel. */
enum job_outcome applyjob_item(void *user, const struct job_item *item, struct job_item_result *res);

/* Job job_id was canceled (jobs_cancel succeeded): the items this process claimed and has not started are skipped. */
void applyjob_note_canceled(const struct applyjob_env *env, int64_t job_id);

/*
 * Create an apply job for ids (marked for apply with run) and wake the local runner. *job_id_out (may be NULL)
 * gets its id, 0 when it could not be created (the repos are then given up with apply_abandon). Returns the job's
 * JSON (as jobs_get), or NULL.
 */
struct json_object *applyjob_start(const struct applyjob_env *env, const char *actor, int64_t run, const int64_t *ids,
                                   size_t n, int64_t *job_id_out);

/*
 * applyjob_start() for a resync's follow-up (core/resync.h). group_hook_was_down: the resync repaired a group hook
 * GitLab could not deliver to (core/grouphook.h); it goes into the job's params ("group_hook_was_down"), so every
 * item, whichever instance runs it, gates its repo's open MRs whose head never ran (apply_ctx.group_hook_was_down).
 */
struct json_object *applyjob_start_after_sync(const struct applyjob_env *env, const char *actor, int64_t run,
                                              const int64_t *ids, size_t n, bool group_hook_was_down,
                                              int64_t *job_id_out);

/*
 * The apply a write started: NULL when marked is empty, else {"run", "repos", "job_id", "job"} (job_id and job
 * null when the job could not be created). Clears marked. reapply: an explicit re-apply (POST /api/configure with
 * "reapply"): the job's params say so, and applyjob_finished() audits its repairs. resend_tokens: every item
 * updates its hook with the webhook secret (params "resend_hook_tokens"; apply_ctx.resend_token).
 */
struct json_object *applyjob_start_marked(const struct applyjob_env *env, const char *actor,
                                          struct gateconfig_marked *marked, bool reapply, bool resend_tokens);

/*
 * The "finished" callback of kind "apply" (jobs_on_finished; user is the applyjob_env): when the job is an explicit
 * re-apply whose items repaired drift (apply_result.repaired: a write where the record said GitLab already had the
 * wanted state), one audit entry "reapply.repair" by the user who re-applied, target "job N", details {job,
 * repaired: [paths], changes: {path: what was done}, message} — as a resync's repairs are audited ("resync.repair"). A
 * retry that finishes the job again audits only the repairs since. Failures are logged.
 */
void applyjob_finished(void *user, int64_t job_id);

/*
 * The same entry for an explicit re-apply run without a job (mrgate configure --reapply, apply_batch over the
 * marked repos of run): by actor, target "run N", details {run, repaired, changes, message}, when an item repaired
 * drift (apply_result.repaired). items are borrowed.
 */
enum core_status applyjob_audit_repairs(struct store *db, const char *actor, int64_t run,
                                        const struct apply_batch_item *items, size_t n);

/* Wait (polling its counters) until the job finished: false when the process is stopping or max_seconds pass. */
bool applyjob_wait(const struct applyjob_env *env, int64_t job_id, int max_seconds);

#endif
