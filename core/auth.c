/*
 * core/auth.c
 *    Users, sessions, API tokens, throttling.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"

static bool valid_username(const char *u)
{
	size_t n = u ? strlen(u) : 0;
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = u[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

enum core_status auth_user_add(struct store *s, const char *username, const char *password, bool is_admin)
{
	if (!valid_username(username) || !password || strlen(password) < 8)
		return CORE_EINVAL;
	char *hash = NULL;
	struct store_conn *c = NULL;
	enum core_status st = crypto_password_hash(password, &hash);
	if (st != CORE_OK)
		goto out;
	st = store_get(s, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {username, hash, is_admin ? "true" : "false"};
	st = store_exec(c, "INSERT INTO users (username, password_hash, is_admin) VALUES ($1, $2, $3)", 3, p, NULL);
out:
	store_put(s, c);
	free(hash);
	return st;
}

enum core_status auth_bootstrap_admin(struct store *s, const char *password, bool *created_out)
{
	*created_out = false;
	if (!password || !*password)
		return CORE_OK;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		return st;
	st = store_exec(c, "SELECT EXISTS (SELECT 1 FROM users) AS any", 0, NULL, &r);
	bool any = st == CORE_OK && store_bool(r, 0, "any", true);
	PQclear(r);
	store_put(s, c);
	if (st != CORE_OK || any)
		return st;
	st = auth_user_add(s, "admin", password, true);
	if (st == CORE_ECONFLICT) /* another instance created it at the same moment */
		return CORE_OK;
	if (st == CORE_OK)
		*created_out = true;
	return st;
}

/* Seconds a key is locked for, 0 when not locked. */
static enum core_status lock_remaining(struct store_conn *c, const char *key, int *secs_out)
{
	PGresult *r = NULL;
	const char *p[] = {key};
	*secs_out = 0;
	enum core_status st = store_exec(c,
					 "SELECT ceil(extract(epoch FROM locked_until - now()))::int AS secs "
					 "FROM login_failures WHERE key = $1 AND locked_until > now()",
					 1, p, &r);
	if (st == CORE_OK && PQntuples(r) > 0)
		*secs_out = (int)store_i64(r, 0, "secs", 1);
	PQclear(r);
	return st;
}

/* Count one failure for key; lock it once failures reach limit within the 15-minute window. */
static enum core_status record_failure(struct store_conn *c, const char *key, int limit)
{
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *p[] = {key, lim};
	return store_exec(c,
			  "INSERT INTO login_failures AS f (key, failures, window_start) VALUES ($1, 1, now()) "
			  "ON CONFLICT (key) DO UPDATE SET "
			  " failures = CASE WHEN f.window_start < now() - interval '15 minutes' THEN 1 "
			  "                 ELSE f.failures + 1 END,"
			  " window_start = CASE WHEN f.window_start < now() - interval '15 minutes' THEN now() "
			  "                     ELSE f.window_start END,"
			  " locked_until = CASE WHEN f.window_start >= now() - interval '15 minutes' "
			  "                      AND f.failures + 1 >= $2::int "
			  "  THEN now() + least(interval '15 minutes', "
			  "                     interval '1 minute' * power(2, f.failures + 1 - $2::int)) "
			  "  ELSE f.locked_until END",
			  2, p, NULL);
}

static void fill_identity(struct auth_identity *who, const PGresult *r, bool via_cookie, const char *token_name)
{
	memset(who, 0, sizeof(*who));
	who->user_id = store_i64(r, 0, "id", 0);
	snprintf(who->username, sizeof(who->username), "%s", store_str(r, 0, "username"));
	who->is_admin = store_bool(r, 0, "is_admin", false);
	who->via_cookie = via_cookie;
	const char *csrf = store_str(r, 0, "csrf_token");
	if (csrf)
		snprintf(who->csrf_token, sizeof(who->csrf_token), "%s", csrf);
	if (token_name)
		snprintf(who->actor, sizeof(who->actor), "%s (token %s)", who->username, token_name);
	else
		snprintf(who->actor, sizeof(who->actor), "%s", who->username);
}

enum core_status auth_login(struct store *s, const char *username, const char *password, const char *client_ip,
			    struct auth_login_result *out)
{
	/* A fixed hash to verify against for unknown users, so that timing does not tell which names exist. */
	static const char *dummy = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
				   "Zb9vxUs6KhFyRT0/gqzW1v+sL0EVwS9kbxiOHoVhUrc";
	memset(out, 0, sizeof(*out));
	if (!username || !password)
		return CORE_EINVAL;
	char ukey[128], ikey[96];
	snprintf(ukey, sizeof(ukey), "user:%.100s", username);
	snprintf(ikey, sizeof(ikey), "ip:%.80s", client_ip ? client_ip : "unknown");

	struct store_conn *c = NULL;
	PGresult *r = NULL;
	char *token = NULL, *token_hash = NULL, *csrf = NULL;
	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		return st;

	int ulock = 0, ilock = 0;
	st = lock_remaining(c, ukey, &ulock);
	if (st == CORE_OK)
		st = lock_remaining(c, ikey, &ilock);
	if (st != CORE_OK)
		goto out;
	if (ulock > 0 || ilock > 0) {
		out->retry_after = ulock > ilock ? ulock : ilock;
		st = CORE_ETHROTTLED;
		goto out;
	}

