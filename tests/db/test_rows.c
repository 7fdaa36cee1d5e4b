/*
 * tests/db/test_rows.c
 *    Typed statement parameters and rows as JSON on a real PostgreSQL: every column type maps to its JSON type,
 *    SQL NULL to null, a "j" column to its object; a page keeps limit rows and points next_cursor at the last one.
 *    Statements marked STORE_PREPARE are prepared once per connection and outlive what makes a prepared statement
 *    fail (DEALLOCATE, a table changed under it).
 */
#include "buf.h"
#include "log.h"
#include "rows.h"
#include "store.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static struct store *db;
static char *url;

/* The first five parameters of the round trips: a bigint, a text, a boolean, a NULL bigint, a NULL text. */
#define ROUND_TRIP_COLUMNS                                                                                             \
	"SELECT $1::bigint AS i, $2::text AS s, $3::boolean AS b, $4::bigint IS NULL AS n1, $5::text IS NULL AS n2"

static void check_round_trip(const PGresult *r)
{
	CHECK_INT(store_i64(r, 0, "i", 0), -9007199254740993LL);
	CHECK_STR(store_str(r, 0, "s"), "it's \"quoted\"");
	CHECK(store_bool(r, 0, "b", false));
	CHECK(store_bool(r, 0, "n1", false));
	CHECK(store_bool(r, 0, "n2", false));
}

static void typed_params_round_trip(void)
{
	struct store_params p = {0};
	store_param_i64(&p, -9007199254740993LL);
	store_param_str(&p, "it's \"quoted\"");
	store_param_bool(&p, true);
	store_param_i64_or_null(&p, 0);
	store_param_null(&p);
	int64_t ids[] = {3, 1, 2};
	struct buf keep = {0};
	store_param_i64_array(&p, ids, 3, &keep);
	PGresult *r = NULL;
	REQUIRE(store_run1(db, ROUND_TRIP_COLUMNS ", array_length($6::bigint[], 1) AS len, ($6::bigint[])[1] AS first",
	                   &p, &r) == CORE_OK);
	check_round_trip(r);
	CHECK_INT(store_i64(r, 0, "len", 0), 3);
	CHECK_INT(store_i64(r, 0, "first", 0), 3);
	PQclear(r);
	buf_free(&keep);
}

/* STORE_RUN1 and STORE_RUN bind their tagged values exactly as the store_param_* calls do. */
static void tagged_params_round_trip(void)
{
	PGresult *r = NULL;
	REQUIRE(STORE_RUN1(db, ROUND_TRIP_COLUMNS, &r, STORE_I64(-9007199254740993LL), STORE_STR("it's \"quoted\""),
	                   STORE_BOOL(true), STORE_I64_OR_NULL(0), STORE_NULL) == CORE_OK);
	check_round_trip(r);
	PQclear(r);
	struct store_conn *c = NULL;
	REQUIRE(store_get(db, &c) == CORE_OK);
	r = NULL;
	CHECK_INT(STORE_RUN(c, ROUND_TRIP_COLUMNS ", $6::bigint AS kept", &r, STORE_I64(-9007199254740993LL),
	                    STORE_STR("it's \"quoted\""), STORE_BOOL(true), STORE_I64_OR_NULL(0), STORE_NULL,
	                    STORE_I64_OR_NULL(42)),
	          CORE_OK);
	if (r) {
		check_round_trip(r);
		CHECK_INT(store_i64(r, 0, "kept", 0), 42);
	}
	PQclear(r);
	store_put(db, c);
}

static void rows_are_typed(void)
{
	PGresult *r = NULL;
	REQUIRE(
	    store_run1(db,
	               "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, true AS d, 1.5::float8 AS e, 'x'::text AS f,"
	               " '{\"k\": [1]}'::jsonb AS g, NULL::text AS h, now() AS t",
	               NULL, &r) == CORE_OK);
	struct json_object *o = rows_row(r, 0);
	CHECK_STR(json_object_to_json_string_ext(json_object_object_get(o, "a"), 0), "1");
	CHECK(json_object_is_type(json_object_object_get(o, "c"), json_type_int));
	CHECK(json_object_is_type(json_object_object_get(o, "d"), json_type_boolean));
	CHECK(json_object_is_type(json_object_object_get(o, "e"), json_type_double));
	CHECK(json_object_is_type(json_object_object_get(o, "f"), json_type_string));
	CHECK_STR(json_object_to_json_string_ext(json_object_object_get(o, "g"), JSON_C_TO_STRING_PLAIN),
	          "{\"k\":[1]}");
	struct json_object *h = NULL;
	CHECK(json_object_object_get_ex(o, "h", &h) && h == NULL);
	CHECK(json_object_is_type(json_object_object_get(o, "t"), json_type_string));
	json_object_put(o);
	PQclear(r);
}

