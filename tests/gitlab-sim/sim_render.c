/*
 * tests/gitlab-sim/sim_render.c
 *    GitLab REST entities. Key sets follow the documented examples in shared/gitlab-examples (the
 *    tests under tests/gitlab-sim compare them key by key and type by type).
 *
 * Design: templates hold the fields a simulated project never varies; they are parsed once at start
 *    (sim_render_init, before any thread runs) and deep-copied per render, then dynamic fields are
 *    added. To add a field: put it in the template if it is constant, else set it in the function
 *    (for a project, in sim_render_project_text's field lists and put_field too: see there).
 * Ownership: every sim_render_* result belongs to the caller.
 */
#include "sim_render.h"

#include "sim_discussions.h"
#include "sim_strict.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Fields of Entities::Project that do not depend on the project. */
static const char project_static_json[] =
    "{\"tag_list\":[],\"topics\":[],\"forks_count\":0,\"star_count\":0,\"avatar_url\":null,"
    "\"packages_enabled\":true,\"resolve_outdated_diff_discussions\":false,"
    "\"container_expiration_policy\":{\"cadence\":\"1d\",\"enabled\":false,\"keep_n\":10,\"older_than\":\"90d\","
    "\"name_regex\":\".*\",\"name_regex_delete\":null,\"name_regex_keep\":\"\",\"next_run_at\":\"2024-01-02T00:00:00."
    "000Z\"},"
    "\"issues_enabled\":true,\"merge_requests_enabled\":true,\"wiki_enabled\":true,\"jobs_enabled\":true,"
    "\"snippets_enabled\":true,\"container_registry_enabled\":true,\"service_desk_enabled\":false,"
    "\"can_create_merge_request_in\":true,\"issues_access_level\":\"enabled\","
    "\"repository_access_level\":\"enabled\",\"merge_requests_access_level\":\"enabled\","
    "\"forking_access_level\":\"enabled\",\"wiki_access_level\":\"enabled\",\"builds_access_level\":\"enabled\","
    "\"snippets_access_level\":\"enabled\",\"pages_access_level\":\"private\","
    "\"analytics_access_level\":\"enabled\",\"container_registry_access_level\":\"enabled\","
    "\"security_and_compliance_access_level\":\"private\",\"emails_disabled\":false,\"emails_enabled\":true,"
    "\"shared_runners_enabled\":true,\"group_runners_enabled\":true,\"lfs_enabled\":true,\"creator_id\":1,"
    "\"import_url\":null,\"import_type\":null,\"import_status\":\"none\",\"import_error\":null,"
    "\"open_issues_count\":0,\"ci_default_git_depth\":20,\"ci_forward_deployment_enabled\":true,"
    "\"ci_forward_deployment_rollback_allowed\":true,\"ci_allow_fork_pipelines_to_run_in_parent_project\":true,"
    "\"ci_job_token_scope_enabled\":false,\"ci_separated_caches\":true,"
    "\"ci_restrict_pipeline_cancellation_role\":\"developer\","
    "\"ci_pipeline_variables_minimum_override_role\":\"developer\","
    "\"ci_push_repository_for_job_token_allowed\":false,\"public_jobs\":true,\"build_timeout\":3600,"
    "\"auto_cancel_pending_pipelines\":\"enabled\",\"ci_config_path\":\"\",\"shared_with_groups\":[],"
    "\"allow_pipeline_trigger_approve_deployment\":false,\"restrict_user_defined_variables\":false,"
    "\"request_access_enabled\":true,\"printing_merge_request_link_enabled\":true,"
    "\"enforce_auth_checks_on_uploads\":true,\"suggestion_commit_message\":null,\"merge_commit_template\":null,"
    "\"squash_commit_template\":null,\"issue_branch_template\":\"%{id}-%{title}\",\"auto_devops_enabled\":false,"
    "\"auto_devops_deploy_strategy\":\"continuous\",\"autoclose_referenced_issues\":true,"
    "\"keep_latest_artifact\":true,\"runner_token_expiration_interval\":null,"
    "\"external_authorization_classification_label\":\"\",\"requirements_enabled\":false,"
    "\"requirements_access_level\":\"enabled\",\"security_and_compliance_enabled\":false,"
    "\"pre_receive_secret_detection_enabled\":false,\"compliance_frameworks\":[],"
    "\"warn_about_potentially_unwanted_characters\":true}";

/* Extra fields of GET /projects/:id (ProjectDetails + EE). */
static const char project_detail_json[] =
    "{\"license_url\":null,\"repository_storage\":\"default\",\"printing_merge_requests_link_enabled\":true,"
    "\"approvals_before_merge\":0,\"mirror\":false,\"mirror_user_id\":null,\"mirror_trigger_builds\":false,"
    "\"only_mirror_protected_branches\":false,\"mirror_overwrites_diverged_branches\":false,"
    "\"service_desk_address\":null}";

/* Writable merge settings and their defaults. allow_merge_on_skipped_pipeline reads back null until set,
   as GitLab does for projects that never changed it (see projects-list example). */
static const char project_settings_json[] =
    "{\"only_allow_merge_if_pipeline_succeeds\":false,\"allow_merge_on_skipped_pipeline\":null,"
    "\"only_allow_merge_if_all_discussions_are_resolved\":false,"
    "\"only_allow_merge_if_all_status_checks_passed\":false,\"remove_source_branch_after_merge\":true,"
    "\"merge_method\":\"merge\",\"squash_option\":\"default_off\",\"merge_pipelines_enabled\":false,"
    "\"merge_trains_enabled\":false,\"merge_requests_enabled\":true,\"description\":null}";

static const char group_static_json[] =
    "{\"share_with_group_lock\":false,\"require_two_factor_authentication\":false,\"two_factor_grace_period\":48,"
    "\"project_creation_level\":\"developer\",\"auto_devops_enabled\":null,\"subgroup_creation_level\":\"owner\","
    "\"emails_disabled\":false,\"emails_enabled\":true,\"mentions_disabled\":null,\"lfs_enabled\":true,"
    "\"default_branch\":null,\"default_branch_protection\":2,"
    "\"default_branch_protection_defaults\":{\"allowed_to_push\":[{\"access_level\":40}],"
    "\"allow_force_push\":false,\"allowed_to_merge\":[{\"access_level\":40}]},\"avatar_url\":null,"
    "\"request_access_enabled\":false,\"repository_storage\":\"default\",\"file_template_project_id\":null}";