	const char *p[] = {username};
	st = store_exec(c, "SELECT id, username, is_admin, password_hash FROM users WHERE username = $1", 1, p, &r);
	if (st != CORE_OK)
		goto out;
	const char *hash = PQntuples(r) > 0 ? store_str(r, 0, "password_hash") : NULL;
	bool ok = crypto_password_verify(hash ? hash : dummy, password) && hash;
	if (!ok) {
		st = record_failure(c, ukey, AUTH_USER_LIMIT);
		if (st == CORE_OK)
			st = record_failure(c, ikey, AUTH_IP_LIMIT);
		if (st == CORE_OK)
			st = CORE_EUNAUTH;
		log_info("failed login for user \"%.64s\" from %s", username, client_ip ? client_ip : "unknown");
		goto out;
	}

	token = crypto_random_token(NULL);
	csrf = crypto_random_token(NULL);
	token_hash = token ? crypto_sha256_hex(token, strlen(token)) : NULL;
	if (!token || !csrf || !token_hash) {
		st = CORE_ENOMEM;
		goto out;
	}
	char hours[8];
	snprintf(hours, sizeof(hours), "%d", AUTH_SESSION_HOURS);
	const char *id = store_str(r, 0, "id");
	const char *p2[] = {token_hash, id, csrf, hours};
	st = store_exec(c,
			"INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) "
			"VALUES ($1, $2, $3, now() + $4::int * interval '1 hour')",
			4, p2, NULL);
	if (st != CORE_OK)
		goto out;
	const char *p3[] = {ukey};
	store_exec(c, "DELETE FROM login_failures WHERE key = $1", 1, p3, NULL);
	fill_identity(&out->who, r, true, NULL);
	snprintf(out->who.csrf_token, sizeof(out->who.csrf_token), "%s", csrf);
	out->session_token = token;
	token = NULL;
	log_info("user \"%s\" logged in from %s", out->who.username, client_ip ? client_ip : "unknown");
out:
	PQclear(r);
	store_put(s, c);
	crypto_free_secret(token);
	crypto_free_secret(csrf);
	free(token_hash);
	return st;
}

enum core_status auth_session(struct store *s, const char *session_token, struct auth_identity *out)
{
	memset(out, 0, sizeof(*out));
	if (!session_token || !*session_token)
		return CORE_EUNAUTH;
	char *h = crypto_sha256_hex(session_token, strlen(session_token));
	if (!h)
		return CORE_ENOMEM;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	char hours[8];
	snprintf(hours, sizeof(hours), "%d", AUTH_SESSION_HOURS);
	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		goto out;
	/* Sliding expiry: a used session lives another AUTH_SESSION_HOURS (written at most once a minute). */
	const char *p[] = {h, hours};
	st = store_exec(c,
			"WITH s AS (UPDATE sessions SET last_seen = now(), "
			"  expires_at = now() + $2::int * interval '1 hour' "
			"  WHERE token_hash = $1 AND expires_at > now() AND last_seen < now() - interval '1 minute' "
			"  RETURNING user_id, csrf_token) "
			"SELECT u.id, u.username, u.is_admin, x.csrf_token FROM "
			" (SELECT user_id, csrf_token FROM s UNION ALL "
			"  SELECT user_id, csrf_token FROM sessions WHERE token_hash = $1 AND expires_at > now()) x "
			" JOIN users u ON u.id = x.user_id LIMIT 1",
			2, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = CORE_EUNAUTH;
		goto out;
	}
	fill_identity(out, r, true, NULL);
out:
	PQclear(r);
	store_put(s, c);
	free(h);
	return st;
}

enum core_status auth_bearer(struct store *s, const char *token, struct auth_identity *out)
{
	memset(out, 0, sizeof(*out));
	if (!token || !*token)
		return CORE_EUNAUTH;
	char *h = crypto_sha256_hex(token, strlen(token));
	if (!h)
		return CORE_ENOMEM;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {h};
	st = store_exec(c,
			"UPDATE api_tokens t SET last_used_at = now() FROM users u "
			"WHERE t.token_hash = $1 AND u.id = t.user_id "
			"RETURNING u.id, u.username, u.is_admin, t.name",
			1, p, &r);
	if (st != CORE_OK)
		goto out;
	if (PQntuples(r) == 0) {
		st = CORE_EUNAUTH;
		goto out;
	}
	fill_identity(out, r, false, store_str(r, 0, "name"));
out:
	PQclear(r);
	store_put(s, c);
	free(h);
	return st;
}

enum core_status auth_logout(struct store *s, const char *session_token)
{
	if (!session_token || !*session_token)
		return CORE_OK;
	char *h = crypto_sha256_hex(session_token, strlen(session_token));
	if (!h)
		return CORE_ENOMEM;
	struct store_conn *c = NULL;
	enum core_status st = store_get(s, &c);
	if (st == CORE_OK) {
		const char *p[] = {h};
		st = store_exec(c, "DELETE FROM sessions WHERE token_hash = $1", 1, p, NULL);
	}
	store_put(s, c);
	free(h);
	return st;
}

enum core_status auth_token_create(struct store *s, const char *username, const char *name, char **token_out)
{
	*token_out = NULL;
	if (!name || !*name || strlen(name) > 100)
		return CORE_EINVAL;
	char *token = crypto_random_token("mrg_");
	char *h = token ? crypto_sha256_hex(token, strlen(token)) : NULL;
	char *hint = token ? crypto_token_hint(token) : NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = CORE_ENOMEM;
	if (!token || !h || !hint)
		goto out;
	st = store_get(s, &c);
	if (st != CORE_OK)
		goto out;
	const char *p[] = {username, name, h, hint};
	st = store_exec(c,
			"INSERT INTO api_tokens (user_id, name, token_hash, hint) "
			"SELECT id, $2, $3, $4 FROM users WHERE username = $1 RETURNING id",
			4, p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK) {
		*token_out = token;
		token = NULL;
	}
out:
	PQclear(r);
	store_put(s, c);
	crypto_free_secret(token);
	free(h);
	free(hint);
	return st;
}
