/*
 * core/configure.c
 *    Bulk configuration of a selection of repos (see configure.h): resolve the level, select the repos, write the
 *    config between two snapshots for the audit, then mark the repos for apply (or, in a dry run, list them and
 *    roll back).
 */
#include "configure.h"

#include "audit.h"
#include "buf.h"
#include "crypto.h"
#include "jsonx.h"
#include "pathglob.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void configure_out_clear(struct configure_out *o)
{
	if (!o)
		return;
	json_object_put(o->summary);
	gateconfig_marked_clear(&o->marked);
	free(o->plan_ids);
	free(o->plan_wants);
	for (size_t i = 0; o->plan_paths && i < o->n_plan_paths; i++)
		free(o->plan_paths[i]);
	free(o->plan_paths);
	memset(o, 0, sizeof(*o));
}

/* One configure in progress. */
struct run {
	const struct configure_req *req;
	struct store_conn *c;
	struct json_object *cfg; /* the validated config (owned) */
	const char *cfg_json;    /* its text (borrowed from cfg) */
	const char *level;       /* "default" | "group" | "repos" */
	const char *group;       /* level "group": the group path (borrowed from req) */
	bool all;                /* level "default" */
	int64_t *ids;            /* the selected repos (owned) */
	size_t n, skipped;       /* how many; of which archived or pending deletion */
	struct buf keys;         /* "{a,b}": the config's field names as a text[] */
	struct buf idarr;        /* "{1,2}": ids as a bigint[] */
	/* the more specific configs inside the selection whose fields the config replaced (they set one of them) */
	int64_t over_groups, over_repos;
	struct json_object *over_paths; /* owned: the first OVERRIDDEN_PATHS_MAX of their paths, groups first */
	struct buf over_all;            /* every one of their paths, one a line, groups first: the summary's digest */
	bool bad_selection;             /* a CORE_EINVAL of the selection's, not of the config's */
};

#define OVERRIDDEN_PATHS_MAX 10

/* Validate the request and find the level it writes at. CORE_EINVAL with err. */
static enum core_status resolve(struct run *u, char *err, size_t errlen)
{
	const struct configure_req *req = u->req;
	enum core_status st = gateconfig_validate(req->config, &u->cfg, err, errlen);
	if (st != CORE_OK)
		return st;
	if (json_object_object_length(u->cfg) == 0 && !req->reapply) {
		snprintf(err, errlen,
		         "the config sets no field: nothing to configure (set at least one of enabled, "
		         "fail_on, scans, block_merge, comment, ignore_paths, or send reapply)");
		return CORE_EINVAL;
	}
	u->cfg_json = json_object_to_json_string_ext(u->cfg, JSON_C_TO_STRING_PLAIN);
	/* the field names come from the fixed field list, so no quoting is needed */
	buf_putc(&u->keys, '{');
	json_object_object_foreach(u->cfg, key, val)
	{
		(void)val;
		buf_printf(&u->keys, "%s%s", u->keys.len > 1 ? "," : "", key);
	}
	buf_putc(&u->keys, '}');

	char why[120];
	bool glob = req->path_glob && *req->path_glob;
	if (glob && !pathglob_check(req->path_glob, why, sizeof(why))) {
		snprintf(err, errlen, "the path pattern \"%.100s\" is not a valid glob: %s", req->path_glob, why);
		u->bad_selection = true;
		return CORE_EINVAL;
	}
	const struct repos_filter *f = &req->filter;
	bool f_group = f->group && *f->group;
	bool f_other = (f->q && *f->q) || (f->status && *f->status) || f->archived >= 0 || glob;
	u->level = req->ids ? "repos" : f_other ? "repos" : f_group ? "group" : "default";
	if (f_group && !req->ids && !gateconfig_group_path_valid(f->group)) {
		snprintf(err, errlen, "\"%.100s\" is not a GitLab group path", f->group);
		u->bad_selection = true;
		return CORE_EINVAL;
	}
	u->all = strcmp(u->level, "default") == 0;
	u->group = strcmp(u->level, "group") == 0 ? f->group : NULL;
	return CORE_OK;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * CORE_EINVAL naming the ids of the request that are no repository's (a walk's [1000, 999999] configured 1000 and
 * said nothing of the other): a typo must not leave a repository ungated while the answer reads as done.
 */
