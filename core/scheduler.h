/*
 * core/scheduler.h
 *    Scheduled duties (the periodic resync) run by exactly one instance: the leader.
 *
 * Design: every instance runs a scheduler thread. Leadership is a session-level PostgreSQL advisory lock
 * (pg_try_advisory_lock) held on a connection of the scheduler's own, outside the pool: while that connection
 * lives, no other instance can lead; when the leader dies (even by SIGKILL) its connection closes, the lock is
 * released, and another instance's next attempt (every second) takes over. The leader runs the duty when it is
 * due (last run + interval, the interval read from the settings each time) or when a run was requested; between
 * runs it sleeps until the next is due, waking every 5 s at most to notice a changed interval (3 statements per
 * wake-up, where it used to run them every second). The leader also runs the tidy duty (deleting what no one
 * needs any more) when it starts to lead and every SCHEDULER_TIDY_MS after.
 * The scheduler_state row tells the API who leads and when the last and next runs are.
 * Threading: one thread per struct scheduler; the duty runs on that thread.
 * Ownership: scheduler_start copies the URL and instance name; scheduler_stop joins and frees.
 */
#ifndef MRGATE_CORE_SCHEDULER_H
#define MRGATE_CORE_SCHEDULER_H

#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>

struct scheduler_opts {
	const char *database_url; /* for the leader's own connection */
	struct store *db;         /* for everything else */
	const char *instance;     /* this process's name (hostname:pid:nonce) */
	int default_interval;     /* seconds, when the settings do not say */
	/* The duty: one resync. Returns CORE_ENOTFOUND when there is nothing to do (no connection yet). */
	enum core_status (*duty)(void *user, const char *trigger);
	/* The tidy duty (NULL: none), run by the leader on taking the lead and every SCHEDULER_TIDY_MS. */
	void (*tidy)(void *user);
	void *user;
};

#define SCHEDULER_TIDY_MS (10 * 60 * 1000)

struct scheduler;
struct scheduler *scheduler_start(const struct scheduler_opts *o);
void scheduler_stop(struct scheduler *s); /* NULL is fine; waits for a duty in progress to finish */
bool scheduler_is_leader(struct scheduler *s);

/* {leader, leader_since, last_started_at, last_finished_at, next_run_at}; a new object for the caller. */
enum core_status scheduler_state_json(struct store *db, struct json_object **out);

#endif
