/*
 * core/auth.h
 *    Dashboard users, sessions, API tokens and login throttling.
 *
 * Design: passwords are argon2id hashes (crypto.h). A login creates a session: a random cookie value whose
 * SHA-256 is stored with a CSRF token; cookie-authenticated writes must echo the CSRF token (the server checks
 * it). API tokens ("mrg_..." + 43 characters) are for scripts, sent as "Authorization: Bearer"; only their SHA-256
 * is stored. Failed logins are counted per user and per client address in PostgreSQL (so every instance sees
 * them): AUTH_USER_LIMIT failures for a user, or AUTH_IP_LIMIT from an address, within 15 minutes lock further
 * attempts for a doubling period (1 min up to 15 min). A correct password during a lock is refused too.
 * Threading: all functions take the shared struct store and are thread-safe.
 */
#ifndef MRGATE_CORE_AUTH_H
#define MRGATE_CORE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"
#include "store.h"

#define AUTH_USER_LIMIT 5
#define AUTH_IP_LIMIT 20
#define AUTH_SESSION_HOURS 12

struct auth_identity {
	int64_t user_id;
	char username[65];
	bool is_admin;
	bool via_cookie;     /* true: a session cookie (CSRF applies); false: a bearer token */
	char csrf_token[64]; /* the session's CSRF token (cookie sessions only) */
	char actor[96];      /* who to name in the audit log: "alice" or "alice (token ci)" */
};

/* Create a user. CORE_EINVAL for a bad name (1-64 of A-Z a-z 0-9 . _ @ -) or a password under 8 characters;
 * CORE_ECONFLICT when the name is taken. */
enum core_status auth_user_add(struct store *s, const char *username, const char *password, bool is_admin);

/* On first start: when no user exists and password is non-empty, create admin "admin". */
enum core_status auth_bootstrap_admin(struct store *s, const char *password, bool *created_out);

struct auth_login_result {
	char *session_token; /* cookie value; malloc'd, the caller frees with crypto_free_secret */
	struct auth_identity who;
	int retry_after;     /* seconds, when the result is CORE_ETHROTTLED */
};

/* Check a password and open a session. CORE_EUNAUTH on a bad name or password (one message for both),
 * CORE_ETHROTTLED while locked (out->retry_after says how long). */
enum core_status auth_login(struct store *s, const char *username, const char *password, const char *client_ip,
			    struct auth_login_result *out);

/* Resolve a session cookie value. CORE_EUNAUTH when unknown or expired. */
enum core_status auth_session(struct store *s, const char *session_token, struct auth_identity *out);
/* Resolve a bearer API token. CORE_EUNAUTH when unknown. */
enum core_status auth_bearer(struct store *s, const char *token, struct auth_identity *out);
/* End a session (unknown values are fine). */
enum core_status auth_logout(struct store *s, const char *session_token);

/* Create an API token for an existing user; *token_out is the only time the token is seen (caller frees). */
enum core_status auth_token_create(struct store *s, const char *username, const char *name, char **token_out);

#endif