static enum core_status ids_all_found(struct run *u, char *err, size_t errlen)
{
	const struct configure_req *req = u->req;
	int64_t *want = xmalloc((req->n_ids + 1) * sizeof(int64_t)), *have = xmalloc((u->n + 1) * sizeof(int64_t));
	memcpy(want, req->ids, req->n_ids * sizeof(int64_t));
	memcpy(have, u->ids, u->n * sizeof(int64_t));
	qsort(want, req->n_ids, sizeof(int64_t), cmp_i64);
	qsort(have, u->n, sizeof(int64_t), cmp_i64);
	struct buf missing = {0};
	size_t n_missing = 0, j = 0;
	for (size_t i = 0; i < req->n_ids; i++) {
		if (i > 0 && want[i] == want[i - 1])
			continue;
		while (j < u->n && have[j] < want[i])
			j++;
		if (j < u->n && have[j] == want[i])
			continue;
		if (n_missing++ < 5)
			buf_printf(&missing, "%s%lld", n_missing > 1 ? ", " : "", (long long)want[i]);
	}
	if (n_missing > 5)
		buf_printf(&missing, " and %zu more", n_missing - 5);
	enum core_status st = CORE_OK;
	if (n_missing) {
		snprintf(err, errlen,
		         "no repository has the id%s %s (GET /api/repos lists them): nothing was configured",
		         n_missing > 1 ? "s" : "", buf_str(&missing));
		u->bad_selection = true;
		st = CORE_EINVAL;
	}
	buf_free(&missing);
	free(want);
	free(have);
	return st;
}

/* The selected repos into u->ids (ids, or the filter and the glob). CORE_EINVAL with err when none is. */
static enum core_status select_repos(struct run *u, char *err, size_t errlen)
{
	const struct configure_req *req = u->req;
	struct repos_filter sel;
	PGresult *r = NULL;
	if (req->ids) {
		memset(&sel, 0, sizeof(sel));
		sel.archived = -1;
		sel.ids = req->ids;
		sel.n_ids = (int)req->n_ids;
	} else {
		sel = req->filter;
		sel.ids = NULL;
	}
	enum core_status st = repos_select(u->c, &sel, &r, err, errlen);
	u->bad_selection = st == CORE_EINVAL; /* an unknown status */
	if (st != CORE_OK)
		return st;
	int rows = PQntuples(r);
	u->ids = xmalloc(((size_t)rows + 1) * sizeof(int64_t));
	for (int i = 0; i < rows; i++) {
		const char *path = store_str(r, i, "path_with_namespace");
		if (req->path_glob && *req->path_glob && !req->ids && !pathglob_match(req->path_glob, path))
			continue;
		const char *status = store_str(r, i, "status");
		if (status && (strcmp(status, "archived") == 0 || strcmp(status, "pending_deletion") == 0))
			u->skipped++;
		u->ids[u->n++] = store_i64(r, i, "id", 0);
	}
	PQclear(r);
	if (req->ids && (st = ids_all_found(u, err, errlen)) != CORE_OK)
		return st;
	if (u->n == 0 && strcmp(u->level, "repos") == 0) {
		snprintf(err, errlen, "the selection matches no repository");
		u->bad_selection = true;
		return CORE_EINVAL;
	}
	buf_putc(&u->idarr, '{');
	for (size_t i = 0; i < u->n; i++)
		buf_printf(&u->idarr, i ? ",%lld" : "%lld", (long long)u->ids[i]);
	buf_putc(&u->idarr, '}');
	return CORE_OK;
}

/* One statement with text parameters (the config, field names, ids as arrays, the actor, a group path). */
static enum core_status exec_texts_v(struct run *u, const char *sql, PGresult **res, int n, va_list ap)
{
	struct store_params p = {0};
	for (int i = 0; i < n; i++)
		store_param_str(&p, va_arg(ap, const char *));
	return store_run(u->c, sql, &p, res);
}