static const char user_self_json[] =
    "{\"state\":\"active\",\"locked\":false,\"avatar_url\":null,\"bio\":\"\",\"location\":null,"
    "\"linkedin\":\"\",\"twitter\":\"\",\"discord\":\"\",\"github\":\"\",\"website_url\":\"\",\"organization\":\"\","
    "\"job_title\":\"\",\"pronouns\":null,\"work_information\":null,\"followers\":0,\"following\":0,"
    "\"local_time\":null,\"last_sign_in_at\":null,\"confirmed_at\":\"2024-01-01T00:00:00.000Z\",\"theme_id\":1,"
    "\"last_activity_on\":null,\"color_scheme_id\":1,\"projects_limit\":100000,\"current_sign_in_at\":null,"
    "\"identities\":[],\"can_create_group\":true,\"can_create_project\":true,\"two_factor_enabled\":false,"
    "\"external\":false,\"private_profile\":false,\"preferred_language\":\"en\"}";

static const char mr_static_json[] =
    "{\"imported\":false,\"imported_from\":\"none\",\"merged_by\":null,\"merge_user\":null,\"merged_at\":null,"
    "\"merge_after\":null,\"closed_by\":null,\"user_notes_count\":0,\"upvotes\":0,\"downvotes\":0,"
    "\"assignees\":[],\"assignee\":null,\"reviewers\":[],\"labels\":[],\"draft\":false,\"work_in_progress\":false,"
    "\"milestone\":null,\"merge_when_pipeline_succeeds\":false,\"merge_commit_sha\":null,"
    "\"squash_commit_sha\":null,\"discussion_locked\":null,\"should_remove_source_branch\":null,"
    "\"force_remove_source_branch\":true,\"time_stats\":{\"time_estimate\":0,\"total_time_spent\":0,"
    "\"human_time_estimate\":null,\"human_total_time_spent\":null},\"squash\":false,"
    "\"task_completion_status\":{\"count\":0,\"completed_count\":0},\"has_conflicts\":false,"
    "\"blocking_discussions_resolved\":true,\"approvals_before_merge\":null,\"subscribed\":false,"
    "\"latest_build_started_at\":null,\"latest_build_finished_at\":null,"
    "\"first_deployed_to_production_at\":null,\"merge_error\":null,\"first_contribution\":false}";

static struct json_object *tmpl_project, *tmpl_project_detail, *tmpl_settings, *tmpl_group, *tmpl_user, *tmpl_mr;

static struct json_object *parse_or_die(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	if (!o) {
		fprintf(stderr, "gitlab-sim: bad built-in template\n");
		abort();
	}
	return o;
}

static void project_text_init(void);

void sim_render_init(void)
{
	tmpl_project = parse_or_die(project_static_json);
	tmpl_project_detail = parse_or_die(project_detail_json);
	tmpl_settings = parse_or_die(project_settings_json);
	tmpl_group = parse_or_die(group_static_json);
	tmpl_user = parse_or_die(user_self_json);
	tmpl_mr = parse_or_die(mr_static_json);
	project_text_init();
}

static struct json_object *copy(struct json_object *src)
{
	struct json_object *dst = NULL;
	if (json_object_deep_copy(src, &dst, NULL) != 0 || !dst) {
		fprintf(stderr, "gitlab-sim: out of memory\n");
		abort();
	}
	return dst;
}

static void merge_into(struct json_object *dst, struct json_object *src)
{
	json_object_object_foreach(src, k, v) json_object_object_add(dst, k, json_object_get(v));
}

struct json_object *sim_json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

struct json_object *sim_json_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = sim_vprintf(fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_string(s);
	free(s);
	return o;
}

#define ADD(o, k, v) json_object_object_add((o), (k), (v))
#define STR(s)       sim_json_str_or_null(s)
#define INT(i)       json_object_new_int64(i)
#define BOOL(b)      json_object_new_boolean(b)

struct json_object *sim_project_default_settings(void)
{
	return copy(tmpl_settings);
}

struct json_object *sim_project_setting(const struct sim_project *p, const char *key)
{
	struct json_object *v = NULL;
	if (p->settings && json_object_object_get_ex(p->settings, key, &v))
		return v;
	if (json_object_object_get_ex(tmpl_settings, key, &v))
		return v;
	return NULL;
}

/* --- users and tokens ---------------------------------------------------------------------------------- */

struct json_object *sim_render_user_basic(const struct sim *s, const struct sim_user *u)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(u->id));
	ADD(o, "username", STR(u->username));
	ADD(o, "name", STR(u->name));
	ADD(o, "state", STR("active"));
	ADD(o, "locked", BOOL(false));
	ADD(o, "avatar_url", NULL);
	ADD(o, "web_url", json_object_new_string_len("", 0));
	ADD(o, "web_url", sim_json_printf("%s/%s", s->instance_url, u->username));
	return o;
}

struct json_object *sim_render_user_self(const struct sim *s, const struct sim_user *u)
{
	struct json_object *o = copy(tmpl_user);
	ADD(o, "id", INT(u->id));
	ADD(o, "username", STR(u->username));
	ADD(o, "email", STR(u->email));
	ADD(o, "name", STR(u->name));
	ADD(o, "web_url", sim_json_printf("%s/%s", s->instance_url, u->username));
	ADD(o, "created_at", STR(u->created_at));
	ADD(o, "public_email", NULL);
	ADD(o, "commit_email", STR(u->email));
	ADD(o, "bot", BOOL(u->bot));
	return o;
}

struct json_object *sim_render_pat(const struct sim_token *t)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(t->id));
	ADD(o, "name", STR(t->name));
	ADD(o, "revoked", BOOL(t->revoked));
	ADD(o, "created_at", STR(t->created_at));
	ADD(o, "description", STR(t->description));
	struct json_object *sc = json_object_new_array();
	sim_scope_names(t->scopes, sc);
	ADD(o, "scopes", sc);
	ADD(o, "user_id", INT(t->user->id));
	ADD(o, "last_used_at", STR(t->last_used_at));
	ADD(o, "active", BOOL(!t->revoked && !sim_token_expired(t)));
	ADD(o, "expires_at", STR(t->expires_at));
	struct json_object *ips = json_object_new_array();
	json_object_array_add(ips, json_object_new_string("127.0.0.1"));
	ADD(o, "last_used_ips", ips);
	return o;
}

/* --- groups -------------------------------------------------------------------------------------------- */

static char *full_name(const struct sim_group *g)
{
	if (!g->parent)
		return sim_strdup(g->name);
	char *pn = full_name(g->parent);
	char *n = sim_printf("%s / %s", pn, g->name);
	free(pn);
	return n;
}

