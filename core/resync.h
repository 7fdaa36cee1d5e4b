/*
 * core/resync.h
 *    One resync of the connected group: token health, discovery, then what follows from it (new repos gated,
 *    drift repaired), with a summary stored on the sync run.
 *
 * Design: the same function serves the scheduler (trigger "schedule"), POST /api/sync ("api") and the CLI ("cli").
 * Token health comes first (GET /personal_access_tokens/self): an expired or revoked token is recorded on the
 * connection (the API and /metrics say why, and GitLab writes stop) and the run ends failed with that reason.
 * After a complete discovery, `after` (supplied by the caller, which owns the apply machinery) decides what to
 * apply and fills the summary: new, removed, archived, drifted, repaired, failed.
 * Threading: blocks the calling thread for the whole run.
 */
#ifndef MRGATE_CORE_RESYNC_H
#define MRGATE_CORE_RESYNC_H

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
	int concurrency; /* groups listed at once by discovery */
	/* After a complete discovery; may add fields to summary (owned by the caller of after). May be NULL. */
	enum core_status (*after)(void *user, struct connection_client *cc, int64_t run_id,
	                          const struct discovery_counts *counts, struct json_object *summary);
	void *user;
};

/* Open a run row now (so an API caller can answer 202 with its id), then execute it with resync_execute. */
enum core_status resync_begin(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out);
enum core_status resync_execute(const struct resync_ctx *ctx, int64_t run_id);

/* Both at once. CORE_ENOTFOUND without a connection; CORE_ECONFLICT when a run is in progress. */
enum core_status resync_run(const struct resync_ctx *ctx, const char *trigger, int64_t *run_id_out);

/* Check the stored token with GitLab and record its health on the connection. */
enum core_status resync_token_health(struct store *db, struct connection_client *cc);

#endif
