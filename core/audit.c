/*
 * core/audit.c
 *    Writing and listing audit entries.
 */
#include "audit.h"

#include "jsonx.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *js(struct json_object *o)
{
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
}

enum core_status audit_write(struct store_conn *c, const char *actor, const char *action, const char *target,
                             struct json_object *before, struct json_object *after, struct json_object *details)
{
	/* json_object_to_json_string_ext reuses one buffer per object, so three objects give three strings */
	const char *p[] = {actor ? actor : "system", action, target, js(before), js(after), js(details)};
	return store_exec(c,
	                  "INSERT INTO audit_log (actor, action, target, before, after, details)"
	                  " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)",
	                  6, p, NULL);
}

static void add_json_column(struct json_object *o, const char *key, const PGresult *r, int row)
{
	const char *v = store_str(r, row, key);
	struct json_object *parsed = NULL;
	if (v && jsonx_parse(v, strlen(v), &parsed) == CORE_OK)
		json_object_object_add(o, key, parsed);
	else
		json_object_object_add(o, key, NULL);
}

enum core_status audit_list(struct store *db, int limit, int64_t before_id, const char *action_prefix,
                            struct json_object **out)
{
	*out = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	char lim[16], before[24];
	snprintf(lim, sizeof(lim), "%d", limit < 1 ? 50 : limit > 501 ? 501 : limit);
	snprintf(before, sizeof(before), "%lld", (long long)before_id);
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK)
		return st;
	const char *p[] = {lim, before, action_prefix && *action_prefix ? action_prefix : NULL};
	st = store_exec(c,
	                "SELECT id, to_char(at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS at, actor, action, target,"
	                " before, after, details FROM audit_log"
	                " WHERE ($2::bigint = 0 OR id < $2::bigint)"
	                "   AND ($3::text IS NULL OR action LIKE $3::text || '%')"
	                " ORDER BY id DESC LIMIT $1::int",
	                3, p, &r);
	if (st != CORE_OK)
		goto out;
	struct json_object *items = json_object_new_array();
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "id", json_object_new_int64(store_i64(r, i, "id", 0)));
		json_object_object_add(e, "at", json_object_new_string(store_str(r, i, "at")));
		json_object_object_add(e, "actor", json_object_new_string(store_str(r, i, "actor")));
		json_object_object_add(e, "action", json_object_new_string(store_str(r, i, "action")));
		const char *t = store_str(r, i, "target");
		json_object_object_add(e, "target", t ? json_object_new_string(t) : NULL);
		add_json_column(e, "before", r, i);
		add_json_column(e, "after", r, i);
		add_json_column(e, "details", r, i);
		json_object_array_add(items, e);
	}
	*out = json_object_new_object();
	json_object_object_add(*out, "items", items);
	/* a full page may have more behind it: the cursor is the last id shown */
	bool full = n > 0 && n == (int)strtol(lim, NULL, 10);
	json_object_object_add(*out, "next_before", full ? json_object_new_int64(store_i64(r, n - 1, "id", 0)) : NULL);
out:
	PQclear(r);
	store_put(db, c);
	return st;
}