struct json_object *sim_render_group(const struct sim *s, const struct sim_group *g)
{
	struct json_object *o = copy(tmpl_group);
	ADD(o, "id", INT(g->id));
	ADD(o, "name", STR(g->name));
	ADD(o, "path", STR(g->path));
	ADD(o, "description", STR(g->description));
	ADD(o, "visibility", STR(g->visibility));
	ADD(o, "web_url", sim_json_printf("%s/groups/%s", s->instance_url, g->full_path));
	char *fn = full_name(g);
	ADD(o, "full_name", STR(fn));
	free(fn);
	ADD(o, "full_path", STR(g->full_path));
	ADD(o, "parent_id", g->parent ? INT(g->parent->id) : NULL);
	ADD(o, "created_at", STR(g->created_at));
	ADD(o, "marked_for_deletion_on", NULL);
	return o;
}

struct json_object *sim_render_namespace(const struct sim *s, const struct sim_group *g)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(g->id));
	ADD(o, "name", STR(g->name));
	ADD(o, "path", STR(g->path));
	ADD(o, "kind", STR("group"));
	ADD(o, "full_path", STR(g->full_path));
	ADD(o, "parent_id", g->parent ? INT(g->parent->id) : NULL);
	ADD(o, "avatar_url", NULL);
	ADD(o, "web_url", sim_json_printf("%s/groups/%s", s->instance_url, g->full_path));
	return o;
}

/* --- projects ------------------------------------------------------------------------------------------ */

/* The token's project and group access levels to p (0: none; no token: none). */
static void access_levels(const struct sim_project *p, const struct sim_token *t, int *pl_out, int *gl_out)
{
	int pl = 0, gl = 0;
	if (t) {
		for (size_t i = 0; i < t->n_access; i++)
			if (strcasecmp(t->access[i].path, p->path_with_namespace) == 0 && t->access[i].level > pl)
				pl = t->access[i].level;
		gl = sim_access_group(t, p->ns);
	}
	*pl_out = pl;
	*gl_out = gl;
}

static struct json_object *permissions(const struct sim_project *p, const struct sim_token *t)
{
	struct json_object *o = json_object_new_object();
	int pl = 0, gl = 0;
	access_levels(p, t, &pl, &gl);
	struct json_object *pa = NULL, *ga = NULL;
	if (pl > 0) {
		pa = json_object_new_object();
		ADD(pa, "access_level", INT(pl));
		ADD(pa, "notification_level", INT(3));
	}
	if (gl > 0) {
		ga = json_object_new_object();
		ADD(ga, "access_level", INT(gl));
		ADD(ga, "notification_level", INT(3));
	}
	ADD(o, "project_access", pa);
	ADD(o, "group_access", ga);
	return o;
}

struct json_object *sim_render_project(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                                       enum sim_project_view view)
{
	struct json_object *o = view == SIM_PROJECT_SIMPLE ? json_object_new_object() : copy(tmpl_project);
	const char *base = s->instance_url;
	const char *host = strstr(base, "://") ? strstr(base, "://") + 3 : base;
	ADD(o, "id", INT(p->id));
	struct json_object *desc = sim_project_setting(p, "description");
	ADD(o, "description",
	    desc && !json_object_is_type(desc, json_type_null) ? json_object_get(desc) : STR(p->description));
	char *fn = full_name(p->ns);
	char *nwn = sim_printf("%s / %s", fn, p->name);
	free(fn);
	ADD(o, "name", STR(p->name));
	ADD(o, "name_with_namespace", STR(nwn));
	free(nwn);
	ADD(o, "path", STR(p->path));
	ADD(o, "path_with_namespace", STR(p->path_with_namespace));
	ADD(o, "created_at", STR(p->created_at));
	ADD(o, "default_branch", STR(p->default_branch));
	if (view == SIM_PROJECT_SIMPLE) {
		ADD(o, "tag_list", json_object_new_array());
		ADD(o, "topics", json_object_new_array());
	}
	ADD(o, "ssh_url_to_repo", sim_json_printf("git@%s:%s.git", host, p->path_with_namespace));
	ADD(o, "http_url_to_repo", sim_json_printf("%s/%s.git", base, p->path_with_namespace));
	ADD(o, "web_url", sim_json_printf("%s/%s", base, p->path_with_namespace));
	if (view != SIM_PROJECT_SIMPLE) {
		ADD(o, "readme_url",
		    sim_json_printf("%s/%s/-/blob/%s/README.md", base, p->path_with_namespace, p->default_branch));
	}
	ADD(o, "avatar_url", NULL);
	if (view == SIM_PROJECT_SIMPLE) {
		ADD(o, "star_count", INT(0));
		ADD(o, "forks_count", INT(0));
	}
	ADD(o, "last_activity_at", STR(p->last_activity_at));
	ADD(o, "namespace", sim_render_namespace(s, p->ns));
	if (view == SIM_PROJECT_SIMPLE)
		return o;

	ADD(o, "description_html",
	    sim_json_printf("<p dir=\"auto\">%s</p>",
	                    json_object_get_string(json_object_object_get(o, "description"))));
	ADD(o, "updated_at", STR(p->last_activity_at));
	ADD(o, "container_registry_image_prefix", sim_json_printf("registry.%s/%s", host, p->path_with_namespace));
	struct json_object *links = json_object_new_object();
	static const char *link_names[] = {"issues", "merge_requests", "repo_branches", "labels",
	                                   "events", "members",        "cluster_agents"};
	char *u = sim_printf("%s/api/v4/projects/%lld", base, (long long)p->id);
	ADD(links, "self", STR(u));
	for (size_t i = 0; i < sizeof(link_names) / sizeof(link_names[0]); i++) {
		ADD(links, link_names[i],
		    sim_json_printf("%s/%s", u,
		                    strcmp(link_names[i], "repo_branches") == 0 ? "repository/branches"
		                                                                : link_names[i]));
	}
	free(u);
	ADD(o, "_links", links);
	ADD(o, "empty_repo", BOOL(false));
	ADD(o, "archived", BOOL(p->archived));
	ADD(o, "visibility", STR(p->visibility));
	ADD(o, "marked_for_deletion_at", STR(p->marked_for_deletion_on));
	ADD(o, "marked_for_deletion_on", STR(p->marked_for_deletion_on));
	json_object_object_foreach(tmpl_settings, k, v)
	{
		(void)v;
		if (strcmp(k, "description") != 0)
			ADD(o, k, json_object_get(sim_project_setting(p, k)));
	}
	if (view == SIM_PROJECT_ACCESS || view == SIM_PROJECT_DETAIL)
		ADD(o, "permissions", permissions(p, t));
	if (view == SIM_PROJECT_DETAIL) {
		merge_into(o, tmpl_project_detail);
		if (sim_access_project(t, p) >= 50) {
			char rt[41];
			sim_sha_for((uint64_t)p->id * 7 + 3, rt);
			rt[30] = '\0';
			ADD(o, "runners_token", STR(rt));
		}
	}
	return o;
}

