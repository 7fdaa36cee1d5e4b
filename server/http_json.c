/*
 * server/http_json.c
 *    JSON in and out, error bodies, status mapping.
 */
#include "http_json.h"

#include "buf.h"
#include "json_util.h"
#include "xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int http_status_of(enum core_status st)
{
	switch (st) {
	case CORE_OK: return 200;
	case CORE_EINVAL: return 400;
	case CORE_EUNAUTH: return 401;
	case CORE_EFORBIDDEN: return 403;
	case CORE_ENOTFOUND: return 404;
	case CORE_ECONFLICT: return 409;
	case CORE_ESTATE: return 409;
	case CORE_ETOOLARGE: return 413;
	case CORE_ETHROTTLED: return 429;
	case CORE_EUPSTREAM: return 502;
	case CORE_EUNAVAIL: return 503;
	case CORE_ETIMEOUT: return 504;
	case CORE_ECRYPTO: return 500;
	case CORE_ENOMEM: return 500;
	case CORE_EINTERNAL: return 500;
	case CORE_STATUS_COUNT: break;
	}
	return 500;
}

static const char *reason(int status)
{
	const char *r = mg_get_response_code_text(NULL, status);
	return r ? r : "";
}

/* The headers every response carries (API, files, errors); HSTS is added when serving TLS. */
#define SECURITY_HEADERS                                                                                               \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "     \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"       \
	"X-Content-Type-Options: nosniff\r\n"                                                                          \
	"X-Frame-Options: DENY\r\n"                                                                                    \
	"Referrer-Policy: same-origin\r\n"
#define HSTS_HEADER "Strict-Transport-Security: max-age=31536000\r\n"

static bool tls_on;

void http_security_init(bool tls)
{
	tls_on = tls;
}

const char *http_security_headers(void)
{
	return tls_on ? SECURITY_HEADERS HSTS_HEADER : SECURITY_HEADERS;
}

int http_send_raw_cache(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len,
                        const char *extra_headers, const char *cache_control)
{
	if (status == 304)
		len = 0;
	/* Headers and body leave in one write: a second small write would wait for the peer's delayed ACK when
	 * TCP_NODELAY is off (main.c sets it too). A HEAD answer (body NULL) says the length and sends no body. */
	struct buf b = {0};
	buf_printf(&b,
	           "HTTP/1.1 %d %s\r\n"
	           "Content-Type: %s\r\n"
	           "Content-Length: %zu\r\n"
	           "Cache-Control: %s\r\n"
	           "%s"
	           "%s"
	           "\r\n",
	           status, reason(status), content_type, len, cache_control, http_security_headers(),
	           extra_headers ? extra_headers : "");
	if (body && len)
		buf_append(&b, body, len);
	mg_write(conn, b.p, b.len);
	buf_free(&b);
	return status;
}

int http_send_raw(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers)
{
	return http_send_raw_cache(conn, status, content_type, body, len, extra_headers, "no-store");
}

int http_send_json(struct mg_connection *conn, int status, struct json_object *obj)
{
	size_t len = 0;
	const char *s =
	    json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	http_send_raw(conn, status, "application/json", s, len, NULL);
	json_object_put(obj);
	return status;
}

static int send_verror(struct mg_connection *conn, int status, const char *code, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct json_object *o = jx_object();
	json_object_object_add(o, "error", jx_str(code));
	json_object_object_add(o, "message", jx_str(msg));
	return http_send_json(conn, status, o);
}

int http_send_error(struct mg_connection *conn, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = send_verror(conn, status, code, fmt, ap);
	va_end(ap);
	return r;
}

int http_send_status(struct mg_connection *conn, enum core_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = send_verror(conn, http_status_of(st), core_status_code(st), fmt, ap);
	va_end(ap);
	return r;
}

static int send_vfailure(struct mg_connection *conn, enum core_status st, const char *failed, const char *missing_fmt,
                         va_list ap)
{
	if (st != CORE_ENOTFOUND || !missing_fmt)
		return http_send_status(conn, st, "%s", failed);
	return send_verror(conn, 404, "not_found", missing_fmt, ap);
}

int http_send_failure(struct mg_connection *conn, enum core_status st, const char *failed, const char *missing_fmt, ...)
{
	va_list ap;
	va_start(ap, missing_fmt);
	int r = send_vfailure(conn, st, failed, missing_fmt, ap);
	va_end(ap);
	return r;
}

int http_send_read(struct mg_connection *conn, enum core_status st, struct json_object *o, const char *failed,
                   const char *missing_fmt, ...)
{
	if (st == CORE_OK)
		return http_send_json(conn, 200, o);
	json_object_put(o);
	va_list ap;
	va_start(ap, missing_fmt);
	int r = send_vfailure(conn, st, failed, missing_fmt, ap);
	va_end(ap);
	return r;
}

