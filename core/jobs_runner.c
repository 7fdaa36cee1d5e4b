/*
 * core/jobs_runner.c
 *    The worker pool of the job engine: worker threads claim items of the registered kinds (core/jobs.c), run their
 *    handlers and record the outcome; a heartbeat thread renews the leases of the items they hold. See jobs.h for
 *    the design, the guarantees and the threading.
 */
#include "buf.h"
#include "cond.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "pglisten.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct handler_entry {
	char kind[JOBS_KIND_MAX + 1];
	enum job_outcome (*fn)(void *user, const struct job_item *item, struct job_item_result *res);
	void (*finished)(void *user, int64_t job_id); /* NULL, or set once by jobs_on_finished() */
	void *user;
};

struct worker {
	struct jobs_runner *r;
	pthread_t thread;
	bool started;
	pthread_cond_t cv; /* the worker waits here while idle (CLOCK_MONOTONIC) */
	bool idle;         /* r->mu: on r->idle, waiting to be poked or handed a batch */
	bool handed;       /* r->mu: a sibling claimed the batch below for it: it runs it before claiming */
	/* the worker's current batch, guarded by r->mu: items[next..n) are held (claimed, not yet recorded),
	 * items[begun..n) not started yet (a sibling out of items may take some: steal_locked) */
	struct job_item *items;
	int n;
	int next;
	int begun;
};

struct jobs_runner {
	struct store *db;
	struct jobs_runner_opts o;
	char *owner; /* the lease owner name (owned) */

	pthread_mutex_t mu;
	pthread_mutex_t claim_mu; /* held around a claim: one claim of this runner at a time (worker_main) */
	pthread_cond_t hb_wake;   /* the heartbeat waits here */
	bool poke;                /* "there may be work", with no worker idle: the next one to go idle claims */
	bool dry; /* mu: the last claim found nothing due and no notification came since: a worker out of items takes
	           * a sibling's before it claims (steal_locked) */
	unsigned long wakes;  /* mu: the waker's pokes so far */
	struct worker **idle; /* mu: the idle workers, n_idle of them, the latest last */
	int n_idle;
	struct pglisten *listen;
	bool notified; /* a listen_url was given: idle workers wait for notifications */
	pthread_t waker;
	bool waker_started;
	bool stopping;    /* workers: no new claims */
	bool hb_stopping; /* heartbeat: stop */
	bool hb_started;

	struct handler_entry handlers[JOBS_MAX_KINDS];
	int n_handlers;

	struct worker *workers;
	pthread_t hb_thread;

	/*
	 * The recorder: workers hand it each final outcome and go on; it records everything handed to it in one
	 * finish statement, then the next. One writer per process on a job's row instead of every worker in turn
	 * (all finishers of a job update its counters). Guarded by mu: queue[0..n_queued) waits, busy[0..n_busy)
	 * is in the statement; both are renewed by the heartbeat until recorded. At most rec_cap outcomes are held
	 * (a worker handing over one more waits), so a slow database holds the workers back instead of the memory.
	 */
	struct outcome *queue, *busy;
	int n_queued, n_busy, rec_cap;
	pthread_cond_t rec_wake; /* the recorder waits here for outcomes */
	pthread_cond_t rec_room; /* workers wait here for room */
	bool rec_stopping;       /* recorder: record what is queued, then stop */
	bool rec_started;
	pthread_t rec_thread;

	struct jobs_runner_stats stats;
};

static void stat_add(long long *field, long long by)
{
	__atomic_add_fetch(field, by, __ATOMIC_RELAXED);
}

/* The latest idle worker, off the idle list (r->mu held); NULL when none is idle. */
static struct worker *pop_idle(struct jobs_runner *r)
{
	if (r->n_idle == 0)
		return NULL;
	struct worker *w = r->idle[--r->n_idle];
	w->idle = false;
	return w;
}

/* Tell one idle worker to look for work (r->mu held); with none idle, the next worker to go idle looks at once. */
static void poke_locked(struct jobs_runner *r)
{
	struct worker *w = pop_idle(r);
	if (w)
		pthread_cond_signal(&w->cv);
	else
		r->poke = true;
}

/*
 * An idle worker waits to be poked (by the waker: a notification, a due time, the safety poll; or by a sibling
 * that claimed), or to be handed a batch a sibling claimed for it, or for the stop. A poke made while no worker
 * was idle is taken at once. ms >= 0 bounds the wait (the back-off of a failed claim).
 */
static void wait_poke(struct worker *w, long ms)
{
	struct jobs_runner *r = w->r;
	struct timespec until = cond_deadline(CLOCK_MONOTONIC, ms > 0 ? ms : 0);
	pthread_mutex_lock(&r->mu);
	if (r->poke && !w->handed) {
		r->poke = false;
	} else if (!r->stopping && !w->handed) {
		r->idle[r->n_idle++] = w;
		w->idle = true;
		while (w->idle && !r->stopping) {
			if (ms < 0)
				pthread_cond_wait(&w->cv, &r->mu);
			else if (pthread_cond_timedwait(&w->cv, &r->mu, &until) == ETIMEDOUT)
				break;
		}
		if (w->idle) { /* the wait ran out, or the stop: off the list */
			for (int i = 0; i < r->n_idle; i++)
				if (r->idle[i] == w)
					r->idle[i] = r->idle[--r->n_idle];
			w->idle = false;
		}
	}
	pthread_mutex_unlock(&r->mu);
}

