/*
 * server/routes.c
 *    The one route table, path matching, authentication and CSRF checks, request metrics.
 */
#include "routes.h"

#include "auth.h"
#include "crypto.h"
#include "http_json.h"
#include "json_util.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct route routes[] = {
    {"GET", "/healthz", h_healthz, ROUTE_PUBLIC},
    {"GET", "/readyz", h_readyz, ROUTE_PUBLIC},
    {"GET", "/metrics", h_metrics, ROUTE_PUBLIC},
    {"POST", "/api/session", h_session_create, ROUTE_PUBLIC},
    {"GET", "/api/session", h_session_get, ROUTE_VIEWER},
    {"DELETE", "/api/session", h_session_delete, ROUTE_VIEWER},
    {"PUT", "/api/session/password", h_session_password, ROUTE_VIEWER},
    {"GET", "/api/connection", h_connection_get, ROUTE_VIEWER},
    {"PUT", "/api/connection", h_connection_put, ROUTE_ADMIN},
    {"DELETE", "/api/connection", h_connection_delete, ROUTE_ADMIN},
    {"GET", "/api/connection/public-url", h_public_url_get, ROUTE_VIEWER},
    {"POST", "/api/sync", h_sync_start, ROUTE_EDITOR},
    {"GET", "/api/sync", h_sync_get, ROUTE_VIEWER},
    {"GET", "/api/repos", h_repos_list, ROUTE_VIEWER},
    {"GET", "/api/repos/{id}", h_repo_get, ROUTE_VIEWER},
    {"GET", "/api/repos/{id}/history", h_repo_history, ROUTE_VIEWER},
    {"GET", "/api/groups", h_groups_list, ROUTE_VIEWER},
    {"POST", "/hooks/gitlab", h_hook_gitlab, ROUTE_PUBLIC}, /* X-Gitlab-Token checked by the handler */
    {"GET", "/api/gates", h_gates_list, ROUTE_VIEWER},
    {"GET", "/api/gates/{id}", h_gate_get, ROUTE_VIEWER},
    {"POST", "/api/gates/{id}/bypass", h_gate_bypass, ROUTE_EDITOR},
    {"GET", "/api/ignores", h_ignores_list, ROUTE_VIEWER},
    {"POST", "/api/ignores", h_ignore_create, ROUTE_EDITOR},
    {"DELETE", "/api/ignores/{id}", h_ignore_delete, ROUTE_EDITOR},
    {"GET", "/api/configs/default", h_config_default_get, ROUTE_VIEWER},
    {"PUT", "/api/configs/default", h_config_default_put, ROUTE_EDITOR},
    {"GET", "/api/configs/groups", h_config_groups_list, ROUTE_VIEWER},
    {"GET", "/api/configs/groups/{path*}", h_config_group_get, ROUTE_VIEWER},
    {"PUT", "/api/configs/groups/{path*}", h_config_group_put, ROUTE_EDITOR},
    {"DELETE", "/api/configs/groups/{path*}", h_config_group_delete, ROUTE_EDITOR},
    {"GET", "/api/repos/{id}/config", h_repo_config_get, ROUTE_VIEWER},
    {"PUT", "/api/repos/{id}/config", h_repo_config_put, ROUTE_EDITOR},
    {"DELETE", "/api/repos/{id}/config", h_repo_config_delete, ROUTE_EDITOR},
    {"POST", "/api/configure", h_configure, ROUTE_EDITOR},
    {"GET", "/api/audit", h_audit_list, ROUTE_VIEWER},
    {"GET", "/api/jobs", h_jobs_list, ROUTE_VIEWER},
    {"GET", "/api/jobs/{id}", h_job_get, ROUTE_VIEWER},
    {"GET", "/api/jobs/{id}/plan", h_job_plan, ROUTE_VIEWER},
    {"POST", "/api/jobs/{id}/retry", h_job_retry, ROUTE_EDITOR},
    {"POST", "/api/jobs/{id}/cancel", h_job_cancel, ROUTE_EDITOR},
    {"GET", "/api/settings", h_settings_get, ROUTE_VIEWER},
    {"GET", "/api/scanners", h_scanners_get, ROUTE_VIEWER},
    {"PUT", "/api/settings", h_settings_put, ROUTE_ADMIN},
    {"GET", "/api/users", h_users_list, ROUTE_ADMIN},
    {"POST", "/api/users", h_user_create, ROUTE_ADMIN},
    {"PATCH", "/api/users/{id}", h_user_update, ROUTE_ADMIN},
    {"DELETE", "/api/users/{id}", h_user_delete, ROUTE_ADMIN},
    {"GET", "/api/tokens", h_tokens_list, ROUTE_ADMIN},
    {"DELETE", "/api/tokens/{id}", h_token_delete, ROUTE_ADMIN},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The prefixes CivetWeb hands to dispatch(); everything else is a static file under the web root. */
