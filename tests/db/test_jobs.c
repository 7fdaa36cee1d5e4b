/*
 * tests/db/test_jobs.c
 *    The job engine on a real PostgreSQL: claims and leases, many workers, two runners on one database, a
 *    crashed runner taken over, retries with backoff, retry of failed items, progress reads, the JSON API; a
 *    handler's unfinished work settled once per run, before its item is stored, a failed settle retried.
 *
 * Every test uses its own job kind, so a runner of one test never sees another test's items.
 */
#include "buf.h"
#include "crypto.h"
#include "jobs.h"
#include "limiter.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "pglisten.h"
#include "store.h"
#include "testlib.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct store *db;
static char *db_url; /* the test database, for a runner's LISTEN connection */

#define MAX_REPO 10001

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static int64_t sql_i64(const char *sql, int64_t job_id)
{
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	int64_t v = -1;
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, job_id);
	const char *p[] = {id};
	if (store_get(db, &c) == CORE_OK && store_exec(c, sql, strchr(sql, '$') ? 1 : 0, p, &r) == CORE_OK)
		v = store_i64(r, 0, "v", -1);
	PQclear(r);
	store_put(db, c);
	return v;
}

static void sql_exec(const char *sql)
{
	struct store_conn *c = NULL;
	if (store_get(db, &c) == CORE_OK)
		store_exec(c, sql, 0, NULL, NULL);
	store_put(db, c);
}

static int64_t jint(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : NULL;
}

/* Poll jobs_get until the job is finished or timeout; returns the last JSON (caller puts) or NULL. */
static struct json_object *wait_finished(int64_t job_id, long timeout_ms)
{
	int64_t until = now_ms() + timeout_ms;
	struct json_object *j = NULL;
	for (;;) {
		json_object_put(j);
		j = NULL;
		if (jobs_get(db, job_id, &j) != CORE_OK)
			return NULL;
		struct json_object *f = NULL;
		if (json_object_object_get_ex(j, "finished", &f) && json_object_get_boolean(f))
			return j;
		if (now_ms() > until) {
			fprintf(stderr, "job %" PRId64 " did not finish: %s\n", job_id, json_object_to_json_string(j));
			return j;
		}
		sleep_ms(20);
	}
}

/* Run job to its end on a new runner of o with the handler of kind: the finished job's JSON (caller puts), or NULL. */
static struct json_object *run_job(const struct jobs_runner_opts *o, const char *kind,
                                   enum job_outcome (*fn)(void *, const struct job_item *, struct job_item_result *),
                                   void *user, int64_t job, long timeout_ms)
{
	struct jobs_runner *r = jobs_runner_start(db, o);
	if (!r)
		return NULL;
	CHECK(jobs_register(r, kind, fn, user) == CORE_OK);
	struct json_object *j = wait_finished(job, timeout_ms);
	jobs_runner_stop(r);
	return j;
}

static int64_t *seq_ids(int n, int64_t first)
{
	int64_t *ids = malloc((size_t)n * sizeof(*ids));
	for (int i = 0; ids && i < n; i++)
		ids[i] = first + i;
	return ids;
}

/* ---- a counting handler shared by several tests ---- */

struct counter {
	pthread_mutex_t mu;
	int calls[MAX_REPO];
	int total;
	int sleep_ms;
};

struct counter_user {
	struct counter *c;
	int runs; /* calls made through this runner */
};

static enum job_outcome counting_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct counter_user *u = user;
	if (!item->has_repo || item->repo_id < 0 || item->repo_id >= MAX_REPO)
		return JOB_ITEM_ERROR;
	pthread_mutex_lock(&u->c->mu);
	u->c->calls[item->repo_id]++;
	u->c->total++;
	u->runs++;
	pthread_mutex_unlock(&u->c->mu);
	if (u->c->sleep_ms)
		sleep_ms(u->c->sleep_ms);
	res->details = json_object_new_object();
	json_object_object_add(res->details, "repo", json_object_new_int64(item->repo_id));
	switch (item->repo_id % 10) {
	case 0: jobs_result_message(res, "already gated"); return JOB_ITEM_UNCHANGED;
	case 1: jobs_result_message(res, "archived"); return JOB_ITEM_SKIPPED;
	default: jobs_result_message(res, "hook created for %" PRId64, item->repo_id); return JOB_ITEM_CHANGED;
	}
}

static struct counter *counter_new(void)
{
	struct counter *c = calloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void counter_free(struct counter *c)
{
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- tests ---- */

static void backoff_bounds(void)
{
	for (int i = 0; i < 200; i++) {
		long d1 = jobs_backoff_ms(1, 1000, 300000, 0);
		CHECK(d1 >= 500 && d1 <= 1000);
		long d4 = jobs_backoff_ms(4, 1000, 300000, 0);
		CHECK(d4 >= 4000 && d4 <= 8000);
		long dmax = jobs_backoff_ms(40, 1000, 300000, 0);
		CHECK(dmax >= 150000 && dmax <= 300000);
		CHECK(jobs_backoff_ms(1, 1000, 300000, 5000) == 5000);
	}
}

static void thousand_items_four_workers(void)
{
	const int n = 1000;
	struct counter *cnt = counter_new();
	struct counter_user u = {cnt, 0};
	int64_t *ids = seq_ids(n, 1);
	int64_t job = 0;
	double changed0 = metrics_get("mrgate_job_items_total", "kind=\"t_many\",result=\"changed\"");
#define ANALYZED "SELECT analyze_count AS v FROM pg_stat_user_tables WHERE relname = 'job_items'"
	int64_t analyzed0 = sql_i64(ANALYZED, 0);

	REQUIRE(ids);
	CHECK(jobs_create(db, "t_many", "alice", "{\"fail_on\":\"high\"}", ids, (size_t)n, &job) == CORE_OK);
	REQUIRE(job > 0);
	struct jobs_runner_opts o = {.workers = 4, .poll_ms = 50, .lease_ms = 10000};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_many", counting_handler, &u) == CORE_OK);
	CHECK(jobs_register(r, "t_many", counting_handler, &u) == CORE_ECONFLICT);
	CHECK(jobs_register(r, "Bad-Kind", counting_handler, &u) == CORE_EINVAL);
	jobs_runner_wake(r);

	/* progress while running: monotonic, consistent, and cheap to read */
	int64_t last_done = -1, reads = 0, read_ms = 0, until = now_ms() + 20000;
	bool monotonic = true, consistent = true, finished = false;
	while (!finished && now_ms() < until) {
		struct json_object *j = NULL;
		int64_t t0 = now_ms();
		if (jobs_get(db, job, &j) != CORE_OK)
			break;
		read_ms += now_ms() - t0;
		reads++;
		int64_t done = jint(j, "done");
		if (done < last_done)
			monotonic = false;
		last_done = done;
		if (done != jint(j, "changed") + jint(j, "unchanged") + jint(j, "skipped") + jint(j, "failed") ||
		    jint(j, "total") != n || jint(j, "pending") + jint(j, "running") + done != n ||
		    jint(j, "percent") != done * 100 / n)
			consistent = false;
		finished = strcmp(jstr(j, "state") ? jstr(j, "state") : "", "done") == 0;
		json_object_put(j);
		sleep_ms(5);
	}
	jobs_runner_stop(r);
	CHECK(finished);
	CHECK(monotonic);
	CHECK(consistent);
	CHECK(reads > 3);
	fprintf(stderr, "  %" PRId64 " progress reads, %.1f ms each on average\n", reads,
	        reads ? (double)read_ms / reads : 0.0);

	/* every item handled exactly once */
	int once = 0;
	for (int i = 1; i <= n; i++)
		once += cnt->calls[i] == 1;
	CHECK_INT(once, n);
	CHECK_INT(cnt->total, n);

	struct json_object *j = NULL;
	REQUIRE(jobs_get(db, job, &j) == CORE_OK);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_STR(jstr(j, "kind"), "t_many");
	CHECK_STR(jstr(j, "created_by"), "alice");
	CHECK_INT(jint(j, "total"), n);
	CHECK_INT(jint(j, "done"), n);
	CHECK_INT(jint(j, "changed"), 800);
	CHECK_INT(jint(j, "unchanged"), 100);
	CHECK_INT(jint(j, "skipped"), 100);
	CHECK_INT(jint(j, "failed"), 0);
	CHECK_INT(jint(j, "percent"), 100);
	CHECK(jstr(j, "started_at") && jstr(j, "finished_at"));
	struct json_object *params = NULL, *fo = NULL;
	CHECK(json_object_object_get_ex(j, "params", &params) && json_object_object_get_ex(params, "fail_on", &fo));
	json_object_put(j);

	/* the counters agree with the items themselves */
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND result = 'changed'", job), 800);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND state <> 'done'", job), 0);
	CHECK_INT(sql_i64("SELECT max(attempts) AS v FROM job_items WHERE job_id = $1", job), 1);
	CHECK_INT(metrics_get("mrgate_job_items_total", "kind=\"t_many\",result=\"changed\"") - changed0, 800);
	/* the claim that started a job of 1,000 items gathered job_items' statistics again (once its batches were
	 * out: jobs_claim_share's stale_out) */
	CHECK(sql_i64(ANALYZED, 0) > analyzed0);
	free(ids);
	counter_free(cnt);
}

