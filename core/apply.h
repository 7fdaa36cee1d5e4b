/*
 * core/apply.h
 *    Bring one repository's GitLab side to the state its effective gating config asks for (DESIGN.md §3).
 *    The executor: core/apply.c reads the repo's record and GitLab's state, asks the pure planner
 *    (core/apply_plan.h, where the rules are stated and tested over every state) for the actions, performs them
 *    and records the outcome. apply_plan_actions() (the plan in words) is declared there.
 *
 * Design: the wanted state of a repo is one of
 *     off         no mrgate webhook; the merge setting restored if mrgate changed it
 *     hook        one project hook at ctx->hook_url (merge request events only, a secret token, named "mrgate")
 *     hook+merge  the hook and only_allow_merge_if_pipeline_succeeds = true
 * In group-hook mode (ctx->group_mode) one group hook (core/grouphook.h) delivers the events, so "hook" and
 * "hook+merge" keep no project hook: our copies are deleted, the rest is the same.
 * (off when the repo is unmanaged or its effective `enabled` is false). apply_repo() reads before it writes:
 *   1. GET /projects/:id/hooks (all pages); ours are those whose url equals ctx->hook_url, nobody else's hook is
 *      ever touched. Wanted: keep one whose alert_status is executable (the recorded id if present), PUT it when
 *      its flags differ or the SHA-256 of the token last pushed differs from the current secret's (GitLab never
 *      returns tokens), DELETE our other copies; POST one when none is executable (a copy GitLab disabled after
 *      failed deliveries is replaced: POST first, then DELETE, so the repo is never without a hook). A POST that may
 * have been applied (GITLAB_ERR_MAYBE_APPLIED) is followed by a re-list: a hook with our URL that appeared is taken as
 * created, else the item is retryable. Not wanted: DELETE every copy of ours.
 *   1b. In group-hook mode the hooks are listed only while a project hook of ours is recorded (to delete it).
 *   2. Only when hook+merge is wanted or a restore is owed: the project (from the job's group list, else
 *      GET /projects/:id), read before the hooks and with them before any write (it re-checks archived and pending
 *      deletion: such a repo is skipped with no write; read first, the job's list is read at the job's start, on
 *      slots the hooks of its first items would otherwise take while every item waits for the list). The prior value is
 * recorded in the database before the PUT that changes it, once: a later apply never overwrites it. When the restore is
 * owed, PUT the recorded prior back (when it differs).
 *   3. Only when gating starts or stops (the applied state recorded by the last successful apply is off and the
 *      wanted one is not, or the reverse): the repo's open merge requests, through core/gate.h. Starting:
 *      gate_enqueue_open_mrs() queues a gate run per open MR ("Pipelines must succeed" would otherwise block an
 *      MR that has no pipeline until its next push). Stopping: gate_clear_open_mrs() posts a final `success`
 *      "mrgate gate removed for this repository" where the latest `mrgate` status is pending or failed. This
 *      step runs after GitLab reached the new state and before the state is recorded; when it fails the outcome
 *      is an error and the old applied state stays, so the next apply repeats it (it is idempotent). A dry run
 *      makes only the one MR list call and adds "open_mrs_to_gate": n or "statuses_to_clear": n (estimated
 *      from mrgate's records) to res->plan.
 * A repo already in its wanted state costs one GET (two with block_merge when no job list holds it) and no write.
 * Archived, pending-deletion and removed repos are skipped without a call. Every step is idempotent: after a crash
 * half-way, running again finds the hook by URL (no duplicate) and the prior value where it was recorded. The outcome
 * is stored in repo_gitlab_state (unchanged | changed | error | skipped, a message, the hook id, the token's SHA-256,
 * the alert status, the applied state) unless dry_run, which makes only the reads and describes the writes it would
 * make in res->plan. GitLab's refusals become advice: 403 -> "the token needs Maintainer on this project to manage
 * webhooks", 404 -> "the project is gone or the token cannot see it", 401 -> why the token is refused, 422 on the URL
 * -> how to let GitLab reach mrgate. Job-wide reads: with ctx->lists (an apply or preview job's, core/applyjob.h) the
 * project's archived state, pending deletion and merge setting come from the job's one paged GET /groups/:id/projects,
 * and the open MRs of a repo whose gating starts from its one paged GET /groups/:id/merge_requests?state=opened; a repo
 * the lists do not hold is read alone (GET /projects/:id, GET /projects/:id/merge_requests). So a first apply costs GET
 * hooks, POST hook and PUT project; a repo already in its wanted state one GET (hooks); in group-hook mode no hook read
 * unless a project hook of ours is recorded. A setting changed by hand after the list was read is repaired by the next
 * apply (the next resync reads a new list). res->plan "read" says what was read and when ("merge setting read from the
 * group's project list at 03:12:09"). Database: no connection is held across a GitLab call. A real apply runs 2
 * statements (3 when it records a prior merge setting, plus the gate queue's rows for open MRs): one claims the repo (a
 * row of apply_claims, expiring after APPLY_CLAIM_SECONDS) and loads its record (a job does that for the items its
 * runner holds in one statement: apply_load_job_items, ctx->loaded); the last records the outcome and releases the
 * claim. A repo claimed by another apply is an error to retry ("another apply of this repository is
 * running"), so two workers (or two replicas) never reconcile the same repo at once. The same owner (ctx->claim_owner:
 * the job item) takes its own claim back at once, so an item taken over after a crash is not held up. A dry run claims
 * nothing. Threading: call from any thread; the struct gitlab is shared, nothing else is. Ownership: ctx strings are
 * borrowed; res->plan is owned by the result (apply_result_clear()).
 */
