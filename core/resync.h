/*
 * core/resync.h
 *    One resync of the connected group: token health, discovery, then what follows from it (new repos gated,
 *    drift repaired), with a summary stored on the sync run.
 *
 * Design: the same function serves the scheduler (trigger "schedule"), POST /api/sync ("api") and the CLI ("cli").
 * Token health comes first (GET /personal_access_tokens/self): an expired or revoked token is recorded on the
 * connection (the API and /metrics say why, and GitLab writes stop) and the run ends failed with that reason.
 * After a complete discovery comes the follow-up, when the caller runs job workers (ctx->apply): in group-hook
 * mode the group hook is checked and repaired; then every repo we gate is re-checked for drift (our hook deleted,
 * edited, duplicated or disabled; the merge setting changed by hand) and, when auto_gate_new_repos is on, new repos
 * whose inherited config is enabled are applied; pending changes of repos known before the run are applied too.
 * That is one apply job (core/applyjob.h), which the resync waits for (up to an hour) and summarises. The summary
 * stored on the run: new, removed, archived, and with the follow-up checked, drifted, repaired, repaired_repos,
 * applied, newly_gated, failed, job_id (and group_hook in group-hook mode).
 * Threading: blocks the calling thread for the whole run.
 * Ownership: ctx and what it points to are borrowed for the call.
 */
#ifndef MRGATE_CORE_RESYNC_H
#define MRGATE_CORE_RESYNC_H

#include "applyjob.h"
#include "connection.h"
#include "discovery.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdint.h>

struct resync_ctx {
	struct store *db;
	const unsigned char *key;
	struct connection_tuning tune;
	const char *instance;
	int concurrency;                  /* groups listed at once by discovery */
	const struct applyjob_env *apply; /* the follow-up's apply machinery; NULL: discovery only (no job workers) */
};

/* Open a run row now (so an API caller can answer 202 with its id), then execute it with resync_execute. */
enum core_status resync_begin(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out);
enum core_status resync_execute(const struct resync_ctx *ctx, int64_t run_id);
/*
 * Store the summary of a run that only listed the repositories (mrgate sync: discovery without a follow-up):
 * {"new", "removed", "archived", "listed_only": true}. Without it the run read as one whose follow-up was still at
 * work: Sync now was refused for minutes and the dashboard said "applying what it found".
 */
enum core_status resync_listed_only(struct store *db, int64_t run_id, const struct discovery_counts *counts);

/* Both at once. CORE_ENOTFOUND without a connection; CORE_ECONFLICT when a run is in progress, its follow-up
 * included (the previous run's id in *run_id_out). */
enum core_status resync_run(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out);

/* Check the stored token with GitLab and record its health on the connection. */
enum core_status resync_token_health(struct store *db, struct connection_client *cc);

#endif
