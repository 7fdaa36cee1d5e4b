/*
 * core/rows.c
 *    Query results as JSON and one page of a list (see rows.h).
 */
#include "rows.h"

#include "jsonx.h"
#include "store.h"
#include "xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL type oids (pg_type.dat), stable across versions. */
enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_JSON = 114,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_NUMERIC = 1700,
	OID_JSONB = 3802,
};

static struct json_object *parsed(const char *text)
{
	struct json_object *v = NULL;
	if (jsonx_parse(text, strlen(text), &v) != CORE_OK)
		return NULL;
	return v;
}

/* A PostgreSQL number as JSON, written as PostgreSQL wrote it (its shortest exact form: 0.267, where json-c's own
 * formatting of the double wrote 0.26700000000000002); NaN and the infinities, which JSON has not, are null. */
static struct json_object *number(const char *t)
{
	char *end = NULL;
	double d = strtod(t, &end);
	if (end == t || *end != '\0' || !isfinite(d))
		return NULL;
	struct json_object *o = json_object_new_double_s(d, t);
	if (!o)
		xalloc_oom("json number", strlen(t));
	return o;
}

static struct json_object *value(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	const char *t = PQgetvalue(r, row, col);
	switch (PQftype(r, col)) {
	case OID_BOOL: return jx_bool(t[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8: return jx_int(strtoll(t, NULL, 10));
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC: return number(t);
	case OID_JSON:
	case OID_JSONB: return parsed(t);
	default: return jx_str(t);
	}
}

struct json_object *rows_row(const PGresult *r, int row)
{
	int j = PQfnumber(r, "j");
	if (j >= 0)
		return PQgetisnull(r, row, j) ? NULL : parsed(PQgetvalue(r, row, j));
	struct json_object *o = jx_object();
	for (int c = 0; c < PQnfields(r); c++)
		json_object_object_add(o, PQfname(r, c), value(r, row, c));
	return o;
}

struct json_object *rows_all(const PGresult *r)
{
	struct json_object *a = jx_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_object_array_add(a, rows_row(r, i));
	return a;
}

/* json-c's serializer of a verbatim item: its string is JSON text already. */
static int verbatim_to_json(struct json_object *o, struct printbuf *pb, int level, int flags)
{
	(void)level;
	(void)flags;
	return printbuf_memappend(pb, json_object_get_string(o), json_object_get_string_len(o)) < 0 ? -1 : 0;
}

struct json_object *rows_verbatim(const char *text, size_t len)
{
	struct json_object *o = json_object_new_string_len(text, (int)len);
	if (!o)
		xalloc_oom("json string", len);
	json_object_set_serializer(o, verbatim_to_json, NULL, NULL);
	return o;
}

static struct json_object *verbatim_row(const PGresult *r, int row)
{
	int j = PQfnumber(r, "j");
	if (j < 0 || PQgetisnull(r, row, j))
		return NULL;
	return rows_verbatim(PQgetvalue(r, row, j), (size_t)PQgetlength(r, row, j));
}

static struct json_object *page_of(const PGresult *r, int limit, const char *key_col, bool verbatim)
{
	struct json_object *o = jx_object(), *items = jx_array();
	int n = PQntuples(r);
	for (int i = 0; i < n && i < limit; i++)
		json_object_array_add(items, verbatim ? verbatim_row(r, i) : rows_row(r, i));
	json_object_object_add(o, "items", items);
	int k = PQfnumber(r, key_col);
	bool more = n > limit && limit > 0 && k >= 0 && !PQgetisnull(r, limit - 1, k);
	json_object_object_add(o, "next_cursor", more ? jx_str(PQgetvalue(r, limit - 1, k)) : NULL);
	return o;
}

struct json_object *rows_page(const PGresult *r, int limit, const char *key_col)
{
	return page_of(r, limit, key_col, false);
}

struct json_object *rows_page_verbatim(const PGresult *r, int limit, const char *key_col)
{
	return page_of(r, limit, key_col, true);
}

bool rows_limit_parse(const char *text, int dflt, int max, int *out)
{
	if (!text || !*text) {
		*out = dflt;
		return true;
	}
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || *end || end == text || v < 1 || v > max)
		return false;
	*out = (int)v;
	return true;
}

bool rows_cursor_parse(const char *text, int64_t *out)
{
	if (!text || !*text) {
		*out = 0;
		return true;
	}
	if (text[0] < '1' || text[0] > '9')
		return false;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || *end || v < 1)
		return false;
	*out = v;
	return true;
}

/* The first row of r (when the statement ran) as an object into *out. */
static enum core_status one_of(enum core_status st, PGresult *r, struct json_object **out)
{
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK) {
		*out = rows_row(r, 0);
		if (!json_object_is_type(*out, json_type_object)) {
			json_object_put(*out);
			*out = NULL;
			st = CORE_EINTERNAL;
		}
	}
	PQclear(r);
	return st;
}

enum core_status rows_query_one(struct store *db, const char *sql, const struct store_params *p,
                                struct json_object **out)
{
	PGresult *r = NULL;
	*out = NULL;
	enum core_status st = store_run1(db, sql, p, &r);
	return one_of(st, r, out);
}

enum core_status rows_query_one_on(struct store_conn *c, const char *sql, const struct store_params *p,
                                   struct json_object **out)
{
	PGresult *r = NULL;
	*out = NULL;
	enum core_status st = store_run(c, sql, p, &r);
	return one_of(st, r, out);
}

enum core_status rows_query_all(struct store *db, const char *sql, const struct store_params *p,
                                struct json_object **out)
{
	PGresult *r = NULL;
	*out = NULL;
	enum core_status st = store_run1(db, sql, p, &r);
	if (st == CORE_OK)
		*out = rows_all(r);
	PQclear(r);
	return st;
}

enum core_status rows_query_page(struct store *db, const char *sql, const struct store_params *p, int limit,
                                 const char *key_col, struct json_object **out)
{
	PGresult *r = NULL;
	*out = NULL;
	enum core_status st = store_run1(db, sql, p, &r);
	if (st == CORE_OK)
		*out = rows_page(r, limit, key_col);
	PQclear(r);
	return st;
}