/* Wake every idle worker (r->mu held): the stop, or a new kind to claim. */
static void wake_all_locked(struct jobs_runner *r)
{
	struct worker *w;
	while ((w = pop_idle(r)) != NULL)
		pthread_cond_signal(&w->cv);
}

static void count_item(const char *kind, const char *result)
{
	char labels[128];
	snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"%s\"", kind, result);
	metrics_inc("mrgate_job_items_total", labels, 1);
}

static void lease_lost(struct jobs_runner *r, const char *kind, int64_t job_id, int64_t item_id)
{
	char labels[64];
	stat_add(&r->stats.lease_lost, 1);
	snprintf(labels, sizeof(labels), "kind=\"%s\"", kind);
	metrics_inc("mrgate_job_lease_lost_total", labels, 1);
	log_warn("job %" PRId64 " item %" PRId64 ": result not recorded, the lease was taken over by another worker",
	         job_id, item_id);
}

/* A final outcome on its way to the recorder: a copy of what the finish statement and the metrics need. */
struct outcome {
	int64_t item_id, job_id;
	char kind[JOBS_KIND_MAX + 1];
	int attempt;
	enum job_outcome outcome;              /* CHANGED, UNCHANGED, SKIPPED or ERROR */
	char *message;                         /* owned, or NULL */
	struct json_object *details;           /* owned, or NULL */
	enum core_status (*settle)(void *arg); /* the handler's work to settle before recording (job_item_result) */
	void *settle_arg;
};

static const struct handler_entry *find_handler(struct jobs_runner *r, const char *kind);

/* Tell the kind's finished callback of each job this batch finished (once per job). */
static void tell_finished(struct jobs_runner *r, const struct outcome *out, const struct jobs_record *recs, int n)
{
	for (int i = 0; i < n; i++) {
		bool first = recs[i].job_finished;
		for (int k = 0; first && k < i; k++)
			first = !(recs[k].job_finished && recs[k].job_id == recs[i].job_id);
		if (!first)
			continue;
		const struct handler_entry *h = find_handler(r, out[i].kind);
		void (*fn)(void *, int64_t) = h ? __atomic_load_n(&h->finished, __ATOMIC_ACQUIRE) : NULL;
		if (fn)
			fn(h->user, recs[i].job_id);
	}
}

/*
 * Settle the handlers' unfinished work of out[0..n) (in order) and copy the outcomes to record into kept (room for
 * n); an outcome whose work was not stored is retried (requeued, or given up on its last attempt) and left out. The
 * number kept. out is the recorder's busy array, which the heartbeat reads (item ids) meanwhile: only the members it
 * does not read are written here.
 */
static int settle_all(struct jobs_runner *r, struct outcome *out, int n, struct outcome *kept_out)
{
	int kept = 0;
	for (int i = 0; i < n; i++) {
		struct outcome *o = &out[i];
		enum core_status st = o->settle ? o->settle(o->settle_arg) : CORE_OK;
		o->settle = NULL;
		if (st != CORE_OK && o->attempt < r->o.max_attempts) {
			char msg[160];
			snprintf(msg, sizeof(msg), "could not store the item's work (%s) (will be retried)",
			         core_status_code(st));
			long delay = jobs_backoff_ms(o->attempt, r->o.backoff_base_ms, r->o.backoff_max_ms, 0);
			enum core_status rq = jobs_requeue(r->db, r->owner, o->item_id, delay, msg);
			if (rq == CORE_OK) {
				stat_add(&r->stats.retried, 1);
				count_item(o->kind, "retry");
			} else if (rq == CORE_ECONFLICT) {
				lease_lost(r, o->kind, o->job_id, o->item_id);
			} /* else the database is away: the lease expires and the item is run again */
			log_info("job %" PRId64 " item %" PRId64 ": attempt %d: %s", o->job_id, o->item_id, o->attempt,
			         msg);
			free(o->message);
			json_object_put(o->details);
			continue;
		}
		if (st != CORE_OK) {
			free(o->message);
			struct buf b = {0};
			buf_printf(&b, "gave up after %d attempts: could not store the item's work (%s)", o->attempt,
			           core_status_code(st));
			o->message = xstrdup(buf_str(&b));
			buf_free(&b);
			o->outcome = JOB_ITEM_ERROR;
		}
		kept_out[kept++] = *o;
	}
	return kept;
}

/*
 * Record outcomes in one statement (the recorder), after settling the handlers' work; lost leases are counted and
 * logged here. Frees their contents.
 */
