/*
 * core/gateconfig.c
 *    Gating configs: validation, storage, audit, marking repos for apply, export and import.
 */
#include "gateconfig.h"

#include "audit.h"
#include "buf.h"
#include "jsonx.h"
#include "pathglob.h"
#include "rows.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const gateconfig_fields[] = {"enabled", "fail_on", "scans", "block_merge", "comment", "ignore_paths", NULL};
const char *const gateconfig_fail_on[] = {"critical", "high", "medium", "low", "never", NULL};
const char *const gateconfig_scans[] = {"secrets", "sast", "dependencies", "iac", "license", "malware", NULL};
const char *const gateconfig_comment[] = {"off", "on_findings", "always", "inline", NULL};

#define MAX_IGNORE_PATHS 200

struct json_object *gateconfig_builtin(void)
{
	struct json_object *o = jx_object();
	json_object_object_add(o, "enabled", jx_bool(0));
	json_object_object_add(o, "fail_on", jx_str("high"));
	struct json_object *scans = jx_array();
	json_object_array_add(scans, jx_str("secrets"));
	json_object_object_add(o, "scans", scans);
	json_object_object_add(o, "block_merge", jx_bool(0));
	json_object_object_add(o, "comment", jx_str("on_findings"));
	json_object_object_add(o, "ignore_paths", jx_array());
	return o;
}

static int index_of(const char *const *list, const char *s)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

