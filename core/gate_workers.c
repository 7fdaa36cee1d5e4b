/*
 * core/gate_workers.c
 *    The gate worker pool and its lease heartbeat (see gate_workers.h).
 */
#include "gate_workers.h"

#include "cond.h"
#include "log.h"
#include "metrics.h"
#include "pglisten.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The process-wide wake-up signal (gate_kick has no handle to a pool): "there may be a run", for one worker. */
static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kick_cond = PTHREAD_COND_INITIALIZER;
static bool kick_pending;

void gate_kick(void)
{
	pthread_mutex_lock(&kick_lock);
	kick_pending = true;
	pthread_cond_signal(&kick_cond);
	pthread_mutex_unlock(&kick_lock);
}

/* Idle workers poll this often without a LISTEN connection (no URL, or the database away). */
#define POLL_MS 1000
/* With one: the safety poll, for what no notification announces (a dead instance's lease running out). */
#define SAFETY_POLL_MS 10000

struct gate_workers {
	struct gate_env env;
	pthread_t *threads;
	int n;
	size_t cap; /* threads asked for: the size of inflight */
	pthread_t heartbeat;
	bool has_heartbeat;
	pthread_mutex_t mu; /* guards stop and inflight */
	pthread_cond_t hb_cond;
	bool stop;
	int64_t *inflight; /* ids of the runs the workers execute (at most one per thread) */
	size_t n_inflight;
	struct pglisten *listen; /* NOTIFY mrgate_gate; its waker thread kicks the workers */
	bool notified;           /* a listen URL was given */
	pthread_t waker;
	bool has_waker;
};

static bool stopping(struct gate_workers *w)
{
	pthread_mutex_lock(&w->mu);
	bool stop = w->stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

static void inflight_add(struct gate_workers *w, int64_t id)
{
	pthread_mutex_lock(&w->mu);
	w->inflight[w->n_inflight++] = id; /* room for one per thread */
	pthread_mutex_unlock(&w->mu);
}

static void inflight_remove(struct gate_workers *w, int64_t id)
{
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n_inflight; i++)
		if (w->inflight[i] == id) {
			w->inflight[i] = w->inflight[--w->n_inflight];
			break;
		}
	pthread_mutex_unlock(&w->mu);
}

/*
 * Renew the leases of the runs in flight; runs whose lease is no longer ours are logged, unless their worker ended
 * them meanwhile (a run recorded done between the snapshot and the renewal is not lost).
 */
static void renew_leases(struct gate_workers *w)
{
	int64_t *ids = xcalloc(w->cap, sizeof(int64_t));
	bool *held = xcalloc(w->cap, sizeof(bool));
	size_t n, lost = 0;
	pthread_mutex_lock(&w->mu);
	n = w->n_inflight;
	memcpy(ids, w->inflight, n * sizeof(ids[0]));
	pthread_mutex_unlock(&w->mu);
	if (n > 0 && gate_queue_renew(w->env.db, w->env.instance, w->env.lease_ms, ids, n, held) == CORE_OK) {
		pthread_mutex_lock(&w->mu);
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; !held[i] && k < w->n_inflight; k++)
				lost += w->inflight[k] == ids[i];
		pthread_mutex_unlock(&w->mu);
	}
	if (lost > 0)
		log_warn("gate: %zu of %zu runs in flight lost their lease (taken over or ended elsewhere)", lost, n);
	free(held);
	free(ids);
}

