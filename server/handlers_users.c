/*
 * server/handlers_users.c
 *    Users and API tokens, for admins: GET/POST /api/users, PATCH/DELETE /api/users/{id}, GET /api/tokens,
 *    DELETE /api/tokens/{id}. The route table (routes.c) lets only admins in.
 */
#include "http_json.h"
#include "jsonx.h"
#include "routes.h"
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ?limit=&cursor= (and an optional positive id parameter); false when a 400 was sent. */
static bool page_params(struct req *r, int *limit, int64_t *cursor, const char *id_name, int64_t *id, int *status)
{
	char buf[32];
	*limit = 0;
	*cursor = 0;
	if (http_query_param(r->ri, "limit", buf, sizeof(buf)) && buf[0]) {
		int64_t v;
		if (!parse_positive_id(buf, &v) || v > USERS_PAGE_MAX) {
			*status = http_send_error(r->conn, 400, "invalid_input", "limit must be from 1 to %d",
			                          USERS_PAGE_MAX);
			return false;
		}
		*limit = (int)v;
	}
	if (http_query_param(r->ri, "cursor", buf, sizeof(buf)) && buf[0] && !parse_positive_id(buf, cursor)) {
		*status =
		    http_send_error(r->conn, 400, "invalid_input", "cursor must be the next_cursor of a previous page");
		return false;
	}
	if (id_name && http_query_param(r->ri, id_name, buf, sizeof(buf)) && buf[0] && !parse_positive_id(buf, id)) {
		*status = http_send_error(r->conn, 400, "invalid_input", "%s must be a positive integer", id_name);
		return false;
	}
	return true;
}

/* Only the named members may appear in body; else a 400 naming the first other one. */
/* No argon2id slot freed up in time (core/auth.h): 429 with Retry-After. */
static int send_busy(struct req *r)
{
	static const char body[] = "{\"error\":\"too_many_requests\",\"message\":\"the server is busy hashing "
	                           "passwords; try again in a second\"}";
	return http_send_raw(r->conn, 429, "application/json", body, sizeof(body) - 1, "Retry-After: 1\r\n");
}

static bool user_id(struct req *r, int64_t *id, int *status)
{
	return req_path_id(r, "the user id must be a positive integer", id, status);
}

static bool read_role(struct req *r, struct json_object *body, bool required, enum auth_role *role, int *status)
{
	struct json_object *v = NULL;
	const char *s = NULL;
	/* present as null is refused, not read as "leave it" */
	if (!json_object_object_get_ex(body, "role", &v) && !required)
		return true;
	if (!jsonx_as_str(v, &s) || !auth_role_parse(s, role)) {
		*status = http_send_error(r->conn, 400, "invalid_input",
		                          "field \"role\" must be \"admin\", \"editor\" or \"viewer\"%s",
		                          v || !json_object_object_get_ex(body, "role", NULL) ? "" : " (not null)");
		return false;
	}
	return true;
}

int h_users_list(struct req *r)
{
	int limit, status;
	int64_t cursor;
	if (!page_params(r, &limit, &cursor, NULL, NULL, &status))
		return status;
	struct json_object *o = NULL;
	enum core_status st = users_list(r->app->db, limit, cursor, &o);
	return http_send_read(r->conn, st, o, "could not list users", NULL);
}

int h_user_create(struct req *r)
{
	static const char *const fields[] = {"username", "password", "role", NULL};
	struct json_object *body = NULL, *o = NULL;
	int status;
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	const char *name = NULL, *pw = NULL;
	enum auth_role role = AUTH_ROLE_VIEWER;
	if (!req_only_fields(r, body, fields, &status) || !read_role(r, body, false, &role, &status))
		goto out;
	if (!jsonx_str(body, "username", &name) || !*name) {
		status =
		    http_send_error(r->conn, 400, "invalid_input", "field \"username\" must be a non-empty string");
		goto out;
	}
	if (!jsonx_str(body, "password", &pw)) {
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "field \"password\" must be a string: a password of " AUTH_PASSWORD_RULE);
		goto out;
	}
	const char *problem = auth_password_problem(pw, name);
	if (problem) {
		status =
		    http_send_error(r->conn, 400, "invalid_input",
		                    "the password %s: choose another (a password has " AUTH_PASSWORD_RULE ")", problem);
		goto out;
	}
	int64_t id = 0;
	enum core_status st = auth_user_add(r->app->db, r->who.actor, name, pw, role, &id);
	if (st == CORE_EINVAL)
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "field \"username\" must be 1 to 64 of A-Z a-z 0-9 . _ @ -");
	else if (st == CORE_ECONFLICT)
		status = http_send_error(r->conn, 409, "conflict",
		                         "a user named \"%s\" already exists (names are compared ignoring case)", name);
	else if (st == CORE_ETHROTTLED)
		status = send_busy(r);
	else if (st != CORE_OK)
		status = http_send_status(r->conn, st, "could not create the user");
	else if ((st = users_get(r->app->db, id, &o)) != CORE_OK)
		status = http_send_status(r->conn, st, "the user was created but could not be read back");
	else
		status = http_send_json(r->conn, 201, o);
