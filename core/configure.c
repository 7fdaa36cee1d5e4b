/*
 * core/configure.c
 *    Bulk configuration of a selection of repos.
 */
#include "configure.h"

#include "audit.h"
#include "jsonx.h"
#include "pathglob.h"

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

/* "{a,b}" of the config's keys (from the fixed field list, so no quoting is needed). */
static void keys_array(struct json_object *cfg, char *buf, size_t cap)
{
	size_t len = 0;
	buf[len++] = '{';
	buf[len] = '\0';
	json_object_object_foreach(cfg, key, val)
	{
		(void)val;
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", len > 1 ? "," : "", key);
	}
	snprintf(buf + len, cap - len, "}");
}

static const char *js(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

enum core_status configure_run(struct store *db, const struct configure_req *req, struct configure_out *out, char *err,
                               size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct json_object *cfg = NULL, *before = NULL, *after = NULL, *details = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	int64_t *ids = NULL;
	char *idarr = NULL;
	size_t n = 0, skipped = 0;
	char keys[200];
	enum core_status st = gateconfig_validate(req->config, &cfg, err, errlen);
	if (st != CORE_OK)
		return st;
	if (json_object_object_length(cfg) == 0 && !req->reapply) {
		snprintf(err, errlen,
		         "the config sets no field: nothing to configure (set at least one of enabled, "
		         "fail_on, scans, block_merge, comment, ignore_paths, or send reapply)");
		st = CORE_EINVAL;
		goto out;
	}
	keys_array(cfg, keys, sizeof(keys));

	char why[120];
	if (req->path_glob && *req->path_glob && !pathglob_check(req->path_glob, why, sizeof(why))) {
		snprintf(err, errlen, "the path pattern \"%.100s\" is not a valid glob: %s", req->path_glob, why);
		st = CORE_EINVAL;
		goto out;
	}
	const struct repos_filter *f = &req->filter;
	bool f_group = f->group && *f->group;
	bool f_other =
	    (f->q && *f->q) || (f->status && *f->status) || f->archived >= 0 || (req->path_glob && *req->path_glob);
	const char *level = req->ids ? "repos" : f_other ? "repos" : f_group ? "group" : "default";
	if (f_group && !req->ids && !gateconfig_group_path_valid(f->group)) {
		snprintf(err, errlen, "\"%.100s\" is not a GitLab group path", f->group);
		st = CORE_EINVAL;
		goto out;
	}

	if ((st = store_get(db, &c)) != CORE_OK || (st = store_begin(c)) != CORE_OK)
		goto out;
	/* resolve the selection */
	struct repos_filter sel;
	if (req->ids) {
		memset(&sel, 0, sizeof(sel));
		sel.archived = -1;
		sel.ids = req->ids;
		sel.n_ids = (int)req->n_ids;
	} else {
		sel = *f;
		sel.ids = NULL;
	}
	if ((st = repos_select(c, &sel, &r, err, errlen)) != CORE_OK)
		goto out;
	int rows = PQntuples(r);
	ids = malloc(((size_t)rows + 1) * sizeof(int64_t));
	if (!ids) {
		st = CORE_ENOMEM;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		const char *path = store_str(r, i, "path_with_namespace");
		if (req->path_glob && *req->path_glob && !req->ids && !pathglob_match(req->path_glob, path))
			continue;
		const char *status = store_str(r, i, "status");
		if (status && (strcmp(status, "archived") == 0 || strcmp(status, "pending_deletion") == 0))
			skipped++;
		ids[n++] = store_i64(r, i, "id", 0);
	}
	PQclear(r);
	r = NULL;
	if (n == 0 && strcmp(level, "repos") == 0) {
		snprintf(err, errlen, "the selection matches no repository");
		st = CORE_EINVAL;
		goto out;
	}
	if (!(idarr = store_int64_array(ids, n))) {
		st = CORE_ENOMEM;
		goto out;
	}
	bool all = strcmp(level, "default") == 0;
	const char *group = strcmp(level, "group") == 0 ? f->group : NULL;
	if ((st = gateconfig_snapshot(c, group, strcmp(level, "repos") == 0 ? ids : NULL, n, all, &before)) != CORE_OK)
		goto out;

	if (all) {
		const char *p[] = {js(cfg), req->actor};
		const char *pk[] = {keys};
		if ((st = store_exec(c,
		                     "UPDATE config_default SET config = config || $1::jsonb, updated_at = now(),"
		                     " updated_by = $2",
		                     2, p, NULL)) != CORE_OK ||
		    (st = store_exec(c,
		                     "UPDATE config_groups SET config = config - $1::text[] WHERE config ?| $1::text[]",
		                     1, pk, NULL)) != CORE_OK ||
		    (st = store_exec(c,
		                     "UPDATE config_repos SET config = config - $1::text[] WHERE config ?| $1::text[]",
		                     1, pk, NULL)) != CORE_OK)
			goto out;
	} else if (group) {
		const char *p[] = {js(cfg), keys, req->actor, group};
		const char *pi[] = {js(cfg), req->actor, group};
		if ((st = store_exec(
		         c,
		         "INSERT INTO config_groups (path, config, updated_by) VALUES ($3, $1::jsonb, $2)"
		         " ON CONFLICT (path) DO UPDATE SET config = config_groups.config || excluded.config,"
		         " updated_at = now(), updated_by = excluded.updated_by",
		         3, pi, NULL)) != CORE_OK ||
		    (st = store_exec(c,
		                     "UPDATE config_groups SET config = config - $1::text[], updated_at = now(),"
		                     " updated_by = $2 WHERE config ?| $1::text[] AND path LIKE"
		                     " replace(replace(replace($3, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '/%'",
		                     3, p + 1, NULL)) != CORE_OK)
			goto out;
		const char *p2[] = {keys, idarr, req->actor};
		if ((st = store_exec(c,
		                     "UPDATE config_repos SET config = config - $1::text[], updated_at = now(),"
		                     " updated_by = $3 WHERE config ?| $1::text[] AND repo_id = ANY ($2::bigint[])",
		                     3, p2, NULL)) != CORE_OK)
			goto out;
	} else {
		const char *p[] = {js(cfg), idarr, req->actor};
		if ((st = store_exec(
		         c,
		         "INSERT INTO config_repos (repo_id, config, updated_by)"
		         " SELECT unnest($2::bigint[]), $1::jsonb, $3"
		         " ON CONFLICT (repo_id) DO UPDATE SET config = config_repos.config || excluded.config,"
		         " updated_at = now(), updated_by = excluded.updated_by",
		         3, p, NULL)) != CORE_OK)
			goto out;
		/* keep only what differs from the inherited config */
		const char *p2[] = {idarr};
		if ((st = store_exec(
		         c,
		         "UPDATE config_repos c SET config = coalesce((SELECT jsonb_object_agg(f.key, f.value)"
		         "  FROM jsonb_each(c.config) f WHERE rs.inherited_config -> f.key IS DISTINCT FROM f.value),"
		         "  '{}') FROM repo_status rs WHERE rs.id = c.repo_id AND c.repo_id = ANY ($1::bigint[])",
		         1, p2, NULL)) != CORE_OK ||
		    (st = store_exec(c,
		                     "DELETE FROM config_repos WHERE repo_id = ANY ($1::bigint[]) AND config = '{}'"
		                     " AND NOT unmanaged",
		                     1, p2, NULL)) != CORE_OK)
			goto out;
	}
	if ((st = gateconfig_snapshot(c, group, strcmp(level, "repos") == 0 ? ids : NULL, n, all, &after)) != CORE_OK)
		goto out;
	details = json_object_new_object();
	json_object_object_add(details, "level", json_object_new_string(level));
	json_object_object_add(details, "selected", json_object_new_int64((int64_t)n));
	json_object_object_add(details, "config", json_object_get(cfg));
	json_object_object_add(details, "reapply", json_object_new_boolean(req->reapply));
	if ((st = audit_write(c, req->actor, "config.configure", group ? group : level, before, after, details)) !=
	    CORE_OK)
		goto out;

	size_t to_apply = 0;
	if (req->dry_run) {
		/* the repos gateconfig_mark_apply() would mark: in the selection, GitLab state changing (or reapply) */
		const char *p[] = {idarr, req->reapply ? "t" : "f"};
		if ((st = store_exec(c,
		                     "SELECT id, path_with_namespace, gitlab_want FROM repo_status"
		                     " WHERE status NOT IN ('removed', 'archived', 'pending_deletion')"
		                     "   AND id = ANY ($1::bigint[]) AND (gitlab_want <> gitlab_have OR $2::boolean)"
		                     " ORDER BY id",
		                     2, p, &r)) != CORE_OK)
			goto out;
		int k = PQntuples(r);
		out->plan_ids = malloc(((size_t)k + 1) * sizeof(int64_t));
		out->plan_wants = malloc(((size_t)k + 1) * sizeof(struct apply_want));
		out->plan_paths = calloc((size_t)k + 1, sizeof(char *));
		out->n_plan_paths = out->plan_paths ? (size_t)k : 0;
		if (!out->plan_ids || !out->plan_wants || !out->plan_paths) {
			st = CORE_ENOMEM;
			goto out;
		}
		for (int i = 0; i < k; i++) {
			const char *w = store_str(r, i, "gitlab_want");
			out->plan_ids[i] = store_i64(r, i, "id", 0);
			const char *path = store_str(r, i, "path_with_namespace");
			if (!(out->plan_paths[i] = strdup(path ? path : ""))) {
				st = CORE_ENOMEM;
				goto out;
			}
			out->plan_wants[i].hook = w && strcmp(w, "off") != 0;
			out->plan_wants[i].block_merge = w && strcmp(w, "hook+merge") == 0;
		}
		out->n_plan = (size_t)k;
		to_apply = (size_t)k;
		store_rollback(c); /* a dry run writes nothing */
	} else {
		if ((st = gateconfig_mark_apply(c, all, group, strcmp(level, "repos") == 0 ? ids : NULL, n,
		                                req->reapply ? ids : NULL, req->reapply ? n : 0, &out->marked)) !=
		        CORE_OK ||
		    (st = store_commit(c)) != CORE_OK)
			goto out;
		to_apply = out->marked.n;
	}
	out->summary = json_object_new_object();
	json_object_object_add(out->summary, "level", json_object_new_string(level));
	json_object_object_add(out->summary, "target", group ? json_object_new_string(group) : NULL);
	json_object_object_add(out->summary, "config", json_object_get(cfg));
	json_object_object_add(out->summary, "selected", json_object_new_int64((int64_t)n));
	json_object_object_add(out->summary, "skipped", json_object_new_int64((int64_t)skipped));
	json_object_object_add(out->summary, "to_apply", json_object_new_int64((int64_t)to_apply));
	json_object_object_add(out->summary, "unchanged_on_gitlab",
	                       json_object_new_int64(n > skipped + to_apply ? (int64_t)(n - skipped - to_apply) : 0));
out:
	if (st != CORE_OK)
		configure_out_clear(out);
	PQclear(r);
	store_put(db, c); /* rolls back an open transaction */
	json_object_put(cfg);
	json_object_put(before);
	json_object_put(after);
	json_object_put(details);
	free(ids);
	free(idarr);
	return st;
}