static void two_runners_share_a_job(void)
{
	const int n = 600;
	struct counter *cnt = counter_new();
	struct counter_user ua = {cnt, 0}, ub = {cnt, 0};
	int64_t *ids = seq_ids(n, 1);
	int64_t job = 0;

	REQUIRE(ids);
	cnt->sleep_ms = 2;
	struct jobs_runner_opts o = {.workers = 3, .poll_ms = 30, .claim_batch = 2};
	struct jobs_runner *a = jobs_runner_start(db, &o);
	struct jobs_runner *b = jobs_runner_start(db, &o);
	REQUIRE(a && b);
	CHECK(strcmp(jobs_runner_owner(a), jobs_runner_owner(b)) != 0);
	CHECK(jobs_register(a, "t_two", counting_handler, &ua) == CORE_OK);
	CHECK(jobs_register(b, "t_two", counting_handler, &ub) == CORE_OK);
	CHECK(jobs_create(db, "t_two", "bob", NULL, ids, (size_t)n, &job) == CORE_OK);
	jobs_runner_wake(a);
	jobs_runner_wake(b);
	struct json_object *j = wait_finished(job, 20000);
	jobs_runner_stop(a);
	jobs_runner_stop(b);
	REQUIRE(j);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_INT(jint(j, "done"), n);
	json_object_put(j);

	CHECK(ua.runs > 0);
	CHECK(ub.runs > 0);
	CHECK_INT(ua.runs + ub.runs, n);
	int once = 0;
	for (int i = 1; i <= n; i++)
		once += cnt->calls[i] == 1;
	CHECK_INT(once, n);
	/* each recorded by the runner that ran it */
	CHECK_INT(sql_i64("SELECT count(DISTINCT lease_owner) AS v FROM job_items WHERE job_id = $1", job), 2);
	free(ids);
	counter_free(cnt);
}

/* The queue primitives: a lease excludes others, expires, is taken over; the old holder cannot record. */
static void lease_primitives(void)
{
	int64_t ids[] = {101, 102, 103};
	int64_t job = 0;
	const char *kinds[] = {"t_lease"};
	struct job_item *a = NULL, *b = NULL, *b2 = NULL;
	int na = 0, nb = 0, nb2 = 0;

	CHECK(jobs_create(db, "t_lease", "carol", NULL, ids, 3, &job) == CORE_OK);
	CHECK(jobs_claim(db, "owner-a", kinds, 1, 1, 300, &a, &na) == CORE_OK);
	REQUIRE(na == 1);
	CHECK_INT(a[0].repo_id, 101);
	CHECK_INT(a[0].attempt, 1);
	CHECK(!a[0].takeover);
	CHECK_INT(sql_i64("SELECT (state = 'running')::int AS v FROM jobs WHERE id = $1", job), 1);
	/* b gets the others, not a's */
	CHECK(jobs_claim(db, "owner-b", kinds, 1, 5, 10000, &b, &nb) == CORE_OK);
	CHECK_INT(nb, 2);
	for (int i = 0; i < nb; i++)
		CHECK(b[i].id != a[0].id);
	/* a renews: held */
	bool held = false;
	CHECK(jobs_renew(db, "owner-a", &a[0].id, 1, 300, &held) == CORE_OK);
	CHECK(held);
	sleep_ms(450);
	/* expired: b takes it over, as attempt 2 */
	CHECK(jobs_claim(db, "owner-b", kinds, 1, 5, 10000, &b2, &nb2) == CORE_OK);
	REQUIRE(nb2 == 1);
	CHECK_INT(b2[0].id, a[0].id);
	CHECK(b2[0].takeover);
	CHECK_INT(b2[0].attempt, 2);
	/* a lost it: renew says so, finish and requeue are refused and change nothing */
	CHECK(jobs_renew(db, "owner-a", &a[0].id, 1, 300, &held) == CORE_OK);
	CHECK(!held);
	CHECK(jobs_finish(db, "owner-a", a[0].id, JOB_ITEM_CHANGED, "late", NULL, NULL) == CORE_ECONFLICT);
	CHECK(jobs_requeue(db, "owner-a", a[0].id, 0, "late") == CORE_ECONFLICT);
	CHECK_INT(sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job), 0);
	/* b records once; a second record of the same item is refused */
	CHECK(jobs_finish(db, "owner-b", b2[0].id, JOB_ITEM_RETRY, NULL, NULL, NULL) == CORE_EINVAL);
	bool fin = true;
	CHECK(jobs_finish(db, "owner-b", b2[0].id, JOB_ITEM_UNCHANGED, "fine", "{\"x\":1}", &fin) == CORE_OK);
	CHECK(!fin);
	CHECK(jobs_finish(db, "owner-b", b2[0].id, JOB_ITEM_CHANGED, "again", NULL, NULL) == CORE_ECONFLICT);
	CHECK(jobs_finish(db, "owner-b", b[0].id, JOB_ITEM_ERROR, "403 forbidden", NULL, &fin) == CORE_OK);
	CHECK(!fin);
	/* release hands an item back without counting the attempt */
	int released = 0;
	CHECK(jobs_release(db, "owner-b", &b[1].id, 1, &released) == CORE_OK);
	CHECK_INT(released, 1);
	CHECK_INT(sql_i64("SELECT attempts AS v FROM job_items WHERE id = $1", b[1].id), 0);
	jobs_items_free(b, nb);
	b = NULL;
	CHECK(jobs_claim(db, "owner-c", kinds, 1, 5, 10000, &b, &nb) == CORE_OK);
	REQUIRE(nb == 1);
	CHECK(jobs_finish(db, "owner-c", b[0].id, JOB_ITEM_CHANGED, NULL, NULL, &fin) == CORE_OK);
	CHECK(fin);
	struct json_object *j = NULL;
	REQUIRE(jobs_get(db, job, &j) == CORE_OK);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_INT(jint(j, "done"), 3);
	CHECK_INT(jint(j, "changed"), 1);
	CHECK_INT(jint(j, "unchanged"), 1);
	CHECK_INT(jint(j, "failed"), 1);
	CHECK(!json_object_get_boolean(json_object_object_get(j, "succeeded")));
	json_object_put(j);
	jobs_items_free(a, na);
	jobs_items_free(b, nb);
	jobs_items_free(b2, nb2);
}

/* ---- crash and takeover ---- */

struct blocker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int in_handler;
	bool release;
	int calls[64];
};

static enum job_outcome blocking_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct blocker *b = user;
	(void)res;
	pthread_mutex_lock(&b->mu);
	b->calls[item->repo_id]++;
	b->in_handler++;
	pthread_cond_broadcast(&b->cv);
	while (!b->release)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	return JOB_ITEM_CHANGED;
}

static enum job_outcome plain_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct blocker *b = user;
	(void)res;
	pthread_mutex_lock(&b->mu);
	b->calls[item->repo_id]++;
	pthread_mutex_unlock(&b->mu);
	return JOB_ITEM_UNCHANGED;
}

static void crashed_runner_is_taken_over(void)
{
	struct blocker bl = {.in_handler = 0};
	int64_t *ids = seq_ids(20, 1);
	int64_t job = 0;

	pthread_mutex_init(&bl.mu, NULL);
	pthread_cond_init(&bl.cv, NULL);
	REQUIRE(ids);
	CHECK(jobs_create(db, "t_crash", "dave", NULL, ids, 20, &job) == CORE_OK);
	struct jobs_runner_opts oa = {.workers = 2, .poll_ms = 20, .lease_ms = 1000, .owner = "server-a"};
	struct jobs_runner *a = jobs_runner_start(db, &oa);
	REQUIRE(a);
	CHECK(jobs_register(a, "t_crash", blocking_handler, &bl) == CORE_OK);
	/* both of a's workers are inside the handler with one item each; then a "freezes" */
	pthread_mutex_lock(&bl.mu);
	int64_t until = now_ms() + 5000;
	while (bl.in_handler < 2 && now_ms() < until) {
		pthread_mutex_unlock(&bl.mu);
		sleep_ms(10);
		pthread_mutex_lock(&bl.mu);
	}
	int in = bl.in_handler;
	pthread_mutex_unlock(&bl.mu);
	REQUIRE(in == 2);
	jobs_runner_test_stop_heartbeat(a);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND lease_owner = 'server-a'", job),
	          2);

	/* b starts, does the pending items at once and a's two once their lease expired */
	struct jobs_runner_opts ob = {.workers = 2, .poll_ms = 20, .lease_ms = 1000, .owner = "server-b"};
	struct jobs_runner *b = jobs_runner_start(db, &ob);
	REQUIRE(b);
	CHECK(jobs_register(b, "t_crash", plain_handler, &bl) == CORE_OK);
	int64_t t0 = now_ms();
	struct json_object *j = wait_finished(job, 10000);
	REQUIRE(j);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_INT(jint(j, "done"), 20);
	CHECK_INT(jint(j, "unchanged"), 20);
	json_object_put(j);
	CHECK(now_ms() - t0 < 8000);
	struct jobs_runner_stats sb;
	jobs_runner_stats(b, &sb);
	CHECK_INT(sb.takeovers, 2);
	CHECK_INT(sb.recorded, 20);

	/* a wakes up: its two late results are refused and not counted */
	pthread_mutex_lock(&bl.mu);
	bl.release = true;
	pthread_cond_broadcast(&bl.cv);
	pthread_mutex_unlock(&bl.mu);
	struct jobs_runner_stats sa = {0};
	until = now_ms() + 5000;
	while (sa.lease_lost < 2 && now_ms() < until) {
		sleep_ms(10);
		jobs_runner_stats(a, &sa);
	}
	jobs_runner_stop(a);
	CHECK_INT(sa.lease_lost, 2);
	CHECK_INT(sa.recorded, 0);
	jobs_runner_stop(b);

	REQUIRE(jobs_get(db, job, &j) == CORE_OK);
	CHECK_INT(jint(j, "done"), 20);
	CHECK_INT(jint(j, "changed"), 0);
	json_object_put(j);
	/* executed twice (at least once), recorded once */
	int twice = 0, once = 0;
	for (int i = 1; i <= 20; i++) {
		twice += bl.calls[i] == 2;
		once += bl.calls[i] == 1;
	}
	CHECK_INT(twice, 2);
	CHECK_INT(once, 18);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND lease_owner = 'server-b'", job),
	          20);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND attempts = 2", job), 2);
	pthread_cond_destroy(&bl.cv);
	pthread_mutex_destroy(&bl.mu);
	free(ids);
}

