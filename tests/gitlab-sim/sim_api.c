/*
 * tests/gitlab-sim/sim_api.c
 *    /api/v4: the route table, authentication and scopes, and the token, user, group and project
 *    endpoints (GITLAB-API.md §1, §2, §6).
 *
 * Design: see sim_api.h. Error bodies are GitLab's exact strings: {"message":"401 Unauthorized"},
 *    {"message":"404 Project Not Found"}, {"message":"403 Forbidden"}, Grape's {"error":"..."} for
 *    parameter validation, the rack-oauth2 {"error":"invalid_token",...} for expired/revoked tokens.
 * Ownership: nothing outlives a call except model changes.
 */
#include "sim_api.h"

#include "sim_discussions.h"
#include "sim_notes_hook.h"
#include "sim_pipelines.h"
#include "sim_render.h"
#include "sim_strict.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- authentication -------------------------------------------------------------------------------------- */

static void reply_invalid_token(struct sim_req *r, const char *description)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string("invalid_token"));
	json_object_object_add(o, "error_description", json_object_new_string(description));
	char *h =
	    sim_printf("Bearer realm=\"The API\", error=\"invalid_token\", error_description=\"%s\"", description);
	sim_add_header(r, "WWW-Authenticate", h);
	free(h);
	sim_reply_json(r, 401, o);
}

static void reply_insufficient_scope(struct sim_req *r, const char *scope)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string("insufficient_scope"));
	json_object_object_add(o, "error_description",
	                       json_object_new_string("The request requires higher privileges than provided by the "
	                                              "access token."));
	json_object_object_add(o, "scope", json_object_new_string(scope));
	sim_reply_json(r, 403, o);
}

/* Returns false after replying when the request may not proceed. */
static bool authenticate(struct sim_req *r, int scope_class)
{
	const char *tok = sim_header(r, "PRIVATE-TOKEN");
	const char *auth = sim_header(r, "Authorization");
	if (!tok && auth && strncasecmp(auth, "Bearer ", 7) == 0)
		tok = auth + 7;
	if (!tok)
		tok = sim_param(r, "private_token");
	struct sim_token *t = sim_token_find(r->s, tok);
	if (!t) {
		sim_reply_message(r, 401, "401 Unauthorized");
		return false;
	}
	if (t->revoked) {
		reply_invalid_token(r, "Token was revoked. You have to re-authorize from the user.");
		return false;
	}
	if (sim_token_expired(t)) {
		reply_invalid_token(r, "Token is expired. You can either do re-authorization or token refresh.");
		return false;
	}
	bool read = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	bool ok = (t->scopes & SIM_SCOPE_API) || scope_class == SIM_SCOPE_CLASS_ANY ||
	          (read && (t->scopes & SIM_SCOPE_READ_API)) ||
	          (read && scope_class == SIM_SCOPE_CLASS_USER && (t->scopes & SIM_SCOPE_READ_USER));
	if (!ok) {
		reply_insufficient_scope(
		    r,
		    read ? (scope_class == SIM_SCOPE_CLASS_USER ? "api read_api read_user" : "api read_api") : "api");
		return false;
	}
	free(t->last_used_at);
	t->last_used_at = sim_now_iso();
	r->token = t;
	return true;
}

void sim_api_reply_page(struct sim_req *r, struct sim_vec *items,
                        struct json_object *(*render)(struct sim_req *r, void *item))
{
	size_t off = 0, cnt = 0;
	sim_paginate(r, items->len, &off, &cnt);
	struct json_object *arr = json_object_new_array_ext((int)cnt);
	for (size_t i = off; i < off + cnt; i++)
		json_object_array_add(arr, render(r, items->items[i]));
	sim_reply_json(r, 200, arr);
	free(items->items);
	*items = (struct sim_vec){0};
}

/* --- tokens and user ------------------------------------------------------------------------------------- */

static void h_version(struct sim_req *r)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string("17.8.0-ee"));
	json_object_object_add(o, "revision", json_object_new_string("gitlabsim"));
	sim_reply_json(r, 200, o);
}

static void h_pat_self(struct sim_req *r)
{
	sim_reply_json(r, 200, sim_render_pat(r->token));
}

static void h_user(struct sim_req *r)
{
	struct json_object *o = sim_render_user_self(r->s, r->token->user);
	if (r->token->admin) /* UserWithAdmin: admins see is_admin */
		json_object_object_add(o, "is_admin", json_object_new_boolean(true));
	sim_reply_json(r, 200, o);
}

