/*
 * server/cli.h
 *    The small CLI commands (migrate, user add, token create, sync, webhook-secret) and what every CLI command
 *    shares: opening the database and the stored GitLab connection (server/cli.c).
 *
 * Design: each command prints why it failed on stderr and returns the process exit code (0, 1 on failure, 2 on
 * bad usage); argv holds the arguments after the command name. The commands call core/ as the API does.
 * Threading: the main thread. Ownership: app is borrowed.
 */
#ifndef MRGATE_SERVER_CLI_H
#define MRGATE_SERVER_CLI_H

#include "app.h"

#include <signal.h>

/* Set by the process's SIGINT/SIGTERM handler (server/main.c): waits for the database end early. */
extern volatile sig_atomic_t cli_stop_requested;

/* Open the database pool, waiting up to wait_secs for PostgreSQL to come up (docker-compose starts both at once),
 * and fill app->apply (app_init). */
enum core_status cli_open_db(struct app *app, int wait_secs);
/* Open the database (waiting up to 10 s) and migrate it; 0 or 1. */
int cli_open_store(struct app *app);
/* Load the secret key and open a private GitLab client for the stored connection (the caller frees it); 0 or 1. */
int cli_open_connection(struct app *app, struct connection_client **cc, const char *when_missing);

int cli_migrate(struct app *app);
int cli_user_add(struct app *app, int argc, char **argv);
/* user unlock [NAME] [--address ADDR]: auth_unlock() of a user, an address, or both. */
int cli_user_unlock(struct app *app, int argc, char **argv);
int cli_token_create(struct app *app, int argc, char **argv);
int cli_sync(struct app *app);
int cli_webhook_secret(struct app *app);

#endif
