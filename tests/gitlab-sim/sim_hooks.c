/*
 * tests/gitlab-sim/sim_hooks.c
 *    Webhook payloads, delivery workers (libcurl) and the consecutive-failure rule.
 *
 * Design: see sim_hooks.h. Matching: project hooks with merge_requests_events get MR events of their
 *    project; group hooks of any ancestor group on Premium/Ultimate get MR events (merge_requests_events)
 *    and project create/destroy events ("Project Hook"). A hook that is disabled, or temporarily
 *    disabled until a time not yet reached, is skipped as GitLab skips it. Any 2xx/3xx answer is a
 *    success (redirects are not followed); everything else, including timeouts, is a failure.
 * Ownership: the workers own their curl handles and the copies they make of a delivery's request.
 */
#include "sim_hooks.h"

#include "sim_render.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define SIM_MAX_WORKERS     16
#define SIM_FAILS_TEMPORARY 4
#define SIM_FAILS_PERMANENT 40

static pthread_t workers[SIM_MAX_WORKERS];
static int n_workers;

/* --- payloads -------------------------------------------------------------------------------------------- */

static int visibility_level(const char *v)
{
	return strcmp(v, "public") == 0 ? 20 : strcmp(v, "internal") == 0 ? 10 : 0;
}

static struct json_object *hook_project(struct sim *s, const struct sim_project *p, bool with_id)
{
	const char *host = strstr(s->instance_url, "://") ? strstr(s->instance_url, "://") + 3 : s->instance_url;
	struct json_object *o = json_object_new_object();
	if (with_id)
		json_object_object_add(o, "id", json_object_new_int64(p->id));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "description", json_object_new_string(p->description));
	char *web = sim_printf("%s/%s", s->instance_url, p->path_with_namespace);
	char *ssh = sim_printf("git@%s:%s.git", host, p->path_with_namespace);
	char *http = sim_printf("%s/%s.git", s->instance_url, p->path_with_namespace);
	json_object_object_add(o, "web_url", json_object_new_string(web));
	json_object_object_add(o, "avatar_url", NULL);
	json_object_object_add(o, "git_ssh_url", json_object_new_string(ssh));
	json_object_object_add(o, "git_http_url", json_object_new_string(http));
	json_object_object_add(o, "namespace", json_object_new_string(p->ns->name));
	json_object_object_add(o, "visibility_level", json_object_new_int(visibility_level(p->visibility)));
	json_object_object_add(o, "path_with_namespace", json_object_new_string(p->path_with_namespace));
	json_object_object_add(o, "default_branch", json_object_new_string(p->default_branch));
	json_object_object_add(o, "ci_config_path", json_object_new_string(""));
	json_object_object_add(o, "homepage", json_object_new_string(web));
	json_object_object_add(o, "url", json_object_new_string(http));
	json_object_object_add(o, "ssh_url", json_object_new_string(ssh));
	json_object_object_add(o, "http_url", json_object_new_string(http));
	free(web);
	free(ssh);
	free(http);
	return o;
}

