/*
 * tests/gitlab-sim/sim_api.h
 *    The simulated GitLab REST API under /api/v4: authentication, the route table and the handlers.
 *
 * Design: sim_api_handle() runs with s->mu held: it matches the route, authenticates the token
 *    (GITLAB-API.md §1.1 status codes and bodies), checks the scope class, and calls the handler.
 *    Handlers follow one shape: resolve the project/group (404 if invisible, 403 if the role is too
 *    low), validate parameters, change the model, reply.
 *    sim_api.c: tokens, user, groups, projects. sim_api_repo.c: hooks, statuses, MRs, notes, archive.
 * Ownership: handlers own nothing past their return; replies live in struct sim_req.
 */
#ifndef SIM_API_H
#define SIM_API_H

#include "sim_http.h"

/* Route the request (lock held). Leaves the reply in r; r->template_path is set when a route matched. */
void sim_api_handle(struct sim_req *r);
/* Match only (no auth, no handler), for counters and scripts before the lock-free fault stage. */
const char *sim_api_template(struct sim_req *r);

/* Resolve :id (capture k) as a project the token can see with at least min_level, or reply 404/403. */
struct sim_project *sim_api_project(struct sim_req *r, int k, int min_level);
/* The MR :merge_request_iid (capture 1) of project :id (capture 0, Reporter), or NULL after answering 404/403; *p
 * its project (NULL when refused). */
struct sim_mr *sim_api_mr(struct sim_req *r, struct sim_project **p);
/* A new note on m by the request's token user (body copied), recorded in s->notes, which owns it. */
struct sim_note *sim_api_note_new(struct sim_req *r, const struct sim_mr *m, const char *body);
/* Same for a group. */
struct sim_group *sim_api_group(struct sim_req *r, int k, int min_level);
/* Paginate and reply with an array built from items[offset .. offset+count) by render(); frees the vector's array
 * (not the items it points to) and leaves it empty. */
void sim_api_reply_page(struct sim_req *r, struct sim_vec *items,
                        struct json_object *(*render)(struct sim_req *r, void *item));

/* sim_api_repo.c handlers. sim_h_hooks (list, add) and sim_h_hook (get, edit, delete) serve project and group
 * hooks alike. */
void sim_h_hooks(struct sim_req *r);
void sim_h_hook(struct sim_req *r);
void sim_h_hook_test(struct sim_req *r);
void sim_h_group_hook_test(struct sim_req *r);
void sim_h_namespace_get(struct sim_req *r);
void sim_h_status_post(struct sim_req *r);
void sim_h_statuses_list(struct sim_req *r);
void sim_h_commit_get(struct sim_req *r);
void sim_h_commit_mrs(struct sim_req *r);
void sim_h_pipelines_list(struct sim_req *r);
void sim_h_pipeline_get(struct sim_req *r);
void sim_h_mrs_list(struct sim_req *r);
void sim_h_group_mrs_list(struct sim_req *r);
void sim_h_mr_get(struct sim_req *r);
void sim_h_mr_diffs(struct sim_req *r);
void sim_h_mr_changes(struct sim_req *r);
void sim_h_mr_pipelines(struct sim_req *r);
void sim_h_notes_list(struct sim_req *r);
void sim_h_note_get(struct sim_req *r);
void sim_h_note_add(struct sim_req *r);
void sim_h_note_edit(struct sim_req *r);
void sim_h_note_delete(struct sim_req *r);
void sim_h_archive(struct sim_req *r);
void sim_h_compare(struct sim_req *r);

#endif