/* ---- heartbeat: long items keep their lease; a lost lease is visible to the handler ---- */

struct slow {
	int64_t steal_item; /* set by the handler for repo 2: the test steals its lease */
	bool saw_lost;
	pthread_mutex_t mu;
};

static enum job_outcome slow_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct slow *s = user;
	(void)res;
	if (item->repo_id == 1) {
		sleep_ms(2000); /* over 2 leases */
		return JOB_ITEM_CHANGED;
	}
	pthread_mutex_lock(&s->mu);
	s->steal_item = item->id;
	pthread_mutex_unlock(&s->mu);
	int64_t until = now_ms() + 4000;
	while (!jobs_item_lease_lost(item) && now_ms() < until)
		sleep_ms(20);
	pthread_mutex_lock(&s->mu);
	s->saw_lost = jobs_item_lease_lost(item);
	pthread_mutex_unlock(&s->mu);
	return JOB_ITEM_CHANGED;
}

static void heartbeat_renews_and_detects_loss(void)
{
	struct slow s = {0};
	int64_t ids[] = {1, 2};
	int64_t job = 0;
	const char *kinds[] = {"t_beat"};

	pthread_mutex_init(&s.mu, NULL);
	CHECK(jobs_create(db, "t_beat", "erin", NULL, ids, 2, &job) == CORE_OK);
	struct jobs_runner_opts o = {.workers = 2, .poll_ms = 20, .lease_ms = 900, .owner = "beater"};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_beat", slow_handler, &s) == CORE_OK);
	/* wait for repo 2's handler, then steal its lease as a takeover would */
	int64_t until = now_ms() + 3000, steal = 0;
	while (!steal && now_ms() < until) {
		sleep_ms(10);
		pthread_mutex_lock(&s.mu);
		steal = s.steal_item;
		pthread_mutex_unlock(&s.mu);
	}
	REQUIRE(steal);
	char sql[300];
	snprintf(sql, sizeof(sql),
	         "UPDATE job_items SET lease_owner = 'intruder', lease_until = now() + interval '1 hour',"
	         " not_before = now() + interval '1 hour' WHERE id = %" PRId64,
	         steal);
	sql_exec(sql);
	/* meanwhile a competitor polls: repo 1 runs for over 2 leases but is never taken over */
	int takeovers = 0;
	for (int i = 0; i < 12; i++) {
		struct job_item *it = NULL;
		int n = 0;
		CHECK(jobs_claim(db, "competitor", kinds, 1, 5, 600, &it, &n) == CORE_OK);
		takeovers += n;
		jobs_items_free(it, n);
		sleep_ms(170);
	}
	CHECK_INT(takeovers, 0);
	/* repo 1 is recorded by its runner; repo 2's result is refused (the intruder holds it) */
	struct jobs_runner_stats st = {0};
	until = now_ms() + 5000;
	while ((st.recorded < 1 || st.lease_lost < 1) && now_ms() < until) {
		sleep_ms(20);
		jobs_runner_stats(r, &st);
	}
	jobs_runner_stop(r);
	CHECK_INT(st.recorded, 1);
	CHECK_INT(st.lease_lost, 1);
	CHECK_INT(st.takeovers, 0);
	CHECK(s.saw_lost);
	CHECK_INT(sql_i64("SELECT changed AS v FROM jobs WHERE id = $1", job), 1);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND lease_owner = 'intruder'"
	                  " AND state = 'running'",
	                  job),
	          1);
	pthread_mutex_destroy(&s.mu);
}

/* ---- transient errors, max attempts, retry of failed items ---- */

struct flaky {
	pthread_mutex_t mu;
	int calls[8];
	int64_t at[8][8]; /* call times per repo */
	bool healed;      /* after the test "fixes GitLab": everything succeeds */
};

static enum job_outcome flaky_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct flaky *f = user;
	int k = (int)item->repo_id;
	pthread_mutex_lock(&f->mu);
	int call = f->calls[k]++;
	if (call < 8)
		f->at[k][call] = now_ms();
	bool healed = f->healed;
	pthread_mutex_unlock(&f->mu);
	switch (k) {
	case 1: /* two transient errors, then fine */
		if (item->attempt <= 2) {
			jobs_result_message(res, "gitlab answered 503 (attempt %d)", item->attempt);
			return JOB_ITEM_RETRY;
		}
		return JOB_ITEM_CHANGED;
	case 2: /* transient until healed */
		if (!healed) {
			jobs_result_message(res, "connection reset by gitlab (will be retried)");
			res->details = json_object_new_string("reset");
			return JOB_ITEM_RETRY;
		}
		return JOB_ITEM_CHANGED;
	case 3: /* a hard error until healed */
		if (!healed) {
			jobs_result_message(res, "token needs Maintainer on this project");
			return JOB_ITEM_ERROR;
		}
		return JOB_ITEM_UNCHANGED;
	case 4: /* Retry-After honoured */
		if (item->attempt == 1) {
			res->retry_after_ms = 400;
			return JOB_ITEM_RETRY;
		}
		return JOB_ITEM_CHANGED;
	default: return JOB_ITEM_CHANGED;
	}
}

static const char *item_field(struct json_object *page, int64_t repo_id, const char *key)
{
	struct json_object *items = NULL;
	if (!json_object_object_get_ex(page, "items", &items))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *it = json_object_array_get_idx(items, i);
		if (jint(it, "repo_id") == repo_id)
			return jstr(it, key);
	}
	return NULL;
}

static void retries_backoff_and_retry_failed(void)
{
	struct flaky f = {.healed = false};
	int64_t ids[] = {1, 2, 3, 4, 5};
	int64_t job = 0, n = -1;

	pthread_mutex_init(&f.mu, NULL);
	CHECK(jobs_create(db, "t_retry", "frank", NULL, ids, 5, &job) == CORE_OK);
	struct jobs_runner_opts o = {
	    .workers = 3, .poll_ms = 20, .max_attempts = 3, .backoff_base_ms = 100, .backoff_max_ms = 400};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_retry", flaky_handler, &f) == CORE_OK);
	struct json_object *j = wait_finished(job, 10000);
	REQUIRE(j);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_INT(jint(j, "done"), 5);
	CHECK_INT(jint(j, "changed"), 3);
	CHECK_INT(jint(j, "failed"), 2);
	CHECK(!json_object_get_boolean(json_object_object_get(j, "succeeded")));
	json_object_put(j);

	pthread_mutex_lock(&f.mu);
	CHECK_INT(f.calls[1], 3);
	CHECK_INT(f.calls[2], 3); /* max_attempts */
	CHECK_INT(f.calls[3], 1); /* errors are not retried */
	CHECK_INT(f.calls[4], 2);
	CHECK_INT(f.calls[5], 1);
	/* backoff: [50, 100] ms before attempt 2, [100, 200] before attempt 3; Retry-After 400 ms */
	CHECK(f.at[1][1] - f.at[1][0] >= 45);
	CHECK(f.at[1][2] - f.at[1][1] >= 95);
	CHECK(f.at[4][1] - f.at[4][0] >= 395);
	pthread_mutex_unlock(&f.mu);

	struct json_object *page = NULL;
	REQUIRE(jobs_items(db, job, "failed", 0, 0, &page) == CORE_OK);
	CHECK_INT(json_object_array_length(json_object_object_get(page, "items")), 2);
	/* the last attempt said it would be retried: the item says it was not */
	CHECK_STR(item_field(page, 2, "message"), "gave up after 3 attempts: connection reset by gitlab");
	CHECK_STR(item_field(page, 3, "message"), "token needs Maintainer on this project");
	CHECK_STR(item_field(page, 3, "result"), "error");
	json_object_put(page);
	CHECK_INT(sql_i64("SELECT attempts AS v FROM job_items WHERE job_id = $1 AND repo_id = 1", job), 3);

	/* retry the failed ones only (no runner meanwhile, so the reset state can be read) */
	jobs_runner_stop(r);
	pthread_mutex_lock(&f.mu);
	f.healed = true;
	pthread_mutex_unlock(&f.mu);
	CHECK(jobs_retry_failed(db, job, "bob", &n) == CORE_OK);
	CHECK_INT(n, 2);
	REQUIRE(jobs_get(db, job, &j) == CORE_OK);
	CHECK_STR(jstr(j, "state"), "running");
	CHECK_INT(jint(j, "failed"), 0);
	CHECK_INT(jint(j, "done"), 3);
	CHECK_INT(jint(j, "pending"), 2);
	CHECK(jstr(j, "finished_at") == NULL);
	json_object_put(j);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND state = 'pending'"
	                  " AND attempts = 0 AND message IS NULL",
	                  job),
	          2);
	r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_retry", flaky_handler, &f) == CORE_OK);
	j = wait_finished(job, 10000);
	REQUIRE(j);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_INT(jint(j, "done"), 5);
	CHECK_INT(jint(j, "changed"), 4);
	CHECK_INT(jint(j, "unchanged"), 1);
	CHECK_INT(jint(j, "failed"), 0);
	CHECK(json_object_get_boolean(json_object_object_get(j, "succeeded")));
	json_object_put(j);
	jobs_runner_stop(r);
	CHECK_INT(f.calls[1], 3);
	CHECK_INT(f.calls[2], 4);
	CHECK_INT(f.calls[3], 2);
	CHECK_INT(f.calls[4], 2);
	CHECK_INT(f.calls[5], 1);
	CHECK(jobs_retry_failed(db, job, "bob", &n) == CORE_OK);
	CHECK_INT(n, 0);
	CHECK(jobs_retry_failed(db, 999999, "bob", &n) == CORE_ENOTFOUND);
	/* one audit entry: the retry that queued 2 items (the one that found none writes nothing) */
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM audit_log WHERE action = 'job.retry' AND actor = 'bob'"
	                  " AND target = 'job ' || $1::text AND (details->>'retried')::int = 2"
	                  " AND (before->>'failed')::int = 2 AND (after->>'failed')::int = 0",
	                  job),
	          1);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM audit_log WHERE action = 'job.retry' AND $1::bigint > 0", job), 1);
	pthread_mutex_destroy(&f.mu);
}

