/*
 * core/users.c
 *    Users and API tokens for admins: lists, role changes, disabling, password resets, deletion; all audited.
 */
#include "users.h"

#include "audit.h"
#include "crypto.h"
#include "rows.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A user row as JSON, built by PostgreSQL (no secret column is ever selected). */
/* One field per line reads better than the formatter's packing of a macro call. */
/* clang-format off */
#define USER_JSON                                                                                                      \
	"json_build_object('id', u.id, 'username', u.username, 'role', u.role, 'disabled', u.disabled,"                \
	" 'created_at', " STORE_TS("u.created_at") ","                                                                 \
	" 'updated_at', " STORE_TS("u.updated_at") ","                                                                 \
	" 'last_seen_at', (SELECT " STORE_TS("greatest(max(se.last_seen), u.last_seen_at)") " FROM sessions se"        \
	"  WHERE se.user_id = u.id),"                                                                                  \
	" 'tokens', (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id))"

#define TOKEN_JSON                                                                                                     \
	"json_build_object('id', t.id, 'user_id', t.user_id, 'username', u.username, 'name', t.name, 'hint', t.hint,"  \
	" 'created_at', " STORE_TS("t.created_at") ","                                                                 \
	" 'last_used_at', " STORE_TS("t.last_used_at") ")"
/* clang-format on */

static int clamp_limit(int limit)
{
	return limit <= 0 ? 50 : limit > USERS_PAGE_MAX ? USERS_PAGE_MAX : limit;
}

enum core_status users_list(struct store *s, int limit, int64_t after_id, struct json_object **out)
{
	*out = NULL;
	limit = clamp_limit(limit);
	struct store_params p = {0};
	store_param_i64(&p, after_id);
	store_param_i64(&p, limit + 1);
	return rows_query_page(
	    s, "SELECT u.id, " USER_JSON " AS j FROM users u WHERE u.id > $1::bigint ORDER BY u.id LIMIT $2::int", &p,
	    limit, "id", out);
}

/* The user as JSON on connection c (inside or outside a transaction); NULL when unknown. */
static enum core_status user_json(struct store_conn *c, int64_t id, struct json_object **out)
{
	struct store_params p = {0};
	store_param_i64(&p, id);
	return rows_query_one_on(c, "SELECT " USER_JSON " AS j FROM users u WHERE u.id = $1::bigint", &p, out);
}

enum core_status users_get(struct store *s, int64_t id, struct json_object **out)
{
	struct store_conn *c = NULL;
	*out = NULL;
	enum core_status st = store_get(s, &c);
	if (st == CORE_OK)
		st = user_json(c, id, out);
	store_put(s, c);
	return st;
}

/* Inside the transaction: CORE_ECONFLICT (msg says why) unless at least one enabled admin is left. */
static enum core_status admins_remain(struct store_conn *c, char *msg, size_t cap)
{
	PGresult *r = NULL;
	enum core_status st =
	    store_run(c, "SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled", NULL, &r);
	if (st == CORE_OK && store_i64(r, 0, "n", 0) <= 0) {
		snprintf(msg, cap, "at least one enabled admin must remain: make another user admin first");
		st = CORE_ECONFLICT;
	}
	PQclear(r);
	return st;
}

/* Borrow a connection and begin a transaction that serialises user changes (the last-admin rule reads the whole
 * table). */
static enum core_status begin_locked(struct store *s, struct store_conn **c_out)
{
	enum core_status st = store_get_begin(s, c_out);
	struct store_conn *c = *c_out;
	if (st == CORE_OK)
		st = store_run(c, "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE", NULL, NULL);
	return st;
}

static struct json_object *audit_view(struct json_object *u)
{
	struct json_object *o = jx_object(), *v;
	static const char *const keys[] = {"username", "role", "disabled"};
	for (size_t i = 0; u && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_object_get_ex(u, keys[i], &v))
			json_object_object_add(o, keys[i], json_object_get(v));
	return o;
}

