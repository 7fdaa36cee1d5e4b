/*
 * core/ignores.h
 *    Ignored findings (DESIGN.md §1.7): an editor accepts one finding (by fingerprint) or every finding of a rule,
 *    for one repo or a group and its subgroups, with a reason and an optional expiry.
 *
 * Design: rows of finding_ignores (sql/00NN_finding_ignores.sql). The gate reads the ignores in force for a repo once
 * per run (ignores_active: the repo's own and those of every group above it, not expired) and sets a matching finding
 * apart: stored with the ignore's id and reason, not counted in the verdict, listed apart in the sticky note. An
 * expired ignore stays listed (expired = true) until deleted, so a reviewer sees what lapsed. Creating and
 * deleting write the audit log (ignore.create, ignore.delete) in the same transaction.
 * Threading: thread-safe (one pooled connection per call).
 * Ownership: *out trees and ignore_set contents are the caller's (json_object_put / ignore_set_clear); inputs are
 * borrowed.
 */
#ifndef MRGATE_CORE_IGNORES_H
#define MRGATE_CORE_IGNORES_H

#include "findings.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define IGNORE_REASON_MAX 200 /* characters */
#define IGNORE_RULE_MAX   200 /* bytes */

struct ignore_rule {
	int64_t id;
	char fingerprint[FINDING_FINGERPRINT_LEN + 1]; /* "" when the ignore names a rule */
	char *rule_id;                                 /* NULL when it names a fingerprint */
	char *reason;
};

struct ignore_set {
	struct ignore_rule *items;
	size_t n;
};

/* The ignores in force for repo_id now. */
enum core_status ignores_active(struct store *db, int64_t repo_id, struct ignore_set *out);
/* The first ignore of s that matches f (by fingerprint, else by rule), or NULL. */
const struct ignore_rule *ignores_match(const struct ignore_set *s, const struct finding *f);
void ignore_set_clear(struct ignore_set *s);

/*
 * Create from an API body {"fingerprint" | "rule_id", "repo_id" | "group", "reason", "expires_at"?: "YYYY-MM-DD"}
 * (expires at the end of that day, UTC; it must be a future day). CORE_EINVAL with msg naming the field;
 * CORE_ENOTFOUND when repo_id is no known repo. *out: the new ignore as the list shows it.
 */
enum core_status ignores_create(struct store *db, const char *actor, struct json_object *body, struct json_object **out,
                                char *msg, size_t cap);
/* The same with details for the audit entry (borrowed, NULL: none), e.g. how the ignore was asked for. */
enum core_status ignores_create_via(struct store *db, const char *actor, struct json_object *details,
                                    struct json_object *body, struct json_object **out, char *msg, size_t cap);

struct ignores_filter {
	int64_t repo_id;   /* 0: any; else the repo's own ignores and those of its groups */
	const char *group; /* NULL: any; else every ignore made inside that group: the group's, its subgroups', and
	                      those of the repos under it */
	const char *rule;  /* NULL: any; else ignores naming that rule or findings of it */
	int expired;       /* -1: any; 0: in force; 1: expired */
	int64_t before_id; /* cursor */
	int limit;
};
/* {"items": [...], "next_cursor"}, newest first. */
enum core_status ignores_list(struct store *db, const struct ignores_filter *f, struct json_object **out);
/* CORE_ENOTFOUND when there is no such ignore. */
enum core_status ignores_delete(struct store *db, const char *actor, int64_t id);

#endif