/* ---- graceful stop hands back unstarted claims ---- */

static void stop_releases_unstarted_claims(void)
{
	struct counter *cnt = counter_new();
	struct counter_user u = {cnt, 0};
	int64_t *ids = seq_ids(10, 1);
	int64_t job = 0;

	REQUIRE(ids);
	cnt->sleep_ms = 150;
	CHECK(jobs_create(db, "t_stop", "gina", NULL, ids, 10, &job) == CORE_OK);
	struct jobs_runner_opts o = {.workers = 1, .poll_ms = 20, .claim_batch = 5};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_stop", counting_handler, &u) == CORE_OK);
	int64_t until = now_ms() + 3000;
	while (now_ms() < until) {
		pthread_mutex_lock(&cnt->mu);
		int t = cnt->total;
		pthread_mutex_unlock(&cnt->mu);
		if (t >= 1)
			break;
		sleep_ms(5);
	}
	jobs_runner_stop(r); /* finishes the running item, releases the other 4 of its batch */
	CHECK_INT(cnt->total, 1);
	CHECK_INT(sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job), 1);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND state = 'running'", job), 0);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND state = 'pending'"
	                  " AND attempts = 0",
	                  job),
	          9);

	/* another runner (a restarted server) completes it */
	cnt->sleep_ms = 0;
	struct json_object *j = run_job(&o, "t_stop", counting_handler, &u, job, 5000);
	REQUIRE(j);
	CHECK_INT(jint(j, "done"), 10);
	json_object_put(j);
	int once = 0;
	for (int i = 1; i <= 10; i++)
		once += cnt->calls[i] == 1;
	CHECK_INT(once, 10);
	free(ids);
	counter_free(cnt);
}

/* ---- an outcome is recorded while the rest of its batch runs ---- */

struct holder {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool release; /* the blocked item may end */
	int started;
};

/* Repo 3 blocks until released (at most 10 s); the others return at once. */
static enum job_outcome holding_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct holder *h = user;
	pthread_mutex_lock(&h->mu);
	h->started++;
	if (item->repo_id == 3) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		while (!h->release && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&h->mu);
	jobs_result_message(res, "done %" PRId64, item->repo_id);
	return JOB_ITEM_CHANGED;
}

static void outcome_recorded_while_batch_runs(void)
{
	struct holder h = {.release = false};
	int64_t ids[] = {2, 3};
	int64_t job = 0;

	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	CHECK(jobs_create(db, "t_live", "hana", NULL, ids, 2, &job) == CORE_OK);
	/* one worker claims both items in one batch and runs them one after the other */
	struct jobs_runner_opts o = {.workers = 1, .poll_ms = 20, .claim_batch = 2};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_live", holding_handler, &h) == CORE_OK);
	/* while repo 3 is held, repo 2's outcome is already in the job's progress */
	int64_t done = 0, until = now_ms() + 4000;
	while (now_ms() < until && (done = sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job)) < 1)
		sleep_ms(20);
	pthread_mutex_lock(&h.mu);
	int started = h.started;
	h.release = true;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	CHECK_INT(started, 2);
	CHECK_INT(done, 1);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND repo_id = 2 AND state = 'done'"
	                  " AND message = 'done 2'",
	                  job),
	          1);
	until = now_ms() + 4000;
	while (now_ms() < until && sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job) < 2)
		sleep_ms(20);
	jobs_runner_stop(r);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM jobs WHERE id = $1 AND state = 'done' AND done = 2", job), 1);
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
}

/* ---- creating, listing, paging, canceling ---- */

static void api_create_list_items_cancel(void)
{
	int64_t job = 0, job2 = 0;
	int64_t dup[] = {7, 8, 7, 9, 8};

	/* validation */
	CHECK(jobs_create(db, "Bad Kind", "x", NULL, dup, 5, &job) == CORE_EINVAL);
	CHECK(jobs_kind_valid("apply_2") && jobs_kind_valid("abcdefghijklmnopqrstuvwxyz012345"));
	CHECK(!jobs_kind_valid("abcdefghijklmnopqrstuvwxyz0123456") && !jobs_kind_valid("2apply"));
	CHECK(!jobs_kind_valid("_apply") && !jobs_kind_valid("apply-x") && !jobs_kind_valid("") &&
	      !jobs_kind_valid(NULL));
	CHECK(jobs_create(db, "t_api", "", NULL, dup, 5, &job) == CORE_EINVAL);
	CHECK(jobs_create(db, "t_api", "x", "[1,2]", dup, 5, &job) == CORE_EINVAL);
	CHECK(jobs_create(db, "t_api", "x", "{not json", dup, 5, &job) == CORE_EINVAL);
	CHECK_INT(job, 0);

	/* duplicates dropped, first-occurrence order kept */
	CHECK(jobs_create(db, "t_api", "hank", "{}", dup, 5, &job) == CORE_OK);
	struct json_object *j = NULL;
	REQUIRE(jobs_get(db, job, &j) == CORE_OK);
	CHECK_INT(jint(j, "total"), 3);
	CHECK_STR(jstr(j, "state"), "queued");
	CHECK_INT(jint(j, "pending"), 3);
	CHECK_INT(jint(j, "percent"), 0);
	json_object_put(j);
	CHECK(jobs_get(db, 999999, &j) == CORE_ENOTFOUND);
	CHECK(j == NULL);

	/* an empty job is done at once */
	CHECK(jobs_create(db, "t_api", "hank", NULL, NULL, 0, &job2) == CORE_OK);
	REQUIRE(jobs_get(db, job2, &j) == CORE_OK);
	CHECK_STR(jstr(j, "state"), "done");
	CHECK_INT(jint(j, "percent"), 100);
	json_object_put(j);

	/* items with the repo path from repos; paging */
	sql_exec("INSERT INTO repos (id, path, name, path_with_namespace, namespace_full_path)"
	         " VALUES (7, 'seven', 'seven', 'grp/seven', 'grp'), (9, 'nine', 'nine', 'grp/sub/nine', 'grp/sub')");
	struct json_object *page = NULL;
	REQUIRE(jobs_view_items(db, job, NULL, 0, 2, &page) == CORE_OK);
	struct json_object *items = json_object_object_get(page, "items");
	REQUIRE(json_object_array_length(items) == 2);
	CHECK_INT(jint(json_object_array_get_idx(items, 0), "repo_id"), 7);
	CHECK_STR(jstr(json_object_array_get_idx(items, 0), "path_with_namespace"), "grp/seven");
	CHECK_STR(jstr(json_object_array_get_idx(items, 0), "state"), "pending");
	CHECK_INT(jint(json_object_array_get_idx(items, 1), "repo_id"), 8);
	CHECK(jstr(json_object_array_get_idx(items, 1), "path_with_namespace") == NULL);
	int64_t next = jint(page, "next_cursor");
	CHECK(next > 0);
	json_object_put(page);
	REQUIRE(jobs_items(db, job, "pending", next, 2, &page) == CORE_OK);
	items = json_object_object_get(page, "items");
	REQUIRE(json_object_array_length(items) == 1);
	CHECK_STR(jstr(json_object_array_get_idx(items, 0), "path_with_namespace"), "grp/sub/nine");
	CHECK(json_object_object_get(page, "next_cursor") == NULL);
	json_object_put(page);
	CHECK(jobs_items(db, job, "bogus", 0, 10, &page) == CORE_EINVAL);
	CHECK(jobs_items(db, 999999, NULL, 0, 10, &page) == CORE_ENOTFOUND);
	REQUIRE(jobs_items(db, job, "changed", 0, 10, &page) == CORE_OK);
	CHECK_INT(json_object_array_length(json_object_object_get(page, "items")), 0);
	json_object_put(page);

	/* cancel: pending items skipped; again is fine; a finished job cannot be canceled */
	CHECK(jobs_cancel(db, job, "alice") == CORE_OK);
	REQUIRE(jobs_get(db, job, &j) == CORE_OK);
	CHECK_STR(jstr(j, "state"), "canceled");
	CHECK_INT(jint(j, "skipped"), 3);
	CHECK_INT(jint(j, "done"), 3);
	CHECK(jstr(j, "finished_at") != NULL);
	json_object_put(j);
	CHECK(jobs_cancel(db, job, "alice") == CORE_OK);
	CHECK(jobs_cancel(db, job2, "alice") == CORE_ESTATE);
	CHECK(jobs_cancel(db, 999999, "alice") == CORE_ENOTFOUND);
	/* a webhook-mode switch runs to its end: not canceled, nothing skipped */
	{
		int64_t hm = 0, hm_ids[] = {77};
		REQUIRE(jobs_create(db, "hookmode", "admin", NULL, hm_ids, 1, &hm) == CORE_OK);
		CHECK(jobs_cancel(db, hm, "alice") == CORE_ECONFLICT);
		REQUIRE(jobs_get(db, hm, &j) == CORE_OK);
		CHECK_STR(jstr(j, "state"), "queued");
		CHECK_INT(jint(j, "skipped"), 0);
		json_object_put(j);
		CHECK(jobs_cancel(db, hm, NULL) == CORE_ECONFLICT);
	}
	/* one audit entry, from the cancel that canceled something, with what it skipped */
	{
		char target[32];
		snprintf(target, sizeof target, "job %lld", (long long)job);
		const char *tp[] = {target};
		PGresult *ar = NULL;
		REQUIRE(store_query(
		            db,
		            "SELECT actor, count(*) OVER () AS n, details->>'skipped' AS skipped, after->>'state' AS st"
		            " FROM audit_log WHERE action = 'job.cancel' AND target = $1",
		            1, tp, &ar) == CORE_OK);
		REQUIRE(PQntuples(ar) == 1);
		CHECK_STR(store_str(ar, 0, "actor"), "alice");
		CHECK_STR(store_str(ar, 0, "skipped"), "3");
		CHECK_STR(store_str(ar, 0, "st"), "canceled");
		PQclear(ar);
	}
	REQUIRE(jobs_items(db, job, "skipped", 0, 10, &page) == CORE_OK);
	CHECK_INT(json_object_array_length(json_object_object_get(page, "items")), 3);
	CHECK_STR(item_field(page, 9, "message"), "canceled");
	json_object_put(page);
}

