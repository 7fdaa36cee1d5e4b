/*
 * core/apply_plan.h
 *    The apply engine's decision, with no I/O: what one repository's GitLab side needs so that it matches the
 *    gating config it should have (DESIGN.md §3). core/apply.c reads the state, calls apply_plan_make() and
 *    performs the actions it returns; this file is where the rules live and where tests check them over every
 *    state (tests/unit/test_apply_plan.c).
 *
 * Design: the input is what mrgate knows of the repo (struct apply_seen: the database's record and GitLab's answers)
 * and what is wanted (struct apply_goal); the output is an ordered list of actions (struct apply_plan). The rules:
 *   - A repo that is archived, pending deletion or no longer listed (in the database, or on GitLab when the
 *     project was read) is skipped: no action at all.
 *   - Gating is wanted when the config gates the repo and the repo is managed (an unmanaged repo is "off": mrgate
 *     removes its hook and restores what it changed). Block merge counts only when gating is wanted. The state
 *     recorded after a successful apply is "off", "hook" or "hook+merge".
 *   - Hooks: ours are those whose URL equals goal->hook_url (up to APPLY_HOOKS_MAX, in GitLab's order); nobody
 *     else's hook is ever touched. A project hook is wanted when gating is wanted outside group-hook mode. Wanted:
 *     keep one executable copy (alert_status "executable" or absent; the recorded id first), update it when its
 *     flags differ from ours or it is not the recorded hook with the current token's SHA-256 (GitLab never
 *     returns tokens), delete every other copy of ours; when no copy is executable create one (and delete the
 *     disabled ones). Not wanted: delete every copy of ours.
 *   - Merge setting (only_allow_merge_if_pipeline_succeeds): with block merge wanted, turn it on when it is off,
 *     recording its value first unless mrgate already changed it; without, when mrgate changed it, put the recorded
 *     prior value back (when it differs) and forget the record. Reading the project for this is needed only in
 *     those two cases (apply_plan_needs_project()); otherwise the project is never read.
 *   - Reads: the project's hooks are listed in project-hook mode, and in group-hook mode only while a project hook
 *     of ours is recorded (apply_plan_needs_hooks()); unread hooks plan no hook action. The project's merge
 *     setting and archived state may come from GET /projects/:id or from the job's group project list (the
 *     executor says which in the plan): the planner treats both alike.
 *   - Open merge requests: when gating starts (the recorded applied state is off, gating is wanted) gate them; when
 *     it stops, clear the gate's statuses.
 * Order of the actions: hook create/update, hook deletes, the merge setting, the open merge requests.
 * Threading: pure functions. Ownership: the plan borrows nothing; the strings of apply_seen/apply_goal are borrowed.
 */
#ifndef MRGATE_CORE_APPLY_PLAN_H
#define MRGATE_CORE_APPLY_PLAN_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define APPLY_HOOKS_MAX 64 /* copies of our hook handled per apply; more are deleted over several applies */

/* One project hook as GitLab lists it. */
struct apply_hook_seen {
	int64_t id;
	const char *url;          /* borrowed */
	const char *alert_status; /* borrowed; NULL or "" on an old GitLab (reads as executable) */
	bool flags_ok;            /* events and SSL verification are as mrgate sets them */
	bool mr_events;           /* merge request events are on (off: GitLab delivers none of them) */
};

/* What mrgate knows of a repo before it writes anything. */
struct apply_seen {
	/* the repo, as the database knows it */
	bool archived, pending_deletion, removed;
	bool unmanaged;
	/* recorded by the last apply */
	bool applied;          /* the applied state is not "off" (gating was on) */
	int64_t hook_id;       /* the hook id recorded, 0 for none */
	const char *token_sha; /* the SHA-256 hex of the token last pushed to it, NULL for none */
	bool merge_changed;    /* mrgate changed the merge setting ... */
	bool prior;            /* ... which was this before (false when never recorded) */
	/* GitLab */
	bool hooks_read;                     /* the project's hooks were listed: hooks/n_hooks are known */
	const struct apply_hook_seen *hooks; /* every hook of the project, in GitLab's order */
	size_t n_hooks;
	bool project_read; /* the project was read: the three fields below are known */
	bool project_archived, project_pending_deletion;
	bool merge_on; /* only_allow_merge_if_pipeline_succeeds (null reads as false) */
};

