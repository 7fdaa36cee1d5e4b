/*
 * core/gate_config.h
 *    The gate's view of one repo's configuration: which scans run, the fail_on threshold, the MR note mode and the
 *    ignored paths, read from the config model (core/gateconfig.h) through this one adapter.
 *
 * Design: core/gateconfig.c owns the stored config documents (defaults, groups, repos) and computes the effective
 * config of a repo; the gate reads that effective object here (one statement, its SQL in gate_config.c only) and
 * never looks at the documents itself. A repo the
 * gate must not evaluate (unknown, unmanaged, not enabled, archived, removed, pending deletion, or an effective
 * config that cannot be read) loads as CORE_OK with gated false and why_not saying why, which the receiver stores
 * as the event's ignored_reason and a run records as its skip reason.
 * Threading: pure functions and one read, through the store pool or on the caller's connection; thread-safe.
 * Ownership: struct gate_config owns its ignore_paths; gate_config_clear() frees them (and may be called on a
 * zeroed struct).
 */
#ifndef MRGATE_CORE_GATE_CONFIG_H
#define MRGATE_CORE_GATE_CONFIG_H

#include "findings.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gate_scan {
	GATE_SCAN_SECRETS = 0,
	GATE_SCAN_SAST,
	GATE_SCAN_DEPENDENCIES,
	GATE_SCAN_IAC,
	GATE_SCAN_LICENSE,
	GATE_SCAN_MALWARE,
	GATE_SCAN_COUNT
};
extern const char *const gate_scan_names[GATE_SCAN_COUNT]; /* "secrets", "sast", ... */

/* inline: one positioned GitLab discussion per new finding (core/gate_inline.h) plus the sticky note */
enum gate_comment { GATE_COMMENT_OFF = 0, GATE_COMMENT_ON_FINDINGS, GATE_COMMENT_ALWAYS, GATE_COMMENT_INLINE };

/* The effective config of one repo, as the gate needs it. */
struct gate_config {
	bool gated;        /* the repo is known, enabled and managed */
	char why_not[160]; /* when not gated: why, for webhook_events.ignored_reason */
	enum fail_on fail_on;
	bool scans[GATE_SCAN_COUNT];
	enum gate_comment comment;
	char **ignore_paths; /* owned */
	size_t n_ignore;
};
void gate_config_clear(struct gate_config *c);

/*
 * The effective config of repo_id: the one adapter to the config model (core/gateconfig.h). An unknown repo is
 * CORE_OK with gated false and why_not set.
 */
enum core_status gate_config_load(struct store *db, int64_t repo_id, struct gate_config *out);
/* The same read on the caller's connection c (inside its transaction, e.g. the webhook receiver's). */
enum core_status gate_config_load_conn(struct store_conn *c, int64_t repo_id, struct gate_config *out);
/* Pure: read an effective config object ({"enabled","fail_on","scans","comment","ignore_paths"}). */
enum core_status gate_config_from_json(const struct json_object *effective, bool unmanaged, struct gate_config *out);

/* Does one of c's ignore_paths globs match path? */
bool gate_config_ignores(const struct gate_config *c, const char *path);

#endif
