/*
 * core/gate_report.c
 *    The verdict, its description and the sticky note's Markdown (see gate_report.h).
 */
#include "gate_report.h"

#include "buf.h"
#include "textsafe.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum core_status gate_decide(const struct finding_list *findings, enum fail_on fail_on, const char *const *notes,
                             size_t n_notes, const struct gate_set_apart *apart, bool problems, bool timed_out,
                             int timeout_s, bool fail_open, struct gate_decision *out)
{
	const char *all[GATE_MAX_NOTES + 4];
	char tmo[64], ign[48], skipped[96];
	size_t n = 0;
	memset(out, 0, sizeof(*out));
	if (apart && apart->ignored) {
		snprintf(ign, sizeof(ign), "%zu ignored", apart->ignored);
		all[n++] = ign;
	}
	if (apart && apart->skipped_files) {
		snprintf(skipped, sizeof(skipped), "%zu changed file%s not scanned (ignore_paths)",
		         apart->skipped_files, apart->skipped_files == 1 ? "" : "s");
		all[n++] = skipped;
	}
	if (timed_out) {
		snprintf(tmo, sizeof(tmo), "timed out after %d s", timeout_s);
		all[n++] = tmo;
	}
	for (size_t i = 0; i < n_notes && n < GATE_MAX_NOTES; i++)
		all[n++] = notes[i];
	bool unscanned = problems || timed_out;
	if (unscanned && fail_on != FAIL_ON_NEVER)
		all[n++] = fail_open ? "fail-open" : "fail-closed";
	bool failed = fail_on != FAIL_ON_NEVER && (findings_failed(findings, fail_on) || (unscanned && !fail_open));
	out->verdict = timed_out ? "timeout" : failed ? "failed" : "passed";
	out->state = failed ? "failed" : "success";
	return findings_describe(findings, fail_on, all, n, out->description, sizeof(out->description));
}

void gate_md_cell(const char *in, char *out, size_t cap, size_t max)
{
	size_t j = 0, len = in ? strlen(in) : 0;
	if (max > len)
		max = len;
	size_t cut = findings_utf8_cut(in ? in : "", len, max);
	for (size_t i = 0; i < cut && j + 3 < cap; i++) {
		unsigned char ch = (unsigned char)in[i];
		long cp = 0;
		size_t inv = textsafe_invisible(in + i, in + cut, &cp);
		if (ch == '`')
			continue;
		if (inv) { /* shown, never obeyed: "<U+202E>" */
			int w = snprintf(out + j, cap - j, "<U+%04lX>", cp);
			if (w < 0 || (size_t)w >= cap - j)
				break;
			j += (size_t)w;
			i += inv - 1;
		} else if (ch == '|') {
			out[j++] = '\\';
			out[j++] = '|';
		} else if (ch < 0x20 || ch == 0x7f) {
			out[j++] = ' ';
		} else {
			out[j++] =
			    (char)ch; /* "<" too: the cells are code spans, where Markdown reads no HTML or entity */
		}
	}
	if (cut < len && j + 4 < cap) {
		memcpy(out + j, "\xe2\x80\xa6", 3); /* … */
		j += 3;
	}
	out[j] = '\0';
}

static int by_severity(const void *a, const void *b, void *list)
{
	const struct finding_list *l = list;
	const struct finding *fa = &l->items[*(const size_t *)a];
	const struct finding *fb = &l->items[*(const size_t *)b];
	if (fa->severity != fb->severity)
		return fa->severity > fb->severity ? -1 : 1;
	int c = strcmp(fa->path, fb->path);
	if (c)
		return c;
	if (fa->line != fb->line)
		return fa->line < fb->line ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

size_t *gate_report_order(const struct finding_list *l)
{
	if (!l || l->count == 0)
		return NULL;
	size_t *idx = xcalloc(l->count, sizeof(size_t));
	for (size_t i = 0; i < l->count; i++)
		idx[i] = i;
	qsort_r(idx, l->count, sizeof(size_t), by_severity, (void *)l);
	return idx;
}

/*
 * GitLab runs quick actions (/merge, /approve, /label, ...) from the lines of a note its author may run them, and
 * mrgate's bot is a Maintainer: no line of the note may start with '/'. Cells are already flattened to one line
 * (gate_md_cell); this pass makes it true by construction: a line that would start with '/' gets a Markdown escape
 * ("\/" renders as "/"). Returns a new string (malloc'd).
 */
char *gate_note_guard(const char *s)
{
	struct buf o = {0};
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '/' && (i == 0 || s[i - 1] == '\n' || s[i - 1] == '\r'))
			buf_putc(&o, '\\');
		buf_putc(&o, s[i]);
	}
	return buf_steal(&o);
}

