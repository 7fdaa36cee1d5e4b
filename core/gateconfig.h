/*
 * core/gateconfig.h
 *    The gating config model: a default config, configs per GitLab group path and per repo (exceptions), the
 *    per-repo unmanaged flag; validation, storage with audit entries, export and import.
 *
 * Design: a config is a JSON object holding a subset of these fields (DESIGN.md §2):
 *     enabled       bool   the repo is gated: mrgate keeps its webhook (and merge setting) on GitLab
 *     fail_on       critical | high | medium | low | never
 *     scans         array, a subset of secrets, sast, dependencies, iac, license, malware
 *     block_merge   bool   ensure the project's only_allow_merge_if_pipeline_succeeds
 *     comment       off | on_findings | always | inline
 *     ignore_paths  array of globs (core/pathglob.h)
 * `enabled` inherits like every other field, so a group or a repo is gated or un-gated by setting it. The
 * effective config of a repo is the field-wise merge default -> each ancestor group from the root down -> the
 * repo, most specific wins; it is computed by PostgreSQL (view repo_status_computed, sql/0004_configs.sql) and
 * stored per repo by triggers in the transaction of any change of its inputs (table repo_status_stored, 0011),
 * so the list, the status filter, the gate and the apply engine read one truth. The default level always holds every
 * field: a PUT of the default fills the fields it leaves out from the built-in default (enabled false, fail_on high,
 * scans [secrets], block_merge false, comment on_findings, ignore_paths []). At the group and repo levels a missing
 * field (or null) means "inherit".
 * Validation normalises: scans are deduplicated and put in the canonical order above, so two configs that mean
 * the same compare equal (a repo is an "exception" exactly when a field of its own config differs from what it
 * would inherit).
 * Every write runs in one transaction with its audit entry (before/after), and marks for apply the repos whose
 * GitLab-relevant state (enabled, block_merge, unmanaged -> off | hook | hook+merge) now differs from what was
 * last applied (gateconfig_mark_apply); changing only fail_on, scans, comment or ignore_paths marks nothing, so
 * it costs no GitLab call.
 * Threading: all functions are thread-safe (each borrows its own connection).
 * Ownership: JSON inputs are borrowed; *out trees are new and the caller's (json_object_put). Id arrays in a
 * struct gateconfig_marked are owned by it (gateconfig_marked_clear).
 */
#ifndef MRGATE_CORE_GATECONFIG_H
#define MRGATE_CORE_GATECONFIG_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The config fields and allowed values, for messages and the CLI. */
extern const char *const gateconfig_fields[];  /* NULL-terminated */
extern const char *const gateconfig_fail_on[]; /* NULL-terminated */
extern const char *const gateconfig_scans[];   /* NULL-terminated, canonical order */
extern const char *const gateconfig_comment[]; /* NULL-terminated */

/* The built-in default config (every field). A new tree. */
struct json_object *gateconfig_builtin(void);

/*
 * Validate one level's config (an object with a subset of the fields; null means "inherit" and is dropped) and
 * return its normalised copy in *out. CORE_EINVAL with err naming the field and its allowed values
 * ("field \"fail_on\" must be one of critical, high, medium, low, never (got \"hihg\")").
 */
enum core_status gateconfig_validate(struct json_object *in, struct json_object **out, char *err, size_t errlen);
/*
 * The same for the default, which is replaced whole: a field left out takes its built-in value, so a field sent as
 * null, no field at all, or a config without "enabled" is refused (each stopped gating every repo that inherits).
 */
enum core_status gateconfig_validate_default(struct json_object *in, struct json_object **out, char *err,
                                             size_t errlen);
/*
 * CORE_EINVAL with err when a group config's path is neither the connected group nor under it (no sync lists a
 * repository of it, so its config would never gate anything), or is a synced repository's path and no group's.
 * CORE_OK when it is inside, or when no group is connected. *repo_out (may be NULL): it was the repository's path.
 * The _on form runs on the caller's connection.
 */
enum core_status gateconfig_group_inside(struct store *db, const char *path, bool *repo_out, char *err, size_t errlen);
enum core_status gateconfig_group_inside_on(struct store_conn *c, const char *path, bool *repo_out, char *err,
                                            size_t errlen);

/* *listed: a sync has listed a group at path (in any case) that is still there. */
enum core_status gateconfig_group_listed(struct store *db, const char *path, bool *listed);

/* Repos marked for apply by a write (their repo_gitlab_state.applying is set, with apply_run = run). */
struct gateconfig_marked {
	int64_t run;  /* 0 when nothing was marked */
	int64_t *ids; /* owned */
	size_t n;
};
void gateconfig_marked_clear(struct gateconfig_marked *m);

/*
 * Inside the caller's transaction: mark for apply every manageable repo (not removed, archived or pending
 * deletion) in the scope of a write (all repos, or those under group, or those in ids) whose wanted GitLab state
 * differs from the one last applied, or that an apply holds right now (it read the config before this write), plus
 * the repos in force_ids (a reapply). A repo outside the scope is never
 * marked, so a failed repo elsewhere is not retried by an unrelated write. Marked repos show the status "applying"
 * until their outcome is recorded, except, with check_forced, a forced repo with nothing to change (a resync's
 * check of every gated repo, or an explicit reapply: they stay "gated" while it reads their hooks). Fills *out (may be
 * NULL to discard).
 */
