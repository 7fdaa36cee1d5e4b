/*
 * core/gate_scan.c
 *    The scanning half of a gate run: diffs, trees, scanners (see gate_scan.h).
 */
#include "gate_scan.h"

#include "gate_status.h"
#include "ignores.h"
#include "jsonx.h"
#include "log.h"
#include "scan_sarif.h"
#include "scan_secrets.h"
#include "treediff.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void gate_scan_init(struct gate_scan_state *s, bool with_sets)
{
	if (!s->timings)
		s->timings = jx_object();
	if (with_sets && !s->added)
		s->added = diff_added_set_new();
	if (with_sets && !s->findings)
		s->findings = finding_list_new();
}

void gate_scan_free(struct gate_scan_state *s)
{
	diff_added_set_free(s->added);
	finding_list_free(s->findings);
	for (size_t i = 0; s->ignored && i < s->ignored->count; i++)
		free(s->ignore_reasons[i]);
	finding_list_free(s->ignored);
	free(s->ignore_ids);
	free(s->ignore_reasons);
	s->ignored = NULL;
	s->ignore_ids = NULL;
	s->ignore_reasons = NULL;
	for (size_t i = 0; i < s->n_notes; i++)
		free(s->notes[i]);
	scanrun_rmtree(s->workdir);
	json_object_put(s->timings);
	s->added = NULL;
	s->findings = NULL;
	s->n_notes = 0;
	s->workdir[0] = '\0';
	s->timings = NULL;
}

void gate_scan_note(struct gate_scan_state *s, bool problem, const char *fmt, ...)
{
	if (problem)
		s->problems = true;
	if (s->n_notes >= GATE_MAX_NOTES)
		return;
	va_list ap;
	char text[300];
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->notes[s->n_notes++] = xstrndup(text, n < 0 ? 0 : (size_t)n);
}

void gate_scan_timing(struct gate_scan_state *s, const char *phase, int64_t since_ms)
{
	if (s->timings)
		json_object_object_add(s->timings, phase, jx_int(scanrun_now_ms() - since_ms));
}

bool gate_scan_past_deadline(const struct gate_scan_state *s)
{
	return scanrun_now_ms() >= s->deadline_ms;
}

/* --- 1. diffs --------------------------------------------------------------------------------------------------- */

static void unscannable(struct gate_scan_state *s, const char *path)
{
	if (s->unscannable++ == 0)
		snprintf(s->unscannable_first, sizeof(s->unscannable_first), "%s", path);
}

/* One entry of the diffs API into s->added (or counted unscannable). */
static enum core_status diff_entry(struct gate_scan_state *s, struct json_object *e)
{
	const char *new_path = NULL, *diff = NULL, *a_mode = NULL, *b_mode = NULL;
	bool deleted = false, added = false, renamed = false, collapsed = false, too_large = false;
	if (!jsonx_str(e, "new_path", &new_path) || !*new_path) {
		unscannable(s, "(an entry without new_path)");
		return CORE_OK;
	}
	jsonx_bool(e, "deleted_file", &deleted);
	jsonx_bool(e, "new_file", &added);
	jsonx_bool(e, "renamed_file", &renamed);
	jsonx_bool(e, "collapsed", &collapsed);
	jsonx_bool(e, "too_large", &too_large);
	jsonx_str(e, "a_mode", &a_mode);
	jsonx_str(e, "b_mode", &b_mode);
	if (gate_config_ignores(s->cfg, new_path)) {
		if (!deleted)
			s->path_skipped++;
		return CORE_OK;
	}
	if (!jsonx_str(e, "diff", &diff))
		diff = "";
	if (collapsed || too_large) {
		unscannable(s, new_path);
		return CORE_OK;
	}
	if (!*diff) {
		bool mode_change = a_mode && b_mode && strcmp(a_mode, b_mode) != 0;
		if (deleted || added || renamed || mode_change)
			return diff_added_set_add(s->added, new_path, "", 0, deleted) == CORE_ENOMEM ? CORE_ENOMEM
			                                                                             : CORE_OK;
		unscannable(s, new_path); /* GitLab left out the text of a changed file */
		return CORE_OK;
	}
	enum core_status st = diff_added_set_add(s->added, new_path, diff, strlen(diff), deleted);
	if (st == CORE_ENOMEM)
		return st;
	if (st != CORE_OK)
		unscannable(s, new_path);
	return CORE_OK;
}

