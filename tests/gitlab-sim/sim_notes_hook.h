/*
 * tests/gitlab-sim/sim_notes_hook.h
 *    Comment events (X-Gitlab-Event: Note Hook) of merge request notes, and GET /projects/:id/members/all/:user_id.
 *
 * Design: GitLab fires a comment event when a note is created or edited (doc/user/project/integrations/
 *    webhook_events.md "Comment events": object_attributes.action create | update, GitLab 16.11+); an internal note
 *    goes only to hooks with confidential_note_events ("Confidential Note Hook", event_type confidential_note). The
 *    members endpoint (doc/api/members.md "Get a member of a group or project, including inherited members") answers
 *    the user's effective level on the project, memberships inherited from its groups included, and 404 for a user
 *    who is not a member.
 * Threading: s->mu held, as every handler and event of the simulator.
 * Ownership: nothing is returned; deliveries are queued in s->deliveries.
 */
#ifndef SIM_NOTES_HOOK_H
#define SIM_NOTES_HOOK_H

#include "sim_api.h"
#include "sim_state.h"

/* The comment event of note n on mr; action "create" or "update". */
void sim_notes_fire(struct sim *s, struct sim_mr *mr, const struct sim_note *n, const char *action);

/* GET /projects/:id/members/all/:user_id */
void sim_h_project_member_all(struct sim_req *r);

#endif
