/*
 * tests/gitlab-sim/sim_discussions.c
 *    Merge request discussions and diff notes (see sim_discussions.h).
 *
 * Design: as GitLab 17 answers (lib/api/discussions.rb, app/models/diff_note.rb, lib/api/helpers/notes_helpers.rb):
 *   - POST validates its parameters first, as Grape does: body required; a position needs base_sha, start_sha,
 *     head_sha and position_type (text or image), lines are integers; errors are one 400 {"error": "a, b"}.
 *   - then the DiffNote: a text position needs new_path, old_path and a line that is in the MR's diff at those
 *     refs (new_line alone: an added line; old_line alone: a removed line; both: an unchanged line). GitLab
 *     computes the line code from the diff between the position's refs; the simulator keeps only the MR's current
 *     version, so the three shas must be the MR's current diff_refs (stricter than GitLab, which also places a note
 *     on an older version). Anything else answers 400 {"message": "400 Bad request - Note {:line_code=>[\"can't be
 *     blank\", \"must be a valid line code\"]}"} (with :position=>["is incomplete"] when a path or both lines are
 *     missing), the message of bad_request!("Note #{note.errors.messages}").
 *   - PUT .../discussions/:discussion_id needs `resolved` (a boolean) and the Developer role or the MR's
 *     authorship (Discussion#can_resolve?); an unknown id is 404.
 * Ownership: the table below owns its entries; notes belong to s->notes.
 */
#include "sim_discussions.h"

#include "sim_api.h"
#include "sim_diff.h"
#include "sim_notes_hook.h"
#include "sim_render.h"
#include "sim_strict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_discussion {
	char id[41];
	int64_t note_id; /* the first note, in s->notes */
	int64_t mr_id;
	struct json_object *position; /* NULL: a thread on the overview */
	bool resolved;
	struct sim_user *resolved_by; /* borrowed */
	char *resolved_at;
	struct sim_vec replies; /* struct sim_note *: the later notes of the thread, oldest first (borrowed) */
};

/* This world's discussions; emptied when s->generation moves on (a reset). */
static struct {
	uint64_t generation;
	struct sim_vec v;
} table;

static void table_sync(const struct sim *s)
{
	if (table.generation == s->generation)
		return;
	for (size_t i = 0; i < table.v.len; i++) {
		struct sim_discussion *d = table.v.items[i];
		json_object_put(d->position);
		free(d->resolved_at);
		free(d->replies.items);
		free(d);
	}
	free(table.v.items);
	table.v = (struct sim_vec){0};
	table.generation = s->generation;
}

static struct sim_discussion *by_note(const struct sim *s, int64_t note_id)
{
	table_sync(s);
	for (size_t i = 0; i < table.v.len; i++) {
		struct sim_discussion *d = table.v.items[i];
		if (d->note_id == note_id)
			return d;
		for (size_t k = 0; k < d->replies.len; k++)
			if (((struct sim_note *)d->replies.items[k])->id == note_id)
				return d;
	}
	return NULL;
}

/* --- the diff's lines ---------------------------------------------------------------------------------------- */

bool sim_diff_has_line(const char *diff, int64_t old_line, int64_t new_line)
{
	int64_t o = 0, n = 0;
	bool in_hunk = false;
	for (const char *p = diff; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		long long a = 0, c = 0;
		if (len > 2 && strncmp(p, "@@", 2) == 0) {
			/* "@@ -a[,b] +c[,d] @@" */
			const char *plus = memchr(p, '+', len);
			in_hunk = sscanf(p, "@@ -%lld", &a) == 1 && plus && sscanf(plus, "+%lld", &c) == 1;
			o = a;
			n = c;
		} else if (in_hunk && len > 0) {
			char k = p[0];
			if (k == ' ' && old_line && new_line && o == old_line && n == new_line)
				return true;
			if (k == '-' && old_line && !new_line && o == old_line)
				return true;
			if (k == '+' && new_line && !old_line && n == new_line)
				return true;
			o += k == ' ' || k == '-';
			n += k == ' ' || k == '+';
		}
		p = eol ? eol + 1 : p + len;
	}
	return false;
}

/* --- rendering ------------------------------------------------------------------------------------------------ */