static void pages_keep_limit_and_point_at_the_last(void)
{
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, 3 + 1);
	REQUIRE(store_run1(db,
	                   "SELECT i AS id, json_build_object('id', i, 'name', 'n' || i)::text AS j"
	                   " FROM generate_series(10, 1, -1) i LIMIT $1",
	                   &p, &r) == CORE_OK);
	struct json_object *page = rows_page(r, 3, "id");
	CHECK_STR(json_object_to_json_string_ext(page, JSON_C_TO_STRING_PLAIN),
	          "{\"items\":[{\"id\":10,\"name\":\"n10\"},{\"id\":9,\"name\":\"n9\"},{\"id\":8,\"name\":\"n8\"}],"
	          "\"next_cursor\":\"8\"}");
	json_object_put(page);
	page = rows_page(r, 4, "id"); /* all rows fit: no next page */
	CHECK_INT(json_object_array_length(json_object_object_get(page, "items")), 4);
	struct json_object *nc = (void *)1;
	CHECK(json_object_object_get_ex(page, "next_cursor", &nc) && nc == NULL);
	json_object_put(page);
	PQclear(r);
}

/* How many statements c's session has prepared whose text contains `like` (a LIKE pattern). */
static int64_t prepared_count(struct store_conn *c, const char *like)
{
	PGresult *r = NULL;
	int64_t n = -1;
	if (STORE_RUN(c, "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1", &r,
	              STORE_STR(like)) == CORE_OK)
		n = store_i64(r, 0, "n", -1);
	PQclear(r);
	return n;
}

static void prepared_statements_are_reused(void)
{
	struct store_conn *c = NULL;
	REQUIRE(store_get(db, &c) == CORE_OK);
	for (int i = 1; i <= 7; i++) { /* past the five custom plans: the generic plan must give the same answers */
		PGresult *r = NULL;
		REQUIRE(STORE_RUN(c, STORE_PREPARE "SELECT $1::bigint * 2 AS twice /* reuse */", &r, STORE_I64(i)) ==
		        CORE_OK);
		CHECK_INT(store_i64(r, 0, "twice", 0), 2 * i);
		PQclear(r);
	}
	CHECK_INT(prepared_count(c, "%/* reuse */%"), 1);
	REQUIRE(STORE_RUN(c, "SELECT $1::bigint AS plain /* unmarked */", NULL, STORE_I64(1)) == CORE_OK);
	CHECK_INT(prepared_count(c, "%/* unmarked */%"), 0);
	/* a failing statement is not kept and fails as an unmarked one would */
	CHECK(store_run(c, STORE_PREPARE "SELECT nosuchcolumn FROM pg_class /* broken */", NULL, NULL) ==
	      CORE_EINTERNAL);
	CHECK_INT(prepared_count(c, "%/* broken */%"), 0);
	/* ... with its own error, also inside a transaction (which the failed PREPARE ended) */
	REQUIRE(store_begin(c) == CORE_OK);
	CHECK(store_run(c, STORE_PREPARE "SELECT nosuchcolumn FROM pg_class /* broken */", NULL, NULL) ==
	      CORE_EINTERNAL);
	CHECK(strstr(store_last_error(c), "nosuchcolumn") != NULL);
	store_rollback(c);
	store_put(db, c);
}

