/*
 * core/workpool.h
 *    Run one function over the indexes 0..n-1 of a batch on a few threads.
 *
 * Design: the threads take the next index from one atomic counter until the batch is used up, so each index is
 * handed out exactly once and a slow item does not hold up the others. workpool_start() starts the threads and
 * returns at once (a caller can consume results while they are made, as `mrgate scan` prints files in order);
 * workpool_join() waits for them; workpool_run() is both. When no thread can be started the calling thread does
 * the whole batch inside workpool_start(). Threads are clamped to 1..WORKPOOL_MAX and to n.
 * Threading: fn runs on the pool's threads (or the caller's) concurrently with itself; it must be safe for that
 * and signal the caller itself when results are consumed before the join.
 * Ownership: struct workpool is the caller's (usually on its stack) and must stay alive until workpool_join();
 * arg is borrowed.
 */
#ifndef MRGATE_CORE_WORKPOOL_H
#define MRGATE_CORE_WORKPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define WORKPOOL_MAX 64

struct workpool {
	void (*fn)(void *arg, size_t i);
	void *arg;
	size_t n;
	atomic_size_t next;
	pthread_t t[WORKPOOL_MAX];
	int started;
};

void workpool_start(struct workpool *wp, size_t n, int threads, void (*fn)(void *arg, size_t i), void *arg);
void workpool_join(struct workpool *wp);
void workpool_run(size_t n, int threads, void (*fn)(void *arg, size_t i), void *arg);

#endif