void sim_discussions_render_note(const struct sim *s, const struct sim_note *n, struct json_object *o)
{
	struct sim_discussion *d = by_note(s, n->id);
	if (!d)
		return;
	json_object_object_add(o, "type", json_object_new_string(d->position ? "DiffNote" : "DiscussionNote"));
	if (d->position) {
		const char *head = NULL;
		struct json_object *v = NULL;
		if (json_object_object_get_ex(d->position, "head_sha", &v))
			head = json_object_get_string(v);
		json_object_object_add(o, "commit_id", head ? json_object_new_string(head) : NULL);
		json_object_object_add(o, "position", json_object_get(d->position));
	}
	json_object_object_add(o, "resolvable", json_object_new_boolean(true));
	json_object_object_add(o, "resolved", json_object_new_boolean(d->resolved));
	json_object_object_add(o, "resolved_by",
	                       d->resolved && d->resolved_by ? sim_render_user_basic(s, d->resolved_by) : NULL);
	json_object_object_add(o, "resolved_at", d->resolved_at ? json_object_new_string(d->resolved_at) : NULL);
}

/* Entities::Discussion: {id, individual_note, notes}. d NULL: the individual discussion of note n. */
static struct json_object *render_discussion(struct sim *s, struct sim_discussion *d, struct sim_note *n)
{
	struct json_object *o = json_object_new_object(), *notes = json_object_new_array();
	char id[41];
	if (d)
		snprintf(id, sizeof(id), "%s", d->id);
	else
		sim_sha_for(0x6e6f7465ULL ^ (uint64_t)n->id, id); /* a stable id per note */
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "individual_note", json_object_new_boolean(d == NULL));
	json_object_array_add(notes, sim_render_note(s, n));
	for (size_t k = 0; d && k < d->replies.len; k++) {
		struct sim_note *reply = d->replies.items[k];
		if (!reply->removed)
			json_object_array_add(notes, sim_render_note(s, reply));
	}
	json_object_object_add(o, "notes", notes);
	return o;
}

/* --- handlers ------------------------------------------------------------------------------------------------- */

static struct sim_discussion *find_discussion(struct sim_req *r, struct sim_mr *m, struct sim_note **note_out)
{
	const char *id = sim_req_cap(r, 2);
	table_sync(r->s);
	for (size_t i = 0; id && i < table.v.len; i++) {
		struct sim_discussion *d = table.v.items[i];
		struct sim_note *n = sim_note_by_id(r->s, d->note_id);
		if (d->mr_id == m->id && strcmp(d->id, id) == 0 && n && !n->removed) {
			*note_out = n;
			return d;
		}
	}
	sim_reply_message(r, 404, "404 Not found");
	return NULL;
}

struct list_item {
	struct sim_discussion *d;
	struct sim_note *n;
};

static struct json_object *render_list_item(struct sim_req *r, void *item)
{
	struct list_item *li = item;
	return render_discussion(r->s, li->d, li->n);
}

void sim_h_discussions_list(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = sim_api_mr(r, &p);
	if (!m)
		return;
	struct list_item *items = sim_xcalloc(r->s->notes.len + 1, sizeof(*items));
	struct sim_vec v = {0};
	size_t k = 0;
	for (size_t i = 0; i < r->s->notes.len; i++) { /* oldest first, as discussion_ids_relation */
		struct sim_note *n = r->s->notes.items[i];
		struct sim_discussion *d = n->removed || n->mr_id != m->id ? NULL : by_note(r->s, n->id);
		if (n->removed || n->mr_id != m->id || (d && d->note_id != n->id)) /* a reply: listed in its thread */
			continue;
		items[k] = (struct list_item){.d = d, .n = n};
		sim_vec_push(&v, &items[k++]);
	}
	sim_api_reply_page(r, &v, render_list_item);
	free(items);
}

void sim_h_discussion_get(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_note *n = NULL;
	struct sim_mr *m = sim_api_mr(r, &p);
	struct sim_discussion *d = m ? find_discussion(r, m, &n) : NULL;
	if (d)
		sim_reply_json(r, 200, render_discussion(r->s, d, n));
}

