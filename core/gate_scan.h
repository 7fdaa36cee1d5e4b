/*
 * core/gate_scan.h
 *    The scanning half of a gate run: the lines one MR head commit adds (GitLab's diffs, or the base and head trees
 *    where GitLab's diffs fall short) and the findings of the enabled scanners on them.
 *
 * Design: a struct gate_scan_state is filled by the run (core/gate_run.c) with what it read from the MR, then:
 *   1. gate_scan_diffs() fetches every page of the MR diffs into the added-line set; files GitLab did not send in
 *      full (collapsed, too_large, or an empty diff that is not a rename, mode change, new or deleted file) are
 *      counted as unscannable; files under ignore_paths are left out;
 *   2. gate_scan_cover() handles GitLab's diff limits (the MR's changes_count "N+", fewer entries than it
 *      announces, or unscannable files): it reads those files from the base and head trees instead (repository
 *      archives, core/treediff.h); what still cannot be read becomes a problem note;
 *   3. gate_scan_secrets() runs the secrets scanner on the added lines; gate_scan_sarif() runs the configured
 *      command of one other scan type on the head tree (repository archive at the head sha, unpacked under a size
 *      cap into a temporary directory removed by gate_scan_free) and keeps its SARIF results on added lines
 *      (core/scan_sarif.h).
 * Anything that leaves part of the change unscanned (no scanner configured for an enabled type, a scanner that
 * failed, unscannable files, SARIF results that could not be placed) is a note with problems set; the verdict
 * (core/gate_report.h) fails on it in fail-closed mode. Past deadline_ms the scan stops and sets timed_out.
 * Threading: a state belongs to one worker thread; the struct gitlab it borrows is shared and thread-safe.
 * Ownership: the state owns added, findings, notes, timings and the work directory (gate_scan_free); inputs
 * (gl, cfg, scanners, head_sha) are borrowed for its life.
 */
#ifndef MRGATE_CORE_GATE_SCAN_H
#define MRGATE_CORE_GATE_SCAN_H

#include "diff.h"
#include "findings.h"
#include "gate_config.h"
#include "gate_report.h"
#include "gitlab.h"
#include "scanrun.h"
#include "status.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gate_scan_state {
	/* inputs, borrowed; set by the caller before gate_scan_init */
	struct gitlab *gl;
	const struct gate_config *cfg;
	const char *const *scanners; /* [GATE_SCAN_COUNT] command lines; NULL or "" = none */
	size_t tree_max_bytes;
	int64_t run_id; /* for logs */
	int64_t project_id, source_project_id, mr_iid;
	const char *head_sha;
	int64_t deadline_ms;
	char base_sha[72];      /* diff_refs.base_sha of the MR ("" when GitLab gave none) */
	char changes_count[24]; /* the MR's changes_count: "12", or "1000+" past GitLab's diff limits */

	/* results, owned */
	struct diff_added_set *added;
	struct finding_list *findings;
	/* findings set apart by an ignore in force (core/ignores.h): ignored[i] matched ignore_ids[i], whose reason is
	 * ignore_reasons[i]; not counted in the verdict */
	struct finding_list *ignored;
	int64_t *ignore_ids;
	char **ignore_reasons;
	char *notes[GATE_MAX_NOTES];
	size_t n_notes;
	size_t path_skipped; /* changed files of GitLab's diffs left unscanned by ignore_paths (deleted ones not
	                        counted) */
	bool problems;       /* some part of the change went unscanned */
	bool timed_out;
	struct json_object *timings; /* {"<phase>_ms": n} */

	/* working state */
	size_t diff_entries; /* entries the diffs API sent */
	int unscannable;
	char unscannable_first[200];
	char workdir[SCANRUN_PATH_MAX];
	bool tree_tried;
	char tree[SCANRUN_PATH_MAX + 260];
	char tree_error[300];
	char base_tree[SCANRUN_PATH_MAX + 260];
	char base_error[300];
};

/* Allocate the result containers (timings, and the added set and findings when with_sets). */
void gate_scan_init(struct gate_scan_state *s, bool with_sets);
struct ignore_set;
/* Move the findings an ignore of set matches from findings to ignored (with the ignore's id and reason). */
void gate_scan_set_apart(struct gate_scan_state *s, const struct ignore_set *set);
/* Free the results and remove the work directory. */
void gate_scan_free(struct gate_scan_state *s);

/* A note for the description and the MR note; problem: part of the change went unscanned. */
__attribute__((format(printf, 3, 4))) void gate_scan_note(struct gate_scan_state *s, bool problem, const char *fmt,
                                                          ...);
/* Record "<phase>" = milliseconds since since_ms in timings. */
void gate_scan_timing(struct gate_scan_state *s, const char *phase, int64_t since_ms);
bool gate_scan_past_deadline(const struct gate_scan_state *s);

/* Step 1: the MR diffs into s->added. err: why, on failure. */
enum core_status gate_scan_diffs(struct gate_scan_state *s, char *err, size_t errlen);
/* Step 2: what GitLab's diffs left out, from the trees (or notes saying what was not scanned). */
void gate_scan_cover(struct gate_scan_state *s);
/* Step 3: the enabled scanners, in order, until the deadline. */
void gate_scan_all(struct gate_scan_state *s);
/* Step 4: drop findings under ignore_paths. */
void gate_scan_drop_ignored(struct gate_scan_state *s);

#endif
