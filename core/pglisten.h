/*
 * core/pglisten.h
 *    One PostgreSQL LISTEN connection: a waiting thread sleeps until a notification arrives on its channels, a
 *    timeout passes or another thread interrupts it. The queues (job items, gate runs) use it so that idle workers
 *    send no claim query at all until work is queued: the statement that queues job items calls
 *    pg_notify(channel, '') in its transaction, so the notification goes out when (and only if) it commits; gate
 *    runs, queued by webhook deliveries at thousands a second, are announced after the commit instead
 *    (core/gate_queue.h gate_queue_announce).
 *
 * Design: the connection is dedicated (PQconnectdb on the URL, not a pool connection: it stays open for the
 *   process's life and must never count against MRGATE_DB_POOL) and made lazily by pglisten_wait, which LISTENs on
 *   every channel after (re)connecting. Notifications sent while no connection listened are lost, so a wait that
 *   (re)connects returns PGLISTEN_NOTIFY ("look now"); one that cannot reach the database waits its timeout and
 *   returns PGLISTEN_DOWN: the caller then polls as it would without notifications. The payload is not read: a
 *   notification only means "there may be work on this channel", the queue itself is the truth, and PostgreSQL
 *   folds identical notifications of one transaction into one. A self-pipe makes pglisten_interrupt wake a wait
 *   from any thread (a stop, a new deadline).
 *   A NULL url makes a listener that never connects: its waits are interruptible sleeps that end in
 *   PGLISTEN_TIMEOUT (tests and tools that poll).
 * Threading: pglisten_wait(_poll) and pglisten_connected from one thread at a time (the listener's owner);
 *   pglisten_interrupt and pglisten_due_in from any thread.
 * Ownership: pglisten_open copies url and channels; the result is freed with pglisten_close (NULL is fine).
 */
#ifndef MRGATE_CORE_PGLISTEN_H
#define MRGATE_CORE_PGLISTEN_H

#include <stdbool.h>

#define PGLISTEN_MAX_CHANNELS 4

enum pglisten_event {
	PGLISTEN_TIMEOUT = 0, /* nothing arrived within the timeout */
	PGLISTEN_NOTIFY,      /* a notification arrived, or the connection was (re)made: look for work now */
	PGLISTEN_INTERRUPT,   /* pglisten_interrupt was called */
	PGLISTEN_DOWN         /* the database could not be reached: the timeout was waited, poll instead */
};

/* A listener on n channel names ([a-z_]+, up to 63 bytes, at most PGLISTEN_MAX_CHANNELS); NULL for bad names. */
struct pglisten *pglisten_open(const char *url, const char *const *channels, int n);
void pglisten_close(struct pglisten *l);

/* Wait up to timeout_ms (>= 0) for a notification; (re)connects and LISTENs first when needed. */
enum pglisten_event pglisten_wait(struct pglisten *l, long timeout_ms);

/* True while the listening connection is up (notifications will arrive). */
bool pglisten_connected(const struct pglisten *l);

/* Make the current or the next pglisten_wait return PGLISTEN_INTERRUPT. Any thread; NULL is fine. */
void pglisten_interrupt(struct pglisten *l);

/*
 * The wait of a worker pool's waker thread, which wakes a worker whenever this returns anything but
 * PGLISTEN_INTERRUPT: up to safety_ms while listening (the safety poll), or poll_ms while not (no URL, database
 * away), and never past the due time set by pglisten_due_in (cleared once it passed). An interrupt (a stop, an
 * earlier due time) returns PGLISTEN_INTERRUPT: the caller checks for its stop and waits again.
 */
enum pglisten_event pglisten_wait_poll(struct pglisten *l, long poll_ms, long safety_ms);
/* Any thread: make pglisten_wait_poll return within ms (work falls due then); an earlier due time is kept. */
void pglisten_due_in(struct pglisten *l, long ms);

/* CLOCK_MONOTONIC milliseconds. */
long pglisten_now_ms(void);

#endif
