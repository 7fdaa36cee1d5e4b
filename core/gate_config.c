/*
 * core/gate_config.c
 *    The gate's config adapter (see gate_config.h).
 */
#include "gate_config.h"

#include "jsonx.h"
#include "log.h"
#include "pathglob.h"
#include "rows.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gate_scan_names[GATE_SCAN_COUNT] = {"secrets", "sast", "dependencies", "iac", "license", "malware"};

void gate_config_clear(struct gate_config *c)
{
	while (c && c->n_ignore > 0)
		free(c->ignore_paths[--c->n_ignore]);
	if (c) {
		free(c->ignore_paths);
		c->ignore_paths = NULL;
	}
}

static enum core_status comment_parse(const char *s, enum gate_comment *out)
{
	if (strcmp(s, "off") == 0)
		*out = GATE_COMMENT_OFF;
	else if (strcmp(s, "always") == 0)
		*out = GATE_COMMENT_ALWAYS;
	else if (strcmp(s, "on_findings") == 0)
		*out = GATE_COMMENT_ON_FINDINGS;
	else if (strcmp(s, "inline") == 0)
		*out = GATE_COMMENT_INLINE;
	else
		return CORE_EINVAL;
	return CORE_OK;
}

enum core_status gate_config_from_json(const struct json_object *eff, bool unmanaged, struct gate_config *out)
{
	gate_config_clear(out);
	memset(out, 0, sizeof(*out));
	out->fail_on = FAIL_ON_HIGH;
	out->comment = GATE_COMMENT_ON_FINDINGS;
	if (!eff || !json_object_is_type((struct json_object *)eff, json_type_object))
		return CORE_EINVAL;
	bool enabled = false;
	jsonx_bool(eff, "enabled", &enabled);
	const char *s = NULL;
	if (jsonx_str(eff, "fail_on", &s) && fail_on_parse(s, &out->fail_on) != CORE_OK)
		return CORE_EINVAL;
	if (jsonx_str(eff, "comment", &s) && comment_parse(s, &out->comment) != CORE_OK)
		return CORE_EINVAL;
	struct json_object *arr = NULL;
	if (jsonx_array(eff, "scans", &arr)) {
		size_t n = json_object_array_length(arr);
		for (size_t i = 0; i < n; i++) {
			const char *name = NULL;
			if (!jsonx_as_str(json_object_array_get_idx(arr, i), &name))
				return CORE_EINVAL;
			for (int k = 0; k < GATE_SCAN_COUNT; k++)
				if (strcmp(name, gate_scan_names[k]) == 0)
					out->scans[k] = true;
		}
	} else {
		out->scans[GATE_SCAN_SECRETS] = true;
	}
	if (jsonx_array(eff, "ignore_paths", &arr)) {
		size_t n = json_object_array_length(arr);
		out->ignore_paths = xcalloc(n ? n : 1, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			const char *g = NULL;
			if (!jsonx_as_str(json_object_array_get_idx(arr, i), &g))
				return CORE_EINVAL;
			out->ignore_paths[out->n_ignore++] = xstrdup(g);
		}
	}
	out->gated = enabled && !unmanaged;
	if (unmanaged)
		snprintf(out->why_not, sizeof(out->why_not), "repo is unmanaged");
	else if (!enabled)
		snprintf(out->why_not, sizeof(out->why_not), "gate is not enabled for this repo");
	return CORE_OK;
}

/* A repo GitLab no longer serves changes for is not gated, whatever its config says. */
static bool status_ends_gating(const char *status)
{
	return strcmp(status, "removed") == 0 || strcmp(status, "archived") == 0 ||
	       strcmp(status, "pending_deletion") == 0;
}

/* The gate's read of one repo: the one place its SQL lives. */
static const char gate_config_sql[] =
    STORE_PREPARE "SELECT unmanaged, effective_config AS effective, status FROM repo_status"
                  " WHERE id = $1";

enum core_status gate_config_load_conn(struct store_conn *c, int64_t repo_id, struct gate_config *out)
{
	struct json_object *o = NULL;
	struct store_params p = {0};
	memset(out, 0, sizeof(*out));
	store_param_i64(&p, repo_id);
	enum core_status st = rows_query_one_on(c, gate_config_sql, &p, &o);
	if (st == CORE_ENOTFOUND) {
		snprintf(out->why_not, sizeof(out->why_not), "project %lld is not a repo mrgate knows (sync the group)",
		         (long long)repo_id);
		return CORE_OK;
	}
	if (st != CORE_OK)
		return st;
	bool unmanaged = false;
	jsonx_bool(o, "unmanaged", &unmanaged);
	st = gate_config_from_json(jsonx_get(o, "effective"), unmanaged, out);
	if (st == CORE_EINVAL) {
		log_error("the effective config of repo %lld cannot be read: not gating it", (long long)repo_id);
		out->gated = false;
		snprintf(out->why_not, sizeof(out->why_not), "the repo's effective config cannot be read");
		st = CORE_OK;
	}
	const char *status = NULL;
	if (st == CORE_OK && out->gated && jsonx_str(o, "status", &status) && status_ends_gating(status)) {
		out->gated = false;
		snprintf(out->why_not, sizeof(out->why_not), "repo is %s", status);
	}
	json_object_put(o);
	return st;
}

enum core_status gate_config_load(struct store *db, int64_t repo_id, struct gate_config *out)
{
	struct store_conn *c = NULL;
	memset(out, 0, sizeof(*out));
	enum core_status st = store_get(db, &c);
	if (st == CORE_OK)
		st = gate_config_load_conn(c, repo_id, out);
	store_put(db, c);
	return st;
}

bool gate_config_ignores(const struct gate_config *c, const char *path)
{
	return c->n_ignore > 0 && pathglob_match_any((const char *const *)c->ignore_paths, c->n_ignore, path);
}
