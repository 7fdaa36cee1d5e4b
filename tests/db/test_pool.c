/*
 * tests/db/test_pool.c
 *    The connection pool on a real PostgreSQL: a returned connection goes to the thread that has waited longest,
 *    not to the thread that returned it and asks again at once (a job worker between two statements), so that
 *    with every connection borrowed no waiter is starved; and a waiter that gives up (10 s) leaves the queue.
 */
#include "log.h"
#include "store.h"
#include "testlib.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static char *url;

struct taker {
	struct store *pool;
	int order; /* when it got its connection: 1 first, 2 second (from *next) */
	int *next; /* shared turn counter */
	pthread_mutex_t *mu;
	enum core_status st;
};

static void *take(void *arg)
{
	struct taker *t = arg;
	struct store_conn *c = NULL;
	t->st = store_get(t->pool, &c);
	pthread_mutex_lock(t->mu);
	t->order = ++*t->next;
	pthread_mutex_unlock(t->mu);
	usleep(50 * 1000); /* holds it a while, as a statement would */
	store_put(t->pool, c);
	return NULL;
}

static int waiting(struct store *pool)
{
	struct store_stats ss;
	store_stats(pool, &ss);
	return ss.waiting;
}

static void wait_for_waiters(struct store *pool, int n)
{
	for (int i = 0; i < 1000 && waiting(pool) < n; i++)
		usleep(1000);
	REQUIRE(waiting(pool) == n);
}

/* The one connection of a pool is returned while a thread waits for it, and asked for again at once: the waiter
 * gets it first. Before, the returning thread took it back before the waiter woke, again and again. */
static void a_returned_connection_goes_to_the_longest_waiter(void)
{
	struct store *pool = store_open(url, 1);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int next = 0;
	struct store_conn *c = NULL;
	REQUIRE(store_get(pool, &c) == CORE_OK);
	struct taker waiter = {.pool = pool, .next = &next, .mu = &mu};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, take, &waiter) == 0);
	wait_for_waiters(pool, 1);
	store_put(pool, c);
	c = NULL;
	REQUIRE(store_get(pool, &c) == CORE_OK); /* the thread that returned it, asking again */
	pthread_mutex_lock(&mu);
	int mine = ++next;
	pthread_mutex_unlock(&mu);
	pthread_join(th, NULL);
	CHECK_INT(waiter.st, CORE_OK);
	CHECK_INT(waiter.order, 1);
	CHECK_INT(mine, 2);
	store_put(pool, c);
	CHECK_INT(waiting(pool), 0);
	store_close(pool);
}

/* Three waiters are served in the order they came. */
static void waiters_are_served_in_order(void)
{
	struct store *pool = store_open(url, 1);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int next = 0;
	struct store_conn *c = NULL;
	REQUIRE(store_get(pool, &c) == CORE_OK);
	struct taker t[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		t[i] = (struct taker){.pool = pool, .next = &next, .mu = &mu};
		REQUIRE(pthread_create(&th[i], NULL, take, &t[i]) == 0);
		wait_for_waiters(pool, i + 1); /* each in the queue before the next starts */
	}
	store_put(pool, c);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(t[i].st, CORE_OK);
		CHECK_INT(t[i].order, i + 1);
	}
	CHECK_INT(waiting(pool), 0);
	store_close(pool);
}

/* A waiter that gives up after 10 s leaves the queue: the connection returned later goes to the next asker. */
static void a_waiter_that_gives_up_leaves_the_queue(void)
{
	struct store *pool = store_open(url, 1);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int next = 0;
	struct store_conn *c = NULL;
	REQUIRE(store_get(pool, &c) == CORE_OK);
	struct taker late = {.pool = pool, .next = &next, .mu = &mu};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, take, &late) == 0);
	wait_for_waiters(pool, 1);
	pthread_join(th, NULL); /* 10 s */
	CHECK_INT(late.st, CORE_EUNAVAIL);
	CHECK_INT(waiting(pool), 0);
	store_put(pool, c);
	c = NULL;
	REQUIRE(store_get(pool, &c) == CORE_OK);
	PGresult *r = NULL;
	REQUIRE(store_run(c, "SELECT 1 AS one", NULL, &r) == CORE_OK);
	CHECK_INT(store_i64(r, 0, "one", 0), 1);
	PQclear(r);
	store_put(pool, c);
	store_close(pool);
}

int main(void)
{
	log_init(LOG_ERROR, 0);
	url = testlib_fresh_database("pool");
	RUN(a_returned_connection_goes_to_the_longest_waiter);
	RUN(waiters_are_served_in_order);
	RUN(a_waiter_that_gives_up_leaves_the_queue);
	free(url);
	return testlib_done();
}