static struct json_object *mr_payload(struct sim *s, struct sim_mr *mr, const char *action, const char *oldrev,
                                      const char *previous_updated_at)
{
	struct sim_project *p = sim_project_by_id(s, mr->project_id);
	struct sim_user *u = s->root_user;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "object_kind", json_object_new_string("merge_request"));
	json_object_object_add(o, "event_type", json_object_new_string("merge_request"));
	struct json_object *user = json_object_new_object();
	json_object_object_add(user, "id", json_object_new_int64(u->id));
	json_object_object_add(user, "name", json_object_new_string(u->name));
	json_object_object_add(user, "username", json_object_new_string(u->username));
	json_object_object_add(user, "avatar_url",
	                       json_object_new_string("https://www.gravatar.com/avatar/0?s=80&d=identicon"));
	json_object_object_add(user, "email", json_object_new_string("[REDACTED]"));
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "project", hook_project(s, p, true));
	struct json_object *repo = json_object_new_object();
	char *web = sim_printf("%s/%s", s->instance_url, p->path_with_namespace);
	char *http = sim_printf("%s/%s.git", s->instance_url, p->path_with_namespace);
	json_object_object_add(repo, "name", json_object_new_string(p->name));
	json_object_object_add(repo, "url", json_object_new_string(http));
	json_object_object_add(repo, "description", json_object_new_string(p->description));
	json_object_object_add(repo, "homepage", json_object_new_string(web));
	json_object_object_add(o, "repository", repo);

	struct json_object *a = json_object_new_object();
	bool opened = strcmp(mr->state, "opened") == 0;
	json_object_object_add(a, "id", json_object_new_int64(mr->id));
	json_object_object_add(a, "iid", json_object_new_int64(mr->iid));
	json_object_object_add(a, "target_branch", json_object_new_string(mr->target_branch));
	json_object_object_add(a, "source_branch", json_object_new_string(mr->source_branch));
	json_object_object_add(a, "source_project_id", json_object_new_int64(p->id));
	json_object_object_add(a, "author_id", json_object_new_int64(mr->author->id));
	json_object_object_add(a, "assignee_ids", json_object_new_array());
	json_object_object_add(a, "assignee_id", NULL);
	json_object_object_add(a, "reviewer_ids", json_object_new_array());
	json_object_object_add(a, "title", json_object_new_string(mr->title));
	json_object_object_add(a, "created_at", json_object_new_string(mr->created_at));
	json_object_object_add(a, "updated_at", json_object_new_string(mr->updated_at));
	json_object_object_add(a, "last_edited_at", NULL);
	json_object_object_add(a, "last_edited_by_id", NULL);
	json_object_object_add(a, "milestone_id", NULL);
	json_object_object_add(a, "state_id",
	                       json_object_new_int(opened                             ? 1
	                                           : strcmp(mr->state, "closed") == 0 ? 2
	                                                                              : 3));
	json_object_object_add(a, "state", json_object_new_string(mr->state));
	json_object_object_add(a, "blocking_discussions_resolved", json_object_new_boolean(true));
	json_object_object_add(a, "work_in_progress", json_object_new_boolean(false));
	json_object_object_add(a, "draft", json_object_new_boolean(false));
	json_object_object_add(a, "first_contribution", json_object_new_boolean(false));
	json_object_object_add(a, "merge_status", json_object_new_string("unchecked"));
	json_object_object_add(a, "target_project_id", json_object_new_int64(p->id));
	json_object_object_add(a, "description", json_object_new_string(mr->description ? mr->description : ""));
	json_object_object_add(a, "prepared_at", json_object_new_string(mr->created_at));
	json_object_object_add(a, "total_time_spent", json_object_new_int(0));
	json_object_object_add(a, "time_change", json_object_new_int(0));
	json_object_object_add(a, "time_estimate", json_object_new_int(0));
	json_object_object_add(a, "human_total_time_spent", NULL);
	json_object_object_add(a, "human_time_change", NULL);
	json_object_object_add(a, "human_time_estimate", NULL);
	json_object_object_add(a, "merge_commit_sha", NULL);
	json_object_object_add(a, "merge_error", NULL);
	json_object_object_add(a, "merge_user_id", NULL);
	json_object_object_add(a, "merge_when_pipeline_succeeds", json_object_new_boolean(false));
	struct sim_pipeline *hp = sim_mr_head_pipeline(s, mr);
	json_object_object_add(a, "head_pipeline_id", hp ? json_object_new_int64(hp->id) : NULL);
	char *url =
	    sim_printf("%s/%s/-/merge_requests/%lld", s->instance_url, p->path_with_namespace, (long long)mr->iid);
	json_object_object_add(a, "url", json_object_new_string(url));
	free(url);
	struct json_object *src = hook_project(s, p, false);
	json_object_object_add(a, "source", src);
	json_object_object_add(a, "target", hook_project(s, p, false));
	struct sim_commit *c = sim_project_commit(p, mr->sha);
	struct json_object *lc = json_object_new_object();
	json_object_object_add(lc, "id", json_object_new_string(mr->sha));
	json_object_object_add(lc, "message", json_object_new_string(c ? c->message : "Update files"));
	json_object_object_add(lc, "title", json_object_new_string(c ? c->message : "Update files"));
	json_object_object_add(lc, "timestamp", json_object_new_string(c ? c->created_at : mr->updated_at));
	json_object_object_add(lc, "url", sim_json_printf("%s/-/commit/%s", web, mr->sha));
	struct json_object *au = json_object_new_object();
	json_object_object_add(au, "name", json_object_new_string(mr->author->name));
	json_object_object_add(au, "email", json_object_new_string(mr->author->email));
	json_object_object_add(lc, "author", au);
	json_object_object_add(a, "last_commit", lc);
	json_object_object_add(a, "labels", json_object_new_array());
	if (action) /* a test delivery's to_hook_data has no action */
		json_object_object_add(a, "action", json_object_new_string(action));
	if (oldrev)
		json_object_object_add(a, "oldrev", json_object_new_string(oldrev));
	json_object_object_add(a, "detailed_merge_status", json_object_new_string(opened ? "mergeable" : "not_open"));
	json_object_object_add(o, "object_attributes", a);
	json_object_object_add(o, "labels", json_object_new_array());
	struct json_object *changes = json_object_new_object();
	if (previous_updated_at) {
		struct json_object *ch = json_object_new_object();
		json_object_object_add(ch, "previous", json_object_new_string(previous_updated_at));
		json_object_object_add(ch, "current", json_object_new_string(mr->updated_at));
		json_object_object_add(changes, "updated_at", ch);
	}
	if (action && (strcmp(action, "reopen") == 0 || strcmp(action, "close") == 0)) {
		struct json_object *ch = json_object_new_object();
		json_object_object_add(ch, "previous", json_object_new_int(opened ? 2 : 1));
		json_object_object_add(ch, "current", json_object_new_int(opened ? 1 : 2));
		json_object_object_add(changes, "state_id", ch);
	}
	json_object_object_add(o, "changes", changes);
	json_object_object_add(o, "assignees", json_object_new_array());
	json_object_object_add(o, "reviewers", json_object_new_array());
	free(web);
	free(http);
	return o;
}

