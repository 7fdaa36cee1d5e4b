/*
 * tests/unit/test_apply_plan.c
 *    The apply planner (core/apply_plan.h) over every combination of hook state, merge setting, repo state and
 *    wanted config (and the recorded applied state and the hook mode), checked against a statement of the rules
 *    written here from DESIGN.md §3 as a table per case, not from the planner's code; then exact plans by hand.
 */
#include "apply_plan.h"
#include "testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUR_URL     "https://mrgate.example.com/hooks/gitlab"
#define OTHER_URL   "https://ci.example.com/hook"
#define TOKEN_NOW   "sha-of-the-current-secret"
#define TOKEN_OLD   "sha-of-an-old-secret"
#define OUR_ID      11 /* the copy of our hook mrgate recorded */
#define OUR_COPY_ID 12 /* a second copy of ours */
#define OTHER_ID    21 /* someone else's hook */

enum hook_case { H_ABSENT, H_OURS, H_OURS_TWICE, H_DISABLED, H_EDITED, H_FOREIGN, H_N };
enum merge_case { M_ON, M_OFF, M_PRIOR_RECORDED, M_N };
enum repo_case { R_NORMAL, R_ARCHIVED, R_PENDING, R_UNMANAGED, R_N };
enum want_case { W_GATED_BLOCK, W_GATED, W_UNGATED, W_N };

static const char *const hook_names[] = {"absent", "ours", "ours twice", "disabled", "edited", "someone else's"};
static const char *const merge_names[] = {"on", "off", "prior recorded"};
static const char *const repo_names[] = {"normal", "archived", "pending deletion", "unmanaged"};
static const char *const want_names[] = {"gated with block merge", "gated without block merge", "ungated"};

struct fixture {
	struct apply_hook_seen hooks[2];
	struct apply_seen seen;
	struct apply_goal goal;
};

/* group_down: group mode, and the group hook was down until the resync that starts this apply repaired it */
static void build_down(struct fixture *f, enum hook_case h, enum merge_case m, enum repo_case r, enum want_case w,
                       bool applied, bool group_mode, bool group_down)
{
	memset(f, 0, sizeof(*f));
	struct apply_hook_seen ours = {
	    .id = OUR_ID, .url = OUR_URL, .alert_status = "executable", .flags_ok = true, .mr_events = true};
	switch (h) {
	case H_ABSENT: break;
	case H_OURS: f->hooks[f->seen.n_hooks++] = ours; break;
	case H_OURS_TWICE:
		/* the recorded copy comes second in GitLab's list: it is still the one kept */
		f->hooks[f->seen.n_hooks++] = (struct apply_hook_seen){.id = OUR_COPY_ID,
		                                                       .url = OUR_URL,
		                                                       .alert_status = "executable",
		                                                       .flags_ok = true,
		                                                       .mr_events = true};
		f->hooks[f->seen.n_hooks++] = ours;
		break;
	case H_DISABLED:
		ours.alert_status = "disabled";
		f->hooks[f->seen.n_hooks++] = ours;
		break;
	case H_EDITED: /* its merge request events turned off by hand */
		ours.flags_ok = false;
		ours.mr_events = false;
		f->hooks[f->seen.n_hooks++] = ours;
		break;
	case H_FOREIGN:
		f->hooks[f->seen.n_hooks++] = (struct apply_hook_seen){
		    .id = OTHER_ID, .url = OTHER_URL, .alert_status = "executable", .flags_ok = true};
		break;
	case H_N: break;
	}
	f->seen.hooks = f->hooks;
	bool recorded = h != H_ABSENT && h != H_FOREIGN;
	f->seen.hook_id = recorded ? OUR_ID : 0;
	f->seen.token_sha = recorded ? TOKEN_NOW : NULL;
	f->seen.merge_on = m != M_OFF;
	f->seen.merge_changed = m == M_PRIOR_RECORDED;
	f->seen.prior = false;
	f->seen.archived = r == R_ARCHIVED;
	f->seen.pending_deletion = r == R_PENDING;
	f->seen.unmanaged = r == R_UNMANAGED;
	f->seen.applied = applied;
	f->seen.project_read = true;
	f->seen.hooks_read = true;
	f->goal = (struct apply_goal){.hook_url = OUR_URL,
	                              .token_sha = TOKEN_NOW,
	                              .gate = w != W_UNGATED,
	                              .block_merge = w == W_GATED_BLOCK,
	                              .group_mode = group_mode,
	                              .group_hook_was_down = group_down};
}

