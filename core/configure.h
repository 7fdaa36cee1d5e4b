/*
 * core/configure.h
 *    Bulk "Configure Scans": store one config for a selection of repos in one transaction, and say which repos
 *    need GitLab changes.
 *
 * Design: the selection is a list of repo ids or a filter ("all N matching", the filter of GET /api/repos plus
 * an optional path glob). The config is written at the most general level that covers exactly the selection:
 *   - a filter with nothing set (every repo)          -> the default config
 *   - a filter with only `group` set (a group subtree) -> that group's config
 *   - anything else (ids, text search, status, glob)   -> each selected repo's own config
 * The given fields are merged into that level's config and removed from the more specific levels inside the
 * selection (subgroup and repo configs), so every selected repo ends up with exactly the requested values. At the
 * repo level a field equal to what the repo inherits is not kept, so a repo is an exception only when it really
 * differs. A configure is a patch: a field not in the request keeps, on every selected repo, what it has at its
 * level (so `enabled` is set only when sent: "enabled": true gates, false un-gates); a config with no field is
 * refused unless reapply is set.
 * One audit entry records the configs before and after.
 * Only repos whose GitLab-relevant state (off | hook | hook+merge, from enabled, block_merge, unmanaged) now
 * differs from what was last applied are marked for apply (plus, with reapply, every selected repo, which repairs
 * drift: reads all, writes what differs). A change of fail_on, scans, comment or ignore_paths alone marks none.
 * A dry run does all of this in a transaction that is rolled back, and returns the repos that would be applied
 * with the state they would be brought to; the caller runs apply_repo_want(dry_run) on them for the plan.
 * Threading: thread-safe. Ownership: see each struct.
 */
#ifndef MRGATE_CORE_CONFIGURE_H
#define MRGATE_CORE_CONFIGURE_H

#include "apply.h"
#include "gateconfig.h"
#include "repos.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct configure_req {
	const int64_t *ids; /* the selection as ids (borrowed), or NULL for the filter */
	size_t n_ids;
	struct repos_filter filter; /* used when ids is NULL: q, group, status, archived */
	const char *path_glob;      /* optional, with the filter: path_with_namespace must match (core/pathglob.h) */
	struct json_object *config; /* borrowed; validated by configure_run() */
	bool dry_run;
	bool reapply; /* apply every selected repo, not only those whose GitLab state changes */
	/* with reapply: update every selected repo's hook with the webhook secret even where nothing else differs
	 * (GitLab never shows a hook's token, so a token edited in GitLab is only repaired this way or once GitLab has
	 * disabled the hook); not with dry_run */
	bool resend_hook_tokens;
	/* a group filter (the group level) may name a group no sync has listed (one still to come, whose repos inherit
	 * the config once it is listed); without this, such a group is refused as a likely typo (CORE_ENOTFOUND) */
	bool confirm_new_group;
	const char *actor;
	/* borrowed, or NULL: what the user was shown the configure replaces (a dry run's summary "overridden":
	 * {groups, repos, paths}, configure_expect_check()ed). An apply that would replace more (a count above it, or
	 * a path not in it) stores nothing: CORE_ECONFLICT, err says what, and out->summary is set. Not for a dry run.
	 */
	const struct json_object *expect_overridden;
};

struct configure_out {
	struct json_object *summary;     /* owned: {"level", "target", "selected", "to_apply", "skipped",
	                                    "unchanged_on_gitlab", "config"} */
	struct gateconfig_marked marked; /* not a dry run: the repos marked for apply (run id) */
	int64_t *plan_ids;               /* dry run: repos that would be applied ... */
	struct apply_want *plan_wants;   /* ... and the state each would be brought to ... */
	char **plan_paths;               /* ... and its path_with_namespace (owned strings), ordered by id */
	size_t n_plan;
	size_t n_plan_paths; /* entries of plan_paths allocated (for the clear) */
	bool bad_selection;  /* on CORE_EINVAL: the selection (its filter, glob or emptiness) is invalid, not the config
	                      */
	bool outside_group;  /* on CORE_EINVAL: the group is not the connected group or under it */
};
void configure_out_clear(struct configure_out *o);

/* Whether e is an "overridden" object as a summary has it: {"groups": n >= 0, "repos": n >= 0, "paths": [strings]};
 * false with a message naming the field in err. */
bool configure_expect_check(const struct json_object *e, char *err, size_t errlen);

/*
 * CORE_EINVAL with err for an invalid config or filter, or an empty selection; CORE_ENOTFOUND with err for a group
 * level whose group no sync has listed (unless req->confirm_new_group); CORE_OK otherwise. Nothing is written in a
 * dry run.
 */
enum core_status configure_run(struct store *db, const struct configure_req *req, struct configure_out *out, char *err,
                               size_t errlen);

#endif
