/*
 * core/store.c
 *    libpq connection pool and statement helpers.
 */
#include "store.h"

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct store_conn {
	struct store *owner;
	PGconn *pg;
	bool in_use;
	/* the statements prepared on pg, each as "mrgate_p<index>": its text (owned) and when it last ran, on the uses
	 * clock (the least recent goes when the cache is full) */
	struct {
		char *sql;
		uint64_t used;
	} prepared[STORE_PREPARED_MAX];
	int nprepared;
	uint64_t uses;
	bool prepared_stale; /* one of them failed as stale inside a transaction: drop them all when it ended */
	char last_error[512];
	char last_sqlstate[6];
};

/* A thread waiting in store_get for a connection, in the pool's queue (on its stack). */
struct waiter {
	pthread_cond_t handed;
	struct store_conn *got; /* set by store_put, which hands it the connection it returns */
	struct waiter *next;
};

struct store {
	char *url;
	int max;
	struct store_conn *conns;
	pthread_mutex_t lock;
	/* the threads waiting for a connection, oldest first: a returned connection goes to the oldest, so a thread
	 * that returns one and at once asks again (a job worker) cannot take it from a request waiting before it */
	struct waiter *first, *last;
	long long errors;
	long long reconnects;
};

struct store *store_open(const char *url, int max_conns)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->url = strdup(url);
	s->max = max_conns > 0 ? max_conns : 1;
	s->conns = calloc((size_t)s->max, sizeof(*s->conns));
	if (!s->url || !s->conns) {
		free(s->url);
		free(s->conns);
		free(s);
		return NULL;
	}
	for (int i = 0; i < s->max; i++)
		s->conns[i].owner = s;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

/* Forget the statements prepared on c (its session is gone or new). */
static void prepared_clear(struct store_conn *c)
{
	for (int i = 0; i < c->nprepared; i++)
		free(c->prepared[i].sql);
	c->nprepared = 0;
	c->prepared_stale = false;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->max; i++) {
		if (s->conns[i].pg)
			PQfinish(s->conns[i].pg);
		prepared_clear(&s->conns[i]);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->conns);
	free(s->url);
	free(s);
}

/* First line of a libpq error message, without the trailing newline. */
static void copy_message(char *dst, size_t cap, const char *msg)
{
	size_t n = strcspn(msg ? msg : "", "\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, msg ? msg : "", n);
	dst[n] = '\0';
}

/*
 * Whether an idle connection was ended by the server while it sat in the pool: PostgreSQL restarting (or an
 * administrator's pg_terminate_backend) sends "terminating connection" and closes it, which leaves the socket
 * readable. A pool connection listens on nothing, so anything to read while no statement runs means the session is
 * over (or, rarely, an unasked parameter report: a reconnect too many). Asking costs no round trip; without it, the
 * first statement on every pooled connection failed after a database restart (a login answered 503 "could not log
 * in" once PostgreSQL was back).
 */
static bool ended_while_idle(PGconn *pg)
{
	struct pollfd pf = {.fd = PQsocket(pg), .events = POLLIN};
	return pf.fd >= 0 && PQtransactionStatus(pg) == PQTRANS_IDLE && poll(&pf, 1, 0) > 0;
}

/* Make sure c->pg is a live connection. Called with the connection borrowed (not under the pool lock). */
static enum core_status ensure_connected(struct store *s, struct store_conn *c)
{
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK && !ended_while_idle(c->pg))
		return CORE_OK;
	prepared_clear(c); /* a new session knows none of them */
	if (c->pg) {
		PQreset(c->pg);
		__atomic_add_fetch(&s->reconnects, 1, __ATOMIC_RELAXED);
	} else {
		c->pg = PQconnectdb(s->url);
	}
	if (!c->pg)
		return CORE_ENOMEM;
	if (PQstatus(c->pg) != CONNECTION_OK) {
		copy_message(c->last_error, sizeof(c->last_error), PQerrorMessage(c->pg));
		log_warn("could not connect to the database: %s", c->last_error);
		PQfinish(c->pg);
		c->pg = NULL;
		return CORE_EUNAVAIL;
	}
	/* A safe search_path: our objects live in public; nothing is resolved through a user-writable schema.
	 * No JIT: mrgate's statements are short, and a refresh of the stored status of 1,000 repos, whose estimate the
	 * planner inflates (config_default is one row it has never analyzed), was compiled with LLVM at every run:
	 * 30 ms of work took 700 ms, inside the configure request. Timestamps come out as ISO 8601 in UTC
	 * ("2026-12-02 07:08:40.5+00"), which C code may read (core/repos.c). */
	PGresult *r = PQexec(c->pg, "SET search_path = public, pg_catalog; SET TIME ZONE 'UTC'; SET DateStyle = ISO; "
	                            "SET client_min_messages = warning; SET jit = off");
	PQclear(r);
	return CORE_OK;
}