static void build(struct fixture *f, enum hook_case h, enum merge_case m, enum repo_case r, enum want_case w,
                  bool applied, bool group_mode)
{
	build_down(f, h, m, r, w, applied, group_mode, false);
}

/* What the rules say a plan holds. */
struct expected {
	const char *skip;
	const char *want;
	int create;
	int64_t update; /* 0: none */
	int64_t del[2]; /* ids deleted, 0 unused */
	bool merge;     /* a merge setting change ... */
	bool merge_to;  /* ... to this value ... */
	bool record_prior;
	bool forget_prior;
	int open_mrs; /* +1 gate them, -1 clear them, 0 nothing */
	bool missed;  /* gate the open MRs our hook did not deliver while it was down */
	bool needs_project;
	bool needs_hooks; /* the hooks must be listed ... */
	bool need_hooks;  /* ... and were not: nothing is planned until they are */
};

/*
 * The rules of DESIGN.md §3 ("What mrgate changes on GitLab"), as a table per case: one mrgate webhook per gated
 * repo (none in group-hook mode, where a group hook delivers), duplicates of ours deleted, a disabled copy replaced,
 * an edited one put back, nobody else's touched; block merge turns "Pipelines must succeed" on after recording its
 * value, un-gating restores the recorded value; archived and pending-deletion repos are skipped; unmanaged means
 * mrgate removes its hook and restores what it changed; turning the gate on gates the open MRs, off clears them.
 */
static struct expected rules(enum hook_case h, enum merge_case m, enum repo_case r, enum want_case w, bool applied,
                             bool group_mode, bool group_down, bool hooks_read)
{
	struct expected e = {0};
	bool gated = w != W_UNGATED && r != R_UNMANAGED;
	bool block = gated && w == W_GATED_BLOCK;
	bool hook_wanted = gated && !group_mode;
	e.want = !gated ? "off" : block ? "hook+merge" : "hook";
	e.needs_project = block || m == M_PRIOR_RECORDED;
	/* hooks are read in project mode; in group mode only while a project hook of ours is recorded */
	e.needs_hooks = !group_mode || (h != H_ABSENT && h != H_FOREIGN);
	if (r == R_ARCHIVED) {
		e.skip = "archived";
		return e;
	}
	if (r == R_PENDING) {
		e.skip = "pending deletion";
		return e;
	}
	switch (h) {
	case H_ABSENT: e.create = hook_wanted; break;
	case H_OURS:
		if (!hook_wanted)
			e.del[0] = OUR_ID;
		break;
	case H_OURS_TWICE:
		e.del[0] = OUR_COPY_ID;
		if (!hook_wanted)
			e.del[1] = OUR_ID;
		break;
	case H_DISABLED:
		e.create = hook_wanted;
		e.del[0] = OUR_ID;
		break;
	case H_EDITED:
		if (hook_wanted)
			e.update = OUR_ID;
		else
			e.del[0] = OUR_ID;
		break;
	case H_FOREIGN: e.create = hook_wanted; break;
	case H_N: break;
	}
	if (e.needs_hooks && !hooks_read) {
		struct expected none = {.want = e.want, .needs_project = e.needs_project, .needs_hooks = true};
		none.need_hooks = true;
		return none;
	}
	if (block && m == M_OFF) {
		e.merge = true;
		e.merge_to = true;
		e.record_prior = true;
	}
	if (!block && m == M_PRIOR_RECORDED) {
		e.merge = true;
		e.merge_to = false; /* the recorded prior value */
		e.forget_prior = true;
	}
	e.open_mrs = gated && !applied ? 1 : !gated && applied ? -1 : 0;
	/* gated all along, but GitLab could not deliver to our hook: missing, disabled, or its MR events off (group
	 * mode: the group hook was, whatever the project hooks; a flag given in project mode means nothing) */
	e.missed = gated && applied && (group_mode ? group_down : h != H_OURS && h != H_OURS_TWICE);
	return e;
}