static void join(const char *const *list, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; list[i] && len < cap; i++) {
		int n = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", list[i]);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

static enum core_status bad_enum(const char *field, const char *const *allowed, struct json_object *got, char *err,
                                 size_t errlen)
{
	char list[200];
	join(allowed, list, sizeof(list));
	const char *s = NULL;
	if (jsonx_as_str(got, &s))
		snprintf(err, errlen, "field \"%s\" must be one of %s (got \"%.60s\")", field, list, s);
	else
		snprintf(err, errlen, "field \"%s\" must be one of %s (got %s)", field, list,
		         json_type_to_name(json_object_get_type(got)));
	return CORE_EINVAL;
}

/*
 * Whether the patterns together match every path: they match each of a few paths of every shape (a top-level file, a
 * hidden file, nested directories, names with digits, dashes and dots), which only patterns such as "**" or "*"
 * (alone or after "**" and a slash) do.
 */
static bool ignores_everything(struct json_object *patterns)
{
	static const char *const probes[] = {
	    "a", "Zz9", ".env", "x/y", "src/m.go", "a/b/c/d.tar.gz", ".github/w/ci.yml", "q-1_2/0/README"};
	size_t n = json_object_array_length(patterns);
	if (n == 0)
		return false;
	const char **v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_object_get_string(json_object_array_get_idx(patterns, i));
	bool all = true;
	for (size_t i = 0; all && i < sizeof(probes) / sizeof(probes[0]); i++)
		all = pathglob_match_any(v, n, probes[i]);
	free(v);
	return all;
}

enum core_status gateconfig_validate(struct json_object *in, struct json_object **out, char *err, size_t errlen)
{
	*out = NULL;
	char list[200];
	if (!in || !json_object_is_type(in, json_type_object)) {
		snprintf(err, errlen, "a config must be a JSON object with some of the fields %s",
		         "enabled, fail_on, scans, block_merge, comment, ignore_paths");
		return CORE_EINVAL;
	}
	struct json_object *o = jx_object();
	if (!o)
		return CORE_ENOMEM;
	enum core_status st = CORE_EINVAL;
	json_object_object_foreach(in, key, val)
	{
		if (index_of(gateconfig_fields, key) < 0) {
			join(gateconfig_fields, list, sizeof(list));
			snprintf(err, errlen, "unknown field \"%.60s\": a config has the fields %s", key, list);
			goto out;
		}
		if (!val)
			continue; /* null: inherit */
		if (strcmp(key, "enabled") == 0 || strcmp(key, "block_merge") == 0) {
			if (!json_object_is_type(val, json_type_boolean)) {
				snprintf(err, errlen, "field \"%s\" must be true or false (got %s)", key,
				         json_type_to_name(json_object_get_type(val)));
				goto out;
			}
			json_object_object_add(o, key, jx_bool(json_object_get_boolean(val)));
		} else if (strcmp(key, "fail_on") == 0 || strcmp(key, "comment") == 0) {
			const char *const *allowed = key[0] == 'f' ? gateconfig_fail_on : gateconfig_comment;
			const char *s;
			if (!jsonx_as_str(val, &s) || index_of(allowed, s) < 0) {
				st = bad_enum(key, allowed, val, err, errlen);
				goto out;
			}
			json_object_object_add(o, key, jx_str(s));
		} else if (strcmp(key, "scans") == 0) {
			join(gateconfig_scans, list, sizeof(list));
			if (!json_object_is_type(val, json_type_array)) {
				snprintf(err, errlen, "field \"scans\" must be an array of %s (got %s)", list,
				         json_type_to_name(json_object_get_type(val)));
				goto out;
			}
			bool seen[8] = {false};
			size_t n = json_object_array_length(val);
			if (n == 0) {
				snprintf(
				    err, errlen,
				    "field \"scans\" is empty: a gate with no scan checks nothing and would pass every "
				    "merge request; choose at least one of %s",
				    list);
				goto out;
			}
			for (size_t i = 0; i < n; i++) {
				struct json_object *e = json_object_array_get_idx(val, i);
				const char *s;
				int k;
				if (!jsonx_as_str(e, &s) || (k = index_of(gateconfig_scans, s)) < 0) {
					if (jsonx_as_str(e, &s))
						snprintf(
						    err, errlen,
						    "field \"scans\" has an unknown scan \"%.60s\": allowed are %s", s,
						    list);
					else
						snprintf(err, errlen, "field \"scans\" must be an array of %s", list);
					goto out;
				}
				seen[k] = true;
			}
			struct json_object *a = jx_array();
			for (int k = 0; gateconfig_scans[k]; k++)
				if (seen[k])
					json_object_array_add(a, jx_str(gateconfig_scans[k]));
			json_object_object_add(o, key, a);
		} else { /* ignore_paths */
			if (!json_object_is_type(val, json_type_array)) {
				snprintf(err, errlen,
				         "field \"ignore_paths\" must be an array of glob patterns (got %s)",
				         json_type_to_name(json_object_get_type(val)));
				goto out;
			}
			size_t n = json_object_array_length(val);
			if (n > MAX_IGNORE_PATHS) {
				snprintf(err, errlen, "field \"ignore_paths\" has %zu patterns; at most %d are allowed",
				         n, MAX_IGNORE_PATHS);
				goto out;
			}
			struct json_object *a = jx_array();
			json_object_object_add(o, key, a);
			for (size_t i = 0; i < n; i++) {
				const char *s = NULL;
				char why[120];
				if (!jsonx_as_str(json_object_array_get_idx(val, i), &s) ||
				    !pathglob_check(s, why, sizeof(why))) {
					snprintf(
					    err, errlen,
					    "field \"ignore_paths\" pattern %zu is not a valid glob: %s (patterns are "
					    "non-empty strings such as \"vendor/\" or \"**/*.min.js\", without \"!\" "
					    "negation and with closed brackets)",
					    i + 1, s ? why : "it is not a string");
					goto out;
				}
				bool again = false; /* a pattern given twice is kept once, where it first came */
				for (size_t k = 0; k < json_object_array_length(a) && !again; k++)
					again = strcmp(json_object_get_string(json_object_array_get_idx(a, k)), s) == 0;
				if (!again)
					json_object_array_add(a, jx_str(s));
			}
			if (ignores_everything(a)) {
				struct json_object *en = jsonx_get(in, "enabled");
				bool off =
				    en && json_object_is_type(en, json_type_boolean) && !json_object_get_boolean(en);
				snprintf(err, errlen,
				         "field \"ignore_paths\" ignores every file: a gate that ignores every file "
				         "checks nothing and would pass every merge request; %s",
				         off ? "this config already stops gating (\"enabled\": false): leave "
				               "ignore_paths out"
				             : "to stop gating, set \"enabled\" to false");
				goto out;
			}
		}
	}
	*out = o;
	o = NULL;
	st = CORE_OK;
out:
	json_object_put(o);
	return st;
}

enum core_status gateconfig_validate_default(struct json_object *in, struct json_object **out, char *err, size_t errlen)
{
	*out = NULL;
	if (in && json_object_is_type(in, json_type_object)) {
		json_object_object_foreach(in, key, val)
		{
			if (val)
				continue;
			snprintf(err, errlen,
			         "field \"%.60s\" is null: send its value, or leave it out (the default is replaced "
			         "whole: a field left out takes its built-in value)",
			         key);
			return CORE_EINVAL;
		}
		if (json_object_object_length(in) == 0) {
			snprintf(err, errlen,
			         "the config sets no field: send the fields of the default (it is replaced whole: a "
			         "field left out takes its built-in value, and the built-in default gates nothing)");
			return CORE_EINVAL;
		}
	}
	enum core_status st = gateconfig_validate(in, out, err, errlen);
	if (st == CORE_OK && !jsonx_get(*out, "enabled")) {
		/* left out it is the built-in false: a walk's {"fail_on": "medium"} stopped gating every repo */
		snprintf(err, errlen,
		         "field \"enabled\" is required in the default: left out it would take its built-in value, "
		         "false, and stop gating every repository that inherits it; send \"enabled\": true to keep "
		         "gating, or false to stop");
		json_object_put(*out);
		*out = NULL;
		st = CORE_EINVAL;
	}
	return st;
}

void gateconfig_marked_clear(struct gateconfig_marked *m)
{
	if (m) {
		free(m->ids);
		*m = (struct gateconfig_marked){0};
	}
}

/* A bigint[] parameter, or SQL NULL when ids is NULL (with_ids false). */
static void ids_param(struct store_params *p, bool with_ids, const int64_t *ids, size_t n, struct buf *keep)
{
	if (with_ids)
		store_param_i64_array(p, ids, n, keep);
	else
		store_param_null(p);
}

/* A namespace path $n, or one below it ("a/b" is under "a"): the LIKE pattern escapes the path's own % and _. */
#define UNDER(col, n)                                                                                                  \
	"(" col " = $" n " OR " col " LIKE replace(replace(replace($" n                                                \
	", '\\', '\\\\'), '%', '\\%'), '_', '\\_') || "                                                                \
	"'/%')"

enum core_status gateconfig_mark_apply(struct store_conn *c, bool all, const char *group, const int64_t *ids,
                                       size_t n_ids, const int64_t *force_ids, size_t n_force, bool check_forced,
                                       struct gateconfig_marked *out)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	struct buf force = {0}, scope = {0};
	if (out)
		memset(out, 0, sizeof(*out));
	ids_param(&p, n_force > 0, force_ids, n_force, &force);
	store_param_bool(&p, all);
	store_param_str(&p, group);
	ids_param(&p, ids != NULL, ids, n_ids, &scope);
	store_param_bool(&p, check_forced);
	enum core_status st =
	    store_run(c,
	              /* a repo being applied right now counts as changing: that apply read the config before this
	               * write, and may leave GitLab as the old config wanted once it records its outcome (a walk's
	               * ungate then re-gate left the 16 repos in flight without their hooks); the apply this marks
	               * waits for that one's claim, then applies the config as it stands */
	              "WITH scoped AS ("
	              "  SELECT id, (gitlab_want <> gitlab_have OR EXISTS (SELECT 1 FROM apply_claims a"
	              "   WHERE a.repo_id = repo_status.id AND a.expires_at > now())) AND ($2::boolean"
	              "          OR ($3::text IS NOT NULL AND " UNDER(
	                  "namespace_full_path",
	                  "3") ")"
	                       "          OR ($4::bigint[] IS NOT NULL AND id = ANY ($4::bigint[]))) AS changing,"
	                       "   $1::bigint[] IS NOT NULL AND id = ANY ($1::bigint[]) AS forced"
	                       "  FROM repo_status WHERE status NOT IN ('removed', 'archived', 'pending_deletion')),"
	                       " want AS (SELECT id, changing OR NOT $5::boolean AS changing FROM scoped"
	                       "  WHERE changing OR forced),"
	                       " run AS (SELECT nextval('apply_run_seq') AS run WHERE EXISTS (SELECT 1 FROM want)),"
	                       /* check_forced: a forced repo with nothing to change is checked, not applied, and keeps
	                        * its status (a resync's follow-up showed every gated repo "applying" while it re-read
	                        * their hooks) */
	                       /* a checked repo whose state row exists and is not applying is left as it is: its
	                        * apply_run counts only while applying (a re-apply of 1,000 repos with nothing to change
	                        * rewrote 1,000 rows for nothing, inside the configure request) */
	                       " up AS ("
	                       "  INSERT INTO repo_gitlab_state (repo_id, applying, applying_since, apply_run)"
	                       "  SELECT w.id, w.changing, CASE WHEN w.changing THEN now() END, run.run FROM want w"
	                       "  CROSS JOIN run LEFT JOIN repo_gitlab_state g ON g.repo_id = w.id"
	                       "  WHERE w.changing OR g.repo_id IS NULL OR g.applying"
	                       /* in id order, as the apply's outcomes (core/apply.c): no deadlock between them */
	                       "  ORDER BY w.id"
	                       "  ON CONFLICT (repo_id) DO UPDATE SET"
	                       "   applying = repo_gitlab_state.applying OR excluded.applying,"
	                       "   applying_since = CASE WHEN excluded.applying THEN now()"
	                       "    ELSE repo_gitlab_state.applying_since END,"
	                       "   apply_run = excluded.apply_run"
	                       "  RETURNING 1)"
	                       " SELECT w.id AS repo_id, run.run AS apply_run"
	                       " FROM want w CROSS JOIN run ORDER BY w.id",
	              &p, &r);
	int n = st == CORE_OK ? PQntuples(r) : 0;
	if (out && n > 0) {
		out->ids = xcalloc((size_t)n, sizeof(int64_t));
		for (int i = 0; i < n; i++)
			out->ids[i] = store_i64(r, i, "repo_id", 0);
		out->n = (size_t)n;
		out->run = store_i64(r, 0, "apply_run", 0);
	}
	PQclear(r);
	buf_free(&force);
	buf_free(&scope);
	return st;
}

