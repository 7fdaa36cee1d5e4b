/*
 * tests/gitlab-sim/sim_http.c
 *    Request parsing, parameter access, route matching, GitLab-style pagination and reply writing.
 *
 * Design: CivetWeb runs with decode_url=no, so r->path is the raw path; each segment is decoded
 *    separately. Parameters from the query string, a form body and a JSON body are merged into one
 *    json object (JSON wins), which is how Grape presents them to GitLab's endpoints.
 * Ownership: see sim_http.h.
 */
#include "sim_http.h"

#include <civetweb.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode n bytes of src (plus_is_space for query strings); owned result. */
static char *url_decode(const char *src, size_t n, bool plus_is_space)
{
	char *out = sim_xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (src[i] == '%' && i + 2 < n && hexval((unsigned char)src[i + 1]) >= 0 &&
		    hexval((unsigned char)src[i + 2]) >= 0) {
			out[o++] = (char)(hexval((unsigned char)src[i + 1]) * 16 + hexval((unsigned char)src[i + 2]));
			i += 2;
		} else if (plus_is_space && src[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = src[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void add_param(struct json_object *params, char *key, char *value)
{
	size_t kl = strlen(key);
	if (kl > 2 && strcmp(key + kl - 2, "[]") == 0) {
		key[kl - 2] = '\0';
		struct json_object *arr = NULL;
		if (!json_object_object_get_ex(params, key, &arr) || !json_object_is_type(arr, json_type_array)) {
			arr = json_object_new_array();
			json_object_object_add(params, key, arr);
		}
		json_object_array_add(arr, json_object_new_string(value));
	} else {
		json_object_object_add(params, key, json_object_new_string(value));
	}
}

static void parse_urlencoded(struct json_object *params, const char *data, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && data[j] != '&')
			j++;
		if (j > i) {
			const char *eq = memchr(data + i, '=', j - i);
			size_t klen = eq ? (size_t)(eq - (data + i)) : j - i;
			char *key = url_decode(data + i, klen, true);
			char *val = eq ? url_decode(eq + 1, (size_t)(data + j - (eq + 1)), true) : sim_strdup("");
			if (*key)
				add_param(params, key, val);
			free(key);
			free(val);
		}
		i = j + 1;
	}
}

/* The segments of a path (a request's raw path or a route template) between its slashes, empty ones skipped, at
 * most SIM_MAX_SEGS: where each starts in t and its length. Returns how many. */
static size_t split_path(const char *t, const char *out[SIM_MAX_SEGS], size_t lens[SIM_MAX_SEGS])
{
	size_t n = 0;
	while (*t && n < SIM_MAX_SEGS) {
		while (*t == '/')
			t++;
		if (!*t)
			break;
		const char *e = strchr(t, '/');
		size_t l = e ? (size_t)(e - t) : strlen(t);
		out[n] = t;
		lens[n] = l;
		n++;
		t += l;
	}
	return n;
}

bool sim_req_parse(struct sim_req *r, struct mg_connection *conn, struct sim *s)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	memset(r, 0, sizeof(*r));
	r->conn = conn;
	r->s = s;
	r->method = ri->request_method;
	r->status = 500;
	r->tls = ri->is_ssl != 0;
	r->host = mg_get_header(conn, "Host");
	const char *uri = ri->local_uri_raw ? ri->local_uri_raw : ri->request_uri;
	r->path = sim_strdup(uri ? uri : "/");
	r->query = ri->query_string ? sim_strdup(ri->query_string) : NULL;
	r->params = json_object_new_object();

	/* Segments of the raw path. */
	const char *seg[SIM_MAX_SEGS];
	size_t seg_len[SIM_MAX_SEGS];
	size_t n_segs = split_path(r->path, seg, seg_len);
	for (size_t i = 0; i < n_segs; i++) {
		r->raw_segs[i] = sim_strndup(seg[i], seg_len[i]);
		r->segs[i] = url_decode(seg[i], seg_len[i], false);
	}
	r->n_segs = n_segs;
	if (r->query)
		parse_urlencoded(r->params, r->query, strlen(r->query));

	/* Body: bounded before allocating. */
	long long cl = ri->content_length;
	if (cl > SIM_MAX_BODY)
		return false;
	size_t cap = cl > 0 ? (size_t)cl : 0;
	size_t len = 0;
	char *body = NULL;
	if (cl > 0) {
		body = sim_xmalloc(cap + 1);
		while (len < cap) {
			int n = mg_read(conn, body + len, cap - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	} else if (cl < 0 && (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0)) {
		cap = 65536;
		body = sim_xmalloc(cap + 1);
		for (;;) {
			if (len == cap) {
				if (cap >= SIM_MAX_BODY) {
					free(body);
					return false;
				}
				cap *= 2;
				char *nb = realloc(body, cap + 1);
				if (!nb) {
					free(body);
					return false;
				}
				body = nb;
			}
			int n = mg_read(conn, body + len, cap - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	if (body) {
		body[len] = '\0';
		r->body = body;
		r->body_len = len;
	}
	const char *ct = mg_get_header(conn, "Content-Type");
	if (r->body_len > 0) {
		if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
			parse_urlencoded(r->params, r->body, r->body_len);
		} else if (!ct || strncasecmp(ct, "application/json", 16) == 0) {
			struct json_tokener *tok = json_tokener_new();
			json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
			struct json_object *j = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
			bool ok = j && json_tokener_get_error(tok) == json_tokener_success &&
			          json_tokener_get_parse_end(tok) == r->body_len;
			json_tokener_free(tok);
			if (ok && json_object_is_type(j, json_type_object)) {
				r->body_is_json = true;
				json_object_object_foreach(j, k, v)
				    json_object_object_add(r->params, k, json_object_get(v));
			} else if (!(ok && j)) {
				r->body_invalid = !ct || strncasecmp(ct, "application/json", 16) == 0;
			}
			json_object_put(j);
		}
	}
	return true;
}

void sim_req_free(struct sim_req *r)
{
	free(r->path);
	for (size_t i = 0; i < r->n_segs; i++) {
		free(r->segs[i]);
		free(r->raw_segs[i]);
	}
	free(r->query);
	free(r->body);
	json_object_put(r->params);
	free(r->resp_body);
	free(r->resp_headers);
}

/* --- routing -------------------------------------------------------------------------------------------- */

const struct sim_route *sim_route_match(struct sim_req *r, const struct sim_route *routes, size_t n, bool *path_matched)
{
	*path_matched = false;
	for (size_t i = 0; i < n; i++) {
		const char *ts[SIM_MAX_SEGS];
		size_t tl[SIM_MAX_SEGS];
		size_t nt = split_path(routes[i].template_path, ts, tl);
		if (nt != r->n_segs)
			continue;
		bool ok = true;
		for (size_t k = 0; k < nt && ok; k++) {
			if (ts[k][0] == ':')
				continue;
			ok = strlen(r->raw_segs[k]) == tl[k] && strncmp(ts[k], r->raw_segs[k], tl[k]) == 0;
		}
		if (!ok)
			continue;
		*path_matched = true;
		if (strcmp(routes[i].method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			r->template_path = routes[i].template_path;
			return &routes[i];
		}
	}
	return NULL;
}

const char *sim_req_cap(const struct sim_req *r, int k)
{
	if (!r->template_path)
		return NULL;
	const char *ts[SIM_MAX_SEGS];
	size_t tl[SIM_MAX_SEGS];
	size_t nt = split_path(r->template_path, ts, tl);
	int seen = 0;
	for (size_t i = 0; i < nt && i < r->n_segs; i++) {
		if (ts[i][0] != ':')
			continue;
		if (seen++ == k)
			return r->segs[i];
	}
	return NULL;
}

/* --- parameters ----------------------------------------------------------------------------------------- */

struct json_object *sim_param_json(struct sim_req *r, const char *name)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(r->params, name, &v))
		return NULL;
	return v;
}

bool sim_param_present(struct sim_req *r, const char *name)
{
	struct json_object *v = NULL;
	return json_object_object_get_ex(r->params, name, &v);
}

const char *sim_param(struct sim_req *r, const char *name)
{
	struct json_object *v = sim_param_json(r, name);
	if (!v)
		return NULL;
	if (json_object_is_type(v, json_type_array) || json_object_is_type(v, json_type_object))
		return NULL;
	return json_object_get_string(v);
}

bool sim_param_bool(struct sim_req *r, const char *name, bool *out)
{
	struct json_object *v = sim_param_json(r, name);
	if (!v)
		return false;
	if (json_object_is_type(v, json_type_boolean)) {
		*out = json_object_get_boolean(v);
		return true;
	}
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v) != 0;
		return true;
	}
	if (!json_object_is_type(v, json_type_string))
		return false;
	const char *s = json_object_get_string(v);
	static const char *yes[] = {"true", "1", "t", "yes", "y", "on"};
	static const char *no[] = {"false", "0", "f", "no", "n", "off"};
	for (size_t i = 0; i < 6; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool sim_param_int(struct sim_req *r, const char *name, int64_t *out)
{
	struct json_object *v = sim_param_json(r, name);
	switch (v ? json_object_get_type(v) : json_type_null) {
	case json_type_int: *out = json_object_get_int64(v); return true;
	case json_type_string: return sim_parse_int64(json_object_get_string(v), out);
	default: return false; /* absent, or not a number Grape would coerce */
	}
}

const char *sim_header(struct sim_req *r, const char *name)
{
	return mg_get_header(r->conn, name);
}

/* --- responses ------------------------------------------------------------------------------------------ */

const char *sim_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

void sim_reply_text(struct sim_req *r, int status, const char *content_type, const char *text, size_t len)
{
	free(r->resp_body);
	r->resp_body = sim_xmalloc(len + 1);
	memcpy(r->resp_body, text, len);
	r->resp_body[len] = '\0';
	r->resp_len = len;
	r->status = status;
	r->content_type = content_type;
}

void sim_reply_json(struct sim_req *r, int status, struct json_object *body)
{
	size_t len = 0;
	const char *s = json_object_to_json_string_length(body, SIM_JSON_TEXT, &len);
	sim_reply_text(r, status, "application/json", s, len);
	json_object_put(body);
}

void sim_reply_message(struct sim_req *r, int status, const char *message)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string(message));
	sim_reply_json(r, status, o);
}

void sim_reply_error(struct sim_req *r, int status, const char *error)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(error));
	sim_reply_json(r, status, o);
}