static bool deleted(const struct apply_plan *p, int64_t id)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].kind == APPLY_HOOK_DELETE && p->v[i].hook_id == id)
			return true;
	return false;
}

/* Position class of an action: hook create/update, then deletes, then the merge setting, then open MRs. */
static int phase(enum apply_action_kind k)
{
	switch (k) {
	case APPLY_HOOK_CREATE:
	case APPLY_HOOK_UPDATE: return 0;
	case APPLY_HOOK_DELETE: return 1;
	case APPLY_MERGE_SET: return 2;
	case APPLY_OPEN_MRS_GATE:
	case APPLY_OPEN_MRS_CLEAR:
	case APPLY_OPEN_MRS_MISSED: return 3;
	}
	return -1;
}

static int failures;

static void check_case(enum hook_case h, enum merge_case m, enum repo_case r, enum want_case w, bool applied,
                       bool group_mode, bool group_down, bool hooks_read)
{
	struct fixture f;
	struct apply_plan p;
	char what[200];
	build_down(&f, h, m, r, w, applied, group_mode, group_down);
	f.seen.hooks_read = hooks_read;
	struct expected e = rules(h, m, r, w, applied, group_mode, group_down, hooks_read);
	apply_plan_make(&f.seen, &f.goal, &p);
	snprintf(what, sizeof(what), "hook %s, merge %s, repo %s, %s, applied %s, %s mode%s, hooks %s", hook_names[h],
	         merge_names[m], repo_names[r], want_names[w], applied ? "on" : "off", group_mode ? "group" : "project",
	         group_down ? " (group hook was down)" : "", hooks_read ? "read" : "not read");
	int before = testlib_failures;

	CHECK(apply_plan_needs_project(&f.seen, &f.goal) == e.needs_project);
	CHECK(!p.need_project);
	CHECK(apply_plan_needs_hooks(&f.seen, &f.goal) == e.needs_hooks);
	CHECK(p.need_hooks == e.need_hooks);
	CHECK_STR(p.want, e.want);
	if (e.skip) {
		CHECK_STR(p.skip, e.skip);
		CHECK_INT(p.n, 0);
	} else {
		CHECK(p.skip == NULL);
		CHECK_INT(apply_plan_count(&p, APPLY_HOOK_CREATE), e.create);
		CHECK_INT(apply_plan_count(&p, APPLY_HOOK_UPDATE), e.update ? 1 : 0);
		for (size_t i = 0; e.update && i < p.n; i++)
			if (p.v[i].kind == APPLY_HOOK_UPDATE)
				CHECK_INT(p.v[i].hook_id, e.update);
		CHECK_INT(apply_plan_count(&p, APPLY_HOOK_DELETE), (e.del[0] != 0) + (e.del[1] != 0));
		for (int k = 0; k < 2; k++)
			if (e.del[k])
				CHECK(deleted(&p, e.del[k]));
		CHECK(!deleted(&p, OTHER_ID));
		CHECK_INT(apply_plan_count(&p, APPLY_MERGE_SET), e.merge ? 1 : 0);
		for (size_t i = 0; i < p.n; i++)
			if (p.v[i].kind == APPLY_MERGE_SET) {
				CHECK(p.v[i].to == e.merge_to);
				CHECK(p.v[i].from == f.seen.merge_on);
				CHECK(p.v[i].record_prior == e.record_prior);
			}
		CHECK(p.forget_prior == e.forget_prior);
		CHECK_INT(apply_plan_count(&p, APPLY_OPEN_MRS_GATE), e.open_mrs > 0);
		CHECK_INT(apply_plan_count(&p, APPLY_OPEN_MRS_CLEAR), e.open_mrs < 0);
		CHECK_INT(apply_plan_count(&p, APPLY_OPEN_MRS_MISSED), e.missed);
		for (size_t i = 1; i < p.n; i++)
			CHECK(phase(p.v[i - 1].kind) <= phase(p.v[i].kind));
		for (size_t i = 0; i < p.n; i++)
			CHECK(p.v[i].hook_id != OTHER_ID);
	}
	if (testlib_failures != before) {
		failures++;
		fprintf(stderr, "  ^ in the case: %s\n", what);
	}
}