/* Take w out of s's queue (it timed out). Under s->lock. */
static void waiter_remove(struct store *s, struct waiter *w)
{
	struct waiter **pp = &s->first, *prev = NULL;
	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (s->last == w)
		s->last = prev;
}

enum core_status store_get(struct store *s, struct store_conn **conn_out)
{
	*conn_out = NULL;
	struct store_conn *c = NULL;
	pthread_mutex_lock(&s->lock);
	/* A free connection exists only while nobody waits (store_put hands it to the oldest waiter). Prefer one
	 * that is already open. */
	for (int i = 0; i < s->max && !c; i++)
		if (!s->conns[i].in_use && s->conns[i].pg)
			c = &s->conns[i];
	for (int i = 0; i < s->max && !c; i++)
		if (!s->conns[i].in_use)
			c = &s->conns[i];
	if (c) {
		c->in_use = true;
	} else {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += 10;
		struct waiter w = {.got = NULL, .next = NULL};
		pthread_condattr_t attr;
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&w.handed, &attr);
		pthread_condattr_destroy(&attr);
		if (s->last)
			s->last->next = &w;
		else
			s->first = &w;
		s->last = &w;
		while (!w.got && pthread_cond_timedwait(&w.handed, &s->lock, &deadline) == 0)
			;
		if (!w.got)
			waiter_remove(s, &w);
		pthread_cond_destroy(&w.handed);
		c = w.got; /* handed over in use */
		if (!c) {
			pthread_mutex_unlock(&s->lock);
			log_error("no free database connection within 10 s (pool of %d)", s->max);
			return CORE_EUNAVAIL;
		}
	}
	pthread_mutex_unlock(&s->lock);

	c->last_error[0] = '\0';
	c->last_sqlstate[0] = '\0';
	enum core_status st = ensure_connected(s, c);
	if (st != CORE_OK) {
		store_put(s, c);
		return st;
	}
	*conn_out = c;
	return CORE_OK;
}

void store_put(struct store *s, struct store_conn *c)
{
	if (!c)
		return;
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		store_rollback(c);
	pthread_mutex_lock(&s->lock);
	struct waiter *w = s->first;
	if (w) {
		s->first = w->next;
		if (!s->first)
			s->last = NULL;
		w->got = c; /* stays in use: it is the waiter's now */
		pthread_cond_signal(&w->handed);
	} else {
		c->in_use = false;
	}
	pthread_mutex_unlock(&s->lock);
}

PGconn *store_pg(struct store_conn *c)
{
	return c->pg;
}

enum core_status store_sqlstate_status(const char *st)
{
	if (!st || strlen(st) != 5)
		return CORE_EUNAVAIL; /* no SQLSTATE: the connection failed */
	if (strcmp(st, "23505") == 0)
		return CORE_ECONFLICT;
	if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0)
		return CORE_EINVAL;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
		return CORE_ECONFLICT;
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0)
		return CORE_EUNAVAIL;
	return CORE_EINTERNAL;
}

