/*
 * core/settings.c
 *    Installation settings in the settings table.
 */
#include "settings.h"

#include "audit.h"
#include "jsonx.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void defaults(struct settings *s, int default_interval)
{
	memset(s, 0, sizeof(*s));
	s->resync_interval = default_interval;
	s->auto_gate_new_repos = false;
	s->fail_open = false;
	snprintf(s->hook_mode, sizeof(s->hook_mode), "project");
}

enum core_status settings_get(struct store *db, int default_interval, struct settings *out)
{
	defaults(out, default_interval);
	PGresult *r = NULL;
	enum core_status st = store_run1(db, "SELECT key, value::text AS value FROM settings", NULL, &r);
	for (int i = 0; st == CORE_OK && i < PQntuples(r); i++) {
		const char *k = store_str(r, i, "key"), *v = store_str(r, i, "value");
		struct json_object *j = NULL;
		if (!k || !v || jsonx_parse(v, strlen(v), &j) != CORE_OK)
			continue;
		int64_t n;
		bool b;
		const char *sv;
		if (strcmp(k, "resync_interval") == 0 && jsonx_as_int64(j, &n))
			out->resync_interval = (int)n;
		else if (strcmp(k, "auto_gate_new_repos") == 0 && json_object_is_type(j, json_type_boolean) &&
		         jsonx_as_bool(j, &b))
			out->auto_gate_new_repos = b;
		else if (strcmp(k, "fail_mode") == 0 && jsonx_as_str(j, &sv))
			out->fail_open = strcmp(sv, "open") == 0;
		else if (strcmp(k, "hook_mode") == 0 && jsonx_as_str(j, &sv) && strcmp(sv, "group") == 0)
			snprintf(out->hook_mode, sizeof(out->hook_mode), "group");
		json_object_put(j);
	}
	PQclear(r);
	return st;
}

struct json_object *settings_json(const struct settings *s)
{
	struct json_object *o = jx_object();
	json_object_object_add(o, "resync_interval", jx_int(s->resync_interval));
	json_object_object_add(o, "auto_gate_new_repos", jx_bool(s->auto_gate_new_repos));
	json_object_object_add(o, "fail_mode", jx_str(s->fail_open ? "open" : "closed"));
	json_object_object_add(o, "hook_mode", jx_str(s->hook_mode));
	return o;
}

/* Validate one field; on success *value_out is the JSON text to store. */
static enum core_status check_field(const char *key, struct json_object *v, char *err, size_t errlen)
{
	int64_t n;
	const char *s;
	if (strcmp(key, "resync_interval") == 0) {
		if (!jsonx_as_int64(v, &n) || n < 10 || n > 604800) {
			snprintf(err, errlen,
			         "field \"resync_interval\" must be an integer number of seconds from 10 to "
			         "604800 (7 days)");
			return CORE_EINVAL;
		}
		return CORE_OK;
	}
	if (strcmp(key, "auto_gate_new_repos") == 0) {
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(err, errlen, "field \"auto_gate_new_repos\" must be true or false");
			return CORE_EINVAL;
		}
		return CORE_OK;
	}
	if (strcmp(key, "fail_mode") == 0) {
		if (!jsonx_as_str(v, &s) || (strcmp(s, "open") != 0 && strcmp(s, "closed") != 0)) {
			snprintf(err, errlen, "field \"fail_mode\" must be \"closed\" or \"open\"");
			return CORE_EINVAL;
		}
		return CORE_OK;
	}
	if (strcmp(key, "hook_mode") == 0) {
		/* "group" is checked against GitLab (Owner, Premium) by the caller before it is stored */
		if (!jsonx_as_str(v, &s) || (strcmp(s, "project") != 0 && strcmp(s, "group") != 0)) {
			snprintf(err, errlen,
			         "field \"hook_mode\" must be \"project\" (one webhook per project) or "
			         "\"group\" (one group webhook; needs GitLab Premium or Ultimate and an Owner token)");
			return CORE_EINVAL;
		}
		return CORE_OK;
	}
	snprintf(
	    err, errlen,
	    "unknown setting \"%.60s\": the settings are resync_interval, auto_gate_new_repos, fail_mode, hook_mode",
	    key);
	return CORE_EINVAL;
}

enum core_status settings_check(struct json_object *obj, char *err, size_t errlen)
{
	if (!json_object_is_type(obj, json_type_object) || json_object_object_length(obj) == 0) {
		/* a walk's {} answered 200, as if something had been stored */
		snprintf(
		    err, errlen,
		    "nothing to change: send an object with some of resync_interval, auto_gate_new_repos, fail_mode, "
		    "hook_mode");
		return CORE_EINVAL;
	}
	json_object_object_foreach(obj, key, val)
	{
		enum core_status st = check_field(key, val, err, errlen);
		if (st == CORE_EINVAL && !val && strncmp(err, "field ", 6) == 0) {
			/* a script's unset variable: say it was the null, and that leaving it out keeps the setting */
			size_t len = strlen(err);
			snprintf(err + len, errlen > len ? errlen - len : 0,
			         " (not null: leave a setting out to keep it)");
		}
		if (st != CORE_OK)
			return st;
	}
	return CORE_OK;
}

enum core_status settings_put(struct store *db, struct json_object *obj, const char *actor, int default_interval,
                              char *err, size_t errlen)
{
	enum core_status st = CORE_OK;
	json_object_object_foreach(obj, key, val)
	{
		st = check_field(key, val, err, errlen);
		if (st != CORE_OK)
			return st;
	}
	struct settings before;
	st = settings_get(db, default_interval, &before);
	if (st != CORE_OK)
		return st;
	struct store_conn *c = NULL;
	struct json_object *bj = NULL;
	st = store_get_begin(db, &c);
	if (st != CORE_OK)
		return st;
	json_object_object_foreach(obj, k2, v2)
	{
		if (st != CORE_OK)
			break;
		struct store_params p = {0};
		store_param_str(&p, k2);
		store_param_str(&p, json_object_to_json_string_ext(v2, JSON_C_TO_STRING_PLAIN));
		st = store_run(c,
		               "INSERT INTO settings (key, value) VALUES ($1, $2::jsonb)"
		               " ON CONFLICT (key) DO UPDATE SET value = $2::jsonb, updated_at = now()",
		               &p, NULL);
	}
	struct json_object *interval = jsonx_get(obj, "resync_interval");
	if (st == CORE_OK && interval) {
		/* the next scheduled resync follows the new interval (core/scheduler.c reads it when deciding) */
		struct store_params p = {0};
		store_param_i64(&p, json_object_get_int64(interval));
		st =
		    store_run(c,
		              "UPDATE scheduler_state SET next_run_at = last_started_at + $1::int * interval '1 second'"
		              " WHERE id = 1 AND last_started_at IS NOT NULL",
		              &p, NULL);
	}
	if (st == CORE_OK) {
		/* the audit entry names what the request set, with its value before; a request that changes nothing is
		 * not an event */
		struct json_object *all = settings_json(&before);
		bool changed = false;
		bj = jx_object();
		json_object_object_foreach(obj, k3, v3)
		{
			struct json_object *old = jsonx_get(all, k3);
			if (!json_object_equal(old, v3))
				changed = true;
			json_object_object_add(bj, k3, json_object_get(old));
		}
		json_object_put(all);
		if (changed)
			st = audit_write(c, actor, "settings.update", NULL, bj, obj, NULL);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	store_put(db, c);
	json_object_put(bj);
	return st;
}