/* The findings table, most severe first, at most GATE_NOTE_MAX_ROWS rows; findings skip[i] (may be NULL) left out. */
static void render_findings(struct buf *b, const struct finding_list *l, const bool *skip)
{
	char cell[1200], cell2[1200], cell3[400];
	size_t *idx = gate_report_order(l), n = 0;
	for (size_t i = 0; i < l->count; i++) /* keep the order, drop the skipped */
		if (!skip || !skip[idx[i]])
			idx[n++] = idx[i];
	if (n == 0) {
		free(idx);
		return;
	}
	buf_puts(b, "| Severity | Scan | Rule | Location | Finding | Fingerprint |\n|---|---|---|---|---|---|\n");
	size_t shown = n < GATE_NOTE_MAX_ROWS ? n : GATE_NOTE_MAX_ROWS;
	for (size_t i = 0; i < shown; i++) {
		const struct finding *f = &l->items[idx[i]];
		gate_md_cell(f->path, cell, sizeof(cell), 200);
		gate_md_cell(f->title, cell2, sizeof(cell2), 200);
		gate_md_cell(f->rule_id, cell3, sizeof(cell3), 80);
		/* a rule id, path and title can come from the merge request (file names, a repo's own scanner rules):
		 * code spans, whose backticks gate_md_cell dropped, so no mention or link of theirs is live */
		buf_printf(b, "| %s | %s | `%s` | `%s:%ld` | `%s`", severity_name(f->severity), f->scan_type, cell3,
		           cell, f->line, cell2);
		if (f->excerpt && *f->excerpt) {
			gate_md_cell(f->excerpt, cell, sizeof(cell), 160);
			buf_printf(b, " `%s`", cell);
		}
		gate_md_cell(f->fingerprint, cell, sizeof(cell), FINDING_FINGERPRINT_LEN);
		buf_printf(b, " | `%s` |\n", cell);
	}
	if (n > shown)
		buf_printf(b, "\n… and %zu more finding%s: see the full report.\n", n - shown,
		           n - shown == 1 ? "" : "s");
	buf_puts(b, "\nTo ignore a finding: a Maintainer comments `/mrgate ignore <fingerprint> <reason>` (12 or more "
	            "of its first characters will do).\n");
	free(idx);
}

