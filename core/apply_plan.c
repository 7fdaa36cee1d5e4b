/*
 * core/apply_plan.c
 *    What one repo's GitLab side needs, decided without I/O (see apply_plan.h for the rules).
 */
#include "apply_plan.h"

#include "buf.h"
#include "jsonx.h"
#include "xalloc.h"

#include <string.h>

#define MERGE_SETTING "only_allow_merge_if_pipeline_succeeds"

bool apply_plan_hook_executable(const char *alert_status)
{
	/* GitLab stops delivering after repeated failures (temporarily_disabled, disabled); none on an old GitLab */
	return !alert_status || !*alert_status || strcmp(alert_status, "executable") == 0;
}

static bool gate_wanted(const struct apply_seen *s, const struct apply_goal *g)
{
	return g->gate && !s->unmanaged;
}

bool apply_plan_needs_project(const struct apply_seen *s, const struct apply_goal *g)
{
	bool block = gate_wanted(s, g) && g->block_merge;
	return block || s->merge_changed; /* wanted on, or a restore owed */
}

bool apply_plan_needs_hooks(const struct apply_seen *s, const struct apply_goal *g)
{
	return !g->group_mode || s->hook_id != 0;
}

static void add(struct apply_plan *p, enum apply_action_kind kind, int64_t hook_id)
{
	struct apply_action *a = &p->v[p->n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->hook_id = hook_id;
}

static const char *skip_reason(const struct apply_seen *s, const struct apply_goal *g)
{
	if (s->removed)
		return "no longer listed by GitLab";
	if (s->archived)
		return "archived";
	if (s->pending_deletion)
		return "pending deletion";
	if (s->project_read && apply_plan_needs_project(s, g)) {
		if (s->project_archived)
			return "archived";
		if (s->project_pending_deletion)
			return "pending deletion";
	}
	return NULL;
}

/* Our copies of the hook, kept or deleted; someone else's hooks never reach a plan. */
static void plan_hooks(const struct apply_seen *s, const struct apply_goal *g, struct apply_plan *p)
{
	const struct apply_hook_seen *ours[APPLY_HOOKS_MAX], *keep = NULL;
	size_t n = 0;
	for (size_t i = 0; i < s->n_hooks && n < APPLY_HOOKS_MAX; i++)
		if (s->hooks[i].url && strcmp(s->hooks[i].url, g->hook_url) == 0)
			ours[n++] = &s->hooks[i];
	/* a copy GitLab disabled delivers nothing: it is replaced, never kept */
	for (size_t i = 0; p->project_hook && i < n && !keep; i++)
		if (ours[i]->id == s->hook_id && apply_plan_hook_executable(ours[i]->alert_status))
			keep = ours[i];
	for (size_t i = 0; p->project_hook && i < n && !keep; i++)
		if (apply_plan_hook_executable(ours[i]->alert_status))
			keep = ours[i];
	if (p->project_hook && !keep) {
		add(p, APPLY_HOOK_CREATE, 0);
		p->hook_was_down = s->applied;
	} else if (keep) {
		p->hook_was_down = p->project_hook && s->applied && (!keep->mr_events || g->resend_token);
		p->keep_id = keep->id;
		p->keep_alert = keep->alert_status;
		bool token_ok =
		    s->hook_id == keep->id && s->token_sha && g->token_sha && strcmp(s->token_sha, g->token_sha) == 0;
		if (!keep->flags_ok || !token_ok)
			add(p, APPLY_HOOK_UPDATE, keep->id);
		else if (g->resend_token) {
			add(p, APPLY_HOOK_UPDATE, keep->id);
			p->token_resent = true; /* the only reason for this update: not a drift seen */
		}
	}
	for (size_t i = 0; i < n; i++)
		if (ours[i] != keep)
			add(p, APPLY_HOOK_DELETE, ours[i]->id);
}

static void plan_merge(const struct apply_seen *s, struct apply_plan *p)
{
	bool block = p->block_merge;
	if (block && !s->merge_on) {
		add(p, APPLY_MERGE_SET, 0);
		p->v[p->n - 1].from = false;
		p->v[p->n - 1].to = true;
		p->v[p->n - 1].record_prior = !s->merge_changed; /* never overwrite the value from before mrgate */
	} else if (!block && s->merge_changed) {
		if (s->merge_on != s->prior) {
			add(p, APPLY_MERGE_SET, 0);
			p->v[p->n - 1].from = s->merge_on;
			p->v[p->n - 1].to = s->prior;
		}
		p->forget_prior = true;
	}
}

void apply_plan_make(const struct apply_seen *s, const struct apply_goal *g, struct apply_plan *out)
{
	memset(out, 0, sizeof(*out));
	out->gate = gate_wanted(s, g);
	out->block_merge = out->gate && g->block_merge;
	out->project_hook = out->gate && !g->group_mode;
	out->want = !out->gate ? "off" : g->block_merge ? "hook+merge" : "hook";
	if ((out->skip = skip_reason(s, g)))
		return;
	if (apply_plan_needs_project(s, g) && !s->project_read) {
		out->need_project = true;
		return;
	}
	if (apply_plan_needs_hooks(s, g) && !s->hooks_read) {
		out->need_hooks = true;
		return;
	}
	if (s->hooks_read)
		plan_hooks(s, g, out);
	if (out->gate && g->group_mode)
		out->hook_was_down = s->applied && g->group_hook_was_down;
	plan_merge(s, out);
	if (out->gate != s->applied)
		add(out, out->gate ? APPLY_OPEN_MRS_GATE : APPLY_OPEN_MRS_CLEAR, 0);
	else if (out->gate && out->hook_was_down)
		add(out, APPLY_OPEN_MRS_MISSED, 0);
}

size_t apply_plan_count(const struct apply_plan *p, enum apply_action_kind kind)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i].kind == kind;
	return n;
}

