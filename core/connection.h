/*
 * core/connection.h
 *    The installation's GitLab connection: URL, root group and token. Checking a token, storing it sealed,
 *    describing it without the secret, and opening a GitLab client from it.
 *
 * Design: connection_check() asks GitLab what a token can do (GITLAB-API.md §1.2, §1.3, §2.1):
 * GET /personal_access_tokens/self (scopes, expiry, revoked), GET /user (who, bot), GET /groups/:id (the group
 * exists and is visible), GET /groups/:id/members/all/:user_id (the user's role on it). The answer is a
 * capability: "gate" (api scope: repos can be listed and configured), "read_only" (read_api: listed only) or
 * "insufficient", with warnings in plain words (expiry within 30 days, below Maintainer, a human user rather
 * than a bot). Only a usable token (gate or read_only) is stored, sealed with the secret key; the webhook secret
 * is created with the first connection and kept when the token is replaced, so hooks stay valid.
 * Nothing here ever returns or logs the token: only its last four characters.
 * Threading: all functions are thread-safe.
 * Ownership: struct connection_info is plain data (fixed buffers) plus warnings (a json array owned by the
 * struct: connection_info_clear()). A client from connection_client() is the caller's (connection_client_free()).
 */
#ifndef MRGATE_CORE_CONNECTION_H
#define MRGATE_CORE_CONNECTION_H

#include "crypto.h"
#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct connection_input {
	const char *gitlab_url; /* https://gitlab.example.com */
	const char *group;      /* numeric id or full path ("acme/platform") */
	const char *token;
	const char *ca_bundle;   /* PEM text of CAs to trust, or NULL */
	const char *allow_hosts; /* MRGATE_GITLAB_URL_ALLOW: "host[:port], ..." the URL must name; NULL or "": any */
};

struct connection_info {
	char gitlab_url[512];
	char group_ref[512];
	int64_t group_id;
	char group_full_path[512];
	char group_name[256];
	char token_hint[16];
	char token_name[256];
	char token_scopes[256];    /* comma separated */
	char token_expires_at[16]; /* YYYY-MM-DD or "" */
	char token_kind[24];       /* personal | group_access | service_account | unknown */
	int64_t user_id;
	char username[256];
	bool user_bot;
	int group_access_level; /* 0 when unknown */
	char capability[16];    /* gate | read_only | insufficient */
	char token_status[16];  /* ok | expired | revoked | invalid */
	char token_problem[512];
	bool has_ca_bundle;
	char created_at[40];
	char updated_at[40];
	char token_checked_at[40];
	struct json_object *warnings; /* array of strings */
};

void connection_info_clear(struct connection_info *ci);
/* The public JSON view (no secret): a new object the caller owns. */
struct json_object *connection_info_json(const struct connection_info *ci);

/* Tuning of the GitLab clients mrgate opens (from the settings). */
struct connection_tuning {
	int requests_per_minute;
	long connect_timeout_ms;
	long total_timeout_ms;
	int max_retries;
	long backoff_base_ms;
};

/*
 * Check a token against GitLab. On success (CORE_OK) *out describes the token, its capability and warnings.
 * On failure out->token_problem says why in plain words (an expired, revoked or unknown token; the group not
 * found or not visible; GitLab unreachable; a TLS failure) and the status says what kind: CORE_EUNAUTH (token),
 * CORE_ENOTFOUND (group), CORE_EINVAL (bad input: URL, CA bundle), CORE_EUNAVAIL/CORE_ETIMEOUT (unreachable,
 * TLS), CORE_EFORBIDDEN (insufficient token), CORE_EUPSTREAM (GitLab errors).
 */
enum core_status connection_check(const struct connection_input *in, const struct connection_tuning *tune,
                                  struct connection_info *out);

/* Check, then store (replacing any connection, keeping the webhook secret) in one transaction with an audit entry.
 * Another group or GitLab URL than the connected one, or a first connection, is refused (CORE_ECONFLICT,
 * out->token_problem says why) while a sync or a job (not a dry run) still works on the group connected before;
 * a new token for the same group is always taken. */
enum core_status connection_put(struct store *db, const unsigned char key[CRYPTO_KEY_BYTES],
                                const struct connection_input *in, const struct connection_tuning *tune,
                                const char *actor, struct connection_info *out);

/* The stored connection; CORE_ENOTFOUND when there is none. */
enum core_status connection_get(struct store *db, struct connection_info *out);

/* Remove the connection (repos and configs stay). CORE_ENOTFOUND when there is none; CORE_ECONFLICT, with err
 * saying why, while a sync or a job still works on the connected group (their calls go on with its token). */
enum core_status connection_delete(struct store *db, const char *actor, char *err, size_t errlen);

/* Record the outcome of a token health check (expired, revoked, ok) made by a later GitLab call. */
enum core_status connection_set_token_status(struct store *db, const char *status, const char *problem);

/*
 * May GitLab writes be sent with the stored connection? CORE_OK when its token can write (or there is no
 * connection: then nothing is sent anyway). CORE_ECONFLICT when it cannot: *code_out is "token_read_only" (a
 * read_api token) or "token_not_valid" (GitLab refused the token: expired, revoked, unknown), and err says why
 * and what to do. Reads the stored row, so a token GitLab refused a moment ago is seen at once.
 */
enum core_status connection_write_check(struct store *db, const char **code_out, char *err, size_t errlen);

/* A GitLab client for the stored connection, with its token unsealed. CORE_ENOTFOUND without a connection,
 * CORE_ECRYPTO when the secret key does not open the stored token (a clear error is logged).
 * Token refusal: the first 401 (expired, revoked or unknown token) any call of the client receives marks the
 * stored connection at once (token status and the problem in words, as a resync would) and latches the client
 * (gitlab_on_token_rejected()): its later calls fail the same way without reaching GitLab. A client opened while
 * the stored token status is not ok starts latched, so no call is sent until the token is updated. */
struct connection_client;
enum core_status connection_client(struct store *db, const unsigned char key[CRYPTO_KEY_BYTES],
                                   const struct connection_tuning *tune, struct connection_client **out);
void connection_client_free(struct connection_client *cc); /* NULL is fine */
/*
 * The process's shared client for the stored connection: every caller of one GitLab shares its rate limiter,
 * its 429 pause and its metrics. Re-created when the connection row changes (a new token or URL). Release
 * with connection_client_release(); the last release of a replaced client frees it.
 */
enum core_status connection_client_shared(struct store *db, const unsigned char key[CRYPTO_KEY_BYTES],
                                          const struct connection_tuning *tune, struct connection_client **out);
void connection_client_release(struct connection_client *cc); /* NULL is fine */
/* One more reference to a shared client (release it too); returns cc. Only for shared clients. */
struct connection_client *connection_client_retain(struct connection_client *cc);
/* Snapshot of the shared client's GitLab metrics, or NULL when none is open (caller frees). */
struct gitlab_metrics *connection_shared_metrics(void);

/* Borrowed from cc. */
struct gitlab *connection_client_gitlab(struct connection_client *cc);
const struct connection_info *connection_client_info(struct connection_client *cc);
/* The webhook secret (borrowed from cc; never log it). */
const char *connection_client_webhook_secret(struct connection_client *cc);

#endif