void sim_add_header(struct sim_req *r, const char *name, const char *value)
{
	char *line = sim_printf("%s%s: %s\r\n", r->resp_headers ? r->resp_headers : "", name, value);
	free(r->resp_headers);
	r->resp_headers = line;
}

/* The request's URL with page/per_page replaced, for the link header. Owned result. */
static char *page_url(struct sim_req *r, size_t page, size_t per_page)
{
	size_t cap = strlen(r->path) + (r->query ? strlen(r->query) : 0) + 256 + (r->host ? strlen(r->host) : 0);
	char *out = sim_xmalloc(cap);
	int n = snprintf(out, cap, "%s://%s%s?", r->tls ? "https" : "http", r->host ? r->host : "localhost", r->path);
	size_t o = n > 0 ? (size_t)n : 0;
	const char *q = r->query ? r->query : "";
	while (*q) {
		const char *e = strchr(q, '&');
		size_t l = e ? (size_t)(e - q) : strlen(q);
		bool skip =
		    (l >= 5 && strncmp(q, "page=", 5) == 0) || (l >= 9 && strncmp(q, "per_page=", 9) == 0) || l == 0;
		if (!skip && o + l + 2 < cap) {
			memcpy(out + o, q, l);
			o += l;
			out[o++] = '&';
		}
		q += l;
		if (*q == '&')
			q++;
	}
	snprintf(out + o, cap - o, "page=%zu&per_page=%zu", page, per_page);
	return out;
}

