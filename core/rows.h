/*
 * core/rows.h
 *    Query results as JSON, and the one paging convention of every list: `limit`, `cursor` -> `next_cursor`.
 *
 * Design: a read model either returns structs or turns rows into JSON here, never with its own loop. A column
 * becomes a member named like the column, typed by the column's PostgreSQL type: int2/int4/int8 -> integer,
 * bool -> boolean, float4/float8/numeric -> number, json/jsonb -> the parsed value, anything else -> string;
 * SQL NULL -> null. A statement that builds the whole object in SQL (json_build_object(...)::text AS j) names that
 * column "j" and each item is that object.
 *
 * Paging: a list is ordered by a unique key (usually id); the caller reads limit + 1 rows after the cursor
 * (`... AND ($n::bigint IS NULL OR id < $n) ORDER BY id DESC LIMIT limit + 1`); rows_page() keeps limit of them and
 * sets next_cursor to the key of the last kept row when there were more, else null. The cursor is an opaque string
 * to clients; rows_cursor_parse() reads it back (an id) and says when it is not one of ours.
 * Running: most read models run one statement and hand its rows on as JSON; rows_query_one/_all/_page do exactly
 * that (run through core/store.h, turn the rows into JSON, clear the result) so the read models hold only their SQL.
 * Threading: pure functions; the rows_query_* ones borrow a pooled connection (or use the caller's) like store_run.
 * Ownership: results are new trees the caller owns (json_object_put); the PGresult stays the caller's (rows_query_*
 * clear their own).
 */
#ifndef MRGATE_CORE_ROWS_H
#define MRGATE_CORE_ROWS_H

#include "status.h"

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define ROWS_LIMIT_DEFAULT 50

/* Row `row` of r as an object (or the parsed "j" column when r has one; null JSON when that text is not JSON). */
struct json_object *rows_row(const PGresult *r, int row);
/* Every row of r as an array. */
struct json_object *rows_all(const PGresult *r);
/*
 * {"items": [the first `limit` rows], "next_cursor": column key_col of row limit-1 as text when r holds more than
 * limit rows, else null}.
 */
struct json_object *rows_page(const PGresult *r, int limit, const char *key_col);
/*
 * rows_page() for a statement whose "j" column is JSON text PostgreSQL built (json_build_object(...)): each item is
 * that text as it came, written out verbatim when the page is serialised (json-c's serializer hook), not parsed and
 * printed again; an item is then a json string object to C code, so only pages handed straight to a response use
 * this (the repo list: parsing 50 rows cost mrgate more CPU than PostgreSQL spent building them).
 */
struct json_object *rows_page_verbatim(const PGresult *r, int limit, const char *key_col);
/*
 * A json object that stands for the JSON text [text, text + len) (copied): written out verbatim when serialised, a
 * json string object to C code (as rows_page_verbatim's items). The text must be valid JSON.
 */
struct json_object *rows_verbatim(const char *text, size_t len);

/* A `limit` query value: NULL/"" -> dflt; true with *out in 1..max, false when not an integer in that range. */
bool rows_limit_parse(const char *text, int dflt, int max, int *out);
/* A `cursor` query value (a next_cursor we gave out): NULL/"" -> 0 (first page); false when not a positive id. */
bool rows_cursor_parse(const char *text, int64_t *out);

/*
 * Run one statement (store_run1 with p, which may be NULL) and hand on its rows; *out is NULL on failure and the
 * status is store_run's, plus:
 *   rows_query_one: the first row as rows_row(); CORE_ENOTFOUND when there is none, CORE_EINTERNAL when that row is
 *                   not a JSON object (a "j" column that is not one);
 *   rows_query_all: every row as rows_all();
 *   rows_query_page: rows_page(result, limit, key_col) (the statement reads limit + 1 rows after the cursor).
 * rows_query_one_on does rows_query_one on the caller's connection c (inside or outside a transaction).
 */
struct store;
struct store_conn;
struct store_params;
enum core_status rows_query_one(struct store *db, const char *sql, const struct store_params *p,
                                struct json_object **out);
enum core_status rows_query_one_on(struct store_conn *c, const char *sql, const struct store_params *p,
                                   struct json_object **out);
enum core_status rows_query_all(struct store *db, const char *sql, const struct store_params *p,
                                struct json_object **out);
enum core_status rows_query_page(struct store *db, const char *sql, const struct store_params *p, int limit,
                                 const char *key_col, struct json_object **out);

#endif