/* --- projects as text, for listings ------------------------------------------------------------------------- */

/*
 * A listing page of 100 projects built as json-c trees (the template deep-copied, ~80 keys each, serialised, freed)
 * cost about 5 ms under the simulator's one lock; sim_render_project_text writes the same bytes straight into a
 * buffer in well under 1 ms.
 *
 * It rests on two rules of json-c: an object's keys serialise in the order they were added, and adding a key that is
 * already there replaces its value in place. So what sim_render_project answers is the template's keys in their
 * order (a key the function sets again, as avatar_url and merge_requests_enabled, holds the new value at the
 * template's place), then the keys the template lacks in the order the function adds them. plan_build() turns that
 * into a plan per view, once at start: the template's other keys become constant text, each key the function sets a
 * slot that put_field() fills per project. The template and the settings keys are read from the same JSON as
 * sim_render_project's, so changing them needs nothing here; a key sim_render_project adds or computes differently
 * must be mirrored in the field lists and put_field. With GITLAB_SIM_CHECK_RENDER=1 in its environment (simtest.py
 * sets it for the simulator's own tests) the simulator renders every listed project both ways and aborts on the
 * first difference.
 */

enum project_field {
	PF_ID,
	PF_DESCRIPTION,
	PF_NAME,
	PF_NAME_WITH_NAMESPACE,
	PF_PATH,
	PF_PATH_WITH_NAMESPACE,
	PF_CREATED_AT,
	PF_DEFAULT_BRANCH,
	PF_TAG_LIST,
	PF_TOPICS,
	PF_SSH_URL_TO_REPO,
	PF_HTTP_URL_TO_REPO,
	PF_WEB_URL,
	PF_README_URL,
	PF_AVATAR_URL,
	PF_STAR_COUNT,
	PF_FORKS_COUNT,
	PF_LAST_ACTIVITY_AT,
	PF_NAMESPACE,
	PF_DESCRIPTION_HTML,
	PF_UPDATED_AT,
	PF_CONTAINER_REGISTRY_IMAGE_PREFIX,
	PF_LINKS,
	PF_EMPTY_REPO,
	PF_ARCHIVED,
	PF_VISIBILITY,
	PF_MARKED_FOR_DELETION_AT,
	PF_MARKED_FOR_DELETION_ON,
	PF_PERMISSIONS,
	PF_SETTING, /* PF_SETTING + i: setting_keys[i] */
};
#define MAX_SETTING_KEYS 32
#define PF_COUNT         (PF_SETTING + MAX_SETTING_KEYS)
#define PF_END           (-1) /* ends a field list */
#define PF_ALL_SETTINGS  (-2) /* in a field list: every key of setting_keys, in order */

/* Several entries a line read better than the formatter's one entry a line. */
/* clang-format off */
static const char *const field_names[PF_SETTING] = {
	[PF_ID] = "id", [PF_DESCRIPTION] = "description", [PF_NAME] = "name",
	[PF_NAME_WITH_NAMESPACE] = "name_with_namespace", [PF_PATH] = "path",
	[PF_PATH_WITH_NAMESPACE] = "path_with_namespace", [PF_CREATED_AT] = "created_at",
	[PF_DEFAULT_BRANCH] = "default_branch", [PF_TAG_LIST] = "tag_list", [PF_TOPICS] = "topics",
	[PF_SSH_URL_TO_REPO] = "ssh_url_to_repo", [PF_HTTP_URL_TO_REPO] = "http_url_to_repo", [PF_WEB_URL] = "web_url",
	[PF_README_URL] = "readme_url", [PF_AVATAR_URL] = "avatar_url", [PF_STAR_COUNT] = "star_count",
	[PF_FORKS_COUNT] = "forks_count", [PF_LAST_ACTIVITY_AT] = "last_activity_at", [PF_NAMESPACE] = "namespace",
	[PF_DESCRIPTION_HTML] = "description_html", [PF_UPDATED_AT] = "updated_at",
	[PF_CONTAINER_REGISTRY_IMAGE_PREFIX] = "container_registry_image_prefix", [PF_LINKS] = "_links",
	[PF_EMPTY_REPO] = "empty_repo", [PF_ARCHIVED] = "archived", [PF_VISIBILITY] = "visibility",
	[PF_MARKED_FOR_DELETION_AT] = "marked_for_deletion_at", [PF_MARKED_FOR_DELETION_ON] = "marked_for_deletion_on",
	[PF_PERMISSIONS] = "permissions",
};

/* The keys sim_render_project adds, in the order it adds them, per view. */
static const int simple_fields[] = {
	PF_ID, PF_DESCRIPTION, PF_NAME, PF_NAME_WITH_NAMESPACE, PF_PATH, PF_PATH_WITH_NAMESPACE, PF_CREATED_AT,
	PF_DEFAULT_BRANCH, PF_TAG_LIST, PF_TOPICS, PF_SSH_URL_TO_REPO, PF_HTTP_URL_TO_REPO, PF_WEB_URL, PF_AVATAR_URL,
	PF_STAR_COUNT, PF_FORKS_COUNT, PF_LAST_ACTIVITY_AT, PF_NAMESPACE, PF_END,
};
#define LIST_FIELDS                                                                                                    \
	PF_ID, PF_DESCRIPTION, PF_NAME, PF_NAME_WITH_NAMESPACE, PF_PATH, PF_PATH_WITH_NAMESPACE, PF_CREATED_AT,        \
	PF_DEFAULT_BRANCH, PF_SSH_URL_TO_REPO, PF_HTTP_URL_TO_REPO, PF_WEB_URL, PF_README_URL, PF_AVATAR_URL,          \
	PF_LAST_ACTIVITY_AT, PF_NAMESPACE, PF_DESCRIPTION_HTML, PF_UPDATED_AT, PF_CONTAINER_REGISTRY_IMAGE_PREFIX,     \
	PF_LINKS, PF_EMPTY_REPO, PF_ARCHIVED, PF_VISIBILITY, PF_MARKED_FOR_DELETION_AT, PF_MARKED_FOR_DELETION_ON,     \
	PF_ALL_SETTINGS
static const int list_fields[] = {LIST_FIELDS, PF_END};
static const int access_fields[] = {LIST_FIELDS, PF_PERMISSIONS, PF_END};
/* clang-format on */