/* --- groups ---------------------------------------------------------------------------------------------- */

/* GET /groups/:id/members/all/:user_id (inherited memberships included). The simulator knows the memberships of
 * token users only: the token's own user is a member at the level its access map gives on the group. */
static void h_group_member_all(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 0);
	if (!g)
		return;
	int64_t uid = 0;
	struct sim_token member = *r->token; /* membership only: an admin who is not a member gets 404 */
	member.admin = false;
	int level = sim_access_group(&member, g);
	if (!sim_parse_int64(sim_req_cap(r, 1), &uid) || uid != r->token->user->id || level <= 0) {
		sim_reply_message(r, 404, "404 Not found");
		return;
	}
	const struct sim_user *u = r->token->user;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(u->id));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "name", json_object_new_string(u->name ? u->name : u->username));
	json_object_object_add(o, "state", json_object_new_string("active"));
	json_object_object_add(o, "access_level", json_object_new_int(level));
	json_object_object_add(o, "expires_at", NULL);
	sim_reply_json(r, 200, o);
}

static struct json_object *render_group_item(struct sim_req *r, void *item)
{
	return sim_render_group(r->s, item);
}

static int cmp_group_name(const void *a, const void *b)
{
	const struct sim_group *x = *(struct sim_group *const *)a, *y = *(struct sim_group *const *)b;
	int c = strcasecmp(x->name, y->name);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int cmp_group_path(const void *a, const void *b)
{
	const struct sim_group *x = *(struct sim_group *const *)a, *y = *(struct sim_group *const *)b;
	int c = strcasecmp(x->full_path, y->full_path);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int cmp_group_id(const void *a, const void *b)
{
	const struct sim_group *x = *(struct sim_group *const *)a, *y = *(struct sim_group *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

/* Visible groups under `under` (NULL = all), direct children only if `children`. Replies the page. */
static void list_groups(struct sim_req *r, struct sim_group *under, bool children, bool top_level_only)
{
	const char *order_by = sim_param(r, "order_by");
	const char *sort = sim_param(r, "sort");
	const char *search = sim_param(r, "search");
	int64_t min_level = 0;
	sim_param_int(r, "min_access_level", &min_level);
	if (order_by && strcmp(order_by, "name") && strcmp(order_by, "path") && strcmp(order_by, "id") &&
	    strcmp(order_by, "similarity")) {
		sim_reply_error(r, 400, "order_by does not have a valid value");
		return;
	}
	if (sort && strcmp(sort, "asc") && strcmp(sort, "desc")) {
		sim_reply_error(r, 400, "sort does not have a valid value");
		return;
	}
	struct sim_vec v = {0};
	for (size_t i = 0; i < r->s->groups.len; i++) {
		struct sim_group *g = r->s->groups.items[i];
		if (g->removed || g == under)
			continue;
		if (under && !(children ? g->parent == under : sim_group_is_under(g, under)))
			continue;
		if (top_level_only && g->parent)
			continue;
		if (!sim_can_see_group(r->token, g))
			continue;
		if (min_level > 0 && sim_access_group(r->token, g) < min_level)
			continue;
		if (search && *search && !strcasestr(g->name, search) && !strcasestr(g->path, search))
			continue;
		sim_vec_push(&v, g);
	}
	int (*cmp)(const void *, const void *) = cmp_group_name;
	if (order_by && strcmp(order_by, "path") == 0)
		cmp = cmp_group_path;
	else if (order_by && strcmp(order_by, "id") == 0)
		cmp = cmp_group_id;
	if (v.len)
		qsort(v.items, v.len, sizeof(void *), cmp);
	if (sort && strcmp(sort, "desc") == 0)
		sim_vec_reverse(&v);
	sim_api_reply_page(r, &v, render_group_item);
}

static void h_groups_list(struct sim_req *r)
{
	bool top = false;
	sim_param_bool(r, "top_level_only", &top);
	list_groups(r, NULL, false, top);
}

static void h_group_descendants(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 0);
	if (g)
		list_groups(r, g, false, false);
}

static void h_group_subgroups(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 0);
	if (g)
		list_groups(r, g, true, false);
}

static void h_group_get(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 0);
	if (!g)
		return;
	struct json_object *o = sim_render_group(r->s, g);
	bool with_projects = true;
	sim_param_bool(r, "with_projects", &with_projects);
	if (with_projects) {
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < r->s->projects.len && json_object_array_length(arr) < 100; i++) {
			struct sim_project *p = r->s->projects.items[i];
			if (!p->removed && p->ns == g && sim_can_see_project(r->token, p))
				json_object_array_add(arr, sim_render_project(r->s, p, r->token, SIM_PROJECT_LIST));
		}
		json_object_object_add(o, "projects", arr);
		json_object_object_add(o, "shared_projects", json_object_new_array());
	}
	sim_reply_json(r, 200, o);
}