/* Record and log a failed result; returns its status. Clears r. */
static enum core_status fail(struct store_conn *c, PGresult *r, const char *sql)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	copy_message(c->last_error, sizeof(c->last_error), primary ? primary : PQerrorMessage(c->pg));
	copy_message(c->last_sqlstate, sizeof(c->last_sqlstate), state ? state : "");
	enum core_status st = store_sqlstate_status(state);
	__atomic_add_fetch(&c->owner->errors, 1, __ATOMIC_RELAXED);
	if (PQstatus(c->pg) != CONNECTION_OK)
		st = CORE_EUNAVAIL;
	/* Unique violations and bad input are the caller's to explain; log the rest. */
	enum log_level lvl = (st == CORE_ECONFLICT || st == CORE_EINVAL) ? LOG_DEBUG : LOG_ERROR;
	log_msg(lvl, "statement failed (%s): %s [%.60s]", c->last_sqlstate[0] ? c->last_sqlstate : "no sqlstate",
	        c->last_error, sql);
	PQclear(r);
	return st;
}

static bool result_ok(const PGresult *r)
{
	ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	return es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
}

/* The slot for a new statement: a free one, else the least recently run one, deallocated on the server (so many
 * shapes of one statement, e.g. the repo list's, cannot crowd out the ones run on every request); -1 when none can
 * be freed now (inside a failed transaction, or the DEALLOCATE failed): the statement then runs unnamed. */
static int prepared_slot(struct store_conn *c)
{
	for (int i = 0; i < c->nprepared; i++)
		if (!c->prepared[i].sql)
			return i; /* freed by a PREPARE that failed after its DEALLOCATE */
	if (c->nprepared < STORE_PREPARED_MAX)
		return c->nprepared;
	if (PQtransactionStatus(c->pg) == PQTRANS_INERROR)
		return -1;
	int v = 0;
	for (int i = 1; i < c->nprepared; i++)
		if (c->prepared[i].used < c->prepared[v].used)
			v = i;
	char sql[48];
	snprintf(sql, sizeof(sql), "DEALLOCATE mrgate_p%d", v);
	PGresult *r = PQexec(c->pg, sql);
	bool ok = result_ok(r);
	PQclear(r);
	if (!ok)
		return -1;
	free(c->prepared[v].sql);
	c->prepared[v].sql = NULL;
	return v;
}

/* The index of sql in c's prepared statements, preparing it when new; -1: run it unnamed (no slot now), or the
 * PREPARE failed (*failed_out: its result, the statement's error, which may have ended a transaction). */
static int prepared_index(struct store_conn *c, const char *sql, PGresult **failed_out)
{
	for (int i = 0; i < c->nprepared; i++)
		if (c->prepared[i].sql && strcmp(c->prepared[i].sql, sql) == 0) {
			c->prepared[i].used = ++c->uses;
			return i;
		}
	int i = prepared_slot(c);
	if (i < 0)
		return -1;
	char name[24];
	snprintf(name, sizeof(name), "mrgate_p%d", i);
	PGresult *r = PQprepare(c->pg, name, sql, 0, NULL);
	if (!result_ok(r)) {
		*failed_out = r; /* an evicted slot stays free (sql NULL) for the next one */
		return -1;
	}
	PQclear(r);
	c->prepared[i].sql = xstrdup(sql);
	c->prepared[i].used = ++c->uses;
	if (i == c->nprepared)
		c->nprepared++;
	return i;
}

/* Drop every statement prepared on c, on the server and in the cache (a rare path: one of them went stale). */
static void prepared_reset(struct store_conn *c)
{
	PGresult *r = PQexec(c->pg, "DEALLOCATE ALL");
	PQclear(r);
	prepared_clear(c);
	c->prepared_stale = false;
}

