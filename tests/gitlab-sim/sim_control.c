/*
 * tests/gitlab-sim/sim_control.c
 *    /__sim/ control endpoints (see README.md for every request and response).
 *
 * Design: thin handlers over the model; anything that makes GitLab fire a webhook (MR open, push,
 *    reopen, close; project create/destroy) goes through sim_hooks_fire_*. A "wait": true in the body
 *    (or ?wait=true) makes the call return only when the deliveries it caused have finished.
 * Ownership: nothing outlives a call except model changes.
 */
#include "sim_control.h"

#include "sim_api.h"
#include "sim_hooks.h"
#include "sim_pipelines.h"
#include "sim_render.h"
#include "sim_strict.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void (*startup_fn)(struct sim *s);

void sim_control_set_startup(void (*fn)(struct sim *s))
{
	startup_fn = fn;
}

/* --- helpers --------------------------------------------------------------------------------------------- */

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool jhas(struct json_object *o, const char *key, struct json_object **v)
{
	return o && json_object_object_get_ex(o, key, v);
}

static int64_t jint(struct json_object *o, const char *key, int64_t def)
{
	struct json_object *v = NULL;
	if (!jhas(o, key, &v) || json_object_is_type(v, json_type_null))
		return def;
	return json_object_get_int64(v);
}

static bool jbool(struct json_object *o, const char *key, bool def)
{
	struct json_object *v = NULL;
	if (!jhas(o, key, &v) || json_object_is_type(v, json_type_null))
		return def;
	return json_object_get_boolean(v);
}

static int parse_tier(const char *t)
{
	if (!t)
		return -1;
	if (strcmp(t, "free") == 0)
		return SIM_TIER_FREE;
	if (strcmp(t, "premium") == 0)
		return SIM_TIER_PREMIUM;
	if (strcmp(t, "ultimate") == 0)
		return SIM_TIER_ULTIMATE;
	return -2;
}

static const char *tier_name(int t)
{
	return t == SIM_TIER_ULTIMATE ? "ultimate" : t == SIM_TIER_PREMIUM ? "premium" : "free";
}

/* Wait (lock held) until every delivery id in ids is done, up to timeout_ms. */
static void wait_deliveries(struct sim *s, struct json_object *ids, int timeout_ms)
{
	struct timespec deadline;
	sim_deadline(timeout_ms, &deadline);
	uint64_t gen = s->generation;
	for (;;) {
		if (gen != s->generation)
			return;
		bool all_done = true;
		if (ids) {
			for (size_t i = 0; i < json_object_array_length(ids) && all_done; i++) {
				struct sim_delivery *d =
				    sim_delivery_by_id(s, json_object_get_int64(json_object_array_get_idx(ids, i)));
				all_done = !d || d->state == SIM_DELIVERY_DONE;
			}
		} else {
			all_done = sim_deliveries_unfinished(s) == 0;
		}
		if (all_done)
			return;
		s->version++; /* the caller may have changed the model; others run while we wait */
		int rc = pthread_cond_timedwait(&s->delivery_cv, &s->mu, &deadline);
		sim_wait_renders(s); /* the caller goes on changing the model */
		if (rc == ETIMEDOUT)
			return;
	}
}

static bool want_wait(struct sim_req *r)
{
	bool w = false;
	sim_param_bool(r, "wait", &w);
	return w;
}

static struct json_object *control_project(struct sim *s, struct sim_project *p)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(p->id));
	json_object_object_add(o, "path", json_object_new_string(p->path));
	json_object_object_add(o, "path_with_namespace", json_object_new_string(p->path_with_namespace));
	json_object_object_add(o, "namespace_id", json_object_new_int64(p->ns->id));
	json_object_object_add(o, "default_branch", json_object_new_string(p->default_branch));
	json_object_object_add(o, "visibility", json_object_new_string(p->visibility));
	json_object_object_add(o, "archived", json_object_new_boolean(p->archived));
	json_object_object_add(o, "marked_for_deletion_on", sim_json_str_or_null(p->marked_for_deletion_on));
	json_object_object_add(o, "removed", json_object_new_boolean(p->removed));
	struct sim_commit *head = p->commits.items[0];
	for (size_t i = 0; i < p->commits.len; i++) {
		struct sim_commit *c = p->commits.items[i];
		if (strcmp(c->ref, p->default_branch) == 0)
			head = c;
	}
	json_object_object_add(o, "head_sha", json_object_new_string(head->sha));
	struct json_object *settings = sim_project_default_settings();
	json_object_object_foreach(settings, k, v)
	{
		(void)v;
		json_object_object_add(settings, k, json_object_get(sim_project_setting(p, k)));
	}
	json_object_object_add(o, "settings", settings);
	struct json_object *hooks = json_object_new_array();
	for (size_t i = 0; i < s->hooks.len; i++) {
		struct sim_hook *h = s->hooks.items[i];
		if (h->removed || h->group_hook || h->owner_id != p->id)
			continue;
		struct json_object *ho = sim_render_hook(h);
		json_object_object_add(ho, "token", sim_json_str_or_null(h->token));
		json_object_object_add(ho, "failures", json_object_new_int(h->failures));
		json_object_array_add(hooks, ho);
	}
	json_object_object_add(o, "hooks", hooks);
	return o;
}

static struct sim_project *cap_project(struct sim_req *r, int k)
{
	struct sim_project *p = sim_project_by_ref(r->s, sim_req_cap(r, k));
	if (!p)
		sim_reply_error(r, 404, "no such project");
	return p;
}

/* --- reset, health, tokens, groups, seed ----------------------------------------------------------------- */

static void c_health(struct sim_req *r)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	json_object_object_add(o, "instance_url", json_object_new_string(r->s->instance_url));
	json_object_object_add(o, "projects", json_object_new_int64((int64_t)r->s->projects.len));
	json_object_object_add(o, "groups", json_object_new_int64((int64_t)r->s->groups.len));
	/* The process id lets a test harness tell its own simulator from another one on a reused port. */
	json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
	sim_reply_json(r, 200, o);
}