/* --- delivery records ------------------------------------------------------------------------------------ */

static bool hook_executable(const struct sim_hook *h)
{
	if (h->removed || strcmp(h->alert_status, "disabled") == 0)
		return false;
	if (strcmp(h->alert_status, "temporarily_disabled") == 0 && h->disabled_until > time(NULL))
		return false;
	return true;
}

static struct json_object *build_headers(struct sim *s, const struct sim_hook *h, const char *event,
                                         const char *idempotency_key, const char *event_uuid, const char *webhook_uuid)
{
	struct json_object *hd = json_object_new_object();
	json_object_object_add(hd, "Content-Type", json_object_new_string("application/json"));
	json_object_object_add(hd, "User-Agent", json_object_new_string("GitLab/17.8.0-ee"));
	json_object_object_add(hd, "Idempotency-Key", json_object_new_string(idempotency_key));
	json_object_object_add(hd, "X-Gitlab-Event", json_object_new_string(event));
	json_object_object_add(hd, "X-Gitlab-Webhook-UUID", json_object_new_string(webhook_uuid));
	json_object_object_add(hd, "X-Gitlab-Instance", json_object_new_string(s->instance_url));
	json_object_object_add(hd, "X-Gitlab-Event-UUID", json_object_new_string(event_uuid));
	if (h->token)
		json_object_object_add(hd, "X-Gitlab-Token", json_object_new_string(h->token));
	json_object_object_foreach(h->headers, k, v) json_object_object_add(hd, k, json_object_get(v));
	return hd;
}

