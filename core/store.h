/*
 * core/store.h
 *    The database layer: a small pool of libpq connections and helpers that run one parameterised statement.
 *
 * Design: all SQL of mrgate lives in core/ (store.c and the domain modules that call store_exec); server/ never
 * builds SQL. Statements go through PQexecParams with out-of-line parameters ($1...), except migrations, which
 * are multi-statement scripts (store_exec_script). Every PGresult is cleared on every path by the callers
 * through store_result_free() or PQclear(). A failed statement maps its SQLSTATE to a core_status:
 * 23505 -> CORE_ECONFLICT, 23xxx/22xxx -> CORE_EINVAL, 40001/40P01/55P03 -> CORE_ECONFLICT,
 * 08xxx/57Pxx or a broken connection -> CORE_EUNAVAIL, anything else -> CORE_EINTERNAL.
 *
 * Reconnection: a connection found broken (PostgreSQL restarted) is reset when it is next taken from the pool, so
 * after an outage the first call may fail with CORE_EUNAVAIL and the following ones work again; nobody has to
 * restart mrgate.
 *
 * Threading: struct store is shared by all threads. A struct store_conn is used by one thread at a time, between
 * store_get() and store_put().
 * Ownership: store_open()'s result is freed with store_close(); connections are borrowed from the pool and
 * returned with store_put().
 */
#ifndef MRGATE_CORE_STORE_H
#define MRGATE_CORE_STORE_H

#include "status.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_conn;

/* A pool of at most max_conns connections to url; connects lazily. NULL on allocation failure. */
struct store *store_open(const char *url, int max_conns);
void store_close(struct store *s); /* NULL is fine; all connections must have been returned */

/*
 * Borrow a connection, waiting up to 10 s for a free one: the waiters are served in the order they came (a returned
 * connection is handed to the oldest). Returns CORE_EUNAVAIL (and logs why) when none came in time or the database
 * cannot be reached. A thread returns the connection it holds before it asks for another: threads that each hold
 * one and wait for a second can take the whole pool and wait for each other until their 10 s run out.
 */
enum core_status store_get(struct store *s, struct store_conn **conn_out);
/* Return a connection. A connection left inside a transaction is rolled back first. NULL is fine. */
void store_put(struct store *s, struct store_conn *c);

/* The raw connection, for the rare caller that needs libpq directly (COPY, notifications). Borrowed. */
PGconn *store_pg(struct store_conn *c);

/*
 * Prepared statements, opted into per statement: a statement whose text starts with STORE_PREPARE is prepared once
 * per connection (PQprepare, the text kept in the connection's cache of at most STORE_PREPARED_MAX texts, where the
 * least recently run one is deallocated to make room, so the many shapes of one statement cannot crowd out the
 * statements run on every request) and then
 * run with PQexecPrepared, so PostgreSQL parses and rewrites it once per connection and, after five runs, plans it
 * once too when its generic plan costs no more than the custom ones (PostgreSQL's plan_cache_mode auto). Parsing,
 * rewriting and planning were 60% of PostgreSQL's CPU for a webhook delivery. Only for statements whose every
 * parameter is a value compared to an indexed key: a filter written "$1 IS NULL OR col = $1" gets a generic plan
 * that reads everything, so such statements (the repo list) are never marked. A connection that is reset loses its
 * statements and its cache with them; a statement PostgreSQL no longer knows (26000) or whose result type changed
 * under it (0A000, a migration by another instance) is prepared again, and the call is retried when no
 * transaction was open. The texts are compared in full, so the same text from two call sites is one statement.
 */
#define STORE_PREPARE      "/* prepared */ "
#define STORE_PREPARED_MAX 96

/*
 * Run one statement with text parameters (NULL entries are SQL NULL). On success *res_out (may be NULL when the
 * caller wants no rows) holds the result, owned by the caller (PQclear). On failure nothing is returned and the
 * error is logged with the statement's first words, never its parameters (they may be secrets).
 */
enum core_status store_exec(struct store_conn *c, const char *sql, int nparams, const char *const *params,
                            PGresult **res_out);
/*
 * Borrow a connection, run one statement, return the connection: for the many callers that need a single
 * statement outside a transaction. Same result ownership and errors as store_exec (plus store_get's).
 */
enum core_status store_query(struct store *s, const char *sql, int nparams, const char *const *params,
                             PGresult **res_out);

/*
 * Typed parameters: the one way to pass values to a statement (no hand-formatted numbers).
 *
 *     struct store_params p = {0};
 *     store_param_i64(&p, repo_id);
 *     store_param_str(&p, name);          // borrowed: must outlive the store_run call
 *     st = store_run(c, "UPDATE repos SET name = $2 WHERE id = $1", &p, NULL);
 *
 * Numbers are rendered into the struct itself, so the struct must stay alive (and unmoved) until the statement ran.
 * More than STORE_PARAMS_MAX parameters is a programming error and aborts.
 */
#define STORE_PARAMS_MAX 24
struct store_params {
	int n;
	const char *v[STORE_PARAMS_MAX];
	char num[STORE_PARAMS_MAX][24];
};
void store_param_i64(struct store_params *p, int64_t v);
void store_param_i64_or_null(struct store_params *p, int64_t v); /* 0 -> SQL NULL ("none" for ids, limits) */
void store_param_str(struct store_params *p, const char *s);     /* borrowed; NULL -> SQL NULL */
void store_param_bool(struct store_params *p, bool b);
void store_param_null(struct store_params *p);
/* A bigint[] parameter ("{1,2,3}"); the text is kept in *keep (a struct buf the caller frees after the run). */
struct buf;
void store_param_i64_array(struct store_params *p, const int64_t *v, size_t n, struct buf *keep);

