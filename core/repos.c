/*
 * core/repos.c
 *    Repository lists and lookups.
 */
#include "repos.h"

#include "jsonx.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const repos_status_names[] = {"ungated",       "gated", "exception", "applying",         "error",
                                          "hook_disabled", "new",   "archived",  "pending_deletion", "removed",
                                          "unmanaged",     NULL};

#define REPO_COLUMNS                                                                                                   \
	"id, path, name, path_with_namespace, namespace_full_path, web_url, default_branch, archived,"                 \
	" marked_for_deletion, access_level, status,"                                                                  \
	" to_char(last_activity_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_activity_at,"                            \
	" to_char(first_seen, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS first_seen,"                                        \
	" to_char(last_seen, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_seen,"                                          \
	" to_char(removed_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS removed_at,"                                        \
	" effective_config, config_sources, exception, unmanaged, apply_result, apply_message,"                        \
	" to_char(applied_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS applied_at,"                                        \
	" (extract(epoch FROM coalesce(last_activity_at, '-infinity'::timestamptz)) * 1000000)::text AS act_key"

static void add_str(struct json_object *o, const char *key, const PGresult *r, int i)
{
	const char *v = store_str(r, i, key);
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* A jsonb column as a JSON tree (NULL when SQL NULL). */
static struct json_object *json_col(const PGresult *r, int i, const char *key)
{
	const char *v = store_str(r, i, key);
	struct json_object *o = NULL;
	if (v && jsonx_parse(v, strlen(v), &o) != CORE_OK)
		o = NULL;
	return o;
}

static struct json_object *row_json(const PGresult *r, int i)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(store_i64(r, i, "id", 0)));
	add_str(o, "path", r, i);
	add_str(o, "name", r, i);
	add_str(o, "path_with_namespace", r, i);
	add_str(o, "namespace_full_path", r, i);
	add_str(o, "web_url", r, i);
	add_str(o, "default_branch", r, i);
	json_object_object_add(o, "archived", json_object_new_boolean(store_bool(r, i, "archived", false)));
	json_object_object_add(o, "pending_deletion",
	                       json_object_new_boolean(store_bool(r, i, "marked_for_deletion", false)));
	int64_t level = store_i64(r, i, "access_level", 0);
	json_object_object_add(o, "access_level", level ? json_object_new_int64(level) : NULL);
	add_str(o, "status", r, i);
	add_str(o, "last_activity_at", r, i);
	add_str(o, "first_seen", r, i);
	add_str(o, "last_seen", r, i);
	add_str(o, "removed_at", r, i);
	json_object_object_add(o, "config", json_col(r, i, "effective_config"));
	json_object_object_add(o, "config_sources", json_col(r, i, "config_sources"));
	json_object_object_add(o, "exception", json_object_new_boolean(store_bool(r, i, "exception", false)));
	json_object_object_add(o, "unmanaged", json_object_new_boolean(store_bool(r, i, "unmanaged", false)));
	struct json_object *la = NULL;
	if (store_str(r, i, "apply_result")) {
		la = json_object_new_object();
		json_object_object_add(la, "result", json_object_new_string(store_str(r, i, "apply_result")));
		const char *m = store_str(r, i, "apply_message");
		json_object_object_add(la, "message", m ? json_object_new_string(m) : NULL);
		const char *at = store_str(r, i, "applied_at");
		json_object_object_add(la, "at", at ? json_object_new_string(at) : NULL);
	}
	json_object_object_add(o, "last_apply", la);
	return o;
}

/* Escape LIKE wildcards in s into out. */
static void like_escape(const char *s, char *out, size_t cap)
{
	size_t j = 0;
	for (; *s && j + 2 < cap; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			out[j++] = '\\';
		out[j++] = *s;
	}
	out[j] = '\0';
}

