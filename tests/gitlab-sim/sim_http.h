/*
 * tests/gitlab-sim/sim_http.h
 *    One HTTP exchange of the simulator: the parsed request (raw path segments, merged parameters,
 *    the authenticated token) and the response being built (status, headers, body).
 *
 * Design: handlers never write to the socket. They fill req->status/req->body/headers and return;
 *    sim_main.c decorates the reply (rate-limit headers, counters) and writes it once, after the
 *    model mutex is released. Routes are one table per API (sim_api.c, sim_control.c), matched
 *    segment by segment on the *raw* path so that %2F inside a group or project id stays one segment.
 * Ownership: everything hanging off struct sim_req is freed by sim_req_free().
 */
#ifndef SIM_HTTP_H
#define SIM_HTTP_H

#include "sim_state.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

struct mg_connection;

#define SIM_MAX_SEGS 16
#define SIM_MAX_BODY (8 * 1024 * 1024)

struct sim_req {
	struct mg_connection *conn;
	struct sim *s;
	const char *method;
	char *path;               /* raw (still percent-encoded), no query */
	char *segs[SIM_MAX_SEGS]; /* decoded segments */
	char *raw_segs[SIM_MAX_SEGS];
	size_t n_segs;
	char *query; /* raw query string or NULL */
	char *body;
	size_t body_len;
	struct json_object *params; /* query + form + JSON body merged (JSON values keep their types) */
	bool body_is_json;
	bool body_invalid;         /* a JSON body that did not parse */
	struct sim_token *token;   /* borrowed; set by sim_api_authenticate */
	const char *template_path; /* the matched route's template, for counters and scripts */
	const char *host;          /* Host header, for pagination links */
	bool tls;

	/* Response. */
	int status;
	char *resp_body;
	size_t resp_len;
	const char *content_type;
	char *resp_headers; /* "Name: value\r\n" lines */
	bool drop;          /* close the connection without answering */
};

/* A route: method, template ("/api/v4/projects/:id/hooks/:hook_id"), handler. */
struct sim_route {
	const char *method;
	const char *template_path;
	void (*handler)(struct sim_req *r);
	int scope_class; /* SIM_SCOPE_CLASS_* */
};

#define SIM_SCOPE_CLASS_DEFAULT 0 /* api, or read_api on GET/HEAD */
#define SIM_SCOPE_CLASS_ANY     1 /* any scope (personal_access_tokens/self) */
#define SIM_SCOPE_CLASS_USER    2 /* api, read_api, read_user (GET /user) */

/* Request lifetime. sim_req_parse reads the body (bounded); returns false if it was too large. */
bool sim_req_parse(struct sim_req *r, struct mg_connection *conn, struct sim *s);
void sim_req_free(struct sim_req *r);

/* Route matching: returns the matched route or NULL. With path_matched set, a route with the same path but
   another method exists (the caller answers 405/404 as GitLab would). */
const struct sim_route *sim_route_match(struct sim_req *r, const struct sim_route *routes, size_t n,
                                        bool *path_matched);
/* The decoded value of the k-th ":name" segment of the matched template. */
const char *sim_req_cap(const struct sim_req *r, int k);

/* Parameters (borrowed results). */
const char *sim_param(struct sim_req *r, const char *name); /* string form, or NULL */
struct json_object *sim_param_json(struct sim_req *r, const char *name);
bool sim_param_present(struct sim_req *r, const char *name);
bool sim_param_bool(struct sim_req *r, const char *name, bool *out); /* false if absent or invalid */
bool sim_param_int(struct sim_req *r, const char *name, int64_t *out);
const char *sim_header(struct sim_req *r, const char *name);

/* Responses. sim_reply_json takes ownership of body (json_object_put after serialising). */
void sim_reply_json(struct sim_req *r, int status, struct json_object *body);
void sim_reply_text(struct sim_req *r, int status, const char *content_type, const char *text, size_t len);
void sim_reply_message(struct sim_req *r, int status, const char *message); /* {"message": ...} */
void sim_reply_error(struct sim_req *r, int status, const char *error);     /* {"error": ...} */
void sim_add_header(struct sim_req *r, const char *name, const char *value);
const char *sim_status_text(int status);

/* Offset pagination over `total` items: reads page/per_page, sets GitLab's headers, returns the slice. */
void sim_paginate(struct sim_req *r, size_t total, size_t *offset_out, size_t *count_out);

/* Write the finished response to the socket (called without the mutex held). */
void sim_send(struct sim_req *r);

#endif