bool http_read_body(struct mg_connection *conn, size_t cap, char **body_out, size_t *len_out, int *status_out)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	*body_out = NULL;
	*len_out = 0;
	if (ri->content_length > 0 && (unsigned long long)ri->content_length > cap) {
		*status_out =
		    http_send_error(conn, 413, "too_large", "the request body is %lld bytes; the limit is %zu",
		                    ri->content_length, cap);
		return false;
	}
	/* Known length: checked above. Unknown (chunked): the buffer stops one byte past cap, which is refused. */
	struct buf b = {.max = cap + 1};
	char chunk[16384];
	int n;
	while (b.len <= cap && (n = mg_read(conn, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	if (b.len > cap) {
		buf_free(&b);
		*status_out =
		    http_send_error(conn, 413, "too_large", "the request body exceeds the limit of %zu bytes", cap);
		return false;
	}
	*len_out = b.len;
	*body_out = buf_steal(&b);
	return true;
}

/* Whether text is the JSON literal null, with whitespace around it. */
static bool is_null_document(const char *text, size_t len)
{
	size_t a = 0, b = len;
	while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r' || text[a] == '\n'))
		a++;
	while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r' || text[b - 1] == '\n'))
		b--;
	return b - a == 4 && memcmp(text + a, "null", 4) == 0;
}

bool http_read_json(struct mg_connection *conn, size_t cap, struct json_object **obj_out, int *status_out)
{
	char *body = NULL;
	size_t len = 0;
	char err[256];
	*obj_out = NULL;
	const char *type = mg_get_header(conn, "Content-Type");
	size_t tlen = type ? strcspn(type, "; \t") : 0;
	if (!type || tlen != strlen("application/json") || strncasecmp(type, "application/json", tlen) != 0) {
		*status_out = http_send_error(conn, 415, "unsupported_media_type",
		                              "send the request body as JSON, with Content-Type: application/json");
		return false;
	}
	if (!http_read_body(conn, cap, &body, &len, status_out))
		return false;
	struct json_object *obj = NULL;
	size_t at = 0;
	enum core_status st = CORE_EINVAL;
	if (json_text_has_nul(body, len, &at))
		snprintf(err, sizeof(err),
		         "invalid JSON at byte %zu: a string contains a NUL character (\\u0000), which mrgate does not "
		         "accept",
		         at);
	else if (json_text_has_lone_surrogate(body, len, &at))
		snprintf(
		    err, sizeof(err),
		    "invalid JSON at byte %zu: a \\u escape is half of a UTF-16 surrogate pair without its other half "
		    "(it encodes no character)",
		    at);
	else if (is_null_document(body, len))
		/* json-c reads a top-level null as a document still to come ("ends early") */
		snprintf(err, sizeof(err), "the request body is null: it must be a JSON object");
	else
		st = json_parse_strict(body, len, &obj, err, sizeof(err));
	free(body);
	if (st != CORE_OK) {
		*status_out = http_send_error(conn, st == CORE_ETOOLARGE ? 413 : 400, "invalid_json", "%s", err);
		return false;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		*status_out = http_send_error(conn, 400, "invalid_json", "the request body must be a JSON object");
		return false;
	}
	*obj_out = obj;
	return true;
}

bool http_query_param(const struct mg_request_info *ri, const char *name, char *out, size_t cap)
{
	if (!ri->query_string)
		return false;
	int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, out, cap);
	return n >= 0;
}

bool http_query_text(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, char *out,
                     size_t cap, bool *present, int *status)
{
	*present = false;
	out[0] = '\0';
	if (!ri->query_string)
		return true;
	int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, out, cap);
	if (n == -2) {
		out[0] = '\0';
		*status =
		    http_send_error(conn, 400, "invalid_input", "%s must be at most %zu characters", name, cap - 1);
		return false;
	}
	if (n >= 0 && strlen(out) != (size_t)n) {
		out[0] = '\0';
		*status = http_send_error(conn, 400, "invalid_input", "%s must not contain a NUL character", name);
		return false;
	}
	*present = n >= 0;
	return true;
}

bool http_query_bool(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, int *out,
                     int *status)
{
	char v[8];
	if (!ri->query_string)
		return true;
	int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, v, sizeof(v));
	if (n == -1)
		return true;
	if (n >= 0 && strlen(v) == (size_t)n && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
		*out = strcmp(v, "true") == 0;
		return true;
	}
	*status = http_send_error(conn, 400, "invalid_input", "%s must be true or false", name);
	return false;
}

bool http_cookie(struct mg_connection *conn, const char *name, char *out, size_t cap)
{
	const char *h = mg_get_header(conn, "Cookie");
	if (!h)
		return false;
	return mg_get_cookie(h, name, out, cap) >= 0;
}

bool http_query_limit(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, long lo, long hi,
                      long *out, int *status)
{
	char buf[32];
	if (!http_query_param(ri, name, buf, sizeof(buf)))
		return true;
	/* digits only, as a path's id (routes.c): strtol alone takes "+5", " 5" and "05" */
	size_t len = strlen(buf);
	bool digits = len > 0 && strspn(buf, "0123456789") == len && (buf[0] != '0' || len == 1);
	char *end;
	errno = 0;
	long v = digits ? strtol(buf, &end, 10) : 0;
	if (!digits || errno || v < lo || v > hi) {
		*status =
		    http_send_error(conn, 400, "invalid_input", "%s must be an integer from %ld to %ld", name, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

bool http_query_cursor(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, int64_t *out,
                       int *status)
{
	char buf[40];
	*out = 0;
	if (!http_query_param(ri, name, buf, sizeof(buf)) || !buf[0])
		return true;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (end == buf || *end || errno || v <= 0) {
		*status = http_send_error(conn, 400, "invalid_input",
		                          "%s must be the next_cursor of a previous page (start without it)", name);
		return false;
	}
	*out = v;
	return true;
}
