/*
 * core/gate_inline.h
 *    The comment mode "inline": one GitLab discussion per new finding, positioned on the line the merge request adds,
 *    at most GATE_INLINE_MAX per merge request; the sticky note (core/gate_report.h) lists the rest.
 *
 * Design: a gate run in inline mode calls gate_inline_sync() after its verdict is posted. It reads the MR's diff_refs
 * (base, start and head sha: GitLab's position must name the diff version it is on, doc/api/discussions.md "Create a
 * new thread in the merge request diff"), loads what earlier runs posted on this MR (table gate_discussions: one row
 * per MR and fingerprint), decides with the pure gate_inline_plan(), then talks to GitLab:
 *   - a finding that already has its discussion is left as it is (a redelivery, a re-run or a later push with the
 *     finding still there posts nothing again); one mrgate resolved earlier that comes back is reopened;
 *   - a new finding with a path and a line gets a new discussion (position_type text, new_path, old_path, new_line:
 *     a comment on an added line), most severe first, while fewer than GATE_INLINE_MAX are shown on their lines;
 *   - an open discussion whose finding is gone (fixed, or now ignored) is resolved (PUT resolved=true).
 * A finding GitLab refuses to place (400: the line is not in GitLab's diff, e.g. a file read from the trees past
 * GitLab's diff limits) stays in the sticky note. Each posted discussion's id is stored at once (autocommit). Before
 * posting anything new, and after a POST that may have reached GitLab without an answer, the MR's discussions are
 * read and every one whose body starts with the marker of a fingerprint the table misses is adopted (recorded as
 * found): a run that died between GitLab's answer and the table posts nothing twice; when they cannot be read,
 * nothing new is posted. Runs of one MR are serialized by a session advisory lock held on one pooled connection (no
 * second connection is taken while it is held).
 * Threading: gate_inline_sync() runs in the gate worker's thread; the pure functions are thread-safe.
 * Ownership: gate_inline_sync()'s result and gate_inline_body()'s are malloc'd and the caller's (free()); inputs
 * are borrowed; gate_inline_plan_clear() frees a plan's arrays.
 */
#ifndef MRGATE_CORE_GATE_INLINE_H
#define MRGATE_CORE_GATE_INLINE_H

#include "findings.h"
#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATE_INLINE_MAX    20                     /* discussions shown on their lines per MR */
#define GATE_INLINE_MARKER "<!-- mrgate:finding " /* a discussion body starts with it, the fingerprint and " -->" */

/* What an earlier run left on the MR for one fingerprint (a row of gate_discussions). */
struct gate_inline_record {
	char fingerprint[FINDING_FINGERPRINT_LEN + 1];
	char discussion_id[65];
	bool resolved;         /* as mrgate last set or saw it */
	bool resolved_by_gate; /* mrgate resolved it after a push removed the finding */
};

enum gate_inline_action {
	GATE_INLINE_NOTE = 0, /* not on its line: listed in the sticky note */
	GATE_INLINE_KEEP,     /* its discussion exists: nothing to post */
	GATE_INLINE_REOPEN,   /* its discussion was resolved by mrgate and the finding is back: reopen it */
	GATE_INLINE_POST      /* open a new discussion on its line */
};

struct gate_inline_plan {
	enum gate_inline_action *action; /* [findings->count], owned */
	size_t *resolve;                 /* indexes into the records to resolve, owned */
	size_t n_resolve;
};

/*
 * Pure: what to do for findings given the records of earlier runs. Findings that have a record keep (or reopen)
 * their discussion; then new findings that can be placed (gate_inline_placeable), most severe first
 * (gate_report_order), get one while fewer than max are on their lines; a second finding with a fingerprint already
 * seen stays in the note. Records that are open and whose fingerprint no finding has are resolved. max 0: nothing is
 * posted or reopened, only resolved.
 */
void gate_inline_plan(const struct finding_list *findings, const struct gate_inline_record *recs, size_t n_recs,
                      size_t max, struct gate_inline_plan *out);
void gate_inline_plan_clear(struct gate_inline_plan *p); /* a zeroed plan is fine */

/* A finding can be commented on its line: a path, a line >= 1, a well-formed fingerprint. */
bool gate_inline_placeable(const struct finding *f);

/*
 * The discussion's Markdown: the marker with f's fingerprint, severity, scan, rule, title and excerpt (as Markdown
 * cells: no line of it starts with '/', GitLab would run it as a quick action), and a link to the report (may be
 * NULL). malloc'd, never NULL.
 */
char *gate_inline_body(const struct finding *f, const char *report_url);

/* The merge request a run comments on. */
struct gate_inline_target {
	int64_t run_id; /* for logs */
	int64_t project_id, mr_iid;
	const char *head_sha; /* the run's head: positions are posted only while it is the MR's head */
	const char *report_url;
	bool post; /* comment mode inline: open (and reopen) threads; false: only resolve those whose finding is gone
	              (a repo that left the inline mode), and the note lists every finding */
};

/*
 * Bring the MR's discussions to the findings (see the design above). Returns a malloc'd bool[findings->count]:
 * true = the finding is shown on its line (the sticky note leaves it out); NULL when findings is empty or nothing
 * is shown inline (always when t->post is false; then an MR without an open thread of mrgate's costs one query and
 * no GitLab call). Failures are logged, never fatal: what could not be placed is in the note.
 */
bool *gate_inline_sync(struct store *db, struct gitlab *gl, const struct gate_inline_target *t,
                       const struct finding_list *findings);

#endif