static enum core_status diffs_page(struct json_object *page, void *user)
{
	struct gate_scan_state *s = user;
	size_t n = json_object_array_length(page);
	s->diff_entries += n;
	for (size_t i = 0; i < n; i++) {
		enum core_status st = diff_entry(s, json_object_array_get_idx(page, i));
		if (st != CORE_OK)
			return st;
	}
	return CORE_OK;
}

enum core_status gate_scan_diffs(struct gate_scan_state *s, char *err, size_t errlen)
{
	char path[160];
	struct gitlab_response *resp = NULL;
	int64_t t0 = scanrun_now_ms();
	snprintf(path, sizeof(path), "/projects/%lld/merge_requests/%lld/diffs?per_page=100", (long long)s->project_id,
	         (long long)s->mr_iid);
	enum core_status st = gitlab_paginate(s->gl, path, diffs_page, s, &resp);
	if (st != CORE_OK)
		snprintf(err, errlen, "could not read the merge request's diffs: %.300s", gate_status_why(resp, st));
	gitlab_response_free(resp);
	gate_scan_timing(s, "diffs_ms", t0);
	return st;
}

/* --- trees ------------------------------------------------------------------------------------------------------ */

/* How one tree is fetched: where it goes, what its errors say. */
struct tree_kind {
	const char *subdir;         /* under the work directory */
	const char *download_what;  /* "head tree": "could not download the head tree: ..." */
	const char *dir_what;       /* "tree": "could not create the tree directory" */
	const char *extract_prefix; /* before an unpacking error */
	const char *timing;         /* its phase in timings */
};
static const struct tree_kind head_kind = {"tree", "head tree", "tree", "", "tree_ms"};
static const struct tree_kind base_kind = {"base", "base tree", "base tree", "base tree: ", "base_tree_ms"};

/*
 * Download project_id's archive at sha and unpack it under the work directory into root; false (error set) on
 * failure.
 */
