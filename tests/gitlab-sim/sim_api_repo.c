/*
 * tests/gitlab-sim/sim_api_repo.c
 *    /api/v4 endpoints below a project or group: hooks (§3, §4), commit statuses and pipelines (§5),
 *    merge requests, diffs, notes, compare and the repository archive (§8).
 *
 * Design: see sim_api.h. Roles: hooks need Maintainer (project) or Owner on a Premium/Ultimate group;
 *    statuses need Developer; reading MRs, statuses and code needs Reporter; archived projects refuse
 *    statuses and notes (read-only, ProjectPolicy).
 * Ownership: nothing outlives a call except model changes.
 */
#include "sim_api.h"
#include "sim_diff.h"
#include "sim_hooks.h"
#include "sim_notes_hook.h"
#include "sim_render.h"
#include "sim_strict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- hooks ----------------------------------------------------------------------------------------------- */

static const char *project_hook_flags[] = {"push_events",
                                           "issues_events",
                                           "confidential_issues_events",
                                           "merge_requests_events",
                                           "tag_push_events",
                                           "note_events",
                                           "confidential_note_events",
                                           "job_events",
                                           "pipeline_events",
                                           "wiki_page_events",
                                           "deployment_events",
                                           "releases_events",
                                           "feature_flag_events",
                                           "resource_access_token_events",
                                           "enable_ssl_verification",
                                           "repository_update_events",
                                           "emoji_events",
                                           NULL};
static const char *group_hook_extra_flags[] = {"subgroup_events", "member_events", "vulnerability_events",
                                               "project_events", NULL};
static const char *hook_strings[] = {
    "name", "description", "custom_webhook_template", "push_events_branch_filter", "branch_filter_strategy", NULL};

static bool valid_hook_url(const char *url)
{
	const char *rest = NULL;
	if (strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	if (!rest || !*rest || *rest == '/' || *rest == ':')
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
			return false;
	return strlen(url) <= 2048;
}

static struct json_object *default_hook_attrs(bool group)
{
	struct json_object *a = json_object_new_object();
	json_object_object_add(a, "name", NULL);
	json_object_object_add(a, "description", NULL);
	for (size_t i = 0; project_hook_flags[i]; i++)
		json_object_object_add(
		    a, project_hook_flags[i],
		    json_object_new_boolean(strcmp(project_hook_flags[i], "push_events") == 0 ||
		                            strcmp(project_hook_flags[i], "enable_ssl_verification") == 0));
	if (group)
		for (size_t i = 0; group_hook_extra_flags[i]; i++)
			json_object_object_add(a, group_hook_extra_flags[i], json_object_new_boolean(false));
	json_object_object_add(a, "push_events_branch_filter", json_object_new_string(""));
	json_object_object_add(a, "branch_filter_strategy", json_object_new_string("wildcard"));
	json_object_object_add(a, "custom_webhook_template", NULL);
	return a;
}

/* Apply request parameters to a hook. Returns false after replying 400/422. */
static bool apply_hook_params(struct sim_req *r, struct sim_hook *h, bool creating)
{
	const char *url = sim_param(r, "url");
	if (sim_param_present(r, "url") && (!url || !valid_hook_url(url) || !sim_strict_hook_url_allowed(r->s, url))) {
		sim_reply_error(r, 422, "Invalid url given");
		return false;
	}
	const char *strategy = sim_param(r, "branch_filter_strategy");
	if (strategy && strcmp(strategy, "wildcard") && strcmp(strategy, "regex") && strcmp(strategy, "all_branches")) {
		sim_reply_error(r, 400, "branch_filter_strategy does not have a valid value");
		return false;
	}
	for (int pass = 0; pass < 2; pass++) {
		const char **flags = pass == 0 ? project_hook_flags : group_hook_extra_flags;
		if (pass == 1 && !h->group_hook)
			break;
		for (size_t i = 0; flags[i]; i++) {
			if (!sim_param_present(r, flags[i]))
				continue;
			bool b = false;
			if (!sim_param_bool(r, flags[i], &b)) {
				char *msg = sim_printf("%s is invalid", flags[i]);
				sim_reply_error(r, 400, msg);
				free(msg);
				return false;
			}
			json_object_object_add(h->attrs, flags[i], json_object_new_boolean(b));
		}
	}
	for (size_t i = 0; hook_strings[i]; i++)
		if (sim_param_present(r, hook_strings[i]))
			json_object_object_add(h->attrs, hook_strings[i],
			                       sim_json_str_or_null(sim_param(r, hook_strings[i])));
	/* custom_headers / url_variables: [{"key":..,"value":..}], merged into the existing ones. */
	for (int pass = 0; pass < 2; pass++) {
		struct json_object *arr = sim_param_json(r, pass == 0 ? "custom_headers" : "url_variables");
		if (!arr || !json_object_is_type(arr, json_type_array))
			continue;
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *e = json_object_array_get_idx(arr, i), *k = NULL, *v = NULL;
			if (!json_object_object_get_ex(e, "key", &k) || !json_object_object_get_ex(e, "value", &v)) {
				sim_reply_error(r, 400,
				                pass == 0 ? "custom_headers is invalid" : "url_variables is invalid");
				return false;
			}
			json_object_object_add(pass == 0 ? h->headers : h->url_vars, json_object_get_string(k),
			                       json_object_new_string(json_object_get_string(v)));
		}
	}
	bool url_changed = url && (!h->url || strcmp(url, h->url) != 0);
	if (url) {
		free(h->url);
		h->url = sim_strdup(url);
	}
	if (sim_param_present(r, "token")) {
		free(h->token);
		const char *tok = sim_param(r, "token");
		h->token = tok && *tok ? sim_strdup(tok) : NULL;
	} else if (url_changed && !creating) {
		/* "When you change the webhook URL, the secret token is reset and not retained." */
		free(h->token);
		h->token = NULL;
	}
	return true;
}