static struct sim_delivery *queue_delivery(struct sim *s, struct sim_hook *h, const char *event, const char *event_name,
                                           const char *body, const char *idempotency_key, const char *event_uuid,
                                           int64_t redelivery_of)
{
	struct sim_delivery *d = sim_xcalloc(1, sizeof(*d));
	d->id = s->next_delivery_id++;
	d->hook_id = h->id;
	d->redelivery_of = redelivery_of;
	d->event = sim_strdup(event);
	d->event_name = sim_strdup(event_name);
	d->idempotency_key = idempotency_key ? sim_strdup(idempotency_key) : sim_new_uuid(s);
	d->event_uuid = sim_strdup(event_uuid);
	d->webhook_uuid = sim_new_uuid(s);
	d->body = sim_strdup(body);
	d->url = sim_strdup(h->url);
	d->headers = build_headers(s, h, event, d->idempotency_key, d->event_uuid, d->webhook_uuid);
	struct json_object *ssl = NULL;
	d->ssl_verify =
	    !json_object_object_get_ex(h->attrs, "enable_ssl_verification", &ssl) || json_object_get_boolean(ssl);
	d->state = SIM_DELIVERY_PENDING;
	d->created_at = sim_now_iso();
	sim_vec_push(&s->deliveries, d);
	pthread_cond_broadcast(&s->delivery_cv);
	return d;
}

/* One event delivered to h (queue_delivery, with no idempotency key of its own); its id added to ids when given. */
static void deliver_event(struct sim *s, struct sim_hook *h, const char *event, const char *event_name,
                          const char *body, const char *event_uuid, struct json_object *ids)
{
	struct sim_delivery *d = queue_delivery(s, h, event, event_name, body, NULL, event_uuid, 0);
	if (ids)
		json_object_array_add(ids, json_object_new_int64(d->id));
}

static bool hook_flag(const struct sim_hook *h, const char *flag)
{
	struct json_object *v = NULL;
	return json_object_object_get_ex(h->attrs, flag, &v) && json_object_get_boolean(v);
}

/* Group hooks reach a project when they sit on an ancestor of its namespace on a licensed tier. */
static bool group_hook_reaches(struct sim *s, const struct sim_hook *h, const struct sim_project *p)
{
	struct sim_group *g = sim_group_by_id(s, h->owner_id);
	return g && sim_group_is_under(p->ns, g) && sim_group_tier(g) != SIM_TIER_FREE;
}

void sim_hooks_fire_mr(struct sim *s, struct sim_mr *mr, const char *action, const char *oldrev,
                       struct json_object *ids_out)
{
	struct sim_project *p = sim_project_by_id(s, mr->project_id);
	if (!p)
		return;
	struct json_object *payload = mr_payload(s, mr, action, oldrev, NULL);
	const char *body =
	    json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *event_uuid = sim_new_uuid(s);
	char *event_name = sim_printf("merge_request:%s", action);
	for (size_t i = 0; i < s->hooks.len; i++) {
		struct sim_hook *h = s->hooks.items[i];
		if (!hook_executable(h) || !hook_flag(h, "merge_requests_events"))
			continue;
		bool match = h->group_hook ? group_hook_reaches(s, h, p) : h->owner_id == p->id;
		if (!match)
			continue;
		deliver_event(s, h, "Merge Request Hook", event_name, body, event_uuid, ids_out);
	}
	free(event_name);
	free(event_uuid);
	json_object_put(payload);
}

struct json_object *sim_hooks_project_json(struct sim *s, const struct sim_project *p, bool with_id)
{
	return hook_project(s, p, with_id);
}

struct json_object *sim_hooks_mr_attrs(struct sim *s, struct sim_mr *mr)
{
	struct json_object *payload = mr_payload(s, mr, NULL, NULL, NULL), *a = NULL;
	json_object_object_get_ex(payload, "object_attributes", &a);
	a = json_object_get(a);
	json_object_put(payload);
	return a;
}

void sim_hooks_fire_flagged(struct sim *s, struct sim_project *p, const char *flag, const char *event,
                            const char *event_name, const char *body, struct json_object *ids_out)
{
	char *event_uuid = sim_new_uuid(s);
	for (size_t i = 0; i < s->hooks.len; i++) {
		struct sim_hook *h = s->hooks.items[i];
		if (!hook_executable(h) || !hook_flag(h, flag))
			continue;
		if (!(h->group_hook ? group_hook_reaches(s, h, p) : h->owner_id == p->id))
			continue;
		deliver_event(s, h, event, event_name, body, event_uuid, ids_out);
	}
	free(event_uuid);
}