static void prepared_statements_outlive_deallocate_and_table_changes(void)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	static const char sel[] = STORE_PREPARE "SELECT * FROM prep_t WHERE a = $1::integer";
	REQUIRE(store_get(db, &c) == CORE_OK);
	REQUIRE(store_exec_script(c, "DROP TABLE IF EXISTS prep_t; CREATE TABLE prep_t (a integer);"
	                             " INSERT INTO prep_t VALUES (1)") == CORE_OK);
	REQUIRE(STORE_RUN(c, sel, &r, STORE_I64(1)) == CORE_OK);
	CHECK_INT(PQnfields(r), 1);
	PQclear(r);
	/* the session forgot it (26000): prepared again, the call retried */
	REQUIRE(store_exec_script(c, "DEALLOCATE ALL") == CORE_OK);
	REQUIRE(STORE_RUN(c, sel, &r, STORE_I64(1)) == CORE_OK);
	CHECK_INT(PQntuples(r), 1);
	PQclear(r);
	/* its result type changed (0A000, "cached plan must not change result type"), outside a transaction */
	REQUIRE(store_exec_script(c, "ALTER TABLE prep_t ADD COLUMN b text DEFAULT 'x'") == CORE_OK);
	REQUIRE(STORE_RUN(c, sel, &r, STORE_I64(1)) == CORE_OK);
	CHECK_INT(PQnfields(r), 2);
	CHECK_STR(store_str(r, 0, "b"), "x");
	PQclear(r);
	/* ... and inside one: that transaction fails, the next use works */
	REQUIRE(store_exec_script(c, "ALTER TABLE prep_t ADD COLUMN c integer DEFAULT 7") == CORE_OK);
	REQUIRE(store_begin(c) == CORE_OK);
	CHECK(STORE_RUN(c, sel, NULL, STORE_I64(1)) != CORE_OK);
	store_rollback(c);
	REQUIRE(STORE_RUN(c, sel, &r, STORE_I64(1)) == CORE_OK);
	CHECK_INT(PQnfields(r), 3);
	CHECK_INT(store_i64(r, 0, "c", 0), 7);
	PQclear(r);
	REQUIRE(store_begin(c) == CORE_OK); /* and again inside a transaction, as a delivery runs it */
	REQUIRE(STORE_RUN(c, sel, &r, STORE_I64(1)) == CORE_OK);
	CHECK_INT(PQnfields(r), 3);
	PQclear(r);
	REQUIRE(store_commit(c) == CORE_OK);
	store_put(db, c);
}

static void prepared_statements_evict_the_least_recently_run(void)
{
	struct store *fresh = store_open(url, 1); /* a new session: nothing prepared yet */
	struct store_conn *c = NULL;
	REQUIRE(store_get(fresh, &c) == CORE_OK);
	char sql[128];
	for (int i = 0; i < STORE_PREPARED_MAX + 6; i++) {
		PGresult *r = NULL;
		snprintf(sql, sizeof(sql), STORE_PREPARE "SELECT %d AS n /* many */", i);
		REQUIRE(store_run(c, sql, NULL, &r) == CORE_OK);
		CHECK_INT(store_i64(r, 0, "n", -1), i);
		PQclear(r);
		/* a statement run on every request stays prepared however many others come */
		REQUIRE(store_run(c, STORE_PREPARE "SELECT 'hot' AS h /* hot */", NULL, &r) == CORE_OK);
		CHECK_STR(store_str(r, 0, "h"), "hot");
		PQclear(r);
	}
	CHECK_INT(prepared_count(c, "%/* hot */%"), 1);
	CHECK_INT(prepared_count(c, "%/* many */%"), STORE_PREPARED_MAX - 1);
	CHECK_INT(prepared_count(c, "%SELECT 0 AS n /* many */%"), 0); /* the least recent went first */
	PGresult *r = NULL;
	REQUIRE(store_run(c, STORE_PREPARE "SELECT 0 AS n /* many */", NULL, &r) == CORE_OK); /* and comes back */
	CHECK_INT(store_i64(r, 0, "n", -1), 0);
	PQclear(r);
	CHECK_INT(prepared_count(c, "%SELECT 0 AS n /* many */%"), 1);
	CHECK_INT(prepared_count(c, "%/* many */%"), STORE_PREPARED_MAX - 1);
	store_put(fresh, c);
	store_close(fresh);
}

/* Every connection of the pool runs without JIT (core/store.c says why): one borrowed twice over, and a fresh one. */
static void sessions_run_without_jit(void)
{
	for (int i = 0; i < 3; i++) {
		PGresult *r = NULL;
		REQUIRE(store_run1(db, "SELECT current_setting('jit') AS jit, current_setting('TimeZone') AS tz", NULL,
		                   &r) == CORE_OK);
		CHECK_STR(store_str(r, 0, "jit"), "off");
		CHECK_STR(store_str(r, 0, "tz"), "UTC");
		PQclear(r);
	}
}

int main(void)
{
	log_init(LOG_ERROR, 0);
	url = testlib_fresh_database("rows");
	db = store_open(url, 2);
	RUN(typed_params_round_trip);
	RUN(tagged_params_round_trip);
	RUN(rows_are_typed);
	RUN(pages_keep_limit_and_point_at_the_last);
	RUN(prepared_statements_are_reused);
	RUN(prepared_statements_outlive_deallocate_and_table_changes);
	RUN(prepared_statements_evict_the_least_recently_run);
	RUN(sessions_run_without_jit);
	store_close(db);
	free(url);
	return testlib_done();
}