static struct sim_hook *find_hook(struct sim_req *r, bool group, int64_t owner_id)
{
	int64_t id = 0;
	struct sim_hook *h = sim_parse_int64(sim_req_cap(r, 1), &id) ? sim_hook_by_id(r->s, id) : NULL;
	if (!h || h->group_hook != group || h->owner_id != owner_id) {
		sim_reply_message(r, 404, "404 Not found");
		return NULL;
	}
	return h;
}

static struct json_object *render_hook_item(struct sim_req *r, void *item)
{
	(void)r;
	return sim_render_hook(item);
}

static void list_hooks(struct sim_req *r, bool group, int64_t owner_id)
{
	struct sim_vec v = {0};
	for (size_t i = 0; i < r->s->hooks.len; i++) {
		struct sim_hook *h = r->s->hooks.items[i];
		if (!h->removed && h->group_hook == group && h->owner_id == owner_id)
			sim_vec_push(&v, h);
	}
	sim_api_reply_page(r, &v, render_hook_item);
}

static void add_hook(struct sim_req *r, bool group, int64_t owner_id)
{
	if (!sim_param(r, "url")) {
		sim_reply_error(r, 400, "url is missing");
		return;
	}
	struct sim_hook *h = sim_xcalloc(1, sizeof(*h));
	h->group_hook = group;
	h->owner_id = owner_id;
	h->attrs = default_hook_attrs(group);
	h->headers = json_object_new_object();
	h->url_vars = json_object_new_object();
	h->alert_status = sim_strdup("executable");
	if (!apply_hook_params(r, h, true)) {
		sim_hook_free(h);
		return;
	}
	h->id = r->s->next_hook_id++;
	h->created_at = sim_now_iso();
	sim_vec_push(&r->s->hooks, h);
	sim_reply_json(r, 201, sim_render_hook(h));
}

static void edit_hook(struct sim_req *r, struct sim_hook *h)
{
	/* Any known attribute counts as a parameter. */
	static const char *others[] = {"url", "token", "custom_headers", "url_variables", NULL};
	bool any = false;
	for (size_t i = 0; others[i] && !any; i++)
		any = sim_param_present(r, others[i]);
	for (size_t i = 0; project_hook_flags[i] && !any; i++)
		any = sim_param_present(r, project_hook_flags[i]);
	for (size_t i = 0; group_hook_extra_flags[i] && !any; i++)
		any = sim_param_present(r, group_hook_extra_flags[i]);
	for (size_t i = 0; hook_strings[i] && !any; i++)
		any = sim_param_present(r, hook_strings[i]);
	if (!any) {
		sim_reply_message(r, 400, "400 Bad request - No parameters provided");
		return;
	}
	if (!h->group_hook && !sim_param(r, "url")) {
		sim_reply_error(r, 400, "url is missing");
		return;
	}
	if (apply_hook_params(r, h, false))
		sim_reply_json(r, 200, sim_render_hook(h));
}

/* Project and group hooks share these handlers (the routes /projects/:id/hooks... and /groups/:id/hooks...). The
 * owner is the project (Maintainer) or the group (Owner: EE GroupPolicy admin_group enables admin_web_hook; no
 * licence check, the API answers on a Free group too, only delivery is licensed, sim_hooks.c group_hook_reaches).
 * False after answering 4xx. */
static bool hook_owner(struct sim_req *r, bool *group, int64_t *owner_id)
{
	*group = strncmp(r->template_path, "/api/v4/groups/", strlen("/api/v4/groups/")) == 0;
	if (*group) {
		struct sim_group *g = sim_api_group(r, 0, 50);
		*owner_id = g ? g->id : 0;
		return g != NULL;
	}
	struct sim_project *p = sim_api_project(r, 0, 40);
	*owner_id = p ? p->id : 0;
	return p != NULL;
}

/* GET (list) and POST (add) /projects/:id/hooks and /groups/:id/hooks. */
void sim_h_hooks(struct sim_req *r)
{
	bool group;
	int64_t owner_id;
	if (!hook_owner(r, &group, &owner_id))
		return;
	if (strcmp(r->method, "POST") == 0)
		add_hook(r, group, owner_id);
	else
		list_hooks(r, group, owner_id);
}

/* GET, PUT (edit) and DELETE /projects/:id/hooks/:hook_id and /groups/:id/hooks/:hook_id. */
void sim_h_hook(struct sim_req *r)
{
	bool group;
	int64_t owner_id;
	struct sim_hook *h = hook_owner(r, &group, &owner_id) ? find_hook(r, group, owner_id) : NULL;
	if (!h)
		return;
	if (strcmp(r->method, "PUT") == 0) {
		edit_hook(r, h);
	} else if (strcmp(r->method, "DELETE") == 0) {
		h->removed = true;
		sim_reply_text(r, 204, "application/json", "", 0);
	} else {
		sim_reply_json(r, 200, sim_render_hook(h));
	}
}

static void deliver_test(struct sim_req *r, struct sim_hook *h, struct sim_project *p, const char *trigger);
static bool valid_trigger(const char *trigger);

/* POST /projects/:id/hooks/:hook_id/test/:trigger (GitLab 16.11+, TestHooks::ProjectService; see the group one). */
void sim_h_hook_test(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 40);
	struct sim_hook *h = p ? find_hook(r, false, p->id) : NULL;
	if (h)
		deliver_test(r, h, p, sim_req_cap(r, 2));
}

/*
 * POST /groups/:id/hooks/:hook_id/test/:trigger (GitLab 17.1+; API::Hooks::TriggerTest, EE TestHooks::GroupService):
 * the sample data of the group's first project with commits, delivered at once through hook.execute(force: true),
 * so neither the hook's event flags, its alert status nor the group's licence are looked at. 201 when the receiver
 * answered 2xx, else 422 with the failure. Triggers other than push_events and merge_requests_events are not
 * modelled (422 "Testing not available for this hook").
 */