static void every_combination(void)
{
	int n = 0;
	for (int h = 0; h < H_N; h++)
		for (int m = 0; m < M_N; m++)
			for (int r = 0; r < R_N; r++)
				for (int w = 0; w < W_N; w++)
					for (int applied = 0; applied < 2; applied++)
						for (int group = 0; group < 2; group++)
							for (int down = 0; down < 2; down++)
								for (int read = 0; read < 2; read++) {
									check_case(h, m, r, w, applied, group, down,
									           read);
									n++;
								}
	CHECK_INT(n, H_N * M_N * R_N * W_N * 2 * 2 * 2 * 2);
	fprintf(stderr, "  %d combinations, %d with a failure\n", n, failures);
}

/* p's actions are exactly these kinds, in this order. */
static bool kinds_are(const struct apply_plan *p, size_t n, ...)
{
	va_list ap;
	bool same = p->n == n;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		enum apply_action_kind k = va_arg(ap, enum apply_action_kind);
		same = same && p->v[i].kind == k;
	}
	va_end(ap);
	return same;
}

/* A new repo gated with block merge: create the hook, record and turn on the setting, gate its open MRs. */
static void exact_first_gate(void)
{
	struct fixture f;
	struct apply_plan p;
	build(&f, H_ABSENT, M_OFF, R_NORMAL, W_GATED_BLOCK, false, false);
	apply_plan_make(&f.seen, &f.goal, &p);
	REQUIRE(kinds_are(&p, 3, APPLY_HOOK_CREATE, APPLY_MERGE_SET, APPLY_OPEN_MRS_GATE));
	CHECK(!p.v[1].from && p.v[1].to && p.v[1].record_prior);
	CHECK_STR(p.want, "hook+merge");
	CHECK(p.project_hook && p.keep_id == 0);
	/* applied again after success: nothing to do */
	build(&f, H_OURS, M_ON, R_NORMAL, W_GATED_BLOCK, true, false);
	f.seen.merge_changed = true;
	apply_plan_make(&f.seen, &f.goal, &p);
	CHECK_INT(p.n, 0);
	CHECK_INT(p.keep_id, OUR_ID);
	CHECK_STR(p.keep_alert, "executable");
}

/* Exact plans of states the cross product leaves out: a state of the table above, changed by one tweak. */
enum tweak {
	T_OLD_TOKEN,
	T_UNRECORDED,
	T_NO_ALERT,
	T_TEMP_DISABLED,
	T_UNREAD,
	T_GITLAB_ARCHIVED,
	T_GITLAB_PENDING,
	T_REMOVED,
	T_PRIOR_ON,
	T_CHANGED
};