static const char *const prefixes[] = {"/api", "/healthz", "/readyz", "/metrics", "/hooks"};

bool parse_positive_id(const char *s, int64_t *id)
{
	char *end;
	/* digits only, as GitLab writes an id: strtoll alone takes "+1000", " 1000" and "01000" for 1000 */
	if (!s || *s < '1' || *s > '9')
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || errno || v <= 0)
		return false;
	*id = v;
	return true;
}

bool req_only_fields(struct req *r, struct json_object *body, const char *const *allowed, int *status)
{
	const char *key = json_unknown_key(body, allowed);
	if (key)
		*status = http_send_error(r->conn, 400, "invalid_input", "unknown field \"%.64s\"", key);
	return key == NULL;
}

bool req_bool(struct req *r, struct json_object *body, const char *key, bool *out, bool *present, int *status)
{
	struct json_object *v = NULL;
	if (present)
		*present = false;
	if (!json_object_is_type(body, json_type_object) || !json_object_object_get_ex(body, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_boolean)) {
		*status = http_send_error(r->conn, 400, "invalid_input", "field \"%s\" must be true or false%s", key,
		                          v ? "" : " (not null)");
		return false;
	}
	*out = json_object_get_boolean(v) != 0;
	if (present)
		*present = true;
	return true;
}

bool req_path_id(struct req *r, const char *invalid, int64_t *id, int *status)
{
	if (parse_positive_id(r->params[0], id))
		return true;
	*status = http_send_error(r->conn, 400, "invalid_input", "%s", invalid);
	return false;
}

int req_read_by_id(struct req *r, const struct req_read *how)
{
	int64_t id;
	int status;
	struct json_object *o = NULL;
	if (!req_path_id(r, how->invalid, &id, &status))
		return status;
	enum core_status st = how->read(r->app->db, id, &o);
	return http_send_read(r->conn, st, o, how->failed, how->missing, (long long)id);
}

int req_delete_by_id(struct req *r, const struct req_delete *how)
{
	int64_t id;
	int status;
	if (!req_path_id(r, how->invalid, &id, &status))
		return status;
	enum core_status st = how->del(r->app->db, r->who.actor, id);
	if (st != CORE_OK)
		return http_send_failure(r->conn, st, how->failed, how->missing, (long long)id);
	return http_send_raw(r->conn, 204, "application/json", "", 0, NULL);
}

/* Match path against pattern, capturing parameters into r. */
static bool match(const char *pattern, const char *path, struct req *r)
{
	r->nparams = 0;
	const char *p = pattern, *u = path;
	while (*p && *u) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			if (!close || r->nparams >= ROUTE_MAX_PARAMS)
				return false;
			bool rest = close[-1] == '*';
			size_t n = rest ? strlen(u) : strcspn(u, "/");
			if (n == 0 || n >= sizeof(r->params[0]))
				return false;
			memcpy(r->params[r->nparams], u, n);
			r->params[r->nparams][n] = '\0';
			/* a trailing slash on a rest parameter is not part of it */
			if (rest && r->params[r->nparams][n - 1] == '/')
				r->params[r->nparams][n - 1] = '\0';
			r->nparams++;
			p = close + 1;
			u += n;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	/* allow one trailing slash on the request */
	if (*u == '/' && u[1] == '\0')
		u++;
	return *p == '\0' && *u == '\0';
}

static bool is_write(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0;
}

/* Authenticate r; on failure the 401/403 has been sent and its status returned, else 0. */
static int authenticate(struct req *r)
{
	const char *authz = mg_get_header(r->conn, "Authorization");
	enum core_status st;
	if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
		st = auth_bearer(r->app->db, authz + 7, &r->who);
		if (st == CORE_EUNAUTH)
			return http_send_error(r->conn, 401, "unauthorized", "the API token is not valid");
		if (st != CORE_OK)
			return http_send_status(r->conn, st, "could not check the API token");
		return 0;
	}
	char cookie[128];
	if (!http_cookie(r->conn, "mrgate_session", cookie, sizeof(cookie)))
		return http_send_error(
		    r->conn, 401, "unauthorized",
		    "authentication required: log in or send an API token as \"Authorization: Bearer\"");
	st = auth_session(r->app->db, cookie, &r->who);
	if (st == CORE_EUNAUTH)
		return http_send_error(r->conn, 401, "unauthorized",
		                       "the session has expired or was ended; log in again");
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not check the session");
	if (is_write(r->ri->request_method)) {
		const char *csrf = mg_get_header(r->conn, "X-CSRF-Token");
		if (!crypto_equal(csrf, r->who.csrf_token))
			return http_send_error(r->conn, 403, "csrf",
			                       "missing or wrong X-CSRF-Token header: cookie-authenticated writes must "
			                       "send the token returned at login");
	}
	return 0;
}