void sim_h_group_hook_test(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 50);
	struct sim_hook *h = g ? find_hook(r, true, g->id) : NULL;
	if (!h)
		return;
	struct sim_project *first = NULL; /* Group#first_non_empty_project: by id, descendants included */
	for (size_t i = 0; i < r->s->projects.len && !first; i++) {
		struct sim_project *p = r->s->projects.items[i];
		if (!p->removed && p->commits.len > 0 && sim_group_is_under(p->ns, g))
			first = p;
	}
	if (!first) {
		if (!valid_trigger(sim_req_cap(r, 2)))
			sim_reply_error(r, 400, "trigger does not have a valid value");
		else
			sim_reply_message(r, 422, "Ensure the group has a project with commits.");
		return;
	}
	deliver_test(r, h, first, sim_req_cap(r, 2));
}

static bool valid_trigger(const char *trigger)
{
	static const char *triggers[] = {"push_events",
	                                 "tag_push_events",
	                                 "issues_events",
	                                 "confidential_issues_events",
	                                 "note_events",
	                                 "merge_requests_events",
	                                 "job_events",
	                                 "pipeline_events",
	                                 "wiki_page_events",
	                                 "releases_events",
	                                 "emoji_events",
	                                 "resource_access_token_events",
	                                 NULL};
	for (size_t i = 0; triggers[i]; i++)
		if (strcmp(triggers[i], trigger) == 0)
			return true;
	return false;
}

/* The sample data of p for trigger, delivered at once (hook.execute(force: true)); 201 on a 2xx answer, else 422. */
static void deliver_test(struct sim_req *r, struct sim_hook *h, struct sim_project *p, const char *trigger)
{
	if (!valid_trigger(trigger)) {
		sim_reply_error(r, 400, "trigger does not have a valid value");
		return;
	}
	struct sim_delivery *d = NULL;
	if (strcmp(trigger, "push_events") == 0) {
		d = sim_hooks_fire_push_sample_to(r->s, h, p);
	} else if (strcmp(trigger, "merge_requests_events") == 0) {
		struct sim_mr *last = NULL;
		for (size_t i = 0; i < r->s->mrs.len; i++) {
			struct sim_mr *m = r->s->mrs.items[i];
			if (m->project_id == p->id)
				last = m;
		}
		if (!last) {
			sim_reply_message(r, 422, "Ensure the project has merge requests.");
			return;
		}
		d = sim_hooks_fire_mr_to(r->s, h, last, NULL);
	} else {
		sim_reply_message(r, 422, "Testing not available for this hook");
		return;
	}
	int64_t id = d->id;
	sim_hooks_wait(r->s, id, (r->s->webhook_timeout_s + 2) * 1000);
	d = sim_delivery_by_id(r->s, id);
	if (d && d->state == SIM_DELIVERY_DONE && d->response_status >= 200 && d->response_status < 300) {
		sim_reply_message(r, 201, "201 Created");
		return;
	}
	char *msg = !d || d->state != SIM_DELIVERY_DONE ? sim_strdup("Hook execution timed out")
	            : d->error                          ? sim_strdup(d->error)
	                                                : sim_printf("%ld", (long)d->response_status);
	sim_reply_message(r, 422, msg);
	free(msg);
}

/* --- commits, statuses, pipelines ------------------------------------------------------------------------ */

/* A commit by sha (prefix of 7+) or by branch name (its newest commit). */
static struct sim_commit *find_commit(struct sim_project *p, const char *ref_or_sha)
{
	struct sim_commit *c = sim_project_commit(p, ref_or_sha);
	if (c)
		return c;
	for (size_t i = p->commits.len; i > 0; i--) {
		struct sim_commit *k = p->commits.items[i - 1];
		if (strcmp(k->ref, ref_or_sha) == 0)
			return k;
	}
	return NULL;
}

static struct sim_pipeline *newest_pipeline(struct sim *s, int64_t project_id, const char *sha, const char *ref)
{
	for (size_t i = s->pipelines.len; i > 0; i--) {
		struct sim_pipeline *pl = s->pipelines.items[i - 1];
		if (pl->project_id == project_id && strcmp(pl->sha, sha) == 0 && (!ref || strcmp(pl->ref, ref) == 0))
			return pl;
	}
	return NULL;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = sim_strdup(v);
}

/* The commit :sha (a sha or a ref) of project p, or NULL after answering 404. */
static struct sim_commit *commit_of(struct sim_req *r, struct sim_project *p)
{
	struct sim_commit *c = find_commit(p, sim_req_cap(r, 1));
	if (!c)
		sim_reply_message(r, 404, "404 Commit Not Found");
	return c;
}

/* The commit :sha of project :id (Reporter), or NULL after answering 4xx; *p its project. */
static struct sim_commit *api_commit(struct sim_req *r, struct sim_project **p)
{
	*p = sim_api_project(r, 0, 20);
	return *p ? commit_of(r, *p) : NULL;
}

