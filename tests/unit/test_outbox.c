/*
 * tests/unit/test_outbox.c
 *    core/outbox: rows written side by side by many threads are each written exactly once, several to a batch; a
 *    lone row waits out the gathering time and no more; a batch that one bad row fails leaves every good row
 *    written and the bad row's thread alone with the error. Posted rows (outbox_post) are not written until a
 *    settle or another thread's write takes them; a settle writes at once (no gathering), one statement for all
 *    that is queued, and a posted bad row's settle alone gets the error.
 */
#include "outbox.h"
#include "testlib.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define THREADS    8
#define PER_THREAD 40

/* The writer: counts each row id written (a batch holding a "bad" row fails whole, writing nothing). */
struct sink {
	pthread_mutex_t mu;
	int written[THREADS * PER_THREAD + 1];
	int calls, largest;
	bool in_write; /* batches must not overlap */
	int overlaps;
};

static enum core_status sink_write(void *user, struct json_object *rows)
{
	struct sink *s = user;
	size_t n = json_object_array_length(rows);
	pthread_mutex_lock(&s->mu);
	s->overlaps += s->in_write && n > 1;
	s->in_write = s->in_write || n > 1;
	s->calls++;
	if ((int)n > s->largest)
		s->largest = (int)n;
	bool bad = false;
	for (size_t i = 0; i < n; i++) {
		struct json_object *b = NULL;
		bad = bad || json_object_object_get_ex(json_object_array_get_idx(rows, i), "bad", &b);
	}
	pthread_mutex_unlock(&s->mu);
	struct timespec pause = {0, 1000000L}; /* a statement takes a while: rows queue up meanwhile */
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; !bad && i < n; i++)
		s->written[json_object_get_int(json_object_object_get(json_object_array_get_idx(rows, i), "id"))]++;
	if (n > 1)
		s->in_write = false;
	pthread_mutex_unlock(&s->mu);
	return bad ? CORE_EINVAL : CORE_OK;
}

struct worker {
	struct outbox *ob;
	int first;  /* ids first .. first + PER_THREAD - 1 */
	int bad_id; /* this id carries "bad" (0: none) */
	enum core_status got[PER_THREAD];
};

static void *produce(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct json_object *row = json_object_new_object();
		json_object_object_add(row, "id", json_object_new_int(w->first + i));
		if (w->first + i == w->bad_id)
			json_object_object_add(row, "bad", json_object_new_boolean(1));
		w->got[i] = outbox_write(w->ob, row);
		json_object_put(row);
	}
	return NULL;
}