static enum core_status exec_texts(struct run *u, const char *sql, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	enum core_status st = exec_texts_v(u, sql, NULL, n, ap);
	va_end(ap);
	return st;
}

/*
 * An UPDATE that takes the config's fields out of more specific configs, written as
 * "WITH x AS (UPDATE ... RETURNING path) " OVERRIDDEN: *count gets how many it changed, u->over_paths their first
 * paths.
 */
#define OVERRIDDEN " SELECT count(*) AS n, coalesce(jsonb_agg(path ORDER BY path), '[]')::text AS paths FROM x"
static enum core_status exec_overriding(struct run *u, const char *sql, int64_t *count, int n, ...)
{
	PGresult *r = NULL;
	va_list ap;
	va_start(ap, n);
	enum core_status st = exec_texts_v(u, sql, &r, n, ap);
	va_end(ap);
	if (st == CORE_OK && PQntuples(r) == 1) {
		*count += store_i64(r, 0, "n", 0);
		struct json_object *paths = json_tokener_parse(store_str(r, 0, "paths"));
		for (size_t i = 0; paths && i < json_object_array_length(paths); i++) {
			struct json_object *p = json_object_array_get_idx(paths, i);
			buf_printf(&u->over_all, "%s\n", json_object_get_string(p));
			if (json_object_array_length(u->over_paths) < OVERRIDDEN_PATHS_MAX)
				json_object_array_add(u->over_paths, json_object_get(p));
		}
		json_object_put(paths);
	}
	PQclear(r);
	return st;
}

/* The group configs below $1 ("": all) that the fields taken out left with none: they set nothing, and go (the
 * Defaults & groups page listed them as "sets nothing"). */
#define EMPTIED_GROUPS                                                                                                 \
	"DELETE FROM config_groups WHERE config = '{}'::jsonb AND ($1 = '' OR path LIKE"                               \
	" replace(replace(replace($1, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '/%')"

/* Merge the config into the default and take its fields out of every group and repo config. */
static enum core_status write_default(struct run *u)
{
	enum core_status st;
	const char *keys = buf_str(&u->keys);
	if ((st = exec_texts(
	         u, "UPDATE config_default SET config = config || $1::jsonb, updated_at = now(), updated_by = $2", 2,
	         u->cfg_json, u->req->actor)) != CORE_OK ||
	    (st = exec_overriding(u,
	                          "WITH x AS (UPDATE config_groups SET config = config - $1::text[]"
	                          " WHERE config ?| $1::text[] RETURNING path)" OVERRIDDEN,
	                          &u->over_groups, 1, keys)) != CORE_OK ||
	    (st = exec_texts(u, EMPTIED_GROUPS, 1, "")) != CORE_OK)
		return st;
	return exec_overriding(
	    u,
	    "WITH x AS (UPDATE config_repos c SET config = config - $1::text[] FROM repos r"
	    " WHERE r.id = c.repo_id AND c.config ?| $1::text[] RETURNING r.path_with_namespace AS path)" OVERRIDDEN,
	    &u->over_repos, 1, keys);
}

/* Merge the config into the group's and take its fields out of its subgroups' and the selected repos' configs. */
static enum core_status write_group(struct run *u)
{
	enum core_status st;
	const char *keys = buf_str(&u->keys), *actor = u->req->actor;
	if ((st = exec_texts(u,
	                     "INSERT INTO config_groups (path, config, updated_by) VALUES ($3, $1::jsonb, $2)"
	                     " ON CONFLICT (path) DO UPDATE SET config = config_groups.config || excluded.config,"
	                     " updated_at = now(), updated_by = excluded.updated_by"
	                     /* the same config again (a re-apply) writes nothing: no refresh of every repo under it */
	                     " WHERE config_groups.config IS DISTINCT FROM config_groups.config || excluded.config",
	                     3, u->cfg_json, actor, u->group)) != CORE_OK ||
	    (st =
	         exec_overriding(u,
	                         "WITH x AS (UPDATE config_groups SET config = config - $1::text[], updated_at = now(),"
	                         " updated_by = $2 WHERE config ?| $1::text[] AND path LIKE"
	                         " replace(replace(replace($3, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '/%'"
	                         " RETURNING path)" OVERRIDDEN,
	                         &u->over_groups, 3, keys, actor, u->group)) != CORE_OK ||
	    (st = exec_texts(u, EMPTIED_GROUPS, 1, u->group)) != CORE_OK)
		return st;
	return exec_overriding(
	    u,
	    "WITH x AS (UPDATE config_repos c SET config = config - $1::text[], updated_at = now(),"
	    " updated_by = $3 FROM repos r WHERE r.id = c.repo_id AND c.config ?| $1::text[]"
	    " AND c.repo_id = ANY ($2::bigint[]) RETURNING r.path_with_namespace AS path)" OVERRIDDEN,
	    &u->over_repos, 3, keys, buf_str(&u->idarr), actor);
}

