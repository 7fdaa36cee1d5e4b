/*
 * core/ignores.c
 *    Ignored findings (see ignores.h).
 */
#include "ignores.h"

#include "audit.h"
#include "gatebypass.h"
#include "gateconfig.h"
#include "json_util.h"
#include "jsonx.h"
#include "rows.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 200

/* An ignore as the API shows it; "finding": the latest stored finding of a fingerprint ignore, for humans. */
/* clang-format off */
#define IGNORE_JSON                                                                                                    \
	"jsonb_build_object('id', i.id, 'fingerprint', i.fingerprint, 'rule_id', i.rule_id, 'repo_id', i.repo_id,"     \
	" 'path_with_namespace', (SELECT r.path_with_namespace FROM repos r WHERE r.id = i.repo_id),"                  \
	" 'group', i.group_path, 'reason', i.reason, 'created_by', i.created_by,"                                    \
	" 'created_at', " STORE_TS("i.created_at") ","                                                                 \
	" 'expires_at', to_char((i.expires_at AT TIME ZONE 'UTC') - interval '1 day', 'YYYY-MM-DD'),"                  \
	" 'expired', coalesce(i.expires_at <= now(), false),"                                                          \
	" 'finding', (SELECT jsonb_build_object('rule_id', f.rule_id, 'path', f.path, 'line', f.line)"                 \
	"   FROM gate_findings f WHERE i.fingerprint IS NOT NULL AND f.fingerprint = i.fingerprint"                    \
	"   ORDER BY f.id DESC LIMIT 1))"
/* clang-format on */

/* In force for repo $1: its own, or of a group above it, not expired. */
#define ACTIVE_FOR_REPO                                                                                                \
	" (i.repo_id = $1 OR lower(i.group_path) = ANY (SELECT "                                                       \
	"lower(unnest(mrgate_path_prefixes(r.namespace_full_path)))"                                                   \
	"   FROM repos r WHERE r.id = $1))"

enum core_status ignores_active(struct store *db, int64_t repo_id, struct ignore_set *out)
{
	memset(out, 0, sizeof(*out));
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, repo_id);
	enum core_status st = store_run1(db,
	                                 "SELECT i.id, coalesce(i.fingerprint, '') AS fingerprint, i.rule_id, i.reason"
	                                 " FROM finding_ignores i WHERE" ACTIVE_FOR_REPO
	                                 " AND (i.expires_at IS NULL OR i.expires_at > now()) ORDER BY i.id",
	                                 &p, &r);
	if (st == CORE_OK && PQntuples(r) > 0) {
		out->n = (size_t)PQntuples(r);
		out->items = xcalloc(out->n, sizeof(*out->items));
		for (size_t i = 0; i < out->n; i++) {
			struct ignore_rule *g = &out->items[i];
			g->id = store_i64(r, (int)i, "id", 0);
			snprintf(g->fingerprint, sizeof(g->fingerprint), "%s", store_str(r, (int)i, "fingerprint"));
			const char *rule = store_str(r, (int)i, "rule_id");
			g->rule_id = rule ? xstrdup(rule) : NULL;
			g->reason = xstrdup(store_str(r, (int)i, "reason"));
		}
	}
	PQclear(r);
	return st;
}

const struct ignore_rule *ignores_match(const struct ignore_set *s, const struct finding *f)
{
	for (size_t i = 0; i < s->n; i++) /* a fingerprint is the narrower claim: it wins */
		if (s->items[i].fingerprint[0] && strcmp(s->items[i].fingerprint, f->fingerprint) == 0)
			return &s->items[i];
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].rule_id && f->rule_id && strcmp(s->items[i].rule_id, f->rule_id) == 0)
			return &s->items[i];
	return NULL;
}

void ignore_set_clear(struct ignore_set *s)
{
	for (size_t i = 0; s && i < s->n; i++) {
		free(s->items[i].rule_id);
		free(s->items[i].reason);
	}
	if (s) {
		free(s->items);
		memset(s, 0, sizeof(*s));
	}
}

