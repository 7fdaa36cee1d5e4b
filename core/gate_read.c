/*
 * core/gate_read.c
 *    Gate runs for the API (see gate_read.h).
 */
#include "gate_read.h"

#include "gatebypass.h"
#include "rows.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LIST_MAX 200

/* clang-format off */
#define RUN_JSON                                                                                                       \
	"jsonb_build_object('id', g.id, 'repo_id', g.project_id, 'path_with_namespace', rp.path_with_namespace,"       \
	" 'source_project_id', g.source_project_id, 'mr_iid', g.mr_iid, 'head_sha', g.head_sha,"                       \
	" 'source_branch', g.source_branch, 'state', g.state, 'verdict', g.verdict, 'description', g.description,"     \
	" 'fail_on', g.fail_on, 'scans', to_jsonb(g.scans), 'counts', g.counts, 'notes', g.notes, 'error', g.error,"   \
	" 'pipeline_id', g.pipeline_id, 'status_posted', g.status_posted, 'note_id', g.note_id,"                       \
	" 'timings', g.timings, 'attempts', g.attempts, 'superseded_by', g.superseded_by, 'event_id', g.event_id,"     \
	" 'created_at', " STORE_TS("g.created_at") ", 'started_at', " STORE_TS("g.started_at") ","                     \
	" 'finished_at', " STORE_TS("g.finished_at") ","                                                               \
	" 'newer_run_id', (SELECT max(n.id) FROM gate_runs n WHERE n.project_id = g.project_id"                        \
	"   AND n.mr_iid = g.mr_iid AND n.id > g.id),"                                                                 \
	" 'bypass', CASE WHEN g.bypassed_by IS NULL THEN NULL ELSE jsonb_build_object('by', g.bypassed_by,"            \
	" 'reason', g.bypass_reason, 'at', " STORE_TS("g.bypassed_at") ") END,"                                        \
	" 'mr_title', coalesce((SELECT e.payload #>> '{object_attributes,title}' FROM webhook_events e"                \
	"   WHERE e.id = g.event_id), g.mr_title),"                                                                    \
	" 'mr_web_url', coalesce((SELECT e.payload #>> '{object_attributes,url}' FROM webhook_events e"                \
	"   WHERE e.id = g.event_id), rp.web_url || '/-/merge_requests/' || g.mr_iid))"
/* clang-format on */

static bool one_of(const char *v, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return true;
	return false;
}

enum core_status gate_list(struct store *db, const struct gate_filter *f, struct json_object **out, char *err,
                           size_t errlen)
{
	static const char *const verdicts[] = {"passed", "failed", "error", "timeout", "skipped", "bypassed", NULL};
	static const char *const states[] = {"queued", "running", "done", "superseded", "error", NULL};
	*out = NULL;
	if (f->verdict && !one_of(f->verdict, verdicts)) {
		snprintf(err, errlen, "verdict must be one of passed, failed, error, timeout, skipped, bypassed");
		return CORE_EINVAL;
	}
	if (f->state && !one_of(f->state, states)) {
		snprintf(err, errlen, "state must be one of queued, running, done, superseded, error");
		return CORE_EINVAL;
	}
	int limit = f->limit <= 0 ? ROWS_LIMIT_DEFAULT : f->limit > LIST_MAX ? LIST_MAX : f->limit;
	struct store_params p = {0};
	store_param_i64_or_null(&p, f->repo_id > 0 ? f->repo_id : 0);
	store_param_i64_or_null(&p, f->mr_iid > 0 ? f->mr_iid : 0);
	store_param_str(&p, f->verdict);
	store_param_str(&p, f->state);
	store_param_i64_or_null(&p, f->before_id > 0 ? f->before_id : 0);
	store_param_i64(&p, limit + 1);
	return rows_query_page(db,
	                       "SELECT g.id, (" RUN_JSON " || jsonb_build_object('repo_gated', " GATE_BYPASS_REPO_GATED
	                       "))::text AS j FROM gate_runs g LEFT JOIN repos rp ON rp.id = g.project_id"
	                       " LEFT JOIN repo_status_stored s ON s.id = g.project_id"
	                       " WHERE ($1::bigint IS NULL OR g.project_id = $1::bigint)"
	                       " AND ($2::bigint IS NULL OR g.mr_iid = $2::bigint)"
	                       " AND ($3::text IS NULL OR g.verdict = $3) AND ($4::text IS NULL OR g.state = $4)"
	                       " AND ($5::bigint IS NULL OR g.id < $5::bigint)"
	                       " ORDER BY g.id DESC LIMIT $6::integer",
	                       &p, limit, "id", out);
}

enum core_status gate_get(struct store *db, int64_t id, struct json_object **out)
{
	struct store_params p = {0};
	store_param_i64(&p, id);
	return rows_query_one(
	    db,
	    "SELECT (" RUN_JSON " || jsonb_build_object('findings', coalesce((SELECT jsonb_agg(jsonb_build_object("
	    "'scan_type', f.scan_type, 'rule_id', f.rule_id, 'title', f.title, 'severity', f.severity,"
	    " 'path', f.path, 'line', f.line, 'excerpt', f.excerpt, 'fingerprint', f.fingerprint,"
	    " 'ignored', CASE WHEN f.ignore_id IS NULL THEN NULL"
	    "   ELSE jsonb_build_object('id', f.ignore_id, 'reason', f.ignore_reason) END) ORDER BY f.id)"
	    " FROM gate_findings f WHERE f.run_id = g.id), '[]'::jsonb),"
	    " 'repo_gated', " GATE_BYPASS_REPO_GATED "))::text AS j"
	    " FROM gate_runs g LEFT JOIN repos rp ON rp.id = g.project_id"
	    " LEFT JOIN repo_status_stored s ON s.id = g.project_id WHERE g.id = $1",
	    &p, out);
}