/* Merge the config into each selected repo's own config and keep only what differs from what it inherits. */
static enum core_status write_repos(struct run *u)
{
	enum core_status st;
	const char *ids = buf_str(&u->idarr);
	if ((st = exec_texts(u,
	                     "INSERT INTO config_repos (repo_id, config, updated_by)"
	                     " SELECT unnest($2::bigint[]), $1::jsonb, $3"
	                     " ON CONFLICT (repo_id) DO UPDATE SET config = config_repos.config || excluded.config,"
	                     " updated_at = now(), updated_by = excluded.updated_by",
	                     3, u->cfg_json, ids, u->req->actor)) != CORE_OK ||
	    (st = exec_texts(
	         u,
	         "UPDATE config_repos c SET config = coalesce((SELECT jsonb_object_agg(f.key, f.value)"
	         "  FROM jsonb_each(c.config) f WHERE rs.inherited_config -> f.key IS DISTINCT FROM f.value),"
	         "  '{}') FROM repo_status rs WHERE rs.id = c.repo_id AND c.repo_id = ANY ($1::bigint[])",
	         1, ids)) != CORE_OK)
		return st;
	return exec_texts(
	    u, "DELETE FROM config_repos WHERE repo_id = ANY ($1::bigint[]) AND config = '{}' AND NOT unmanaged", 1,
	    ids);
}

/* The level's config written, between snapshots of the configs before and after for one audit entry. */
static enum core_status write_audited(struct run *u)
{
	struct json_object *before = NULL, *after = NULL, *details = NULL;
	const int64_t *repo_ids = strcmp(u->level, "repos") == 0 ? u->ids : NULL;
	enum core_status st = gateconfig_snapshot(u->c, u->group, repo_ids, u->n, u->all, &before);
	if (st != CORE_OK)
		goto out;
	/* a re-apply that sets no field writes no config (it stored an empty group config, which a PUT refuses) */
	if (json_object_object_length(u->cfg) > 0)
		st = u->all ? write_default(u) : u->group ? write_group(u) : write_repos(u);
	if (st != CORE_OK || (st = gateconfig_snapshot(u->c, u->group, repo_ids, u->n, u->all, &after)) != CORE_OK)
		goto out;
	if (json_object_object_length(u->cfg) == 0 && u->n == 0)
		goto out; /* a re-apply of no field to no repository did nothing: no entry says it did */
	details = jx_object();
	json_object_object_add(details, "level", jx_str(u->level));
	json_object_object_add(details, "selected", jx_int((int64_t)u->n));
	json_object_object_add(details, "config", json_object_get(u->cfg));
	json_object_object_add(details, "reapply", jx_bool(u->req->reapply));
	if (u->req->reapply && u->req->resend_hook_tokens)
		json_object_object_add(details, "resend_hook_tokens", jx_bool(1));
	if (repo_ids) {
		/* the repositories' histories list it (repos_history) */
		struct json_object *ids = jx_array();
		for (size_t i = 0; i < u->n; i++)
			json_object_array_add(ids, jx_int(u->ids[i]));
		json_object_object_add(details, "repo_ids", ids);
	}
	st = audit_write(u->c, u->req->actor, "config.configure", u->group ? u->group : u->level, before, after,
	                 details);
out:
	json_object_put(before);
	json_object_put(after);
	json_object_put(details);
	return st;
}