struct sim_delivery *sim_hooks_fire_mr_to(struct sim *s, struct sim_hook *h, struct sim_mr *mr, const char *action)
{
	struct json_object *payload = mr_payload(s, mr, action, NULL, NULL);
	char *event_uuid = sim_new_uuid(s);
	struct sim_delivery *d = queue_delivery(
	    s, h, "Merge Request Hook", "merge_request:test",
	    json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), NULL,
	    event_uuid, 0);
	free(event_uuid);
	json_object_put(payload);
	return d;
}

void sim_hooks_fire_project(struct sim *s, struct sim_project *p, const char *event_name, struct json_object *ids_out)
{
	struct json_object *o = json_object_new_object();
	char *now = sim_now_iso();
	json_object_object_add(o, "event_name", json_object_new_string(event_name));
	json_object_object_add(o, "created_at", json_object_new_string(p->created_at));
	json_object_object_add(o, "updated_at", json_object_new_string(now));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "path", json_object_new_string(p->path));
	json_object_object_add(o, "path_with_namespace", json_object_new_string(p->path_with_namespace));
	json_object_object_add(o, "project_id", json_object_new_int64(p->id));
	json_object_object_add(o, "project_namespace_id", json_object_new_int64(p->id + 500000));
	struct json_object *owners = json_object_new_array(), *ow = json_object_new_object();
	json_object_object_add(ow, "name", json_object_new_string(s->root_user->name));
	json_object_object_add(ow, "email", json_object_new_string("[REDACTED]"));
	json_object_array_add(owners, ow);
	json_object_object_add(o, "owners", owners);
	json_object_object_add(o, "project_visibility", json_object_new_string(p->visibility));
	free(now);
	const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *event_uuid = sim_new_uuid(s);
	for (size_t i = 0; i < s->hooks.len; i++) {
		struct sim_hook *h = s->hooks.items[i];
		/* GitLab 17.6+: only group hooks with project_events get project_create / project_destroy */
		if (!h->group_hook || !hook_executable(h) || !hook_flag(h, "project_events") ||
		    !group_hook_reaches(s, h, p))
			continue;
		deliver_event(s, h, "Project Hook", event_name, body, event_uuid, ids_out);
	}
	free(event_uuid);
	json_object_put(o);
}