static void c_reset(struct sim_req *r)
{
	sim_state_clear(r->s);
	pthread_cond_broadcast(&r->s->delivery_cv);
	if (startup_fn)
		startup_fn(r->s);
	c_health(r);
}

struct sim_token *sim_control_add_token(struct sim *s, struct json_object *spec, const char **err)
{
	const char *token = jstr(spec, "token");
	if (!token || !*token) {
		*err = "token is required";
		return NULL;
	}
	const char *kind_s = jstr(spec, "kind");
	enum sim_token_kind kind = SIM_TOKEN_PERSONAL;
	if (kind_s && strcmp(kind_s, "group_access") == 0)
		kind = SIM_TOKEN_GROUP_ACCESS;
	else if (kind_s && strcmp(kind_s, "service_account") == 0)
		kind = SIM_TOKEN_SERVICE_ACCOUNT;
	else if (kind_s && strcmp(kind_s, "personal") != 0) {
		*err = "kind must be personal, group_access or service_account";
		return NULL;
	}
	unsigned scopes = 0;
	struct json_object *sc = NULL;
	if (jhas(spec, "scopes", &sc) && json_object_is_type(sc, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(sc); i++) {
			unsigned bit = sim_scope_parse(json_object_get_string(json_object_array_get_idx(sc, i)));
			if (!bit) {
				*err = "unknown scope (api, read_api, read_user, read_repository, write_repository, "
				       "self_rotate, sudo)";
				return NULL;
			}
			scopes |= bit;
		}
	} else {
		scopes = SIM_SCOPE_API;
	}
	const char *expires = jstr(spec, "expires_at");
	if (expires && (strlen(expires) != 10 || expires[4] != '-' || expires[7] != '-')) {
		*err = "expires_at must be YYYY-MM-DD or null";
		return NULL;
	}
	struct json_object *access = NULL;
	if (jhas(spec, "access", &access) && !json_object_is_type(access, json_type_object)) {
		*err = "access must be an object {\"group/or/project/path\": level}";
		return NULL;
	}
	/* Replace a token with the same value. */
	struct sim_token *t = sim_token_find(s, token);
	if (t) {
		for (size_t i = 0; i < t->n_access; i++)
			free(t->access[i].path);
		free(t->access);
		t->access = NULL;
		t->n_access = 0;
	} else {
		t = sim_xcalloc(1, sizeof(*t));
		t->id = s->next_token_id++;
		t->token = sim_strdup(token);
		t->created_at = sim_now_iso();
		sim_vec_push(&s->tokens, t);
	}
	t->kind = kind;
	t->scopes = scopes;
	free(t->expires_at);
	t->expires_at = sim_strdup(expires);
	t->revoked = jbool(spec, "revoked", false);
	t->admin = jbool(spec, "admin", false);
	free(t->name);
	t->name = sim_strdup(jstr(spec, "name") ? jstr(spec, "name") : "sim token");
	free(t->description);
	t->description = sim_strdup(jstr(spec, "description") ? jstr(spec, "description") : "");
	const char *username = jstr(spec, "username");
	char *gen = NULL;
	if (!username) {
		char hex[41];
		sim_sha_for((uint64_t)t->id * 31 + 7, hex);
		hex[16] = '\0';
		if (kind == SIM_TOKEN_GROUP_ACCESS)
			gen = sim_printf("group_%lld_bot_%s", (long long)t->id, hex);
		else if (kind == SIM_TOKEN_SERVICE_ACCOUNT)
			gen = sim_printf("service_account_group_%lld_%s", (long long)t->id, hex);
		else
			gen = sim_printf("user%lld", (long long)t->id);
		username = gen;
	}
	t->user =
	    sim_user_get_or_add(s, username, jstr(spec, "user_name"), jbool(spec, "bot", kind != SIM_TOKEN_PERSONAL));
	free(gen);
	if (access) {
		size_t n = (size_t)json_object_object_length(access);
		t->access = sim_xcalloc(n, sizeof(*t->access));
		json_object_object_foreach(access, path, level)
		{
			t->access[t->n_access].path = sim_strdup(path);
			t->access[t->n_access].level = json_object_get_int(level);
			t->n_access++;
		}
	}
	return t;
}

static struct json_object *control_token(struct sim_token *t)
{
	struct json_object *o = sim_render_pat(t);
	static const char *kinds[] = {"personal", "group_access", "service_account"};
	json_object_object_add(o, "token", json_object_new_string(t->token));
	json_object_object_add(o, "kind", json_object_new_string(kinds[t->kind]));
	json_object_object_add(o, "username", json_object_new_string(t->user->username));
	json_object_object_add(o, "bot", json_object_new_boolean(t->user->bot));
	json_object_object_add(o, "admin", json_object_new_boolean(t->admin));
	struct json_object *acc = json_object_new_object();
	for (size_t i = 0; i < t->n_access; i++)
		json_object_object_add(acc, t->access[i].path, json_object_new_int(t->access[i].level));
	json_object_object_add(o, "access", acc);
	return o;
}

static void c_token_add(struct sim_req *r)
{
	const char *err = NULL;
	struct sim_token *t = sim_control_add_token(r->s, r->params, &err);
	if (!t) {
		sim_reply_error(r, 400, err);
		return;
	}
	sim_reply_json(r, 201, control_token(t));
}

static void c_tokens_list(struct sim_req *r)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < r->s->tokens.len; i++)
		json_object_array_add(arr, control_token(r->s->tokens.items[i]));
	sim_reply_json(r, 200, arr);
}

static void c_token_revoke(struct sim_req *r)
{
	struct sim_token *t = sim_token_find(r->s, sim_param(r, "token"));
	if (!t) {
		sim_reply_error(r, 404, "no such token");
		return;
	}
	t->revoked = true;
	sim_reply_json(r, 200, control_token(t));
}

