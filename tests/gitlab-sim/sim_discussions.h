/*
 * tests/gitlab-sim/sim_discussions.h
 *    Merge request discussions (threads) and diff notes: list, create (on the overview or positioned on a line of
 *    the MR's diff), get, resolve, reply. GitLab's doc/api/discussions.md "Merge requests" and lib/api/discussions.rb.
 *
 * Design: a discussion started here owns its first note, a struct sim_note in s->notes like any other (so the
 *    notes API, user_notes_count and the note's id work as in GitLab); what a note does not hold (the discussion
 *    id, the position, the resolution) lives in this module's table, keyed by the note id. A reply in a thread is
 *    a note of s->notes too, listed in its thread (never as an individual discussion). The table belongs to one
 *    world: it is emptied when the world's generation changes (POST /__sim/reset). Notes not started here are
 *    listed as GitLab lists them: one individual_note discussion each.
 * Threading: every function expects s->mu held (the API handlers run with it).
 * Ownership: nothing returned outlives a call; rendered JSON belongs to the caller.
 */
#ifndef SIM_DISCUSSIONS_H
#define SIM_DISCUSSIONS_H

#include "sim_http.h"

/* GET|POST /projects/:id/merge_requests/:merge_request_iid/discussions */
void sim_h_discussions_list(struct sim_req *r);
void sim_h_discussion_add(struct sim_req *r);
/* GET|PUT /projects/:id/merge_requests/:merge_request_iid/discussions/:discussion_id (PUT: resolved) */
void sim_h_discussion_get(struct sim_req *r);
void sim_h_discussion_resolve(struct sim_req *r);
/* POST /projects/:id/merge_requests/:merge_request_iid/discussions/:discussion_id/notes (body): a reply in a thread,
 * 201 with the note; fires its Note Hook. */
void sim_h_discussion_reply(struct sim_req *r);

/* For sim_render_note: a note that starts a discussion here gets its type, position and resolution in o. */
void sim_discussions_render_note(const struct sim *s, const struct sim_note *n, struct json_object *o);

/*
 * Is the line (old_line, new_line; 0 = not given) in the unified diff text? new only: an added line; old only: a
 * removed line; both: an unchanged line of a hunk. GitLab finds a position's line the same way
 * (Gitlab::Diff::File#line_for_position).
 */
bool sim_diff_has_line(const char *diff, int64_t old_line, int64_t new_line);

#endif