/* A statement marked STORE_PREPARE: prepared once per connection, then executed by name. */
static PGresult *exec_prepared(struct store_conn *c, const char *sql, int nparams, const char *const *params)
{
	if (c->prepared_stale && PQtransactionStatus(c->pg) != PQTRANS_INERROR)
		prepared_reset(c);
	for (int attempt = 0;; attempt++) {
		PGresult *failed = NULL;
		int i = prepared_index(c, sql, &failed);
		if (failed)
			return failed;
		if (i < 0)
			return PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
		char name[24];
		snprintf(name, sizeof(name), "mrgate_p%d", i);
		PGresult *r = PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
		const char *state = result_ok(r) ? NULL : PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *msg = state ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		bool stale = state && (strcmp(state, "26000") == 0 || (strcmp(state, "0A000") == 0 && msg &&
		                                                       strstr(msg, "cached plan must not change")));
		if (!stale)
			return r;
		/* unknown to this session, or a cached plan whose result type changed (a migration by another
		 * instance): prepare again, now when no transaction was open (then the call is retried once), else
		 * before the next prepared statement once the failed transaction has ended */
		c->prepared_stale = true;
		if (attempt > 0 || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
			return r;
		PQclear(r);
		prepared_reset(c);
	}
}

enum core_status store_exec(struct store_conn *c, const char *sql, int nparams, const char *const *params,
                            PGresult **res_out)
{
	if (res_out)
		*res_out = NULL;
	PGresult *r = strncmp(sql, STORE_PREPARE, sizeof(STORE_PREPARE) - 1) == 0
	                  ? exec_prepared(c, sql, nparams, params)
	                  : PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!result_ok(r))
		return fail(c, r, sql);
	if (res_out)
		*res_out = r;
	else
		PQclear(r);
	return CORE_OK;
}

enum core_status store_query(struct store *s, const char *sql, int nparams, const char *const *params,
                             PGresult **res_out)
{
	struct store_conn *c = NULL;
	if (res_out)
		*res_out = NULL;
	enum core_status st = store_get(s, &c);
	if (st == CORE_OK)
		st = store_exec(c, sql, nparams, params, res_out);
	store_put(s, c);
	return st;
}

char *store_int64_array(const int64_t *v, size_t n)
{
	size_t cap = n * 21 + 3, len = 0; /* 20 characters per int64 and a comma, braces, NUL */
	char *s = malloc(cap);
	if (!s)
		return NULL;
	s[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%lld", i ? "," : "", (long long)v[i]);
	snprintf(s + len, cap - len, "}");
	return s;
}

enum core_status store_exec_script(struct store_conn *c, const char *sql)
{
	PGresult *r = PQexec(c->pg, sql);
	ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
		return fail(c, r, sql);
	PQclear(r);
	return CORE_OK;
}

enum core_status store_begin(struct store_conn *c)
{
	return store_exec(c, "BEGIN", 0, NULL, NULL);
}

enum core_status store_get_begin(struct store *s, struct store_conn **conn_out)
{
	enum core_status st = store_get(s, conn_out);
	if (st == CORE_OK && (st = store_begin(*conn_out)) != CORE_OK) {
		store_put(s, *conn_out);
		*conn_out = NULL;
	}
	return st;
}

enum core_status store_tx(struct store *s, enum core_status (*fn)(struct store_conn *c, void *user), void *user)
{
	struct store_conn *c = NULL;
	enum core_status st = store_get_begin(s, &c);
	if (st != CORE_OK)
		return st;
	st = fn(c, user);
	if (st == CORE_OK)
		st = store_commit(c);
	else
		store_rollback(c);
	store_put(s, c);
	return st;
}

enum core_status store_commit(struct store_conn *c)
{
	return store_exec(c, "COMMIT", 0, NULL, NULL);
}

void store_rollback(struct store_conn *c)
{
	if (c && c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c->pg, "ROLLBACK");
		PQclear(r);
	}
}

const char *store_last_error(struct store_conn *c)
{
	return c->last_error;
}

const char *store_last_sqlstate(struct store_conn *c)
{
	return c->last_sqlstate;
}