/* Run THREADS producers through one outbox; bad_id (0: none) is the one row the writer refuses. */
static void run_producers(struct outbox *ob, struct worker *ws, int bad_id)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		ws[i] = (struct worker){.ob = ob, .first = 1 + i * PER_THREAD, .bad_id = bad_id};
		CHECK(pthread_create(&t[i], NULL, produce, &ws[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

static void side_by_side_rows_are_written_once_in_batches(void)
{
	struct sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct outbox *ob = outbox_new(sink_write, &s, 2, 16);
	struct worker ws[THREADS];
	run_producers(ob, ws, 0);
	for (int i = 0; i < THREADS; i++)
		for (int k = 0; k < PER_THREAD; k++)
			CHECK(ws[i].got[k] == CORE_OK);
	int once = 0;
	for (int id = 1; id <= THREADS * PER_THREAD; id++)
		once += s.written[id] == 1;
	CHECK(once == THREADS * PER_THREAD);
	struct outbox_stats st = outbox_stats(ob);
	CHECK(st.rows == THREADS * PER_THREAD);
	CHECK(st.batches == s.calls);
	/* several to a batch: far fewer calls than rows, none above `full` */
	CHECK(s.calls < THREADS * PER_THREAD / 2);
	CHECK(s.largest > 1 && s.largest <= 16);
	CHECK(st.largest == s.largest);
	CHECK(s.overlaps == 0);
	CHECK(st.failed_batches == 0);
	outbox_free(ob);
}

static long ms_between(struct timespec a, struct timespec b)
{
	return (long)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

/* A row nobody else writes beside waits out the gathering time and no longer. */
static void a_lone_row_waits_only_the_gathering_time(void)
{
	struct sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct outbox *ob = outbox_new(sink_write, &s, 200, 16);
	struct json_object *row = json_object_new_object();
	json_object_object_add(row, "id", json_object_new_int(7));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(outbox_write(ob, row) == CORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_object_put(row);
	CHECK(s.written[7] == 1 && s.calls == 1);
	CHECK(ms_between(t0, t1) >= 190 && ms_between(t0, t1) < 5000);
	/* a full batch ends the gathering at once: `full` 1 here */
	struct outbox *now = outbox_new(sink_write, &s, 60000, 1);
	row = json_object_new_object();
	json_object_object_add(row, "id", json_object_new_int(8));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(outbox_write(now, row) == CORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_object_put(row);
	CHECK(s.written[8] == 1);
	CHECK(ms_between(t0, t1) < 5000);
	outbox_free(now);
	outbox_free(ob);
}

static void a_bad_row_fails_alone(void)
{
	struct sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct outbox *ob = outbox_new(sink_write, &s, 2, 16);
	struct worker ws[THREADS];
	int bad = 3 * PER_THREAD + 5; /* thread 3's row 4 */
	run_producers(ob, ws, bad);
	int errors = 0, oks = 0;
	for (int i = 0; i < THREADS; i++)
		for (int k = 0; k < PER_THREAD; k++) {
			int id = ws[i].first + k;
			if (id == bad)
				CHECK(ws[i].got[k] == CORE_EINVAL);
			errors += ws[i].got[k] != CORE_OK;
			oks += ws[i].got[k] == CORE_OK;
		}
	CHECK(errors == 1);
	CHECK(oks == THREADS * PER_THREAD - 1);
	for (int id = 1; id <= THREADS * PER_THREAD; id++)
		CHECK(s.written[id] == (id == bad ? 0 : 1));
	struct outbox_stats st = outbox_stats(ob);
	CHECK(st.failed_batches <= 1);
	outbox_free(ob);
}

static struct json_object *row_of(int id, bool bad)
{
	struct json_object *row = json_object_new_object();
	json_object_object_add(row, "id", json_object_new_int(id));
	if (bad)
		json_object_object_add(row, "bad", json_object_new_boolean(1));
	return row;
}

/* Posted rows wait for a settle, which writes them all at once without the gathering time. */
static void posted_rows_are_written_by_a_settle(void)
{
	struct sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct outbox *ob = outbox_new(sink_write, &s, 60000, 16); /* a write would gather for a minute */
	struct outbox_ticket *t[5];
	for (int i = 0; i < 5; i++) {
		struct json_object *row = row_of(10 + i, false);
		t[i] = outbox_post(ob, row); /* the row is the outbox's now */
	}
	CHECK(s.calls == 0); /* nothing written yet */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(outbox_settle(t[2]) == CORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(ms_between(t0, t1) < 5000);
	CHECK(s.calls == 1 && s.largest == 5); /* one statement took every posted row */
	for (int i = 0; i < 5; i++)
		CHECK(s.written[10 + i] == 1);
	for (int i = 0; i < 5; i++)
		if (i != 2)
			CHECK(outbox_settle(t[i]) == CORE_OK);
	CHECK(s.calls == 1); /* already written: the other settles write nothing */
	outbox_free(ob);
}

/* A posted bad row fails its batch; its settle alone gets the error, and the others' rows are written. */
static void a_posted_bad_row_fails_alone(void)
{
	struct sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct outbox *ob = outbox_new(sink_write, &s, 2, 16);
	struct outbox_ticket *t[4];
	for (int i = 0; i < 4; i++) {
		struct json_object *row = row_of(20 + i, i == 1);
		t[i] = outbox_post(ob, row);
	}
	/* a thread's own write takes the posted rows into its batch */
	struct json_object *mine = row_of(30, false);
	CHECK(outbox_write(ob, mine) == CORE_OK);
	json_object_put(mine);
	CHECK(s.written[30] == 1);
	CHECK(outbox_settle(t[1]) == CORE_EINVAL);
	for (int i = 0; i < 4; i++)
		if (i != 1)
			CHECK(outbox_settle(t[i]) == CORE_OK);
	for (int i = 0; i < 4; i++)
		CHECK(s.written[20 + i] == (i == 1 ? 0 : 1));
	CHECK(outbox_stats(ob).failed_batches == 1);
	outbox_free(ob);
}

int main(void)
{
	RUN(side_by_side_rows_are_written_once_in_batches);
	RUN(a_lone_row_waits_only_the_gathering_time);
	RUN(a_bad_row_fails_alone);
	RUN(posted_rows_are_written_by_a_settle);
	RUN(a_posted_bad_row_fails_alone);
	return testlib_done();
}
