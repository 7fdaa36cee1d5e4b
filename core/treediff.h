/*
 * core/treediff.h
 *    The lines a change adds, found by comparing two unpacked trees: for the files GitLab's diffs API did not give.
 *
 * Design: GitLab stores a merge request's diff under its diff limits (by default 1,000 files, 50,000 lines, 200 KiB
 * per file patch; administration/diff_limits.md, Gitlab::Git::DiffCollection): past them the later files are
 * missing from GET .../merge_requests/:iid/diffs (the MR's changes_count then reads like "1000+") and an oversized
 * file comes back too_large with an empty diff. The repository compare obeys the same limits, so it is no way
 * round them. The gate then unpacks the base and the head tree (repository archives) and calls treediff_add():
 * every regular file of the head tree whose path the set does not hold yet and whose bytes differ from the base
 * tree's file of the same path (or that the base lacks) is added to the set; its added lines are the lines whose
 * text does not occur anywhere in the base version (all lines of a new file). That is what `git diff` calls added,
 * except for lines that only moved inside the file: a moved line is not new code, so it does not count either.
 * Binary files (a NUL byte in the first 8,000 bytes, git's rule) have no added line, as in GitLab's diffs.
 * Deleted files add nothing. Symlinks and special files are skipped and never followed; directories are walked
 * with O_NOFOLLOW | O_DIRECTORY, so the walk never leaves the trees.
 * Limits: a file over DIFF_MAX_BYTES, a path over DIFF_PATH_MAX, or a file that cannot be read is not added and is
 * counted in stats->unreadable (the caller reports it and follows its fail mode).
 * Threading: no shared state. Ownership: the set stays the caller's; the strings passed are borrowed.
 */
#ifndef MRGATE_CORE_TREEDIFF_H
#define MRGATE_CORE_TREEDIFF_H

#include "diff.h"
#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct treediff_stats {
	size_t added_files;         /* changed files added to the set */
	size_t added_lines;         /* their added lines */
	size_t unreadable;          /* changed files that could not be read (too large, unreadable) */
	char first_unreadable[200]; /* the first of them */
};

/*
 * Walk head_root and add to set every changed file it does not hold (see above). base_root may be NULL or "" (an
 * empty base: every file is new). skip(path, user), when not NULL, leaves out paths (ignore_paths). Stops with
 * CORE_ETIMEOUT once the clock passes deadline_ms (0 = none); CORE_ENOMEM; CORE_ETOOLARGE when the set is full;
 * CORE_EINVAL when head_root cannot be opened. *out is filled in every case.
 */
enum core_status treediff_add(const char *base_root, const char *head_root, struct diff_added_set *set,
                              bool (*skip)(const char *path, void *user), void *user, int64_t deadline_ms,
                              struct treediff_stats *out);

#endif