void store_stats(struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->max; i++) {
		if (s->conns[i].pg)
			out->open++;
		if (s->conns[i].in_use)
			out->in_use++;
	}
	for (struct waiter *w = s->first; w; w = w->next)
		out->waiting++;
	pthread_mutex_unlock(&s->lock);
	out->max = s->max;
	out->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
	out->reconnects = __atomic_load_n(&s->reconnects, __ATOMIC_RELAXED);
}

const char *store_str(const PGresult *r, int row, const char *col)
{
	int f = PQfnumber(r, col);
	if (f < 0 || row >= PQntuples(r) || PQgetisnull(r, row, f))
		return NULL;
	return PQgetvalue(r, row, f);
}

int64_t store_i64(const PGresult *r, int row, const char *col, int64_t dflt)
{
	const char *v = store_str(r, row, col);
	if (!v)
		return dflt;
	char *end;
	long long x = strtoll(v, &end, 10);
	return end == v ? dflt : (int64_t)x;
}

bool store_bool(const PGresult *r, int row, const char *col, bool dflt)
{
	const char *v = store_str(r, row, col);
	if (!v)
		return dflt;
	return v[0] == 't';
}

static const char **next_slot(struct store_params *p)
{
	if (p->n >= STORE_PARAMS_MAX) {
		log_error("store: more than %d statement parameters", STORE_PARAMS_MAX);
		abort();
	}
	return &p->v[p->n++];
}

void store_param_i64(struct store_params *p, int64_t v)
{
	const char **slot = next_slot(p);
	char *num = p->num[slot - p->v];
	snprintf(num, sizeof(p->num[0]), "%lld", (long long)v);
	*slot = num;
}

void store_param_i64_or_null(struct store_params *p, int64_t v)
{
	if (v)
		store_param_i64(p, v);
	else
		store_param_null(p);
}

void store_param_str(struct store_params *p, const char *s)
{
	*next_slot(p) = s;
}

void store_param_bool(struct store_params *p, bool b)
{
	*next_slot(p) = b ? "true" : "false";
}

void store_param_null(struct store_params *p)
{
	*next_slot(p) = NULL;
}

void store_param_i64_array(struct store_params *p, const int64_t *v, size_t n, struct buf *keep)
{
	buf_reset(keep);
	buf_putc(keep, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(keep, i ? ",%lld" : "%lld", (long long)v[i]);
	buf_putc(keep, '}');
	*next_slot(p) = buf_str(keep);
}

static void params_add(struct store_params *p, const struct store_param *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		switch (v[k].kind) {
		case STORE_P_I64: store_param_i64(p, v[k].i); break;
		case STORE_P_I64_OR_NULL: store_param_i64_or_null(p, v[k].i); break;
		case STORE_P_STR: store_param_str(p, v[k].s); break;
		case STORE_P_BOOL: store_param_bool(p, v[k].b); break;
		case STORE_P_NULL: store_param_null(p); break;
		}
	}
}

enum core_status store_run(struct store_conn *c, const char *sql, const struct store_params *p, PGresult **res_out)
{
	return store_exec(c, sql, p ? p->n : 0, p ? p->v : NULL, res_out);
}

enum core_status store_run1(struct store *s, const char *sql, const struct store_params *p, PGresult **res_out)
{
	return store_query(s, sql, p ? p->n : 0, p ? p->v : NULL, res_out);
}

enum core_status store_run_tagged(struct store_conn *c, const char *sql, PGresult **res_out,
                                  const struct store_param *v, size_t n)
{
	struct store_params p = {0};
	params_add(&p, v, n);
	return store_run(c, sql, &p, res_out);
}

enum core_status store_run1_tagged(struct store *s, const char *sql, PGresult **res_out, const struct store_param *v,
                                   size_t n)
{
	struct store_params p = {0};
	params_add(&p, v, n);
	return store_run1(s, sql, &p, res_out);
}