static const char *role_name(enum route_role role)
{
	switch (role) {
	case ROUTE_PUBLIC: return "public";
	case ROUTE_VIEWER: return "viewer";
	case ROUTE_EDITOR: return "editor";
	case ROUTE_ADMIN: return "admin";
	case ROUTE_ROLE_UNDECLARED: break;
	}
	return "undeclared";
}

/* The user role a route needs (AUTH_ROLE_NONE for public routes). */
static enum auth_role needed_role(enum route_role role)
{
	switch (role) {
	case ROUTE_VIEWER: return AUTH_ROLE_VIEWER;
	case ROUTE_EDITOR: return AUTH_ROLE_EDITOR;
	case ROUTE_ADMIN: return AUTH_ROLE_ADMIN;
	case ROUTE_PUBLIC:
	case ROUTE_ROLE_UNDECLARED: break;
	}
	return AUTH_ROLE_NONE;
}

const char *routes_method_label(const char *method)
{
	static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
	for (size_t i = 0; method && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

/*
 * One request counted. route is a pattern of the route table or one of the fixed labels "unmatched" (404) and
 * "method_not_allowed" (405), the method one of routes_method_label()'s, the status an HTTP status: the series are
 * bounded by construction (routes x 8 methods x statuses), whatever paths and methods clients send. Values are
 * escaped all the same.
 */
static void count(const char *route, const char *method, int status)
{
	char r_esc[200], labels[300];
	metrics_label_escape(route, r_esc, sizeof(r_esc));
	if (status < 100 || status > 599)
		status = 500;
	snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"", r_esc, routes_method_label(method),
	         status);
	metrics_inc("mrgate_http_requests_total", labels, 1);
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* Whether a decoded path holds what CivetWeb's cleaning would change: "." or ".." segments, a segment ending in
 * ".", or an empty segment other than the last (a trailing slash). */
static bool path_cleanable(const char *path)
{
	for (const char *seg = path[0] == '/' ? path + 1 : path;;) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if ((len == 0 && end) || (len > 0 && seg[len - 1] == '.'))
			return true;
		if (!end)
			return false;
		seg = end + 1;
	}
}

const char *routes_path_decode(const struct mg_request_info *ri, char *out, size_t cap)
{
	const char *raw = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri ? ri->local_uri : "/";
	size_t n = 0;
	for (const char *p = raw; *p; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
			if (lo < 0)
				return "the path has a \"%\" that is not followed by two hex digits";
			c = hi * 16 + lo;
			p += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return "the path contains a control character (such as %00)";
		if (n + 1 >= cap)
			return "the path is too long";
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (path_cleanable(out))
		return "the path has \".\" or \"..\" segments, a segment ending in \".\" or repeated slashes, "
		       "which change what it names";
	return NULL;
}

/*
 * The first query parameter given more than once (its name as the later one spells it, up to cap - 1 bytes, into
 * name), or false. Handlers read a parameter with mg_get_var, which takes the first of a name and matches names
 * without case: ?group=a&group=b listed group a's repos without a word, so a repeated name is refused instead.
 */
static bool repeated_param(const char *qs, char *name, size_t cap)
{
	for (const char *a = qs; a && *a;) {
		size_t seg = strcspn(a, "&"), alen = strcspn(a, "=&");
		for (const char *b = a + seg; alen && *b;) {
			b++; /* the '&' */
			size_t blen = strcspn(b, "=&");
			if (blen == alen && strncasecmp(a, b, alen) == 0) {
				snprintf(name, cap, "%.*s", (int)(blen < cap ? blen : cap - 1), b);
				return true;
			}
			b += strcspn(b, "&");
		}
		a += seg;
		a += *a == '&';
	}
	return false;
}

static int dispatch(struct mg_connection *conn, void *cbdata)
{
	struct app *app = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct req *r = calloc(1, sizeof(*r)); /* ~6 KB of path and parameters: keep it off the handler's stack */
	int status;
	if (!r) {
		status = http_send_status(conn, CORE_ENOMEM, "out of memory");
		return status;
	}
	r->conn = conn;
	r->ri = ri;
	r->app = app;

	/* CivetWeb cleans the decoded path (dot segments, trailing dots, repeated slashes): a route must act on the
	 * path the client sent, or refuse it, never on another one. */
	const char *why = routes_path_decode(ri, r->path, sizeof(r->path));
	const char *path = r->path;
	if (why) {
		status = http_send_error(conn, 400, "invalid_path", "%s; send the path without it", why);
		count("unmatched", ri->request_method, status);
		goto out;
	}

	const struct route *hit = NULL;
	bool path_known = false;
	for (size_t i = 0; i < NROUTES && !hit; i++) {
		if (!match(routes[i].pattern, path, r))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, ri->request_method) == 0 ||
		    (strcmp(ri->request_method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
			hit = &routes[i];
	}
	if (!hit) {
		/* the reply names no part of the request: it is JSON-escaped anyway, but a 404 need not echo input */
		if (path_known)
			status =
			    http_send_error(conn, 405, "method_not_allowed", "this method is not allowed on this path");
		else
			status = http_send_error(conn, 404, "not_found", "no such endpoint");
		count(path_known ? "method_not_allowed" : "unmatched", ri->request_method, status);
		goto out;
	}
	/* re-run the match to restore this route's parameters (a later pattern may have overwritten them) */
	match(hit->pattern, path, r);
	r->pattern = hit->pattern;
	enum auth_role need = needed_role(hit->role);
	if (hit->role != ROUTE_PUBLIC) {
		status = need == AUTH_ROLE_NONE ? http_send_error(conn, 500, "internal", "this route declares no role")
		                                : authenticate(r);
		if (status) {
			count(hit->pattern, ri->request_method, status);
			goto out;
		}
		if (r->who.role < need) {
			status = http_send_error(
			    conn, 403, "forbidden", "this needs the %s role; %s is %s %s", auth_role_name(need),
			    r->who.username, r->who.role == AUTH_ROLE_VIEWER ? "a" : "an", auth_role_name(r->who.role));
			count(hit->pattern, ri->request_method, status);
			goto out;
		}
	}
	char dup[64];
	if (repeated_param(ri->query_string, dup, sizeof(dup))) {
		status =
		    http_send_error(conn, 400, "invalid_input", "the query parameter %s is given more than once", dup);
		count(hit->pattern, ri->request_method, status);
		goto out;
	}
	status = hit->fn(r);
	count(hit->pattern, ri->request_method, status);
	log_debug("%s %s -> %d", ri->request_method, hit->pattern, status);
out:
	free(r);
	return status > 0 ? status : 1;
}

bool routes_check(void)
{
	bool ok = true;
	for (size_t i = 0; i < NROUTES; i++) {
		if (routes[i].role == ROUTE_ROLE_UNDECLARED || needed_role(routes[i].role) == AUTH_ROLE_NONE) {
			if (routes[i].role != ROUTE_PUBLIC) {
				fprintf(stderr, "mrgate: route %s %s declares no role\n", routes[i].method,
				        routes[i].pattern);
				ok = false;
			}
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(routes[i].method, routes[j].method) == 0 &&
			    strcmp(routes[i].pattern, routes[j].pattern) == 0) {
				fprintf(stderr, "mrgate: route %s %s appears twice\n", routes[i].method,
				        routes[i].pattern);
				ok = false;
			}
	}
	return ok;
}

int routes_cli(bool check_only)
{
	if (!routes_check())
		return 1;
	if (check_only) {
		printf("%zu routes: every route declares a role\n", NROUTES);
		return 0;
	}
	for (size_t i = 0; i < NROUTES; i++)
		printf("%s %s %s\n", routes[i].method, routes[i].pattern, role_name(routes[i].role));
	return 0;
}

/* Everything outside the API prefixes: a file of the web root, counted under one label. */
static int serve_file(struct mg_connection *conn, void *cbdata)
{
	(void)cbdata;
	char *path = malloc(ROUTE_PATH_MAX); /* off the handler thread's stack */
	const char *why = path ? routes_path_decode(mg_get_request_info(conn), path, ROUTE_PATH_MAX) : "out of memory";
	int status = why ? http_send_error(conn, 400, "invalid_path", "%s; send the path without it", why)
	                 : static_files_serve(conn, path);
	free(path);
	count("static", mg_get_request_info(conn)->request_method, status);
	return status > 0 ? status : 1;
}

void routes_register(struct mg_context *ctx, struct app *app)
{
	metrics_describe("mrgate_http_requests_total", "counter", "HTTP requests by route pattern, method and status");
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		mg_set_request_handler(ctx, prefixes[i], dispatch, app);
	mg_set_request_handler(ctx, "/", serve_file, app); /* a pattern: matched after the prefixes above */
}