/* The JSON of column col of the first row (NULL when SQL NULL or not JSON). */
static struct json_object *parse_col(const PGresult *r, const char *col)
{
	const char *v = store_str(r, 0, col);
	struct json_object *o = NULL;
	if (v && jsonx_parse(v, strlen(v), &o) != CORE_OK)
		o = NULL;
	return o;
}

enum core_status gateconfig_snapshot(struct store_conn *c, const char *group, const int64_t *ids, size_t n_ids,
                                     bool all, struct json_object **out)
{
	*out = NULL;
	PGresult *r = NULL;
	struct store_params p = {0};
	struct buf keep = {0};
	store_param_bool(&p, all);
	store_param_str(&p, group);
	ids_param(&p, ids != NULL, ids, n_ids, &keep);
	enum core_status st = store_run(
	    c,
	    "SELECT jsonb_build_object("
	    " 'default', (SELECT config FROM config_default),"
	    " 'groups', (SELECT coalesce(jsonb_object_agg(path, config), '{}') FROM config_groups"
	    "   WHERE $1::boolean OR ($2::text IS NOT NULL AND " UNDER(
	        "path", "2") ")),"
	                     " 'repos', (SELECT coalesce(jsonb_object_agg(r.path_with_namespace,"
	                     "     jsonb_build_object('config', cr.config, 'unmanaged', cr.unmanaged)), '{}')"
	                     "   FROM config_repos cr JOIN repos r ON r.id = cr.repo_id"
	                     "   WHERE $1::boolean OR ($3::bigint[] IS NOT NULL AND cr.repo_id = ANY ($3::bigint[]))"
	                     "     OR ($2::text IS NOT NULL AND " UNDER("r.namespace_full_path", "2") "))"
	                                                                                              ") AS snap",
	    &p, &r);
	if (st == CORE_OK)
		*out = parse_col(r, "snap");
	PQclear(r);
	buf_free(&keep);
	return st;
}

/* What one change of the config touched: the scope of its snapshots and of the repos marked for apply. */
struct scope {
	const char *group;
	const int64_t *ids;
	size_t n_ids;
	bool all;
	struct gateconfig_ungate *ungate; /* NULL, or: the repos of the scope the change stops gating */
};

/* The repos of the scope mrgate gates now (c's transaction), as a bigint[] text in *out (owned). */
static enum core_status gated_now(struct store_conn *c, const struct scope *sc, char **out)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	struct buf keep = {0};
	*out = NULL;
	store_param_bool(&p, sc->all);
	store_param_str(&p, sc->group);
	ids_param(&p, sc->ids != NULL, sc->ids, sc->n_ids, &keep);
	enum core_status st =
	    store_run(c,
	              "SELECT coalesce(array_agg(id), '{}') AS ids FROM repo_status"
	              " WHERE gitlab_want <> 'off' AND status NOT IN ('removed', 'archived', 'pending_deletion')"
	              "  AND ($1::boolean OR ($2::text IS NOT NULL AND " UNDER(
	                  "namespace_full_path", "2") ")"
	                                              "   OR ($3::bigint[] IS NOT NULL AND id = ANY ($3::bigint[])))",
	              &p, &r);
	if (st == CORE_OK)
		*out = xstrdup(store_str(r, 0, "ids"));
	PQclear(r);
	buf_free(&keep);
	return st;
}

/* Of the repos in ids (gated_now before the change), those the change stops gating: sc->ungate's n and examples;
 * CORE_ECONFLICT when there are some and the caller did not confirm it. */
static enum core_status ungated_by(struct store_conn *c, const struct scope *sc, const char *ids)
{
	PGresult *r = NULL;
	struct gateconfig_ungate *u = sc->ungate;
	enum core_status st = STORE_RUN(c,
	                                "SELECT count(*) OVER () AS n, path_with_namespace FROM repo_status"
	                                " WHERE id = ANY ($1::bigint[]) AND gitlab_want = 'off'"
	                                " ORDER BY path_with_namespace COLLATE \"C\" LIMIT 5",
	                                &r, STORE_STR(ids));
	if (st == CORE_OK) {
		u->n = PQntuples(r) > 0 ? store_i64(r, 0, "n", 0) : 0;
		json_object_put(u->examples);
		u->examples = jx_array();
		for (int i = 0; i < PQntuples(r); i++)
			json_object_array_add(u->examples, jx_str(store_str(r, i, "path_with_namespace")));
		if (u->n > 0 && !u->confirmed)
			st = CORE_ECONFLICT;
	}
	PQclear(r);
	return st;
}