#ifndef MRGATE_CORE_APPLY_H
#define MRGATE_CORE_APPLY_H

#include "apply_plan.h"
#include "gitlab.h"
#include "limiter.h"
#include "outbox.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define APPLY_CLAIM_SECONDS 300 /* an apply's claim on a repo expires after this (its holder crashed) */

/* A project's attributes as the job's group project list read them. */
struct apply_listed {
	bool archived, pending_deletion, merge_on;
	char read_at[16]; /* "HH:MM:SS" UTC of the page read */
};

/*
 * Job-wide reads (core/applyjob.c fills them). project(): false when the project is not in the list (or the list
 * could not be read): apply reads it alone. open_mrs(): the repo's open MRs as a new JSON array the caller owns,
 * NULL when the list does not hold the repo; read_at as above. *pages_out: the list pages this call read (the
 * first caller of a job reads the list). Both are called from several workers at once. project_reading(): true
 * while a caller of project() reads the list (another caller would wait for it; one that needs the hooks too reads
 * them first, on a slot the list leaves free); may be NULL.
 */
struct apply_lists {
	bool (*project)(void *user, int64_t repo_id, struct apply_listed *out, int *pages_out);
	bool (*project_reading)(void *user);
	struct json_object *(*open_mrs)(void *user, int64_t repo_id, char read_at[16], int *pages_out);
	void *user;
};

/*
 * A repo's record as the database knows it, and its claim. A job reads and claims those of the items its runner
 * holds before they run (apply_load_job_items: one statement for them all instead of one per item); the claim is
 * the item's (owner "job-item-<item id>").
 */
struct apply_loaded {
	int64_t item_id, repo_id;
	bool claimed; /* false: another apply holds the repo */
	bool archived, pending, removed, unmanaged;
	bool want_gate, want_block; /* gitlab_want: off | hook | hook+merge */
	bool have_on;               /* the applied state recorded by the last successful apply is not off */
	bool in_state;              /* ... and it is the wanted one: nothing should need a write */
	int64_t hook_id;
	bool has_token_sha; /* token_sha: the recorded hook token's SHA-256 hex */
	char token_sha[65];
	bool prior_known, prior, changed; /* the merge setting before mrgate changed it, and whether it did */
};

