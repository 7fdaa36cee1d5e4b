/*
 * server/resync_wiring.c
 *    The resync of this process: discovery, then the follow-up applies (wired to the apply engine and jobs).
 */
#include <string.h>

#include "app.h"

void app_resync_ctx(struct app *app, struct resync_ctx *out)
{
	memset(out, 0, sizeof(*out));
	out->db = app->db;
	out->key = app->secret_key;
	app_gitlab_tuning(app, &out->tune);
	out->instance = app->instance;
	out->after = NULL; /* set when the apply engine is wired in */
	out->user = app;
}