static bool hex64(const char *s)
{
	if (strlen(s) != FINDING_FINGERPRINT_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* "YYYY-MM-DD" (the calendar check is PostgreSQL's). */
static bool date_shape(const char *s)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Reads an optional string field; false (msg set) when it is there and not a string. */
static bool opt_str(struct json_object *body, const char *key, const char **out, char *msg, size_t cap)
{
	*out = NULL;
	if (!jsonx_get(body, key))
		return true;
	if (!jsonx_str(body, key, out)) {
		snprintf(msg, cap, "field \"%s\" must be a string", key);
		return false;
	}
	return true;
}

struct ignore_input {
	const char *fingerprint, *rule_id, *group, *reason, *expires;
	int64_t repo_id;
};

__attribute__((format(printf, 3, 4))) static enum core_status invalid(char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return CORE_EINVAL;
}

/* What the ignore names (one finding or a rule) and where (a repo or a group); msg says what is wrong. */
static enum core_status read_target(struct json_object *body, struct ignore_input *in, char *msg, size_t cap)
{
	if (!in->fingerprint == !in->rule_id)
		return invalid(msg, cap,
		               "give exactly one of \"fingerprint\" (one finding) and \"rule_id\" (every finding "
		               "of a rule)");
	if (in->fingerprint && !hex64(in->fingerprint))
		return invalid(msg, cap,
		               "field \"fingerprint\" must be the 64 lower-case hex characters a finding shows");
	if (in->rule_id && (!in->rule_id[0] || strlen(in->rule_id) > IGNORE_RULE_MAX))
		return invalid(msg, cap, "field \"rule_id\" must be 1 to %d bytes", IGNORE_RULE_MAX);
	for (const char *q = in->rule_id; q && *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f)
			return invalid(msg, cap,
			               "field \"rule_id\" is a rule's id as a finding shows it: no spaces or "
			               "control characters");
	struct json_object *rid = jsonx_get(body, "repo_id");
	if (rid && (!json_object_is_type(rid, json_type_int) || (in->repo_id = json_object_get_int64(rid)) <= 0))
		return invalid(msg, cap, "field \"repo_id\" must be a positive integer");
	if (!rid == !in->group)
		return invalid(msg, cap,
		               "give exactly one of \"repo_id\" (one repository) and \"group\" (a group and its "
		               "subgroups)");
	if (in->group && !gateconfig_group_path_valid(in->group))
		return invalid(msg, cap, "field \"group\" must be a GitLab group path such as \"acme/platform\"");
	return CORE_OK;
}

static enum core_status read_input(struct json_object *body, struct ignore_input *in, char *msg, size_t cap)
{
	static const char *const fields[] = {"fingerprint", "rule_id",    "repo_id", "group",
	                                     "reason",      "expires_at", NULL};
	memset(in, 0, sizeof(*in));
	const char *unknown = json_unknown_key(body, fields);
	if (unknown)
		return invalid(
		    msg, cap,
		    "unknown field \"%.64s\" (known: fingerprint, rule_id, repo_id, group, reason, expires_at)",
		    unknown);
	if (!opt_str(body, "fingerprint", &in->fingerprint, msg, cap) ||
	    !opt_str(body, "rule_id", &in->rule_id, msg, cap) || !opt_str(body, "group", &in->group, msg, cap) ||
	    !opt_str(body, "reason", &in->reason, msg, cap) || !opt_str(body, "expires_at", &in->expires, msg, cap))
		return CORE_EINVAL;
	enum core_status st = read_target(body, in, msg, cap);
	if (st != CORE_OK)
		return st;
	char why[200];
	if (!gate_ignore_reason_ok(in->reason, why, sizeof(why))) /* the same rule as a bypass's reason */
		return invalid(msg, cap, "%s", why);
	if (in->expires && !date_shape(in->expires))
		return invalid(
		    msg, cap,
		    "field \"expires_at\" must be a date YYYY-MM-DD (the ignore ends at the end of that day, UTC)");
	return CORE_OK;
}

/* The repo exists; the expiry is a real day after today (UTC). */
static enum core_status check_refs(struct store_conn *c, const struct ignore_input *in, char *msg, size_t cap)
{
	PGresult *r = NULL;
	enum core_status st =
	    STORE_RUN(c,
	              "SELECT ($1::bigint IS NULL OR EXISTS (SELECT 1 FROM repos WHERE id = $1::bigint)) AS repo_ok,"
	              " ($3::text IS NULL OR EXISTS (SELECT 1 FROM gitlab_groups WHERE lower(full_path) = lower($3))) "
	              "AS group_ok,"
	              " ($2::text IS NULL OR (to_char(to_date($2, 'YYYY-MM-DD'), 'YYYY-MM-DD') = $2)) AS real_day,"
	              " ($2::text IS NULL OR (to_date($2, 'YYYY-MM-DD') + 1)::timestamp AT TIME ZONE 'UTC'"
	              "   > now() + interval '1 second') AS future,"
	              " (SELECT min(i.id) FROM finding_ignores i WHERE i.fingerprint IS NOT DISTINCT FROM $4"
	              "   AND i.rule_id IS NOT DISTINCT FROM $5 AND i.repo_id IS NOT DISTINCT FROM $1::bigint"
	              "   AND lower(i.group_path) IS NOT DISTINCT FROM lower($3)"
	              "   AND (i.expires_at IS NULL OR i.expires_at > now())) AS same",
	              &r, STORE_I64_OR_NULL(in->repo_id), STORE_STR(in->expires), STORE_STR(in->group),
	              STORE_STR(in->fingerprint), STORE_STR(in->rule_id));
	if (st != CORE_OK) {
		if (st == CORE_EINVAL) /* to_date refused the day: out of range */
			snprintf(msg, cap, "field \"expires_at\" is not a calendar date");
	} else if (!store_bool(r, 0, "repo_ok", false)) {
		snprintf(msg, cap, "no repository %lld", (long long)in->repo_id);
		st = CORE_ENOTFOUND;
	} else if (!store_bool(r, 0, "group_ok", false)) {
		snprintf(msg, cap, "no group \"%.200s\" in the synced group tree: check the path, or sync first",
		         in->group);
		st = CORE_ENOTFOUND;
	} else if (store_i64(r, 0, "same", 0) > 0) {
		snprintf(msg, cap,
		         "ignore %lld already ignores this for the same scope: delete it first to record another "
		         "reason or expiry",
		         (long long)store_i64(r, 0, "same", 0));
		st = CORE_ECONFLICT;
	} else if (!store_bool(r, 0, "real_day", false)) {
		snprintf(msg, cap, "field \"expires_at\" is not a calendar date");
		st = CORE_EINVAL;
	} else if (!store_bool(r, 0, "future", false)) {
		snprintf(msg, cap,
		         "field \"expires_at\" must be today or a later day (UTC): the ignore would never be in force");
		st = CORE_EINVAL;
	}
	PQclear(r);
	return st;
}

struct create_args {
	const struct ignore_input *in;
	const char *actor;
	struct json_object *body, **out, *details;
	char *msg;
	size_t cap;
};

static enum core_status create_tx(struct store_conn *c, void *user)
{
	struct create_args *a = user;
	enum core_status st = check_refs(c, a->in, a->msg, a->cap);
	if (st != CORE_OK)
		return st;
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_str(&p, a->in->fingerprint);
	store_param_str(&p, a->in->rule_id);
	store_param_i64_or_null(&p, a->in->repo_id);
	store_param_str(&p, a->in->group);
	store_param_str(&p, a->in->reason);
	store_param_str(&p, a->actor);
	store_param_str(&p, a->in->expires);
	/* an expiry date ends with its day, UTC */
	st = store_run(c,
	               "INSERT INTO finding_ignores (fingerprint, rule_id, repo_id, group_path, reason, created_by,"
	               " expires_at) VALUES ($1, $2, $3::bigint,"
	               " (SELECT full_path FROM gitlab_groups WHERE lower(full_path) = lower($4)), $5, $6,"
	               " (to_date($7, 'YYYY-MM-DD') + 1)::timestamp AT TIME ZONE 'UTC') RETURNING id",
	               &p, &r);
	int64_t id = st == CORE_OK ? store_i64(r, 0, "id", 0) : 0;
	PQclear(r);
	char target[40];
	snprintf(target, sizeof(target), "ignore %lld", (long long)id);
	if (st == CORE_OK)
		st = audit_write(c, a->actor, "ignore.create", target, NULL, a->body, a->details);
	struct store_params pg = {0};
	store_param_i64(&pg, id);
	if (st == CORE_OK)
		st = rows_query_one_on(c, "SELECT " IGNORE_JSON "::text AS j FROM finding_ignores i WHERE i.id = $1",
		                       &pg, a->out);
	return st;
}

enum core_status ignores_create(struct store *db, const char *actor, struct json_object *body, struct json_object **out,
                                char *msg, size_t cap)
{
	return ignores_create_via(db, actor, NULL, body, out, msg, cap);
}

enum core_status ignores_create_via(struct store *db, const char *actor, struct json_object *details,
                                    struct json_object *body, struct json_object **out, char *msg, size_t cap)
{
	*out = NULL;
	msg[0] = '\0';
	struct ignore_input in;
	enum core_status st = read_input(body, &in, msg, cap);
	if (st != CORE_OK)
		return st;
	struct create_args a = {
	    .in = &in, .actor = actor, .body = body, .out = out, .details = details, .msg = msg, .cap = cap};
	st = store_tx(db, create_tx, &a);
	if (st != CORE_OK) {
		json_object_put(*out);
		*out = NULL;
	}
	return st;
}

enum core_status ignores_list(struct store *db, const struct ignores_filter *f, struct json_object **out)
{
	int limit = f->limit <= 0 ? ROWS_LIMIT_DEFAULT : f->limit > LIST_MAX ? LIST_MAX : f->limit;
	struct store_params p = {0};
	store_param_i64_or_null(&p, f->repo_id);
	store_param_str(&p, f->group);
	store_param_str(&p, f->rule);
	if (f->expired < 0)
		store_param_null(&p);
	else
		store_param_bool(&p, f->expired == 1);
	store_param_i64_or_null(&p, f->before_id);
	store_param_i64(&p, limit + 1);
	return rows_query_page(
	    db,
	    "SELECT i.id, " IGNORE_JSON "::text AS j FROM finding_ignores i"
	    " WHERE ($1::bigint IS NULL OR" ACTIVE_FOR_REPO ")"
	    " AND ($2::text IS NULL OR lower(i.group_path) = lower($2)"
	    "      OR starts_with(lower(i.group_path), lower($2) || '/')"
	    "      OR i.repo_id IN (SELECT r.id FROM repos r WHERE lower(r.namespace_full_path) = lower($2)"
	    "        OR starts_with(lower(r.namespace_full_path), lower($2) || '/')))"
	    " AND ($3::text IS NULL OR i.rule_id = $3 OR EXISTS (SELECT 1 FROM gate_findings gf"
	    "      WHERE gf.fingerprint = i.fingerprint AND gf.rule_id = $3))"
	    " AND ($4::boolean IS NULL OR coalesce(i.expires_at <= now(), false) = $4)"
	    " AND ($5::bigint IS NULL OR i.id < $5::bigint)"
	    " ORDER BY i.id DESC LIMIT $6::integer",
	    &p, limit, "id", out);
}

struct delete_args {
	const char *actor;
	int64_t id;
};

static enum core_status delete_tx(struct store_conn *c, void *user)
{
	const struct delete_args *a = user;
	struct json_object *before = NULL;
	struct store_params p = {0};
	store_param_i64(&p, a->id);
	enum core_status st = rows_query_one_on(
	    c, "SELECT " IGNORE_JSON "::text AS j FROM finding_ignores i WHERE i.id = $1", &p, &before);
	if (st == CORE_OK)
		st = store_run(c, "DELETE FROM finding_ignores WHERE id = $1", &p, NULL);
	char target[40];
	snprintf(target, sizeof(target), "ignore %lld", (long long)a->id);
	if (st == CORE_OK)
		st = audit_write(c, a->actor, "ignore.delete", target, before, NULL, NULL);
	json_object_put(before);
	return st;
}

enum core_status ignores_delete(struct store *db, const char *actor, int64_t id)
{
	struct delete_args a = {.actor = actor, .id = id};
	return store_tx(db, delete_tx, &a);
}