struct apply_ctx {
	const char *hook_url;            /* {public_url}/hooks/gitlab */
	const char *webhook_secret;      /* the X-Gitlab-Token our hooks carry (never logged) */
	const char *webhook_secret_sha;  /* its SHA-256 hex when the caller has it (a job's context); NULL: computed */
	bool ssl_verify;                 /* enable_ssl_verification on the hook (false for an http:// hook URL) */
	int64_t run;                     /* the apply run that marked the repo (0: clear applying unconditionally) */
	bool group_mode;                 /* hook_mode "group": no project hook is wanted (our copies are deleted), the
	                                    merge setting and the gating transitions are handled as in project mode */
	bool group_hook_was_down;        /* group mode: the group hook was down until the resync that started this
	                                    apply repaired it, so a gated repo's open MRs whose head never ran are gated
	                                    (APPLY_OPEN_MRS_MISSED) */
	bool resend_token;               /* update our project hook with the secret even where nothing differs (a token
	                                    edited in GitLab cannot be seen), and gate the open MRs it may have missed */
	const struct apply_lists *lists; /* job-wide reads, borrowed; NULL: every read is the repo's own */
	const char *claim_owner;         /* who claims the repo (a job item: a takeover of the item reclaims it at
	                                    once); NULL: a random owner of this call */
	struct limiter *slots;           /* a slot of it is held around each GitLab exchange of the repo (and none
	                                    while the database is written between them; the lists callbacks are
	                                    called holding none); NULL: the caller bounds the whole repo */
	struct outbox *outbox;           /* the outcome is written together with other repos' (group commit),
	                                    borrowed; NULL: alone */
	bool post_outcome;               /* with outbox: apply_repo returns once the outcome is queued, not written;
	                                    res->pending says when it is (a job item's is settled by the recorder) */
	const struct apply_loaded *loaded; /* the repo's record and claim, read for claim_owner ahead (its repo_id is
	                                      the one applied); NULL: read and claimed here */
};

/*
 * Read and claim, in one statement, the repos of n job items (item_ids[i] applies repo_ids[i]; the claim of each is
 * its item's, "job-item-<id>", for APPLY_CLAIM_SECONDS). *out (free()) gets one entry per item found (a repo listed
 * twice: the first item), in item id order, *n_out of them. A claim taken here and not used (the item is not
 * applied) is given back with apply_release_loaded().
 */
enum core_status apply_load_job_items(struct store *db, const int64_t *item_ids, const int64_t *repo_ids, size_t n,
                                      struct apply_loaded **out, size_t *n_out);
/* Give back the claim of l (taken by apply_load_job_items) when it is the item's; a failure leaves it to expire. */
void apply_release_loaded(struct store *db, const struct apply_loaded *l);

/*
 * An outbox for ctx->outbox (core/outbox.h) that writes the outcomes of repos applied side by side (a job's
 * workers) in one statement, gathering for 2 ms or 16 outcomes; apply_repo still returns with its outcome
 * committed, unless ctx->post_outcome. One per process (applyjob_env); free it with outbox_free once nobody applies
 * through it and every pending outcome is settled.
 */
struct outbox *apply_outbox_new(struct store *db);

/*
 * An outcome posted to ctx->outbox (ctx->post_outcome) and not known to be stored yet; the repo stays claimed
 * until it is.
 */
struct apply_pending;

/*
 * Wait until the pending outcome p (a struct apply_pending *) is stored: CORE_OK, or the database's error, after
 * which the repo's claim is released (so that a retry can take it; the outcome is not stored). Frees p. Called
 * exactly once per pending outcome, from any thread; its signature is a job item's settle (core/jobs.h).
 */
enum core_status apply_pending_settle(void *p);

/*
 * The hook URL for a public URL: "{public_url without trailing /}/hooks/gitlab". apply_hook_url_dup() returns it
 * malloc'd (the caller frees). apply_hook_url() writes it into buf; when it does not fit it writes "", logs an
 * error and returns false (a cut URL would never match our hook again).
 */
char *apply_hook_url_dup(const char *public_url);
bool apply_hook_url(const char *public_url, char *buf, size_t cap);