/* The settings sim_render_project copies into the entity: tmpl_settings' keys but description (borrowed). */
static const char *setting_keys[MAX_SETTING_KEYS];
static size_t n_setting_keys;

/* A plan: constant text, a field, constant text, ..., the last text (field -1). */
struct plan_step {
	char *text;
	size_t len;
	int field;
};
struct plan {
	struct plan_step *steps;
	size_t n;
};
static struct plan plans[SIM_PROJECT_DETAIL]; /* SIMPLE, LIST, ACCESS */
static bool check_text;                       /* GITLAB_SIM_CHECK_RENDER=1 */

static const char *field_name(int f)
{
	return f < PF_SETTING ? field_names[f] : setting_keys[f - PF_SETTING];
}

/* s (n bytes) inside a JSON string as json-c writes it with SIM_JSON_TEXT: bytes below 0x20, '"' and '\\' escaped,
 * everything else (UTF-8 included) as is. A string that needs escaping is left to json-c itself. */
static void put_escaped(struct sim_buf *b, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
		i++;
	if (i == n) {
		sim_buf_put(b, s, n);
		return;
	}
	struct json_object *o = json_object_new_string_len(s, (int)n);
	size_t len = 0;
	const char *t = json_object_to_json_string_length(o, SIM_JSON_TEXT, &len);
	sim_buf_put(b, t + 1, len - 2); /* without its quotes */
	json_object_put(o);
}

/* One "%s" of a sim_printf inside a JSON string: NULL prints as glibc's "(null)". */
static void put_part(struct sim_buf *b, const char *s)
{
	if (!s)
		s = "(null)";
	put_escaped(b, s, strlen(s));
}

/* STR(s): a JSON string, or null. */
static void put_str(struct sim_buf *b, const char *s)
{
	if (!s) {
		sim_buf_lit(b, "null");
		return;
	}
	sim_buf_lit(b, "\"");
	put_escaped(b, s, strlen(s));
	sim_buf_lit(b, "\"");
}

/* json-c's "%" PRId64, without printf's cost */
static void put_int(struct sim_buf *b, int64_t v)
{
	char num[24];
	size_t i = sizeof(num);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		num[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		num[--i] = '-';
	sim_buf_put(b, num + i, sizeof(num) - i);
}

static void put_bool(struct sim_buf *b, bool v)
{
	if (v)
		sim_buf_lit(b, "true");
	else
		sim_buf_lit(b, "false");
}

/* Any json-c value (NULL is null). Strings, booleans and null are written here; anything else by json-c. */
static void put_json(struct sim_buf *b, struct json_object *v)
{
	size_t len = 0;
	switch (json_object_get_type(v)) {
	case json_type_null: sim_buf_lit(b, "null"); return;
	case json_type_boolean: put_bool(b, json_object_get_boolean(v)); return;
	case json_type_int:
		if (json_object_get_int64(v) != INT64_MAX) { /* else maybe a larger uint64: json-c's own "%" PRIu64 */
			put_int(b, json_object_get_int64(v));
			return;
		}
		break;
	case json_type_string:
		sim_buf_lit(b, "\"");
		put_escaped(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		sim_buf_lit(b, "\"");
		return;
	default: break;
	}
	const char *t = json_object_to_json_string_length(v, SIM_JSON_TEXT, &len); /* writes into v's own buffer */
	sim_buf_put(b, t, len);
}

/* put_json(v) writes v without json-c serialising it (which writes into v's own buffer: not from two threads). */
static bool put_json_is_pure(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
	case json_type_boolean:
	case json_type_string: return true;
	case json_type_int: return json_object_get_int64(v) != INT64_MAX;
	default: return false;
	}
}

/* full_name(g), inside a JSON string. */
static void put_full_name(struct sim_buf *b, const struct sim_group *g)
{
	if (g->parent) {
		put_full_name(b, g->parent);
		sim_buf_lit(b, " / ");
	}
	put_part(b, g->name);
}

/* sim_render_namespace(s, g). */
static void put_namespace(struct sim_buf *b, const struct sim *s, const struct sim_group *g)
{
	sim_buf_lit(b, "{\"id\":");
	put_int(b, g->id);
	sim_buf_lit(b, ",\"name\":");
	put_str(b, g->name);
	sim_buf_lit(b, ",\"path\":");
	put_str(b, g->path);
	sim_buf_lit(b, ",\"kind\":\"group\",\"full_path\":");
	put_str(b, g->full_path);
	sim_buf_lit(b, ",\"parent_id\":");
	if (g->parent)
		put_int(b, g->parent->id);
	else
		sim_buf_lit(b, "null");
	sim_buf_lit(b, ",\"avatar_url\":null,\"web_url\":\"");
	put_part(b, s->instance_url);
	sim_buf_lit(b, "/groups/");
	put_part(b, g->full_path);
	sim_buf_lit(b, "\"}");
}

/* The "_links" of sim_render_project. */
static void put_links(struct sim_buf *b, const char *base, int64_t id)
{
	static const char *const names[][2] = {{"issues", "issues"},
	                                       {"merge_requests", "merge_requests"},
	                                       {"repo_branches", "repository/branches"},
	                                       {"labels", "labels"},
	                                       {"events", "events"},
	                                       {"members", "members"},
	                                       {"cluster_agents", "cluster_agents"}};
	sim_buf_lit(b, "{\"self\":\"");
	put_part(b, base);
	sim_buf_lit(b, "/api/v4/projects/");
	put_int(b, id);
	sim_buf_lit(b, "\"");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		sim_buf_lit(b, ",\"");
		sim_buf_puts(b, names[i][0]);
		sim_buf_lit(b, "\":\"");
		put_part(b, base);
		sim_buf_lit(b, "/api/v4/projects/");
		put_int(b, id);
		sim_buf_lit(b, "/");
		sim_buf_puts(b, names[i][1]);
		sim_buf_lit(b, "\"");
	}
	sim_buf_lit(b, "}");
}

/* permissions(p, t). */
static void put_access(struct sim_buf *b, int level)
{
	if (level <= 0) {
		sim_buf_lit(b, "null");
		return;
	}
	sim_buf_lit(b, "{\"access_level\":");
	put_int(b, level);
	sim_buf_lit(b, ",\"notification_level\":3}");
}

static void put_permissions(struct sim_buf *b, const struct sim_project *p, const struct sim_token *t)
{
	int pl = 0, gl = 0;
	access_levels(p, t, &pl, &gl);
	sim_buf_lit(b, "{\"project_access\":");
	put_access(b, pl);
	sim_buf_lit(b, ",\"group_access\":");
	put_access(b, gl);
	sim_buf_lit(b, "}");
}