static void record(struct jobs_runner *r, struct outcome *busy, int n_busy)
{
	struct outcome *out = xcalloc((size_t)n_busy, sizeof(*out));
	int n = settle_all(r, busy, n_busy, out);
	if (n == 0) {
		free(out);
		return;
	}
	struct jobs_record *recs = xcalloc((size_t)n, sizeof(*recs));
	for (int i = 0; i < n; i++) {
		recs[i].item_id = out[i].item_id;
		recs[i].outcome = out[i].outcome;
		recs[i].message = out[i].message;
		recs[i].details_json =
		    out[i].details ? json_object_to_json_string_ext(out[i].details, JSON_C_TO_STRING_PLAIN) : NULL;
	}
	enum core_status st = jobs_finish_batch(r->db, r->owner, recs, n);
	/* a deadlock or serialization failure rolled the statement back while the leases are still ours: again */
	for (int again = 0; st == CORE_ECONFLICT && again < 2; again++)
		st = jobs_finish_batch(r->db, r->owner, recs, n);
	for (int i = 0; i < n; i++) {
		if (st == CORE_OK && recs[i].recorded) {
			stat_add(&r->stats.recorded, 1);
			count_item(out[i].kind, jobs_outcome_result(out[i].outcome));
		} else if (st == CORE_OK) {
			lease_lost(r, out[i].kind, out[i].job_id, out[i].item_id);
		} else {
			/* the database is unreachable: the lease will expire and the item will be run again */
			log_error("job %" PRId64 " item %" PRId64 ": could not record the result: %s", out[i].job_id,
			          out[i].item_id, core_status_code(st));
		}
	}
	if (st == CORE_OK)
		tell_finished(r, out, recs, n);
	for (int i = 0; i < n; i++) {
		free(out[i].message);
		json_object_put(out[i].details);
	}
	free(recs);
	free(out);
}

/* Fill a final outcome of it (takes details, copies msg). */
static void set_outcome(struct outcome *o, const struct job_item *it, enum job_outcome oc, const char *msg,
                        struct json_object *details)
{
	o->item_id = it->id;
	o->job_id = it->job_id;
	snprintf(o->kind, sizeof(o->kind), "%s", it->kind);
	o->attempt = it->attempt;
	o->outcome = oc;
	o->message = msg ? xstrdup(msg) : NULL;
	o->details = details;
}

/* Run one item: a final outcome goes into *out (true), a retry is requeued at once (false). */
static bool run_item(struct jobs_runner *r, const struct handler_entry *h, struct job_item *it, struct outcome *out)
{
	struct job_item_result res = {0};
	enum job_outcome oc;
	struct buf msg = {0};
	bool final = true;

	if (!h) {
		set_outcome(out, it, JOB_ITEM_ERROR, "internal error: no handler for this job kind", NULL);
		goto out;
	}
	if (it->attempt > r->o.max_attempts) {
		/* taken over again and again: the handler probably kills or hangs its worker */
		set_outcome(
		    out, it, JOB_ITEM_ERROR,
		    "gave up: the item's lease expired on every attempt (its worker stopped or hung while running it)",
		    NULL);
		goto out;
	}
	oc = h->fn(h->user, it, &res);
	if (res.settle && (oc == JOB_ITEM_RETRY || !jobs_outcome_result(oc))) {
		/* settled before the item can be claimed again (its work may hold what a retry needs) */
		res.settle(res.settle_arg);
		res.settle = NULL;
	}
	if (oc == JOB_ITEM_RETRY) {
		if (it->attempt >= r->o.max_attempts) {
			const char *why = res.message ? res.message : "transient error";
			static const char later[] = " (will be retried)"; /* not any more: said by the last attempt */
			size_t n = strlen(why), ln = sizeof(later) - 1;
			if (n >= ln && strcmp(why + n - ln, later) == 0)
				n -= ln;
			buf_printf(&msg, "gave up after %d attempts: %.*s", it->attempt, (int)n, why);
			set_outcome(out, it, JOB_ITEM_ERROR, buf_str(&msg), res.details);
			res.details = NULL;
			goto out;
		}
		final = false;
		long delay =
		    jobs_backoff_ms(it->attempt, r->o.backoff_base_ms, r->o.backoff_max_ms, res.retry_after_ms);
		enum core_status st = jobs_requeue(r->db, r->owner, it->id, delay, res.message);
		if (st == CORE_OK) {
			stat_add(&r->stats.retried, 1);
			count_item(it->kind, "retry");
			log_info("job %" PRId64 " item %" PRId64 ": attempt %d failed, retrying in %ld ms: %s",
			         it->job_id, it->id, it->attempt, delay, res.message ? res.message : "transient error");
		} else if (st == CORE_ECONFLICT) {
			lease_lost(r, it->kind, it->job_id, it->id);
		}
		goto out;
	}
	if (!jobs_outcome_result(oc)) {
		set_outcome(out, it, JOB_ITEM_ERROR, "internal error: the job handler returned an unknown outcome",
		            NULL);
		goto out;
	}
	set_outcome(out, it, oc, res.message, res.details);
	res.details = NULL;
	out->settle = res.settle;
	out->settle_arg = res.settle_arg;
out:
	buf_free(&msg);
	free(res.message);
	json_object_put(res.details);
	return final;
}

/* The handler of kind, or NULL. Entries never move once registered. */
static const struct handler_entry *find_handler(struct jobs_runner *r, const char *kind)
{
	const struct handler_entry *h = NULL;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n_handlers && !h; i++)
		if (strcmp(r->handlers[i].kind, kind) == 0)
			h = &r->handlers[i];
	pthread_mutex_unlock(&r->mu);
	return h;
}

/* Count a claimed batch and log its takeovers. */
static void count_claimed(struct jobs_runner *r, const struct job_item *items, int n)
{
	stat_add(&r->stats.claimed, n);
	metrics_inc("mrgate_job_claims_total", NULL, n);
	for (int i = 0; i < n; i++) {
		if (!items[i].takeover)
			continue;
		char labels[64];
		stat_add(&r->stats.takeovers, 1);
		snprintf(labels, sizeof(labels), "kind=\"%s\"", items[i].kind);
		metrics_inc("mrgate_job_lease_takeovers_total", labels, 1);
		log_warn("job %" PRId64 " item %" PRId64 ": taken over after its lease expired (attempt %d)",
		         items[i].job_id, items[i].id, items[i].attempt);
	}
}