static void c_group_add(struct sim_req *r)
{
	const char *path = sim_param(r, "full_path");
	int tier = parse_tier(sim_param(r, "tier"));
	if (!path || !*path || path[0] == '/' || path[strlen(path) - 1] == '/') {
		sim_reply_error(r, 400, "full_path is required (e.g. \"acme/platform\")");
		return;
	}
	if (tier == -2) {
		sim_reply_error(r, 400, "tier must be free, premium or ultimate");
		return;
	}
	struct sim_group *g = sim_group_ensure(r->s, path, tier);
	if (tier >= 0)
		g->tier = tier;
	const char *vis = sim_param(r, "visibility");
	if (vis) {
		free(g->visibility);
		g->visibility = sim_strdup(vis);
	}
	struct json_object *o = sim_render_group(r->s, g);
	json_object_object_add(o, "tier", json_object_new_string(tier_name(sim_group_tier(g))));
	sim_reply_json(r, 201, o);
}

static void c_seed(struct sim_req *r)
{
	const char *root = sim_param(r, "root");
	int64_t n = 0, depth = 2, fanout = 3;
	int tier = parse_tier(sim_param(r, "tier"));
	if (!root || !*root || strchr(root, '/') == root) {
		sim_reply_error(r, 400, "root is required");
		return;
	}
	if (tier == -2) {
		sim_reply_error(r, 400, "tier must be free, premium or ultimate");
		return;
	}
	sim_param_int(r, "projects", &n);
	sim_param_int(r, "depth", &depth);
	sim_param_int(r, "fanout", &fanout);
	if (n < 0 || n > 200000) {
		sim_reply_error(r, 400, "projects must be between 0 and 200000");
		return;
	}
	long made = sim_seed(r->s, root, (long)n, (int)depth, (int)fanout, tier, sim_param(r, "visibility"));
	struct sim_group *g = sim_group_by_path(r->s, root);
	int64_t total = 0, groups = 0;
	for (size_t i = 0; i < r->s->projects.len; i++) {
		struct sim_project *p = r->s->projects.items[i];
		if (!p->removed && sim_group_is_under(p->ns, g))
			total++;
	}
	for (size_t i = 0; i < r->s->groups.len; i++)
		if (sim_group_is_under(r->s->groups.items[i], g))
			groups++;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "root_id", json_object_new_int64(g->id));
	json_object_object_add(o, "root", json_object_new_string(g->full_path));
	json_object_object_add(o, "created", json_object_new_int64(made));
	json_object_object_add(o, "projects", json_object_new_int64(total));
	json_object_object_add(o, "groups", json_object_new_int64(groups));
	sim_reply_json(r, 201, o);
}

/* --- projects -------------------------------------------------------------------------------------------- */

static bool parse_files(struct json_object *files, const char **err)
{
	if (!files)
		return true;
	if (!json_object_is_type(files, json_type_array)) {
		*err = "files must be an array of {path, content}";
		return false;
	}
	for (size_t i = 0; i < json_object_array_length(files); i++) {
		struct json_object *f = json_object_array_get_idx(files, i), *c = NULL;
		if (!jstr(f, "path") || !*jstr(f, "path") ||
		    (jhas(f, "content", &c) && c && !json_object_is_type(c, json_type_string))) {
			*err = "each file needs a path and a string (or null) content";
			return false;
		}
		const char *mode = jstr(f, "mode");
		if (jhas(f, "mode", &c) && (!mode || (strcmp(mode, "100644") != 0 && strcmp(mode, "100755") != 0 &&
		                                      strcmp(mode, "120000") != 0))) {
			*err = "a file mode is git's \"100644\", \"100755\" (executable) or \"120000\" (symlink)";
			return false;
		}
	}
	return true;
}

/* The request's "files" (NULL when absent and not required), or false after answering 400. */
static bool files_param(struct sim_req *r, bool required, struct json_object **files)
{
	const char *err = "files is required";
	*files = sim_param_json(r, "files");
	if ((*files || !required) && parse_files(*files, &err))
		return true;
	sim_reply_error(r, 400, err);
	return false;
}

/* A new tree: base with files (content null = delete) applied. */
static void tree_apply(const struct sim_file *base, size_t nb, struct json_object *files, struct sim_file **out,
                       size_t *n_out)
{
	size_t cap = nb + (files ? json_object_array_length(files) : 0) + 1, n = 0;
	struct sim_file *t = sim_xcalloc(cap, sizeof(*t));
	for (size_t i = 0; i < nb; i++) {
		t[n].path = sim_strdup(base[i].path);
		t[n].content = sim_strdup(base[i].content);
		t[n].mode = base[i].mode;
		n++;
	}
	for (size_t i = 0; files && i < json_object_array_length(files); i++) {
		struct json_object *f = json_object_array_get_idx(files, i);
		const char *path = jstr(f, "path");
		const char *content = jstr(f, "content");
		const char *mode_s = jstr(f, "mode"); /* validated by parse_files */
		unsigned mode = mode_s ? (unsigned)strtoul(mode_s, NULL, 8) : 0;
		size_t k = 0;
		while (k < n && strcmp(t[k].path, path) != 0)
			k++;
		if (k < n) {
			free(t[k].content);
			if (content) {
				t[k].content = sim_strdup(content);
				if (mode_s)
					t[k].mode = mode;
			} else {
				free(t[k].path);
				t[k] = t[n - 1];
				n--;
			}
		} else if (content) {
			t[n].path = sim_strdup(path);
			t[n].content = sim_strdup(content);
			t[n].mode = mode;
			n++;
		}
	}
	*out = t;
	*n_out = n;
}