/* Dry run: the repos gateconfig_mark_apply() would mark (in the selection, GitLab state changing, or reapply). */
static enum core_status dry_run_plan(struct run *u, struct configure_out *out)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	store_param_str(&p, buf_str(&u->idarr));
	store_param_bool(&p, u->req->reapply);
	enum core_status st = store_run(u->c,
	                                "SELECT id, path_with_namespace, gitlab_want FROM repo_status"
	                                " WHERE status NOT IN ('removed', 'archived', 'pending_deletion')"
	                                "   AND id = ANY ($1::bigint[]) AND (gitlab_want <> gitlab_have OR $2::boolean)"
	                                " ORDER BY id",
	                                &p, &r);
	if (st != CORE_OK)
		return st;
	size_t k = (size_t)PQntuples(r);
	out->plan_ids = xmalloc((k + 1) * sizeof(int64_t));
	out->plan_wants = xmalloc((k + 1) * sizeof(struct apply_want));
	out->plan_paths = xcalloc(k + 1, sizeof(char *));
	out->n_plan_paths = k;
	for (size_t i = 0; i < k; i++) {
		const char *w = store_str(r, (int)i, "gitlab_want"),
		           *path = store_str(r, (int)i, "path_with_namespace");
		out->plan_ids[i] = store_i64(r, (int)i, "id", 0);
		out->plan_paths[i] = xstrdup(path ? path : "");
		out->plan_wants[i].hook = w && strcmp(w, "off") != 0;
		out->plan_wants[i].block_merge = w && strcmp(w, "hook+merge") == 0;
	}
	out->n_plan = k;
	PQclear(r);
	return CORE_OK;
}

static struct json_object *summary(const struct run *u, size_t to_apply)
{
	struct json_object *o = jx_object();
	size_t n = u->n, skipped = u->skipped;
	json_object_object_add(o, "level", jx_str(u->level));
	json_object_object_add(o, "target", jx_str(u->group));
	json_object_object_add(o, "config", json_object_get(u->cfg));
	json_object_object_add(o, "selected", jx_int((int64_t)n));
	json_object_object_add(o, "skipped", jx_int((int64_t)skipped));
	json_object_object_add(o, "to_apply", jx_int((int64_t)to_apply));
	json_object_object_add(o, "unchanged_on_gitlab",
	                       jx_int(n > skipped + to_apply ? (int64_t)(n - skipped - to_apply) : 0));
	struct json_object *ov = jx_object();
	json_object_object_add(ov, "groups", jx_int(u->over_groups));
	json_object_object_add(ov, "repos", jx_int(u->over_repos));
	json_object_object_add(ov, "paths", json_object_get(u->over_paths));
	char *digest = crypto_sha256_hex(buf_str(&u->over_all), u->over_all.len);
	json_object_object_add(ov, "digest", jx_str(digest));
	free(digest);
	json_object_object_add(o, "overridden", ov);
	return o;
}

bool configure_expect_check(const struct json_object *e, char *err, size_t errlen)
{
	int64_t groups = -1, repos = -1;
	struct json_object *paths = NULL;
	bool ok = e && json_object_is_type(e, json_type_object) && jsonx_int64(e, "groups", &groups) && groups >= 0 &&
	          jsonx_int64(e, "repos", &repos) && repos >= 0 && jsonx_array(e, "paths", &paths);
	for (size_t i = 0; ok && i < json_object_array_length(paths); i++)
		ok = json_object_is_type(json_object_array_get_idx(paths, i), json_type_string);
	const char *digest = NULL;
	if (ok && jsonx_get(e, "digest"))
		ok = jsonx_str(e, "digest", &digest);
	if (ok) {
		json_object_object_foreach((struct json_object *)e, key, val)
		{
			(void)val;
			ok = ok && (!strcmp(key, "groups") || !strcmp(key, "repos") || !strcmp(key, "paths") ||
			            !strcmp(key, "digest"));
		}
	}
	if (!ok)
		snprintf(
		    err, errlen,
		    "field \"expect_overridden\" must be an object {\"groups\": n, \"repos\": n, \"paths\": [...], "
		    "\"digest\": \"...\"} as a dry run's summary.overridden has it");
	return ok;
}

