/*
 * server/handlers_session.c
 *    POST/GET/DELETE /api/session: log in, who am I, log out.
 */
#include "buf.h"
#include "clientaddr.h"
#include "crypto.h"
#include "http_json.h"
#include "json_util.h"
#include "jsonx.h"
#include "routes.h"
#include "xalloc.h"

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

int h_session_create(struct req *r)
{
	struct json_object *body = NULL;
	struct auth_login_result res = {0};
	int status;
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
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
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", res.retry_after);
		char msg[300];
		int n = res.busy ? snprintf(msg, sizeof(msg),
		                            "{\"error\":\"too_many_requests\",\"message\":\"too many logins at once; "
		                            "try again in %d second\"}",
		                            res.retry_after)
		                 : snprintf(msg, sizeof(msg),
		                            "{\"error\":\"too_many_requests\",\"message\":\"too many failed logins %s; "
		                            "try again in %d seconds%s\"}",
		                            res.address_locked           ? "from this address"
		                            : res.user_locked_everywhere ? "for this user from many addresses"
		                                                         : "for this user from this address",
		                            res.retry_after,
		                            res.address_locked || res.user_locked_everywhere
		                                ? ", or ask an admin to lift the lock (mrgate user unlock)"
		                                : "");
		status = http_send_raw(r->conn, 429, "application/json", msg, (size_t)n, hdr);
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