/* Items [0, upto) of w's batch are recorded, with the recorder or handed back: w's heartbeat share ends there. */
static void batch_done_upto(struct worker *w, int upto)
{
	pthread_mutex_lock(&w->r->mu);
	w->next = upto;
	pthread_mutex_unlock(&w->r->mu);
}

/*
 * Hand item i of w's batch, run to the final outcome *o, to the recorder (which takes o's contents), waiting while
 * it holds rec_cap outcomes. The item moves from w's share of the heartbeat to the recorder's in one step.
 */
static void hand_over(struct worker *w, int i, struct outcome *o)
{
	struct jobs_runner *r = w->r;
	pthread_mutex_lock(&r->mu);
	while (r->n_queued + r->n_busy >= r->rec_cap)
		pthread_cond_wait(&r->rec_room, &r->mu);
	r->queue[r->n_queued++] = *o;
	w->next = i + 1;
	pthread_cond_signal(&r->rec_wake);
	pthread_mutex_unlock(&r->mu);
}

/*
 * How long the recorder gathers outcomes after the first before it records them: unless half its room is used, or
 * no worker holds an item still to run (nothing more is coming: a job's last outcome, or a one-item job's, is
 * recorded at once instead of after the whole gathering time).
 */
#define RECORD_GATHER_MS 10

/* Items per worker, at most, in a claim made for idle siblings too (worker_main). */
#define HANDOUT_BATCH 4

/* Some worker holds a claimed item it has not handed over yet (r->mu held). */
static bool items_running(const struct jobs_runner *r)
{
	for (int i = 0; i < r->o.workers; i++)
		if (r->workers[i].items && r->workers[i].next < r->workers[i].n)
			return true;
	return false;
}

/* The recorder: records whatever is queued in one statement, again and again; on stop, what is left, then exits. */
static void *recorder_main(void *arg)
{
	struct jobs_runner *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->n_queued == 0 && !r->rec_stopping)
			pthread_cond_wait(&r->rec_wake, &r->mu);
		if (r->n_queued == 0)
			break; /* stopping, and nothing is left */
		/* outcomes come one by one: gathering them a moment makes fewer, fuller statements */
		struct timespec until = cond_deadline(CLOCK_MONOTONIC, RECORD_GATHER_MS);
		while (!r->rec_stopping && r->n_queued < r->rec_cap / 2 && items_running(r) &&
		       pthread_cond_timedwait(&r->rec_wake, &r->mu, &until) != ETIMEDOUT)
			;
		struct outcome *batch = r->queue;
		int n = r->n_queued;
		r->queue = r->busy;
		r->busy = batch;
		r->n_busy = n;
		r->n_queued = 0;
		pthread_mutex_unlock(&r->mu);
		record(r, batch, n);
		pthread_mutex_lock(&r->mu);
		r->n_busy = 0;
		pthread_cond_broadcast(&r->rec_room);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/*
 * Run w's batch (w->items, installed under r->mu by whoever claimed it, handed it out or took it from a sibling),
 * handing each final outcome to the recorder as soon as the item is done (the worker goes on to the next item while
 * it is recorded). A sibling may take items not started yet off its end meanwhile (w->n shrinks). On stop, hand
 * back what was not started.
 */
static void run_batch(struct worker *w)
{
	struct jobs_runner *r = w->r;
	struct job_item *items = w->items; /* only w changes w->items */
	int i = 0, n = 0;
	for (;; i++) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stopping;
		n = w->n;
		if (!stop && i < n)
			w->begun = i + 1;
		pthread_mutex_unlock(&r->mu);
		if (stop || i >= n)
			break;
		struct outcome o = {0};
		if (run_item(r, find_handler(r, items[i].kind), &items[i], &o))
			hand_over(w, i, &o);
		else
			batch_done_upto(w, i + 1);
	}
	if (i < n) {
		/* stopping: hand back what was claimed but not started (w->n no longer changes: a sibling takes items
		 * only to run them) */
		int64_t *ids = xcalloc((size_t)(n - i), sizeof(*ids));
		int released = 0;
		for (int k = i; k < n; k++)
			ids[k - i] = items[k].id;
		/* when this fails the leases simply expire and the items are taken over */
		if (jobs_release(r->db, r->owner, ids, n - i, &released) == CORE_OK)
			stat_add(&r->stats.released, released);
		free(ids);
	}
	pthread_mutex_lock(&r->mu);
	w->items = NULL;
	w->n = w->next = w->begun = 0;
	pthread_mutex_unlock(&r->mu);
}

/* Install items[0..n) (owned) as w's batch (r->mu held). */
static void install_locked(struct worker *w, struct job_item *items, int n)
{
	w->items = items;
	w->n = n;
	w->next = w->begun = 0;
}

/*
 * w is out of items and nothing was due at the last claim: take half of the items not started yet (rounded up) off
 * the end of the sibling that has the most, as w's batch (r->mu held). False when no sibling has one. A large job
 * is claimed in batches of up to claim_batch; the last batches would otherwise run one item after another in their
 * workers while the others idle.
 */