/* Whether the apply replaces no more than the user was shown: with the digest of the paths shown, exactly those;
 * without, no count above the expected one and no path outside the ones listed. */
static bool overrides_expected(const struct run *u, const struct json_object *e)
{
	int64_t groups = 0, repos = 0;
	struct json_object *paths = NULL;
	if (!jsonx_int64(e, "groups", &groups) || !jsonx_int64(e, "repos", &repos) || !jsonx_array(e, "paths", &paths))
		return false;
	/* with the digest of every path shown (a summary has only the first ones): exactly those */
	const char *digest = NULL;
	if (jsonx_str(e, "digest", &digest)) {
		char *now = crypto_sha256_hex(buf_str(&u->over_all), u->over_all.len);
		bool same = strcmp(now, digest) == 0;
		free(now);
		return same;
	}
	if (u->over_groups > groups || u->over_repos > repos)
		return false;
	for (size_t i = 0; i < json_object_array_length(u->over_paths); i++) {
		const char *p = json_object_get_string(json_object_array_get_idx(u->over_paths, i));
		bool seen = false;
		for (size_t k = 0; k < json_object_array_length(paths) && !seen; k++)
			seen = strcmp(p, json_object_get_string(json_object_array_get_idx(paths, k))) == 0;
		if (!seen)
			return false;
	}
	return true;
}

/* "2 subgroup configs and 1 repository exception (a/b, c/d and 1 more)" of what u replaces, into b. */
static void overrides_words(const struct run *u, struct buf *b)
{
	/* groups first, as the paths are; below the default every group config is a group's, below a group a
	 * subgroup's */
	if (u->over_groups)
		buf_printf(b, "%lld %s %s", (long long)u->over_groups, u->all ? "group" : "subgroup",
		           u->over_groups == 1 ? "config" : "configs");
	if (u->over_repos)
		buf_printf(b, "%s%lld repository %s", u->over_groups ? " and " : "", (long long)u->over_repos,
		           u->over_repos == 1 ? "exception" : "exceptions");
	size_t n = json_object_array_length(u->over_paths);
	for (size_t i = 0; i < n; i++)
		buf_printf(b, "%s%s", i ? ", " : " (",
		           json_object_get_string(json_object_array_get_idx(u->over_paths, i)));
	long long more = (long long)(u->over_repos + u->over_groups) - (long long)n;
	if (more > 0)
		buf_printf(b, " and %lld more", more);
	if (n)
		buf_putc(b, ')');
}

/*
 * CORE_ENOTFOUND with err when no sync has listed the group path (or it has gone from GitLab since), unless
 * confirmed: a walk typed "demo/tema01" for demo/team01, got 200 with 0 repositories selected and a stored config
 * that gated nothing. CORE_EINVAL with *outside when the path is neither the connected group nor under it: no sync
 * will ever list a repository of it, confirmed or not.
 */
static enum core_status group_known(struct store *db, const char *path, bool confirmed, bool *outside, char *err,
                                    size_t errlen)
{
	/* a repository's path is no group, confirmed or not (a walk stored one with --new-group: it gated nothing) */
	bool is_repo = false;
	char why[400];
	if (gateconfig_group_inside(db, path, &is_repo, why, sizeof(why)) == CORE_EINVAL && is_repo) {
		snprintf(err, errlen, "%s", why);
		return CORE_EINVAL;
	}
	PGresult *r = NULL;
	enum core_status st = STORE_RUN1(
	    db,
	    "SELECT EXISTS (SELECT 1 FROM gitlab_groups WHERE lower(full_path) = lower($1) AND removed_at IS NULL)"
	    "  AS known, c.group_full_path AS root,"
	    " lower($1) = lower(c.group_full_path) OR starts_with(lower($1), lower(c.group_full_path) || '/') AS inside"
	    " FROM (SELECT 1) one LEFT JOIN connection c ON true",
	    &r, STORE_STR(path));
	if (st == CORE_OK && !store_bool(r, 0, "known", false)) {
		const char *root = store_str(r, 0, "root");
		if (root && !store_bool(r, 0, "inside", false)) {
			snprintf(err, errlen,
			         "group \"%.100s\" is not in the connected group \"%.100s\": no sync lists a "
			         "repository of it, "
			         "so its config would never gate anything; select a group under \"%.100s\"",
			         path, root, root);
			*outside = true;
			st = CORE_EINVAL;
		} else if (!confirmed) {
			snprintf(
			    err, errlen,
			    "no group \"%.100s\" has been listed by a sync (GET /api/groups lists those that have): "
			    "check the path",
			    path);
			st = CORE_ENOTFOUND;
		}
	}
	PQclear(r);
	return st;
}