static void c_project_add(struct sim_req *r)
{
	const char *ns_path = sim_param(r, "namespace");
	const char *path = sim_param(r, "path");
	if (!ns_path || !*ns_path || !path || !*path || strchr(path, '/')) {
		sim_reply_error(r, 400, "namespace and path are required");
		return;
	}
	struct json_object *files;
	if (!files_param(r, false, &files))
		return;
	char *pwn = sim_printf("%s/%s", ns_path, path);
	bool exists = sim_project_by_path(r->s, pwn) != NULL;
	free(pwn);
	if (exists) {
		sim_reply_error(r, 409, "a project with this path exists");
		return;
	}
	struct sim_group *g = sim_group_ensure(
	    r->s, ns_path, parse_tier(sim_param(r, "tier")) >= 0 ? parse_tier(sim_param(r, "tier")) : -1);
	struct sim_project *p = sim_project_add(r->s, g, path, sim_param(r, "name"));
	const char *vis = sim_param(r, "visibility");
	if (vis) {
		free(p->visibility);
		p->visibility = sim_strdup(vis);
	}
	const char *db = sim_param(r, "default_branch");
	struct sim_commit *c = p->commits.items[0];
	if (db && *db) {
		free(p->default_branch);
		p->default_branch = sim_strdup(db);
		free(c->ref);
		c->ref = sim_strdup(db);
	}
	free(p->created_at);
	p->created_at = sim_now_iso();
	if (files) {
		struct sim_file *tree = NULL;
		size_t n = 0;
		tree_apply(c->files, c->n_files, files, &tree, &n);
		for (size_t i = 0; i < c->n_files; i++) {
			free(c->files[i].path);
			free(c->files[i].content);
		}
		free(c->files);
		c->files = tree;
		c->n_files = n;
	}
	sim_param_bool(r, "archived", &p->archived);
	struct json_object *ids = json_object_new_array();
	if (jbool(r->params, "notify", true))
		sim_hooks_fire_project(r->s, p, "project_create", ids);
	if (want_wait(r))
		wait_deliveries(r->s, ids, 30000);
	struct json_object *o = control_project(r->s, p);
	json_object_object_add(o, "deliveries", ids);
	sim_reply_json(r, 201, o);
}

static void c_project_get(struct sim_req *r)
{
	struct sim_project *p = cap_project(r, 0);
	if (p)
		sim_reply_json(r, 200, control_project(r->s, p));
}

static void c_project_delete(struct sim_req *r)
{
	struct sim_project *p = cap_project(r, 0);
	if (!p)
		return;
	struct json_object *ids = json_object_new_array();
	sim_hooks_fire_project(r->s, p, "project_destroy", ids);
	p->removed = true;
	if (want_wait(r))
		wait_deliveries(r->s, ids, 30000);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(p->id));
	json_object_object_add(o, "removed", json_object_new_boolean(true));
	json_object_object_add(o, "deliveries", ids);
	sim_reply_json(r, 200, o);
}

/* The edits of POST /__sim/projects/:id/<change>: false when the edit refused and replied itself. */
static bool project_archive(struct sim_req *r, struct sim_project *p)
{
	bool archived = true;
	sim_param_bool(r, "archived", &archived);
	p->archived = archived;
	return true;
}

/* A project moved to another group (GitLab's PUT /projects/:id/transfer): same id, new namespace and paths. */
static bool project_transfer(struct sim_req *r, struct sim_project *p)
{
	const char *ns_path = sim_param(r, "namespace");
	struct sim_group *ns = ns_path ? sim_group_by_path(r->s, ns_path) : NULL;
	if (!ns) {
		sim_reply_error(r, 404, "no such group (namespace is a group's full path)");
		return false;
	}
	char *pwn = sim_printf("%s/%s", ns->full_path, p->path);
	struct sim_project *other = sim_project_by_path(r->s, pwn);
	if (other && other != p) {
		free(pwn);
		sim_reply_error(r, 400, "the namespace already has a project with that path");
		return false;
	}
	free(p->path_with_namespace);
	p->path_with_namespace = pwn;
	p->ns = ns;
	return true;
}

static bool project_pending_delete(struct sim_req *r, struct sim_project *p)
{
	struct json_object *on = sim_param_json(r, "on");
	free(p->marked_for_deletion_on);
	p->marked_for_deletion_on = NULL;
	if (!on) {
		char today[11];
		sim_today(today);
		p->marked_for_deletion_on = sim_strdup(today);
	} else if (!json_object_is_type(on, json_type_null)) {
		p->marked_for_deletion_on = sim_strdup(json_object_get_string(on));
	}
	return true;
}

/* POST /__sim/projects/:id/<change> (the routes below name each change): the edit, then the project as
 * the control API shows it. */
static void c_project_change(struct sim_req *r)
{
	static const struct {
		const char *name;
		bool (*edit)(struct sim_req *r, struct sim_project *p);
	} changes[] = {
	    {"archive", project_archive},
	    {"pending_delete", project_pending_delete},
	    {"transfer", project_transfer},
	};
	struct sim_project *p = cap_project(r, 0);
	for (size_t i = 0; p && i < sizeof(changes) / sizeof(changes[0]); i++)
		if (strcmp(r->segs[3], changes[i].name) == 0 && changes[i].edit(r, p))
			sim_reply_json(r, 200, control_project(r->s, p));
}

/* --- merge requests -------------------------------------------------------------------------------------- */

static struct sim_commit *branch_head(struct sim_project *p, const char *branch)
{
	struct sim_commit *head = NULL;
	for (size_t i = 0; i < p->commits.len; i++) {
		struct sim_commit *c = p->commits.items[i];
		if (strcmp(c->ref, branch) == 0)
			head = c;
	}
	return head;
}

static void mr_reply(struct sim_req *r, struct sim_mr *m, const char *oldrev, struct json_object *ids, int status)
{
	if (want_wait(r))
		wait_deliveries(r->s, ids, 30000);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(m->id));
	json_object_object_add(o, "iid", json_object_new_int64(m->iid));
	json_object_object_add(o, "project_id", json_object_new_int64(m->project_id));
	json_object_object_add(o, "sha", json_object_new_string(m->sha));
	json_object_object_add(o, "base_sha", json_object_new_string(m->base_sha));
	json_object_object_add(o, "state", json_object_new_string(m->state));
	json_object_object_add(o, "source_branch", json_object_new_string(m->source_branch));
	json_object_object_add(o, "oldrev", sim_json_str_or_null(oldrev));
	json_object_object_add(o, "auto_merge", json_object_new_boolean(m->auto_merge));
	struct json_object *approved = json_object_new_array();
	for (size_t i = 0; i < m->n_approved; i++)
		json_object_array_add(approved, json_object_new_int64(m->approved_by[i]));
	json_object_object_add(o, "approved_by", approved);
	json_object_object_add(o, "deliveries", ids);
	sim_reply_json(r, status, o);
}