static bool steal_locked(struct jobs_runner *r, struct worker *w)
{
	struct worker *v = NULL;
	for (int i = 0; i < r->o.workers; i++) {
		struct worker *o = &r->workers[i];
		if (o != w && o->items && o->n - o->begun > (v ? v->n - v->begun : 0))
			v = o;
	}
	if (!v || r->stopping)
		return false;
	int k = (v->n - v->begun + 1) / 2;
	struct job_item *items = xcalloc((size_t)k, sizeof(*items));
	memcpy(items, v->items + v->n - k, (size_t)k * sizeof(*items)); /* w owns their contents now */
	memset(v->items + v->n - k, 0, (size_t)k * sizeof(*items));
	v->n -= k;
	install_locked(w, items, k);
	stat_add(&r->stats.stolen, k);
	return true;
}

/* After an empty claim: learn when the next item falls due, so the waker pokes then (listening runners only). */
static void learn_next_due(struct jobs_runner *r, const char *const *kinds, int nk)
{
	long ms = 0;
	bool found = false;
	if (r->notified && jobs_next_due_ms(r->db, kinds, nk, &ms, &found) == CORE_OK && found)
		pglisten_due_in(r->listen, ms);
}

/*
 * Hand the claimed items[0..n), but for the first chunk, to idle siblings, in chunks of ceil(n / claimers) (r->mu
 * held); the claimer keeps its chunk and *n_kept says how many that is. Items left over for want of an idle sibling
 * (one was poked meanwhile) are released: their chunk holds claim_batch items at most, which the heartbeat's room is
 * sized for. items stays the claimer's array (its first *n_kept entries); each sibling gets its own.
 */
static void hand_out_locked(struct jobs_runner *r, struct job_item *items, int n, int claimers, int *n_kept,
                            int64_t *release, int *n_release)
{
	int chunk = (n + claimers - 1) / claimers;
	*n_kept = chunk < n ? chunk : n;
	*n_release = 0;
	for (int at = *n_kept; at < n; at += chunk) {
		int c = n - at < chunk ? n - at : chunk;
		struct worker *o = pop_idle(r);
		if (!o) {
			for (int k = at; k < n; k++)
				release[(*n_release)++] = items[k].id;
			break;
		}
		struct job_item *mine = xcalloc((size_t)c, sizeof(*mine));
		memcpy(mine, items + at, (size_t)c * sizeof(*items)); /* the sibling owns their contents now */
		memset(items + at, 0, (size_t)c * sizeof(*items));
		install_locked(o, mine, c);
		o->handed = true;
		pthread_cond_signal(&o->cv);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct jobs_runner *r = w->r;
	const char *kinds[JOBS_MAX_KINDS];
	long err_wait = r->o.poll_ms;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stopping;
		int nk = r->n_handlers;
		for (int i = 0; i < nk; i++)
			kinds[i] = r->handlers[i].kind;
		struct job_item *items = NULL;
		int n = 0;
		/* a sibling claimed these for this worker (on stop, run_batch hands them back), or nothing was due at
		 * the last claim and a sibling has items not started yet */
		if (w->handed || (!stop && r->dry && steal_locked(r, w))) {
			items = w->items;
			n = w->n;
			w->handed = false;
		}
		pthread_mutex_unlock(&r->mu);
		if (items) {
			run_batch(w);
			jobs_items_free(items, n); /* the entries a sibling took are zeroed */
			continue;
		}
		if (stop)
			break;
		if (nk == 0) {
			wait_poke(w, -1);
			continue;
		}

		metrics_inc("mrgate_job_claim_queries_total", NULL, 1);
		/* One claim of this runner at a time: claims side by side lock and skip the same first rows of the
		 * claim index and take turns on its pages; with 32 workers on two cores a claim then took 1.5-7.5 ms
		 * instead of 0.6 (docs/PERFORMANCE.md, session 29). A claim takes a batch, so one after the other costs
		 * a worker at most a claim's wait. Nothing else is held while waiting here.
		 * It claims for the idle siblings too and hands them their batches: the start of a job was 32 claims
		 * one after the other, each waking the next worker, 20-80 ms before every GitLab slot had a call
		 * (docs/PERFORMANCE.md, session 30). */
		pthread_mutex_lock(&r->claim_mu);
		pthread_mutex_lock(&r->mu);
		int claimers = 1 + r->n_idle;
		unsigned long wakes = r->wakes;
		pthread_mutex_unlock(&r->mu);
		/* for idle siblings too (a job's start), HANDOUT_BATCH each: the statement locks and writes every item
		 * it takes, and every GitLab slot waits for it */
		int max = claimers > 1 && r->o.claim_batch > HANDOUT_BATCH ? HANDOUT_BATCH : r->o.claim_batch;
		bool stale = false; /* this claim started a large job: gather statistics once the batches are out */
		enum core_status st = jobs_claim_share(r->db, r->owner, kinds, nk, max, r->o.workers, claimers,
		                                       r->o.lease_ms, &items, &n, &stale);
		int kept = n, n_release = 0;
		int64_t *release = n > 1 && claimers > 1 ? xcalloc((size_t)n, sizeof(*release)) : NULL;
		if (st == CORE_OK && n > 0) {
			count_claimed(r, items, n);
			pthread_mutex_lock(&r->mu);
			if (release)
				hand_out_locked(r, items, n, claimers, &kept, release, &n_release);
			install_locked(w, items, kept); /* held from now on (jobs_runner_held; the heartbeat) */
			r->dry = false;
			/* found work: there may be more, let an idle sibling look now (it ends the chain when there is
			 * none) */
			poke_locked(r);
			pthread_mutex_unlock(&r->mu);
		} else if (st == CORE_OK) {
			pthread_mutex_lock(&r->mu);
			r->dry = r->wakes == wakes; /* unless a notification came meanwhile */
			pthread_mutex_unlock(&r->mu);
		}
		pthread_mutex_unlock(&r->claim_mu);
		if (n_release > 0) {
			int released = 0; /* when this fails the leases simply expire and the items are taken over */
			if (jobs_release(r->db, r->owner, release, n_release, &released) == CORE_OK)
				stat_add(&r->stats.released, released);
		}
		free(release);
		if (stale) /* the siblings run their batches meanwhile; this worker's waits the ANALYZE (2-5 ms) */
			jobs_analyze(r->db);
		if (st != CORE_OK) {
			/* the database is away: back off up to 5 s, the claim will work again once it is back */
			wait_poke(w, err_wait);
			err_wait = err_wait * 2 > 5000 ? 5000 : err_wait * 2;
			continue;
		}
		err_wait = r->o.poll_ms;
		if (n == 0) {
			pthread_mutex_lock(&r->mu);
			bool took = !r->stopping && steal_locked(r, w);
			items = took ? w->items : NULL;
			n = took ? w->n : 0;
			pthread_mutex_unlock(&r->mu);
			if (took) {
				run_batch(w);
				jobs_items_free(items, n);
				continue;
			}
			learn_next_due(r, kinds, nk);
			wait_poke(w, -1);
			continue;
		}
		run_batch(w);
		jobs_items_free(items, n); /* the entries handed out or taken by a sibling are zeroed */
	}
	return NULL;
}