/* Jobs created inside the caller's transaction, with explicit items; a 10,000-item job; the list, paged. */
static void api_in_tx_big_and_list(void)
{
	int64_t big = 0;
	int64_t dup[] = {7, 8, 7, 9, 8};
	struct json_object *j = NULL, *items = NULL;

	/* inside the caller's transaction: a rollback leaves no job; explicit items with payloads */
	struct store_conn *c = NULL;
	int64_t in_tx = 0, with_items = 0;
	REQUIRE(store_get(db, &c) == CORE_OK);
	CHECK(store_begin(c) == CORE_OK);
	CHECK(jobs_create_in_tx(c, "t_api", "ivy", NULL, dup, 5, &in_tx) == CORE_OK);
	store_rollback(c);
	CHECK(store_begin(c) == CORE_OK);
	CHECK(
	    jobs_create_items_in_tx(c, "t_api", "ivy", NULL,
	                            "[{\"repo_id\": 7, \"payload\": {\"mr\": 3}}, {\"repo_id\": null, \"payload\": 1},"
	                            " {\"payload\": null}]",
	                            &with_items) == CORE_OK);
	CHECK(store_commit(c) == CORE_OK);
	CHECK(store_begin(c) == CORE_OK);
	int64_t bad = 0;
	CHECK(jobs_create_items_in_tx(c, "t_api", "ivy", NULL, "[{\"repo_id\": 7}, {\"repo_id\": 7}]", &bad) ==
	      CORE_ECONFLICT);
	store_rollback(c);
	store_put(db, c);
	CHECK(in_tx > 0);
	CHECK(jobs_get(db, in_tx, &j) == CORE_ENOTFOUND);
	REQUIRE(jobs_get(db, with_items, &j) == CORE_OK);
	CHECK_INT(jint(j, "total"), 3);
	json_object_put(j);
	const char *kinds[] = {"t_api"};
	struct job_item *it = NULL;
	int nit = 0;
	CHECK(jobs_claim(db, "claimer", kinds, 1, 10, 10000, &it, &nit) == CORE_OK);
	REQUIRE(nit == 3);
	CHECK(it[0].has_repo && it[0].repo_id == 7);
	CHECK(it[0].payload && json_object_get_int64(json_object_object_get(it[0].payload, "mr")) == 3);
	CHECK(!it[1].has_repo);
	CHECK(it[1].payload && json_object_get_int(it[1].payload) == 1);
	CHECK(it[2].payload == NULL);
	CHECK_STR(it[0].created_by, "ivy");
	CHECK(json_object_is_type(it[0].params, json_type_object));
	jobs_items_free(it, nit);

	/* 10,000 items in one statement (its time is printed, not asserted: speed belongs to bench/) */
	int64_t *ids = seq_ids(10000, 1);
	REQUIRE(ids);
	int64_t t0 = now_ms();
	CHECK(jobs_create(db, "t_big", "jack", NULL, ids, 10000, &big) == CORE_OK);
	int64_t took = now_ms() - t0;
	fprintf(stderr, "  10,000 items created in %" PRId64 " ms\n", took);
	t0 = now_ms();
	for (int i = 0; i < 20; i++) {
		REQUIRE(jobs_get(db, big, &j) == CORE_OK);
		CHECK_INT(jint(j, "total"), 10000);
		json_object_put(j);
	}
	fprintf(stderr, "  20 progress reads of a 10,000-item job in %" PRId64 " ms\n", now_ms() - t0);
	free(ids);

	/* list, newest first, paged */
	struct json_object *l = NULL;
	REQUIRE(jobs_view_list(db, 2, 0, &l) == CORE_OK);
	items = json_object_object_get(l, "items");
	REQUIRE(json_object_array_length(items) == 2);
	CHECK_INT(jint(json_object_array_get_idx(items, 0), "id"), big);
	CHECK_INT(jint(json_object_array_get_idx(items, 1), "id"), with_items);
	CHECK(json_object_object_get(json_object_array_get_idx(items, 0), "params") == NULL);
	int64_t before = jint(l, "next_cursor");
	CHECK_INT(before, with_items);
	json_object_put(l);
	REQUIRE(jobs_list(db, 200, before, &l) == CORE_OK);
	items = json_object_object_get(l, "items");
	CHECK(json_object_array_length(items) >= 3);
	CHECK(jint(json_object_array_get_idx(items, 0), "id") < with_items);
	json_object_put(l);
	CHECK(jobs_cancel(db, big, NULL) == CORE_OK);
}

/* An item whose worker dies every time (5 expired leases) fails without running the handler a sixth time. */
static void poison_item_gives_up(void)
{
	struct counter *cnt = counter_new();
	struct counter_user u = {cnt, 0};
	int64_t ids[] = {42};
	int64_t job = 0;
	const char *kinds[] = {"t_poison"};

	CHECK(jobs_create(db, "t_poison", "kim", NULL, ids, 1, &job) == CORE_OK);
	for (int i = 0; i < 5; i++) {
		struct job_item *it = NULL;
		int n = 0;
		CHECK(jobs_claim(db, "dying-worker", kinds, 1, 1, 1, &it, &n) == CORE_OK);
		CHECK_INT(n, 1);
		jobs_items_free(it, n);
		sleep_ms(5);
	}
	struct jobs_runner_opts o = {.workers = 1, .poll_ms = 20, .max_attempts = 5};
	struct json_object *j = run_job(&o, "t_poison", counting_handler, &u, job, 5000);
	REQUIRE(j);
	CHECK_INT(jint(j, "failed"), 1);
	json_object_put(j);
	CHECK_INT(cnt->total, 0);
	struct json_object *page = NULL;
	REQUIRE(jobs_items(db, job, "error", 0, 10, &page) == CORE_OK);
	const char *msg = item_field(page, 42, "message");
	CHECK(msg && strncmp(msg, "gave up", 7) == 0);
	json_object_put(page);
	counter_free(cnt);
}

/* ---- batched finishing, fair-share claims, waking on NOTIFY ---- */