/* --- project listing ------------------------------------------------------------------------------------- */

struct project_filter {
	struct sim_group *group; /* NULL = every visible project */
	bool include_subgroups;
	int archived; /* -1 any, 0 not archived, 1 archived */
	bool active;
	const char *search;
	const char *visibility;
	int64_t min_level;
	bool membership;
};

static bool project_matches(const struct sim_req *r, const struct project_filter *f, const struct sim_project *p)
{
	if (p->removed)
		return false;
	if (f->group && !(f->include_subgroups ? sim_group_is_under(p->ns, f->group) : p->ns == f->group))
		return false;
	if (f->archived == 0 && p->archived)
		return false;
	if (f->archived == 1 && !p->archived)
		return false;
	if (f->active && (p->archived || p->marked_for_deletion_on))
		return false;
	if (f->visibility && strcmp(f->visibility, p->visibility) != 0)
		return false;
	if (f->search && *f->search && !strcasestr(p->name, f->search) && !strcasestr(p->path, f->search) &&
	    !strcasestr(p->path_with_namespace, f->search))
		return false;
	if (!sim_can_see_project(r->token, p))
		return false;
	if ((f->min_level > 0 || f->membership) && sim_access_project(r->token, p) < (f->min_level ? f->min_level : 10))
		return false;
	return true;
}