/* Audit, mark for apply, commit. On failure the transaction is rolled back by store_put. */
static enum core_status finish(struct store_conn *c, const char *actor, const char *action, const char *target,
                               struct json_object *before, const struct scope *sc, struct gateconfig_marked *marked)
{
	struct json_object *after = NULL, *details = NULL;
	if (sc->ungate) { /* what the change stopped gating, and that the user confirmed it when it did */
		details = jx_object();
		json_object_object_add(details, "ungated", jx_int(sc->ungate->n));
		json_object_object_add(details, "confirm_ungate", jx_bool(sc->ungate->confirmed));
	}
	enum core_status st = gateconfig_snapshot(c, sc->group, sc->ids, sc->n_ids, sc->all, &after);
	if (st == CORE_OK)
		st = audit_write(c, actor, action, target, before, after, details);
	if (st == CORE_OK)
		st = gateconfig_mark_apply(c, sc->all, sc->group, sc->ids, sc->n_ids, NULL, 0, false, marked);
	if (st == CORE_OK)
		st = store_commit(c);
	if (st != CORE_OK)
		gateconfig_marked_clear(marked);
	json_object_put(after);
	json_object_put(details);
	return st;
}

/*
 * One change of the config in one transaction: snapshot the scope before, run sql with p (CORE_ENOTFOUND when it
 * must return a row and returns none), then audit, mark for apply and commit (finish).
 */
static enum core_status change(struct store *db, const struct scope *sc, const char *sql, const struct store_params *p,
                               bool must_hit, const char *actor, const char *action, const char *target,
                               struct gateconfig_marked *marked)
{
	struct store_conn *c = NULL;
	struct json_object *before = NULL;
	PGresult *r = NULL;
	if (marked)
		memset(marked, 0, sizeof(*marked));
	char *gated = NULL;
	enum core_status st = store_get_begin(db, &c);
	if (st == CORE_OK)
		st = gateconfig_snapshot(c, sc->group, sc->ids, sc->n_ids, sc->all, &before);
	if (st == CORE_OK && sc->ungate)
		st = gated_now(c, sc, &gated);
	if (st == CORE_OK)
		st = store_run(c, sql, p, &r);
	if (st == CORE_OK && must_hit && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK && sc->ungate)
		st = ungated_by(c, sc, gated);
	if (st == CORE_OK)
		st = finish(c, actor, action, target, before, sc, marked);
	PQclear(r);
	store_put(db, c); /* rolls back what was not committed */
	json_object_put(before);
	free(gated);
	return st;
}

static const char *js(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

#define CONFIG_COLS "config, " STORE_TS("updated_at") " AS updated_at, updated_by"

/*
 * What the last sync listed at a group config's path (config_groups g): 'group', 'repository' (the config covers
 * nothing: an older mrgate stored such configs), or NULL (not listed: its repositories are gated once a sync lists
 * them, or never if the path is a typo or the group is gone).
 */
#define LISTED_AS_COL                                                                                                  \
	" CASE WHEN EXISTS (SELECT 1 FROM gitlab_groups WHERE lower(full_path) = lower(g.path) AND removed_at IS "     \
	"NULL)"                                                                                                        \
	" THEN 'group' WHEN EXISTS (SELECT 1 FROM repo_status_stored WHERE path_with_namespace ILIKE"                  \
	"  replace(replace(replace(g.path, '\\', '\\\\'), '%', '\\%'), '_', '\\_') AND status <> 'removed')"           \
	" THEN 'repository' END AS listed_as"

enum core_status gateconfig_get_default(struct store *db, struct json_object **out)
{
	enum core_status st = rows_query_one(db, "SELECT " CONFIG_COLS " FROM config_default", NULL, out);
	return st == CORE_ENOTFOUND ? CORE_EINTERNAL : st;
}

/* The built-in defaults with cfg's members over them (a new tree). */
static struct json_object *over_builtin(struct json_object *cfg)
{
	struct json_object *full = gateconfig_builtin();
	json_object_object_foreach(cfg, key, val) json_object_object_add(full, key, json_object_get(val));
	return full;
}

enum core_status gateconfig_put_default(struct store *db, struct json_object *cfg, const char *actor,
                                        struct gateconfig_marked *marked, struct json_object **out)
{
	struct json_object *full = over_builtin(cfg);
	struct store_params p = {0};
	struct scope sc = {.all = true};
	*out = NULL;
	store_param_str(&p, js(full));
	store_param_str(&p, actor);
	enum core_status st =
	    change(db, &sc, "UPDATE config_default SET config = $1::jsonb, updated_at = now(), updated_by = $2", &p,
	           false, actor, "config.default.update", "default", marked);
	json_object_put(full);
	return st == CORE_OK ? gateconfig_get_default(db, out) : st;
}

/* One segment of a group path by GitLab's namespace rule: letters, digits, "_", "-", "."; it does not start with
 * "-", does not end with "." (so neither "." nor ".." is one) and does not end in ".git" or ".atom". */
static bool group_segment_valid(const char *s, size_t n)
{
	if (n == 0 || n > 255 || s[0] == '-' || s[n - 1] == '.') /* GitLab's paths: at most 255 characters */
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		      ch == '-' || ch == '.'))
			return false;
	}
	return !(n >= 4 && strncasecmp(s + n - 4, ".git", 4) == 0) &&
	       !(n >= 5 && strncasecmp(s + n - 5, ".atom", 5) == 0);
}

bool gateconfig_group_path_valid(const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || n > 1000)
		return false;
	for (const char *seg = path;;) {
		const char *slash = strchr(seg, '/');
		size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
		if (!group_segment_valid(seg, len))
			return false;
		if (!slash)
			return true;
		seg = slash + 1;
	}
}

