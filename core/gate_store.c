/*
 * core/gate_store.c
 *    A gate run's results in the database (see gate_store.h).
 */
#include "gate_store.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define MAX_STORED_FINDINGS 5000

/* Replace invalid UTF-8 by '?' (PostgreSQL refuses it) into a new string (malloc'd). */
static char *utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *o = xmalloc(n + 1);
	size_t i = 0, j = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)s[i + k] >> 6) == 2;
		if (ok) {
			memcpy(o + j, s + i, len);
			j += len;
			i += len;
		} else {
			o[j++] = '?';
			i++;
		}
	}
	o[j] = '\0';
	return o;
}

static struct json_object *jx_clean(const char *v)
{
	char *c = utf8_clean(v ? v : "");
	struct json_object *o = jx_str(c);
	free(c);
	return o;
}

static struct json_object *counts_json(const struct finding_list *l)
{
	size_t counts[SEV_CRITICAL + 1];
	findings_count(l, counts);
	struct json_object *o = jx_object();
	json_object_object_add(o, "critical", jx_int((int64_t)counts[SEV_CRITICAL]));
	json_object_object_add(o, "high", jx_int((int64_t)counts[SEV_HIGH]));
	json_object_object_add(o, "medium", jx_int((int64_t)counts[SEV_MEDIUM]));
	json_object_object_add(o, "low", jx_int((int64_t)counts[SEV_LOW]));
	json_object_object_add(o, "total", jx_int((int64_t)counts[0]));
	return o;
}

/* The findings as stored (most severe first, at most MAX_STORED_FINDINGS), text made valid UTF-8. */
/* The findings as rows for gate_findings into arr; ids/reasons: the ignores that set them apart (NULL: none). */
static struct json_object *findings_json(struct json_object *arr, const struct finding_list *l, const int64_t *ids,
                                         char *const *reasons)
{
	if (!l)
		return arr;
	size_t *idx = gate_report_order(l);
	size_t n = l->count < MAX_STORED_FINDINGS ? l->count : MAX_STORED_FINDINGS;
	for (size_t i = 0; i < n; i++) {
		const struct finding *f = &l->items[idx[i]];
		struct json_object *o = jx_object();
		json_object_object_add(o, "scan_type", jx_clean(f->scan_type));
		json_object_object_add(o, "rule_id", jx_clean(f->rule_id));
		json_object_object_add(o, "title", jx_clean(f->title));
		json_object_object_add(o, "severity", jx_str(severity_name(f->severity)));
		json_object_object_add(o, "path", jx_clean(f->path));
		json_object_object_add(o, "line", jx_int(f->line > 0 && f->line < 2147483647 ? f->line : 0));
		json_object_object_add(o, "excerpt", jx_clean(f->excerpt));
		json_object_object_add(o, "fingerprint", jx_str(f->fingerprint));
		if (ids) {
			json_object_object_add(o, "ignore_id", json_object_new_int64(ids[idx[i]]));
			json_object_object_add(o, "ignore_reason", jx_clean(reasons[idx[i]]));
		}
		json_object_array_add(arr, o);
	}
	free(idx);
	return arr;
}

static const char *plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

enum core_status gate_store_results(struct store *db, int64_t run_id, const char *owner, const struct gate_decision *d,
                                    const struct gate_config *cfg, const struct gate_scan_state *scan)
{
	struct store_conn *c = NULL;
	struct json_object *arr = findings_json(findings_json(jx_array(), scan->findings, NULL, NULL), scan->ignored,
	                                        scan->ignore_ids, scan->ignore_reasons),
	                   *counts = counts_json(scan->findings), *notes = jx_array(), *scans = jx_array();
	json_object_object_add(counts, "ignored", jx_int(scan->ignored ? (int64_t)scan->ignored->count : 0));
	for (size_t i = 0; i < scan->n_notes; i++)
		json_object_array_add(notes, jx_clean(scan->notes[i]));
	for (int k = 0; k < GATE_SCAN_COUNT; k++)
		if (cfg->scans[k])
			json_object_array_add(scans, jx_str(gate_scan_names[k]));
	char *desc = utf8_clean(d->description);
	struct store_params pd = {0}, pf = {0}, pr = {0};
	store_param_i64(&pd, run_id);
	store_param_i64(&pf, run_id);
	store_param_str(&pf, plain(arr));
	store_param_i64(&pr, run_id);
	store_param_str(&pr, owner);
	store_param_str(&pr, d->verdict);
	store_param_str(&pr, desc);
	store_param_str(&pr, plain(counts));
	store_param_str(&pr, plain(notes));
	store_param_str(&pr, fail_on_name(cfg->fail_on));
	store_param_str(&pr, plain(scans));
	store_param_str(&pr, plain(scan->timings));
	enum core_status st = store_get(db, &c);
	if (st == CORE_OK)
		st = store_begin(c);
	if (st == CORE_OK)
		st = store_run(c, "DELETE FROM gate_findings WHERE run_id = $1", &pd, NULL);
	if (st == CORE_OK)
		st = store_run(
		    c,
		    "INSERT INTO gate_findings (run_id, scan_type, rule_id, title, severity, path, line, excerpt,"
		    " fingerprint, ignore_id, ignore_reason) SELECT $1, x.scan_type, x.rule_id, x.title, x.severity,"
		    " x.path, x.line, x.excerpt, x.fingerprint, x.ignore_id, x.ignore_reason"
		    " FROM jsonb_to_recordset($2::jsonb) AS x(scan_type text, rule_id text, title text, severity text,"
		    " path text, line integer, excerpt text, fingerprint text, ignore_id bigint, ignore_reason text)",
		    &pf, NULL);
	if (st == CORE_OK)
		st = store_run(
		    c,
		    "UPDATE gate_runs SET verdict = $3, description = $4, counts = $5::jsonb, notes = $6::jsonb,"
		    " fail_on = $7, scans = ARRAY(SELECT jsonb_array_elements_text($8::jsonb)),"
		    " timings = $9::jsonb, error = NULL WHERE id = $1 AND lease_owner = $2",
		    &pr, NULL);
	if (st == CORE_OK)
		st = store_commit(c);
	else if (c)
		store_rollback(c);
	store_put(db, c);
	free(desc);
	json_object_put(arr);
	json_object_put(counts);
	json_object_put(notes);
	json_object_put(scans);
	return st;
}
