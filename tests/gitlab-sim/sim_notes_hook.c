/*
 * tests/gitlab-sim/sim_notes_hook.c
 *    Comment events of merge request notes and the project members API (see sim_notes_hook.h).
 *
 * Design: a note created or edited through the API fires "Note Hook" (action create or update) to hooks with
 *    note_events, or, for an internal note, "Confidential Note Hook" to hooks with confidential_note_events, with the
 *    payload of doc/user/project/integrations/webhook_events.md "Comment on a merge request". Membership is a user's
 *    best access over its tokens' access maps without the admin flag (members only, as GitLab's members finder).
 * Ownership: nothing outlives a call except the deliveries queued (s->deliveries).
 */
#include "sim_notes_hook.h"

#include "sim_hooks.h"
#include "sim_http.h"
#include "sim_render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct json_object *note_user(const struct sim_user *u)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(u->id));
	json_object_object_add(o, "name", json_object_new_string(u->name ? u->name : u->username));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "avatar_url",
	                       json_object_new_string("https://www.gravatar.com/avatar/0?s=80&d=identicon"));
	json_object_object_add(o, "email", json_object_new_string("[REDACTED]"));
	return o;
}

static struct json_object *note_attrs(struct sim *s, const struct sim_project *p, const struct sim_mr *mr,
                                      const struct sim_note *n, const char *action)
{
	struct json_object *a = json_object_new_object();
	json_object_object_add(a, "id", json_object_new_int64(n->id));
	json_object_object_add(a, "note", json_object_new_string(n->body));
	json_object_object_add(a, "noteable_type", json_object_new_string("MergeRequest"));
	json_object_object_add(a, "author_id", json_object_new_int64(n->author->id));
	json_object_object_add(a, "created_at", json_object_new_string(n->created_at));
	json_object_object_add(a, "updated_at", json_object_new_string(n->updated_at));
	json_object_object_add(a, "project_id", json_object_new_int64(p->id));
	json_object_object_add(a, "attachment", NULL);
	json_object_object_add(a, "line_code", NULL);
	json_object_object_add(a, "commit_id", json_object_new_string(""));
	json_object_object_add(a, "noteable_id", json_object_new_int64(mr->id));
	json_object_object_add(a, "system", json_object_new_boolean(false));
	json_object_object_add(a, "st_diff", NULL);
	json_object_object_add(a, "internal", json_object_new_boolean(n->internal));
	json_object_object_add(a, "confidential", json_object_new_boolean(n->internal));
	json_object_object_add(a, "action", json_object_new_string(action));
	json_object_object_add(a, "url",
	                       sim_json_printf("%s/%s/-/merge_requests/%lld#note_%lld", s->instance_url,
	                                       p->path_with_namespace, (long long)mr->iid, (long long)n->id));
	return a;
}

void sim_notes_fire(struct sim *s, struct sim_mr *mr, const struct sim_note *n, const char *action)
{
	struct sim_project *p = sim_project_by_id(s, mr->project_id);
	if (!p)
		return;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "object_kind", json_object_new_string("note"));
	json_object_object_add(o, "event_type", json_object_new_string(n->internal ? "confidential_note" : "note"));
	json_object_object_add(o, "user", note_user(n->author));
	json_object_object_add(o, "project_id", json_object_new_int64(p->id));
	json_object_object_add(o, "project", sim_hooks_project_json(s, p, true));
	struct json_object *repo = json_object_new_object();
	json_object_object_add(repo, "name", json_object_new_string(p->name));
	json_object_object_add(repo, "url", sim_json_printf("%s/%s.git", s->instance_url, p->path_with_namespace));
	json_object_object_add(repo, "description", json_object_new_string(p->description));
	json_object_object_add(repo, "homepage", sim_json_printf("%s/%s", s->instance_url, p->path_with_namespace));
	json_object_object_add(o, "repository", repo);
	json_object_object_add(o, "object_attributes", note_attrs(s, p, mr, n, action));
	json_object_object_add(o, "merge_request", sim_hooks_mr_attrs(s, mr));
	const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *event_name = sim_printf("note:%s", action);
	/* internal notes go to confidential_note_events hooks only (Note#confidential?, hooks_scope) */
	if (n->internal)
		sim_hooks_fire_flagged(s, p, "confidential_note_events", "Confidential Note Hook", event_name, body,
		                       NULL);
	else
		sim_hooks_fire_flagged(s, p, "note_events", "Note Hook", event_name, body, NULL);
	free(event_name);
	json_object_put(o);
}

/* The user's own access to p: the best of its tokens' access maps, membership only (no admin). */
static int member_level(struct sim *s, const struct sim_user *u, const struct sim_project *p)
{
	int best = 0;
	for (size_t i = 0; i < s->tokens.len; i++) {
		struct sim_token *t = s->tokens.items[i];
		if (t->user != u)
			continue;
		struct sim_token member = *t;
		member.admin = false;
		int level = sim_access_project(&member, p);
		best = level > best ? level : best;
	}
	return best;
}

void sim_h_project_member_all(struct sim_req *r)
{
	int64_t uid = 0;
	struct sim_project *p = sim_api_project(r, 0, 0); /* any role: read_project_member */
	struct sim_user *u = p && sim_parse_int64(sim_req_cap(r, 1), &uid) ? sim_user_by_id(r->s, uid) : NULL;
	int level = u ? member_level(r->s, u, p) : 0;
	if (!p)
		return; /* answered */
	if (level <= 0) {
		sim_reply_message(r, 404, "404 Not found");
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(u->id));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "name", json_object_new_string(u->name ? u->name : u->username));
	json_object_object_add(o, "state", json_object_new_string("active"));
	json_object_object_add(o, "avatar_url",
	                       json_object_new_string("https://www.gravatar.com/avatar/0?s=80&d=identicon"));
	json_object_object_add(o, "web_url", sim_json_printf("%s/%s", r->s->instance_url, u->username));
	json_object_object_add(o, "access_level", json_object_new_int(level > 50 ? 50 : level));
	json_object_object_add(o, "expires_at", NULL);
	json_object_object_add(o, "membership_state", json_object_new_string("active"));
	sim_reply_json(r, 200, o);
}