void sim_h_status_post(struct sim_req *r)
{
	struct sim *s = r->s;
	struct sim_project *p = sim_api_project(r, 0, 30);
	if (!p)
		return;
	if (p->archived) {
		sim_reply_message(r, 403, "403 Forbidden");
		return;
	}
	struct sim_commit *c = commit_of(r, p);
	if (!c)
		return;
	const char *state = sim_param(r, "state");
	static const char *states[] = {"pending", "running", "success", "failed", "canceled", "skipped", NULL};
	if (!state) {
		sim_reply_error(r, 400, "state is missing");
		return;
	}
	bool ok = false;
	for (size_t i = 0; states[i]; i++)
		ok = ok || strcmp(states[i], state) == 0;
	if (!ok) {
		sim_reply_error(r, 400, "state does not have a valid value");
		return;
	}
	const char *name = sim_param(r, "name");
	if (!name || !*name)
		name = sim_param(r, "context");
	if (!name || !*name)
		name = "default";
	const char *description = sim_param(r, "description");
	const char *target_url = sim_param(r, "target_url");
	const char *ref = sim_param(r, "ref");
	if ((description && strlen(description) > 255) || (target_url && strlen(target_url) > 255) ||
	    (ref && strlen(ref) > 255)) {
		struct json_object *m = json_object_new_object(), *arr = json_object_new_array();
		json_object_array_add(arr, json_object_new_string("is too long (maximum is 255 characters)"));
		json_object_object_add(m,
		                       description && strlen(description) > 255 ? "description"
		                       : target_url && strlen(target_url) > 255 ? "target_url"
		                                                                : "ref",
		                       arr);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "message", m);
		sim_reply_json(r, 400, o);
		return;
	}
	if (target_url && *target_url && !sim_strict_addressable_url(target_url)) {
		/* CommitStatus validates :target_url, addressable_url: true (AddressableUrlValidator) */
		struct json_object *m = json_object_new_object(), *arr = json_object_new_array();
		json_object_array_add(arr, json_object_new_string("must be a valid URL"));
		json_object_object_add(m, "target_url", arr);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "message", m);
		sim_reply_json(r, 400, o);
		return;
	}
	struct sim_pipeline *pl = NULL;
	int64_t pipeline_id = 0;
	if (sim_param_int(r, "pipeline_id", &pipeline_id)) {
		pl = sim_pipeline_by_id(s, pipeline_id);
		if (!pl || pl->project_id != p->id || strcmp(pl->sha, c->sha) != 0 ||
		    (ref && strcmp(pl->ref, ref) != 0)) {
			sim_reply_message(r, 404, "404 Pipeline for pipeline_id, sha and ref Not Found");
			return;
		}
		ref = pl->ref;
	} else {
		if (!ref) {
			struct sim_pipeline *any = newest_pipeline(s, p->id, c->sha, NULL);
			ref = any ? any->ref : c->ref;
		}
		pl = newest_pipeline(s, p->id, c->sha, ref);
	}
	bool created_pipeline = !pl;
	if (!pl) {
		/* No pipeline for this sha and ref: GitLab creates an external one. */
		pl = sim_xcalloc(1, sizeof(*pl));
		pl->id = s->next_pipeline_id++;
		pl->iid = p->next_pipeline_iid++;
		pl->project_id = p->id;
		memcpy(pl->sha, c->sha, sizeof(pl->sha));
		pl->ref = sim_strdup(ref);
		pl->status = sim_strdup("created");
		pl->source = sim_strdup("external");
		pl->created_at = sim_now_iso();
		pl->updated_at = sim_now_iso();
		pl->user = r->token->user;
		sim_vec_push(&s->pipelines, pl);
	}
	struct sim_status *st = NULL;
	for (size_t i = s->statuses.len; i > 0; i--) {
		struct sim_status *k = s->statuses.items[i - 1];
		if (k->pipeline_id == pl->id && strcmp(k->name, name) == 0 && strcmp(k->ref, ref) == 0 &&
		    k->author == r->token->user &&
		    (strcmp(k->status, "pending") == 0 || strcmp(k->status, "running") == 0 ||
		     strcmp(k->status, "created") == 0)) {
			st = k;
			break;
		}
	}
	const char *cur = st ? st->status : "created";
	const char *event = NULL;
	bool bad = false;
	if (strcmp(state, "pending") == 0) {
		event = "enqueue";
		bad = strcmp(cur, "created") != 0;
	} else if (strcmp(state, "running") == 0) {
		event = "run";
		bad = strcmp(cur, "running") == 0;
	}
	if (bad) {
		char *msg = sim_printf("Cannot transition status via :%s from :%s (Reason(s): Status cannot transition "
		                       "via \"%s\")",
		                       event, cur, event);
		sim_reply_message(r, 400, msg);
		free(msg);
		return;
	}
	if (!st)
		st = sim_status_add(s, p->id, pl->id, c->sha, ref, name, r->token->user);
	if (description)
		set_str(&st->description, description);
	if (target_url)
		set_str(&st->target_url, target_url);
	const char *cov = sim_param(r, "coverage");
	if (cov) {
		st->coverage = strtod(cov, NULL);
		st->has_coverage = true;
	}
	set_str(&st->status, state);
	if (strcmp(state, "running") == 0 && !st->started_at)
		st->started_at = sim_now_iso();
	if (strcmp(state, "pending") != 0 && strcmp(state, "running") != 0) {
		if (!st->started_at && strcmp(state, "success") == 0)
			st->started_at = sim_now_iso();
		set_str(&st->finished_at, NULL);
		st->finished_at = sim_now_iso();
	}
	char before[32];
	snprintf(before, sizeof(before), "%s", created_pipeline ? "" : pl->status);
	sim_pipeline_refresh(s, pl);
	if (strcmp(before, pl->status) != 0)
		sim_hooks_fire_pipeline(s, pl, NULL); /* a pipeline hook on every status transition */
	free(p->last_activity_at);
	p->last_activity_at = sim_now_iso();
	sim_reply_json(r, 201, sim_render_status(s, st));
}

static struct json_object *render_status_item(struct sim_req *r, void *item)
{
	return sim_render_status(r->s, item);
}

