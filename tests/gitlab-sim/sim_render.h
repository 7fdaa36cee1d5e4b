/*
 * tests/gitlab-sim/sim_render.h
 *    JSON entities as GitLab's REST API renders them (keys and JSON types of the documented examples).
 *
 * Design: the static part of each large entity is a JSON template parsed once and deep-copied per
 *    render; the dynamic fields are set on the copy. Listings write projects as text instead
 *    (sim_render_project_text), the same bytes without the tree. Call with s->mu held.
 * Ownership: every function returns a new json_object the caller owns (json_object_put).
 */
#ifndef SIM_RENDER_H
#define SIM_RENDER_H

#include "sim_state.h"

enum sim_project_view {
	SIM_PROJECT_SIMPLE, /* BasicProjectDetails (simple=true) */
	SIM_PROJECT_LIST,   /* Entities::Project (GET /groups/:id/projects): no permissions */
	SIM_PROJECT_ACCESS, /* ProjectWithAccess (GET /projects): with permissions */
	SIM_PROJECT_DETAIL  /* GET /projects/:id */
};

void sim_render_init(void);

struct json_object *sim_render_user_basic(const struct sim *s, const struct sim_user *u);
struct json_object *sim_render_user_self(const struct sim *s, const struct sim_user *u);
struct json_object *sim_render_pat(const struct sim_token *t);
struct json_object *sim_render_group(const struct sim *s, const struct sim_group *g);
struct json_object *sim_render_namespace(const struct sim *s, const struct sim_group *g);
struct json_object *sim_render_project(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                                       enum sim_project_view view);
/* What serialising sim_render_project(s, p, t, view) with SIM_JSON_TEXT gives, byte for byte, appended to b; for the
 * list views (SIMPLE, LIST, ACCESS) written without building the tree (sim_render.c says how). */
void sim_render_project_text(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                             enum sim_project_view view, struct sim_buf *b);
/*
 * sim_render_project_text in two parts, for a page written without s->mu: _unchecked writes the text; _check (s->mu
 * held again) aborts when GITLAB_SIM_CHECK_RENDER is on and text (text_len bytes) is not the tree's, byte for byte.
 * _pure is true when _unchecked reads p, its groups and t without writing to anything (no value of the project is
 * serialised by json-c, which writes into the value's own buffer): it may then run without s->mu while nothing
 * changes projects, groups or tokens (struct sim's renders).
 */
void sim_render_project_text_unchecked(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                                       enum sim_project_view view, struct sim_buf *b);
void sim_render_project_text_check(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                                   enum sim_project_view view, const char *text, size_t text_len);
bool sim_render_project_text_pure(const struct sim_project *p, enum sim_project_view view);
struct json_object *sim_render_hook(const struct sim_hook *h);
struct json_object *sim_render_pipeline(const struct sim *s, const struct sim_pipeline *pl, bool detail);
struct json_object *sim_render_status(const struct sim *s, const struct sim_status *st);
struct json_object *sim_render_mr(struct sim *s, const struct sim_mr *mr, const struct sim_token *t);
struct json_object *sim_render_note(const struct sim *s, const struct sim_note *n);

/* Project settings that PUT /projects/:id may change: their defaults (owned copy). */
struct json_object *sim_project_default_settings(void);
/* The value of one setting (borrowed). */
struct json_object *sim_project_setting(const struct sim_project *p, const char *key);

/* Small helpers. */
struct json_object *sim_json_str_or_null(const char *s);
/* A new JSON string formatted as by sim_printf. */
struct json_object *sim_json_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
