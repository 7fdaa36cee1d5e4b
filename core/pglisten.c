/*
 * core/pglisten.c
 *    A dedicated LISTEN connection with an interruptible wait (see pglisten.h).
 */
#include "pglisten.h"

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pglisten {
	char *url; /* NULL: never connect */
	char *channels[PGLISTEN_MAX_CHANNELS];
	int n;
	PGconn *conn;   /* listening, or NULL */
	int pipe_fd[2]; /* the interrupt self-pipe (both ends non-blocking) */
	bool warned;    /* "cannot listen" was logged since the last success */
	pthread_mutex_t due_mu;
	long due; /* CLOCK_MONOTONIC ms by which pglisten_wait_poll returns at the latest; 0: none */
};

static bool channel_valid(const char *c)
{
	size_t n = c ? strlen(c) : 0;
	return n > 0 && n < 64 && strspn(c, "abcdefghijklmnopqrstuvwxyz_") == n;
}

struct pglisten *pglisten_open(const char *url, const char *const *channels, int n)
{
	if (n < 1 || n > PGLISTEN_MAX_CHANNELS)
		return NULL;
	for (int i = 0; i < n; i++)
		if (!channel_valid(channels[i]))
			return NULL;
	struct pglisten *l = xcalloc(1, sizeof(*l));
	if (pipe2(l->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->due_mu, NULL);
	l->url = url ? xstrdup(url) : NULL;
	for (int i = 0; i < n; i++)
		l->channels[i] = xstrdup(channels[i]);
	l->n = n;
	return l;
}

static void disconnect(struct pglisten *l)
{
	PQfinish(l->conn);
	l->conn = NULL;
}

void pglisten_close(struct pglisten *l)
{
	if (!l)
		return;
	disconnect(l);
	close(l->pipe_fd[0]);
	close(l->pipe_fd[1]);
	pthread_mutex_destroy(&l->due_mu);
	for (int i = 0; i < l->n; i++)
		free(l->channels[i]);
	free(l->url);
	free(l);
}

void pglisten_interrupt(struct pglisten *l)
{
	if (!l)
		return;
	char b = 1;
	/* a full pipe already holds an interrupt: nothing is lost when this write fails */
	if (write(l->pipe_fd[1], &b, 1) < 0 && errno != EAGAIN)
		log_warn("pglisten: could not interrupt the listener: %s", strerror(errno));
}

bool pglisten_connected(const struct pglisten *l)
{
	return l && l->conn && PQstatus(l->conn) == CONNECTION_OK;
}

/* Connect and LISTEN on every channel; false (nothing open) when the database cannot be reached. */
static bool connect_listen(struct pglisten *l)
{
	struct buf sql = {0};
	/* bounded, so that a stop never waits on a database host that does not answer */
	const char *const keys[] = {"dbname", "connect_timeout", NULL};
	const char *const vals[] = {l->url, "5", NULL};
	l->conn = PQconnectdbParams(keys, vals, 1);
	bool ok = PQstatus(l->conn) == CONNECTION_OK;
	for (int i = 0; ok && i < l->n; i++) {
		buf_reset(&sql);
		buf_printf(&sql, "LISTEN %s", l->channels[i]); /* [a-z_]+, checked at open: no quoting needed */
		PGresult *r = PQexec(l->conn, buf_str(&sql));
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (ok && PQsetnonblocking(l->conn, 1) != 0)
		ok = false;
	buf_free(&sql);
	if (!ok) {
		if (!l->warned)
			log_warn("pglisten: cannot listen for notifications (%s); polling until the database is back",
			         l->conn ? PQerrorMessage(l->conn) : "out of memory");
		l->warned = true;
		disconnect(l);
		return false;
	}
	if (l->warned)
		log_info("pglisten: listening for notifications again");
	l->warned = false;
	return true;
}

/* True when a notification was waiting (all are consumed); a broken connection is closed. */
static bool drain_notifies(struct pglisten *l)
{
	bool any = false;
	if (PQconsumeInput(l->conn) != 1) {
		disconnect(l);
		return false;
	}
	PGnotify *n;
	while ((n = PQnotifies(l->conn)) != NULL) {
		any = true;
		PQfreemem(n);
	}
	return any;
}

long pglisten_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

enum pglisten_event pglisten_wait(struct pglisten *l, long timeout_ms)
{
	long until = pglisten_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	bool down = false;

	if (l->url && !l->conn) {
		if (connect_listen(l))
			return PGLISTEN_NOTIFY; /* we were not listening: something may have been missed */
		down = true;
	}
	for (;;) {
		struct pollfd pf[2] = {{.fd = l->pipe_fd[0], .events = POLLIN},
		                       {.fd = l->conn ? PQsocket(l->conn) : -1, .events = POLLIN}};
		long left = until - pglisten_now_ms();
		int pr = poll(pf, 2, (int)(left > 0 ? left : 0));
		if (pr < 0 && errno != EINTR)
			return down ? PGLISTEN_DOWN : PGLISTEN_TIMEOUT;
		if (pr > 0 && (pf[0].revents & POLLIN)) {
			char b[64];
			while (read(l->pipe_fd[0], b, sizeof(b)) > 0)
				;
			return PGLISTEN_INTERRUPT;
		}
		if (pr > 0 && pf[1].revents) {
			if (drain_notifies(l))
				return PGLISTEN_NOTIFY;
			if (!l->conn)
				return PGLISTEN_DOWN; /* the connection broke: look now, reconnect on the next wait */
		}
		if (pglisten_now_ms() >= until)
			return down ? PGLISTEN_DOWN : PGLISTEN_TIMEOUT;
	}
}

void pglisten_due_in(struct pglisten *l, long ms)
{
	if (!l)
		return;
	long at = pglisten_now_ms() + (ms > 0 ? ms : 1);
	pthread_mutex_lock(&l->due_mu);
	bool earlier = l->due == 0 || at < l->due;
	if (earlier)
		l->due = at;
	pthread_mutex_unlock(&l->due_mu);
	if (earlier)
		pglisten_interrupt(l); /* the waiter recomputes its timeout */
}

enum pglisten_event pglisten_wait_poll(struct pglisten *l, long poll_ms, long safety_ms)
{
	bool listening = pglisten_connected(l);
	long t = listening ? safety_ms : poll_ms;
	pthread_mutex_lock(&l->due_mu);
	bool due = l->due > 0;
	long left = due ? l->due - pglisten_now_ms() : 0;
	pthread_mutex_unlock(&l->due_mu);
	/* a due time already passed (its interrupt was taken after it) is due now: kept, it would hide every later
	 * one (pglisten_due_in keeps the earlier) until the safety poll */
	if (listening && due && left < t)
		t = left > 0 ? left : 0;
	enum pglisten_event ev = pglisten_wait(l, t);
	if (ev != PGLISTEN_INTERRUPT) {
		pthread_mutex_lock(&l->due_mu);
		if (l->due > 0 && l->due <= pglisten_now_ms())
			l->due = 0;
		pthread_mutex_unlock(&l->due_mu);
	}
	return ev;
}
