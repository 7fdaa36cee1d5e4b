/*
 * core/workpool.c
 *    A batch of indexes run on a few threads (see workpool.h).
 */
#include "workpool.h"

static void *worker(void *arg)
{
	struct workpool *wp = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&wp->next, 1);
		if (i >= wp->n)
			return NULL;
		wp->fn(wp->arg, i);
	}
}

void workpool_start(struct workpool *wp, size_t n, int threads, void (*fn)(void *arg, size_t i), void *arg)
{
	wp->fn = fn;
	wp->arg = arg;
	wp->n = n;
	wp->started = 0;
	atomic_init(&wp->next, 0);
	int nt = threads < 1 ? 1 : threads > WORKPOOL_MAX ? WORKPOOL_MAX : threads;
	if ((size_t)nt > n)
		nt = (int)n;
	for (int i = 0; i < nt; i++)
		if (pthread_create(&wp->t[wp->started], NULL, worker, wp) == 0)
			wp->started++;
	if (wp->started == 0)
		worker(wp); /* no thread could start: do the work here */
}

void workpool_join(struct workpool *wp)
{
	for (int i = 0; i < wp->started; i++)
		pthread_join(wp->t[i], NULL);
	wp->started = 0;
}

void workpool_run(size_t n, int threads, void (*fn)(void *arg, size_t i), void *arg)
{
	struct workpool wp;
	workpool_start(&wp, n, threads, fn, arg);
	workpool_join(&wp);
}
