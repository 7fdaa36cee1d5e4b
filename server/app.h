/*
 * server/app.h
 *    The process-wide application context shared by the HTTP handlers and the CLI: settings, the database pool,
 *    the secret key, the apply machinery (core/applyjob.h) and the start time, and the process wiring
 *    (server/app.c). Created in main.c, borrowed by everything else for the life of the process.
 */
#ifndef MRGATE_SERVER_APP_H
#define MRGATE_SERVER_APP_H

#include "applyjob.h"
#include "config.h"
#include "connection.h"
#include "crypto.h"
#include "resync.h"
#include "store.h"

#include <stdbool.h>
#include <time.h>

struct app {
	struct config cfg;
	struct store *db;
	unsigned char secret_key[CRYPTO_KEY_BYTES];
	bool tls; /* serving HTTPS: cookies get Secure */
	time_t started_at;
	char instance[128];        /* hostname:pid:random, names this process in leases and run owners */
	struct applyjob_env apply; /* the apply machinery: its job runner and GitLab slots (NULL in CLI commands) */
	bool stopping;             /* set (atomically) when the process shuts down */
};

/* GitLab client tuning from the settings. */
void app_gitlab_tuning(const struct app *app, struct connection_tuning *out);
/* Fill app->apply from the settings and the open database (app->db). */
void app_init(struct app *app);
/* Start the job workers with the core's handlers (apply, onboard, hold) and the GitLab slots; false on failure. */
bool app_jobs_start(struct app *app);
/* Stop them (items not started are released for another instance) and free the slots; fine when not started. */
void app_jobs_stop(struct app *app);
/* The resync context of this process (token health, discovery, then applies when job workers run here). */
void app_resync_ctx(struct app *app, struct resync_ctx *out);

#endif
