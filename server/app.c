/*
 * server/app.c
 *    Process wiring: which engine runs on which threads. The job workers get the core's handlers (apply, onboard,
 *    hold, mrcommand), bounded by the GitLab slots; the resyncs get the apply machinery of this process.
 *
 * Design: the domain lives in core/ (core/applyjob.h, core/hookjobs.h, core/hookmode.h, core/resync.h); this file
 * only fills their environment from the settings and registers the handlers.
 */
#include "app.h"

#include "dryrun.h"
#include "hookjobs.h"
#include "hookmode.h"
#include "jobs.h"
#include "limiter.h"
#include "mrcommand.h"

#include <string.h>

void app_gitlab_tuning(const struct app *app, struct connection_tuning *out)
{
	memset(out, 0, sizeof(*out));
	out->requests_per_minute = app->cfg.gitlab_rate_limit;
	out->connect_timeout_ms = 10000;
	out->total_timeout_ms = (long)app->cfg.gitlab_timeout * 1000;
	out->max_retries = app->cfg.gitlab_retries;
	out->backoff_base_ms = app->cfg.gitlab_backoff_ms;
}

void app_init(struct app *app)
{
	struct applyjob_env *env = &app->apply;
	env->db = app->db;
	env->secret_key = app->secret_key;
	app_gitlab_tuning(app, &env->tune);
	env->public_url = app->cfg.public_url;
	env->default_resync_interval = app->cfg.resync_interval;
	env->gitlab_concurrency = app->cfg.gitlab_concurrency;
	env->stopping = &app->stopping;
}

bool app_jobs_start(struct app *app)
{
	struct applyjob_env *env = &app->apply;
	env->gitlab_slots = limiter_new(app->cfg.gitlab_concurrency);
	if (!env->gitlab_slots)
		return false;
	env->outbox = apply_outbox_new(app->db);
	struct jobs_runner_opts o;
	memset(&o, 0, sizeof(o));
	/* enough workers to keep the GitLab slots busy: a worker writing the database between its GitLab calls holds
	 * no slot (core/applyjob.h), so twice as many workers as slots */
	int fill = 2 * app->cfg.gitlab_concurrency;
	o.workers = app->cfg.workers > fill ? app->cfg.workers : fill;
	o.backoff_base_ms = app->cfg.gitlab_backoff_ms * 2;
	o.lease_ms = app->cfg.job_lease_ms;
	o.owner = app->instance;
	o.listen_url = app->cfg.database_url; /* idle workers wait for NOTIFY mrgate_jobs, no polling */
	o.claim_batch =
	    16; /* at most; a small job is still spread over every worker, the last items of a large one too */
	/* workers claim only the kinds registered, so the runner is in env before any handler can run */
	env->jobs = jobs_runner_start(app->db, &o);
	if (!env->jobs || jobs_register(env->jobs, "apply", applyjob_item, env) != CORE_OK ||
	    jobs_register(env->jobs, "onboard", hookjobs_onboard, env) != CORE_OK ||
	    jobs_register(env->jobs, "dryrun", dryrun_item, env) != CORE_OK ||
	    jobs_register(env->jobs, "hookmode", hookmode_item, env) != CORE_OK ||
	    jobs_register(env->jobs, "hold", hookjobs_hold, env) != CORE_OK ||
	    jobs_register(env->jobs, "mrcommand", mrcommand_item, env) != CORE_OK ||
	    jobs_on_finished(env->jobs, "apply", applyjob_finished) != CORE_OK) {
		app_jobs_stop(app);
		return false;
	}
	return true;
}

void app_jobs_stop(struct app *app)
{
	jobs_runner_stop(app->apply.jobs); /* items not started are released for another instance */
	app->apply.jobs = NULL;
	limiter_free(app->apply.gitlab_slots);
	app->apply.gitlab_slots = NULL;
	outbox_free(app->apply.outbox);
	app->apply.outbox = NULL;
}

void app_resync_ctx(struct app *app, struct resync_ctx *out)
{
	memset(out, 0, sizeof(*out));
	out->db = app->db;
	out->key = app->secret_key;
	app_gitlab_tuning(app, &out->tune);
	out->instance = app->instance;
	out->concurrency = app->cfg.gitlab_concurrency;
	/* only a server runs jobs; the CLI's sync lists repos and leaves applies to the server */
	out->apply = app->apply.jobs ? &app->apply : NULL;
}