/*
 * The waker: pokes one idle worker on a notification on JOBS_CHANNEL, when a known item falls due, and on the
 * safety poll (idle_poll_ms, for what no notification announces: a lease of a dead instance running out). Without
 * a listening connection (no listen_url, or the database away) it pokes every poll_ms, as polling workers would.
 */
static void *waker_main(void *arg)
{
	struct jobs_runner *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stopping;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		if (pglisten_wait_poll(r->listen, r->o.poll_ms, r->o.idle_poll_ms) == PGLISTEN_INTERRUPT)
			continue; /* a stop or an earlier due time: look again */
		pthread_mutex_lock(&r->mu);
		r->wakes++; /* something may be due: a worker out of items claims again before it takes a sibling's */
		r->dry = false;
		poke_locked(r);
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

static void *heartbeat_main(void *arg)
{
	struct jobs_runner *r = arg;
	long every = r->o.lease_ms / 3 > 0 ? r->o.lease_ms / 3 : 1;
	int cap = r->o.workers * r->o.claim_batch + r->rec_cap;
	int64_t *ids = xcalloc((size_t)cap, sizeof(*ids));
	bool *held = xcalloc((size_t)cap, sizeof(*held));

	for (;;) {
		struct timespec until = cond_deadline(CLOCK_MONOTONIC, every);
		int n = 0;
		pthread_mutex_lock(&r->mu);
		while (!r->hb_stopping) {
			if (pthread_cond_timedwait(&r->hb_wake, &r->mu, &until) == ETIMEDOUT)
				break;
		}
		if (r->hb_stopping) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		for (int w = 0; w < r->o.workers; w++)
			for (int k = r->workers[w].next; k < r->workers[w].n && n < cap; k++)
				ids[n++] = r->workers[w].items[k].id;
		/* and the outcomes with the recorder, until they are recorded */
		for (int k = 0; k < r->n_queued && n < cap; k++)
			ids[n++] = r->queue[k].item_id;
		for (int k = 0; k < r->n_busy && n < cap; k++)
			ids[n++] = r->busy[k].item_id;
		pthread_mutex_unlock(&r->mu);
		if (n == 0)
			continue;
		if (jobs_renew(r->db, r->owner, ids, n, r->o.lease_ms, held) != CORE_OK)
			continue; /* try again next beat; the lease may run out meanwhile */
		pthread_mutex_lock(&r->mu);
		for (int i = 0; i < n; i++) {
			if (held[i])
				continue;
			/* flag the item if it is still held by a worker (it may have finished meanwhile) */
			for (int w = 0; w < r->o.workers; w++)
				for (int k = r->workers[w].next; k < r->workers[w].n; k++)
					if (r->workers[w].items[k].id == ids[i])
						__atomic_store_n(&r->workers[w].items[k].lost_, 1, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&r->mu);
	}
	free(ids);
	free(held);
	return NULL;
}

/* "hostname:pid:random", unique per runner (malloc'd). */
static char *make_owner(void)
{
	char host[256] = ""; /* HOST_NAME_MAX is 64 on Linux */
	unsigned char rnd[4];
	struct buf b = {0};
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	randombytes_buf(rnd, sizeof(rnd));
	buf_printf(&b, "%s:%ld:%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
	return buf_steal(&b);
}

static void describe_metrics(void)
{
	metrics_describe("mrgate_job_items_total", "counter",
	                 "Job items processed, by job kind and result (changed, unchanged, skipped, error, retry)");
	metrics_describe("mrgate_job_claims_total", "counter", "Job items claimed by this instance's workers");
	metrics_describe("mrgate_job_claim_queries_total", "counter",
	                 "Claim statements of this instance's job workers (none while idle: they wait for NOTIFY)");
	metrics_describe("mrgate_job_lease_takeovers_total", "counter",
	                 "Job items claimed after another worker's lease expired, by job kind");
	metrics_describe("mrgate_job_lease_lost_total", "counter",
	                 "Job item results not recorded because the lease had been taken over, by job kind");
}

static void stop_heartbeat(struct jobs_runner *r)
{
	pthread_mutex_lock(&r->mu);
	bool join = r->hb_started;
	r->hb_started = false;
	r->hb_stopping = true;
	pthread_cond_broadcast(&r->hb_wake);
	pthread_mutex_unlock(&r->mu);
	if (join)
		pthread_join(r->hb_thread, NULL);
}

void jobs_runner_test_stop_heartbeat(struct jobs_runner *r)
{
	stop_heartbeat(r);
}

/* An option left at 0 (or set below it) takes its default. */
static void or_default(int *v, int dflt)
{
	if (*v <= 0)
		*v = dflt;
}

/* The runner's mutex and its condition variables (on CLOCK_MONOTONIC); false, with nothing left, on failure. */
static bool init_sync(struct jobs_runner *r)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return false;
	bool mu = false, hb = false, rw = false, rr = false;
	int wk = 0;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && (mu = pthread_mutex_init(&r->mu, NULL) == 0) &&
	    (hb = pthread_cond_init(&r->hb_wake, &ca) == 0) && (rw = pthread_cond_init(&r->rec_wake, &ca) == 0) &&
	    (rr = pthread_cond_init(&r->rec_room, &ca) == 0))
		while (wk < r->o.workers && pthread_cond_init(&r->workers[wk].cv, &ca) == 0)
			wk++;
	pthread_condattr_destroy(&ca);
	bool ok = rr && wk == r->o.workers;
	for (int i = 0; !ok && i < wk; i++)
		pthread_cond_destroy(&r->workers[i].cv);
	if (!ok && rr)
		pthread_cond_destroy(&r->rec_room);
	if (!ok && rw)
		pthread_cond_destroy(&r->rec_wake);
	if (!ok && hb)
		pthread_cond_destroy(&r->hb_wake);
	if (!ok && mu)
		pthread_mutex_destroy(&r->mu);
	return ok;
}

struct jobs_runner *jobs_runner_start(struct store *db, const struct jobs_runner_opts *o)
{
	if (!db || sodium_init() < 0)
		return NULL;
	struct jobs_runner *r = xcalloc(1, sizeof(*r));
	r->claim_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	r->db = db;
	if (o)
		r->o = *o;
	r->o.owner = NULL;
	or_default(&r->o.workers, 4);
	or_default(&r->o.lease_ms, 60000);
	or_default(&r->o.poll_ms, 200);
	or_default(&r->o.idle_poll_ms, 10000);
	or_default(&r->o.claim_batch, 1);
	or_default(&r->o.max_attempts, 5);
	or_default(&r->o.backoff_base_ms, 1000);
	or_default(&r->o.backoff_max_ms, 300000);
	r->owner = o && o->owner && *o->owner ? xstrdup(o->owner) : make_owner();
	r->workers = xcalloc((size_t)r->o.workers, sizeof(*r->workers));
	r->idle = xcalloc((size_t)r->o.workers, sizeof(*r->idle));
	if (!init_sync(r)) {
		free(r->idle);
		free(r->workers);
		free(r->owner);
		free(r);
		return NULL;
	}
	r->rec_cap = r->o.workers * r->o.claim_batch;
	r->queue = xcalloc((size_t)r->rec_cap, sizeof(*r->queue));
	r->busy = xcalloc((size_t)r->rec_cap, sizeof(*r->busy));
	describe_metrics();
	const char *channels[] = {JOBS_CHANNEL};
	r->listen = pglisten_open(o ? o->listen_url : NULL, channels, 1);
	r->notified = o && o->listen_url;
	r->o.listen_url = NULL; /* the listener keeps its own copy */

	bool ok = r->listen && pthread_create(&r->hb_thread, NULL, heartbeat_main, r) == 0;
	r->hb_started = ok;
	ok = ok && pthread_create(&r->rec_thread, NULL, recorder_main, r) == 0;
	r->rec_started = ok;
	ok = ok && pthread_create(&r->waker, NULL, waker_main, r) == 0;
	r->waker_started = ok;
	for (int i = 0; ok && i < r->o.workers; i++) {
		r->workers[i].r = r;
		ok = pthread_create(&r->workers[i].thread, NULL, worker_main, &r->workers[i]) == 0;
		r->workers[i].started = ok;
	}
	if (!ok) {
		jobs_runner_stop(r); /* joins whatever was started and frees */
		return NULL;
	}
	log_info("job runner %s started: %d workers, lease %d ms, %s", r->owner, r->o.workers, r->o.lease_ms,
	         r->notified ? "woken by notifications" : "polling");
	return r;
}

enum core_status jobs_register(struct jobs_runner *r, const char *kind,
                               enum job_outcome (*handler)(void *user, const struct job_item *item,
                                                           struct job_item_result *res),
                               void *user)
{
	enum core_status st = CORE_EINVAL;

	if (!r || !handler || !jobs_kind_valid(kind))
		goto out;
	pthread_mutex_lock(&r->mu);
	st = CORE_OK;
	for (int i = 0; i < r->n_handlers; i++)
		if (strcmp(r->handlers[i].kind, kind) == 0)
			st = CORE_ECONFLICT;
	if (st == CORE_OK && r->n_handlers >= JOBS_MAX_KINDS)
		st = CORE_ETOOLARGE;
	if (st == CORE_OK) {
		struct handler_entry *h = &r->handlers[r->n_handlers];
		snprintf(h->kind, sizeof(h->kind), "%s", kind);
		h->fn = handler;
		h->user = user;
		r->n_handlers++;
		poke_locked(r);
	}
	pthread_mutex_unlock(&r->mu);
out:
	return st;
}

enum core_status jobs_on_finished(struct jobs_runner *r, const char *kind, void (*finished)(void *user, int64_t job_id))
{
	enum core_status st = CORE_ENOTFOUND;
	if (!r || !finished)
		return CORE_EINVAL;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n_handlers; i++)
		if (strcmp(r->handlers[i].kind, kind) == 0) {
			__atomic_store_n(&r->handlers[i].finished, finished, __ATOMIC_RELEASE);
			st = CORE_OK;
		}
	pthread_mutex_unlock(&r->mu);
	return st;
}

