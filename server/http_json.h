/*
 * server/http_json.h
 *    Reading and writing JSON over CivetWeb, error bodies, and the one map from core_status to HTTP status.
 *
 * Design: handlers read bodies with http_read_json(), which enforces the body cap before allocating (CivetWeb
 * only caps headers), parses strictly (json_util.h) and, on any problem, has already answered with a 4xx
 * {"error","message"} body. Every reply goes through http_send_json / http_send_error so that headers
 * (Content-Type, no-store caching, nosniff) are uniform. Error messages follow PostgreSQL's style: lower case,
 * no final period, say why.
 * Ownership: http_send_json takes ownership of the object (json_object_put after writing). http_read_json
 * returns a tree owned by the caller.
 */
#ifndef MRGATE_SERVER_HTTP_JSON_H
#define MRGATE_SERVER_HTTP_JSON_H

#include "status.h"

#include <civetweb.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* The HTTP status for a core status (CORE_OK -> 200). */
int http_status_of(enum core_status st);

/* Send obj with the given status; takes ownership of obj. Returns status. */
int http_send_json(struct mg_connection *conn, int status, struct json_object *obj);
/* Security headers (CSP, frame-ancestors, nosniff, ...; HSTS when tls) on every response: set once at start. */
void http_security_init(bool tls);
/* The header lines ("Name: value\r\n"...), a static string. */
const char *http_security_headers(void);
/* Send raw bytes with a content type and a Cache-Control value, headers and body in one write; a NULL body sends
 * only the headers, with Content-Length len (HEAD: the length a GET would get). */
int http_send_raw_cache(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len,
                        const char *extra_headers, const char *cache_control);
/* Send raw bytes with a content type (Cache-Control: no-store). Returns status. */
int http_send_raw(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers);
/* {"error": code, "message": ...}. Returns status. */
int http_send_error(struct mg_connection *conn, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error for a core status: code from core_status_code(), HTTP status from http_status_of(). */
int http_send_status(struct mg_connection *conn, enum core_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * The answer of a failed call (st != CORE_OK): 404 "not_found" with the message missing_fmt (when not NULL) for
 * CORE_ENOTFOUND; any other status's own error with the message failed.
 */
int http_send_failure(struct mg_connection *conn, enum core_status st, const char *failed, const char *missing_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The answer of a read: 200 with o on CORE_OK, else as http_send_failure. Takes ownership of o (NULL is fine). */
int http_send_read(struct mg_connection *conn, enum core_status st, struct json_object *o, const char *failed,
                   const char *missing_fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Read the whole request body, refusing more than cap bytes (413) before allocating, and a missing or
 * chunked-too-long body. On failure the error reply has been sent and *status_out holds it.
 * Ownership: *body_out is malloc'd and NUL-terminated; the caller frees it.
 */
bool http_read_body(struct mg_connection *conn, size_t cap, char **body_out, size_t *len_out, int *status_out);

/*
 * Read the body and parse it as a JSON object; a body not sent as Content-Type application/json is a 415 before it is
 * read (a form on another site can post text/plain with no CORS preflight: no write reads one). On failure the 4xx
 * has been sent and *status_out holds it.
 */
bool http_read_json(struct mg_connection *conn, size_t cap, struct json_object **obj_out, int *status_out);

/*
 * Paging is one convention (limit, cursor -> next_cursor) written once in core/rows.h; handlers read the two
 * query values with http_query_limit / http_query_cursor below and pass them to the core read model.
 */
/*
 * A limit query parameter (`limit`, `items_limit`): true with *out unchanged (the caller's default) when absent,
 * true with *out in lo..hi when it is an integer there; false after answering 400 ("<name> must be an integer
 * from lo to hi") otherwise.
 */
bool http_query_limit(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, long lo, long hi,
                      long *out, int *status);
/* A cursor query parameter (a previous next_cursor): true with *out = 0 when absent; false after answering 400. */
bool http_query_cursor(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, int64_t *out,
                       int *status);

/* Value of a query-string parameter, URL-decoded into out; false when absent. */
bool http_query_param(const struct mg_request_info *ri, const char *name, char *out, size_t cap);
/* The same for a value that must not be cut (a path, a search, a cursor): a value longer than cap - 1 is refused
 * (false after answering 400, *status); else true with *present telling whether it was given. */
bool http_query_text(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, char *out,
                     size_t cap, bool *present, int *status);

/* A true/false query parameter: true with *out 1 or 0 when given so, *out untouched when absent; false after
 * answering 400 ("<name> must be true or false") for anything else, a NUL or a cut value included. */
bool http_query_bool(struct mg_connection *conn, const struct mg_request_info *ri, const char *name, int *out,
                     int *status);

/* Value of a cookie from the Cookie header into out; false when absent. */
bool http_cookie(struct mg_connection *conn, const char *name, char *out, size_t cap);

#endif