static bool unpack_tree(struct gate_scan_state *s, const struct tree_kind *k, int64_t project_id, const char *sha,
                        char *root, size_t root_cap, char *error, size_t error_cap)
{
	char path[200], dir[SCANRUN_PATH_MAX + 16], err[300];
	struct gitlab_response *resp = NULL;
	int64_t t0 = scanrun_now_ms();
	snprintf(path, sizeof(path), "/projects/%lld/repository/archive.tar.gz?sha=%s", (long long)project_id, sha);
	enum core_status st = gitlab_request_ex(s->gl, "GET", path, NULL, GITLAB_CALL_RAW, &resp);
	if (st != CORE_OK) {
		snprintf(error, error_cap, "could not download the %s: %.200s", k->download_what,
		         gate_status_why(resp, st));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%s", s->workdir, k->subdir);
	if (mkdir(dir, 0700) != 0) {
		snprintf(error, error_cap, "could not create the %s directory", k->dir_what);
		goto out;
	}
	st = scanrun_extract_targz(resp->body, resp->body_len, dir, s->tree_max_bytes, SCANRUN_MAX_ENTRIES,
	                           s->deadline_ms, root, root_cap, err, sizeof(err));
	if (st == CORE_ETIMEOUT)
		s->timed_out = true;
	if (st != CORE_OK) {
		root[0] = '\0';
		snprintf(error, error_cap, "%s%.280s", k->extract_prefix, err);
	}
out:
	gitlab_response_free(resp);
	gate_scan_timing(s, k->timing, t0);
	return root[0] != '\0';
}

/* Download and unpack the head tree once; false (tree_error set) when it cannot be had. */
static bool ensure_tree(struct gate_scan_state *s)
{
	char home[SCANRUN_PATH_MAX + 16];
	if (s->tree_tried)
		return s->tree[0] != '\0';
	s->tree_tried = true;
	if (scanrun_workdir(s->workdir, sizeof(s->workdir)) != CORE_OK) {
		snprintf(s->tree_error, sizeof(s->tree_error), "no temporary directory for the head tree");
		return false;
	}
	snprintf(home, sizeof(home), "%s/home", s->workdir); /* the scanners' HOME and TMPDIR */
	if (mkdir(home, 0700) != 0) {
		snprintf(s->tree_error, sizeof(s->tree_error), "could not create the tree directory");
		return false;
	}
	return unpack_tree(s, &head_kind, s->source_project_id, s->head_sha, s->tree, sizeof(s->tree), s->tree_error,
	                   sizeof(s->tree_error));
}

/* Download and unpack the base tree (diff_refs.base_sha of the target project) once; false (base_error set) when it
 * cannot be had. Needs the work directory ensure_tree() made. */
static bool ensure_base_tree(struct gate_scan_state *s)
{
	if (s->base_tree[0] || s->base_error[0])
		return s->base_tree[0] != '\0';
	if (!s->base_sha[0]) {
		snprintf(s->base_error, sizeof(s->base_error), "GitLab gave no base commit for the merge request");
		return false;
	}
	return unpack_tree(s, &base_kind, s->project_id, s->base_sha, s->base_tree, sizeof(s->base_tree), s->base_error,
	                   sizeof(s->base_error));
}

/* --- 2. what the diffs left out --------------------------------------------------------------------------------- */

static bool skip_ignored(const char *path, void *user)
{
	const struct gate_scan_state *s = user;
	return gate_config_ignores(s->cfg, path);
}

/* Compare the trees into s->added; CORE_OK with notes, or why it could not be done in why. */
static enum core_status cover_from_trees(struct gate_scan_state *s, const char *what, char *why, size_t whylen)
{
	if (!ensure_tree(s)) {
		snprintf(why, whylen, "%s", s->tree_error);
		return CORE_ENOTFOUND;
	}
	if (!ensure_base_tree(s)) {
		snprintf(why, whylen, "%s", s->base_error);
		return CORE_ENOTFOUND;
	}
	struct treediff_stats ts;
	int64_t t0 = scanrun_now_ms();
	enum core_status st = treediff_add(s->base_tree, s->tree, s->added, skip_ignored, s, s->deadline_ms, &ts);
	gate_scan_timing(s, "treediff_ms", t0);
	if (st != CORE_OK) {
		if (st == CORE_ETIMEOUT)
			s->timed_out = true;
		snprintf(why, whylen, "the trees could not be compared (%s)", core_status_code(st));
		return st;
	}
	gate_scan_note(s, false, "%s: %zu file%s scanned from the repository trees instead", what, ts.added_files,
	               ts.added_files == 1 ? "" : "s");
	if (ts.unreadable > 0)
		gate_scan_note(s, true, "%zu changed file%s not scanned (unreadable in the head tree, e.g. %.120s)",
		               ts.unreadable, ts.unreadable == 1 ? "" : "s", ts.first_unreadable);
	return CORE_OK;
}

/*
 * GitLab's diff limits (core/treediff.h): past an overflow the MR's changes_count reads "N+" and later files are
 * missing from the diffs; oversized files come without their text. Those files are scanned from the base and head
 * trees instead; whatever still cannot be read is a problem in the description (and fails by the fail mode).
 */
void gate_scan_cover(struct gate_scan_state *s)
{
	size_t n = strlen(s->changes_count);
	char *end = NULL;
	unsigned long long announced = n ? strtoull(s->changes_count, &end, 10) : 0;
	bool overflow = (n && s->changes_count[n - 1] == '+') || (end && *end == '\0' && announced > s->diff_entries);
	if (!overflow && s->unscannable == 0)
		return;
	char what[200], why[320];
	if (overflow)
		snprintf(what, sizeof(what), "GitLab's diff stopped at its limits (%s files changed, %zu sent)",
		         s->changes_count, s->diff_entries);
	else
		snprintf(what, sizeof(what), "%d file%s came without a full diff (e.g. %.120s)", s->unscannable,
		         s->unscannable == 1 ? "" : "s", s->unscannable_first);
	if (cover_from_trees(s, what, why, sizeof(why)) == CORE_OK)
		return;
	if (overflow)
		gate_scan_note(s, true, "files past the first %zu not scanned (GitLab's diff limits; %.160s)",
		               s->diff_entries, why);
	else
		gate_scan_note(s, true, "%d file%s not scanned (GitLab sent no full diff, e.g. %.100s; %.160s)",
		               s->unscannable, s->unscannable == 1 ? "" : "s", s->unscannable_first, why);
}

/* --- 3. scanners ------------------------------------------------------------------------------------------------ */

/* The SARIF a scanner printed, into s->findings (or notes saying why not). */
static void read_sarif(struct gate_scan_state *s, const char *type, const struct scanrun_result *res)
{
	struct scan_sarif_options opt = {.scan_type = type, .added = s->added, .root = s->tree};
	struct scan_sarif_stats stats;
	memset(&stats, 0, sizeof(stats));
	enum core_status st = scan_sarif_parse(&opt, res->out, res->out_len, s->findings, &stats);
	if (st == CORE_ENOMEM || st == CORE_ETOOLARGE) {
		gate_scan_note(s, true, "%s: too many findings to count", type);
	} else if (st != CORE_OK) {
		gate_scan_note(s, true, "%s: the scanner failed (exit %d)%s%.160s", type, res->exit_code,
		               res->err_tail[0] ? ": " : "", res->err_tail);
	} else {
		if (stats.invalid > 0)
			gate_scan_note(s, true, "%s: %zu result%s could not be read", type, stats.invalid,
			               stats.invalid == 1 ? "" : "s");
		log_info("gate run %lld: %s scanner exit %d, %zu results, %zu on added lines, %zu elsewhere, %zu "
		         "without location, %zu skipped, %zu invalid",
		         (long long)s->run_id, type, res->exit_code, stats.results, stats.kept, stats.not_added,
		         stats.no_location, stats.skipped, stats.invalid);
	}
}

static void run_sarif_scanner(struct gate_scan_state *s, enum gate_scan k)
{
	const char *type = gate_scan_names[k];
	const char *cmd = s->scanners[k];
	if (!cmd || !*cmd) {
		gate_scan_note(s, true, "%s: no scanner configured", type);
		return;
	}
	if (!ensure_tree(s)) {
		gate_scan_note(s, true, "%s: not run (%s)", type, s->tree_error);
		return;
	}
	if (gate_scan_past_deadline(s)) {
		s->timed_out = true;
		return;
	}
	int64_t t0 = scanrun_now_ms();
	char home[SCANRUN_PATH_MAX + 16], e_type[64], e_tree[SCANRUN_PATH_MAX + 300], e_sha[100], phase[48];
	snprintf(home, sizeof(home), "%s/home", s->workdir);
	snprintf(e_type, sizeof(e_type), "MRGATE_SCAN_TYPE=%s", type);
	snprintf(e_tree, sizeof(e_tree), "MRGATE_SCAN_TREE=%s", s->tree);
	snprintf(e_sha, sizeof(e_sha), "MRGATE_SCAN_HEAD_SHA=%s", s->head_sha);
	const char *extra[] = {e_type, e_tree, e_sha, NULL};
	struct scanrun_result res;
	enum core_status st = scanrun_command(cmd, s->tree, home, extra, s->deadline_ms, SCAN_SARIF_MAX_BYTES, &res);
	snprintf(phase, sizeof(phase), "%s_ms", type);
	gate_scan_timing(s, phase, t0);
	if (st != CORE_OK) {
		gate_scan_note(s, true, "%s: the scanner could not be started", type);
		return;
	}
	if (res.timed_out)
		s->timed_out = true;
	else if (res.out_truncated)
		gate_scan_note(s, true, "%s: scanner output over %u MiB", type, SCAN_SARIF_MAX_BYTES >> 20);
	else
		read_sarif(s, type, &res);
	scanrun_result_clear(&res);
}

void gate_scan_all(struct gate_scan_state *s)
{
	if (s->cfg->scans[GATE_SCAN_SECRETS]) {
		int64_t t0 = scanrun_now_ms();
		enum core_status st = scan_secrets_set(s->added, s->findings);
		gate_scan_timing(s, "secrets_ms", t0);
		if (st != CORE_OK)
			gate_scan_note(s, true, "secrets: the scan failed (%s)", core_status_code(st));
	}
	for (int k = GATE_SCAN_SAST; k < GATE_SCAN_COUNT && !s->timed_out; k++) {
		if (gate_scan_past_deadline(s))
			s->timed_out = true;
		else if (s->cfg->scans[k])
			run_sarif_scanner(s, (enum gate_scan)k);
	}
	if (gate_scan_past_deadline(s))
		s->timed_out = true;
}

void gate_scan_set_apart(struct gate_scan_state *s, const struct ignore_set *set)
{
	if (!set->n)
		return;
	if (!s->ignored)
		s->ignored = finding_list_new();
	for (size_t i = 0; i < s->findings->count;) {
		const struct ignore_rule *g = ignores_match(set, &s->findings->items[i]);
		if (!g || finding_list_append(s->ignored, &s->findings->items[i]) != CORE_OK) {
			i++;
			continue;
		}
		size_t n = s->ignored->count;
		s->ignore_ids = xrealloc(s->ignore_ids, n * sizeof(*s->ignore_ids));
		s->ignore_reasons = xrealloc(s->ignore_reasons, n * sizeof(*s->ignore_reasons));
		s->ignore_ids[n - 1] = g->id;
		s->ignore_reasons[n - 1] = xstrdup(g->reason);
		finding_list_remove(s->findings, i);
	}
}

void gate_scan_drop_ignored(struct gate_scan_state *s)
{
	for (size_t i = s->findings->count; i-- > 0;)
		if (gate_config_ignores(s->cfg, s->findings->items[i].path))
			finding_list_remove(s->findings, i);
}