void sim_h_statuses_list(struct sim_req *r)
{
	struct sim *s = r->s;
	struct sim_project *p;
	struct sim_commit *c = api_commit(r, &p);
	if (!c)
		return;
	const char *ref = sim_param(r, "ref");
	const char *name = sim_param(r, "name");
	const char *stage = sim_param(r, "stage");
	int64_t pipeline_id = 0;
	bool by_pipeline = sim_param_int(r, "pipeline_id", &pipeline_id);
	bool all = false;
	sim_param_bool(r, "all", &all);
	const char *sort = sim_param(r, "sort");
	struct sim_vec v = {0};
	for (size_t i = 0; i < s->statuses.len; i++) {
		struct sim_status *st = s->statuses.items[i];
		if (st->project_id != p->id || strcmp(st->sha, c->sha) != 0)
			continue;
		if ((ref && strcmp(st->ref, ref) != 0) || (name && strcmp(st->name, name) != 0) ||
		    (stage && strcmp(stage, "external") != 0) || (by_pipeline && st->pipeline_id != pipeline_id))
			continue;
		if (!all) {
			bool retried = false;
			for (size_t j = i + 1; j < s->statuses.len && !retried; j++) {
				struct sim_status *later = s->statuses.items[j];
				retried = later->pipeline_id == st->pipeline_id && strcmp(later->name, st->name) == 0;
			}
			if (retried)
				continue;
		}
		sim_vec_push(&v, st);
	}
	if (sort && strcmp(sort, "desc") == 0)
		sim_vec_reverse(&v);
	sim_api_reply_page(r, &v, render_status_item);
}

static struct json_object *render_commit(struct sim *s, struct sim_project *p, struct sim_commit *c)
{
	struct json_object *o = json_object_new_object();
	char short_id[12];
	snprintf(short_id, sizeof(short_id), "%.11s", c->sha);
	json_object_object_add(o, "id", json_object_new_string(c->sha));
	json_object_object_add(o, "short_id", json_object_new_string(short_id));
	json_object_object_add(o, "created_at", json_object_new_string(c->created_at));
	struct json_object *parents = json_object_new_array();
	if (c->parent[0])
		json_object_array_add(parents, json_object_new_string(c->parent));
	json_object_object_add(o, "parent_ids", parents);
	json_object_object_add(o, "title", json_object_new_string(c->message));
	json_object_object_add(o, "message", json_object_new_string(c->message));
	json_object_object_add(o, "author_name", json_object_new_string(s->root_user->name));
	json_object_object_add(o, "author_email", json_object_new_string(s->root_user->email));
	json_object_object_add(o, "authored_date", json_object_new_string(c->created_at));
	json_object_object_add(o, "committer_name", json_object_new_string(s->root_user->name));
	json_object_object_add(o, "committer_email", json_object_new_string(s->root_user->email));
	json_object_object_add(o, "committed_date", json_object_new_string(c->created_at));
	json_object_object_add(o, "trailers", json_object_new_object());
	json_object_object_add(o, "web_url",
	                       sim_json_printf("%s/%s/-/commit/%s", s->instance_url, p->path_with_namespace, c->sha));
	return o;
}

void sim_h_commit_get(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_commit *c = api_commit(r, &p);
	if (!c)
		return;
	struct json_object *o = render_commit(r->s, p, c);
	struct sim_pipeline *pl = newest_pipeline(r->s, p->id, c->sha, NULL);
	json_object_object_add(o, "last_pipeline", pl ? sim_render_pipeline(r->s, pl, false) : NULL);
	json_object_object_add(o, "status", pl ? json_object_new_string(pl->status) : NULL);
	sim_reply_json(r, 200, o);
}

static struct json_object *render_mr_item(struct sim_req *r, void *item)
{
	return sim_render_mr(r->s, item, r->token);
}

void sim_h_commit_mrs(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_commit *c = api_commit(r, &p);
	if (!c)
		return;
	const char *state = sim_param(r, "state");
	struct sim_vec v = {0};
	for (size_t i = 0; i < r->s->mrs.len; i++) {
		struct sim_mr *m = r->s->mrs.items[i];
		if (m->project_id != p->id || (state && strcmp(state, "all") != 0 && strcmp(m->state, state) != 0))
			continue;
		bool on_branch = strcmp(m->sha, c->sha) == 0 || (strcmp(c->ref, m->source_branch) == 0);
		if (on_branch)
			sim_vec_push(&v, m);
	}
	sim_api_reply_page(r, &v, render_mr_item);
}

static struct json_object *render_pipeline_item(struct sim_req *r, void *item)
{
	return sim_render_pipeline(r->s, item, false);
}

void sim_h_pipelines_list(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 20);
	if (!p)
		return;
	const char *sha = sim_param(r, "sha"), *ref = sim_param(r, "ref"), *status = sim_param(r, "status");
	struct sim_vec v = {0};
	for (size_t i = r->s->pipelines.len; i > 0; i--) {
		struct sim_pipeline *pl = r->s->pipelines.items[i - 1];
		if (pl->project_id == p->id && (!sha || strcmp(pl->sha, sha) == 0) &&
		    (!ref || strcmp(pl->ref, ref) == 0) && (!status || strcmp(pl->status, status) == 0))
			sim_vec_push(&v, pl);
	}
	sim_api_reply_page(r, &v, render_pipeline_item);
}

void sim_h_pipeline_get(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 20);
	if (!p)
		return;
	int64_t id = 0;
	struct sim_pipeline *pl = sim_parse_int64(sim_req_cap(r, 1), &id) ? sim_pipeline_by_id(r->s, id) : NULL;
	if (!pl || pl->project_id != p->id) {
		sim_reply_message(r, 404, "404 Not found");
		return;
	}
	sim_reply_json(r, 200, sim_render_pipeline(r->s, pl, true));
}

/* --- merge requests -------------------------------------------------------------------------------------- */

/* The merge request :merge_request_iid of project :id (Reporter), or NULL after answering 4xx; *p its project (NULL
 * when that was refused). */
