/*
 * core/scheduler.c
 *    Leader election by advisory lock and the periodic duty.
 */
#include "scheduler.h"

#include "cond.h"
#include "log.h"
#include "metrics.h"
#include "rows.h"
#include "settings.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Advisory lock key of the scheduler's leadership ("mrgate" + 2); migrations use ...0001. */
#define LEADER_LOCK_KEY "7242840002"

struct scheduler {
	struct scheduler_opts o;
	char *url;
	char *instance;
	PGconn *lead; /* the connection holding the lock, while leader */
	bool leader;
	long long tidied_ms; /* CLOCK_MONOTONIC ms of the last tidy duty; 0: none while leading */
	bool stop;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
};

static bool simple_query_true(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return ok;
}

/* Try to become (or stay) the leader. Returns whether this instance leads now. */
static bool try_lead(struct scheduler *s)
{
	if (s->lead && PQstatus(s->lead) == CONNECTION_OK && s->leader) {
		if (simple_query_true(s->lead, "SELECT true"))
			return true;
		log_warn("scheduler: lost the leader connection; stepping down");
	}
	if (s->lead && PQstatus(s->lead) != CONNECTION_OK) {
		PQfinish(s->lead);
		s->lead = NULL;
	}
	s->leader = false;
	if (!s->lead) {
		s->lead = PQconnectdb(s->url);
		if (PQstatus(s->lead) != CONNECTION_OK) {
			PQfinish(s->lead);
			s->lead = NULL;
			return false;
		}
	}
	if (!simple_query_true(s->lead, "SELECT pg_try_advisory_lock(" LEADER_LOCK_KEY ")"))
		return false;
	s->leader = true;
	struct store_params p = {0};
	store_param_str(&p, s->instance);
	store_run1(s->o.db,
	           "INSERT INTO scheduler_state (id, leader, leader_since) VALUES (1, $1, now())"
	           " ON CONFLICT (id) DO UPDATE SET leader = $1, leader_since = now()",
	           &p, NULL);
	log_info("scheduler: this instance (%s) now leads the scheduled duties", s->instance);
	return true;
}

/* The leader looks again at most this long after finding the duty not due (an interval changed meanwhile). */
#define LEADER_RECHECK_MS 5000

/* Is the duty due? *left_ms gets how long until it is (when not due; 0 when unknown). */
static bool due(struct scheduler *s, long *left_ms)
{
	struct settings set;
	*left_ms = 0;
	if (settings_get(s->o.db, s->o.default_interval, &set) != CORE_OK)
		return false;
	PGresult *r = NULL;
	bool yes = false;
	struct store_params p = {0};
	store_param_i64(&p, set.resync_interval);
	if (store_run1(s->o.db,
	               "SELECT (last_started_at IS NULL OR now() >= last_started_at + $1::int * interval '1 second')"
	               "  AS due, ceil(extract(epoch FROM last_started_at + $1::int * interval '1 second' - now())"
	               "  * 1000)::bigint AS left_ms FROM scheduler_state WHERE id = 1",
	               &p, &r) == CORE_OK) {
		yes = PQntuples(r) == 0 || store_bool(r, 0, "due", true);
		if (!yes)
			*left_ms = (long)store_i64(r, 0, "left_ms", 0);
	}
	PQclear(r);
	return yes;
}

static void record(struct scheduler *s, bool started)
{
	struct settings set;
	settings_get(s->o.db, s->o.default_interval, &set);
	struct store_params p = {0};
	store_param_i64(&p, set.resync_interval);
	if (started)
		store_run1(s->o.db,
		           "UPDATE scheduler_state SET last_started_at = now(),"
		           " next_run_at = now() + $1::int * interval '1 second' WHERE id = 1",
		           &p, NULL);
	else
		store_run1(s->o.db, "UPDATE scheduler_state SET last_finished_at = now() WHERE id = 1", NULL, NULL);
}

static long long mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *run(void *arg)
{
	struct scheduler *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		pthread_mutex_unlock(&s->lock);
		bool lead = try_lead(s);
		long left_ms = 0;
		metrics_set("mrgate_scheduler_leader", NULL, lead ? 1 : 0);
		if (!lead)
			s->tidied_ms = 0; /* a new leader tidies at once */
		if (lead && s->o.tidy && (s->tidied_ms == 0 || mono_ms() - s->tidied_ms >= SCHEDULER_TIDY_MS)) {
			s->o.tidy(s->o.user);
			s->tidied_ms = mono_ms();
		}
		if (lead && due(s, &left_ms)) {
			record(s, true);
			enum core_status st = s->o.duty(s->o.user, "schedule");
			record(s, false);
			if (st != CORE_OK && st != CORE_ENOTFOUND)
				log_warn("scheduler: the scheduled resync failed (%s)", core_status_code(st));
		}
		pthread_mutex_lock(&s->lock);
		if (s->stop)
			break;
		/* a follower tries for the lock every second (takeover within seconds); the leader, whose lock is safe,
		 * sleeps until the duty is due, looking again every LEADER_RECHECK_MS for a changed interval */
		long wait_ms = 1000;
		if (lead && left_ms > wait_ms)
			wait_ms = left_ms < LEADER_RECHECK_MS ? left_ms : LEADER_RECHECK_MS;
		struct timespec ts = cond_deadline(CLOCK_REALTIME, wait_ms);
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct scheduler *scheduler_start(const struct scheduler_opts *o)
{
	struct scheduler *s = xcalloc(1, sizeof(*s));
	s->o = *o;
	s->url = xstrdup(o->database_url);
	s->instance = xstrdup(o->instance);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	metrics_describe("mrgate_scheduler_leader", "gauge", "1 when this instance leads the scheduled duties");
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		free(s->url);
		free(s->instance);
		free(s);
		return NULL;
	}
	return s;
}

void scheduler_stop(struct scheduler *s)
{
	if (!s)
		return;
	cond_raise(&s->lock, &s->wake, &s->stop); /* the run thread is the one waiter */
	pthread_join(s->thread, NULL);
	if (s->lead)
		PQfinish(s->lead); /* releases the advisory lock */
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s->url);
	free(s->instance);
	free(s);
}

bool scheduler_is_leader(struct scheduler *s)
{
	return s && s->leader;
}

/* The row's columns, timestamps as ISO-8601 text. */
#define STATE_TS(col) STORE_TS("s." col) " AS " col
#define STATE_COLUMNS                                                                                                  \
	"s.leader, " STATE_TS("leader_since") ", " STATE_TS("last_started_at") ", " STATE_TS(                          \
	    "last_finished_at") ", " STATE_TS("next_run_at")

enum core_status scheduler_state_json(struct store *db, struct json_object **out)
{
	PGresult *r = NULL;
	*out = NULL;
	/* one row, of nulls before the scheduler first ran */
	enum core_status st = store_run1(
	    db, "SELECT " STATE_COLUMNS " FROM (SELECT 1) one LEFT JOIN scheduler_state s ON s.id = 1", NULL, &r);
	if (st == CORE_OK)
		*out = rows_row(r, 0);
	PQclear(r);
	return st;
}