static void tweak(struct fixture *f, enum tweak t)
{
	switch (t) {
	case T_OLD_TOKEN: f->seen.token_sha = TOKEN_OLD; break;
	case T_UNRECORDED: f->seen.hook_id = 0, f->seen.token_sha = NULL; break;
	case T_NO_ALERT: f->hooks[0].alert_status = NULL; break;
	case T_TEMP_DISABLED: f->hooks[0].alert_status = "temporarily_disabled"; break;
	case T_UNREAD: f->seen.project_read = false; break;
	case T_GITLAB_ARCHIVED: f->seen.project_archived = true; break;
	case T_GITLAB_PENDING: f->seen.project_pending_deletion = true; break;
	case T_REMOVED: f->seen.removed = true; break;
	case T_PRIOR_ON: f->seen.merge_changed = f->seen.prior = true; break;
	case T_CHANGED: f->seen.merge_changed = true; break;
	}
}

struct exact {
	const char *what;
	enum hook_case h;
	enum merge_case m;
	enum want_case w;
	bool applied;
	enum tweak tweak;
	const char *skip; /* NULL: not skipped */
	bool need_project;
	size_t n;
	enum apply_action_kind kinds[3];
	bool merge_to, record_prior; /* when a merge setting change is planned */
};

/* one case a line */
/* clang-format off */
static const struct exact exact_cases[] = {
    {.what = "a rotated secret: the kept hook is updated (GitLab hides tokens)", .h = H_OURS, .m = M_OFF, .w = W_GATED, .applied = true, .tweak = T_OLD_TOKEN, .n = 1, .kinds = {APPLY_HOOK_UPDATE}},
    {.what = "a copy of ours that mrgate did not record is updated", .h = H_OURS, .m = M_OFF, .w = W_GATED, .applied = true, .tweak = T_UNRECORDED, .n = 1, .kinds = {APPLY_HOOK_UPDATE}},
    {.what = "an old GitLab lists no alert_status: the copy is executable", .h = H_OURS, .m = M_OFF, .w = W_GATED, .applied = true, .tweak = T_NO_ALERT},
    {.what = "temporarily_disabled is replaced like disabled", .h = H_OURS, .m = M_OFF, .w = W_GATED, .applied = true, .tweak = T_TEMP_DISABLED, .n = 3, .kinds = {APPLY_HOOK_CREATE, APPLY_HOOK_DELETE, APPLY_OPEN_MRS_MISSED}},
    {.what = "block merge needs the project read first", .h = H_ABSENT, .m = M_OFF, .w = W_GATED_BLOCK, .tweak = T_UNREAD, .need_project = true},
    {.what = "no merge step: the project is never read", .h = H_OURS, .m = M_OFF, .w = W_GATED, .applied = true, .tweak = T_UNREAD},
    {.what = "archived on GitLab, not yet in the database: skipped with no write", .h = H_ABSENT, .m = M_OFF, .w = W_GATED_BLOCK, .tweak = T_GITLAB_ARCHIVED, .skip = "archived"},
    {.what = "pending deletion on GitLab: skipped", .h = H_OURS, .m = M_PRIOR_RECORDED, .w = W_UNGATED, .applied = true, .tweak = T_GITLAB_PENDING, .skip = "pending deletion"},
    {.what = "a repo GitLab no longer lists", .h = H_OURS, .m = M_ON, .w = W_GATED, .applied = true, .tweak = T_REMOVED, .skip = "no longer listed by GitLab"},
    {.what = "un-gating puts back a recorded prior of true", .h = H_OURS, .m = M_OFF, .w = W_UNGATED, .applied = true, .tweak = T_PRIOR_ON, .n = 3, .kinds = {APPLY_HOOK_DELETE, APPLY_MERGE_SET, APPLY_OPEN_MRS_CLEAR}, .merge_to = true},
    {.what = "block merge turned off by hand after mrgate recorded the prior: on again, the prior kept", .h = H_OURS, .m = M_OFF, .w = W_GATED_BLOCK, .applied = true, .tweak = T_CHANGED, .n = 1, .kinds = {APPLY_MERGE_SET}, .merge_to = true},
};
/* clang-format on */