/* Merge pushed files into the MR's change list (old content stays the base version). */
static void mr_merge_changes(struct sim_mr *m, const struct sim_file *base, size_t nb, struct json_object *files)
{
	for (size_t i = 0; files && i < json_object_array_length(files); i++) {
		struct json_object *f = json_object_array_get_idx(files, i), *oc = NULL;
		const char *path = jstr(f, "path");
		const char *content = jstr(f, "content");
		size_t k = 0;
		while (k < m->n_changes && strcmp(m->changes[k].path, path) != 0)
			k++;
		if (k == m->n_changes) {
			struct sim_change *nc = realloc(m->changes, (m->n_changes + 1) * sizeof(*nc));
			if (!nc)
				abort();
			m->changes = nc;
			memset(&m->changes[k], 0, sizeof(m->changes[k]));
			m->changes[k].path = sim_strdup(path);
			if (jhas(f, "old_content", &oc)) {
				m->changes[k].old_content = oc && json_object_is_type(oc, json_type_string)
				                                ? sim_strdup(json_object_get_string(oc))
				                                : NULL;
			} else {
				for (size_t b = 0; b < nb; b++)
					if (strcmp(base[b].path, path) == 0)
						m->changes[k].old_content = sim_strdup(base[b].content);
			}
			m->n_changes++;
		}
		free(m->changes[k].new_content);
		m->changes[k].new_content = sim_strdup(content);
		/* A change undone by a later push disappears from the diff. */
		struct sim_change *c = &m->changes[k];
		bool same = (!c->old_content && !c->new_content) ||
		            (c->old_content && c->new_content && strcmp(c->old_content, c->new_content) == 0);
		if (same) {
			free(c->path);
			free(c->old_content);
			free(c->new_content);
			m->changes[k] = m->changes[m->n_changes - 1];
			m->n_changes--;
		}
	}
}

static void c_mr_open(struct sim_req *r)
{
	struct sim *s = r->s;
	struct json_object *pidj = sim_param_json(r, "project_id");
	struct sim_project *p = NULL;
	if (pidj && json_object_is_type(pidj, json_type_int))
		p = sim_project_by_id(s, json_object_get_int64(pidj));
	else if (pidj)
		p = sim_project_by_path(s, json_object_get_string(pidj));
	if (!p) {
		sim_reply_error(r, 404, "no such project (project_id)");
		return;
	}
	struct json_object *files;
	if (!files_param(r, false, &files))
		return;
	const char *target = sim_param(r, "target_branch");
	if (!target)
		target = p->default_branch;
	struct sim_commit *base = branch_head(p, target);
	if (!base) {
		sim_reply_error(r, 400, "target_branch does not exist");
		return;
	}
	struct sim_mr *m = sim_xcalloc(1, sizeof(*m));
	m->id = s->next_mr_id++;
	m->iid = p->next_mr_iid++;
	m->project_id = p->id;
	const char *source = sim_param(r, "source_branch");
	m->source_branch = source ? sim_strdup(source) : sim_printf("feature-%lld", (long long)m->iid);
	m->target_branch = sim_strdup(target);
	m->title = sim_strdup(sim_param(r, "title") ? sim_param(r, "title") : "Simulated change");
	m->description = sim_strdup(sim_param(r, "description") ? sim_param(r, "description") : "");
	m->state = sim_strdup("opened");
	m->author = s->root_user;
	m->created_at = sim_now_iso();
	m->updated_at = sim_now_iso();
	memcpy(m->base_sha, base->sha, sizeof(m->base_sha));
	const struct sim_file *bt;
	size_t nb = sim_commit_tree(p, base, &bt);
	mr_merge_changes(m, bt, nb, files);
	struct sim_commit *head = sim_project_add_commit(s, p, m->source_branch, base->sha,
	                                                 sim_param(r, "message") ? sim_param(r, "message") : m->title);
	nb = sim_commit_tree(p, base, &bt);
	tree_apply(bt, nb, files, &head->files, &head->n_files);
	memcpy(m->sha, head->sha, sizeof(m->sha));
	sim_strict_merge_check_restart(s, m);
	sim_vec_push(&s->mrs, m);
	free(p->last_activity_at);
	p->last_activity_at = sim_now_iso();
	struct json_object *ids = json_object_new_array();
	if (jbool(r->params, "notify", true))
		sim_hooks_fire_mr(s, m, "open", NULL, ids);
	mr_reply(r, m, NULL, ids, 201);
}

static struct sim_mr *cap_mr(struct sim_req *r)
{
	struct sim_project *p = cap_project(r, 0);
	int64_t iid = 0;
	if (!p)
		return NULL;
	struct sim_mr *m = sim_parse_int64(sim_req_cap(r, 1), &iid) ? sim_mr_find(r->s, p->id, iid) : NULL;
	if (!m)
		sim_reply_error(r, 404, "no such merge request");
	return m;
}

static void c_mr_push(struct sim_req *r)
{
	struct sim *s = r->s;
	struct sim_mr *m = cap_mr(r);
	struct json_object *files;
	if (!m || !files_param(r, true, &files))
		return;
	struct sim_project *p = sim_project_by_id(s, m->project_id);
	struct sim_commit *prev = sim_project_commit(p, m->sha), *base = sim_project_commit(p, m->base_sha);
	char oldrev[41];
	memcpy(oldrev, m->sha, sizeof(oldrev));
	const struct sim_file *bt;
	size_t nb = sim_commit_tree(p, base, &bt);
	mr_merge_changes(m, bt, nb, files);
	struct sim_commit *head = sim_project_add_commit(s, p, m->source_branch, prev->sha,
	                                                 sim_param(r, "message") ? sim_param(r, "message") : "Push");
	nb = sim_commit_tree(p, prev, &bt);
	tree_apply(bt, nb, files, &head->files, &head->n_files);
	memcpy(m->sha, head->sha, sizeof(m->sha));
	sim_strict_merge_check_restart(s, m);
	free(m->updated_at);
	m->updated_at = sim_now_iso();
	struct json_object *ids = json_object_new_array();
	if (strcmp(m->state, "opened") == 0 && jbool(r->params, "notify", true))
		sim_hooks_fire_mr(s, m, "update", oldrev, ids);
	mr_reply(r, m, oldrev, ids, 200);
}