static void finish_batch_records_what_it_holds(void)
{
	const char *kinds[] = {"t_fbatch"};
	int64_t ids[] = {1, 2, 3, 4, 5}, job = 0;
	CHECK(jobs_create(db, "t_fbatch", "kim", NULL, ids, 5, &job) == CORE_OK);
	struct job_item *it = NULL;
	int n = 0;
	REQUIRE(jobs_claim(db, "fb-a", kinds, 1, 5, 60000, &it, &n) == CORE_OK);
	REQUIRE(n == 5);
	/* item 3 was taken over by another worker meanwhile */
	char sql[200];
	snprintf(sql, sizeof(sql), "UPDATE job_items SET lease_owner = 'fb-b' WHERE id = %" PRId64, it[2].id);
	sql_exec(sql);
	enum job_outcome oc[] = {JOB_ITEM_CHANGED, JOB_ITEM_UNCHANGED, JOB_ITEM_CHANGED, JOB_ITEM_ERROR,
	                         JOB_ITEM_SKIPPED};
	struct jobs_record recs[5];
	memset(recs, 0, sizeof(recs));
	for (int i = 0; i < 5; i++) {
		recs[i].item_id = it[i].id;
		recs[i].outcome = oc[i];
		recs[i].message = i == 3 ? "403 forbidden" : NULL;
		recs[i].details_json = i == 0 ? "{\"hook\":\"created\"}" : NULL;
	}
	CHECK(jobs_finish_batch(db, "fb-a", recs, 5) == CORE_OK);
	for (int i = 0; i < 5; i++) {
		CHECK(recs[i].recorded == (i != 2));
		CHECK(!recs[i].job_finished);
	}
	CHECK_INT(sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job), 4);
	CHECK_INT(sql_i64("SELECT changed AS v FROM jobs WHERE id = $1", job), 1);
	CHECK_INT(sql_i64("SELECT unchanged + skipped AS v FROM jobs WHERE id = $1", job), 2);
	CHECK_INT(sql_i64("SELECT failed AS v FROM jobs WHERE id = $1", job), 1);
	CHECK_INT(
	    sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND details->>'hook' = 'created'", job), 1);
	/* recording again changes nothing: at most once, counters exact */
	CHECK(jobs_finish_batch(db, "fb-a", recs, 5) == CORE_OK);
	for (int i = 0; i < 5; i++)
		CHECK(!recs[i].recorded);
	CHECK_INT(sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job), 4);
	/* the holder of item 3 finishes the job */
	struct jobs_record last = {.item_id = it[2].id, .outcome = JOB_ITEM_CHANGED};
	CHECK(jobs_finish_batch(db, "fb-b", &last, 1) == CORE_OK);
	CHECK(last.recorded && last.job_finished && last.job_id == job);
	CHECK_INT(
	    sql_i64("SELECT (state = 'done' AND done = total AND changed = 2)::int AS v FROM jobs WHERE id = $1", job),
	    1);
	/* a RETRY outcome is refused and records nothing */
	struct jobs_record bad = {.item_id = it[0].id, .outcome = JOB_ITEM_RETRY};
	CHECK(jobs_finish_batch(db, "fb-a", &bad, 1) == CORE_EINVAL);
	jobs_items_free(it, n);
}

/*
 * The heartbeat renews the leases of outcomes the recorder is about to write: the two statements touch the same rows
 * at the same moment. A CI run lost a batch of five results to "deadlock detected" between them (each updated the
 * rows in its own order) and the items were run again after their lease ran out. Renewing and finishing the same
 * items from two connections, round after round, the finish statement in the reverse order of the ids, must never
 * fail.
 */
#define RACE_ITEMS  300
#define RACE_ROUNDS 30

struct barrier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int waiting, round;
};

struct race_side {
	struct barrier *go;
	const int64_t *ids;
	bool finish; /* else renew */
	int conflicts, errors;
};

static void barrier_wait(struct barrier *b)
{
	pthread_mutex_lock(&b->mu);
	int round = b->round;
	if (++b->waiting == 2) {
		b->waiting = 0;
		b->round++;
		pthread_cond_broadcast(&b->cv);
	}
	while (b->round == round)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
}

/* One side's statement on every item: the finish in the reverse order of the ids, or the renewal. */
static void race_step(struct race_side *s)
{
	struct jobs_record recs[RACE_ITEMS];
	bool held[RACE_ITEMS]; /* one per item */
	enum core_status st;
	if (s->finish) {
		memset(recs, 0, sizeof(recs));
		for (int i = 0; i < RACE_ITEMS; i++)
			recs[i] =
			    (struct jobs_record){.item_id = s->ids[RACE_ITEMS - 1 - i], .outcome = JOB_ITEM_CHANGED};
		st = jobs_finish_batch(db, "race", recs, RACE_ITEMS);
	} else {
		st = jobs_renew(db, "race", s->ids, RACE_ITEMS, 60000, held);
	}
	if (st == CORE_ECONFLICT)
		s->conflicts++;
	else if (st != CORE_OK)
		s->errors++;
}

static void *race_finisher(void *arg)
{
	struct race_side *s = arg;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		barrier_wait(s->go); /* the items are running again */
		race_step(s);
		barrier_wait(s->go); /* both statements ended */
	}
	return NULL;
}

static void finish_and_renew_of_the_same_items_never_deadlock(void)
{
	const char *kinds[] = {"t_race"};
	int64_t repos[RACE_ITEMS], ids[RACE_ITEMS], job = 0;
	for (int i = 0; i < RACE_ITEMS; i++)
		repos[i] = 5000 + i;
	REQUIRE(jobs_create(db, "t_race", "lee", NULL, repos, RACE_ITEMS, &job) == CORE_OK);
	struct job_item *it = NULL;
	int n = 0;
	REQUIRE(jobs_claim(db, "race", kinds, 1, RACE_ITEMS, 60000, &it, &n) == CORE_OK);
	REQUIRE(n == RACE_ITEMS);
	for (int i = 0; i < n; i++)
		ids[i] = it[i].id;
	jobs_items_free(it, n);
	struct barrier go = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct race_side fin = {.go = &go, .ids = ids, .finish = true}, ren = {.go = &go, .ids = ids};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, race_finisher, &fin) == 0);
	char again[200], job_again[120];
	snprintf(
	    again, sizeof(again),
	    "UPDATE job_items SET state = 'running', lease_owner = 'race', lease_until = now() + interval '1 minute',"
	    " result = NULL WHERE job_id = %" PRId64,
	    job);
	snprintf(job_again, sizeof(job_again),
	         "UPDATE jobs SET state = 'running', done = 0, changed = 0 WHERE id = %" PRId64, job);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		sql_exec(again);
		sql_exec(job_again);
		barrier_wait(&go);
		race_step(&ren); /* this thread renews while the other finishes */
		barrier_wait(&go);
	}
	pthread_join(t, NULL);
	fprintf(stderr, "  %d rounds: finish failed %d times, renew %d times (deadlocks)\n", RACE_ROUNDS, fin.conflicts,
	        ren.conflicts);
	CHECK_INT(fin.conflicts + ren.conflicts, 0);
	CHECK_INT(fin.errors + ren.errors, 0);
	CHECK_INT(sql_i64("SELECT done AS v FROM jobs WHERE id = $1", job), RACE_ITEMS);
}

static void claim_share_spreads_small_jobs(void)
{
	const char *kinds[] = {"t_share"};
	int64_t *ids = seq_ids(40, 1), job = 0;
	CHECK(jobs_create(db, "t_share", "kim", NULL, ids, 3, &job) == CORE_OK);
	struct job_item *it = NULL;
	int n = 0;
	/* 3 due items among 8 workers: one each, not 3 for the first */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 8, 1, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 1);
	jobs_items_free(it, n);
	CHECK(jobs_create(db, "t_share", "kim", NULL, ids, 40, &job) == CORE_OK);
	/* 42 due among 8: ceil(42 / 8) = 6, and a claim takes 4 at most */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 8, 1, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 4);
	jobs_items_free(it, n);
	/* 38 due among 2: 4 */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 2, 1, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 4);
	jobs_items_free(it, n);
	/* 34 due among 16: ceil(34 / 16) = 3, so that the last items are spread over the claimers */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 16, 1, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 3);
	jobs_items_free(it, n);
	/* 31 due among 16, for 5 of them at once (a worker and 4 idle siblings): 5 shares of 2 */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 16, 5, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 10);
	jobs_items_free(it, n);
	/* 21 due among 2, for both: 2 shares of 4 */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 2, 2, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 8);
	jobs_items_free(it, n);
	/* 13 due among 16: 1 */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 16, 1, 60000, &it, &n, NULL) == CORE_OK);
	CHECK_INT(n, 1);
	jobs_items_free(it, n);
	/* more claimers than share: refused */
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 2, 3, 60000, &it, &n, NULL) == CORE_EINVAL);
	CHECK(jobs_claim_share(db, "sh", kinds, 1, 4, 2, 0, 60000, &it, &n, NULL) == CORE_EINVAL);
	long ms = -1;
	bool found = false;
	CHECK(jobs_next_due_ms(db, kinds, 1, &ms, &found) == CORE_OK);
	CHECK(found && ms == 0);
	const char *none[] = {"t_share_none"};
	CHECK(jobs_next_due_ms(db, none, 1, &ms, &found) == CORE_OK);
	CHECK(!found);
	free(ids);
}