/* position[key]: from a JSON object "position" or a form/query "position[key]" (borrowed). */
static const char *pos_param(struct sim_req *r, const char *key)
{
	struct json_object *pos = sim_param_json(r, "position"), *v = NULL;
	if (pos && json_object_is_type(pos, json_type_object))
		return json_object_object_get_ex(pos, key, &v) && !json_object_is_type(v, json_type_null)
		           ? json_object_get_string(v)
		           : NULL;
	char name[64];
	snprintf(name, sizeof(name), "position[%s]", key);
	return sim_param(r, name);
}

static bool position_given(struct sim_req *r)
{
	if (sim_param_json(r, "position"))
		return true;
	json_object_object_foreach(r->params, k, v)
	{
		(void)v;
		if (strncmp(k, "position[", 9) == 0)
			return true;
	}
	return false;
}

static void add_error(char *buf, size_t cap, const char *key, const char *what)
{
	size_t len = strlen(buf);
	snprintf(buf + len, cap - len, "%sposition[%s] %s", len ? ", " : "", key, what);
}

/* Grape's parameter checks of a position; false after answering 400. */
static bool position_params_ok(struct sim_req *r, int64_t *old_line, int64_t *new_line)
{
	char err[512] = "";
	static const char *const required[] = {"base_sha", "start_sha", "head_sha", "position_type"};
	for (size_t i = 0; i < 4; i++)
		if (!pos_param(r, required[i]))
			add_error(err, sizeof(err), required[i], "is missing");
	const char *type = pos_param(r, "position_type");
	if (type && strcmp(type, "text") != 0 && strcmp(type, "image") != 0)
		add_error(err, sizeof(err), "position_type", "does not have a valid value");
	const char *ol = pos_param(r, "old_line"), *nl = pos_param(r, "new_line");
	*old_line = *new_line = 0;
	if (ol && !sim_parse_int64(ol, old_line))
		add_error(err, sizeof(err), "old_line", "is invalid");
	if (nl && !sim_parse_int64(nl, new_line))
		add_error(err, sizeof(err), "new_line", "is invalid");
	if (err[0]) {
		sim_reply_error(r, 400, err);
		return false;
	}
	return true;
}

/* The change of m at path, or NULL when the MR's stored diff has none (or keeps it too large to show lines). */
static const struct sim_change *change_at(struct sim *s, const struct sim_mr *m, const char *path)
{
	bool *big = sim_xcalloc(m->n_changes + 1, sizeof(bool)), overflow = false;
	size_t kept = 0;
	const struct sim_change *found = NULL;
	sim_strict_diff_limits(s, m->changes, m->n_changes, big, &kept, &overflow);
	for (size_t i = 0; i < kept && !found; i++)
		if (!big[i] && strcmp(m->changes[i].path, path) == 0)
			found = &m->changes[i];
	free(big);
	return found;
}

/* Does the text position name a line of m's current diff? *incomplete: a path or both lines missing. */
static bool text_position_ok(struct sim_req *r, struct sim_mr *m, int64_t old_line, int64_t new_line, bool *incomplete)
{
	const char *new_path = pos_param(r, "new_path"), *old_path = pos_param(r, "old_path");
	*incomplete = !new_path || !*new_path || !old_path || !*old_path || (!old_line && !new_line);
	if (*incomplete)
		return false;
	if (strcmp(pos_param(r, "base_sha"), m->base_sha) != 0 || strcmp(pos_param(r, "start_sha"), m->base_sha) != 0 ||
	    strcmp(pos_param(r, "head_sha"), m->sha) != 0 || strcmp(old_path, new_path) != 0)
		return false;
	const struct sim_change *c = change_at(r->s, m, new_path);
	if (!c)
		return false;
	char *diff = sim_unified_diff(c->old_content, c->new_content);
	bool ok = sim_diff_has_line(diff, old_line, new_line);
	free(diff);
	return ok;
}

static struct json_object *stored_position(struct sim_req *r, int64_t old_line, int64_t new_line)
{
	struct json_object *o = json_object_new_object();
	static const char *const keys[] = {"base_sha", "start_sha", "head_sha",
	                                   "old_path", "new_path",  "position_type"};
	for (size_t i = 0; i < 6; i++) {
		const char *v = pos_param(r, keys[i]);
		json_object_object_add(o, keys[i], v ? json_object_new_string(v) : NULL);
	}
	json_object_object_add(o, "old_line", old_line ? json_object_new_int64(old_line) : NULL);
	json_object_object_add(o, "new_line", new_line ? json_object_new_int64(new_line) : NULL);
	json_object_object_add(o, "line_range", NULL);
	return o;
}

