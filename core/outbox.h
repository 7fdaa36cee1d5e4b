/*
 * core/outbox.h
 *    A group commit: rows that threads produce side by side are written together, in one call of a writer, and
 *    each thread returns only once its own row is written. The apply's outcomes go through one (core/apply.h), so
 *    that a job's workers write the repos' states in a few statements rather than one each.
 *
 * Design: the first thread to find no batch being written becomes the writer: it gathers for up to gather_ms (or
 * until `full` rows are queued), takes every queued row, its own among them, and calls write(user, rows) without
 * the lock; the others wait. Rows queued meanwhile go in the next batch, written by one of their threads. When a
 * batch of several rows fails (one row's fault fails the whole statement), each thread writes its row alone, so
 * it gets its own status and the good rows are stored.
 * A row can also be posted (outbox_post): its thread goes on at once and settles the ticket later (outbox_settle),
 * or another thread does; the settle writes whatever is queued without gathering, unless a batch holding the row
 * is being written, and then waits for it.
 * Threading: outbox_write, outbox_post and outbox_settle are safe from any number of threads; write is called by one
 * thread at a time per outbox for batches (rows written alone after a failed batch may run beside it).
 * Ownership: a written row stays the caller's and is borrowed (a reference taken) for the call of write; a posted
 * row is the outbox's from outbox_post on (the caller's reference with it: json-c's reference counts are not
 * atomic, so the caller must not touch the row again while another thread may be writing it) and is dropped by its
 * settle. write must not keep rows. outbox_free frees the outbox; nobody may be writing through it, and every ticket
 * must be settled.
 */
#ifndef MRGATE_CORE_OUTBOX_H
#define MRGATE_CORE_OUTBOX_H

#include "status.h"

#include <json-c/json.h>

/* Write rows (a JSON array of the rows given to outbox_write) at once: all or none. */
typedef enum core_status (*outbox_write_fn)(void *user, struct json_object *rows);

struct outbox_stats {
	long long batches, rows;  /* calls of write for batches, rows in them */
	long long failed_batches; /* batches of several rows that failed (their rows were written alone) */
	int largest;              /* the most rows one batch held */
};

struct outbox;

/* An outbox calling write(user, rows); gather_ms >= 0, full >= 1. */
struct outbox *outbox_new(outbox_write_fn write, void *user, int gather_ms, int full);
void outbox_free(struct outbox *ob); /* NULL is fine */

/* Write row (borrowed) with whatever else is queued; its status once written. */
enum core_status outbox_write(struct outbox *ob, struct json_object *row);

/*
 * Queue row (taking the caller's reference: the caller must not use it again) and return at once: it goes into the
 * next batch, which a settle or any thread's outbox_write starts. The ticket is the caller's, to be passed to
 * outbox_settle exactly once (from any thread).
 */
struct outbox_ticket *outbox_post(struct outbox *ob, struct json_object *row);

/* Wait until the ticket's row is written (writing the queue now when no batch is being written): its status. Frees
 * the ticket and the row. */
enum core_status outbox_settle(struct outbox_ticket *t);

struct outbox_stats outbox_stats(struct outbox *ob);

#endif