static void c_mr_state(struct sim_req *r, const char *from, const char *to, const char *action)
{
	struct sim_mr *m = cap_mr(r);
	if (!m)
		return;
	if (strcmp(m->state, from) != 0) {
		char *msg = sim_printf("merge request is %s, not %s", m->state, from);
		sim_reply_error(r, 409, msg);
		free(msg);
		return;
	}
	free(m->state);
	m->state = sim_strdup(to);
	free(m->updated_at);
	m->updated_at = sim_now_iso();
	free(m->closed_at);
	m->closed_at = strcmp(to, "closed") == 0 ? sim_now_iso() : NULL;
	struct json_object *ids = json_object_new_array();
	if (jbool(r->params, "notify", true))
		sim_hooks_fire_mr(r->s, m, action, NULL, ids);
	mr_reply(r, m, NULL, ids, 200);
}

static void c_mr_get(struct sim_req *r)
{
	struct sim_mr *m = cap_mr(r);
	if (m)
		mr_reply(r, m, NULL, json_object_new_array(), 200);
}

static void c_mr_close(struct sim_req *r)
{
	c_mr_state(r, "opened", "closed", "close");
}

static void c_mr_reopen(struct sim_req *r)
{
	c_mr_state(r, "closed", "opened", "reopen");
}

static void c_mr_merge(struct sim_req *r)
{
	c_mr_state(r, "opened", "merged", "merge");
}

/* --- counters, faults, scripts --------------------------------------------------------------------------- */

static void c_counters(struct sim_req *r)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "total", json_object_new_int64(r->s->counter_total));
	json_object_object_add(o, "writes", json_object_new_int64(r->s->counter_writes));
	json_object_object_add(o, "rate_limited", json_object_new_int64(r->s->counter_rate_limited));
	json_object_object_add(o, "connections", json_object_new_int64(r->s->counter_connections));
	json_object_object_add(o, "peak_in_flight", json_object_new_int64(r->s->peak_in_flight));
	json_object_object_add(o, "busy_ms", json_object_new_double(r->s->busy_ms));
	json_object_object_add(o, "pages_unlocked", json_object_new_int64(r->s->counter_pages_unlocked));
	json_object_object_add(o, "peak_renders", json_object_new_int(r->s->peak_renders));
	json_object_object_add(o, "by_route", json_object_get(r->s->counters));
	sim_reply_json(r, 200, o);
}

static void c_counters_reset(struct sim_req *r)
{
	json_object_put(r->s->counters);
	r->s->counters = json_object_new_object();
	r->s->counter_total = r->s->counter_writes = r->s->counter_rate_limited = r->s->counter_connections = 0;
	r->s->peak_in_flight = r->s->in_flight;
	r->s->busy_ms = 0;
	r->s->counter_pages_unlocked = 0;
	r->s->peak_renders = r->s->renders;
	c_counters(r);
}

/* The fault knobs, one row each, in the order GET /__sim/faults shows them: a rate is a double (the share of
 * requests), anything else an int (ms, a count, s); POST sets every one (absent: its default). */
static const struct {
	const char *name;
	size_t off;
	bool rate;
	int dflt;
} fault_fields[] = {
    {"latency_ms", offsetof(struct sim_faults, latency_ms), false, 0},
    {"jitter_ms", offsetof(struct sim_faults, jitter_ms), false, 0},
    {"error_rate", offsetof(struct sim_faults, error_rate), true, 0},
    {"reset_rate", offsetof(struct sim_faults, reset_rate), true, 0},
    {"stall_rate", offsetof(struct sim_faults, stall_rate), true, 0},
    {"stall_ms", offsetof(struct sim_faults, stall_ms), false, 0},
    {"rate_limit_per_minute", offsetof(struct sim_faults, rate_limit_per_minute), false, 0},
    {"hook_backoff_s", offsetof(struct sim_faults, hook_backoff_s), false, 60},
};
#define N_FAULT_FIELDS (sizeof(fault_fields) / sizeof(fault_fields[0]))

static struct json_object *faults_json(const struct sim_faults *f)
{
	struct json_object *o = json_object_new_object();
	for (size_t i = 0; i < N_FAULT_FIELDS; i++) {
		const char *at = (const char *)f + fault_fields[i].off;
		json_object_object_add(o, fault_fields[i].name,
		                       fault_fields[i].rate ? json_object_new_double(*(const double *)at)
		                                            : json_object_new_int(*(const int *)at));
	}
	return o;
}

static double jdouble(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	return jhas(o, key, &v) ? json_object_get_double(v) : 0.0;
}

static void c_faults_get(struct sim_req *r)
{
	sim_reply_json(r, 200, faults_json(&r->s->faults));
}

static void c_faults_set(struct sim_req *r)
{
	struct sim_faults f = {0};
	bool negative = false;
	for (size_t i = 0; i < N_FAULT_FIELDS; i++) {
		char *at = (char *)&f + fault_fields[i].off;
		const char *name = fault_fields[i].name;
		if (fault_fields[i].rate) {
			double *v = (double *)at;
			*v = jdouble(r->params, name);
			negative = negative || *v < 0;
		} else {
			int *v = (int *)at;
			*v = (int)jint(r->params, name, fault_fields[i].dflt);
			negative = negative || *v < 0;
		}
	}
	if (negative || f.error_rate + f.reset_rate + f.stall_rate > 1.0) {
		sim_reply_error(r, 400, "faults must be non-negative and the rates must sum to at most 1");
		return;
	}
	r->s->faults = f;
	/* A new limit starts new windows. */
	for (size_t i = 0; i < r->s->rate_buckets.len; i++) {
		struct sim_rate_bucket *b = r->s->rate_buckets.items[i];
		b->count = 0;
		b->window_start = 0;
	}
	sim_reply_json(r, 200, faults_json(&f));
}