static void *heartbeat_main(void *arg)
{
	struct gate_workers *w = arg;
	int every = w->env.lease_ms / 3 > 0 ? w->env.lease_ms / 3 : 1;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec ts = cond_deadline(CLOCK_REALTIME, every);
		pthread_cond_timedwait(&w->hb_cond, &w->mu, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		renew_leases(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Claim and execute one run; false when there was none (or the claim failed). */
static bool work_one(struct gate_workers *w)
{
	struct gate_queue_claim claim;
	bool claimed = false;
	if (gate_run_claim(&w->env, &claim, &claimed) != CORE_OK || !claimed)
		return false;
	if (w->has_heartbeat)
		inflight_add(w, claim.id);
	gate_run_execute(&w->env, &claim);
	if (w->has_heartbeat)
		inflight_remove(w, claim.id);
	return true;
}

/* After finding nothing: learn when the next run falls due, so the waker kicks then (listening pools only). */
static void learn_next_due(struct gate_workers *w)
{
	long ms = 0;
	bool found = false;
	if (w->notified && gate_queue_next_due_ms(w->env.db, &ms, &found) == CORE_OK && found)
		pglisten_due_in(w->listen, ms);
}

/* Wait for a kick (or the stop) and take it. The stop flag is set before the stop's broadcast under kick_lock. */
static void wait_kick(struct gate_workers *w)
{
	pthread_mutex_lock(&kick_lock);
	while (!kick_pending && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&kick_cond, &kick_lock);
	kick_pending = false;
	pthread_mutex_unlock(&kick_lock);
}

static void *worker_main(void *arg)
{
	struct gate_workers *w = arg;
	while (!stopping(w)) {
		metrics_inc("mrgate_gate_claim_queries_total", NULL, 1);
		if (work_one(w)) {
			gate_kick(); /* there may be more: an idle sibling looks now, the chain ends at an empty claim
			              */
			continue;
		}
		learn_next_due(w);
		wait_kick(w);
	}
	return NULL;
}

/* Kicks one idle worker on a notification, a due time, the safety poll (or every POLL_MS without notifications). */
static void *waker_main(void *arg)
{
	struct gate_workers *w = arg;
	while (!stopping(w))
		if (pglisten_wait_poll(w->listen, POLL_MS, SAFETY_POLL_MS) != PGLISTEN_INTERRUPT)
			gate_kick();
	return NULL;
}

static void workers_free(struct gate_workers *w)
{
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->hb_cond);
	pglisten_close(w->listen);
	free(w->inflight);
	free(w->threads);
	free(w);
}

struct gate_workers *gate_workers_start(const struct gate_env *env, int n, const char *listen_url)
{
	struct gate_workers *w = xcalloc(1, sizeof(*w));
	w->env = *env;
	w->cap = (size_t)(n > 0 ? n : 1);
	w->threads = xcalloc(w->cap, sizeof(pthread_t));
	w->inflight = xcalloc(w->cap, sizeof(int64_t));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->hb_cond, NULL);
	gate_run_init();
	metrics_describe("mrgate_gate_claim_queries_total", "counter",
	                 "Claim statements of this instance's gate workers (none while idle: they wait for NOTIFY)");
	const char *channels[] = {GATE_QUEUE_CHANNEL};
	w->listen = pglisten_open(listen_url, channels, 1);
	w->notified = listen_url != NULL;
	/* the heartbeat first: the workers read has_heartbeat without a lock */
	if (w->env.lease_ms > 0) {
		int herr = pthread_create(&w->heartbeat, NULL, heartbeat_main, w);
		w->has_heartbeat = herr == 0;
		if (!w->has_heartbeat) {
			/* no heartbeat: fall back to leases that cover the whole run */
			log_warn("could not start the gate lease heartbeat: %s", strerror(herr));
			w->env.lease_ms = 0;
		}
	}
	int err = 0;
	while (w->n < n && (err = pthread_create(&w->threads[w->n], NULL, worker_main, w)) == 0)
		w->n++;
	if (w->n < n)
		log_error("could not start gate worker %d: %s", w->n + 1, strerror(err));
	if (w->n > 0 && w->listen) {
		err = pthread_create(&w->waker, NULL, waker_main, w);
		w->has_waker = err == 0;
	}
	if (!w->has_waker) {
		log_error("could not start the gate workers' waker");
		gate_workers_stop(w);
		return NULL;
	}
	log_info("%d gate worker%s started, %s", w->n, w->n == 1 ? "" : "s",
	         w->notified ? "woken by notifications" : "polling");
	return w;
}

/* Tell the heartbeat and the workers to end (they finish the run in hand first). */
static void workers_signal_stop(struct gate_workers *w)
{
	pthread_mutex_lock(&w->mu);
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->hb_cond);
	pthread_mutex_unlock(&w->mu);
	pglisten_interrupt(w->listen);
	pthread_mutex_lock(&kick_lock);
	pthread_cond_broadcast(&kick_cond);
	pthread_mutex_unlock(&kick_lock);
}

void gate_workers_stop(struct gate_workers *w)
{
	if (!w)
		return;
	workers_signal_stop(w);
	for (int i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	if (w->has_waker)
		pthread_join(w->waker, NULL);
	if (w->has_heartbeat)
		pthread_join(w->heartbeat, NULL);
	workers_free(w);
}