/*
 * One statement with its parameters written in the call, each tagged with its type, when they are all at hand:
 *
 *     st = STORE_RUN(c, "UPDATE repos SET name = $2 WHERE id = $1", NULL, STORE_I64(repo_id), STORE_STR(name));
 *     st = STORE_RUN1(db, "SELECT ... WHERE id = $1", &res, STORE_I64_OR_NULL(event_id));
 *
 * The same as binding each with the store_param_* call its tag names and then store_run / store_run1 (strings
 * are borrowed the same way, results and errors are the same). The tags' values are converted as function
 * arguments are, so a wrong type is a compile-time error, not a varargs surprise; each is evaluated once (the
 * count is a sizeof, which evaluates nothing).
 */
enum store_param_kind { STORE_P_I64, STORE_P_I64_OR_NULL, STORE_P_STR, STORE_P_BOOL, STORE_P_NULL };
struct store_param {
	enum store_param_kind kind;
	int64_t i;
	const char *s;
	bool b;
};
#define STORE_I64(v)         ((struct store_param){.kind = STORE_P_I64, .i = (v)})
#define STORE_I64_OR_NULL(v) ((struct store_param){.kind = STORE_P_I64_OR_NULL, .i = (v)})
#define STORE_STR(v)         ((struct store_param){.kind = STORE_P_STR, .s = (v)})
#define STORE_BOOL(v)        ((struct store_param){.kind = STORE_P_BOOL, .b = (v)})
#define STORE_NULL           ((struct store_param){.kind = STORE_P_NULL})
enum core_status store_run_tagged(struct store_conn *c, const char *sql, PGresult **res_out,
                                  const struct store_param *v, size_t n);
enum core_status store_run1_tagged(struct store *s, const char *sql, PGresult **res_out, const struct store_param *v,
                                   size_t n);
#define STORE_TAGGED_(...)                                                                                             \
	(const struct store_param[]){__VA_ARGS__},                                                                     \
	    sizeof((const struct store_param[]){__VA_ARGS__}) / sizeof(struct store_param)
#define STORE_RUN(c, sql, res_out, ...)  store_run_tagged((c), (sql), (res_out), STORE_TAGGED_(__VA_ARGS__))
#define STORE_RUN1(s, sql, res_out, ...) store_run1_tagged((s), (sql), (res_out), STORE_TAGGED_(__VA_ARGS__))

/* store_exec / store_query with typed parameters (p may be NULL for none). */
enum core_status store_run(struct store_conn *c, const char *sql, const struct store_params *p, PGresult **res_out);
enum core_status store_run1(struct store *s, const char *sql, const struct store_params *p, PGresult **res_out);

/* "{1,2,3}": the text of a bigint[] parameter for ids; malloc'd (the caller frees), NULL when out of memory. */
char *store_int64_array(const int64_t *v, size_t n);

/* An ISO-8601 UTC rendering of a timestamptz column in SQL text: STORE_TS("created_at") " AS created_at". */
#define STORE_TS(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Run a multi-statement script (migrations only). */
enum core_status store_exec_script(struct store_conn *c, const char *sql);

/* BEGIN / COMMIT / ROLLBACK. store_rollback is safe to call when no transaction is open, and with NULL. */
enum core_status store_begin(struct store_conn *c);
enum core_status store_commit(struct store_conn *c);
/* store_get() then store_begin(): a borrowed connection inside a new transaction; *conn_out is NULL on failure
 * (the connection, if any, went back to the pool). */
enum core_status store_get_begin(struct store *s, struct store_conn **conn_out);
void store_rollback(struct store_conn *c);
/* One transaction around fn: begin, fn(c, user), commit when it returned CORE_OK, else roll back; the connection
 * goes back to the pool either way. Returns fn's status, or the begin's or commit's failure. */
enum core_status store_tx(struct store *s, enum core_status (*fn)(struct store_conn *c, void *user), void *user);

/* The last error's message (lower case, PostgreSQL's primary message) and SQLSTATE, for callers that explain. */
const char *store_last_error(struct store_conn *c);
const char *store_last_sqlstate(struct store_conn *c);

/* Map a SQLSTATE to a core_status (exported for tests). */
enum core_status store_sqlstate_status(const char *sqlstate);

/* Pool statistics for /metrics. */
struct store_stats {
	int open;         /* connections established */
	int in_use;       /* borrowed right now */
	int waiting;      /* threads waiting for one (every connection is borrowed) */
	int max;          /* pool size */
	long long errors; /* statements that failed */
	long long reconnects;
};
void store_stats(struct store *s, struct store_stats *out);

/* Value helpers for results: NULL-safe, by column name (PQfnumber), checking PQgetisnull. */
const char *store_str(const PGresult *r, int row, const char *col); /* NULL when SQL NULL or no such column */
int64_t store_i64(const PGresult *r, int row, const char *col, int64_t dflt);
bool store_bool(const PGresult *r, int row, const char *col, bool dflt);

#endif
