/*
 * tests/unit/test_cond.c
 *    core/cond: a deadline is ms later on the clock asked for and normalised; a raised flag wakes a waiting thread.
 */
#include "cond.h"
#include "testlib.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static int64_t ns_of(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Every deadline lies between "before + ms" and "after + ms" and has tv_nsec in [0, 1e9). */
static void deadline_is_ms_later_on_its_clock(void)
{
	static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
	static const long delays[] = {0, 1, 999, 1000, 1001, 1999, 60000};
	for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++)
		for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
			struct timespec before, after;
			clock_gettime(clocks[c], &before);
			struct timespec d = cond_deadline(clocks[c], delays[i]);
			clock_gettime(clocks[c], &after);
			CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
			int64_t later = (int64_t)delays[i] * 1000000LL;
			CHECK(ns_of(d) >= ns_of(before) + later && ns_of(d) <= ns_of(after) + later);
		}
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int waiting; /* threads that reached their wait: they hold mu from here until the wait releases it */
	int wakeups;
};

static void *wait_for_stop(void *arg)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->waiting++;
	while (!w->stop) {
		struct timespec until = cond_deadline(CLOCK_REALTIME, 10000);
		pthread_cond_timedwait(&w->cv, &w->mu, &until);
		w->wakeups++;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Two threads wait on one condition variable; one cond_raise wakes both, well before their 10 s deadline. */
static void raise_wakes_every_waiter(void)
{
	struct waiter w = {.stop = false};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, wait_for_stop, &w) == 0);
	/* raised only once both wait: a thread scheduled late (CI under load) saw the flag already set and never
	 * waited, which failed the wake-up count now and then */
	struct timespec pause = {0, 1000000L}, start, end;
	for (bool both = false; !both;) {
		nanosleep(&pause, NULL);
		pthread_mutex_lock(&w.mu);
		both = w.waiting == 2;
		pthread_mutex_unlock(&w.mu);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	cond_raise(&w.mu, &w.cv, &w.stop);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	CHECK(w.stop);
	CHECK(w.wakeups >= 2);
	CHECK(ns_of(end) - ns_of(start) < 5000000000LL);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
}

int main(void)
{
	RUN(deadline_is_ms_later_on_its_clock);
	RUN(raise_wakes_every_waiter);
	return testlib_done();
}
