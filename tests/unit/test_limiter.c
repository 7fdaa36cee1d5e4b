/*
 * tests/unit/test_limiter.c
 *    The GitLab concurrency limiter: never more holders than slots, waiting, timed acquisition.
 */
#include "limiter.h"
#include "log.h"
#include "testlib.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static void sleep_us(long us)
{
	struct timespec t = {us / 1000000, (us % 1000000) * 1000L};
	nanosleep(&t, NULL);
}

static void basics(void)
{
	CHECK(limiter_new(0) == NULL);
	CHECK(limiter_new(-3) == NULL);
	limiter_free(NULL);
	struct limiter *l = limiter_new(2);
	REQUIRE(l);
	CHECK_INT(limiter_capacity(l), 2);
	CHECK_INT(limiter_in_use(l), 0);
	limiter_acquire(l);
	CHECK(limiter_acquire_timed(l, 0));
	CHECK_INT(limiter_in_use(l), 2);
	/* full: a timed acquire gives up, and waits about as long as asked */
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK(!limiter_acquire_timed(l, 100));
	clock_gettime(CLOCK_MONOTONIC, &b);
	long waited = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	CHECK(waited >= 95);
	CHECK(!limiter_acquire_timed(l, 0));
	limiter_release(l);
	CHECK_INT(limiter_in_use(l), 1);
	CHECK(limiter_acquire_timed(l, 0));
	limiter_release(l);
	limiter_release(l);
	CHECK_INT(limiter_in_use(l), 0);
	CHECK_INT(limiter_peak(l), 2);
	limiter_free(l);
}

struct shared {
	struct limiter *l;
	pthread_mutex_t mu;
	int holders;
	int max_holders;
};

static void *hammer(void *arg)
{
	struct shared *s = arg;
	for (int i = 0; i < 200; i++) {
		limiter_acquire(s->l);
		pthread_mutex_lock(&s->mu);
		s->holders++;
		if (s->holders > s->max_holders)
			s->max_holders = s->holders;
		pthread_mutex_unlock(&s->mu);
		sleep_us(50);
		pthread_mutex_lock(&s->mu);
		s->holders--;
		pthread_mutex_unlock(&s->mu);
		limiter_release(s->l);
	}
	return NULL;
}

static void bounded_across_threads(void)
{
	struct shared s = {.l = limiter_new(3)};
	pthread_t t[16];
	REQUIRE(s.l);
	pthread_mutex_init(&s.mu, NULL);
	for (int i = 0; i < 16; i++)
		pthread_create(&t[i], NULL, hammer, &s);
	for (int i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	CHECK(s.max_holders <= 3);
	CHECK(s.max_holders >= 2); /* 16 threads contend: the slots were actually shared */
	CHECK(limiter_peak(s.l) <= 3);
	CHECK_INT(limiter_in_use(s.l), 0);
	pthread_mutex_destroy(&s.mu);
	limiter_free(s.l);
}

struct waiter {
	struct limiter *l;
	int got;
};

static void *wait_one(void *arg)
{
	struct waiter *w = arg;
	w->got = limiter_acquire_timed(w->l, 5000) ? 1 : 0;
	return NULL;
}

static void release_wakes_a_waiter(void)
{
	struct waiter w = {.l = limiter_new(1)};
	pthread_t t;
	REQUIRE(w.l);
	limiter_acquire(w.l);
	pthread_create(&t, NULL, wait_one, &w);
	sleep_us(50000);
	limiter_release(w.l);
	pthread_join(t, NULL);
	CHECK_INT(w.got, 1);
	CHECK_INT(limiter_in_use(w.l), 1);
	limiter_release(w.l);
	limiter_free(w.l);
}

struct ordered {
	struct limiter *l;
	bool first;
	pthread_mutex_t *mu;
	int *order; /* 1 + the place this taker got its slot in */
	int *next;
};

static void *take_in_order(void *arg)
{
	struct ordered *o = arg;
	if (o->first)
		limiter_acquire_first(o->l);
	else
		limiter_acquire(o->l);
	pthread_mutex_lock(o->mu);
	*o->order = ++*o->next;
	pthread_mutex_unlock(o->mu);
	return NULL;
}

/* limiter_acquire_first() gets the next freed slot though ordinary takers waited before it; they go on after. */
static void first_taker_goes_ahead(void)
{
	struct limiter *l = limiter_new(1);
	REQUIRE(l);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int order[4] = {0}, next = 0;
	struct ordered o[4];
	pthread_t t[4];
	limiter_acquire(l);
	for (int i = 0; i < 4; i++) {
		o[i] = (struct ordered){.l = l, .first = i == 3, .mu = &mu, .order = &order[i], .next = &next};
		pthread_create(&t[i], NULL, take_in_order, &o[i]);
		sleep_us(20000); /* in this order: three ordinary takers, then the first one */
	}
	limiter_release(l);
	sleep_us(50000);
	CHECK_INT(order[3], 1); /* the freed slot went to the first taker */
	CHECK_INT(order[0] + order[1] + order[2], 0);
	for (int i = 0; i < 3; i++) { /* the others follow, one slot at a time */
		limiter_release(l);
		sleep_us(30000);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(order[0] * order[1] * order[2], 2 * 3 * 4);
	CHECK_INT(limiter_in_use(l), 1);
	/* a free slot is taken at once, and the ordinary takers are not held back once it is */
	limiter_release(l);
	limiter_acquire_first(l);
	CHECK(!limiter_acquire_timed(l, 0));
	limiter_release(l);
	CHECK(limiter_acquire_timed(l, 0));
	limiter_release(l);
	limiter_free(l);
}

int main(void)
{
	log_init(LOG_ERROR, 0);
	RUN(basics);
	RUN(bounded_across_threads);
	RUN(release_wakes_a_waiter);
	RUN(first_taker_goes_ahead);
	return testlib_done();
}