void sim_hooks_fire_pipeline(struct sim *s, struct sim_pipeline *pl, struct json_object *ids_out)
{
	/* webhook_events.md "Pipeline events" (Gitlab::DataBuilder::Pipeline): fired on every status transition */
	struct sim_project *p = sim_project_by_id(s, pl->project_id);
	if (!p)
		return;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "object_kind", json_object_new_string("pipeline"));
	struct json_object *a = json_object_new_object();
	json_object_object_add(a, "id", json_object_new_int64(pl->id));
	json_object_object_add(a, "iid", json_object_new_int64(pl->iid));
	json_object_object_add(a, "name", NULL);
	json_object_object_add(a, "ref", json_object_new_string(pl->ref));
	json_object_object_add(a, "tag", json_object_new_boolean(false));
	json_object_object_add(a, "sha", json_object_new_string(pl->sha));
	json_object_object_add(a, "before_sha", json_object_new_string("0000000000000000000000000000000000000000"));
	json_object_object_add(a, "source", json_object_new_string(pl->source));
	json_object_object_add(a, "status", json_object_new_string(pl->status));
	json_object_object_add(a, "detailed_status", json_object_new_string(pl->status));
	json_object_object_add(a, "stages", json_object_new_array());
	json_object_object_add(a, "created_at", json_object_new_string(pl->created_at));
	json_object_object_add(a, "finished_at", NULL);
	json_object_object_add(a, "duration", NULL);
	json_object_object_add(a, "queued_duration", NULL);
	json_object_object_add(a, "variables", json_object_new_array());
	json_object_object_add(
	    a, "url",
	    sim_json_printf("%s/%s/-/pipelines/%lld", s->instance_url, p->path_with_namespace, (long long)pl->id));
	json_object_object_add(o, "object_attributes", a);
	struct sim_mr *mr = pl->mr_iid ? sim_mr_find(s, p->id, pl->mr_iid) : NULL;
	if (mr) {
		struct json_object *m = json_object_new_object();
		json_object_object_add(m, "id", json_object_new_int64(mr->id));
		json_object_object_add(m, "iid", json_object_new_int64(mr->iid));
		json_object_object_add(m, "title", json_object_new_string(mr->title));
		json_object_object_add(m, "source_branch", json_object_new_string(mr->source_branch));
		json_object_object_add(m, "source_project_id", json_object_new_int64(p->id));
		json_object_object_add(m, "target_branch", json_object_new_string(mr->target_branch));
		json_object_object_add(m, "target_project_id", json_object_new_int64(p->id));
		json_object_object_add(m, "state", json_object_new_string(mr->state));
		json_object_object_add(m, "url",
		                       sim_json_printf("%s/%s/-/merge_requests/%lld", s->instance_url,
		                                       p->path_with_namespace, (long long)mr->iid));
		json_object_object_add(o, "merge_request", m);
	} else {
		json_object_object_add(o, "merge_request", NULL);
	}
	struct json_object *user = json_object_new_object();
	json_object_object_add(user, "id", json_object_new_int64(s->root_user->id));
	json_object_object_add(user, "name", json_object_new_string(s->root_user->name));
	json_object_object_add(user, "username", json_object_new_string(s->root_user->username));
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "project", hook_project(s, p, true));
	struct json_object *commit = json_object_new_object();
	json_object_object_add(commit, "id", json_object_new_string(pl->sha));
	json_object_object_add(o, "commit", commit);
	json_object_object_add(o, "builds", json_object_new_array());
	const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *event_name = sim_printf("pipeline:%s", pl->status);
	sim_hooks_fire_flagged(s, p, "pipeline_events", "Pipeline Hook", event_name, body, ids_out);
	free(event_name);
	json_object_put(o);
}

struct sim_delivery *sim_hooks_fire_push_sample_to(struct sim *s, struct sim_hook *h, struct sim_project *p)
{
	/* Gitlab::DataBuilder::Push.build_sample: the default branch's head as a push of one commit */
	struct sim_commit *c = p->commits.items[0];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "object_kind", json_object_new_string("push"));
	json_object_object_add(o, "event_name", json_object_new_string("push"));
	json_object_object_add(
	    o, "before", json_object_new_string(c->parent[0] ? c->parent : "0000000000000000000000000000000000000000"));
	json_object_object_add(o, "after", json_object_new_string(c->sha));
	json_object_object_add(o, "ref", sim_json_printf("refs/heads/%s", p->default_branch));
	json_object_object_add(o, "checkout_sha", json_object_new_string(c->sha));
	json_object_object_add(o, "user_id", json_object_new_int64(s->root_user->id));
	json_object_object_add(o, "user_name", json_object_new_string(s->root_user->name));
	json_object_object_add(o, "user_username", json_object_new_string(s->root_user->username));
	json_object_object_add(o, "project_id", json_object_new_int64(p->id));
	json_object_object_add(o, "project", hook_project(s, p, true));
	json_object_object_add(o, "commits", json_object_new_array());
	json_object_object_add(o, "total_commits_count", json_object_new_int(1));
	char *event_uuid = sim_new_uuid(s);
	struct sim_delivery *d =
	    queue_delivery(s, h, "Push Hook", "push:test",
	                   json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	                   NULL, event_uuid, 0);
	free(event_uuid);
	json_object_put(o);
	return d;
}