static char *encode_cursor(char kind, const char *key, int64_t id)
{
	char raw[1200];
	int n = snprintf(raw, sizeof(raw), "%c|%s|%lld", kind, key, (long long)id);
	if (n < 0 || (size_t)n >= sizeof(raw))
		return NULL;
	size_t cap = sodium_base64_ENCODED_LEN((size_t)n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = malloc(cap);
	if (out)
		sodium_bin2base64(out, cap, (const unsigned char *)raw, (size_t)n,
		                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

/* Decode a cursor into its key and id; false when malformed or of another sort. */
static bool decode_cursor(const char *cursor, char kind, char *key, size_t keycap, char *id, size_t idcap)
{
	unsigned char raw[1200];
	size_t len = 0;
	if (strlen(cursor) > 1500 || sodium_base642bin(raw, sizeof(raw) - 1, cursor, strlen(cursor), NULL, &len, NULL,
	                                               sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return false;
	raw[len] = '\0';
	char *s = (char *)raw;
	if (len < 4 || s[0] != kind || s[1] != '|')
		return false;
	char *last = strrchr(s + 2, '|');
	if (!last)
		return false;
	*last = '\0';
	char *end;
	long long v = strtoll(last + 1, &end, 10);
	if (*end || end == last + 1 || v <= 0)
		return false;
	if (strlen(s + 2) >= keycap)
		return false;
	memcpy(key, s + 2, strlen(s + 2) + 1);
	snprintf(id, idcap, "%lld", v);
	return true;
}

static bool known_status(const char *s)
{
	for (int i = 0; repos_status_names[i]; i++)
		if (strcmp(repos_status_names[i], s) == 0)
			return true;
	return false;
}

/*
 * The WHERE clause shared by the page and the count. Parameters: $1 q (LIKE pattern), $2 group, $3 group
 * prefix pattern, $4 status, $5 archived, $6 ids (bigint[]).
 */
#define REPO_FILTER                                                                                                    \
	" ($1::text IS NULL OR path_with_namespace ILIKE $1::text)"                                                    \
	" AND ($2::text IS NULL OR namespace_full_path COLLATE \"C\" = $2::text"                                       \
	"      OR namespace_full_path COLLATE \"C\" LIKE $3::text)"                                                    \
	" AND (CASE WHEN $4::text IS NULL THEN status <> 'removed' ELSE status = $4::text END)"                        \
	" AND ($5::boolean IS NULL OR archived = $5::boolean)"                                                         \
	" AND ($6::bigint[] IS NULL OR id = ANY($6::bigint[]))"

/* Storage for the LIKE patterns of a filter's parameters. */
struct filter_bufs {
	char q[600];
	char gp[600];
};

/* The text parameters $1..$6 of REPO_FILTER for f, written into p (pointing into b); *ids_out is malloc'd (the
 * caller frees it; NULL without an id list). Shared by the page, the count and repos_select(). */

static enum core_status filter_params(const struct repos_filter *f, struct filter_bufs *b, char **ids_out,
                                      const char *p[6])
{
	*ids_out = NULL;
	if (f->q && *f->q) {
		char esc[500];
		like_escape(f->q, esc, sizeof(esc));
		snprintf(b->q, sizeof(b->q), "%%%s%%", esc);
	}
	if (f->group && *f->group) {
		char esc[500];
		like_escape(f->group, esc, sizeof(esc));
		snprintf(b->gp, sizeof(b->gp), "%s/%%", esc);
	}
	if (f->ids && !(*ids_out = store_int64_array(f->ids, (size_t)f->n_ids)))
		return CORE_ENOMEM;
	p[0] = f->q && *f->q ? b->q : NULL;
	p[1] = f->group && *f->group ? f->group : NULL;
	p[2] = f->group && *f->group ? b->gp : NULL;
	p[3] = f->status && *f->status ? f->status : NULL;
	p[4] = f->archived < 0 ? NULL : f->archived ? "true" : "false";
	p[5] = *ids_out;
	return CORE_OK;
}

enum core_status repos_list(struct store *db, const struct repos_filter *f, struct json_object **out, char *err,
                            size_t errlen)
{
	*out = NULL;
	char ckey[1100], cid[24], lim[16];
	char *ids = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL, *rc = NULL;
	if (f->status && *f->status && !known_status(f->status)) {
		snprintf(err, errlen,
		         "unknown status \"%.40s\": expected one of ungated, gated, exception, applying, error, "
		         "hook_disabled, new, archived, pending_deletion, removed, unmanaged",
		         f->status);
		return CORE_EINVAL;
	}
	char kind = f->sort == REPOS_SORT_ACTIVITY ? 'a' : 'p';
	bool have_cursor = f->cursor && *f->cursor;
	if (have_cursor && !decode_cursor(f->cursor, kind, ckey, sizeof(ckey), cid, sizeof(cid))) {
		snprintf(err, errlen, "the cursor is not valid for this sort; start again without it");
		return CORE_EINVAL;
	}
	int limit = f->limit <= 0 ? 50 : f->limit > 500 ? 500 : f->limit;
	snprintf(lim, sizeof(lim), "%d", limit + 1); /* one extra row tells whether a next page exists */
	struct filter_bufs bufs;
	const char *p[9];
	if (filter_params(f, &bufs, &ids, p) != CORE_OK)
		return CORE_ENOMEM;
	p[6] = have_cursor ? ckey : NULL;
	p[7] = have_cursor ? cid : NULL;
	p[8] = lim;
	/* Four statements rather than one with CASE in ORDER BY, so that each can use its index. */
	const char *sql;
	if (kind == 'p' && !f->descending)
		sql = "SELECT " REPO_COLUMNS " FROM repo_status WHERE" REPO_FILTER
		      " AND ($7::text IS NULL OR (path_with_namespace COLLATE \"C\", id) > ($7::text, $8::bigint))"
		      " ORDER BY path_with_namespace COLLATE \"C\", id LIMIT $9::int";
	else if (kind == 'p')
		sql = "SELECT " REPO_COLUMNS " FROM repo_status WHERE" REPO_FILTER
		      " AND ($7::text IS NULL OR (path_with_namespace COLLATE \"C\", id) < ($7::text, $8::bigint))"
		      " ORDER BY path_with_namespace COLLATE \"C\" DESC, id DESC LIMIT $9::int";
	else if (!f->descending)
		sql = "SELECT " REPO_COLUMNS " FROM repo_status WHERE" REPO_FILTER
		      " AND ($7::text IS NULL OR (coalesce(last_activity_at, '-infinity'::timestamptz), id) >"
		      "  (CASE WHEN $7::float8 < -1e300 THEN '-infinity'::timestamptz"
		      "   ELSE to_timestamp($7::float8 / 1000000) END, $8::bigint))"
		      " ORDER BY coalesce(last_activity_at, '-infinity'::timestamptz), id LIMIT $9::int";
	else
		sql = "SELECT " REPO_COLUMNS " FROM repo_status WHERE" REPO_FILTER
		      " AND ($7::text IS NULL OR (coalesce(last_activity_at, '-infinity'::timestamptz), id) <"
		      "  (CASE WHEN $7::float8 < -1e300 THEN '-infinity'::timestamptz"
		      "   ELSE to_timestamp($7::float8 / 1000000) END, $8::bigint))"
		      " ORDER BY coalesce(last_activity_at, '-infinity'::timestamptz) DESC, id DESC LIMIT $9::int";

	enum core_status st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	st = store_exec(c, sql, 9, p, &r);
	if (st == CORE_EINVAL) {
		snprintf(err, errlen, "the cursor is not valid; start again without it");
		goto out;
	}
	if (st != CORE_OK)
		goto out;
	st = store_exec(c, "SELECT count(*) AS n FROM repo_status WHERE" REPO_FILTER, 6, p, &rc);
	if (st != CORE_OK)
		goto out;

	int n = PQntuples(r);
	bool more = n > limit;
	if (more)
		n = limit;
	struct json_object *items = json_object_new_array();
	for (int i = 0; i < n; i++)
		json_object_array_add(items, row_json(r, i));
	*out = json_object_new_object();
	json_object_object_add(*out, "items", items);
	json_object_object_add(*out, "count", json_object_new_int64(store_i64(rc, 0, "n", 0)));
	char *next = NULL;
	if (more)
		next = encode_cursor(
		    kind, kind == 'p' ? store_str(r, n - 1, "path_with_namespace") : store_str(r, n - 1, "act_key"),
		    store_i64(r, n - 1, "id", 0));
	json_object_object_add(*out, "next_cursor", next ? json_object_new_string(next) : NULL);
	free(next);
out:
	PQclear(r);
	PQclear(rc);
	store_put(db, c);
	free(ids);
	return st;
}

enum core_status repos_select(struct store_conn *c, const struct repos_filter *f, PGresult **res_out, char *err,
                              size_t errlen)
{
	*res_out = NULL;
	char *ids = NULL;
	if (f->status && *f->status && !known_status(f->status)) {
		snprintf(err, errlen, "unknown status \"%.40s\"", f->status);
		return CORE_EINVAL;
	}
	struct filter_bufs bufs;
	const char *p[6];
	if (filter_params(f, &bufs, &ids, p) != CORE_OK)
		return CORE_ENOMEM;
	enum core_status st = store_exec(c,
	                                 "SELECT id, path_with_namespace, status FROM repo_status WHERE" REPO_FILTER
	                                 " ORDER BY path_with_namespace COLLATE \"C\", id",
	                                 6, p, res_out);
	free(ids);
	return st;
}

enum core_status repos_summary(struct store *db, const struct repos_filter *f, struct json_object **out, char *err,
                               size_t errlen)
{
	*out = NULL;
	char *ids = NULL;
	struct store_conn *c = NULL;
	PGresult *rs = NULL, *rf = NULL;
	if (f->status && *f->status && !known_status(f->status)) {
		snprintf(err, errlen, "unknown status \"%.40s\"", f->status);
		return CORE_EINVAL;
	}
	struct filter_bufs bufs;
	const char *p[6];
	if (filter_params(f, &bufs, &ids, p) != CORE_OK)
		return CORE_ENOMEM;
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK)
		goto out;
	if ((st = store_exec(c,
	                     "SELECT status, count(*) AS n FROM repo_status WHERE" REPO_FILTER
	                     " GROUP BY status ORDER BY status",
	                     6, p, &rs)) != CORE_OK ||
	    (st = store_exec(c,
	                     "SELECT f.key, f.value::text AS value, count(*) AS n FROM repo_status"
	                     " CROSS JOIN LATERAL jsonb_each(effective_config) f WHERE" REPO_FILTER
	                     " GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
	                     6, p, &rf)) != CORE_OK)
		goto out;
	struct json_object *o = json_object_new_object(), *statuses = json_object_new_object(),
	                   *fields = json_object_new_object();
	int64_t total = 0;
	for (int i = 0; i < PQntuples(rs); i++) {
		int64_t n = store_i64(rs, i, "n", 0);
		total += n;
		json_object_object_add(statuses, store_str(rs, i, "status"), json_object_new_int64(n));
	}
	for (int i = 0; i < PQntuples(rf); i++) {
		const char *key = store_str(rf, i, "key");
		struct json_object *arr = NULL, *e = json_object_new_object();
		if (!json_object_object_get_ex(fields, key, &arr)) {
			arr = json_object_new_array();
			json_object_object_add(fields, key, arr);
		}
		json_object_object_add(e, "value", json_tokener_parse(store_str(rf, i, "value")));
		json_object_object_add(e, "repos", json_object_new_int64(store_i64(rf, i, "n", 0)));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "repos", json_object_new_int64(total));
	json_object_object_add(o, "statuses", statuses);
	json_object_object_add(o, "fields", fields);
	*out = o;
out:
	PQclear(rs);
	PQclear(rf);
	store_put(db, c);
	free(ids);
	return st;
}

enum core_status repos_get(struct store *db, int64_t id, struct json_object **out)
{
	*out = NULL;
	PGresult *r = NULL;
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *p[] = {ids};
	enum core_status st = store_query(db, "SELECT " REPO_COLUMNS " FROM repo_status WHERE id = $1", 1, p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK)
		*out = row_json(r, 0);
	PQclear(r);
	return st;
}

enum core_status repos_groups(struct store *db, struct json_object **out)
{
	*out = NULL;
	PGresult *r = NULL;
	/* Count repos per namespace once (one scan), then add each namespace to the groups it is in or under:
	 * a join of groups x namespaces, both a few hundred at most, instead of a scan of repos per group. */
	enum core_status st =
	    store_query(db,
	                "WITH ns AS (SELECT r.namespace_full_path AS path, count(*) AS n,"
	                "            count(*) FILTER (WHERE coalesce(gs.applied_state, 'off') <> 'off') AS gated"
	                "            FROM repos r LEFT JOIN repo_gitlab_state gs ON gs.repo_id = r.id"
	                "            WHERE r.removed_at IS NULL GROUP BY r.namespace_full_path)"
	                " SELECT g.id, g.full_path, g.name, g.parent_id, coalesce(sum(ns.n), 0) AS repos,"
	                "  coalesce(sum(ns.gated), 0) AS gated"
	                " FROM gitlab_groups g LEFT JOIN ns ON ns.path = g.full_path"
	                "  OR left(ns.path, length(g.full_path) + 1) = g.full_path || '/'"
	                " WHERE g.removed_at IS NULL"
	                " GROUP BY g.id, g.full_path, g.name, g.parent_id ORDER BY g.full_path COLLATE \"C\"",
	                0, NULL, &r);
	if (st == CORE_OK) {
		*out = json_object_new_array();
		for (int i = 0; i < PQntuples(r); i++) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_int64(store_i64(r, i, "id", 0)));
			add_str(o, "full_path", r, i);
			add_str(o, "name", r, i);
			int64_t parent = store_i64(r, i, "parent_id", 0);
			json_object_object_add(o, "parent_id", parent ? json_object_new_int64(parent) : NULL);
			json_object_object_add(o, "repos", json_object_new_int64(store_i64(r, i, "repos", 0)));
			json_object_object_add(o, "gated", json_object_new_int64(store_i64(r, i, "gated", 0)));
			json_object_array_add(*out, o);
		}
	}
	PQclear(r);
	return st;
}

enum core_status repos_history(struct store *db, int64_t id, int limit, struct json_object **out)
{
	*out = NULL;
	PGresult *r = NULL;
	char ids[24], lim[16];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	snprintf(lim, sizeof(lim), "%d", limit < 1 ? 100 : limit > 500 ? 500 : limit);
	const char *p[] = {ids, lim};
	enum core_status st =
	    store_query(db,
	                "SELECT " STORE_TS(
	                    "h.at") " AS at, h.kind, h.action, h.result, h.message, h.job_id, h.gate_id, h.actor"
	                            " FROM repos r, LATERAL ("
	                            "  SELECT i.finished_at AS at, 'apply' AS kind, 'apply' AS action, i.result, "
	                            "i.message, i.job_id,"
	                            "   NULL::bigint AS gate_id, j.created_by AS actor"
	                            "  FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE i.repo_id = r.id AND "
	                            "i.finished_at IS NOT NULL"
	                            "  UNION ALL"
	                            "  SELECT g.created_at, 'gate', 'gate !' || g.mr_iid, g.verdict, g.description, "
	                            "NULL, g.id, NULL"
	                            "  FROM gate_runs g WHERE g.project_id = r.id"
	                            "  UNION ALL"
	                            "  SELECT a.at, 'audit', a.action, NULL, NULL, NULL, NULL, a.actor FROM audit_log a"
	                            "  WHERE a.target = r.id::text OR a.target = r.path_with_namespace"
	                            " ) h WHERE r.id = $1 ORDER BY h.at DESC NULLS LAST LIMIT $2::int",
	                2, p, &r);
	if (st != CORE_OK)
		goto out;
	int n = PQntuples(r);
	if (n == 0) {
		/* nothing happened yet, or no such repo: tell them apart */
		PGresult *e = NULL;
		st = store_query(db, "SELECT 1 FROM repos WHERE id = $1", 1, p, &e);
		if (st == CORE_OK && PQntuples(e) == 0)
			st = CORE_ENOTFOUND;
		PQclear(e);
		if (st != CORE_OK)
			goto out;
	}
	struct json_object *items = json_object_new_array();
	for (int i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();
		add_str(o, "at", r, i);
		add_str(o, "kind", r, i);
		add_str(o, "action", r, i);
		add_str(o, "result", r, i);
		add_str(o, "message", r, i);
		add_str(o, "actor", r, i);
		int64_t job = store_i64(r, i, "job_id", 0), gate = store_i64(r, i, "gate_id", 0);
		json_object_object_add(o, "job_id", job ? json_object_new_int64(job) : NULL);
		json_object_object_add(o, "gate_id", gate ? json_object_new_int64(gate) : NULL);
		json_object_array_add(items, o);
	}
	*out = json_object_new_object();
	json_object_object_add(*out, "items", items);
out:
	PQclear(r);
	return st;
}