static void c_script_add(struct sim_req *r)
{
	const char *method = sim_param(r, "method");
	const char *path = sim_param(r, "path");
	struct json_object *steps = sim_param_json(r, "responses");
	if (!method || !path || !steps || !json_object_is_type(steps, json_type_array) ||
	    json_object_array_length(steps) == 0) {
		sim_reply_error(r, 400, "method, path and a non-empty responses array are required");
		return;
	}
	struct sim_script *sc = sim_xcalloc(1, sizeof(*sc));
	sc->method = sim_strdup(method);
	sc->path = sim_strdup(path);
	sc->n_steps = json_object_array_length(steps);
	sc->steps = sim_xcalloc(sc->n_steps, sizeof(*sc->steps));
	for (size_t i = 0; i < sc->n_steps; i++) {
		struct json_object *st = json_object_array_get_idx(steps, i), *body = NULL, *hd = NULL;
		struct sim_script_step *k = &sc->steps[i];
		k->reset = jbool(st, "reset", false);
		k->stall_ms = (int)jint(st, "stall_ms", 0);
		k->status = (int)jint(st, "status", 0);
		if (jhas(st, "body", &body) && body)
			k->body = sim_strdup(json_object_is_type(body, json_type_string)
			                         ? json_object_get_string(body)
			                         : json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
		if (jhas(st, "headers", &hd) && hd && json_object_is_type(hd, json_type_object))
			k->headers = json_object_get(hd);
		if (!k->reset && !k->stall_ms && (k->status < 100 || k->status > 599)) {
			sim_vec_push(&r->s->scripts, sc); /* freed by the next reset or clear */
			sc->next = sc->n_steps;
			sim_reply_error(r, 400, "each response needs a status (100-599), reset: true, or stall_ms");
			return;
		}
	}
	sim_vec_push(&r->s->scripts, sc);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "method", json_object_new_string(sc->method));
	json_object_object_add(o, "path", json_object_new_string(sc->path));
	json_object_object_add(o, "queued", json_object_new_int64((int64_t)sc->n_steps));
	sim_reply_json(r, 201, o);
}

static void c_script_clear(struct sim_req *r)
{
	for (size_t i = 0; i < r->s->scripts.len; i++) {
		struct sim_script *sc = r->s->scripts.items[i];
		sc->next = sc->n_steps;
	}
	sim_reply_text(r, 204, "application/json", "", 0);
}

bool sim_control_script_next(struct sim *s, const char *method, const char *path, const char *template_path,
                             struct sim_script_step *step_out)
{
	for (size_t i = 0; i < s->scripts.len; i++) {
		struct sim_script *sc = s->scripts.items[i];
		if (sc->next >= sc->n_steps)
			continue;
		if (strcmp(sc->method, "*") != 0 && strcasecmp(sc->method, method) != 0)
			continue;
		if (strcmp(sc->path, path) != 0 && !(template_path && strcmp(sc->path, template_path) == 0))
			continue;
		struct sim_script_step *k = &sc->steps[sc->next++];
		*step_out = *k;
		step_out->body = sim_strdup(k->body);
		step_out->headers = k->headers ? json_object_get(k->headers) : NULL;
		return true;
	}
	return false;
}

/* --- deliveries, hooks, statuses, notes ------------------------------------------------------------------ */

static void c_deliveries(struct sim_req *r)
{
	int64_t hook_id = 0, since = 0;
	bool by_hook = sim_param_int(r, "hook_id", &hook_id);
	sim_param_int(r, "since_id", &since);
	const char *event = sim_param(r, "event");
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < r->s->deliveries.len; i++) {
		struct sim_delivery *d = r->s->deliveries.items[i];
		if ((by_hook && d->hook_id != hook_id) || d->id <= since || (event && strcmp(event, d->event) != 0))
			continue;
		json_object_array_add(arr, sim_render_delivery(d, true));
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "unfinished", json_object_new_int64((int64_t)sim_deliveries_unfinished(r->s)));
	json_object_object_add(o, "deliveries", arr);
	sim_reply_json(r, 200, o);
}

static struct sim_delivery *cap_delivery(struct sim_req *r)
{
	int64_t id = 0;
	struct sim_delivery *d = sim_parse_int64(sim_req_cap(r, 0), &id) ? sim_delivery_by_id(r->s, id) : NULL;
	if (!d)
		sim_reply_error(r, 404, "no such delivery");
	return d;
}

static void c_delivery_get(struct sim_req *r)
{
	struct sim_delivery *d = cap_delivery(r);
	if (d)
		sim_reply_json(r, 200, sim_render_delivery(d, true));
}

static void c_delivery_redeliver(struct sim_req *r)
{
	struct sim_delivery *d = cap_delivery(r);
	if (!d)
		return;
	struct sim_delivery *nd = sim_hooks_redeliver(r->s, d);
	if (!nd) {
		sim_reply_error(r, 404, "the hook of this delivery was deleted");
		return;
	}
	int64_t id = nd->id;
	if (want_wait(r)) {
		struct json_object *ids = json_object_new_array();
		json_object_array_add(ids, json_object_new_int64(id));
		wait_deliveries(r->s, ids, 30000);
		json_object_put(ids);
	}
	nd = sim_delivery_by_id(r->s, id);
	if (!nd) {
		sim_reply_error(r, 409, "the world was reset while waiting");
		return;
	}
	sim_reply_json(r, 201, sim_render_delivery(nd, true));
}

static void c_deliveries_wait(struct sim_req *r)
{
	int64_t timeout = 30000;
	sim_param_int(r, "timeout_ms", &timeout);
	struct json_object *ids = sim_param_json(r, "ids");
	wait_deliveries(r->s, ids && json_object_is_type(ids, json_type_array) ? ids : NULL, (int)timeout);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "unfinished", json_object_new_int64((int64_t)sim_deliveries_unfinished(r->s)));
	sim_reply_json(r, 200, o);
}

static void c_hooks(struct sim_req *r)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < r->s->hooks.len; i++) {
		struct sim_hook *h = r->s->hooks.items[i];
		if (h->removed)
			continue;
		struct json_object *o = sim_render_hook(h);
		json_object_object_add(o, "token", sim_json_str_or_null(h->token));
		json_object_object_add(o, "failures", json_object_new_int(h->failures));
		json_object_object_add(o, "group_hook", json_object_new_boolean(h->group_hook));
		struct json_object *hv = json_object_new_object();
		json_object_object_foreach(h->headers, k, v) json_object_object_add(hv, k, json_object_get(v));
		json_object_object_add(o, "custom_header_values", hv);
		json_object_array_add(arr, o);
	}
	sim_reply_json(r, 200, arr);
}