void gate_md_code(struct buf *b, const char *user_text)
{
	/* a run of backticks longer than any inside the text delimits it (CommonMark code spans); line ends and other
	 * controls become spaces, so the text stays on the line mrgate began */
	size_t run = 0, longest = 0;
	for (const char *p = user_text; *p; p++) {
		run = *p == '`' ? run + 1 : 0;
		longest = run > longest ? run : longest;
	}
	for (size_t i = 0; i <= longest; i++)
		buf_putc(b, '`');
	buf_putc(b, ' ');
	const char *end = user_text + strlen(user_text);
	for (const char *p = user_text; *p; p++) {
		long cp = 0;
		size_t inv = textsafe_invisible(p, end, &cp);
		if (inv) {
			buf_printf(b, "<U+%04lX>", cp);
			p += inv - 1;
		} else {
			buf_putc(b, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
		}
	}
	buf_putc(b, ' ');
	for (size_t i = 0; i <= longest; i++)
		buf_putc(b, '`');
}

/* The headline and the line under it: failed, passed (saying when ignores set findings apart) or bypassed (who and
 * why as code spans: a reason is user text, never live Markdown). */
static void render_head(struct buf *b, const struct gate_report *r)
{
	bool ok = strcmp(r->state, "success") == 0;
	size_t n_ignored = r->ignored ? r->ignored->count : 0;
	buf_printf(b, "%s\n### %s mrgate: ", GATE_NOTE_MARKER, ok ? ":white_check_mark:" : ":x:");
	if (r->bypassed_by) {
		buf_puts(b, "bypassed\n\nBypassed by ");
		gate_md_code(b, r->bypassed_by);
		buf_puts(b, ": ");
		gate_md_code(b, r->bypass_reason ? r->bypass_reason : "");
		buf_puts(b, "\n\n");
		return;
	}
	if (ok && n_ignored > 0)
		buf_printf(b, "passed: %zu finding%s ignored", n_ignored, n_ignored == 1 ? "" : "s");
	else
		buf_puts(b, ok ? "passed" : "failed");
	/* the description can name files of the merge request (its notes): a code span */
	buf_puts(b, "\n\n**");
	gate_md_code(b, r->description ? r->description : "");
	buf_puts(b, "**\n\n");
}

char *gate_note_render(const struct gate_report *r)
{
	struct buf b = {0};
	char sha[16];
	snprintf(sha, sizeof(sha), "%.12s", r->head_sha ? r->head_sha : "");
	render_head(&b, r);
	buf_printf(&b, "Head commit `%s`", sha);
	if (r->report_url && *r->report_url)
		buf_printf(&b, " · [full report](%s)", r->report_url);
	buf_puts(&b, "\n\n");
	if (!r->findings || r->findings->count == 0)
		buf_puts(&b, r->ignored && r->ignored->count > 0
		                 ? "No new findings counted on the lines this merge request adds.\n"
		                 : "No new findings on the lines this merge request adds.\n");
	else {
		size_t on_line = 0;
		for (size_t i = 0; r->inline_shown && i < r->findings->count; i++)
			on_line += r->inline_shown[i];
		if (on_line > 0)
			buf_printf(&b,
			           "**%zu finding%s commented on %s line%s** (a thread is resolved when a push removes "
			           "its finding).\n\n",
			           on_line, on_line == 1 ? "" : "s", on_line == 1 ? "its" : "their",
			           on_line == 1 ? "" : "s");
		render_findings(&b, r->findings, r->inline_shown);
	}
	if (r->ignored && r->ignored->count > 0) {
		/* set apart by an editor's ignore: listed with its reason, not counted */
		buf_printf(&b, "\n**Ignored (%zu, not counted)**\n\n", r->ignored->count);
		size_t n = r->ignored->count < GATE_NOTE_MAX_ROWS ? r->ignored->count : GATE_NOTE_MAX_ROWS;
		for (size_t i = 0; i < n; i++) {
			const struct finding *f = &r->ignored->items[i];
			/* every text an editor or a scanner chose is a code span: no mention (@all), link, image or
			 * label reference of it is live in the note */
			struct buf where = {0};
			buf_printf(&where, "%s:%ld", f->path, f->line);
			buf_printf(&b, "- %s ", severity_name(f->severity));
			gate_md_code(&b, f->rule_id);
			buf_putc(&b, ' ');
			gate_md_code(&b, buf_str(&where));
			buf_puts(&b, ": ");
			gate_md_code(&b, r->ignore_reasons ? r->ignore_reasons[i] : "");
			buf_putc(&b, '\n');
			buf_free(&where);
		}
		if (r->ignored->count > n)
			buf_printf(&b, "- … and %zu more: see the full report.\n", r->ignored->count - n);
	}
	if (r->n_notes > 0) {
		buf_puts(&b, "\n**Notes**\n\n");
		for (size_t i = 0; i < r->n_notes; i++) {
			buf_puts(&b, "- "); /* a scanner's message, file names of the MR: inert */
			gate_md_code(&b, r->notes[i]);
			buf_putc(&b, '\n');
		}
	}
	buf_puts(&b, "\n<sub>This comment is edited in place on every push.</sub>\n");
	char *note = gate_note_guard(buf_str(&b));
	buf_free(&b);
	return note;
}
