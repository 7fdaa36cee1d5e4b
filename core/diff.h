/*
 * core/diff.h
 *    The lines a merge request adds: parse GitLab unified diffs, and a per-path set of added line numbers.
 *
 * Design: GitLab's GET /projects/:id/merge_requests/:iid/diffs returns one entry per file whose "diff" string is a
 * unified diff without the file header: hunks "@@ -a[,b] +c[,d] @@ [section]" followed by lines that start with
 * ' ' (context), '+' (added), '-' (removed) or '\' ("\ No newline at end of file"). diff_added_parse() keeps the
 * added lines with their line numbers in the new file. It also accepts a full "diff --git" / "---" / "+++" header
 * before the first hunk (raw_diffs, unidiff): anything outside a hunk that is not a hunk header is skipped, and a
 * hunk ends when its old and new line counts are used up. CRLF line ends are accepted (the '\r' is dropped from the
 * text). An empty line inside a hunk counts as an empty context line (some tools strip the lone space). A line
 * inside a hunk that starts with anything else, a bad hunk header, or more lines than a hunk announced is
 * CORE_EINVAL: the caller fails closed rather than gating on a guess. New files are one hunk of '+' lines, deleted
 * files have no added line, binary files ("Binary files ... differ") and empty diffs have none.
 * A diff_added_set maps each path (the entry's new_path, so renames are looked up by their new name) to its added
 * lines; the SARIF importer asks diff_added_has() whether a finding sits on an added line.
 * Limits: DIFF_MAX_BYTES per file diff and DIFF_SET_MAX_BYTES / DIFF_SET_MAX_FILES per set, checked before
 * allocating (CORE_ETOOLARGE).
 * Threading: no shared state. A set is not locked: fill it from one thread, then any number of threads may read.
 * Ownership: a struct diff_added and its line texts belong to whoever got it from diff_added_parse() (free with
 * diff_added_free()), or to the set it was added to. Pointers the set returns are borrowed from the set.
 */
#ifndef MRGATE_CORE_DIFF_H
#define MRGATE_CORE_DIFF_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

#define DIFF_MAX_BYTES     (16u * 1024 * 1024)  /* one file's diff text */
#define DIFF_SET_MAX_BYTES (256u * 1024 * 1024) /* all diff texts of one set together */
#define DIFF_SET_MAX_FILES 100000
#define DIFF_PATH_MAX      4096

struct diff_line {
	long line;        /* 1-based line number in the new file */
	const char *text; /* the line without its '+' and line end, NUL-terminated (a NUL inside is kept as is) */
	size_t len;       /* bytes of text */
};

struct diff_added {
	struct diff_line *lines; /* in diff order, so line numbers ascend */
	size_t count;
	char *storage; /* internal: the texts */
};

/*
 * Parse one file's unified diff (len bytes; need not be NUL-terminated) into its added lines.
 * CORE_ETOOLARGE when len > DIFF_MAX_BYTES, CORE_EINVAL when malformed, CORE_ENOMEM.
 */
enum core_status diff_added_parse(const char *diff, size_t len, struct diff_added **out);
void diff_added_free(struct diff_added *a); /* NULL is fine */
/* Binary search: the added line with number line, or NULL (borrowed). */
const struct diff_line *diff_added_find(const struct diff_added *a, long line);

struct diff_added_set;

struct diff_added_set *diff_added_set_new(void);    /* NULL when out of memory */
void diff_added_set_free(struct diff_added_set *s); /* NULL is fine */

/*
 * Parse one file's diff and record its added lines under path (use the entry's new_path). When path is already in
 * the set (a diff split over pages), the lines are merged. deleted_file true records the path with no lines.
 * Paths longer than DIFF_PATH_MAX or empty are CORE_EINVAL.
 */
enum core_status diff_added_set_add(struct diff_added_set *s, const char *path, const char *diff, size_t len,
                                    bool deleted_file);

struct json_object;
/*
 * Add every entry of a GitLab MR diffs array (json-c array of {new_path, diff, deleted_file, ...}). Entries whose
 * fields have the wrong type are CORE_EINVAL: a diff the gate cannot read must not pass.
 */
enum core_status diff_added_set_add_gitlab(struct diff_added_set *s, const struct json_object *diffs);

/* True iff the set holds an added line number line for path. NULL set or path is false. */
bool diff_added_has(const struct diff_added_set *s, const char *path, long line);
/* The added lines of path, or NULL when the path is not in the set (borrowed). */
const struct diff_added *diff_added_set_get(const struct diff_added_set *s, const char *path);
/* Number of paths in the set; path_at returns the i-th path in byte order (borrowed) or NULL. */
size_t diff_added_set_count(const struct diff_added_set *s);
const char *diff_added_set_path_at(const struct diff_added_set *s, size_t i);

#endif