/* The rows a plan node and its children read of job_items (its table and indexes), from EXPLAIN's JSON. */
static int64_t rows_of_job_items(struct json_object *node)
{
	int64_t n = 0;
	const char *rel = jstr(node, "Relation Name"), *idx = jstr(node, "Index Name");
	if ((rel && strcmp(rel, "job_items") == 0) || (idx && strncmp(idx, "job_items", 9) == 0))
		n += jint(node, "Actual Rows") * jint(node, "Actual Loops");
	struct json_object *kids = NULL;
	if (json_object_object_get_ex(node, "Plans", &kids))
		for (size_t i = 0; i < json_object_array_length(kids); i++)
			n += rows_of_job_items(json_object_array_get_idx(kids, i));
	return n;
}

/* Run the claim of kind (4 at a time, 8 claimers) under EXPLAIN ANALYZE, rolled back: the rows it read of job_items. */
static int64_t claim_reads(const char *kind)
{
	const char *kinds[] = {kind};
	char *claim = jobs_claim_sql(kinds, 1, 4, 8, 1);
	struct buf sql = {0};
	buf_printf(&sql, "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s", claim);
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	int64_t rows = -1;
	const char *p[] = {"explain", "60000"};
	if (store_get_begin(db, &c) == CORE_OK && store_exec(c, buf_str(&sql), 2, p, &r) == CORE_OK) {
		struct json_object *plan = json_tokener_parse(PQgetvalue(r, 0, 0)), *top = NULL;
		if (plan && json_object_object_get_ex(json_object_array_get_idx(plan, 0), "Plan", &top))
			rows = rows_of_job_items(top);
		json_object_put(plan);
	}
	PQclear(r);
	store_put(db, c); /* rolled back: nothing claimed */
	buf_free(&sql);
	free(claim);
	fprintf(stderr, "  a claim of %s read %" PRId64 " rows of job_items\n", kind, rows);
	return rows;
}

#define HISTORY   20000
#define NEW_ITEMS 3000

/*
 * A claim reads a few rows, however long the history of finished items and however large the job: at 10,000 repos
 * a claim read every job item ever written (a hash join its planner chose for a LIMIT it could not bound), or every
 * claimable item (a bitmap scan and a sort, planned on statistics gathered before the job's items were written).
 */
static void claim_reads_a_few_rows_of_a_long_history(void)
{
	const char *kinds[] = {"t_hist2"};
	int64_t *ids = seq_ids(HISTORY, 1), job = 0;
	CHECK(jobs_create(db, "t_hist", "kim", NULL, ids, HISTORY, &job) == CORE_OK);
	sql_exec(
	    "UPDATE job_items SET state = 'done', result = 'unchanged', finished_at = now() WHERE kind = 't_hist'");
	sql_exec("UPDATE jobs SET state = 'done', done = total, unchanged = total WHERE kind = 't_hist'");
	/* statistics that know the job's items */
	CHECK(jobs_create(db, "t_hist", "kim", NULL, ids, NEW_ITEMS, &job) == CORE_OK);
	sql_exec("ANALYZE job_items");
	int64_t rows = claim_reads("t_hist");
	CHECK(rows >= 4 && rows <= 100);
	/* statistics gathered before the job's items were written, which say almost nothing is claimable: the claim
	 * that starts the job gathers them again */
	sql_exec(
	    "UPDATE job_items SET state = 'done', result = 'unchanged', finished_at = now() WHERE kind = 't_hist'");
	sql_exec("UPDATE jobs SET state = 'done', done = total, unchanged = total WHERE kind = 't_hist'");
	sql_exec("ANALYZE job_items");
	/* how many pending items the planner's statistics know of */
#define PENDING_KNOWN                                                                                                  \
	"SELECT (coalesce(most_common_freqs[array_position(most_common_vals::text::text[], 'pending')], 0)"            \
	" * (SELECT reltuples FROM pg_class WHERE relname = 'job_items'))::bigint AS v"                                \
	" FROM pg_stats WHERE tablename = 'job_items' AND attname = 'state'"
	int64_t known = sql_i64(PENDING_KNOWN, 0);
	CHECK(known >= 0 && known < NEW_ITEMS / 2);
	CHECK(jobs_create(db, "t_hist2", "kim", NULL, ids, NEW_ITEMS, &job) == CORE_OK);
	struct job_item *it = NULL;
	int n = 0;
	/* asked to leave that to its caller, it says so and leaves the statistics as they were */
	bool stale = false;
	CHECK(jobs_claim_share(db, "hist", kinds, 1, 4, 8, 1, 60000, &it, &n, &stale) == CORE_OK);
	CHECK_INT(n, 4);
	CHECK(stale);
	jobs_items_free(it, n);
	CHECK(sql_i64(PENDING_KNOWN, 0) < NEW_ITEMS / 2);
	jobs_analyze(db);
	known = sql_i64(PENDING_KNOWN, 0);
	fprintf(stderr, "  the statistics know of %" PRId64 " pending items\n", known);
	CHECK(known >= NEW_ITEMS / 2);
	rows = claim_reads("t_hist2");
	CHECK(rows >= 4 && rows <= 100);
	free(ids);
}

static int retry_once_calls;
static enum job_outcome retry_once_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	(void)user;
	if (item->attempt == 1 && __atomic_fetch_add(&retry_once_calls, 1, __ATOMIC_RELAXED) >= 0) {
		jobs_result_message(res, "try later");
		res->retry_after_ms = 300;
		return JOB_ITEM_RETRY;
	}
	return JOB_ITEM_CHANGED;
}

/* Claim statements this process sent over ms, after letting the runner settle. */
static double claims_over(long ms)
{
	double c0 = metrics_get("mrgate_job_claim_queries_total", NULL);
	sleep_ms(ms);
	return metrics_get("mrgate_job_claim_queries_total", NULL) - c0;
}

/* ---- a handler's work settled by the recorder ---- */

struct settling {
	pthread_mutex_t mu;
	int runs[64], settles[64];
	int settled_early; /* settles that found their item already done (must stay 0) */
	int64_t job;
};

struct settle_arg {
	struct settling *s;
	int64_t repo;
	int attempt;
};

static enum core_status settle_fn(void *arg)
{
	struct settle_arg *a = arg;
	struct settling *s = a->s;
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND repo_id = %" PRId64
	         " AND state IN ('done', 'failed')",
	         a->repo);
	int64_t done = sql_i64(sql, s->job);
	pthread_mutex_lock(&s->mu);
	s->settles[a->repo]++;
	s->settled_early += done != 0;
	pthread_mutex_unlock(&s->mu);
	/* repo 3's work is not stored on its first attempt; repo 5 asks for a retry with its work pending */
	enum core_status st = a->repo == 3 && a->attempt == 1 ? CORE_EUNAVAIL : CORE_OK;
	free(a);
	return st;
}

static enum job_outcome settling_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct settling *s = user;
	pthread_mutex_lock(&s->mu);
	s->runs[item->repo_id]++;
	pthread_mutex_unlock(&s->mu);
	struct settle_arg *a = malloc(sizeof(*a));
	*a = (struct settle_arg){s, item->repo_id, item->attempt};
	res->settle = settle_fn;
	res->settle_arg = a;
	if (item->repo_id == 5 && item->attempt == 1) {
		res->retry_after_ms = 1;
		return JOB_ITEM_RETRY;
	}
	jobs_result_message(res, "done with %" PRId64, item->repo_id);
	return JOB_ITEM_CHANGED;
}

/* Each run's work is settled once, before its item is stored; a settle that fails makes the item a retry. */
static void handler_work_is_settled_before_its_item_is_stored(void)
{
	struct settling *s = calloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	int64_t *ids = seq_ids(40, 1);
	CHECK(jobs_create(db, "t_settle", "kim", NULL, ids, 40, &s->job) == CORE_OK);
	free(ids);
	struct jobs_runner_opts o = {
	    .workers = 4, .poll_ms = 20, .max_attempts = 3, .backoff_base_ms = 1, .backoff_max_ms = 5};
	struct json_object *j = run_job(&o, "t_settle", settling_handler, s, s->job, 20000);
	REQUIRE(j);
	CHECK_INT(jint(j, "changed"), 40);
	CHECK_INT(jint(j, "failed"), 0);
	json_object_put(j);
	for (int r = 1; r <= 40; r++) {
		int want = r == 3 || r == 5 ? 2 : 1; /* repo 3's lost work and repo 5's retry run it again */
		CHECK_INT(s->runs[r], want);
		CHECK_INT(s->settles[r], want); /* once per run, the retry's too */
	}
	CHECK_INT(s->settled_early, 0);
	struct json_object *page = NULL;
	REQUIRE(jobs_items(db, s->job, NULL, 0, 100, &page) == CORE_OK);
	CHECK_STR(item_field(page, 3, "message"), "done with 3");
	json_object_put(page);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void idle_runner_waits_for_notify(void)
{
	struct counter *cnt = counter_new();
	struct counter_user u = {.c = cnt};
	/* a safety poll far longer than the test: only notifications and due times can wake the workers */
	struct jobs_runner_opts o = {
	    .workers = 4, .listen_url = db_url, .idle_poll_ms = 600000, .claim_batch = 4, .backoff_base_ms = 100};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_listen", counting_handler, &u) == CORE_OK);
	CHECK(jobs_register(r, "t_listen_retry", retry_once_handler, NULL) == CORE_OK);
	sleep_ms(500);
	CHECK(claims_over(2000) == 0);

	/* a job created elsewhere (no jobs_runner_wake): its NOTIFY wakes the runner */
	int64_t *ids = seq_ids(20, 100), job = 0;
	CHECK(jobs_create(db, "t_listen", "kim", NULL, ids, 20, &job) == CORE_OK);
	struct json_object *j = wait_finished(job, 10000);
	REQUIRE(j);
	CHECK_INT(jint(j, "done"), 20);
	json_object_put(j);
	CHECK_INT(cnt->total, 20);
	sleep_ms(300);
	CHECK(claims_over(1500) == 0);

	/* an item put back with a delay is claimed when it falls due, without any notification then */
	CHECK(jobs_create(db, "t_listen_retry", "kim", NULL, ids, 2, &job) == CORE_OK);
	j = wait_finished(job, 10000);
	REQUIRE(j);
	CHECK_INT(jint(j, "changed"), 2);
	json_object_put(j);
	CHECK(retry_once_calls >= 2);
	sleep_ms(300);
	CHECK(claims_over(1500) == 0);
	jobs_runner_stop(r);
	free(ids);
	counter_free(cnt);
}

/* ---- a claim hands idle workers their batches ---- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, want;
	double claims_then; /* mrgate_job_claim_queries_total when started reached want */
};