static const char *g_order_by; /* set under the mutex for the comparator; the mutex serialises users */
static int cmp_project(const void *a, const void *b)
{
	const struct sim_project *x = *(struct sim_project *const *)a, *y = *(struct sim_project *const *)b;
	int c = 0;
	if (strcmp(g_order_by, "name") == 0)
		c = strcasecmp(x->name, y->name);
	else if (strcmp(g_order_by, "path") == 0)
		c = strcasecmp(x->path, y->path);
	else if (strcmp(g_order_by, "created_at") == 0)
		c = strcmp(x->created_at, y->created_at);
	else if (strcmp(g_order_by, "updated_at") == 0 || strcmp(g_order_by, "last_activity_at") == 0)
		c = strcmp(x->last_activity_at, y->last_activity_at);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* Parse the common listing parameters. Returns false after replying 400. */
static bool parse_filter(struct sim_req *r, struct project_filter *f, const char **order_by, bool *desc)
{
	static const char *orders[] = {
	    "id",         "name",       "path",         "created_at",     "updated_at", "last_activity_at",
	    "similarity", "star_count", "storage_size", "repository_size"};
	bool b = false;
	memset(f, 0, sizeof(*f));
	f->archived = -1;
	if (sim_param_present(r, "archived")) {
		if (!sim_param_bool(r, "archived", &b)) {
			sim_reply_error(r, 400, "archived is invalid");
			return false;
		}
		f->archived = b ? 1 : 0;
	}
	sim_param_bool(r, "active", &f->active);
	sim_param_bool(r, "include_subgroups", &f->include_subgroups);
	sim_param_bool(r, "membership", &f->membership);
	f->search = sim_param(r, "search");
	f->visibility = sim_param(r, "visibility");
	if (sim_param_present(r, "min_access_level")) {
		if (!sim_param_int(r, "min_access_level", &f->min_level) ||
		    (f->min_level != 5 && f->min_level != 10 && f->min_level != 15 && f->min_level != 20 &&
		     f->min_level != 30 && f->min_level != 40 && f->min_level != 50)) {
			sim_reply_error(r, 400, "min_access_level does not have a valid value");
			return false;
		}
	}
	*order_by = sim_param(r, "order_by");
	if (!*order_by)
		*order_by = "created_at";
	bool ok = false;
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
		ok = ok || strcmp(orders[i], *order_by) == 0;
	if (!ok) {
		sim_reply_error(r, 400, "order_by does not have a valid value");
		return false;
	}
	if (strcmp(*order_by, "similarity") == 0 || strcmp(*order_by, "star_count") == 0 ||
	    strcmp(*order_by, "storage_size") == 0 || strcmp(*order_by, "repository_size") == 0)
		*order_by = "id"; /* every simulated project has 0 stars and size: id decides */
	const char *sort = sim_param(r, "sort");
	if (sort && strcmp(sort, "asc") && strcmp(sort, "desc")) {
		sim_reply_error(r, 400, "sort does not have a valid value");
		return false;
	}
	*desc = !sort || strcmp(sort, "desc") == 0;
	return true;
}

/*
 * The listing cache: what collect_projects found for the last few listings, so that paging through one costs a scan
 * of s->projects for its first page and O(page) for each page after (100,000 projects in pages of 100 were 1,000
 * scans of all of them).
 *
 * An entry answers a request with the same key: everything the result depends on besides the model — the token
 * (its admin flag and access map decide visibility and min_access_level), the filter (group, include_subgroups,
 * archived, active, search, visibility, min_level, membership), order_by and sort — and the model's version,
 * s->version, as it was when the entry was built. The entry is used only while s->version is still that.
 *
 * Why that is enough: collect_projects reads the projects (removed, ns, archived, marked_for_deletion_on,
 * visibility, name, path, path_with_namespace, created_at, last_activity_at, id), the group tree (parent, full_path:
 * include_subgroups and inherited access) and the token (admin, access); never the clock. Only requests change
 * those, under s->mu: the control API (reset, tokens, groups, seed, project create/archive/transfer/pending_delete/
 * delete, merge requests) and API writes (PUT /projects/:id, a status post's last_activity_at). A GET or HEAD
 * changes only counters, rate-limit buckets, the token's last_used_at and an MR's mergeability check, none of which
 * a listing reads, and the webhook workers change only deliveries and hooks. sim_main.c moves s->version on after
 * every /__sim/ request and every /api/v4 request that is not a GET or HEAD, before releasing s->mu; a handler that
 * releases s->mu while it waits (wait_deliveries, sim_hooks_wait) moves it on first. So between building an entry
 * and using it, any change would have moved s->version on. (Ids are never reused and projects, groups and tokens are
 * freed only by a reset, which moves it on too, so an entry's pointers are never compared after they went stale.)
 *
 * Guarded by s->mu, as g_order_by; one simulator per process.
 */
#define LIST_CACHE_ENTRIES 16 /* bench/discovery pages through 8 groups at once */

struct list_entry {
	bool used;
	uint64_t version;  /* s->version when built */
	uint64_t last_use; /* for eviction, least recent first */
	const struct sim_token *token;
	struct project_filter f; /* search and visibility: owned copies */
	char *order_by;
	bool desc;
	struct sim_vec items; /* struct sim_project*, in the listing's order */
};

static struct list_entry list_cache[LIST_CACHE_ENTRIES];
static uint64_t list_clock;

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool list_entry_matches(const struct list_entry *e, const struct sim_req *r, const struct project_filter *f,
                               const char *order_by, bool desc)
{
	return e->used && e->version == r->s->version && e->token == r->token && e->f.group == f->group &&
	       e->f.include_subgroups == f->include_subgroups && e->f.archived == f->archived &&
	       e->f.active == f->active && same_str(e->f.search, f->search) &&
	       same_str(e->f.visibility, f->visibility) && e->f.min_level == f->min_level &&
	       e->f.membership == f->membership && strcmp(e->order_by, order_by) == 0 && e->desc == desc;
}

/* The entry to build a new result in: an empty or stale one, else the least recently used; emptied. */
static struct list_entry *list_entry_victim(const struct sim *s)
{
	struct list_entry *victim = &list_cache[0];
	for (size_t i = 0; i < LIST_CACHE_ENTRIES; i++) {
		struct list_entry *e = &list_cache[i];
		if (!e->used || e->version != s->version) {
			victim = e;
			break;
		}
		if (e->last_use < victim->last_use)
			victim = e;
	}
	free((char *)victim->f.search);
	free((char *)victim->f.visibility);
	free(victim->order_by);
	free(victim->items.items);
	memset(victim, 0, sizeof(*victim));
	return victim;
}

/* The projects the request lists, in order (borrowed from the listing cache: valid while s->mu is held). */
static const struct sim_vec *collect_projects(struct sim_req *r, const struct project_filter *f, const char *order_by,
                                              bool desc)
{
	for (size_t i = 0; i < LIST_CACHE_ENTRIES; i++) {
		struct list_entry *e = &list_cache[i];
		if (list_entry_matches(e, r, f, order_by, desc)) {
			e->last_use = ++list_clock;
			return &e->items;
		}
	}
	struct list_entry *e = list_entry_victim(r->s);
	struct sim_vec *out = &e->items;
	for (size_t i = 0; i < r->s->projects.len; i++) {
		struct sim_project *p = r->s->projects.items[i];
		if (project_matches(r, f, p))
			sim_vec_push(out, p);
	}
	if (strcmp(order_by, "id") != 0 && out->len > 1) {
		g_order_by = order_by;
		qsort(out->items, out->len, sizeof(void *), cmp_project);
	}
	if (desc)
		sim_vec_reverse(out);
	e->used = true;
	e->version = r->s->version;
	e->last_use = ++list_clock;
	e->token = r->token;
	e->f = *f;
	e->f.search = sim_strdup(f->search);
	e->f.visibility = sim_strdup(f->visibility);
	e->order_by = sim_strdup(order_by);
	e->desc = desc;
	return out;
}

#define PAGE_UNLOCKED_MIN 20 /* projects on a page that are written without s->mu */

/*
 * One offset page of projects (sim_paginate's headers), each written by sim_render_project_text. A page of many is
 * written without s->mu (struct sim's renders hold off whatever would change what it reads), as GitLab serves
 * requests side by side: written under the lock, ten pages of 100 asked for at once held back every other request
 * for up to 60 ms (docs/PERFORMANCE.md, session 30).
 */
static void reply_projects_page(struct sim_req *r, const struct sim_vec *v, enum sim_project_view view)
{
	size_t off = 0, cnt = 0;
	sim_paginate(r, v->len, &off, &cnt);
	struct sim *s = r->s;
	/* the page's projects: v is the listing cache's, which another request may replace while s->mu is free */
	struct sim_project **page = sim_xcalloc(cnt ? cnt : 1, sizeof(*page));
	bool unlocked = cnt >= PAGE_UNLOCKED_MIN;
	for (size_t i = 0; i < cnt; i++) {
		page[i] = v->items[off + i];
		unlocked = unlocked && sim_render_project_text_pure(page[i], view);
	}
	if (unlocked) {
		s->counter_pages_unlocked++;
		if (++s->renders > s->peak_renders)
			s->peak_renders = s->renders;
		pthread_mutex_unlock(&s->mu);
	}
	struct sim_buf b = {0};
	size_t *at = sim_xcalloc(cnt + 1, sizeof(*at)); /* where each project's text starts, and the end */
	sim_buf_lit(&b, "[");
	for (size_t i = 0; i < cnt; i++) {
		if (i > 0)
			sim_buf_lit(&b, ",");
		at[i] = b.len;
		sim_render_project_text_unchecked(s, page[i], r->token, view, &b);
	}
	at[cnt] = b.len;
	if (unlocked) {
		pthread_mutex_lock(&s->mu);
		if (--s->renders == 0)
			pthread_cond_broadcast(&s->renders_cv);
	}
	for (size_t i = 0; i < cnt; i++) /* GITLAB_SIM_CHECK_RENDER, with s->mu: it builds json-c trees */
		sim_render_project_text_check(s, page[i], r->token, view, b.data + at[i],
		                              (i + 1 < cnt ? at[i + 1] - 1 : at[cnt]) - at[i]);
	sim_buf_lit(&b, "]");
	free(at);
	free(page);
	sim_reply_text(r, 200, "application/json", b.data, b.len);
	free(b.data);
}

static void h_group_projects(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 0);
	if (!g)
		return;
	struct project_filter f;
	const char *order_by;
	bool desc;
	if (!parse_filter(r, &f, &order_by, &desc))
		return;
	f.group = g;
	bool simple = false;
	sim_param_bool(r, "simple", &simple);
	const struct sim_vec *v = collect_projects(r, &f, order_by, desc);
	reply_projects_page(r, v, simple ? SIM_PROJECT_SIMPLE : SIM_PROJECT_LIST);
}