void sim_paginate(struct sim_req *r, size_t total, size_t *offset_out, size_t *count_out)
{
	int64_t page = 1, per_page = 20;
	if (!sim_param_int(r, "page", &page) || page < 1)
		page = 1;
	if (!sim_param_int(r, "per_page", &per_page) || per_page < 1)
		per_page = 20;
	if (per_page > 100)
		per_page = 100;
	size_t pp = (size_t)per_page, pg = (size_t)page;
	size_t pages = total == 0 ? 1 : (total + pp - 1) / pp;
	size_t offset = (pg - 1) * pp;
	size_t count = offset >= total ? 0 : (total - offset < pp ? total - offset : pp);
	bool show_total = total <= SIM_LIST_COUNT_LIMIT;
	bool has_next = offset + count < total;
	char buf[32];

	char *link = sim_strdup("");
	if (pg > 1) {
		char *u = page_url(r, pg - 1, pp);
		char *l = sim_printf("%s%s<%s>; rel=\"prev\"", link, *link ? ", " : "", u);
		free(u);
		free(link);
		link = l;
	}
	if (has_next) {
		char *u = page_url(r, pg + 1, pp);
		char *l = sim_printf("%s%s<%s>; rel=\"next\"", link, *link ? ", " : "", u);
		free(u);
		free(link);
		link = l;
	}
	{
		char *u = page_url(r, 1, pp);
		char *l = sim_printf("%s%s<%s>; rel=\"first\"", link, *link ? ", " : "", u);
		free(u);
		free(link);
		link = l;
	}
	if (show_total) {
		char *u = page_url(r, pages, pp);
		char *l = sim_printf("%s, <%s>; rel=\"last\"", link, u);
		free(u);
		free(link);
		link = l;
	}
	sim_add_header(r, "Link", link);
	free(link);
	snprintf(buf, sizeof(buf), "%zu", pg + 1);
	sim_add_header(r, "X-Next-Page", has_next ? buf : "");
	snprintf(buf, sizeof(buf), "%zu", pg);
	sim_add_header(r, "X-Page", buf);
	snprintf(buf, sizeof(buf), "%zu", pp);
	sim_add_header(r, "X-Per-Page", buf);
	snprintf(buf, sizeof(buf), "%zu", pg - 1);
	sim_add_header(r, "X-Prev-Page", pg > 1 ? buf : "");
	if (show_total) {
		snprintf(buf, sizeof(buf), "%zu", total);
		sim_add_header(r, "X-Total", buf);
		snprintf(buf, sizeof(buf), "%zu", pages);
		sim_add_header(r, "X-Total-Pages", buf);
	}
	*offset_out = offset > total ? total : offset;
	*count_out = count;
}

void sim_send(struct sim_req *r)
{
	if (r->drop)
		return;
	bool head = strcmp(r->method, "HEAD") == 0;
	bool no_body = r->status == 204 || r->status == 304;
	mg_printf(r->conn,
	          "HTTP/1.1 %d %s\r\n"
	          "Content-Type: %s\r\n"
	          "Content-Length: %zu\r\n"
	          "Cache-Control: no-cache\r\n"
	          "X-Content-Type-Options: nosniff\r\n"
	          "%s\r\n",
	          r->status, sim_status_text(r->status), r->content_type ? r->content_type : "application/json",
	          no_body ? 0 : r->resp_len, r->resp_headers ? r->resp_headers : "");
	if (!head && !no_body && r->resp_len)
		mg_write(r->conn, r->resp_body, r->resp_len);
}
