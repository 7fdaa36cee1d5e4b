/*
 * tests/db/test_applyjob.c
 *    The apply machinery that moved out of server/ (core/applyjob.h, core/hookjobs.h, core/hookmode.h) on a real
 *    PostgreSQL, without GitLab: an apply job is made of one item per repo with the run in its params, a write that
 *    marked nothing starts nothing, a job is waited for until it finishes or the process stops, a public URL too
 *    long for its hook URL is refused instead of cut, and the handlers and the hook-mode switch say why they cannot
 *    run without a connection. What GitLab ends up with is tested by the http tests (test_apply_resume,
 *    test_group_hooks, test_resync).
 */
#include "applyjob.h"
#include "hookjobs.h"
#include "hookmode.h"
#include "jsonx.h"
#include "log.h"
#include "migrate.h"
#include "settings.h"
#include "store.h"
#include "testlib.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static struct store *db;
static bool stopping;

static struct applyjob_env env_for(const char *public_url)
{
	static const unsigned char key[32] = {0};
	return (struct applyjob_env){.db = db,
	                             .secret_key = key,
	                             .public_url = public_url,
	                             .default_resync_interval = 3600,
	                             .gitlab_concurrency = 2,
	                             .stopping = &stopping};
}

static void start_makes_one_item_per_repo_with_the_run(void)
{
	struct applyjob_env env = env_for("https://mrgate.example.com");
	const int64_t ids[] = {11, 12, 13};
	int64_t job_id = 0, run = 0, total = 0;
	struct json_object *job = applyjob_start(&env, "tester", 77, ids, 3, &job_id);
	REQUIRE(job != NULL);
	CHECK(job_id > 0);
	CHECK(jsonx_path_int64(job, "params.run", &run) && run == 77);
	CHECK(jsonx_int64(job, "total", &total) && total == 3);
	const char *kind = NULL;
	CHECK(jsonx_str(job, "kind", &kind) && strcmp(kind, "apply") == 0);
	json_object_put(job);
}

static void a_write_that_marked_nothing_starts_nothing(void)
{
	struct applyjob_env env = env_for("https://mrgate.example.com");
	struct gateconfig_marked none = {0};
	CHECK(applyjob_start_marked(&env, "tester", &none, false, false) == NULL);

	struct gateconfig_marked marked = {.run = 5, .ids = xmalloc(2 * sizeof(int64_t)), .n = 2};
	marked.ids[0] = 21;
	marked.ids[1] = 22;
	struct json_object *o = applyjob_start_marked(&env, "tester", &marked, false, false);
	REQUIRE(o != NULL);
	int64_t run = 0, repos = 0, job_id = 0;
	CHECK(jsonx_int64(o, "run", &run) && run == 5);
	CHECK(jsonx_int64(o, "repos", &repos) && repos == 2);
	CHECK(jsonx_int64(o, "job_id", &job_id) && job_id > 0);
	CHECK(jsonx_get(o, "job") != NULL);
	CHECK(marked.ids == NULL && marked.n == 0); /* taken */
	json_object_put(o);
}

static void wait_ends_on_finish_or_stop(void)
{
	struct applyjob_env env = env_for("https://mrgate.example.com");
	int64_t empty = 0, busy = 0;
	json_object_put(applyjob_start(&env, "tester", 1, NULL, 0, &empty)); /* no items: created done */
	REQUIRE(empty > 0);
	CHECK(applyjob_wait(&env, empty, 5));
	const int64_t ids[] = {31};
	json_object_put(applyjob_start(&env, "tester", 2, ids, 1, &busy)); /* no runner here: never finishes */
	REQUIRE(busy > 0);
	stopping = true;
	CHECK(!applyjob_wait(&env, busy, 5));
	stopping = false;
}

static void a_hook_url_is_never_cut(void)
{
	char long_url[PUBLICURL_MAX + 20], hook[APPLYJOB_HOOK_URL_MAX];
	memset(long_url, 'x', sizeof(long_url) - 1);
	memcpy(long_url, "https://", 8);
	long_url[sizeof(long_url) - 1] = '\0';
	struct applyjob_env env = env_for(long_url);
	struct apply_ctx ctx;
	CHECK(applyjob_ctx(&env, NULL, hook, &ctx) == CORE_ETOOLARGE);
	CHECK(hook[0] == '\0' && ctx.hook_url == NULL);
}