#define GROUP_SPELLING_SQL                                                                                             \
	"SELECT coalesce(CASE WHEN $2::bool THEN (SELECT path FROM config_groups WHERE path = $1) END,"                \
	" (SELECT full_path FROM gitlab_groups WHERE lower(full_path) = lower($1)"                                     \
	"   ORDER BY removed_at IS NOT NULL, full_path = $1 DESC, full_path COLLATE \"C\" LIMIT 1), $1) AS path"

/* *out from the result r of GROUP_SPELLING_SQL, when st is CORE_OK; st. Clears r. */
static enum core_status spelling_out(enum core_status st, PGresult *r, const char *path, char **out)
{
	if (st == CORE_OK)
		*out = xstrdup(store_str(r, 0, "path") ? store_str(r, 0, "path") : path);
	PQclear(r);
	return st;
}

enum core_status gateconfig_group_spelling(struct store *db, const char *path, bool prefer_stored, char **out)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	*out = NULL;
	store_param_str(&p, path);
	store_param_str(&p, prefer_stored ? "t" : "f");
	enum core_status st = store_run1(db, GROUP_SPELLING_SQL, &p, &r);
	return spelling_out(st, r, path, out);
}

enum core_status gateconfig_group_spelling_on(struct store_conn *c, const char *path, char **out)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	*out = NULL;
	store_param_str(&p, path);
	store_param_str(&p, "f");
	enum core_status st = store_run(c, STORE_PREPARE GROUP_SPELLING_SQL, &p, &r);
	return spelling_out(st, r, path, out);
}

static enum core_status inside_out(enum core_status st, PGresult *r, const char *path, bool *repo_out, char *err,
                                   size_t errlen)
{
	if (repo_out)
		*repo_out = false;
	const char *root = st == CORE_OK ? store_str(r, 0, "root") : NULL;
	if (st == CORE_OK && store_bool(r, 0, "is_repo", false)) {
		if (repo_out)
			*repo_out = true;
		/* a walk stored a group config for demo/demo-00001, a project: it gated nothing, without a word */
		snprintf(err, errlen,
		         "\"%.200s\" is a repository, not a group: a group config covers a group's repositories; "
		         "configure the repository itself (PUT /api/repos/{id}/config, or Configure Scans)",
		         path);
		st = CORE_EINVAL;
	} else if (root && !store_bool(r, 0, "inside", false)) {
		snprintf(err, errlen,
		         "group \"%.100s\" is not in the connected group \"%.100s\": no sync lists a repository of it, "
		         "so its config would never gate anything; use a group under \"%.100s\"",
		         path, root, root);
		st = CORE_EINVAL;
	}
	PQclear(r);
	return st;
}

#define GROUP_INSIDE_SQL                                                                                               \
	"SELECT c.group_full_path AS root,"                                                                            \
	" lower($1) = lower(c.group_full_path) OR starts_with(lower($1), lower(c.group_full_path) || '/') AS inside,"  \
	" EXISTS (SELECT 1 FROM repo_status_stored WHERE path_with_namespace ILIKE"                                    \
	"  replace(replace(replace($1, '\\', '\\\\'), '%', '\\%'), '_', '\\_')"                                        \
	"  AND status <> 'removed') AND NOT EXISTS (SELECT 1 FROM gitlab_groups"                                       \
	"  WHERE lower(full_path) = lower($1) AND removed_at IS NULL) AS is_repo"                                      \
	" FROM (SELECT 1) one LEFT JOIN connection c ON true"

enum core_status gateconfig_group_inside(struct store *db, const char *path, bool *repo_out, char *err, size_t errlen)
{
	PGresult *r = NULL;
	enum core_status st = STORE_RUN1(db, GROUP_INSIDE_SQL, &r, STORE_STR(path));
	return inside_out(st, r, path, repo_out, err, errlen);
}

enum core_status gateconfig_group_inside_on(struct store_conn *c, const char *path, bool *repo_out, char *err,
                                            size_t errlen)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	store_param_str(&p, path);
	enum core_status st = store_run(c, GROUP_INSIDE_SQL, &p, &r);
	return inside_out(st, r, path, repo_out, err, errlen);
}

/* The config stored under path, or under the synced group's spelling of it (gateconfig_group_spelling). */
static enum core_status get_group_spelt(struct store *db, const char *path, bool prefer_stored,
                                        struct json_object **out)
{
	char *spelt = NULL;
	enum core_status st = gateconfig_group_spelling(db, path, prefer_stored, &spelt);
	if (st == CORE_OK) {
		struct store_params p = {0};
		store_param_str(&p, spelt);
		st = rows_query_one(
		    db, "SELECT path, " CONFIG_COLS "," LISTED_AS_COL " FROM config_groups g WHERE path = $1", &p, out);
	}
	free(spelt);
	return st;
}

enum core_status gateconfig_group_listed(struct store *db, const char *path, bool *listed)
{
	PGresult *r = NULL;
	*listed = false;
	enum core_status st = STORE_RUN1(db,
	                                 "SELECT EXISTS (SELECT 1 FROM gitlab_groups WHERE lower(full_path) = lower($1)"
	                                 " AND removed_at IS NULL) AS listed",
	                                 &r, STORE_STR(path));
	if (st == CORE_OK)
		*listed = store_bool(r, 0, "listed", false);
	PQclear(r);
	return st;
}

enum core_status gateconfig_get_group(struct store *db, const char *path, struct json_object **out)
{
	return get_group_spelt(db, path, true, out);
}

enum core_status gateconfig_list_groups(struct store *db, struct json_object **out)
{
	return rows_query_all(
	    db, "SELECT path, " CONFIG_COLS "," LISTED_AS_COL " FROM config_groups g ORDER BY path COLLATE \"C\"", NULL,
	    out);
}

