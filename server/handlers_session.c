/*
 * server/handlers_session.c
 *    POST/GET/DELETE /api/session: log in, who am I, log out; PUT /api/session/password: change your own password.
 */
#include "buf.h"
#include "clientaddr.h"
#include "crypto.h"
#include "http_json.h"
#include "json_util.h"
#include "jsonx.h"
#include "routes.h"
#include "xalloc.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct json_object *identity_json(const struct auth_identity *who)
{
	struct json_object *o = jx_object();
	json_object_object_add(o, "username", jx_str(who->username));
	json_object_object_add(o, "role", jx_str(auth_role_name(who->role)));
	json_object_object_add(o, "is_admin", jx_bool(who->is_admin));
	if (who->via_cookie)
		json_object_object_add(o, "csrf_token", jx_str(who->csrf_token));
	json_object_object_add(o, "auth", jx_str(who->via_cookie ? "session" : "token"));
	return o;
}

/* The client's address: the peer's, or behind a trusted proxy the one its X-Forwarded-For names (every such header
 * line, in order: a client's own line must not hide the proxy's; CivetWeb bounds the headers' size). */
static void client_addr(const struct req *r, char *out, size_t cap)
{
	struct buf xff = {0};
	for (int i = 0; i < r->ri->num_headers; i++)
		if (strcasecmp(r->ri->http_headers[i].name, "X-Forwarded-For") == 0)
			buf_printf(&xff, "%s%s", xff.len ? "," : "", r->ri->http_headers[i].value);
	clientaddr_resolve(r->app->cfg.trusted_proxies, r->ri->remote_addr, buf_str(&xff), out, cap);
	buf_free(&xff);
}

/* The 429 of a login or password change refused by a lock or for want of a hashing slot. */
static int send_throttled(struct req *r, const struct auth_login_result *res, const char *what)
{
	char hdr[64], msg[320];
	snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", res->retry_after);
	int n = res->busy ? snprintf(msg, sizeof(msg),
	                             "{\"error\":\"too_many_requests\",\"message\":\"too many %s at once; "
	                             "try again in %d second\"}",
	                             what, res->retry_after)
	                  : snprintf(msg, sizeof(msg),
	                             "{\"error\":\"too_many_requests\",\"message\":\"too many failed logins %s; "
	                             "try again in %d seconds%s\"}",
	                             res->address_locked           ? "from this address"
	                             : res->user_locked_everywhere ? "for this user from many addresses"
	                                                           : "for this user from this address",
	                             res->retry_after,
	                             res->address_locked || res->user_locked_everywhere
	                                 ? ", or ask an admin to lift the lock (mrgate user unlock)"
	                                 : "");
	return http_send_raw(r->conn, 429, "application/json", msg, (size_t)n, hdr);
}

int h_session_create(struct req *r)
{
	struct json_object *body = NULL;
	struct auth_login_result res = {0};
	int status;
	/* A login is the one write without a session: a form on another site could post one (as text/plain, which
	 * needs no CORS preflight) and sign the visitor's browser in as the attacker. Only JSON is read (415 else). */
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	static const char *const fields[] = {"username", "password", NULL};
	if (!req_only_fields(r, body, fields, &status))
		goto out;
	const char *user = NULL, *pass = NULL;
	if (!jsonx_str(body, "username", &user) || !*user) {
		status =
		    http_send_error(r->conn, 400, "invalid_input", "field \"username\" must be a non-empty string");
		goto out;
	}
	if (!jsonx_str(body, "password", &pass)) {
		status = http_send_error(r->conn, 400, "invalid_input", "field \"password\" must be a string");
		goto out;
	}
	char addr[CLIENTADDR_MAX];
	client_addr(r, addr, sizeof(addr));
	enum core_status st = auth_login(r->app->db, user, pass, addr, &res);
	if (st == CORE_ETHROTTLED) {
		status = send_throttled(r, &res, "logins");
		goto out;
	}
	if (st == CORE_EUNAUTH) {
		status = http_send_error(r->conn, 401, "unauthorized", "wrong username or password");
		goto out;
	}
	if (st != CORE_OK) {
		status = http_send_status(r->conn, st, "could not log in");
		goto out;
	}
	char cookie[256];
	snprintf(cookie, sizeof(cookie),
	         "Set-Cookie: mrgate_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s\r\n",
	         res.session_token, AUTH_SESSION_HOURS * 3600, r->app->tls ? "; Secure" : "");
	struct json_object *o = identity_json(&res.who);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	status = http_send_raw(r->conn, 200, "application/json", s, strlen(s), cookie);
	json_object_put(o);
out:
	crypto_free_secret(res.session_token);
	json_object_put(body);
	return status;
}