static struct sim_mr *api_mr(struct sim_req *r, struct sim_project **p)
{
	int64_t iid = 0;
	struct sim_mr *m = NULL;
	*p = sim_api_project(r, 0, 20);
	if (!*p)
		return NULL;
	if (sim_parse_int64(sim_req_cap(r, 1), &iid))
		m = sim_mr_find(r->s, (*p)->id, iid);
	if (!m)
		sim_reply_message(r, 404, "404 Not found");
	return m;
}

struct sim_mr *sim_api_mr(struct sim_req *r, struct sim_project **p)
{
	return api_mr(r, p);
}

void sim_h_mrs_list(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 20);
	if (!p)
		return;
	const char *state = sim_param(r, "state");
	const char *sb = sim_param(r, "source_branch"), *tb = sim_param(r, "target_branch");
	if (state && strcmp(state, "opened") && strcmp(state, "closed") && strcmp(state, "merged") &&
	    strcmp(state, "locked") && strcmp(state, "all")) {
		sim_reply_error(r, 400, "state does not have a valid value");
		return;
	}
	struct sim_vec v = {0};
	for (size_t i = r->s->mrs.len; i > 0; i--) {
		struct sim_mr *m = r->s->mrs.items[i - 1];
		if (m->project_id != p->id || (state && strcmp(state, "all") != 0 && strcmp(m->state, state) != 0) ||
		    (sb && strcmp(m->source_branch, sb) != 0) || (tb && strcmp(m->target_branch, tb) != 0))
			continue;
		sim_vec_push(&v, m);
	}
	sim_api_reply_page(r, &v, render_mr_item);
}

/*
 * GET /groups/:id/merge_requests (doc/api/merge_requests.md "List group merge requests"): the MRs of every project
 * of the group and its subgroups that the token can read, newest first; `state` as for a project, `scope` defaults
 * to all (created_by_me and assigned_to_me are refused here: the simulator does not model authors), and
 * `non_archived` (default true) leaves out archived projects.
 */
void sim_h_group_mrs_list(struct sim_req *r)
{
	struct sim_group *g = sim_api_group(r, 0, 0);
	if (!g)
		return;
	const char *state = sim_param(r, "state"), *scope = sim_param(r, "scope");
	if (state && strcmp(state, "opened") && strcmp(state, "closed") && strcmp(state, "merged") &&
	    strcmp(state, "locked") && strcmp(state, "all")) {
		sim_reply_error(r, 400, "state does not have a valid value");
		return;
	}
	if (scope && strcmp(scope, "all") != 0) {
		sim_reply_error(r, 400, "scope does not have a valid value");
		return;
	}
	bool non_archived = true;
	if (sim_param_present(r, "non_archived") && !sim_param_bool(r, "non_archived", &non_archived)) {
		sim_reply_error(r, 400, "non_archived is invalid");
		return;
	}
	struct sim_vec v = {0};
	for (size_t i = r->s->mrs.len; i > 0; i--) {
		struct sim_mr *m = r->s->mrs.items[i - 1];
		if (state && strcmp(state, "all") != 0 && strcmp(m->state, state) != 0)
			continue;
		struct sim_project *p = sim_project_by_id(r->s, m->project_id);
		if (!p || !sim_group_is_under(p->ns, g) || !sim_can_see_project(r->token, p) ||
		    (non_archived && p->archived))
			continue;
		sim_vec_push(&v, m);
	}
	sim_api_reply_page(r, &v, render_mr_item);
}

void sim_h_mr_get(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	if (m)
		sim_reply_json(r, 200, sim_render_mr(r->s, m, r->token));
}

static struct json_object *render_change_limited(const struct sim_change *c, bool with_generated, bool too_large)
{
	struct json_object *o = json_object_new_object();
	char *diff = too_large ? sim_strdup("") : sim_unified_diff(c->old_content, c->new_content);
	json_object_object_add(o, "old_path", json_object_new_string(c->path));
	json_object_object_add(o, "new_path", json_object_new_string(c->path));
	json_object_object_add(o, "a_mode", json_object_new_string(c->old_content ? "100644" : "0"));
	json_object_object_add(o, "b_mode", json_object_new_string(c->new_content ? "100644" : "0"));
	json_object_object_add(o, "diff", json_object_new_string(diff));
	json_object_object_add(o, "new_file", json_object_new_boolean(c->old_content == NULL));
	json_object_object_add(o, "renamed_file", json_object_new_boolean(false));
	json_object_object_add(o, "deleted_file", json_object_new_boolean(c->new_content == NULL));
	if (with_generated)
		json_object_object_add(o, "generated_file", json_object_new_boolean(false));
	/* GitLab 18.4+ Entities::Diff: collapsed, too_large (a too-large patch comes with an empty diff) */
	json_object_object_add(o, "collapsed", json_object_new_boolean(false));
	json_object_object_add(o, "too_large", json_object_new_boolean(too_large));
	free(diff);
	return o;
}

/* An MR's stored diff: the changes GitLab kept under its diff limits (sim_strict_diff_limits). */
struct limited_change {
	const struct sim_change *c;
	bool too_large;
};

static struct json_object *render_change_item(struct sim_req *r, void *item)
{
	(void)r;
	const struct limited_change *lc = item;
	return render_change_limited(lc->c, true, lc->too_large);
}

static struct limited_change *limited_changes(struct sim *s, const struct sim_mr *m, size_t *n_out, bool *overflow)
{
	bool *big = sim_xcalloc(m->n_changes + 1, sizeof(bool));
	size_t kept = 0;
	sim_strict_diff_limits(s, m->changes, m->n_changes, big, &kept, overflow);
	struct limited_change *lc = sim_xcalloc(kept + 1, sizeof(*lc));
	for (size_t i = 0; i < kept; i++) {
		lc[i].c = &m->changes[i];
		lc[i].too_large = big[i];
	}
	free(big);
	*n_out = kept;
	return lc;
}