/* An archived project takes no note (403), an empty body is the Note's validation error (400); true after answering. */
static bool note_refused(struct sim_req *r, const struct sim_project *p, const char *body)
{
	if (p->archived)
		sim_reply_message(r, 403, "403 Forbidden");
	else if (!*body)
		sim_reply_message(r, 400, "400 Bad request - Note {:note=>[\"can't be blank\"]}");
	return p->archived || !*body;
}

void sim_h_discussion_add(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = sim_api_mr(r, &p);
	int64_t old_line = 0, new_line = 0;
	if (!m)
		return;
	const char *body = sim_param(r, "body");
	bool positioned = position_given(r);
	if (!body) {
		sim_reply_error(r, 400, "body is missing");
		return;
	}
	if (positioned && !position_params_ok(r, &old_line, &new_line))
		return;
	if (note_refused(r, p, body))
		return;
	bool incomplete = false;
	if (positioned && strcmp(pos_param(r, "position_type"), "text") == 0 &&
	    !text_position_ok(r, m, old_line, new_line, &incomplete)) {
		sim_reply_message(r, 400,
		                  incomplete
		                      ? "400 Bad request - Note {:line_code=>[\"can't be blank\", \"must be a valid "
		                        "line code\"], :position=>[\"is incomplete\"]}"
		                      : "400 Bad request - Note {:line_code=>[\"can't be blank\", \"must be a valid "
		                        "line code\"]}");
		return;
	}
	if (positioned && strcmp(pos_param(r, "position_type"), "image") == 0) {
		sim_reply_message(r, 400,
		                  "400 Bad request - Note {:position=>[\"is incomplete\"]}"); /* no images here */
		return;
	}
	struct sim_note *n = sim_api_note_new(r, m, body);
	struct sim_discussion *d = sim_xcalloc(1, sizeof(*d));
	sim_new_sha(r->s, d->id);
	d->note_id = n->id;
	d->mr_id = m->id;
	d->position = positioned ? stored_position(r, old_line, new_line) : NULL;
	table_sync(r->s);
	sim_vec_push(&table.v, d);
	sim_notes_fire(r->s, m, n, "create"); /* a thread's note is a comment: GitLab sends its Note Hook too */
	sim_reply_json(r, 201, render_discussion(r->s, d, n));
}

void sim_h_discussion_resolve(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_note *n = NULL;
	struct sim_mr *m = sim_api_mr(r, &p);
	bool resolved = false;
	if (!m)
		return;
	if (!sim_param_present(r, "resolved")) {
		sim_reply_error(r, 400, "resolved is missing");
		return;
	}
	if (!sim_param_bool(r, "resolved", &resolved)) {
		sim_reply_error(r, 400, "resolved is invalid");
		return;
	}
	struct sim_discussion *d = find_discussion(r, m, &n);
	if (!d)
		return;
	if (sim_access_project(r->token, p) < 30 && m->author != r->token->user) {
		sim_reply_message(r, 403, "403 Forbidden");
		return;
	}
	if (d->resolved != resolved) { /* resolve! of a resolved note (unresolve! of an open one) changes nothing */
		d->resolved = resolved;
		d->resolved_by = resolved ? r->token->user : NULL;
		free(d->resolved_at);
		d->resolved_at = resolved ? sim_now_iso() : NULL;
	}
	sim_reply_json(r, 200, render_discussion(r->s, d, n));
}

void sim_h_discussion_reply(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_note *first = NULL;
	struct sim_mr *m = sim_api_mr(r, &p);
	if (!m)
		return;
	const char *body = sim_param(r, "body");
	if (!body) {
		sim_reply_error(r, 400, "body is missing");
		return;
	}
	struct sim_discussion *d = find_discussion(r, m, &first);
	if (!d)
		return;
	if (note_refused(r, p, body))
		return;
	struct sim_note *n = sim_api_note_new(r, m, body);
	sim_vec_push(&d->replies, n);
	sim_notes_fire(r->s, m, n, "create"); /* a reply is a comment: its Note Hook as any other */
	sim_reply_json(r, 201, sim_render_note(r->s, n));
}
