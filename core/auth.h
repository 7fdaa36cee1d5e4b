/*
 * core/auth.h
 *    Dashboard users, sessions, API tokens and login throttling.
 *
 * Design: passwords are argon2id hashes (crypto.h). A login creates a session: a random cookie value whose
 * SHA-256 is stored with a CSRF token; cookie-authenticated writes must echo the CSRF token (the server checks
 * it). API tokens ("mrg_..." + 43 characters) are for scripts, sent as "Authorization: Bearer"; only their SHA-256
 * is stored. Failed logins are counted in PostgreSQL (so every instance sees them) under three keys: the client
 * address, the user at that address, and the user from everywhere. AUTH_IP_LIMIT failures from an address,
 * AUTH_USER_LIMIT for a user from one address, or AUTH_USER_WIDE_LIMIT for a user from all addresses together,
 * within 15 minutes, lock further attempts under that key for a doubling period (1 min up to 15 min). So a guesser
 * locks out only their own address, not the user they guess at (five guesses from anywhere locked admin for
 * everyone); only a guess spread over many addresses locks the user everywhere, and auth_unlock() lifts any lock.
 * A correct password during a lock is refused too, and an attempt refused by a lock counts for no key (no password
 * was checked). The throttle decides and records before the password is checked, with the rows locked: every
 * attempt let through counts as a failure up front (so N parallel guesses cannot all pass a check made before any
 * of them was recorded), and a correct password takes its count back.
 * Password hashing (argon2id, 64 MiB each) runs in at most AUTH_HASH_SLOTS threads at once per process; a login
 * or password change that finds no slot within AUTH_HASH_WAIT_MS is refused with CORE_ETHROTTLED, so a burst of
 * logins cannot exhaust memory or CPU. A login keeps its slot until its outcome is recorded, so at most
 * AUTH_HASH_SLOTS attempts per process are counted and still pending; as that is below AUTH_USER_LIMIT, right
 * passwords sent in parallel to one instance never lock their user (instances sharing a database add theirs up).
 * Roles: viewer < editor < admin (enum order); a disabled user's sessions and tokens resolve to CORE_EUNAUTH.
 * Threading: all functions take the shared struct store and are thread-safe.
 */
#ifndef MRGATE_CORE_AUTH_H
#define MRGATE_CORE_AUTH_H

#include "status.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

#define AUTH_USER_LIMIT      5
#define AUTH_IP_LIMIT        20
#define AUTH_USER_WIDE_LIMIT 100
#define AUTH_SESSION_HOURS   12
#define AUTH_TOKEN_NAME_MAX  100 /* bytes of an API token's name */
#define AUTH_HASH_SLOTS      4
#define AUTH_HASH_WAIT_MS    5000
_Static_assert(AUTH_HASH_SLOTS < AUTH_USER_LIMIT, "pending right logins must not reach the user's lock");

enum auth_role {
	AUTH_ROLE_NONE = 0, /* not a user's role: "not authenticated" */
	AUTH_ROLE_VIEWER,
	AUTH_ROLE_EDITOR,
	AUTH_ROLE_ADMIN,
};

/* "viewer", "editor", "admin" ("none" for AUTH_ROLE_NONE); a static string. */
const char *auth_role_name(enum auth_role role);
/* Parse a role name; false for anything but the three names. */
bool auth_role_parse(const char *name, enum auth_role *out);

struct auth_identity {
	int64_t user_id;
	char username[65];
	enum auth_role role;
	bool is_admin;       /* role == AUTH_ROLE_ADMIN */
	bool via_cookie;     /* true: a session cookie (CSRF applies); false: a bearer token */
	char csrf_token[64]; /* the session's CSRF token (cookie sessions only) */
	/* who to name in the audit log: "alice" or "alice (token ci)"; fits the longest username and token name */
	char actor[64 + sizeof(" (token )") + AUTH_TOKEN_NAME_MAX];
	/* the database snapshot the identity was read in (pg_current_snapshot(), by auth_session and auth_bearer), ""
	 * when unknown: what a read answered "as of the request's start" compares (repos_list_text's page cache) */
	char snapshot[256];
};

/* Create a user with a role, audited as "user.create" by actor. CORE_EINVAL for a bad name (1-64 of A-Z a-z 0-9
 * . _ @ -) or a password under 8 characters; CORE_ECONFLICT when the name is taken; CORE_ETHROTTLED when no hashing
 * slot frees up. *id_out (may be NULL) is the new user's id. */
enum core_status auth_user_add(struct store *s, const char *actor, const char *username, const char *password,
                               enum auth_role role, int64_t *id_out);

/*
 * What a password must be, for messages (NIST SP 800-63B's rules: a length, no composition rules, and not a password
 * a guesser tries first). A walk set passwords of 16 spaces, "12345678" and "abababab", and one with a zero-width
 * space that could not be typed again.
 */
