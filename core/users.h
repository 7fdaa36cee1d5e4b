/*
 * core/users.h
 *    Managing dashboard users and API tokens: list, change role, disable, reset a password, delete.
 *
 * Design: every change runs in one transaction with its audit entry (user.create in auth.c, user.update,
 * user.password_reset, user.delete, token.delete). The users table is locked for the change so that two admins
 * cannot at once demote, disable or delete each other: at least one enabled admin always remains (CORE_ECONFLICT
 * otherwise). Disabling a user ends their sessions; their sessions and API tokens are refused from the next request
 * on because authentication (auth.c) checks `disabled` every time. A password reset ends the user's sessions too.
 * Lists page by id: `limit` (1-200), `cursor` (the last id of the previous page) -> `next_cursor`.
 * Threading: thread-safe (the shared struct store).
 * Ownership: *out objects are the caller's (json_object_put).
 */
#ifndef MRGATE_CORE_USERS_H
#define MRGATE_CORE_USERS_H

#include "auth.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define USERS_PAGE_MAX 200

/* {"items": [{id, username, role, disabled, created_at, updated_at, last_seen_at, tokens}], "next_cursor"}. */
enum core_status users_list(struct store *s, int limit, int64_t after_id, struct json_object **out);
/* One user as in the list; CORE_ENOTFOUND when unknown. */
enum core_status users_get(struct store *s, int64_t id, struct json_object **out);

struct users_change {
	enum auth_role role;  /* AUTH_ROLE_NONE: unchanged */
	int disabled;         /* -1 unchanged, 0 enable, 1 disable */
	const char *password; /* NULL: unchanged; else the new password (auth_password_problem, with the name) */
};

/* Apply ch to user id as actor (actor_id: the acting user, who may not disable or demote themself). *out is the
 * user afterwards. CORE_EINVAL for a bad password, CORE_ENOTFOUND, CORE_ECONFLICT (msg says why),
 * CORE_ETHROTTLED when no hashing slot is free. */
enum core_status users_update(struct store *s, const char *actor, int64_t actor_id, int64_t id,
                              const struct users_change *ch, struct json_object **out, char *msg, size_t cap);
/* Delete user id (their sessions and tokens go with them). CORE_ENOTFOUND, CORE_ECONFLICT (msg says why). */
enum core_status users_delete(struct store *s, const char *actor, int64_t actor_id, int64_t id, char *msg, size_t cap);

/* {"items": [{id, user_id, username, name, hint, created_at, last_used_at}], "next_cursor"}; user_id 0: all. */
enum core_status tokens_list(struct store *s, int limit, int64_t after_id, int64_t user_id, struct json_object **out);
/* Revoke (delete) API token id; CORE_ENOTFOUND when unknown. */
enum core_status tokens_delete(struct store *s, const char *actor, int64_t id);

#endif
