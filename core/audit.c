/*
 * core/audit.c
 *    Writing and listing audit entries.
 */
#include "audit.h"

#include "rows.h"

static const char *js(struct json_object *o)
{
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
}

enum core_status audit_write(struct store_conn *c, const char *actor, const char *action, const char *target,
                             struct json_object *before, struct json_object *after, struct json_object *details)
{
	/* json_object_to_json_string_ext reuses one buffer per object, so three objects give three strings */
	struct store_params p = {0};
	store_param_str(&p, actor ? actor : "system");
	store_param_str(&p, action);
	store_param_str(&p, target);
	store_param_str(&p, js(before));
	store_param_str(&p, js(after));
	store_param_str(&p, js(details));
	return store_run(c,
	                 "INSERT INTO audit_log (actor, action, target, before, after, details)"
	                 " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)",
	                 &p, NULL);
}

enum core_status audit_list(struct store *db, int limit, int64_t before_id, const char *action_prefix, bool accounts,
                            struct json_object **out)
{
	*out = NULL;
	limit = limit < 1 ? ROWS_LIMIT_DEFAULT : limit > AUDIT_PAGE_MAX ? AUDIT_PAGE_MAX : limit;
	struct store_params p = {0};
	store_param_i64(&p, limit + 1);
	store_param_i64(&p, before_id);
	store_param_str(&p, action_prefix && *action_prefix ? action_prefix : NULL);
	store_param_bool(&p, accounts);
	return rows_query_page(
	    db,
	    "SELECT id, to_char(at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS at, actor, action, target,"
	    " before, after, details FROM audit_log"
	    " WHERE ($2::bigint = 0 OR id < $2::bigint)"
	    "   AND ($3::text IS NULL OR starts_with(action, $3::text))"
	    "   AND ($4::boolean OR NOT (starts_with(action, 'user.') OR starts_with(action, 'token.')))"
	    " ORDER BY id DESC LIMIT $1::int",
	    &p, limit, "id", out);
}
