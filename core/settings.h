/*
 * core/settings.h
 *    Installation settings changed from the dashboard (GET/PUT /api/settings), stored in PostgreSQL so that
 *    every instance sees the same values.
 *
 * Design: one row per key in the settings table, the value as JSON. Unknown keys and bad values are refused with
 * a message naming the field and the allowed values; a PUT writes every given field in one transaction with an
 * audit entry. Defaults live here (resync_interval falls back to MRGATE_RESYNC_INTERVAL).
 * Ownership: struct settings is plain data.
 */
#ifndef MRGATE_CORE_SETTINGS_H
#define MRGATE_CORE_SETTINGS_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>

struct settings {
	int resync_interval;      /* seconds between scheduled resyncs, 10..604800 (as MRGATE_RESYNC_INTERVAL) */
	bool auto_gate_new_repos; /* new repos that inherit an enabled config are applied at once */
	bool fail_open;           /* a gate that cannot finish posts success ("timed out") instead of failed */
	char hook_mode[16];       /* "project" (one hook per repo) | "group" (one group hook, core/grouphook.h) */
};

/* Read the settings; default_interval is used when resync_interval was never set. */
enum core_status settings_get(struct store *db, int default_interval, struct settings *out);

/* Validate and store the fields present in obj. CORE_EINVAL with a message in err (cap errlen). */
enum core_status settings_put(struct store *db, struct json_object *obj, const char *actor, int default_interval,
                              char *err, size_t errlen);

/* Only the validation of settings_put (nothing stored); an object without a member is CORE_EINVAL too. */
enum core_status settings_check(struct json_object *obj, char *err, size_t errlen);

struct json_object *settings_json(const struct settings *s);

#endif