int h_session_get(struct req *r)
{
	return http_send_json(r->conn, 200, identity_json(&r->who));
}

int h_session_delete(struct req *r)
{
	char cookie[128];
	if (r->who.via_cookie && http_cookie(r->conn, "mrgate_session", cookie, sizeof(cookie))) {
		enum core_status st = auth_logout(r->app->db, cookie);
		if (st != CORE_OK)
			return http_send_status(r->conn, st, "could not end the session");
	}
	const char *clear = "Set-Cookie: mrgate_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n";
	return http_send_raw(r->conn, 204, "application/json", "", 0, clear);
}

int h_session_password(struct req *r)
{
	struct json_object *body = NULL;
	int status;
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	const char *current = NULL, *next = NULL;
	static const char *const known[] = {"current_password", "new_password"};
	json_object_object_foreach(body, key, val)
	{
		(void)val;
		if (strcmp(key, known[0]) != 0 && strcmp(key, known[1]) != 0) {
			status =
			    http_send_error(r->conn, 400, "invalid_input",
			                    "unknown member \"%.60s\": send current_password and new_password", key);
			goto out;
		}
	}
	if (!jsonx_str(body, "current_password", &current) || !*current) {
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "field \"current_password\" must be your current password");
		goto out;
	}
	if (!jsonx_str(body, "new_password", &next)) {
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "field \"new_password\" must be a string: a password of " AUTH_PASSWORD_RULE);
		goto out;
	}
	const char *problem = auth_password_problem(next, r->who.username);
	if (problem) {
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "the new password %s: choose another (a password has " AUTH_PASSWORD_RULE ")",
		                         problem);
		goto out;
	}
	if (strcmp(current, next) == 0) {
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "the new password is the current one: choose another");
		goto out;
	}
	char addr[CLIENTADDR_MAX], cookie[128];
	client_addr(r, addr, sizeof(addr));
	bool have_cookie = r->who.via_cookie && http_cookie(r->conn, "mrgate_session", cookie, sizeof(cookie));
	struct auth_login_result res;
	enum core_status st =
	    auth_password_change(r->app->db, &r->who, current, next, addr, have_cookie ? cookie : NULL, &res);
	if (st == CORE_ETHROTTLED)
		status = send_throttled(r, &res, "password changes");
	else if (st == CORE_EFORBIDDEN)
		status = http_send_error(
		    r->conn, 400, "wrong_password",
		    "the current password is wrong: nothing was changed (a wrong one counts as a failed "
		    "login)");
	else if (st != CORE_OK)
		status = http_send_status(r->conn, st, "could not change the password");
	else {
		struct json_object *o = jx_object();
		json_object_object_add(o, "changed", jx_bool(true));
		json_object_object_add(
		    o, "message",
		    jx_str(r->who.is_admin
		               ? "password changed: your other sessions were ended; API tokens keep working "
		                 "(revoke them on the Users page if they may be known)"
		               : "password changed: your other sessions were ended; API tokens keep working "
		                 "(ask an admin to revoke them if they may be known)"));
		status = http_send_json(r->conn, 200, o);
	}
out:
	json_object_put(body);
	return status;
}
