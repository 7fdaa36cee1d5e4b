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
 * Threading: pure functions.
 * Ownership: results are new trees the caller owns (json_object_put); the PGresult stays the caller's.
 */
#ifndef MRGATE_CORE_ROWS_H
#define MRGATE_CORE_ROWS_H

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

/* A `limit` query value: NULL/"" -> dflt; true with *out in 1..max, false when not an integer in that range. */
bool rows_limit_parse(const char *text, int dflt, int max, int *out);
/* A `cursor` query value (a next_cursor we gave out): NULL/"" -> 0 (first page); false when not a positive id. */
bool rows_cursor_parse(const char *text, int64_t *out);

#endif