/*
 * The webhook mrgate wants, written once for project and group hooks (core/grouphook.c adds what only a group hook
 * has). apply_hook_body(): a new body for POST/PUT .../hooks: ctx's URL and token, name "mrgate", merge request,
 * pipeline and note (comment: core/mrcommand.h) events on, every other project event off (confidential notes too),
 * ssl verification as ctx says (the caller owns it).
 * apply_hook_flags_ok(): whether an existing hook h has those flags; ssl_verify < 0 accepts either verification.
 */
struct json_object *apply_hook_body(const struct apply_ctx *ctx);
bool apply_hook_flags_ok(struct json_object *h, int ssl_verify);

enum apply_outcome { APPLY_UNCHANGED = 0, APPLY_CHANGED, APPLY_SKIPPED, APPLY_ERROR };
const char *apply_outcome_name(enum apply_outcome o); /* "unchanged" | "changed" | "skipped" | "error" */

/* A wanted state given by the caller instead of the stored config (dry runs of a config not yet stored). */
struct apply_want {
	bool hook;
	bool block_merge;
};

struct apply_result {
	enum apply_outcome outcome;
	/* advice on error; else what changed ("created webhook (hook id 12)"), or in a dry run what would */
	char message[512];
	bool retryable;           /* transient (5xx, timeout, 429, maybe-applied): retry later with backoff */
	bool held;                /* ERROR because another apply holds the repo (its claim): retry once it is done */
	int reads, writes;        /* GitLab calls made (writes: planned, in a dry run) */
	bool repaired;            /* CHANGED where the record said GitLab had the wanted state already (the same config,
	                             the same webhook secret): drift, by hand or otherwise, was repaired */
	struct json_object *plan; /* {"hooks": {"create": n, "update": [ids], "delete": [ids]},
	                              "settings": [{"only_allow_merge_if_pipeline_succeeds": {"from", "to"}}],
	                              and on a transition "open_mrs_to_gate": n or "statuses_to_clear": n,
	                              "read": ["merge setting read from the group's project list at 03:12:09", ...]} */
	struct apply_pending *pending; /* ctx->post_outcome: the outcome, queued, to be settled (the caller's) */
};
/* Frees the plan and settles a pending outcome still there (waiting for it); the struct may be reused. */
void apply_result_clear(struct apply_result *r);

/*
 * Reconcile repo_id with its stored effective config. Returns CORE_OK whenever an outcome was determined (look
 * at res_out->outcome; APPLY_ERROR included), CORE_ENOTFOUND for an unknown repo, or a database error.
 */
enum core_status apply_repo(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t repo_id,
                            bool dry_run, struct apply_result *res_out);

/* The same with the wanted state given (want NULL: from the stored config). */
enum core_status apply_repo_want(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, int64_t repo_id,
                                 const struct apply_want *want, bool dry_run, struct apply_result *res_out);

/*
 * Give up on repos marked for apply (no GitLab connection, no thread): record an error with message and clear
 * their applying flag when it belongs to run (0: unconditionally).
 */
enum core_status apply_abandon(struct store *db, const int64_t *ids, size_t n, int64_t run, const char *message);

/* Take the applying mark off repo id when it belongs to run (0: unconditionally), recording nothing: its apply was
 * canceled before it started, and its last result stays what it was. */
enum core_status apply_unmark(struct store *db, int64_t id, int64_t run);

/* One repo of a batch. */
struct apply_batch_item {
	int64_t repo_id;               /* in */
	const struct apply_want *want; /* in, borrowed, may be NULL (the stored config) */
	enum core_status status;       /* out */
	struct apply_result res;       /* out: apply_result_clear() each */
};

/*
 * Apply n repos with at most `concurrency` (>= 1, capped at 64) threads, each running apply_repo_want() on the
 * next item. Returns when all are done. The fallback runner until the job engine drives apply_repo() itself.
 */
void apply_batch(struct store *db, struct gitlab *gl, const struct apply_ctx *ctx, struct apply_batch_item *items,
                 size_t n, int concurrency, bool dry_run);

#endif