/* Keyset pagination for GET /projects (order_by=id only). */
static void projects_keyset(struct sim_req *r, const struct sim_vec *v, bool desc, enum sim_project_view view)
{
	int64_t per_page = 20, after = 0, before = 0;
	if (!sim_param_int(r, "per_page", &per_page) || per_page < 1)
		per_page = 20;
	if (per_page > 100)
		per_page = 100;
	bool has_after = sim_param_int(r, "id_after", &after);
	bool has_before = sim_param_int(r, "id_before", &before);
	struct sim_buf arr = {0};
	sim_buf_lit(&arr, "[");
	size_t i = 0;
	for (; i < v->len; i++) {
		struct sim_project *p = v->items[i];
		if (has_after && p->id <= after)
			continue;
		if (has_before && p->id >= before)
			continue;
		break;
	}
	int64_t last_id = 0;
	size_t taken = 0;
	for (; i < v->len && taken < (size_t)per_page; i++, taken++) {
		struct sim_project *p = v->items[i];
		if (taken > 0)
			sim_buf_lit(&arr, ",");
		sim_render_project_text(r->s, p, r->token, view, &arr);
		last_id = p->id;
	}
	sim_buf_lit(&arr, "]");
	if (i < v->len && taken > 0) {
		/* Rebuild the query without id_after/id_before and append the cursor. */
		char *q = sim_strdup("");
		const char *src = r->query ? r->query : "";
		while (*src) {
			const char *e = strchr(src, '&');
			size_t l = e ? (size_t)(e - src) : strlen(src);
			if (l && strncmp(src, "id_after=", 9) && strncmp(src, "id_before=", 10)) {
				char *nq = sim_printf("%s%.*s&", q, (int)l, src);
				free(q);
				q = nq;
			}
			src += l;
			if (*src == '&')
				src++;
		}
		char *link = sim_printf("<%s://%s%s?%s%s=%lld>; rel=\"next\"", r->tls ? "https" : "http",
		                        r->host ? r->host : "localhost", r->path, q, desc ? "id_before" : "id_after",
		                        (long long)last_id);
		sim_add_header(r, "Link", link);
		free(link);
		free(q);
	}
	sim_reply_text(r, 200, "application/json", arr.data, arr.len);
	free(arr.data);
}

