/*
 * server/cli_config.h
 *    CLI commands for gating configs: configure (bulk, with --dry-run), export and import (server/cli_config.c).
 *    Each returns the process exit code; argv holds the arguments after the command name.
 */
#ifndef MRGATE_SERVER_CLI_CONFIG_H
#define MRGATE_SERVER_CLI_CONFIG_H

#include "app.h"

int cli_configure(struct app *app, int argc, char **argv);
int cli_export(struct app *app);
int cli_import(struct app *app, int argc, char **argv);

#endif