static void exact_plans(void)
{
	for (size_t c = 0; c < sizeof(exact_cases) / sizeof(exact_cases[0]); c++) {
		const struct exact *x = &exact_cases[c];
		struct fixture f;
		struct apply_plan p;
		int before = testlib_failures;
		build(&f, x->h, x->m, R_NORMAL, x->w, x->applied, false);
		tweak(&f, x->tweak);
		apply_plan_make(&f.seen, &f.goal, &p);
		if (x->skip)
			CHECK_STR(p.skip, x->skip);
		else
			CHECK(p.skip == NULL);
		CHECK(p.need_project == x->need_project);
		CHECK_INT(p.n, x->n);
		for (size_t i = 0; i < p.n && i < x->n; i++) {
			CHECK_INT(p.v[i].kind, x->kinds[i]);
			if (p.v[i].kind == APPLY_HOOK_UPDATE || p.v[i].kind == APPLY_HOOK_DELETE)
				CHECK_INT(p.v[i].hook_id, OUR_ID);
			if (p.v[i].kind == APPLY_MERGE_SET)
				CHECK(p.v[i].to == x->merge_to && p.v[i].from == f.seen.merge_on &&
				      p.v[i].record_prior == x->record_prior);
		}
		if (testlib_failures != before)
			fprintf(stderr, "  ^ in the case: %s\n", x->what);
	}
}

/* More copies of ours than one apply handles: APPLY_HOOKS_MAX are deleted, the rest by the next applies. */
static void exact_many_copies(void)
{
	struct apply_hook_seen hooks[APPLY_HOOKS_MAX + 6];
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
		hooks[i] = (struct apply_hook_seen){
		    .id = 100 + (int64_t)i, .url = OUR_URL, .alert_status = "executable", .flags_ok = true};
	struct apply_seen s = {
	    .hooks = hooks, .n_hooks = sizeof(hooks) / sizeof(hooks[0]), .project_read = true, .hooks_read = true};
	struct apply_goal g = {.hook_url = OUR_URL, .token_sha = TOKEN_NOW};
	struct apply_plan p;
	apply_plan_make(&s, &g, &p);
	CHECK_INT(apply_plan_count(&p, APPLY_HOOK_DELETE), APPLY_HOOKS_MAX);
	CHECK_INT(p.n, APPLY_HOOKS_MAX);
}

static void plan_in_words(void)
{
	struct json_object *plan = json_tokener_parse(
	    "{\"hooks\": {\"create\": 1, \"update\": [], \"delete\": [3, 4]},"
	    " \"settings\": [{\"only_allow_merge_if_pipeline_succeeds\": {\"from\": false, \"to\": true}}],"
	    " \"open_mrs_to_gate\": 1, \"statuses_to_clear\": 2}");
	struct json_object *words = apply_plan_actions(plan);
	REQUIRE(json_object_array_length(words) == 5);
	CHECK_STR(json_object_get_string(json_object_array_get_idx(words, 0)), "create webhook");
	CHECK_STR(json_object_get_string(json_object_array_get_idx(words, 1)), "delete 2 webhooks");
	CHECK_STR(json_object_get_string(json_object_array_get_idx(words, 2)), "turn on Pipelines must succeed");
	CHECK_STR(json_object_get_string(json_object_array_get_idx(words, 3)), "gate 1 open merge request");
	CHECK_STR(json_object_get_string(json_object_array_get_idx(words, 4)),
	          "clear the gate status of 2 merge requests");
	json_object_put(words);
	json_object_put(plan);
	words = apply_plan_actions(NULL);
	CHECK_INT(json_object_array_length(words), 0);
	json_object_put(words);
}

int main(void)
{
	RUN(every_combination);
	RUN(exact_first_gate);
	RUN(exact_plans);
	RUN(exact_many_copies);
	RUN(plan_in_words);
	return testlib_done();
}