void sim_hooks_wait(struct sim *s, int64_t delivery_id, int timeout_ms)
{
	struct timespec deadline;
	sim_deadline(timeout_ms, &deadline);
	uint64_t gen = s->generation;
	for (;;) {
		struct sim_delivery *d = sim_delivery_by_id(s, delivery_id);
		if (gen != s->generation || !d || d->state == SIM_DELIVERY_DONE)
			return;
		s->version++; /* the caller may have changed the model; others run while we wait */
		int rc = pthread_cond_timedwait(&s->delivery_cv, &s->mu, &deadline);
		sim_wait_renders(s); /* the caller goes on changing the model */
		if (rc != 0)
			return;
	}
}

struct sim_delivery *sim_hooks_redeliver(struct sim *s, struct sim_delivery *d)
{
	struct sim_hook *h = sim_hook_by_id(s, d->hook_id);
	if (!h)
		return NULL;
	int64_t first = d->redelivery_of ? d->redelivery_of : d->id;
	return queue_delivery(s, h, d->event, d->event_name, d->body, d->idempotency_key, d->event_uuid, first);
}

struct sim_delivery *sim_delivery_by_id(struct sim *s, int64_t id)
{
	if (id < 1 || (size_t)(id - 1) >= s->deliveries.len)
		return NULL;
	return s->deliveries.items[id - 1];
}

size_t sim_deliveries_unfinished(const struct sim *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->deliveries.len; i++)
		if (((struct sim_delivery *)s->deliveries.items[i])->state != SIM_DELIVERY_DONE)
			n++;
	return n;
}

struct json_object *sim_render_delivery(const struct sim_delivery *d, bool with_body)
{
	static const char *states[] = {"pending", "running", "done"};
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(d->id));
	json_object_object_add(o, "hook_id", json_object_new_int64(d->hook_id));
	json_object_object_add(o, "redelivery_of", d->redelivery_of ? json_object_new_int64(d->redelivery_of) : NULL);
	json_object_object_add(o, "url", json_object_new_string(d->url));
	json_object_object_add(o, "event", json_object_new_string(d->event));
	json_object_object_add(o, "event_name", json_object_new_string(d->event_name));
	json_object_object_add(o, "idempotency_key", json_object_new_string(d->idempotency_key));
	json_object_object_add(o, "event_uuid", json_object_new_string(d->event_uuid));
	json_object_object_add(o, "webhook_uuid", json_object_new_string(d->webhook_uuid));
	json_object_object_add(o, "state", json_object_new_string(states[d->state]));
	json_object_object_add(o, "response_status",
	                       d->response_status ? json_object_new_int64(d->response_status) : NULL);
	bool ok = d->state == SIM_DELIVERY_DONE && d->response_status >= 200 && d->response_status < 400;
	json_object_object_add(o, "success", d->state == SIM_DELIVERY_DONE ? json_object_new_boolean(ok) : NULL);
	json_object_object_add(o, "error", sim_json_str_or_null(d->error));
	json_object_object_add(o, "duration_ms", json_object_new_double(d->duration_ms));
	json_object_object_add(o, "created_at", json_object_new_string(d->created_at));
	json_object_object_add(o, "request_headers", json_object_get(d->headers));
	if (with_body) {
		struct json_object *b = json_tokener_parse(d->body);
		json_object_object_add(o, "body", b);
	}
	return o;
}

void sim_hook_set_alert(struct sim_hook *h, const char *alert_status, time_t disabled_until)
{
	free(h->alert_status);
	h->alert_status = sim_strdup(alert_status);
	h->disabled_until = disabled_until;
	if (strcmp(alert_status, "executable") == 0)
		h->failures = 0;
	else if (strcmp(alert_status, "disabled") == 0)
		h->failures = h->failures > SIM_FAILS_PERMANENT ? h->failures : SIM_FAILS_PERMANENT;
	else if (h->failures < SIM_FAILS_TEMPORARY)
		h->failures = SIM_FAILS_TEMPORARY;
}