struct project_text {
	const struct sim *s;
	const struct sim_project *p;
	const struct sim_token *t;
	const char *base, *host;
	struct json_object *desc; /* the description setting when it is not null, else NULL */
};

/* pre, x and y as string content, sep, post: a string value made of two parts. */
static void put_joined(struct sim_buf *b, const char *pre, const char *x, const char *sep, const char *y,
                       const char *post)
{
	sim_buf_puts(b, pre);
	put_part(b, x);
	sim_buf_puts(b, sep);
	put_part(b, y);
	sim_buf_puts(b, post);
}

/* The value sim_render_project gives key f. */
static void put_field(struct sim_buf *b, const struct project_text *c, int f)
{
	const struct sim_project *p = c->p;
	switch (f) {
	case PF_ID: put_int(b, p->id); return;
	case PF_DESCRIPTION:
		if (c->desc)
			put_json(b, c->desc);
		else
			put_str(b, p->description);
		return;
	case PF_NAME: put_str(b, p->name); return;
	case PF_NAME_WITH_NAMESPACE:
		sim_buf_lit(b, "\"");
		put_full_name(b, p->ns);
		sim_buf_lit(b, " / ");
		put_part(b, p->name);
		sim_buf_lit(b, "\"");
		return;
	case PF_PATH: put_str(b, p->path); return;
	case PF_PATH_WITH_NAMESPACE: put_str(b, p->path_with_namespace); return;
	case PF_CREATED_AT: put_str(b, p->created_at); return;
	case PF_DEFAULT_BRANCH: put_str(b, p->default_branch); return;
	case PF_TAG_LIST:
	case PF_TOPICS: sim_buf_lit(b, "[]"); return;
	case PF_SSH_URL_TO_REPO: put_joined(b, "\"git@", c->host, ":", p->path_with_namespace, ".git\""); return;
	case PF_HTTP_URL_TO_REPO: put_joined(b, "\"", c->base, "/", p->path_with_namespace, ".git\""); return;
	case PF_WEB_URL: put_joined(b, "\"", c->base, "/", p->path_with_namespace, "\""); return;
	case PF_README_URL:
		put_joined(b, "\"", c->base, "/", p->path_with_namespace, "/-/blob/");
		put_part(b, p->default_branch);
		sim_buf_lit(b, "/README.md\"");
		return;
	case PF_AVATAR_URL: sim_buf_lit(b, "null"); return;
	case PF_STAR_COUNT:
	case PF_FORKS_COUNT: sim_buf_lit(b, "0"); return;
	case PF_LAST_ACTIVITY_AT:
	case PF_UPDATED_AT: put_str(b, p->last_activity_at); return;
	case PF_NAMESPACE: put_namespace(b, c->s, p->ns); return;
	case PF_DESCRIPTION_HTML:
		/* the "%s" of json_object_get_string() of the description just added */
		sim_buf_lit(b, "\"<p dir=\\\"auto\\\">");
		put_part(b, c->desc ? json_object_get_string(c->desc) : p->description);
		sim_buf_lit(b, "</p>\"");
		return;
	case PF_CONTAINER_REGISTRY_IMAGE_PREFIX:
		put_joined(b, "\"registry.", c->host, "/", p->path_with_namespace, "\"");
		return;
	case PF_LINKS: put_links(b, c->base, p->id); return;
	case PF_EMPTY_REPO: put_bool(b, false); return;
	case PF_ARCHIVED: put_bool(b, p->archived); return;
	case PF_VISIBILITY: put_str(b, p->visibility); return;
	case PF_MARKED_FOR_DELETION_AT:
	case PF_MARKED_FOR_DELETION_ON: put_str(b, p->marked_for_deletion_on); return;
	case PF_PERMISSIONS: put_permissions(b, p, c->t); return;
	default: put_json(b, sim_project_setting(p, field_name(f))); return;
	}
}

static void plan_add(struct plan *pl, struct sim_buf *text, int field)
{
	struct plan_step *steps = realloc(pl->steps, (pl->n + 1) * sizeof(*steps));
	if (!steps) {
		fprintf(stderr, "gitlab-sim: out of memory\n");
		abort();
	}
	pl->steps = steps;
	pl->steps[pl->n++] =
	    (struct plan_step){.text = text->data ? text->data : sim_strdup(""), .len = text->len, .field = field};
	*text = (struct sim_buf){0};
}

/* The plan of one view: base (NULL: an empty object) with fields added in order, as sim_render_project does. */
static void plan_build(struct plan *pl, struct json_object *base, const int *fields)
{
	int order[PF_COUNT];
	size_t n = 0;
	for (size_t i = 0; fields[i] != PF_END; i++) {
		if (fields[i] == PF_ALL_SETTINGS) {
			for (size_t k = 0; k < n_setting_keys; k++)
				order[n++] = PF_SETTING + (int)k;
		} else {
			order[n++] = fields[i];
		}
	}
	bool placed[PF_COUNT] = {false};
	bool first = true;
	struct sim_buf text = {0};
	sim_buf_lit(&text, "{");
	if (base) {
		json_object_object_foreach(base, key, value)
		{
			if (!first)
				sim_buf_lit(&text, ",");
			first = false;
			put_str(&text, key);
			sim_buf_lit(&text, ":");
			size_t k = 0;
			while (k < n && strcmp(field_name(order[k]), key) != 0)
				k++;
			if (k < n) { /* set again by the function: its value, at the template's place */
				placed[order[k]] = true;
				plan_add(pl, &text, order[k]);
			} else {
				put_json(&text, value);
			}
		}
	}
	for (size_t k = 0; k < n; k++) {
		if (placed[order[k]])
			continue;
		if (!first)
			sim_buf_lit(&text, ",");
		first = false;
		put_str(&text, field_name(order[k]));
		sim_buf_lit(&text, ":");
		plan_add(pl, &text, order[k]);
	}
	sim_buf_lit(&text, "}");
	plan_add(pl, &text, -1);
}

static void project_text_init(void)
{
	json_object_object_foreach(tmpl_settings, key, value)
	{
		(void)value;
		if (strcmp(key, "description") == 0)
			continue;
		if (n_setting_keys == MAX_SETTING_KEYS) {
			fprintf(stderr, "gitlab-sim: more than %d project settings\n", MAX_SETTING_KEYS);
			abort();
		}
		setting_keys[n_setting_keys++] = key;
	}
	plan_build(&plans[SIM_PROJECT_SIMPLE], NULL, simple_fields);
	plan_build(&plans[SIM_PROJECT_LIST], tmpl_project, list_fields);
	plan_build(&plans[SIM_PROJECT_ACCESS], tmpl_project, access_fields);
	const char *check = getenv("GITLAB_SIM_CHECK_RENDER");
	check_text = check && strcmp(check, "1") == 0;
}