enum core_status jobs_submit_items(struct store *db, struct jobs_runner *r, const char *kind, const char *created_by,
                                   struct json_object *items, struct json_object **job_out)
{
	int64_t job_id = 0;
	*job_out = NULL;
	enum core_status st = jobs_create_items(db, kind, created_by, NULL,
	                                        json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN), &job_id);
	if (st != CORE_OK)
		return st;
	jobs_runner_wake(r);
	return jobs_get(db, job_id, job_out);
}

void jobs_runner_wake(struct jobs_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	poke_locked(r);
	pthread_mutex_unlock(&r->mu);
}

static int by_first_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int jobs_runner_held(struct jobs_runner *r, int64_t job_id, int64_t after_id, int64_t *ids, int64_t *repos, int max)
{
	int64_t(*pairs)[2] = max > 0 ? xcalloc((size_t)max, sizeof(*pairs)) : NULL;
	int n = 0;
	pthread_mutex_lock(&r->mu);
	for (int w = 0; w < r->o.workers; w++)
		for (int k = r->workers[w].next; k < r->workers[w].n && n < max; k++) {
			const struct job_item *it = &r->workers[w].items[k];
			if (it->job_id == job_id && it->id > after_id && it->has_repo) {
				pairs[n][0] = it->id;
				pairs[n++][1] = it->repo_id;
			}
		}
	pthread_mutex_unlock(&r->mu);
	if (n > 1)
		qsort(pairs, (size_t)n, sizeof(*pairs), by_first_i64);
	for (int i = 0; i < n; i++) {
		ids[i] = pairs[i][0];
		repos[i] = pairs[i][1];
	}
	free(pairs);
	return n;
}