static void h_projects_list(struct sim_req *r)
{
	struct project_filter f;
	const char *order_by;
	bool desc;
	if (!parse_filter(r, &f, &order_by, &desc))
		return;
	bool simple = false;
	sim_param_bool(r, "simple", &simple);
	const char *pagination = sim_param(r, "pagination");
	bool keyset = pagination && strcmp(pagination, "keyset") == 0;
	if (keyset && strcmp(order_by, "id") != 0) {
		sim_reply_error(r, 405, "Keyset pagination is not yet available for this type of request");
		return;
	}
	const struct sim_vec *v = collect_projects(r, &f, order_by, desc);
	enum sim_project_view view = simple ? SIM_PROJECT_SIMPLE : SIM_PROJECT_ACCESS;
	if (keyset)
		projects_keyset(r, v, desc, view);
	else
		reply_projects_page(r, v, view);
}

/* --- one project ----------------------------------------------------------------------------------------- */

static void h_project_get(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 0);
	if (!p)
		return;
	struct json_object *o = sim_render_project(r->s, p, r->token, SIM_PROJECT_DETAIL);
	bool b = false;
	if (sim_param_bool(r, "license", &b) && b)
		json_object_object_add(o, "license", NULL);
	if (sim_param_bool(r, "statistics", &b) && b && sim_access_project(r->token, p) >= 20) {
		struct json_object *st = json_object_new_object();
		static const char *keys[] = {
		    "commit_count",     "storage_size",       "repository_size",         "wiki_size",
		    "lfs_objects_size", "job_artifacts_size", "pipeline_artifacts_size", "packages_size",
		    "snippets_size",    "uploads_size",       "container_registry_size"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			json_object_object_add(st, keys[i],
			                       json_object_new_int64(i == 0 ? (int64_t)p->commits.len : 0));
		json_object_object_add(o, "statistics", st);
	}
	sim_reply_json(r, 200, o);
}