out:
	json_object_put(body);
	return status;
}

int h_user_update(struct req *r)
{
	static const char *const fields[] = {"role", "disabled", "password", NULL};
	struct json_object *body = NULL, *o = NULL;
	int64_t id;
	int status;
	char msg[600];
	if (!user_id(r, &id, &status))
		return status;
	if (!http_read_json(r->conn, r->app->cfg.max_body_bytes, &body, &status))
		return status;
	struct users_change ch = {.role = AUTH_ROLE_NONE, .disabled = -1, .password = NULL};
	if (!req_only_fields(r, body, fields, &status) || !read_role(r, body, false, &ch.role, &status))
		goto out;
	bool d = false, has_d = false;
	if (!req_bool(r, body, "disabled", &d, &has_d, &status))
		goto out;
	if (has_d)
		ch.disabled = d ? 1 : 0;
	if (json_object_object_get_ex(body, "password", NULL) && !jsonx_str(body, "password", &ch.password)) {
		status = http_send_error(
		    r->conn, 400, "invalid_input", "field \"password\" must be a string%s",
		    jsonx_get(body, "password") ? "" : " (not null: leave it out to keep the password)");
		goto out;
	}
	if (ch.role == AUTH_ROLE_NONE && ch.disabled < 0 && !ch.password) {
		status = http_send_error(r->conn, 400, "invalid_input",
		                         "nothing to change: send \"role\", \"disabled\" or \"password\"");
		goto out;
	}
	enum core_status st = users_update(r->app->db, r->who.actor, r->who.user_id, id, &ch, &o, msg, sizeof(msg));
	if (st == CORE_ENOTFOUND)
		status = http_send_error(r->conn, 404, "not_found", "no user %lld", (long long)id);
	else if (st == CORE_EINVAL || st == CORE_ECONFLICT)
		status = http_send_error(r->conn, http_status_of(st), core_status_code(st), "%s", msg);
	else if (st == CORE_ETHROTTLED)
		status = send_busy(r);
	else if (st != CORE_OK)
		status = http_send_status(r->conn, st, "could not change user %lld", (long long)id);
	else
		status = http_send_json(r->conn, 200, o);
out:
	json_object_put(body);
	return status;
}

int h_user_delete(struct req *r)
{
	int64_t id;
	int status;
	char msg[200];
	if (!user_id(r, &id, &status))
		return status;
	enum core_status st = users_delete(r->app->db, r->who.actor, r->who.user_id, id, msg, sizeof(msg));
	if (st == CORE_ENOTFOUND)
		return http_send_error(r->conn, 404, "not_found", "no user %lld", (long long)id);
	if (st == CORE_ECONFLICT)
		return http_send_error(r->conn, 409, "conflict", "%s", msg);
	if (st != CORE_OK)
		return http_send_status(r->conn, st, "could not delete user %lld", (long long)id);
	return http_send_raw(r->conn, 204, "application/json", "", 0, NULL);
}

int h_tokens_list(struct req *r)
{
	int limit, status;
	int64_t cursor, user = 0;
	if (!page_params(r, &limit, &cursor, "user_id", &user, &status))
		return status;
	struct json_object *o = NULL;
	enum core_status st = tokens_list(r->app->db, limit, cursor, user, &o);
	return http_send_read(r->conn, st, o, "could not list API tokens", NULL);
}

int h_token_delete(struct req *r)
{
	static const struct req_delete how = {"the token id must be a positive integer", tokens_delete,
	                                      "could not delete the API token", "no API token %lld"};
	return req_delete_by_id(r, &how);
}