static void c_hook_disable(struct sim_req *r)
{
	int64_t id = 0;
	struct sim_hook *h = sim_parse_int64(sim_req_cap(r, 0), &id) ? sim_hook_by_id(r->s, id) : NULL;
	if (!h) {
		sim_reply_error(r, 404, "no such hook");
		return;
	}
	const char *status = sim_param(r, "alert_status");
	if (!status)
		status = "disabled";
	if (strcmp(status, "executable") && strcmp(status, "temporarily_disabled") && strcmp(status, "disabled")) {
		sim_reply_error(r, 400, "alert_status must be executable, temporarily_disabled or disabled");
		return;
	}
	int64_t secs = 0;
	if (!sim_param_int(r, "disabled_for_s", &secs))
		secs = strcmp(status, "temporarily_disabled") == 0 ? 60 : 0;
	sim_hook_set_alert(h, status, strcmp(status, "temporarily_disabled") == 0 ? time(NULL) + secs : 0);
	sim_reply_json(r, 200, sim_render_hook(h));
}

static void c_statuses(struct sim_req *r)
{
	int64_t pid = 0;
	bool by_project = sim_param_int(r, "project_id", &pid);
	const char *sha = sim_param(r, "sha");
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < r->s->statuses.len; i++) {
		struct sim_status *st = r->s->statuses.items[i];
		if ((by_project && st->project_id != pid) || (sha && strcmp(st->sha, sha) != 0))
			continue;
		struct json_object *o = sim_render_status(r->s, st);
		json_object_object_add(o, "project_id", json_object_new_int64(st->project_id));
		json_object_array_add(arr, o);
	}
	sim_reply_json(r, 200, arr);
}

static void c_notes(struct sim_req *r)
{
	int64_t pid = 0, iid = 0;
	bool by_project = sim_param_int(r, "project_id", &pid);
	bool by_iid = sim_param_int(r, "iid", &iid);
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < r->s->notes.len; i++) {
		struct sim_note *n = r->s->notes.items[i];
		if (n->removed || (by_project && n->project_id != pid) || (by_iid && n->mr_iid != iid))
			continue;
		struct json_object *o = sim_render_note(r->s, n);
		json_object_object_add(o, "quick_actions",
		                       n->quick_actions ? json_object_get(n->quick_actions) : json_object_new_array());
		json_object_array_add(arr, o);
	}
	sim_reply_json(r, 200, arr);
}

/* --- routing --------------------------------------------------------------------------------------------- */

static const struct sim_route routes[] = {
    {"GET", "/__sim/health", c_health, 0},
    {"POST", "/__sim/reset", c_reset, 0},
    {"GET", "/__sim/tokens", c_tokens_list, 0},
    {"POST", "/__sim/tokens", c_token_add, 0},
    {"POST", "/__sim/tokens/revoke", c_token_revoke, 0},
    {"POST", "/__sim/groups", c_group_add, 0},
    {"POST", "/__sim/seed", c_seed, 0},
    {"POST", "/__sim/projects", c_project_add, 0},
    {"GET", "/__sim/projects/:id", c_project_get, 0},
    {"DELETE", "/__sim/projects/:id", c_project_delete, 0},
    {"POST", "/__sim/projects/:id/archive", c_project_change, 0},
    {"POST", "/__sim/projects/:id/pending_delete", c_project_change, 0},
    {"POST", "/__sim/projects/:id/transfer", c_project_change, 0},
    {"POST", "/__sim/merge_requests", c_mr_open, 0},
    {"GET", "/__sim/merge_requests/:project_id/:iid", c_mr_get, 0},
    {"POST", "/__sim/merge_requests/:project_id/:iid/push", c_mr_push, 0},
    {"POST", "/__sim/merge_requests/:project_id/:iid/close", c_mr_close, 0},
    {"POST", "/__sim/merge_requests/:project_id/:iid/reopen", c_mr_reopen, 0},
    {"POST", "/__sim/merge_requests/:project_id/:iid/merge", c_mr_merge, 0},
    {"GET", "/__sim/counters", c_counters, 0},
    {"POST", "/__sim/counters/reset", c_counters_reset, 0},
    {"GET", "/__sim/settings", sim_strict_settings_get, 0},
    {"POST", "/__sim/settings", sim_strict_settings_set, 0},
    {"GET", "/__sim/faults", c_faults_get, 0},
    {"POST", "/__sim/faults", c_faults_set, 0},
    {"POST", "/__sim/script", c_script_add, 0},
    {"DELETE", "/__sim/script", c_script_clear, 0},
    {"GET", "/__sim/deliveries", c_deliveries, 0},
    {"POST", "/__sim/deliveries/wait", c_deliveries_wait, 0},
    {"GET", "/__sim/deliveries/:id", c_delivery_get, 0},
    {"POST", "/__sim/deliveries/:id/redeliver", c_delivery_redeliver, 0},
    {"GET", "/__sim/hooks", c_hooks, 0},
    {"POST", "/__sim/hooks/:id/disable", c_hook_disable, 0},
    {"GET", "/__sim/statuses", c_statuses, 0},
    {"GET", "/__sim/notes", c_notes, 0},
};

void sim_control_handle(struct sim_req *r)
{
	bool path_matched = false;
	const struct sim_route *rt = sim_route_match(r, routes, sizeof(routes) / sizeof(routes[0]), &path_matched);
	if (!rt && !path_matched && sim_pipelines_control(r))
		return;
	if (!rt) {
		sim_reply_error(r, path_matched ? 405 : 404,
		                path_matched ? "method not allowed" : "no such control endpoint");
		return;
	}
	if (r->body_invalid) {
		sim_reply_error(r, 400, "the body is not valid JSON");
		return;
	}
	rt->handler(r);
}
