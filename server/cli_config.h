/*
 * server/cli_config.h
 *    CLI commands for gating configs: configure (bulk, with --dry-run), export and import (server/cli_config.c).
 *    Each returns the process exit code; argv holds the arguments after the command name.
 */
#ifndef MRGATE_SERVER_CLI_CONFIG_H
#define MRGATE_SERVER_CLI_CONFIG_H

#include "app.h"

/* Shared by the CLI commands (server/main.c): each prints why it failed and returns 1, or 0 on success. */
/* Open the database (waiting up to 10 s) and migrate it. */
int cli_open_store(struct app *app);
/* Load the secret key and open a private GitLab client for the stored connection (the caller frees it). */
int cli_open_connection(struct app *app, struct connection_client **cc, const char *when_missing);

int cli_configure(struct app *app, int argc, char **argv);
int cli_export(struct app *app);
int cli_import(struct app *app, int argc, char **argv);

#endif