void sim_render_project_text_check(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                                   enum sim_project_view view, const char *text, size_t text_len)
{
	if (!check_text || view == SIM_PROJECT_DETAIL)
		return;
	struct json_object *o = sim_render_project(s, p, t, view);
	size_t len = 0;
	const char *want = json_object_to_json_string_length(o, SIM_JSON_TEXT, &len);
	if (len != text_len || memcmp(want, text, len) != 0) {
		fprintf(
		    stderr,
		    "gitlab-sim: GITLAB_SIM_CHECK_RENDER: project %lld, view %d: sim_render_project_text wrote\n%.*s\n"
		    "where sim_render_project gives\n%s\n",
		    (long long)p->id, (int)view, (int)text_len, text, want);
		abort();
	}
	json_object_put(o);
}

bool sim_render_project_text_pure(const struct sim_project *p, enum sim_project_view view)
{
	if (view == SIM_PROJECT_DETAIL) /* no plan: a json-c tree */
		return false;
	for (size_t k = 0; k < n_setting_keys; k++)
		if (!put_json_is_pure(sim_project_setting(p, setting_keys[k])))
			return false;
	struct json_object *desc = sim_project_setting(p, "description");
	return !desc || put_json_is_pure(desc);
}

void sim_render_project_text_unchecked(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                                       enum sim_project_view view, struct sim_buf *b)
{
	if (view == SIM_PROJECT_DETAIL) { /* no plan: the tree, serialised */
		struct json_object *o = sim_render_project(s, p, t, view);
		size_t len = 0;
		const char *text = json_object_to_json_string_length(o, SIM_JSON_TEXT, &len);
		sim_buf_put(b, text, len);
		json_object_put(o);
		return;
	}
	struct json_object *desc = sim_project_setting(p, "description");
	struct project_text c = {
	    .s = s,
	    .p = p,
	    .t = t,
	    .base = s->instance_url,
	    .host = strstr(s->instance_url, "://") ? strstr(s->instance_url, "://") + 3 : s->instance_url,
	    .desc = desc && !json_object_is_type(desc, json_type_null) ? desc : NULL,
	};
	const struct plan *pl = &plans[view];
	for (size_t i = 0; i < pl->n; i++) {
		sim_buf_put(b, pl->steps[i].text, pl->steps[i].len);
		if (pl->steps[i].field >= 0)
			put_field(b, &c, pl->steps[i].field);
	}
}

void sim_render_project_text(const struct sim *s, const struct sim_project *p, const struct sim_token *t,
                             enum sim_project_view view, struct sim_buf *b)
{
	size_t start = b->len;
	sim_render_project_text_unchecked(s, p, t, view, b);
	sim_render_project_text_check(s, p, t, view, b->data + start, b->len - start);
}

/* --- hooks --------------------------------------------------------------------------------------------- */

/* The keys of obj as GitLab lists a hook's url_variables and custom_headers, without their values: [{"key": k}]. */
static struct json_object *keys_only(struct json_object *obj)
{
	struct json_object *a = json_object_new_array();
	json_object_object_foreach(obj, k, v)
	{
		(void)v;
		struct json_object *e = json_object_new_object();
		ADD(e, "key", STR(k));
		json_object_array_add(a, e);
	}
	return a;
}

struct json_object *sim_render_hook(const struct sim_hook *h)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(h->id));
	ADD(o, "url", STR(h->url));
	merge_into(o, h->attrs);
	ADD(o, h->group_hook ? "group_id" : "project_id", INT(h->owner_id));
	ADD(o, "alert_status", STR(h->alert_status));
	if (h->disabled_until) {
		char ts[32];
		sim_iso_time(h->disabled_until, ts);
		ADD(o, "disabled_until", STR(ts));
	} else {
		ADD(o, "disabled_until", NULL);
	}
	ADD(o, "url_variables", keys_only(h->url_vars));
	ADD(o, "created_at", STR(h->created_at));
	ADD(o, "custom_headers", keys_only(h->headers));
	return o;
}

/* --- pipelines and statuses ---------------------------------------------------------------------------- */

struct json_object *sim_render_pipeline(const struct sim *s, const struct sim_pipeline *pl, bool detail)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(pl->id));
	ADD(o, "iid", INT(pl->iid));
	ADD(o, "project_id", INT(pl->project_id));
	ADD(o, "sha", STR(pl->sha));
	ADD(o, "ref", STR(pl->ref));
	ADD(o, "status", STR(pl->status));
	ADD(o, "source", STR(pl->source));
	ADD(o, "created_at", STR(pl->created_at));
	ADD(o, "updated_at", STR(pl->updated_at));
	const struct sim_project *p = sim_project_by_id((struct sim *)s, pl->project_id);
	ADD(o, "web_url",
	    sim_json_printf("%s/%s/-/pipelines/%lld", s->instance_url, p ? p->path_with_namespace : "unknown",
	                    (long long)pl->id));
	if (detail) {
		ADD(o, "before_sha", STR("0000000000000000000000000000000000000000"));
		ADD(o, "tag", BOOL(false));
		ADD(o, "yaml_errors", NULL);
		ADD(o, "user", pl->user ? sim_render_user_basic(s, pl->user) : NULL);
		ADD(o, "started_at", NULL);
		ADD(o, "finished_at", NULL);
		ADD(o, "committed_at", NULL);
		ADD(o, "duration", NULL);
		ADD(o, "queued_duration", NULL);
		ADD(o, "coverage", NULL);
		struct json_object *ds = json_object_new_object();
		ADD(ds, "icon", sim_json_printf("status_%s", pl->status));
		ADD(ds, "text", STR(pl->status));
		ADD(ds, "label", STR(pl->status));
		ADD(ds, "group", STR(pl->status));
		ADD(ds, "tooltip", STR(pl->status));
		ADD(ds, "has_details", BOOL(true));
		char *dp =
		    sim_printf("/%s/-/pipelines/%lld", p ? p->path_with_namespace : "unknown", (long long)pl->id);
		ADD(ds, "details_path", STR(dp));
		free(dp);
		ADD(ds, "illustration", NULL);
		ADD(ds, "favicon", STR("/assets/ci_favicons/favicon_status.png"));
		ADD(o, "detailed_status", ds);
	}
	return o;
}

