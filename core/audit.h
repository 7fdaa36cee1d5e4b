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
#include <stdbool.h>

enum core_status audit_write(struct store_conn *c, const char *actor, const char *action, const char *target,
                             struct json_object *before, struct json_object *after, struct json_object *details);

#define AUDIT_PAGE_MAX 500

/*
 * One page of `limit` entries (1..AUDIT_PAGE_MAX), newest first, older than before_id (0: the first page), whose
 * action starts with action_prefix (NULL or "": all). *out is a new JSON object {"items": [{id, at, actor, action,
 * target, before, after, details}], "next_cursor"} (rows.h: the cursor to pass as before_id for the next page).
 * Without accounts, the entries about users and API tokens (actions user.* and token.*) are left out: only admins
 * manage those, and only admins read what was done to them.
 */
enum core_status audit_list(struct store *db, int limit, int64_t before_id, const char *action_prefix, bool accounts,
                            struct json_object **out);

#endif