enum core_status gateconfig_put_group(struct store *db, const char *path, struct json_object *cfg, const char *actor,
                                      struct gateconfig_ungate *ungate, struct gateconfig_marked *marked,
                                      struct json_object **out)
{
	*out = NULL;
	if (marked)
		memset(marked, 0, sizeof(*marked));
	if (!gateconfig_group_path_valid(path))
		return CORE_EINVAL;
	char *spelt = NULL;
	enum core_status st = gateconfig_group_spelling(db, path, false, &spelt);
	if (st != CORE_OK)
		return st;
	struct store_params p = {0};
	struct scope sc = {.group = spelt, .ungate = ungate};
	store_param_str(&p, spelt);
	store_param_str(&p, js(cfg));
	store_param_str(&p, actor);
	st = change(db, &sc,
	            "INSERT INTO config_groups (path, config, updated_by) VALUES ($1, $2::jsonb, $3)"
	            " ON CONFLICT (path) DO UPDATE SET config = excluded.config, updated_at = now(),"
	            " updated_by = excluded.updated_by",
	            &p, false, actor, "config.group.update", spelt, marked);
	if (st == CORE_OK)
		st = get_group_spelt(db, spelt, false, out);
	free(spelt);
	return st;
}

enum core_status gateconfig_delete_group(struct store *db, const char *path, const char *actor,
                                         struct gateconfig_ungate *ungate, struct gateconfig_marked *marked)
{
	char *spelt = NULL;
	if (marked)
		memset(marked, 0, sizeof(*marked));
	enum core_status st = gateconfig_group_spelling(db, path, true, &spelt);
	if (st != CORE_OK)
		return st;
	struct store_params p = {0};
	struct scope sc = {.group = spelt, .ungate = ungate};
	store_param_str(&p, spelt);
	st = change(db, &sc, "DELETE FROM config_groups WHERE path = $1 RETURNING path", &p, true, actor,
	            "config.group.delete", spelt, marked);
	free(spelt);
	return st;
}

enum core_status gateconfig_get_repo(struct store *db, int64_t repo_id, struct json_object **out)
{
	struct store_params p = {0};
	store_param_i64(&p, repo_id);
	return rows_query_one(
	    db,
	    "SELECT id AS repo_id, path_with_namespace, coalesce(own_config, '{}') AS config, unmanaged,"
	    " effective_config AS effective, config_sources AS sources, inherited_config AS inherited,"
	    " exception, status FROM repo_status_stored WHERE id = $1",
	    &p, out);
}

static enum core_status repo_exists(struct store *db, int64_t repo_id)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, repo_id);
	enum core_status st = store_run1(db, "SELECT 1 FROM repos WHERE id = $1", &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	PQclear(r);
	return st;
}

enum core_status gateconfig_put_repo(struct store *db, int64_t repo_id, struct json_object *cfg, bool unmanaged,
                                     const char *actor, struct gateconfig_marked *marked, struct json_object **out)
{
	*out = NULL;
	if (marked)
		memset(marked, 0, sizeof(*marked));
	char id[24];
	struct store_params p = {0};
	struct scope sc = {.ids = &repo_id, .n_ids = 1};
	snprintf(id, sizeof(id), "%lld", (long long)repo_id); /* the audit target */
	store_param_i64(&p, repo_id);
	store_param_str(&p, js(cfg));
	store_param_bool(&p, unmanaged);
	store_param_str(&p, actor);
	/* the repo is checked first; a repo removed meanwhile fails the insert on its foreign key */
	enum core_status st = repo_exists(db, repo_id);
	if (st == CORE_OK)
		st = change(
		    db, &sc,
		    "INSERT INTO config_repos (repo_id, config, unmanaged, updated_by) VALUES ($1, $2::jsonb, $3, $4)"
		    " ON CONFLICT (repo_id) DO UPDATE SET config = excluded.config, unmanaged = excluded.unmanaged,"
		    " updated_at = now(), updated_by = excluded.updated_by",
		    &p, false, actor, "config.repo.update", id, marked);
	return st == CORE_OK ? gateconfig_get_repo(db, repo_id, out) : st;
}

enum core_status gateconfig_delete_repo(struct store *db, int64_t repo_id, const char *actor,
                                        struct gateconfig_marked *marked)
{
	char id[24];
	struct store_params p = {0};
	struct scope sc = {.ids = &repo_id, .n_ids = 1};
	snprintf(id, sizeof(id), "%lld", (long long)repo_id); /* the audit target */
	store_param_i64(&p, repo_id);
	return change(db, &sc, "DELETE FROM config_repos WHERE repo_id = $1 RETURNING repo_id", &p, true, actor,
	              "config.repo.delete", id, marked);
}

enum core_status gateconfig_export(struct store *db, struct json_object **out)
{
	PGresult *r = NULL;
	*out = NULL;
	enum core_status st = store_run1(
	    db,
	    "SELECT jsonb_build_object('version', 1,"
	    " 'default', (SELECT config FROM config_default),"
	    " 'groups', (SELECT coalesce(jsonb_object_agg(path, config), '{}') FROM config_groups),"
	    " 'repos', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', cr.repo_id,"
	    "   'path_with_namespace', r.path_with_namespace, 'config', cr.config, 'unmanaged', cr.unmanaged)"
	    "   ORDER BY r.path_with_namespace COLLATE \"C\", cr.repo_id), '[]')"
	    "   FROM config_repos cr JOIN repos r ON r.id = cr.repo_id)) AS doc",
	    NULL, &r);
	if (st == CORE_OK)
		*out = parse_col(r, "doc");
	PQclear(r);
	return st;
}