struct json_object *sim_render_status(const struct sim *s, const struct sim_status *st)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(st->id));
	ADD(o, "sha", STR(st->sha));
	ADD(o, "ref", STR(st->ref));
	ADD(o, "status", STR(st->status));
	ADD(o, "name", STR(st->name));
	ADD(o, "target_url", STR(st->target_url));
	ADD(o, "description", STR(st->description));
	ADD(o, "created_at", STR(st->created_at));
	ADD(o, "started_at", STR(st->started_at));
	ADD(o, "finished_at", STR(st->finished_at));
	ADD(o, "allow_failure", BOOL(false));
	ADD(o, "coverage", st->has_coverage ? json_object_new_double(st->coverage) : NULL);
	ADD(o, "pipeline_id", INT(st->pipeline_id));
	struct json_object *a = sim_render_user_basic(s, st->author);
	json_object_object_del(a, "locked");
	ADD(o, "author", a);
	return o;
}

/* --- merge requests and notes -------------------------------------------------------------------------- */

struct json_object *sim_render_mr(struct sim *s, const struct sim_mr *mr, const struct sim_token *t)
{
	const struct sim_project *p = sim_project_by_id(s, mr->project_id);
	struct json_object *o = copy(tmpl_mr);
	ADD(o, "id", INT(mr->id));
	ADD(o, "iid", INT(mr->iid));
	ADD(o, "project_id", INT(mr->project_id));
	ADD(o, "title", STR(mr->title));
	ADD(o, "description", STR(mr->description ? mr->description : ""));
	ADD(o, "state", STR(mr->state));
	ADD(o, "created_at", STR(mr->created_at));
	ADD(o, "updated_at", STR(mr->updated_at));
	ADD(o, "prepared_at", STR(mr->created_at));
	ADD(o, "closed_at", STR(mr->closed_at));
	ADD(o, "target_branch", STR(mr->target_branch));
	ADD(o, "source_branch", STR(mr->source_branch));
	struct json_object *author = sim_render_user_basic(s, mr->author);
	ADD(o, "author", author);
	ADD(o, "source_project_id", INT(mr->project_id));
	ADD(o, "target_project_id", INT(mr->project_id));
	ADD(o, "sha", STR(mr->sha));
	char ref[32];
	snprintf(ref, sizeof(ref), "!%lld", (long long)mr->iid);
	ADD(o, "reference", STR(ref));
	struct json_object *refs = json_object_new_object();
	ADD(refs, "short", STR(ref));
	ADD(refs, "relative", STR(ref));
	ADD(refs, "full", sim_json_printf("%s%s", p ? p->path_with_namespace : "", ref));
	ADD(o, "references", refs);
	ADD(o, "web_url",
	    sim_json_printf("%s/%s/-/merge_requests/%lld", s->instance_url, p ? p->path_with_namespace : "",
	                    (long long)mr->iid));
	char *cnt = sim_strict_changes_count(s, mr); /* "1000+" past GitLab's diff limits */
	ADD(o, "changes_count", STR(cnt));
	free(cnt);

	struct sim_pipeline *hp = sim_mr_head_pipeline(s, mr);
	bool opened = strcmp(mr->state, "opened") == 0;
	const char *dms = "mergeable";
	if (!opened)
		dms = "not_open";
	else if (p) {
		struct json_object *must = sim_project_setting(p, "only_allow_merge_if_pipeline_succeeds");
		struct json_object *skip = sim_project_setting(p, "allow_merge_on_skipped_pipeline");
		if (must && json_object_get_boolean(must)) {
			if (!hp)
				dms = "ci_must_pass";
			else if (strcmp(hp->status, "success") == 0 ||
			         (strcmp(hp->status, "skipped") == 0 && skip && json_object_get_boolean(skip)))
				dms = "mergeable";
			else if (strcmp(hp->status, "pending") == 0 || strcmp(hp->status, "running") == 0 ||
			         strcmp(hp->status, "created") == 0)
				dms = "ci_still_running";
			else
				dms = "ci_must_pass";
		}
	}
	const char *checking = opened ? sim_strict_merge_check(s, (struct sim_mr *)mr) : NULL;
	if (checking)
		dms = checking; /* the asynchronous mergeability check has not finished */
	ADD(o, "detailed_merge_status", STR(dms));
	ADD(o, "merge_status",
	    STR(checking                        ? checking
	        : strcmp(dms, "mergeable") == 0 ? "can_be_merged"
	                                        : "cannot_be_merged"));
	ADD(o, "merge_when_pipeline_succeeds", BOOL(mr->auto_merge));
	ADD(o, "pipeline", hp ? sim_render_pipeline(s, hp, false) : NULL);
	ADD(o, "head_pipeline", hp ? sim_render_pipeline(s, hp, true) : NULL);
	struct json_object *dr = json_object_new_object();
	ADD(dr, "base_sha", STR(mr->base_sha));
	ADD(dr, "head_sha", STR(mr->sha));
	ADD(dr, "start_sha", STR(mr->base_sha));
	ADD(o, "diff_refs", dr);
	struct json_object *user = json_object_new_object();
	ADD(user, "can_merge", BOOL(p && t && sim_access_project(t, p) >= 30));
	ADD(o, "user", user);
	int64_t notes = 0;
	for (size_t i = 0; i < s->notes.len; i++) {
		struct sim_note *n = s->notes.items[i];
		if (!n->removed && n->mr_id == mr->id)
			notes++;
	}
	ADD(o, "user_notes_count", INT(notes));
	return o;
}

struct json_object *sim_render_note(const struct sim *s, const struct sim_note *n)
{
	struct json_object *o = json_object_new_object();
	ADD(o, "id", INT(n->id));
	ADD(o, "type", NULL);
	ADD(o, "body", STR(n->body));
	ADD(o, "attachment", NULL);
	struct json_object *a = sim_render_user_basic(s, n->author);
	ADD(a, "email", STR(n->author->email));
	ADD(a, "created_at", STR(n->author->created_at));
	ADD(o, "author", a);
	ADD(o, "created_at", STR(n->created_at));
	ADD(o, "updated_at", STR(n->updated_at));
	ADD(o, "system", BOOL(false));
	ADD(o, "noteable_id", INT(n->mr_id));
	ADD(o, "noteable_type", STR("MergeRequest"));
	ADD(o, "project_id", INT(n->project_id));
	ADD(o, "noteable_iid", INT(n->mr_iid));
	ADD(o, "commands_changes", json_object_new_object());
	ADD(o, "resolvable", BOOL(false));
	ADD(o, "confidential", BOOL(n->internal));
	ADD(o, "internal", BOOL(n->internal));
	ADD(o, "imported", BOOL(false));
	ADD(o, "imported_from", STR("none"));
	sim_discussions_render_note(s, n, o); /* a discussion's note: DiffNote, position, resolution */
	return o;
}
