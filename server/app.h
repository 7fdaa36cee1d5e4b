/*
 * server/app.h
 *    The process-wide application context shared by the HTTP handlers: settings, the database pool, the secret
 *    key, and the start time. Created in main.c, borrowed by everything else for the life of the process.
 */
#ifndef MRGATE_SERVER_APP_H
#define MRGATE_SERVER_APP_H

#include "config.h"
#include "crypto.h"
#include "store.h"

#include <stdbool.h>
#include <time.h>

struct jobs_runner;
struct limiter;

struct app {
	struct config cfg;
	struct store *db;
	unsigned char secret_key[CRYPTO_KEY_BYTES];
	bool tls; /* serving HTTPS: cookies get Secure */
	time_t started_at;
	char instance[128];           /* hostname:pid:random, names this process in leases and run owners */
	struct jobs_runner *jobs;     /* this process's job workers (NULL in CLI commands) */
	struct limiter *gitlab_slots; /* bounds GitLab work in flight across the job workers */
	bool stopping;                /* set (atomically) when the process shuts down */
};

/* Start the job workers with their handlers (apply); NULL on failure. */
struct jobs_runner *app_jobs_start(struct app *app);

/* GitLab client tuning from the settings. */
#include "connection.h"
void app_gitlab_tuning(const struct app *app, struct connection_tuning *out);
/* The resync context of this process (token health, discovery, then applies). */
#include "resync.h"
void app_resync_ctx(struct app *app, struct resync_ctx *out);

#endif