static void h_project_put(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 40);
	if (!p)
		return;
	struct json_object *defaults = sim_project_default_settings();
	struct json_object *changes = json_object_new_object();
	bool any = false;
	json_object_object_foreach(defaults, key, defv)
	{
		(void)defv;
		if (!sim_param_present(r, key))
			continue;
		any = true;
		if (strcmp(key, "merge_method") == 0 || strcmp(key, "squash_option") == 0 ||
		    strcmp(key, "description") == 0) {
			const char *v = sim_param(r, key);
			static const char *methods[] = {"merge", "rebase_merge", "ff", NULL};
			static const char *squash[] = {"never", "always", "default_on", "default_off", NULL};
			const char **allowed = strcmp(key, "merge_method") == 0    ? methods
			                       : strcmp(key, "squash_option") == 0 ? squash
			                                                           : NULL;
			bool ok = v != NULL;
			if (ok && allowed) {
				ok = false;
				for (size_t i = 0; allowed[i]; i++)
					ok = ok || strcmp(allowed[i], v) == 0;
			}
			if (!ok) {
				char *msg = sim_printf("%s does not have a valid value", key);
				sim_reply_error(r, 400, msg);
				free(msg);
				goto out;
			}
			json_object_object_add(changes, key, json_object_new_string(v));
		} else {
			bool b = false;
			if (!sim_param_bool(r, key, &b)) {
				char *msg = sim_printf("%s is invalid", key);
				sim_reply_error(r, 400, msg);
				free(msg);
				goto out;
			}
			json_object_object_add(changes, key, json_object_new_boolean(b));
		}
	}
	if (!any && !sim_param_present(r, "name") && !sim_param_present(r, "default_branch")) {
		sim_reply_error(r, 400,
		                "name, path, default_branch, description, ... are missing, at least one "
		                "parameter must be provided");
		goto out;
	}
	if (!p->settings)
		p->settings = sim_project_default_settings();
	json_object_object_foreach(changes, ck, cv) json_object_object_add(p->settings, ck, json_object_get(cv));
	const char *name = sim_param(r, "name");
	if (name && *name) {
		free(p->name);
		p->name = sim_strdup(name);
	}
	const char *db = sim_param(r, "default_branch");
	if (db && *db) {
		free(p->default_branch);
		p->default_branch = sim_strdup(db);
	}
	free(p->last_activity_at);
	p->last_activity_at = sim_now_iso();
	sim_reply_json(r, 200, sim_render_project(r->s, p, r->token, SIM_PROJECT_DETAIL));
out:
	json_object_put(defaults);
	json_object_put(changes);
}

/* --- shared helpers -------------------------------------------------------------------------------------- */

/* 404 (not_found) when the object is missing or hidden from the token, 403 below min_level; false after answering. */
static bool api_access(struct sim_req *r, bool visible, int level, int min_level, const char *not_found)
{
	if (!visible) {
		sim_reply_message(r, 404, not_found);
		return false;
	}
	if (level < min_level) {
		sim_reply_message(r, 403, "403 Forbidden");
		return false;
	}
	return true;
}

struct sim_project *sim_api_project(struct sim_req *r, int k, int min_level)
{
	struct sim_project *p = sim_project_by_ref(r->s, sim_req_cap(r, k));
	bool visible = p && sim_can_see_project(r->token, p);
	int level = visible ? sim_access_project(r->token, p) : 0;
	return api_access(r, visible, level, min_level, "404 Project Not Found") ? p : NULL;
}

struct sim_group *sim_api_group(struct sim_req *r, int k, int min_level)
{
	struct sim_group *g = sim_group_by_ref(r->s, sim_req_cap(r, k));
	bool visible = g && sim_can_see_group(r->token, g);
	int level = visible ? sim_access_group(r->token, g) : 0;
	return api_access(r, visible, level, min_level, "404 Group Not Found") ? g : NULL;
}

/* --- the route table (after the handlers, so it needs no declarations) --------------------------------------- */