enum core_status users_update(struct store *s, const char *actor, int64_t actor_id, int64_t id,
                              const struct users_change *ch, struct json_object **out, char *msg, size_t cap)
{
	*out = NULL;
	msg[0] = '\0';
	if (ch->password) {
		/* checked against the user's name (a walk set Carol123 for carol), which no change renames */
		PGresult *r = NULL;
		enum core_status st = STORE_RUN1(s, "SELECT username FROM users WHERE id = $1", &r, STORE_I64(id));
		if (st == CORE_OK && PQntuples(r) == 0)
			st = CORE_ENOTFOUND;
		const char *problem =
		    st == CORE_OK ? auth_password_problem(ch->password, store_str(r, 0, "username")) : NULL;
		PQclear(r);
		if (st != CORE_OK)
			return st;
		if (problem) {
			snprintf(msg, cap, "the password %s: choose another (a password has " AUTH_PASSWORD_RULE ")",
			         problem);
			return CORE_EINVAL;
		}
	}
	if (id == actor_id && (ch->disabled == 1 || (ch->role != AUTH_ROLE_NONE && ch->role != AUTH_ROLE_ADMIN))) {
		snprintf(msg, cap, "you cannot disable or demote yourself: ask another admin");
		return CORE_ECONFLICT;
	}
	char *hash = NULL;
	struct store_conn *c = NULL;
	struct json_object *before = NULL, *after = NULL, *bv = NULL, *av = NULL;
	enum core_status st = CORE_OK;
	if (ch->password && (st = auth_hash_password(ch->password, &hash)) != CORE_OK)
		goto out;
	if ((st = begin_locked(s, &c)) != CORE_OK)
		goto out;
	if ((st = user_json(c, id, &before)) != CORE_OK)
		goto out;
	st = STORE_RUN(c,
	               "UPDATE users SET role = coalesce($2, role), disabled = coalesce($3::boolean, disabled),"
	               " password_hash = coalesce($4, password_hash), updated_at = now() WHERE id = $1::bigint",
	               NULL, STORE_I64(id), STORE_STR(ch->role != AUTH_ROLE_NONE ? auth_role_name(ch->role) : NULL),
	               ch->disabled < 0 ? STORE_NULL : STORE_BOOL(ch->disabled), STORE_STR(hash));
	if (st != CORE_OK)
		goto out;
	if ((st = admins_remain(c, msg, cap)) != CORE_OK)
		goto out;
	/* a disabled user or a new password ends every session of that user */
	if (ch->disabled == 1 || hash) {
		struct store_params p2 = {0};
		store_param_i64(&p2, id);
		if ((st = store_run(c, "DELETE FROM sessions WHERE user_id = $1::bigint", &p2, NULL)) != CORE_OK)
			goto out;
	}
	if ((st = user_json(c, id, &after)) != CORE_OK)
		goto out;
	const char *target = json_object_get_string(json_object_object_get(after, "username"));
	bv = audit_view(before);
	av = audit_view(after);
	if (!json_object_equal(bv, av) && (st = audit_write(c, actor, "user.update", target, bv, av, NULL)) != CORE_OK)
		goto out;
	if (hash && (st = audit_write(c, actor, "user.password_reset", target, NULL, NULL, NULL)) != CORE_OK)
		goto out;
	if ((st = store_commit(c)) != CORE_OK)
		goto out;
	*out = after;
	after = NULL;
out:
	if (st != CORE_OK)
		store_rollback(c);
	store_put(s, c);
	json_object_put(before);
	json_object_put(after);
	json_object_put(bv);
	json_object_put(av);
	crypto_free_secret(hash);
	return st;
}

enum core_status users_delete(struct store *s, const char *actor, int64_t actor_id, int64_t id, char *msg, size_t cap)
{
	msg[0] = '\0';
	if (id == actor_id) {
		snprintf(msg, cap, "you cannot delete yourself: ask another admin");
		return CORE_ECONFLICT;
	}
	struct store_conn *c = NULL;
	struct json_object *before = NULL, *bv = NULL;
	enum core_status st = begin_locked(s, &c);
	if (st != CORE_OK)
		goto out;
	if ((st = user_json(c, id, &before)) != CORE_OK)
		goto out;
	struct store_params p = {0};
	store_param_i64(&p, id);
	if ((st = store_run(c, "DELETE FROM users WHERE id = $1::bigint", &p, NULL)) != CORE_OK)
		goto out;
	if ((st = admins_remain(c, msg, cap)) != CORE_OK)
		goto out;
	bv = audit_view(before);
	st = audit_write(c, actor, "user.delete", json_object_get_string(json_object_object_get(before, "username")),
	                 bv, NULL, NULL);
	if (st == CORE_OK)
		st = store_commit(c);
out:
	if (st != CORE_OK)
		store_rollback(c);
	store_put(s, c);
	json_object_put(before);
	json_object_put(bv);
	return st;
}

enum core_status tokens_list(struct store *s, int limit, int64_t after_id, int64_t user_id, struct json_object **out)
{
	*out = NULL;
	limit = clamp_limit(limit);
	struct store_params p = {0};
	store_param_i64(&p, after_id);
	store_param_i64(&p, limit + 1);
	store_param_i64(&p, user_id);
	return rows_query_page(
	    s,
	    "SELECT t.id, " TOKEN_JSON " AS j FROM api_tokens t JOIN users u ON u.id = t.user_id "
	    "WHERE t.id > $1::bigint AND ($3::bigint = 0 OR t.user_id = $3::bigint) ORDER BY t.id LIMIT $2::int",
	    &p, limit, "id", out);
}

struct token_delete {
	const char *actor;
	int64_t id;
};

static enum core_status token_delete_tx(struct store_conn *c, void *user)
{
	const struct token_delete *d = user;
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, d->id);
	enum core_status st =
	    store_run(c,
	              "DELETE FROM api_tokens t USING users u WHERE t.id = $1::bigint AND u.id = t.user_id "
	              "RETURNING t.name, t.hint, u.username",
	              &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK)
		st = auth_token_audit(c, d->actor, false, store_str(r, 0, "username"), store_str(r, 0, "name"),
		                      store_str(r, 0, "hint"));
	PQclear(r);
	return st;
}

enum core_status tokens_delete(struct store *s, const char *actor, int64_t id)
{
	struct token_delete d = {.actor = actor, .id = id};
	return store_tx(s, token_delete_tx, &d);
}