const char *jobs_runner_owner(const struct jobs_runner *r)
{
	return r->owner;
}

void jobs_runner_stats(struct jobs_runner *r, struct jobs_runner_stats *out)
{
	out->claimed = __atomic_load_n(&r->stats.claimed, __ATOMIC_RELAXED);
	out->takeovers = __atomic_load_n(&r->stats.takeovers, __ATOMIC_RELAXED);
	out->recorded = __atomic_load_n(&r->stats.recorded, __ATOMIC_RELAXED);
	out->retried = __atomic_load_n(&r->stats.retried, __ATOMIC_RELAXED);
	out->lease_lost = __atomic_load_n(&r->stats.lease_lost, __ATOMIC_RELAXED);
	out->released = __atomic_load_n(&r->stats.released, __ATOMIC_RELAXED);
	out->stolen = __atomic_load_n(&r->stats.stolen, __ATOMIC_RELAXED);
}

void jobs_runner_stop(struct jobs_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	wake_all_locked(r);
	pthread_mutex_unlock(&r->mu);
	pglisten_interrupt(r->listen);
	if (r->waker_started)
		pthread_join(r->waker, NULL);
	for (int i = 0; i < r->o.workers; i++)
		if (r->workers[i].started)
			pthread_join(r->workers[i].thread, NULL);
	/* the recorder records what the workers handed it; the heartbeat outlives both, so those items keep their
	 * leases */
	cond_raise(&r->mu, &r->rec_wake, &r->rec_stopping);
	if (r->rec_started)
		pthread_join(r->rec_thread, NULL);
	stop_heartbeat(r);
	log_info("job runner %s stopped", r->owner);
	pthread_cond_destroy(&r->rec_room);
	pthread_cond_destroy(&r->rec_wake);
	pthread_cond_destroy(&r->hb_wake);
	for (int i = 0; i < r->o.workers; i++)
		pthread_cond_destroy(&r->workers[i].cv);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->claim_mu);
	pglisten_close(r->listen);
	free(r->owner);
	free(r->workers);
	free(r->idle);
	free(r->queue);
	free(r->busy);
	free(r);
}