static void add_words(struct json_object *out, const char *fmt_one, const char *fmt_many, int64_t n)
{
	struct buf b = {0};
	buf_printf(&b, n == 1 ? fmt_one : fmt_many, (long long)n);
	json_object_array_add(out, jx_str(buf_str(&b)));
	buf_free(&b);
}

struct json_object *apply_plan_actions(struct json_object *plan)
{
	struct json_object *out = jx_array(), *hooks = jsonx_get(plan, "hooks"), *v;
	int64_t n = 0;
	if (jsonx_int64(hooks, "create", &n) && n > 0)
		json_object_array_add(out, jx_str("create webhook"));
	if ((v = jsonx_get(hooks, "update")) && json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0)
		json_object_array_add(out, jx_str("update webhook"));
	if ((v = jsonx_get(hooks, "delete")) && json_object_is_type(v, json_type_array) &&
	    (n = (int64_t)json_object_array_length(v)) > 0)
		add_words(out, "delete webhook", "delete %lld webhooks", n);
	struct json_object *settings = jsonx_get(plan, "settings");
	for (size_t i = 0;
	     settings && json_object_is_type(settings, json_type_array) && i < json_object_array_length(settings);
	     i++) {
		struct json_object *ch = jsonx_get(json_object_array_get_idx(settings, i), MERGE_SETTING);
		bool to = false;
		if (ch && jsonx_bool(ch, "to", &to))
			json_object_array_add(
			    out, jx_str(to ? "turn on Pipelines must succeed" : "turn off Pipelines must succeed"));
	}
	if (jsonx_int64(plan, "open_mrs_to_gate", &n) && n > 0)
		add_words(out, "gate %lld open merge request", "gate %lld open merge requests", n);
	if (jsonx_int64(plan, "statuses_to_clear", &n) && n > 0)
		add_words(out, "clear the gate status of %lld merge request",
		          "clear the gate status of %lld merge requests", n);
	return out;
}