/* Validate an import document into normalised parts (all new trees). */
static enum core_status import_validate(struct json_object *doc, struct json_object **def_out,
                                        struct json_object **groups_out, struct json_object **repos_out, char *err,
                                        size_t errlen)
{
	char sub[400];
	struct json_object *v = NULL, *def = NULL, *groups = jx_object(), *repos = jx_array();
	enum core_status st = CORE_EINVAL;
	int64_t version = 0;
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		snprintf(err, errlen, "the import must be a JSON object as written by mrgate export");
		goto out;
	}
	json_object_object_foreach(doc, key, val)
	{
		(void)val;
		if (strcmp(key, "version") && strcmp(key, "default") && strcmp(key, "groups") && strcmp(key, "repos")) {
			snprintf(err, errlen, "unknown member \"%.60s\": an import has version, default, groups, repos",
			         key);
			goto out;
		}
	}
	if (!jsonx_int64(doc, "version", &version) || version != 1) {
		snprintf(err, errlen, "member \"version\" must be 1");
		goto out;
	}
	/* the default is replaced whole: left out, null or {}, it would be the built-in one, which gates nothing */
	if (!json_object_object_get_ex(doc, "default", &v)) {
		snprintf(err, errlen,
		         "member \"default\" is missing: an import replaces every config, and without it the default "
		         "would be the built-in one, which gates nothing");
		goto out;
	}
	if (gateconfig_validate_default(v, &def, sub, sizeof(sub)) != CORE_OK) {
		snprintf(err, errlen, "default: %s", sub);
		goto out;
	}
	/* groups and repos are required too: left out, or null, they were read as "none" and ungated every repo that
	 * inherited a group's config ({} and [] say "none" on purpose) */
	if (!json_object_object_get_ex(doc, "groups", &v) || !v) {
		snprintf(err, errlen,
		         "member \"groups\" is %s: an import replaces every config; send {} for no group config",
		         json_object_object_get_ex(doc, "groups", NULL) ? "null" : "missing");
		goto out;
	}
	if (!json_object_object_get_ex(doc, "repos", NULL) || !jsonx_get(doc, "repos")) {
		snprintf(err, errlen,
		         "member \"repos\" is %s: an import replaces every config; send [] for no repository config",
		         json_object_object_get_ex(doc, "repos", NULL) ? "null" : "missing");
		goto out;
	}
	{
		if (!json_object_is_type(v, json_type_object)) {
			snprintf(err, errlen, "member \"groups\" must be an object of group path to config");
			goto out;
		}
		json_object_object_foreach(v, path, gcfg)
		{
			struct json_object *norm = NULL;
			if (!gateconfig_group_path_valid(path)) {
				snprintf(err, errlen, "groups: \"%.100s\" is not a GitLab group path", path);
				goto out;
			}
			if (gateconfig_validate(gcfg, &norm, sub, sizeof(sub)) != CORE_OK) {
				snprintf(err, errlen, "groups[\"%.100s\"]: %s", path, sub);
				goto out;
			}
			if (json_object_object_length(norm) == 0) {
				json_object_put(norm);
				snprintf(err, errlen,
				         "groups[\"%.100s\"]: a group config sets at least one field (a field left "
				         "out or null is inherited); to inherit everything, leave the group out",
				         path);
				goto out;
			}
			json_object_object_add(groups, path, norm);
		}
	}
	if ((v = jsonx_get(doc, "repos")) != NULL) {
		if (!json_object_is_type(v, json_type_array)) {
			snprintf(err, errlen, "member \"repos\" must be an array");
			goto out;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *e = json_object_array_get_idx(v, i), *cfg = NULL, *norm = NULL;
			int64_t id;
			bool unmanaged = false;
			if (!jsonx_int64(e, "id", &id) || id <= 0) {
				snprintf(err, errlen, "repos[%zu]: member \"id\" must be a positive integer", i);
				goto out;
			}
			json_object_object_foreach(e, key, val)
			{
				(void)val;
				if (strcmp(key, "id") && strcmp(key, "path_with_namespace") && strcmp(key, "config") &&
				    strcmp(key, "unmanaged")) {
					snprintf(err, errlen,
					         "repos[%zu] (id %" PRId64
					         "): unknown member \"%.60s\": an entry has id, "
					         "path_with_namespace, config, unmanaged",
					         i, id, key);
					goto out;
				}
			}
			if (jsonx_get(e, "unmanaged") && !jsonx_bool(e, "unmanaged", &unmanaged)) {
				snprintf(err, errlen, "repos[%zu]: member \"unmanaged\" must be true or false", i);
				goto out;
			}
			/* the repo's own config, said outright: missing or null it was read as {} (none of its own) */
			if (!(cfg = jsonx_get(e, "config"))) {
				snprintf(err, errlen,
				         "repos[%zu] (id %" PRId64
				         "): member \"config\" is %s: send the repo's own config, "
				         "{} for none",
				         i, id, json_object_object_get_ex(e, "config", NULL) ? "null" : "missing");
				goto out;
			}
			if (gateconfig_validate(cfg, &norm, sub, sizeof(sub)) != CORE_OK) {
				snprintf(err, errlen, "repos[%zu].config: %s", i, sub);
				goto out;
			}

			const char *given = NULL;
			if (jsonx_get(e, "path_with_namespace") && !jsonx_str(e, "path_with_namespace", &given)) {
				json_object_put(norm);
				snprintf(err, errlen, "repos[%zu]: member \"path_with_namespace\" must be a string", i);
				goto out;
			}
			struct json_object *row = jx_object();
			json_object_object_add(row, "id", jx_int(id));
			if (given) /* checked against the repo's path (a walk's entry named one repo, its id another) */
				json_object_object_add(row, "path", jx_str(given));
			json_object_object_add(row, "config", norm ? norm : jx_object());
			json_object_object_add(row, "unmanaged", jx_bool(unmanaged));
			json_object_array_add(repos, row);
		}
	}
	*def_out = def;
	*groups_out = groups;
	*repos_out = repos;
	def = groups = repos = NULL;
	st = CORE_OK;
out:
	json_object_put(def);
	json_object_put(groups);
	json_object_put(repos);
	return st;
}

/* CORE_EINVAL (err says which) when a repo of the import's repos array is not known, has another path than its
 * entry says, or is listed twice. */
