/*
 * core/outbox.c
 *    A group commit of rows (see outbox.h).
 */
#include "outbox.h"

#include "cond.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/*
 * A row waiting to be written: on the stack of its thread, which waits (under mu) until done or alone; or posted (on
 * the heap, owning row), until its settle. Only one thread at a time touches a posted row's reference count: the
 * batch's writer until it marks the row done (under mu), then its settle.
 */
struct outbox_ticket {
	struct json_object *row;
	struct outbox *ob;
	enum core_status st; /* set with done */
	bool done;           /* its batch was written (st OK), or it was alone in a batch that failed (st says how) */
	bool alone;          /* its batch of several failed: its settling thread writes it alone */
	struct outbox_ticket *next;
};

struct outbox {
	outbox_write_fn write;
	void *user;
	int gather_ms, full;
	pthread_mutex_t mu;
	pthread_cond_t written; /* a batch was written: its rows are done or alone */
	pthread_cond_t arrived; /* a row was queued (CLOCK_MONOTONIC) */
	bool writing;           /* a thread is gathering or writing a batch */
	struct outbox_ticket *head, **tail;
	int queued; /* rows in head */
	struct outbox_stats stats;
};

struct outbox *outbox_new(outbox_write_fn write, void *user, int gather_ms, int full)
{
	struct outbox *ob = xcalloc(1, sizeof(*ob));
	ob->write = write;
	ob->user = user;
	ob->gather_ms = gather_ms > 0 ? gather_ms : 0;
	ob->full = full > 1 ? full : 1;
	pthread_mutex_init(&ob->mu, NULL);
	pthread_cond_init(&ob->written, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ob->arrived, &ca);
	pthread_condattr_destroy(&ca);
	ob->tail = &ob->head;
	return ob;
}

void outbox_free(struct outbox *ob)
{
	if (!ob)
		return;
	pthread_cond_destroy(&ob->written);
	pthread_cond_destroy(&ob->arrived);
	pthread_mutex_destroy(&ob->mu);
	free(ob);
}

struct outbox_stats outbox_stats(struct outbox *ob)
{
	pthread_mutex_lock(&ob->mu);
	struct outbox_stats s = ob->stats;
	pthread_mutex_unlock(&ob->mu);
	return s;
}

/* Gather for gather_ms (ob->mu held, ob->writing set by the caller), take the queue, write it, mark its rows. */
static void write_batch(struct outbox *ob, int gather_ms)
{
	struct timespec until = cond_deadline(CLOCK_MONOTONIC, gather_ms);
	while (gather_ms > 0 && ob->queued < ob->full &&
	       pthread_cond_timedwait(&ob->arrived, &ob->mu, &until) != ETIMEDOUT)
		;
	struct outbox_ticket *batch = ob->head;
	int n = ob->queued;
	ob->head = NULL;
	ob->tail = &ob->head;
	ob->queued = 0;
	pthread_mutex_unlock(&ob->mu);
	struct json_object *rows = json_object_new_array_ext(n);
	for (struct outbox_ticket *w = batch; w; w = w->next)
		json_object_array_add(rows, json_object_get(w->row));
	enum core_status st = ob->write(ob->user, rows);
	json_object_put(rows);
	pthread_mutex_lock(&ob->mu);
	/* each row's thread waits for mu, held here: the rows stay valid until all are marked */
	for (struct outbox_ticket *w = batch; w; w = w->next) {
		w->st = st;
		w->done = st == CORE_OK || n == 1;
		w->alone = !w->done;
	}
	ob->stats.batches++;
	ob->stats.rows += n;
	ob->stats.failed_batches += st != CORE_OK && n > 1;
	if (n > ob->stats.largest)
		ob->stats.largest = n;
	ob->writing = false;
	pthread_cond_broadcast(&ob->written);
}

/* Queue me (ob->mu held). */
static void enqueue(struct outbox *ob, struct outbox_ticket *me)
{
	*ob->tail = me;
	ob->tail = &me->next;
	ob->queued++;
	pthread_cond_signal(&ob->arrived);
}

/* Wait until me is done or alone, writing a batch (gathering for gather_ms) when no one is; then, alone, write it
 * alone. Its status. Takes ob->mu held, returns with it released. */
static enum core_status wait_written(struct outbox *ob, struct outbox_ticket *me, int gather_ms)
{
	while (!me->done && !me->alone) {
		if (ob->writing) {
			pthread_cond_wait(&ob->written, &ob->mu);
		} else {
			ob->writing = true;
			write_batch(ob, gather_ms);
		}
	}
	enum core_status st = me->st;
	bool alone = me->alone;
	pthread_mutex_unlock(&ob->mu);
	if (!alone)
		return st;
	struct json_object *rows = json_object_new_array_ext(1);
	json_object_array_add(rows, json_object_get(me->row));
	st = ob->write(ob->user, rows);
	json_object_put(rows);
	return st;
}

enum core_status outbox_write(struct outbox *ob, struct json_object *row)
{
	struct outbox_ticket me = {.row = row, .ob = ob};
	pthread_mutex_lock(&ob->mu);
	enqueue(ob, &me);
	return wait_written(ob, &me, ob->gather_ms);
}

struct outbox_ticket *outbox_post(struct outbox *ob, struct json_object *row)
{
	struct outbox_ticket *t = xcalloc(1, sizeof(*t));
	t->row = row;
	t->ob = ob;
	pthread_mutex_lock(&ob->mu);
	enqueue(ob, t);
	pthread_mutex_unlock(&ob->mu);
	return t;
}

enum core_status outbox_settle(struct outbox_ticket *t)
{
	pthread_mutex_lock(&t->ob->mu);
	/* whoever settles has already waited: what is queued is written now, without gathering */
	enum core_status st = wait_written(t->ob, t, 0);
	json_object_put(t->row);
	free(t);
	return st;
}