void sim_h_mr_diffs(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	if (!m)
		return;
	size_t n = 0;
	bool overflow = false;
	struct limited_change *lc = limited_changes(r->s, m, &n, &overflow);
	struct sim_vec v = {0};
	for (size_t i = 0; i < n; i++)
		sim_vec_push(&v, &lc[i]);
	sim_api_reply_page(r, &v, render_change_item);
	free(lc);
}

void sim_h_mr_changes(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	if (!m)
		return;
	struct json_object *o = sim_render_mr(r->s, m, r->token);
	struct json_object *arr = json_object_new_array();
	size_t n = 0;
	bool overflow = false;
	struct limited_change *lc = limited_changes(r->s, m, &n, &overflow);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, render_change_limited(lc[i].c, false, lc[i].too_large));
	free(lc);
	json_object_object_add(o, "changes", arr);
	json_object_object_add(o, "overflow", json_object_new_boolean(overflow));
	sim_reply_json(r, 200, o);
}

void sim_h_mr_pipelines(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	if (!m)
		return;
	struct sim_vec v = {0};
	for (size_t i = r->s->pipelines.len; i > 0; i--) {
		struct sim_pipeline *pl = r->s->pipelines.items[i - 1];
		if (pl->project_id != p->id)
			continue;
		struct sim_commit *c = sim_project_commit(p, pl->sha);
		if (c && strcmp(c->ref, m->source_branch) == 0)
			sim_vec_push(&v, pl);
	}
	sim_api_reply_page(r, &v, render_pipeline_item);
}

/* --- notes ----------------------------------------------------------------------------------------------- */

static struct json_object *render_note_item(struct sim_req *r, void *item)
{
	return sim_render_note(r->s, item);
}

static struct sim_note *find_note(struct sim_req *r, struct sim_mr *m)
{
	int64_t id = 0;
	struct sim_note *n = sim_parse_int64(sim_req_cap(r, 2), &id) ? sim_note_by_id(r->s, id) : NULL;
	if (!n || n->mr_id != m->id) {
		sim_reply_message(r, 404, "404 Not found");
		return NULL;
	}
	return n;
}

static bool check_note_body(struct sim_req *r, const char **body_out)
{
	const char *body = sim_param(r, "body");
	if (!body || !*body) {
		sim_reply_error(r, 400, "body is missing");
		return false;
	}
	if (strlen(body) > 1000000) {
		struct json_object *m = json_object_new_object(), *arr = json_object_new_array(),
		                   *o = json_object_new_object();
		json_object_array_add(arr, json_object_new_string("is too long (maximum is 1000000 characters)"));
		json_object_object_add(m, "note", arr);
		json_object_object_add(o, "message", m);
		sim_reply_json(r, 400, o);
		return false;
	}
	*body_out = body;
	return true;
}

void sim_h_notes_list(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	if (!m)
		return;
	const char *sort = sim_param(r, "sort");
	bool asc = sort && strcmp(sort, "asc") == 0;
	struct sim_vec v = {0};
	for (size_t i = 0; i < r->s->notes.len; i++) {
		size_t k = asc ? i : r->s->notes.len - 1 - i;
		struct sim_note *n = r->s->notes.items[k];
		if (!n->removed && n->mr_id == m->id)
			sim_vec_push(&v, n);
	}
	sim_api_reply_page(r, &v, render_note_item);
}

void sim_h_note_get(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	struct sim_note *n = m ? find_note(r, m) : NULL;
	if (n)
		sim_reply_json(r, 200, sim_render_note(r->s, n));
}

struct sim_note *sim_api_note_new(struct sim_req *r, const struct sim_mr *m, const char *body)
{
	struct sim_note *n = sim_xcalloc(1, sizeof(*n));
	n->id = r->s->next_note_id++;
	n->mr_id = m->id;
	n->project_id = m->project_id;
	n->mr_iid = m->iid;
	n->body = sim_strdup(body);
	n->author = r->token->user;
	n->created_at = sim_now_iso();
	n->updated_at = sim_now_iso();
	sim_vec_push(&r->s->notes, n);
	return n;
}

void sim_h_note_add(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	const char *body = NULL;
	if (!m)
		return;
	if (p->archived) {
		sim_reply_message(r, 403, "403 Forbidden");
		return;
	}
	if (!check_note_body(r, &body))
		return;
	struct sim_note *n = sim_api_note_new(r, m, body);
	sim_param_bool(r, "internal", &n->internal);
	sim_strict_quick_actions(r->s, m, n, sim_param(r, "merge_request_diff_head_sha"));
	sim_notes_fire(r->s, m, n, "create");
	sim_reply_json(r, 201, sim_render_note(r->s, n));
}

void sim_h_note_edit(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	struct sim_note *n = m ? find_note(r, m) : NULL;
	const char *body = NULL;
	if (!n)
		return;
	if ((n->author != r->token->user && !r->token->admin) || p->archived) {
		sim_reply_message(r, 403, "403 Forbidden");
		return;
	}
	if (!check_note_body(r, &body))
		return;
	set_str(&n->body, body);
	set_str(&n->updated_at, NULL);
	n->updated_at = sim_now_iso();
	/* Notes::UpdateService runs the quick actions of the edited text too */
	sim_strict_quick_actions(r->s, m, n, sim_param(r, "merge_request_diff_head_sha"));
	sim_notes_fire(r->s, m, n, "update");
	sim_reply_json(r, 200, sim_render_note(r->s, n));
}

void sim_h_note_delete(struct sim_req *r)
{
	struct sim_project *p;
	struct sim_mr *m = api_mr(r, &p);
	struct sim_note *n = m ? find_note(r, m) : NULL;
	if (!n)
		return;
	if (n->author != r->token->user && !r->token->admin && sim_access_project(r->token, p) < 40) {
		sim_reply_message(r, 403, "403 Forbidden");
		return;
	}
	n->removed = true;
	sim_reply_text(r, 204, "application/json", "", 0);
}

