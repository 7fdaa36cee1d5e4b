/*
 * core/gate_report.h
 *    What a gate run says about a merge request: the verdict and its commit-status description (gate_decide), the
 *    sticky MR note's Markdown (gate_note_render) and the order findings are shown and stored in.
 *
 * Design: pure functions of the findings, the config's fail_on and the run's notes, so every verdict and every
 * note can be tested without GitLab or a database (tests/unit/test_gate_logic.c, test_gate_note.c). Text that a
 * merge request controls (paths, rule ids, titles, excerpts, scanner messages) reaches the note only through
 * gate_md_cell(), one line per cell, and no line of a note ever starts with '/': GitLab would run it as a quick
 * action with the bot's (Maintainer) role.
 * The names gate_decide / gate_note_render / gate_md_cell predate this module and are kept for their callers.
 * Threading: pure functions; thread-safe.
 * Ownership: gate_note_render's and gate_report_order's results are malloc'd and the caller's (free()); inputs are
 * borrowed.
 */
#ifndef MRGATE_CORE_GATE_REPORT_H
#define MRGATE_CORE_GATE_REPORT_H

#include "findings.h"
#include "status.h"

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define GATE_NOTE_MARKER   "<!-- mrgate:gate-note -->"
#define GATE_NOTE_MAX_ROWS 50
#define GATE_MAX_NOTES     16 /* notes a run keeps (problems and remarks) */

/* The final state the commit status gets, and the verdict recorded. */
struct gate_decision {
	const char *verdict; /* passed | failed | timeout */
	const char *state;   /* success | failed */
	char description[FINDINGS_DESCRIPTION_MAX + 1];
};
/*
 * Decide: findings (already filtered), fail_on, notes (problems and remarks), problems = some part of the change
 * went unscanned, timed_out, fail_open. fail_on never always succeeds.
 */
/* What the run set apart, none of it counted: the description says how much (a reader of the commit status would
 * otherwise read "no new findings" where the report lists ignored ones, or files were never scanned). */
struct gate_set_apart {
	size_t ignored;       /* findings that matched an editor's ignore (core/ignores.h) */
	size_t skipped_files; /* changed files the config's ignore_paths left unscanned */
};
enum core_status gate_decide(const struct finding_list *findings, enum fail_on fail_on, const char *const *notes,
                             size_t n_notes, const struct gate_set_apart *apart, bool problems, bool timed_out,
                             int timeout_s, bool fail_open, struct gate_decision *out); /* apart may be NULL */

struct gate_report {
	const char *state; /* success | failed */
	const char *description;
	const char *head_sha;
	const char *report_url; /* may be NULL */
	const struct finding_list *findings;
	const struct finding_list *ignored; /* may be NULL: findings an ignore set apart */
	const char *const *ignore_reasons;  /* [ignored->count]: why each was ignored */
	const char *const *notes;
	size_t n_notes;
	const bool *inline_shown;  /* may be NULL; [findings->count]: true = commented on its line (comment mode inline,
	                              core/gate_inline.h), left out of the note's table */
	const char *bypassed_by;   /* NULL unless the run is bypassed: who (the note is headed "bypassed") */
	const char *bypass_reason; /* with bypassed_by: why */
};
/* The sticky note's Markdown (starts with GATE_NOTE_MARKER); malloc'd, never NULL (xalloc.h). */
char *gate_note_render(const struct gate_report *r);

/* s with a Markdown escape before every '/' that starts a line (no GitLab quick action); malloc'd, never NULL. */
char *gate_note_guard(const char *s);

/*
 * Append user_text to b as one Markdown code span nothing can break out of: delimited by a run of backticks longer
 * than any inside it (CommonMark code spans), line ends and other controls as spaces, invisible and reordering
 * characters as "<U+XXXX>" (core/textsafe.h: a path must read as it is). Mentions, links, images and
 * references in it are not live on GitLab. Every text a user chose (a reason, a name, a target) that mrgate
 * writes into a note goes through it.
 */
void gate_md_code(struct buf *b, const char *user_text);

/*
 * Markdown table cell text, written into a code span: '|' escaped, control characters as spaces, invisible and
 * reordering characters as "<U+XXXX>", backticks dropped, cut to max bytes of the input. '<' and '&' stay as they
 * are: a code span shows them literally (an entity there shows as "&lt;").
 */
void gate_md_cell(const char *in, char *out, size_t cap, size_t max);

/* Indexes of l's findings, most severe first, then by path and line; malloc'd, NULL for an empty list. */
size_t *gate_report_order(const struct finding_list *l);

#endif