/* Blocks until `want` items have started (at most 5 s), so that they all run at once. */
static enum job_outcome gate_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct gate *g = user;
	pthread_mutex_lock(&g->mu);
	if (++g->started == g->want) {
		g->claims_then = metrics_get("mrgate_job_claim_queries_total", NULL); /* before any worker is free */
		pthread_cond_broadcast(&g->cv);
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (g->started < g->want && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
		;
	pthread_mutex_unlock(&g->mu);
	jobs_result_message(res, "ran %" PRId64, item->repo_id);
	return JOB_ITEM_CHANGED;
}

/*
 * A job reaching idle workers: the worker that claims takes the shares of its idle siblings too and hands them
 * their batches, so that all start after one claim statement. Before, each claimed its own in turn and woke the
 * next: the start of a 1,000-repo apply was 32 claims one after the other, 20-80 ms before every GitLab slot had a
 * call (docs/PERFORMANCE.md, session 30).
 */
static void idle_workers_are_handed_their_batches(void)
{
	struct gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .want = 8};
	struct jobs_runner_opts o = {.workers = 8, .listen_url = db_url, .idle_poll_ms = 600000, .claim_batch = 4};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_fan", gate_handler, &g) == CORE_OK);
	/* every worker idle: each claimed once as it started (its first claim opening a database connection) */
	while (claims_over(300) > 0)
		;
	double c0 = metrics_get("mrgate_job_claim_queries_total", NULL);
	int64_t *ids = seq_ids(8, 1), job = 0;
	CHECK(jobs_create(db, "t_fan", "kim", NULL, ids, 8, &job) == CORE_OK);
	struct json_object *j = wait_finished(job, 10000);
	REQUIRE(j);
	double claims = g.claims_then - c0;
	CHECK_INT(g.started, 8); /* one item for each of the 8 workers, all running at once */
	/* one claim for all (two if a second poke came before it); each claiming its own took 8 */
	fprintf(stderr, "  claim statements until the 8 items ran: %.0f\n", claims);
	CHECK(claims >= 1 && claims <= 2);
	CHECK_INT(jint(j, "done"), 8);
	CHECK_INT(jint(j, "changed"), 8);
	json_object_put(j);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND attempts = 1", job), 8);
	jobs_runner_stop(r);
	free(ids);
}

/* Item of repo 1 waits (at most 5 s) until the 7 others have run; they run at once. */
struct wait_for_7 {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ran;
	bool waited_out;
};

static enum job_outcome barrier_handler(void *user, const struct job_item *item, struct job_item_result *res)
{
	struct wait_for_7 *b = user;
	pthread_mutex_lock(&b->mu);
	if (item->repo_id == 1) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		while (b->ran < 7 && !b->waited_out)
			b->waited_out = pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT;
	} else {
		b->ran++;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	jobs_result_message(res, "ran %" PRId64, item->repo_id);
	return JOB_ITEM_CHANGED;
}

/*
 * A worker out of items, with nothing left to claim, takes the items a sibling has not started yet (half of them,
 * the last ones), instead of idling while that sibling runs them one after another: the last batches of a large job
 * (claimed up to claim_batch at a time) are spread over the workers. Two workers, 8 items in batches of 4: the
 * first batch's first item waits for the 7 others, so they can only all run if the second worker takes items 2-4
 * from the first's batch.
 */
static void a_worker_out_of_items_takes_a_siblings(void)
{
	struct wait_for_7 b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct jobs_runner_opts o = {.workers = 2, .listen_url = db_url, .idle_poll_ms = 600000, .claim_batch = 8};
	struct jobs_runner *r = jobs_runner_start(db, &o);
	REQUIRE(r);
	CHECK(jobs_register(r, "t_steal", barrier_handler, &b) == CORE_OK);
	while (claims_over(300) > 0) /* both idle */
		;
	int64_t *ids = seq_ids(8, 1), job = 0;
	CHECK(jobs_create(db, "t_steal", "kim", NULL, ids, 8, &job) == CORE_OK);
	struct json_object *j = wait_finished(job, 10000);
	REQUIRE(j);
	CHECK(!b.waited_out); /* the 7 others ran while the first waited */
	CHECK_INT(jint(j, "done"), 8);
	CHECK_INT(jint(j, "changed"), 8);
	json_object_put(j);
	struct jobs_runner_stats st;
	jobs_runner_stats(r, &st);
	fprintf(stderr, "  items taken from a sibling: %lld\n", st.stolen);
	/* 2 of the 3 not started, then the last one (and the first too, if its worker had not started it yet) */
	CHECK(st.stolen == 3 || st.stolen == 4);
	CHECK_INT(sql_i64("SELECT count(*) AS v FROM job_items WHERE job_id = $1 AND attempts = 1", job), 8);
	jobs_runner_stop(r);
	free(ids);
}

/*
 * The waker's wait (pglisten_wait_poll, as waker_main loops on it) when the due time it was interrupted for has
 * already passed once it looks again: it must end at once, not wait the safety poll. A worker that finds nothing
 * due while a sibling's item runs learns "due now" (1 ms): the interrupt of that due time often reached the waker
 * after the millisecond, and the due time stuck in the past hid every later one (a retried item waited for the
 * safety poll; idle_runner_waits_for_notify failed now and then).
 */
static long waker_wait_ms(struct pglisten *l, long safety_ms)
{
	long t0 = pglisten_now_ms();
	while (pglisten_wait_poll(l, 100, safety_ms) == PGLISTEN_INTERRUPT)
		;
	return pglisten_now_ms() - t0;
}

static void due_time_passed_before_the_wait(void)
{
	const char *ch[] = {"t_due"};
	struct pglisten *l = pglisten_open(db_url, ch, 1);
	REQUIRE(l);
	CHECK(pglisten_wait(l, 0) == PGLISTEN_NOTIFY); /* connects and listens */
	REQUIRE(pglisten_connected(l));
	pglisten_due_in(l, 1);
	sleep_ms(20); /* the due time passes before the waker looks */
	long waited = waker_wait_ms(l, 3000);
	CHECK(waited < 1000);
	/* and a later due time is kept once it is set */
	pglisten_due_in(l, 100);
	waited = waker_wait_ms(l, 3000);
	CHECK(waited >= 90 && waited < 1000);
	if (waited >= 1000)
		fprintf(stderr, "  waited %ld ms for a due time of 100 ms\n", waited);
	pglisten_close(l);
}

int main(void)
{
	log_init(LOG_ERROR, 0);
	if (crypto_init() != CORE_OK)
		return 1;
	db_url = testlib_fresh_database("jobs");
	db = store_open(db_url, 24);
	if (!db || migrate_run(db, NULL) != CORE_OK)
		return 2;
	RUN(backoff_bounds);
	RUN(lease_primitives);
	RUN(thousand_items_four_workers);
	RUN(two_runners_share_a_job);
	RUN(crashed_runner_is_taken_over);
	RUN(heartbeat_renews_and_detects_loss);
	RUN(retries_backoff_and_retry_failed);
	RUN(stop_releases_unstarted_claims);
	RUN(outcome_recorded_while_batch_runs);
	RUN(poison_item_gives_up);
	RUN(api_create_list_items_cancel);
	RUN(api_in_tx_big_and_list);
	RUN(finish_batch_records_what_it_holds);
	RUN(finish_and_renew_of_the_same_items_never_deadlock);
	RUN(claim_share_spreads_small_jobs);
	RUN(claim_reads_a_few_rows_of_a_long_history);
	RUN(due_time_passed_before_the_wait);
	RUN(idle_runner_waits_for_notify);
	RUN(idle_workers_are_handed_their_batches);
	RUN(a_worker_out_of_items_takes_a_siblings);
	RUN(handler_work_is_settled_before_its_item_is_stored);
	store_close(db);
	free(db_url);
	return testlib_done();
}