enum core_status configure_run(struct store *db, const struct configure_req *req, struct configure_out *out, char *err,
                               size_t errlen)
{
	struct configure_req spelt = *req;
	struct run u = {.req = &spelt, .over_paths = jx_array()};
	size_t to_apply = 0;
	char *group = NULL;

	memset(out, 0, sizeof(*out));
	/* a group in another case than GitLab's is that group (gateconfig_group_spelling): its repos, its config */
	enum core_status st = CORE_OK;
	if (req->filter.group && *req->filter.group && gateconfig_group_path_valid(req->filter.group) &&
	    (st = gateconfig_group_spelling(db, req->filter.group, false, &group)) == CORE_OK)
		spelt.filter.group = group;
	if (st == CORE_OK)
		st = resolve(&u, err, errlen);
	bool outside = false;
	if (st == CORE_OK && u.group)
		st = group_known(db, u.group, req->confirm_new_group, &outside, err, errlen);
	if (st != CORE_OK || (st = store_get_begin(db, &u.c)) != CORE_OK ||
	    (st = select_repos(&u, err, errlen)) != CORE_OK || (st = write_audited(&u)) != CORE_OK)
		goto out;
	if (req->dry_run) {
		if ((st = dry_run_plan(&u, out)) != CORE_OK)
			goto out;
		to_apply = out->n_plan;
		store_rollback(u.c); /* a dry run writes nothing */
	} else if (req->expect_overridden && !overrides_expected(&u, req->expect_overridden)) {
		/* the user was not shown all this replaces (a stale preview, or none): nothing is stored */
		struct buf what = {0};
		overrides_words(&u, &what);
		snprintf(
		    err, errlen,
		    "Nothing was stored: this configure replaces what %s set for the fields you change, which you were "
		    "not shown. Look at them, then apply again to replace them.",
		    buf_str(&what));
		buf_free(&what);
		out->summary = summary(&u, 0);
		st = CORE_ECONFLICT;
		goto out;
	} else {
		const int64_t *scope = strcmp(u.level, "repos") == 0 ? u.ids : NULL;
		/* a re-applied repo with nothing to change is checked as a resync checks it: it stays gated meanwhile
		 */
		if ((st = gateconfig_mark_apply(u.c, u.all, u.group, scope, u.n, req->reapply ? u.ids : NULL,
		                                req->reapply ? u.n : 0, req->reapply, &out->marked)) != CORE_OK ||
		    (st = store_commit(u.c)) != CORE_OK)
			goto out;
		to_apply = out->marked.n;
	}
	out->summary = summary(&u, to_apply);
out:
	if (st != CORE_OK) {
		struct json_object *shown = st == CORE_ECONFLICT ? json_object_get(out->summary) : NULL;
		configure_out_clear(out);
		out->summary = shown; /* what the refused apply would have replaced */
		out->bad_selection = st == CORE_EINVAL && u.bad_selection;
		out->outside_group = st == CORE_EINVAL && outside;
	}
	store_put(db, u.c); /* rolls back an open transaction */
	json_object_put(u.cfg);
	json_object_put(u.over_paths);
	buf_free(&u.over_all);
	free(u.ids);
	buf_free(&u.keys);
	buf_free(&u.idarr);
	free(group);
	return st;
}