/* Record one delivery's outcome on its hook (lock held). */
static void record_result(struct sim *s, struct sim_hook *h, bool ok)
{
	if (ok) {
		sim_hook_set_alert(h, "executable", 0);
		return;
	}
	h->failures++;
	if (h->failures >= SIM_FAILS_PERMANENT) {
		free(h->alert_status);
		h->alert_status = sim_strdup("disabled");
		h->disabled_until = 0;
	} else if (h->failures >= SIM_FAILS_TEMPORARY) {
		/* Backoff starts at hook_backoff_s (GitLab: 1 min), doubles per further failure, capped at 24 h. */
		long backoff = s->faults.hook_backoff_s;
		for (int i = SIM_FAILS_TEMPORARY; i < h->failures && backoff < 86400; i++)
			backoff *= 2;
		if (backoff > 86400)
			backoff = 86400;
		free(h->alert_status);
		h->alert_status = sim_strdup("temporarily_disabled");
		h->disabled_until = time(NULL) + backoff;
	}
}

/* --- workers --------------------------------------------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

static void *worker_main(void *arg)
{
	struct sim *s = arg;
	CURL *curl = curl_easy_init();
	size_t cursor = 0;
	uint64_t seen_generation = 0;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		struct sim_delivery *d = NULL;
		if (cursor > s->deliveries.len || seen_generation != s->generation)
			cursor = 0;
		seen_generation = s->generation;
		for (size_t i = cursor; i < s->deliveries.len; i++) {
			struct sim_delivery *k = s->deliveries.items[i];
			if (k->state == SIM_DELIVERY_PENDING) {
				d = k;
				cursor = i;
				break;
			}
		}
		if (!d) {
			cursor = s->deliveries.len > 64 ? s->deliveries.len - 64 : 0;
			pthread_cond_wait(&s->delivery_cv, &s->mu);
			continue;
		}
		d->state = SIM_DELIVERY_RUNNING;
		int64_t id = d->id, hook_id = d->hook_id;
		uint64_t generation = s->generation;
		char *url = sim_strdup(d->url), *body = sim_strdup(d->body);
		struct curl_slist *hdrs = NULL;
		json_object_object_foreach(d->headers, k, v)
		{
			char *line = sim_printf("%s: %s", k, json_object_get_string(v));
			hdrs = curl_slist_append(hdrs, line);
			free(line);
		}
		hdrs = curl_slist_append(hdrs, "Expect:");
		bool verify = d->ssl_verify;
		long timeout = s->webhook_timeout_s;
		pthread_mutex_unlock(&s->mu);

		struct timeval t0, t1;
		gettimeofday(&t0, NULL);
		char errbuf[CURL_ERROR_SIZE] = "";
		curl_easy_reset(curl);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout);
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
		CURLcode rc = curl_easy_perform(curl);
		long status = 0;
		if (rc == CURLE_OK)
			curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		gettimeofday(&t1, NULL);
		curl_slist_free_all(hdrs);
		free(url);
		free(body);

		pthread_mutex_lock(&s->mu);
		if (generation != s->generation)
			continue; /* the world was reset while we were delivering */
		d = sim_delivery_by_id(s, id);
		if (!d)
			continue;
		d->state = SIM_DELIVERY_DONE;
		d->response_status = status;
		d->duration_ms = (double)(t1.tv_sec - t0.tv_sec) * 1000.0 + (double)(t1.tv_usec - t0.tv_usec) / 1000.0;
		if (rc != CURLE_OK)
			d->error = sim_strdup(errbuf[0] ? errbuf : curl_easy_strerror(rc));
		struct sim_hook *h = sim_hook_by_id(s, hook_id);
		if (h)
			record_result(s, h, rc == CURLE_OK && status >= 200 && status < 400);
		pthread_cond_broadcast(&s->delivery_cv);
	}
	pthread_mutex_unlock(&s->mu);
	curl_easy_cleanup(curl);
	return NULL;
}

void sim_hooks_start(struct sim *s, int n)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (n < 1)
		n = 1;
	if (n > SIM_MAX_WORKERS)
		n = SIM_MAX_WORKERS;
	for (int i = 0; i < n; i++)
		if (pthread_create(&workers[n_workers], NULL, worker_main, s) == 0)
			n_workers++;
}

void sim_hooks_stop(struct sim *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->delivery_cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < n_workers; i++)
		pthread_join(workers[i], NULL);
	n_workers = 0;
	curl_global_cleanup();
}