static enum core_status all_known(struct store_conn *c, struct json_object *repos, char *err, size_t errlen)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_str(&p, js(repos));
	enum core_status st = store_run(c,
	                                "SELECT (e->>'id')::bigint AS id FROM jsonb_array_elements($1::jsonb) e"
	                                " WHERE NOT EXISTS (SELECT 1 FROM repos r WHERE r.id = (e->>'id')::bigint)"
	                                " LIMIT 1",
	                                &p, &r);
	const char *unknown = st == CORE_OK && PQntuples(r) > 0 ? store_str(r, 0, "id") : NULL;
	if (unknown) {
		snprintf(err, errlen, "repos: no repository with id %s is known; run a sync first or remove it",
		         unknown);
		st = CORE_EINVAL;
	}
	PQclear(r);
	r = NULL;
	/* an entry whose path names another repository than its id: which one was meant is a guess */
	if (st == CORE_OK)
		st = store_run(c,
		               "SELECT e->>'id' AS id, e->>'path' AS given, r.path_with_namespace AS path"
		               " FROM jsonb_array_elements($1::jsonb) e JOIN repos r ON r.id = (e->>'id')::bigint"
		               " WHERE e ? 'path' AND lower(e->>'path') <> lower(r.path_with_namespace) LIMIT 1",
		               &p, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		snprintf(err, errlen,
		         "repos: repository %s is %.200s, not %.200s as its entry says: correct the entry (or leave "
		         "its path_with_namespace out)",
		         store_str(r, 0, "id"), store_str(r, 0, "path"), store_str(r, 0, "given"));
		st = CORE_EINVAL;
	}
	PQclear(r);
	r = NULL;
	/* a repository listed twice: which entry counts would be the statement's guess */
	if (st == CORE_OK)
		st = store_run(c,
		               "SELECT e->>'id' AS id FROM jsonb_array_elements($1::jsonb) e"
		               " GROUP BY e->>'id' HAVING count(*) > 1 LIMIT 1",
		               &p, &r);
	const char *twice = st == CORE_OK && PQntuples(r) > 0 ? store_str(r, 0, "id") : NULL;
	if (twice) {
		snprintf(err, errlen, "repos: repository %s is listed more than once; list each repository once",
		         twice);
		st = CORE_EINVAL;
	}
	PQclear(r);
	return st;
}

enum core_status gateconfig_import(struct store *db, struct json_object *doc, const char *actor,
                                   struct gateconfig_marked *marked, char *err, size_t errlen)
{
	if (marked)
		memset(marked, 0, sizeof(*marked));
	struct json_object *def = NULL, *groups = NULL, *repos = NULL, *before = NULL, *full = NULL, *spelt = NULL;
	struct store_conn *c = NULL;
	enum core_status st = import_validate(doc, &def, &groups, &repos, err, errlen);
	if (st != CORE_OK)
		return st;
	full = over_builtin(def);
	if ((st = store_get_begin(db, &c)) != CORE_OK)
		goto out;
	/* every repo named must be known: checked before anything is written */
	struct store_params pd = {0}, pg = {0}, prr = {0}, pgk = {0}, prk = {0};
	if ((st = all_known(c, repos, err, errlen)) != CORE_OK)
		goto out;
	/* each group under GitLab's spelling, as a PUT stores it: stored as typed ("DEMO/Team02") it matched none of
	 * its repos and a walk's import ungated the whole group; two spellings of one group are refused */
	spelt = jx_object();
	json_object_object_foreach(groups, path, gcfg)
	{
		char sub[400], *sp = NULL;
		if ((st = gateconfig_group_inside_on(c, path, NULL, sub, sizeof(sub))) != CORE_OK) {
			if (st == CORE_EINVAL)
				snprintf(err, errlen, "groups: %s", sub);
			goto out;
		}
		if ((st = gateconfig_group_spelling_on(c, path, &sp)) != CORE_OK)
			goto out;
		if (jsonx_get(spelt, sp)) {
			snprintf(err, errlen,
			         "groups: \"%.100s\" names the group \"%.100s\" again (GitLab's paths ignore case): "
			         "keep one of its configs",
			         path, sp);
			free(sp);
			st = CORE_EINVAL;
			goto out;
		}
		json_object_object_add(spelt, sp, json_object_get(gcfg));
		free(sp);
	}
	if ((st = gateconfig_snapshot(c, NULL, NULL, 0, true, &before)) != CORE_OK)
		goto out;
	store_param_str(&pd, js(full));
	store_param_str(&pd, actor);
	store_param_str(&pg, js(spelt));
	store_param_str(&pg, actor);
	store_param_str(&prr, js(repos));
	store_param_str(&prr, actor);
	store_param_str(&pgk, js(spelt));
	store_param_str(&prk, js(repos));
	/* the configs the file holds unchanged keep who changed them and when (a walk's re-import of its export made
	 * every config "changed" by the importer, now) */
	if ((st = store_run(c,
	                    "UPDATE config_default SET config = $1::jsonb, updated_at = now(), updated_by = $2"
	                    " WHERE config IS DISTINCT FROM $1::jsonb",
	                    &pd, NULL)) != CORE_OK ||
	    (st = store_run(c, "DELETE FROM config_groups WHERE NOT $1::jsonb ? path", &pgk, NULL)) != CORE_OK ||
	    (st = store_run(
	         c,
	         "INSERT INTO config_groups (path, config, updated_by)"
	         " SELECT key, value, $2 FROM jsonb_each($1::jsonb)"
	         " ON CONFLICT (path) DO UPDATE SET config = excluded.config, updated_at = now(),"
	         " updated_by = excluded.updated_by WHERE config_groups.config IS DISTINCT FROM excluded.config",
	         &pg, NULL)) != CORE_OK ||
	    (st = store_run(c,
	                    "DELETE FROM config_repos WHERE repo_id NOT IN"
	                    " (SELECT (e->>'id')::bigint FROM jsonb_array_elements($1::jsonb) e)",
	                    &prk, NULL)) != CORE_OK ||
	    (st = store_run(
	         c,
	         "INSERT INTO config_repos AS r (repo_id, config, unmanaged, updated_by)"
	         " SELECT (e->>'id')::bigint, e->'config', (e->>'unmanaged')::boolean, $2"
	         " FROM jsonb_array_elements($1::jsonb) e"
	         " ON CONFLICT (repo_id) DO UPDATE SET config = excluded.config, unmanaged = excluded.unmanaged,"
	         " updated_at = now(), updated_by = excluded.updated_by"
	         " WHERE (r.config, r.unmanaged) IS DISTINCT FROM (excluded.config, excluded.unmanaged)",
	         &prr, NULL)) != CORE_OK)
		goto out;
	struct scope all = {.all = true};
	st = finish(c, actor, "config.import", NULL, before, &all, marked);
out:
	if (st != CORE_OK && st != CORE_EINVAL)
		snprintf(err, errlen, "could not store the import: %s", c ? store_last_error(c) : "no database");
	store_put(db, c);
	json_object_put(def);
	json_object_put(groups);
	json_object_put(repos);
	json_object_put(before);
	json_object_put(full);
	json_object_put(spelt);
	return st;
}