/* --- archive and compare --------------------------------------------------------------------------------- */

void sim_h_archive(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 20);
	if (!p)
		return;
	const char *sha = sim_param(r, "sha");
	struct sim_commit *c = find_commit(p, sha ? sha : p->default_branch);
	if (!c) {
		sim_reply_message(r, 404, "404 File Not Found");
		return;
	}
	const struct sim_file *files;
	size_t n = sim_commit_tree(p, c, &files);
	char *prefix = sim_printf("%s-%s-%s", p->path, c->sha, c->sha);
	size_t len = 0;
	unsigned char *gz = sim_targz(prefix, c->sha, files, n, &len);
	if (!gz) {
		free(prefix);
		sim_reply_message(r, 500, "500 Internal Server Error");
		return;
	}
	char *disp = sim_printf("attachment; filename=\"%s.tar.gz\"", prefix);
	sim_add_header(r, "Content-Disposition", disp);
	free(disp);
	free(prefix);
	sim_reply_text(r, 200, "application/octet-stream", (const char *)gz, len);
	free(gz);
}

void sim_h_compare(struct sim_req *r)
{
	struct sim_project *p = sim_api_project(r, 0, 20);
	if (!p)
		return;
	const char *from = sim_param(r, "from"), *to = sim_param(r, "to");
	if (!from || !to) {
		sim_reply_error(r, 400, !from ? "from is missing" : "to is missing");
		return;
	}
	struct sim_commit *a = find_commit(p, from), *b = find_commit(p, to);
	if (!a || !b) {
		sim_reply_message(r, 404, "404 Ref Not Found");
		return;
	}
	const struct sim_file *fa, *fb;
	size_t na = sim_commit_tree(p, a, &fa);
	struct sim_change *ch = sim_xcalloc(na + 64, sizeof(*ch));
	size_t nch = 0, cap = na + 64;
	for (size_t i = 0; i < na; i++) {
		ch[nch].path = sim_strdup(fa[i].path);
		ch[nch].old_content = sim_strdup(fa[i].content);
		nch++;
	}
	size_t nb = sim_commit_tree(p, b, &fb);
	for (size_t i = 0; i < nb; i++) {
		size_t k = 0;
		while (k < nch && strcmp(ch[k].path, fb[i].path) != 0)
			k++;
		if (k == nch) {
			if (nch == cap) {
				cap *= 2;
				struct sim_change *nc = realloc(ch, cap * sizeof(*ch));
				if (!nc)
					abort();
				ch = nc;
			}
			memset(&ch[nch], 0, sizeof(ch[nch]));
			ch[nch].path = sim_strdup(fb[i].path);
			nch++;
		}
		ch[k].new_content = sim_strdup(fb[i].content);
	}
	struct json_object *diffs = json_object_new_array();
	/* the changed files in order, then GitLab's diff limits over them (compare_timeout = the overflow) */
	size_t nd = 0;
	for (size_t i = 0; i < nch; i++) {
		bool same = ch[i].old_content && ch[i].new_content && strcmp(ch[i].old_content, ch[i].new_content) == 0;
		if (same) {
			free(ch[i].path);
			free(ch[i].old_content);
			free(ch[i].new_content);
			continue;
		}
		ch[nd++] = ch[i];
	}
	nch = nd;
	bool *big = sim_xcalloc(nch + 1, sizeof(bool)), overflow = false;
	size_t kept = 0;
	sim_strict_diff_limits(r->s, ch, nch, big, &kept, &overflow);
	for (size_t i = 0; i < nch; i++) {
		if (i < kept)
			json_object_array_add(diffs, render_change_limited(&ch[i], false, big[i]));
		free(ch[i].path);
		free(ch[i].old_content);
		free(ch[i].new_content);
	}
	free(ch);
	free(big);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "commit", render_commit(r->s, p, b));
	struct json_object *commits = json_object_new_array();
	if (a != b)
		json_object_array_add(commits, render_commit(r->s, p, b));
	json_object_object_add(o, "commits", commits);
	json_object_object_add(o, "diffs", diffs);
	json_object_object_add(o, "compare_timeout", json_object_new_boolean(overflow));
	json_object_object_add(o, "compare_same_ref", json_object_new_boolean(a == b));
	json_object_object_add(
	    o, "web_url",
	    sim_json_printf("%s/%s/-/compare/%s...%s", r->s->instance_url, p->path_with_namespace, a->sha, b->sha));
	sim_reply_json(r, 200, o);
}

/*
 * GET /namespaces/:id (groups only here). EE's Namespace entity adds `plan` (the top-level group's plan:
 * Namespace#actual_plan_name) for users who may admin the namespace (Owner). The simulator answers as GitLab.com
 * does, where a plan is the tier ("free", "premium", "ultimate"); a self-managed instance reports "default" for
 * every group (the licence is the instance's), which the simulator does not model.
 */
void sim_h_namespace_get(struct sim_req *r)
{
	struct sim_group *g = sim_group_by_ref(r->s, sim_req_cap(r, 0));
	if (!g || !sim_can_see_group(r->token, g)) {
		sim_reply_message(r, 404, "404 Namespace Not Found");
		return;
	}
	struct json_object *o = sim_render_namespace(r->s, g);
	if (sim_access_group(r->token, g) >= 50) {
		int t = sim_group_tier(g);
		json_object_object_add(o, "plan",
		                       json_object_new_string(t == SIM_TIER_ULTIMATE  ? "ultimate"
		                                              : t == SIM_TIER_PREMIUM ? "premium"
		                                                                      : "free"));
		json_object_object_add(o, "trial_ends_on", NULL);
		json_object_object_add(o, "trial", json_object_new_boolean(false));
	}
	sim_reply_json(r, 200, o);
}