#define A SIM_SCOPE_CLASS_DEFAULT
static const struct sim_route routes[] = {
    {"GET", "/api/v4/version", h_version, A},
    {"GET", "/api/v4/personal_access_tokens/self", h_pat_self, SIM_SCOPE_CLASS_ANY},
    {"GET", "/api/v4/user", h_user, SIM_SCOPE_CLASS_USER},
    {"GET", "/api/v4/groups", h_groups_list, A},
    {"GET", "/api/v4/groups/:id", h_group_get, A},
    {"GET", "/api/v4/groups/:id/projects", h_group_projects, A},
    {"GET", "/api/v4/groups/:id/descendant_groups", h_group_descendants, A},
    {"GET", "/api/v4/groups/:id/subgroups", h_group_subgroups, A},
    {"GET", "/api/v4/groups/:id/members/all/:user_id", h_group_member_all, A},
    {"GET", "/api/v4/groups/:id/merge_requests", sim_h_group_mrs_list, A},
    {"GET", "/api/v4/groups/:id/hooks", sim_h_hooks, A},
    {"POST", "/api/v4/groups/:id/hooks", sim_h_hooks, A},
    {"GET", "/api/v4/groups/:id/hooks/:hook_id", sim_h_hook, A},
    {"PUT", "/api/v4/groups/:id/hooks/:hook_id", sim_h_hook, A},
    {"DELETE", "/api/v4/groups/:id/hooks/:hook_id", sim_h_hook, A},
    {"POST", "/api/v4/groups/:id/hooks/:hook_id/test/:trigger", sim_h_group_hook_test, A},
    {"GET", "/api/v4/namespaces/:id", sim_h_namespace_get, A},
    {"GET", "/api/v4/projects", h_projects_list, A},
    {"GET", "/api/v4/projects/:id", h_project_get, A},
    {"PUT", "/api/v4/projects/:id", h_project_put, A},
    {"GET", "/api/v4/projects/:id/members/all/:user_id", sim_h_project_member_all, A},
    {"GET", "/api/v4/projects/:id/hooks", sim_h_hooks, A},
    {"POST", "/api/v4/projects/:id/hooks", sim_h_hooks, A},
    {"GET", "/api/v4/projects/:id/hooks/:hook_id", sim_h_hook, A},
    {"PUT", "/api/v4/projects/:id/hooks/:hook_id", sim_h_hook, A},
    {"DELETE", "/api/v4/projects/:id/hooks/:hook_id", sim_h_hook, A},
    {"POST", "/api/v4/projects/:id/hooks/:hook_id/test/:trigger", sim_h_hook_test, A},
    {"POST", "/api/v4/projects/:id/statuses/:sha", sim_h_status_post, A},
    {"GET", "/api/v4/projects/:id/repository/commits/:sha", sim_h_commit_get, A},
    {"GET", "/api/v4/projects/:id/repository/commits/:sha/statuses", sim_h_statuses_list, A},
    {"GET", "/api/v4/projects/:id/repository/commits/:sha/merge_requests", sim_h_commit_mrs, A},
    {"GET", "/api/v4/projects/:id/repository/archive", sim_h_archive, A},
    {"GET", "/api/v4/projects/:id/repository/archive.tar.gz", sim_h_archive, A},
    {"GET", "/api/v4/projects/:id/repository/compare", sim_h_compare, A},
    {"GET", "/api/v4/projects/:id/pipelines", sim_h_pipelines_list, A},
    {"GET", "/api/v4/projects/:id/pipelines/:pipeline_id", sim_h_pipeline_get, A},
    {"GET", "/api/v4/projects/:id/merge_requests", sim_h_mrs_list, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid", sim_h_mr_get, A},
    {"PUT", "/api/v4/projects/:id/merge_requests/:merge_request_iid/merge", sim_h_mr_merge, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/diffs", sim_h_mr_diffs, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/changes", sim_h_mr_changes, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/pipelines", sim_h_mr_pipelines, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes", sim_h_notes_list, A},
    {"POST", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes", sim_h_note_add, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes/:note_id", sim_h_note_get, A},
    {"PUT", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes/:note_id", sim_h_note_edit, A},
    {"DELETE", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes/:note_id", sim_h_note_delete, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/discussions", sim_h_discussions_list, A},
    {"POST", "/api/v4/projects/:id/merge_requests/:merge_request_iid/discussions", sim_h_discussion_add, A},
    {"GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/discussions/:discussion_id", sim_h_discussion_get,
     A},
    {"PUT", "/api/v4/projects/:id/merge_requests/:merge_request_iid/discussions/:discussion_id",
     sim_h_discussion_resolve, A},
    {"POST", "/api/v4/projects/:id/merge_requests/:merge_request_iid/discussions/:discussion_id/notes",
     sim_h_discussion_reply, A},
};
#undef A
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

const char *sim_api_template(struct sim_req *r)
{
	bool path_matched = false;
	const struct sim_route *rt = sim_route_match(r, routes, N_ROUTES, &path_matched);
	return rt ? rt->template_path : NULL;
}

void sim_api_handle(struct sim_req *r)
{
	bool path_matched = false;
	const struct sim_route *rt = sim_route_match(r, routes, N_ROUTES, &path_matched);
	if (!rt) {
		/* Grape: unknown route (including an unencoded slash inside :id) => 404 {"error":"404 Not Found"}. */
		if (path_matched)
			sim_reply_error(r, 405, "405 Not Allowed");
		else
			sim_reply_error(r, 404, "404 Not Found");
		return;
	}
	if (!authenticate(r, rt->scope_class))
		return;
	if (r->body_invalid) {
		sim_reply_error(r, 400, "The provided content-type 'application/json' is not supported.");
		return;
	}
	if (sim_strict_before_handler(r, rt->template_path))
		return;
	rt->handler(r);
}