enum core_status gateconfig_mark_apply(struct store_conn *c, bool all, const char *group, const int64_t *ids,
                                       size_t n_ids, const int64_t *force_ids, size_t n_force, bool check_forced,
                                       struct gateconfig_marked *out);

/* {"config": {...}, "updated_at", "updated_by"} */
enum core_status gateconfig_get_default(struct store *db, struct json_object **out);
/* Replace the default (missing fields from the built-in). cfg must come from gateconfig_validate(). */
enum core_status gateconfig_put_default(struct store *db, struct json_object *cfg, const char *actor,
                                        struct gateconfig_marked *marked, struct json_object **out);

/*
 * The path a group config for `path` lives under. GitLab's paths ignore case (GET /groups/ACME/Web is acme/web), so
 * a path that names a synced group in another case means that group, spelt as GitLab spells it (a config stored
 * as typed would match none of its repos: they are matched by their namespace's own spelling). prefer_stored: a
 * config stored under exactly path wins (reading or removing one that an older mrgate stored as typed). A path
 * that names no synced group stays as it is. *out is malloc'd.
 */
enum core_status gateconfig_group_spelling(struct store *db, const char *path, bool prefer_stored, char **out);
/* The same on the caller's connection c, without prefer_stored (the repo list's group filter). */
enum core_status gateconfig_group_spelling_on(struct store_conn *c, const char *path, char **out);
/*
 * {"path", "config", "updated_at", "updated_by"}; CORE_ENOTFOUND when the group has no config. Get, put and delete
 * take path in any case (gateconfig_group_spelling); put stores and answers GitLab's spelling.
 */
enum core_status gateconfig_get_group(struct store *db, const char *path, struct json_object **out);
/*
 * The repos a change of a group config stops gating: those mrgate gates now (not removed, archived or pending
 * deletion; their config enables them and they are managed) that the config after the change would not. A change
 * that stops gating repos is CORE_ECONFLICT, with nothing stored, unless `confirmed`; either way n and examples say
 * which, and the change's audit entry has them in its details ({"ungated", "confirm_ungate"}).
 */
struct gateconfig_ungate {
	bool confirmed;               /* in: make the change even when it stops gating repos */
	int64_t n;                    /* out: how many it stops (or would stop) gating */
	struct json_object *examples; /* out, owned (json_object_put): up to 5 of their paths, a JSON array */
};
/* CORE_EINVAL when path is not a GitLab group path. ungate: may be NULL (no check). */
enum core_status gateconfig_put_group(struct store *db, const char *path, struct json_object *cfg, const char *actor,
                                      struct gateconfig_ungate *ungate, struct gateconfig_marked *marked,
                                      struct json_object **out);
/* ungate: may be NULL (no check). */
enum core_status gateconfig_delete_group(struct store *db, const char *path, const char *actor,
                                         struct gateconfig_ungate *ungate, struct gateconfig_marked *marked);
/* All group configs: [{path, config, ...}] by path. */
enum core_status gateconfig_list_groups(struct store *db, struct json_object **out);
/* True when path is a syntactically valid GitLab group full path ("acme/platform"). */
bool gateconfig_group_path_valid(const char *path);

/*
 * {"repo_id", "path_with_namespace", "config" (own, {} when none), "unmanaged", "effective", "sources",
 *  "inherited", "exception"}; CORE_ENOTFOUND for an unknown repo.
 */
enum core_status gateconfig_get_repo(struct store *db, int64_t repo_id, struct json_object **out);
/* Replace the repo's own config and unmanaged flag. CORE_ENOTFOUND for an unknown repo. */
enum core_status gateconfig_put_repo(struct store *db, int64_t repo_id, struct json_object *cfg, bool unmanaged,
                                     const char *actor, struct gateconfig_marked *marked, struct json_object **out);
/* Reset to the inherited config (and managed). CORE_ENOTFOUND when the repo has no own config. */
enum core_status gateconfig_delete_repo(struct store *db, int64_t repo_id, const char *actor,
                                        struct gateconfig_marked *marked);

/*
 * Every config as one document:
 *   {"version": 1, "default": {...}, "groups": {"path": {...}},
 *    "repos": [{"id": 42, "path_with_namespace": "a/b", "config": {...}, "unmanaged": false}]}
 */
enum core_status gateconfig_export(struct store *db, struct json_object **out);
/*
 * Replace every config with the document's (the shape of gateconfig_export; path_with_namespace is informative).
 * The whole document is validated first; on any problem nothing is written and err says where
 * ("repos[3].config: field \"scans\" ..."). The default is required and validated as gateconfig_validate_default
 * does; a group config sets at least one field and is inside the connected group. One transaction, one audit entry.
 */
enum core_status gateconfig_import(struct store *db, struct json_object *doc, const char *actor,
                                   struct gateconfig_marked *marked, char *err, size_t errlen);

/* Snapshot of the configs a write may touch, for audit before/after. Exposed for core/configure.c. */
enum core_status gateconfig_snapshot(struct store_conn *c, const char *group, const int64_t *ids, size_t n_ids,
                                     bool all, struct json_object **out);

#endif