static void handlers_without_a_connection_say_why(void)
{
	struct applyjob_env env = env_for("https://mrgate.example.com");
	struct job_item item;
	struct job_item_result res;
	memset(&item, 0, sizeof(item));
	memset(&res, 0, sizeof(res));
	item.params = jx_object();

	CHECK_INT(applyjob_item(&env, &item, &res), JOB_ITEM_ERROR); /* no repository */
	CHECK_STR(res.message, "an apply item needs a repository");
	free(res.message);
	memset(&res, 0, sizeof(res));

	item.has_repo = true;
	item.repo_id = 41;
	CHECK_INT(applyjob_item(&env, &item, &res), JOB_ITEM_ERROR);
	CHECK_STR(res.message, "no GitLab connection: connect one on the Connection page");
	free(res.message);
	memset(&res, 0, sizeof(res));

	/* project hook mode (the default): a project_create event is left to the next resync */
	CHECK_INT(hookjobs_onboard(&env, &item, &res), JOB_ITEM_SKIPPED);
	CHECK(res.message && strstr(res.message, "not in group-hook mode"));
	free(res.message);
	memset(&res, 0, sizeof(res));

	CHECK_INT(hookjobs_hold(&env, &item, &res), JOB_ITEM_ERROR); /* no pipeline_id, mr_iid, sha */
	free(res.message);
	json_object_put(item.params);
}

static void hook_mode_switch_without_a_connection(void)
{
	struct applyjob_env env = env_for("https://mrgate.example.com");
	char msg[400] = "";
	CHECK_INT(hookmode_prepare(&env, "project", msg, sizeof(msg)), CORE_OK); /* nothing needed first */
	CHECK_INT(hookmode_prepare(&env, "group", msg, sizeof(msg)), CORE_ECONFLICT);
	CHECK(strstr(msg, "no GitLab connection") != NULL);

	/* the request only starts the switch job; a second one while it is unfinished is a conflict */
	struct json_object *body = jx_object(), *job = NULL, *again = NULL;
	json_object_object_add(body, "hook_mode", jx_str("group"));
	CHECK_INT(hookmode_settings_put(&env, body, "tester", &job, msg, sizeof(msg)), CORE_OK);
	REQUIRE(job);
	CHECK_INT(hookmode_settings_put(&env, body, "tester", &again, msg, sizeof(msg)), CORE_ECONFLICT);
	CHECK(!again && strstr(msg, "already running") != NULL);
	json_object_put(body);
	json_object_put(job);
	/* the job refuses (no connection): its item says why and nothing is stored */
	const char *kinds[] = {"hookmode"};
	struct job_item *items = NULL;
	int n = 0;
	REQUIRE(jobs_claim(db, "tester-worker", kinds, 1, 1, 60000, &items, &n) == CORE_OK && n == 1);
	struct job_item_result res = {0};
	CHECK_INT(hookmode_item(&env, &items[0], &res), JOB_ITEM_ERROR);
	CHECK(res.message && strstr(res.message, "no GitLab connection") != NULL);
	CHECK(jobs_finish(db, "tester-worker", items[0].id, JOB_ITEM_ERROR, res.message, NULL, NULL) == CORE_OK);
	free(res.message);
	jobs_items_free(items, n);
	struct settings set;
	REQUIRE(settings_get(db, 900, &set) == CORE_OK);
	CHECK(strcmp(set.hook_mode, "project") == 0);
	body = jx_object();
	json_object_object_add(body, "hook_mode", jx_str("sideways"));
	CHECK_INT(hookmode_settings_put(&env, body, "tester", &job, msg, sizeof(msg)), CORE_EINVAL);
	CHECK(!job);
	json_object_put(body);
}

int main(void)
{
	db = testlib_db_start("applyjob", 4);
	RUN(start_makes_one_item_per_repo_with_the_run);
	RUN(a_write_that_marked_nothing_starts_nothing);
	RUN(wait_ends_on_finish_or_stop);
	RUN(a_hook_url_is_never_cut);
	RUN(handlers_without_a_connection_say_why);
	RUN(hook_mode_switch_without_a_connection);
	store_close(db);
	return testlib_done();
}