#define AUTH_PASSWORD_RULE                                                                                             \
	"at least 8 characters and at most 1024 bytes, with no control or invisible character, and not one a guesser " \
	"tries first: not a common password (or one with digits or symbols added), the user name, a character or "     \
	"short pattern repeated (aaaaaaab, abababab), mostly a run (12345678, qwertyui) or two guessable pieces put "  \
	"together (runs, keyboard walks, a year, common words or the user name: qwer1234, 123password, alice123)"
/* Why password breaks AUTH_PASSWORD_RULE, in words that follow "the password" ("is one of the most common
 * passwords"), or NULL when it keeps it; username (may be NULL) is the account's name. Static strings. */
const char *auth_password_problem(const char *password, const char *username);
/* auth_password_problem(password, NULL) == NULL. */
bool auth_password_ok(const char *password);
/* A valid user name: 1 to 64 of A-Z a-z 0-9 . _ @ - */
bool auth_username_ok(const char *username);
/* Hash a password inside the hashing bound; CORE_ETHROTTLED when no slot frees up in time. *hash_out malloc'd. */
enum core_status auth_hash_password(const char *password, char **hash_out);

/* On first start: when no user exists and password is non-empty, create admin "admin". */
enum core_status auth_bootstrap_admin(struct store *s, const char *password, bool *created_out);

struct auth_login_result {
	char *session_token; /* cookie value; malloc'd, the caller frees with crypto_free_secret */
	struct auth_identity who;
	int retry_after;             /* seconds, when the result is CORE_ETHROTTLED */
	bool busy;                   /* CORE_ETHROTTLED because every hashing slot was taken (not a lock) */
	bool address_locked;         /* CORE_ETHROTTLED by the client address's lock (else by the user's, or busy) */
	bool user_locked_everywhere; /* CORE_ETHROTTLED by the user's lock from all addresses (else from this one) */
};

/* Check a password and open a session. CORE_EUNAUTH on a bad name or password or a disabled user (one message for
 * all), CORE_ETHROTTLED while locked or when no hashing slot is free (out->retry_after says how long). */
enum core_status auth_login(struct store *s, const char *username, const char *password, const char *client_ip,
                            struct auth_login_result *out);

/* *exists: a user has this name (any case). */
enum core_status auth_user_exists(struct store *s, const char *username, bool *exists);

/*
 * Lift the login locks and clear the failed-login counts of a user (username, any case: from every address and
 * from each) or of an address (address), or of both; either may be NULL. *cleared_out gets how many counts were
 * cleared (0 when there were none: no error). Audited as "user.unlock" by actor.
 */
enum core_status auth_unlock(struct store *s, const char *actor, const char *username, const char *address,
                             long long *cleared_out);

/*
 * A user changes their own password: current is checked through the login throttle (the same keys and limits as a
 * login from client_ip, so an open session cannot be used to guess it), then the new password is stored, every
 * session of the user but keep_session (the caller's cookie value; NULL: none) is ended, and the change is audited
 * as user.password_change, in one transaction. CORE_EINVAL for a new password auth_password_ok() refuses,
 * CORE_EFORBIDDEN for a wrong current password (counted as a failed login), CORE_ETHROTTLED while locked or busy
 * (out->retry_after, busy, address_locked, user_locked_everywhere as for a login), CORE_EUNAUTH for a user that is
 * gone or disabled. out->session_token stays NULL.
 */
enum core_status auth_password_change(struct store *s, const struct auth_identity *who, const char *current,
                                      const char *next, const char *client_ip, const char *keep_session,
                                      struct auth_login_result *out);

/* Resolve a session cookie value. CORE_EUNAUTH when unknown or expired. */
enum core_status auth_session(struct store *s, const char *session_token, struct auth_identity *out);
/* Resolve a bearer API token. CORE_EUNAUTH when unknown. Its last_used_at is written at most once a minute. */
enum core_status auth_bearer(struct store *s, const char *token, struct auth_identity *out);
/* End a session (unknown values are fine). */
enum core_status auth_logout(struct store *s, const char *session_token);
/*
 * Delete what no login needs any more: sessions that ended, and failed-login counts whose window and lock ended
 * over an hour ago (their next attempt would start afresh anyway). Without it every wrong guess from a new address
 * or for a new name left rows for ever. The counts deleted go to *sessions_out and *failures_out (either may be
 * NULL).
 */
enum core_status auth_tidy(struct store *s, long long *sessions_out, long long *failures_out);

/* The audit entry of an API token created or revoked by actor, in c's transaction: target "user (token name)",
 * the token's name, hint and user as after (created) or before (revoked). Never the token itself. */
enum core_status auth_token_audit(struct store_conn *c, const char *actor, bool created, const char *username,
                                  const char *name, const char *hint);
/* Create an API token for an existing user; *token_out is the only time the token is seen (caller frees). */
enum core_status auth_token_create(struct store *s, const char *username, const char *name, char **token_out);

#endif
