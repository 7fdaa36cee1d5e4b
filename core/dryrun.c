/*
 * core/dryrun.c
 *    The plan of a configure dry run (see dryrun.h).
 */
#include "dryrun.h"

#include "jsonx.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>

enum core_status dryrun_read(const struct applyjob_env *env, struct connection_client *cc,
                             const struct configure_out *out, size_t first, size_t count,
                             struct apply_batch_item **items_out)
{
	char hook_url[APPLYJOB_HOOK_URL_MAX];
	struct apply_ctx ctx;
	*items_out = NULL;
	enum core_status st = applyjob_ctx(env, cc, hook_url, &ctx);
	if (st != CORE_OK)
		return st;
	struct apply_batch_item *items = xcalloc(count ? count : 1, sizeof(*items));
	for (size_t i = 0; i < count; i++) {
		items[i].repo_id = out->plan_ids[first + i];
		items[i].want = &out->plan_wants[first + i];
	}
	apply_batch(env->db, connection_client_gitlab(cc), &ctx, items, count, env->gitlab_concurrency, true);
	*items_out = items;
	return CORE_OK;
}

void dryrun_items_free(struct apply_batch_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		apply_result_clear(&items[i].res);
	free(items);
}

static struct json_object *entry_json(const struct apply_batch_item *item, const char *path)
{
	static const char *const copied[] = {"hooks", "settings", "open_mrs_to_gate", "statuses_to_clear"};
	struct json_object *e = jx_object();
	const struct apply_want *w = item->want;
	json_object_object_add(e, "repo_id", jx_int(item->repo_id));
	json_object_object_add(e, "path_with_namespace", jx_str(path));
	json_object_object_add(e, "want", jx_str(!w->hook ? "off" : w->block_merge ? "hook+merge" : "hook"));
	json_object_object_add(e, "result", jx_str(apply_outcome_name(item->res.outcome)));
	json_object_object_add(e, "message", jx_str(item->res.message));
	json_object_object_add(e, "actions", apply_plan_actions(item->res.plan));
	for (size_t k = 0; k < sizeof(copied) / sizeof(copied[0]); k++) {
		struct json_object *v = jsonx_get(item->res.plan, copied[k]);
		if (v || k < 2) /* hooks and settings are always there (null without a plan) */
			json_object_object_add(e, copied[k], json_object_get(v));
	}
	return e;
}

enum core_status dryrun_plan_page(const struct applyjob_env *env, const struct configure_out *out, int64_t cursor,
                                  int64_t limit, struct json_object *o)
{
	struct json_object *plan = jx_array();
	int64_t reads = 0, writes = 0;
	size_t first = 0;
	while (first < out->n_plan && out->plan_ids[first] <= cursor)
		first++;
	size_t count = out->n_plan - first;
	if (limit > 0 && (size_t)limit < count)
		count = (size_t)limit;
	json_object_object_add(o, "plan", plan);
	json_object_object_add(o, "plan_total", jx_int((int64_t)out->n_plan));
	char next[24];
	snprintf(next, sizeof(next), "%lld", count ? (long long)out->plan_ids[first + count - 1] : 0LL);
	json_object_object_add(o, "plan_next_cursor", first + count < out->n_plan && count > 0 ? jx_str(next) : NULL);
	if (count > 0) {
		struct connection_client *cc = NULL;
		struct apply_batch_item *items = NULL;
		enum core_status st = connection_client_shared(env->db, env->secret_key, &env->tune, &cc);
		if (st == CORE_OK)
			st = dryrun_read(env, cc, out, first, count, &items);
		connection_client_release(cc);
		if (st != CORE_OK)
			return st;
		for (size_t i = 0; i < count; i++) {
			json_object_array_add(plan, entry_json(&items[i], out->plan_paths[first + i]));
			reads += items[i].res.reads;
			writes += items[i].res.writes;
		}
		dryrun_items_free(items, count);
	}
	json_object_object_add(o, "gitlab_reads", jx_int(reads));
	json_object_object_add(o, "gitlab_writes_planned", jx_int(writes));
	return CORE_OK;
}
