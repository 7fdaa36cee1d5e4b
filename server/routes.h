/*
 * server/routes.h
 *    The route table and the request context handed to every handler.
 *
 * Design: one table (routes.c) maps method + path pattern to a handler and its authentication rule. Patterns
 * are "/"-separated; "{name}" matches one segment and "{name*}" the rest of the path (one or more segments, e.g.
 * a group path "acme/backend"). CivetWeb has already URL-decoded the path, so "acme%2Fbackend" arrives as
 * "acme/backend". Handlers are thin: parse and validate input, call core/, map the status, reply. Each returns
 * the HTTP status it sent, which feeds /metrics.
 */
#ifndef MRGATE_SERVER_ROUTES_H
#define MRGATE_SERVER_ROUTES_H

#include "app.h"
#include "auth.h"

#include <civetweb.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define ROUTE_MAX_PARAMS 4
#define ROUTE_PATH_MAX   2048 /* bytes of a decoded request path; longer is a 400 */

struct req {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	struct app *app;
	char path[ROUTE_PATH_MAX]; /* the request path, decoded once by routes_path_decode() */
	struct auth_identity who;  /* valid when the route requires a user */
	const char *pattern;
	char params[ROUTE_MAX_PARAMS][1024];
	int nparams;
};

/*
 * Who may call a route. Every route declares one: the zero value means "not declared", which -Wextra's
 * missing-field-initializers turns into a compile error for a table entry written without it, and which
 * routes_check() refuses at start (serve does not start, `mrgate routes --check` fails). The roles above
 * ROUTE_PUBLIC need a session cookie (with CSRF on writes) or a bearer API token of a user with at least that
 * role (viewer < editor < admin); dispatch() checks it once, before any handler runs.
 */
enum route_role {
	ROUTE_ROLE_UNDECLARED = 0,
	ROUTE_PUBLIC, /* no authentication (the handler may check its own secret, e.g. the webhook token) */
	ROUTE_VIEWER, /* reads */
	ROUTE_EDITOR, /* configs, configure/apply, exceptions, sync, job retry/cancel */
	ROUTE_ADMIN,  /* connection, settings, hook mode, users, tokens */
};

struct route {
	const char *method;
	const char *pattern;
	int (*fn)(struct req *r);
	enum route_role role;
};

/* A positive decimal id (path parameter or query value), written as GitLab writes one: digits, no sign, no leading
 * zero; false when s is anything else. */
bool parse_positive_id(const char *s, int64_t *id);
/* The route's first path parameter as a positive id; false after answering 400 with the message invalid. */
bool req_path_id(struct req *r, const char *invalid, int64_t *id, int *status);
/* False (a 400 "unknown field" sent, *status set) when body has a key not in allowed (NULL-terminated). */
bool req_only_fields(struct req *r, struct json_object *body, const char *const *allowed, int *status);
/*
 * The optional member key of body as true or false: absent leaves *out and *present (may be NULL) false; anything
 * else, null included, is a 400 naming the member (false returned, *status set). null is not false here: a script's
 * "dry_run": null changed GitLab for real.
 */
bool req_bool(struct req *r, struct json_object *body, const char *key, bool *out, bool *present, int *status);
/* A GET of one thing named by the route's path id: the id checked, read, answered by http_send_read. */
struct req_read {
	const char *invalid; /* the 400 message of a bad id */
	enum core_status (*read)(struct store *db, int64_t id, struct json_object **out);
	const char *failed;  /* the message of a failed read */
	const char *missing; /* the 404 message: a printf format of the id (%lld) */
};
int req_read_by_id(struct req *r, const struct req_read *how);
/* DELETE of the thing a path id names: 204 when deleted, 404 (missing) when there is none, else failed's error. */
struct req_delete {
	const char *invalid; /* the 400 message of a bad id */
	enum core_status (*del)(struct store *db, const char *actor, int64_t id);
	const char *failed;  /* the message of a failed delete */
	const char *missing; /* the 404 message: a printf format of the id (%lld) */
};
int req_delete_by_id(struct req *r, const struct req_delete *how);
/* The messages of a repository id in a path. */
#define REPO_ID_INVALID "a repository id is a positive integer"
#define REPO_MISSING    "no repository with id %lld"

/* Register the dispatcher with CivetWeb for every prefix the table uses, and the static file handler for the rest. */
void routes_register(struct mg_context *ctx, struct app *app);
/* The static file server (static_files.c): resolve the web root once (false when it is not a directory), then
 * answer any request outside the API prefixes. */
bool static_files_init(const char *web_root);
/* Serve the file of the web root that path (decoded by routes_path_decode) names. */
int static_files_serve(struct mg_connection *conn, const char *path);
/*
 * The request's path, decoded once and strictly into out (CivetWeb is told not to decode it, decode_url = no, so a
 * %00 cannot end it early): every % is followed by two hex digits; no control character (NUL included) results; and
 * nothing CivetWeb's cleaning would change is accepted (".", ".." segments, a segment ending in ".", "//"), since a
 * route must act on the path the client sent or refuse it. NULL when out holds the path, else why not.
 */
const char *routes_path_decode(const struct mg_request_info *ri, char *out, size_t cap);

/* True when every route declares a role and no method + pattern appears twice; else names the culprit on stderr. */
bool routes_check(void);
/* `mrgate routes [--check]`: print "METHOD PATTERN ROLE" per route (or only validate); the exit code. */
int routes_cli(bool check_only);
/* The metrics label of a request method: the method when it is a standard one, else "other". */
const char *routes_method_label(const char *method);

/* Handlers, by file. */
/* handlers_system.c; handlers_system_describe() registers the metrics' descriptions (at start) */
void handlers_system_describe(void);
int h_healthz(struct req *r);
int h_readyz(struct req *r);
int h_metrics(struct req *r);
int h_session_create(struct req *r);
int h_session_get(struct req *r);
int h_session_delete(struct req *r);
int h_session_password(struct req *r);
int h_connection_get(struct req *r);
int h_connection_put(struct req *r);
int h_connection_delete(struct req *r);
int h_public_url_get(struct req *r);
int h_sync_start(struct req *r);
int h_sync_get(struct req *r);
int h_repos_list(struct req *r);
int h_repo_get(struct req *r);
int h_repo_history(struct req *r);
int h_groups_list(struct req *r);
int h_hook_gitlab(struct req *r);
int h_gates_list(struct req *r);
int h_gate_get(struct req *r);
int h_gate_bypass(struct req *r);
int h_ignores_list(struct req *r);
int h_ignore_create(struct req *r);
int h_ignore_delete(struct req *r);
/* handlers_config.c */
int h_config_default_get(struct req *r);
int h_config_default_put(struct req *r);
int h_config_groups_list(struct req *r);
int h_config_group_get(struct req *r);
int h_config_group_put(struct req *r);
int h_config_group_delete(struct req *r);
int h_repo_config_get(struct req *r);
int h_repo_config_put(struct req *r);
int h_repo_config_delete(struct req *r);
int h_configure(struct req *r);
int h_audit_list(struct req *r);

int h_jobs_list(struct req *r);
int h_job_get(struct req *r);
int h_job_plan(struct req *r);
int h_job_retry(struct req *r);
int h_job_cancel(struct req *r);
int h_settings_get(struct req *r);
int h_scanners_get(struct req *r);
int h_settings_put(struct req *r);
/* handlers_users.c */
int h_users_list(struct req *r);
int h_user_create(struct req *r);
int h_user_update(struct req *r);
int h_user_delete(struct req *r);
int h_tokens_list(struct req *r);
int h_token_delete(struct req *r);

#endif