/* What is wanted. */
struct apply_goal {
	const char *hook_url;     /* {public_url}/hooks/gitlab */
	const char *token_sha;    /* the SHA-256 hex of the current webhook secret */
	bool gate;                /* the config gates the repo (effective `enabled`) */
	bool block_merge;         /* ... with block merge */
	bool group_mode;          /* hook_mode "group": a group hook delivers the events, no project hook is wanted */
	bool group_hook_was_down; /* group mode: the group hook GitLab could not deliver to (missing, disabled, its
	                             merge request events off) has just been repaired (core/grouphook.h) */
	bool resend_token;        /* update the kept project hook with the secret even where it seems right (GitLab
	                             never shows a hook's token); it may have refused deliveries: missed MRs are gated */
};

enum apply_action_kind {
	APPLY_HOOK_CREATE = 1,
	APPLY_HOOK_UPDATE,    /* hook_id */
	APPLY_HOOK_DELETE,    /* hook_id */
	APPLY_MERGE_SET,      /* from -> to; record_prior: store `from` as the prior value before the write */
	APPLY_OPEN_MRS_GATE,  /* gating starts: gate the open merge requests */
	APPLY_OPEN_MRS_CLEAR, /* gating stops: post a final status on them */
	APPLY_OPEN_MRS_MISSED /* gated, and our hook (or the group hook) was down (missing, disabled, its merge request
	                       * events off): gate the open merge requests whose head never ran, which it did not
	                       * deliver */
};

struct apply_action {
	enum apply_action_kind kind;
	int64_t hook_id;
	bool from, to;
	bool record_prior;
};

struct apply_plan {
	const char *skip;  /* non-NULL: the repo is skipped, and why ("archived", "pending deletion", ...) */
	bool need_project; /* the merge step needs the project and seen->project_read is false: nothing is planned */
	bool need_hooks;   /* the hook step needs the project's hooks and seen->hooks_read is false: nothing planned */
	const char *want;  /* "off" | "hook" | "hook+merge": the applied state to record once every action succeeded */
	bool gate;         /* gating is wanted */
	bool block_merge;  /* ... with block merge */
	bool project_hook; /* a project hook is wanted */
	int64_t keep_id;   /* our copy kept (0: none; with project_hook, an APPLY_HOOK_CREATE is planned) */
	const char *keep_alert; /* its alert_status (borrowed from seen) */
	bool forget_prior;      /* after the merge step the recorded prior value is dropped */
	bool hook_was_down;     /* gated, and GitLab could not deliver to our hook: it is created or its events put back
	                           (group mode: goal->group_hook_was_down) */
	bool token_resent;      /* the hook is updated only because goal->resend_token asked so */
	size_t n;
	struct apply_action v[APPLY_HOOKS_MAX + 4];
};

/* True when a hook's alert_status lets GitLab deliver to it (NULL, "" or "executable"). */
bool apply_plan_hook_executable(const char *alert_status);

/* True when planning needs the project (its archived state and merge setting) read from GitLab. */
bool apply_plan_needs_project(const struct apply_seen *s, const struct apply_goal *g);

/*
 * True when planning needs the project's hooks listed: always in project-hook mode (ours are found by URL, also
 * copies mrgate never recorded); in group-hook mode only when a project hook of ours is recorded (left from
 * project mode, to be deleted): a group-mode repo costs no hook read at all.
 */
bool apply_plan_needs_hooks(const struct apply_seen *s, const struct apply_goal *g);

/* The plan for s and g into *out (overwritten). */
void apply_plan_make(const struct apply_seen *s, const struct apply_goal *g, struct apply_plan *out);

/* Number of actions of `kind` in p. */
size_t apply_plan_count(const struct apply_plan *p, enum apply_action_kind kind);

/*
 * A plan as apply_result.plan carries it (NULL is fine) in words for people: a new array of strings, one per
 * GitLab change, e.g. ["create webhook", "turn on Pipelines must succeed", "gate 2 open merge requests"]; empty
 * when nothing changes. The caller owns it.
 */
struct json_object *apply_plan_actions(struct json_object *plan);

#endif
