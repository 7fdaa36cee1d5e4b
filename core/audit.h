/*
 * core/audit.h
 *    The audit log: who changed what, with the state before and after.
 *
 * Design: audit_write() takes a connection so the entry commits in the same transaction as the change it
 * records. before/after/details are borrowed JSON (NULL allowed) and must never contain a secret.
 */
#ifndef MRGATE_CORE_AUDIT_H
#define MRGATE_CORE_AUDIT_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>

enum core_status audit_write(struct store_conn *c, const char *actor, const char *action, const char *target,
                             struct json_object *before, struct json_object *after, struct json_object *details);

/* Newest first; before_id 0 for the first page. *out is a new JSON object {items:[...], next_before}. */
enum core_status audit_list(struct store *db, int limit, int64_t before_id, const char *action_prefix,
                            struct json_object **out);

#endif
