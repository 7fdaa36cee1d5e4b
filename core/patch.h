/*
 * core/patch.h
 *    Split a multi-file unified diff (`git diff`, `git format-patch`, `diff -ru`) into the per-file diffs that
 *    core/diff.h reads, and add them to a diff_added_set: what `mrgate scan --diff` scans.
 *
 * Design: one pass over the lines. Outside a hunk, "diff --git a/X b/Y" or a "--- X" line followed by "+++ Y"
 * starts a file; its path is Y ("/dev/null": the file is deleted, then X names it) without git's "b/" prefix (when
 * the old side has the matching "a/", or is "/dev/null" for a new file), without the tab and timestamp of `diff -u`,
 * and unquoted when git quoted it ("\"b/sp\\303\\251c ial\"", C escapes and octal bytes). Inside a hunk the "@@ -a,b
 * +c,d @@" counts say where it ends, so a removed line that reads "--- x" or "diff --git" is never taken for a header.
 * Each file's hunks go to diff_added_set_add() unchanged, which parses them strictly (a malformed hunk fails the whole
 * patch: a gate must not pass what it could not read). Lines outside files (a mail header, "index ...", "new file
 * mode", "Binary files ... differ") are skipped, so a binary file or a mode change adds no line. A patch with no file
 * is fine (no lines); a hunk before any file header is not (which file would it be?).
 * Threading: no shared state.
 * Ownership: the set is the caller's; paths and texts are copied into it.
 */
#ifndef MRGATE_CORE_PATCH_H
#define MRGATE_CORE_PATCH_H

#include "diff.h"
#include "status.h"

#include <stddef.h>

/*
 * Add every file of the patch text[0..len) to set. On CORE_EINVAL *bad_line_out (optional) is the 1-based line of
 * the patch that could not be read (0 when the error is about a whole file's hunks, e.g. a count that does not
 * add up, whose first hunk line it then names). Errors of diff_added_set_add() (CORE_ETOOLARGE, CORE_ENOMEM).
 */
enum core_status patch_add_to_set(const char *text, size_t len, struct diff_added_set *set, size_t *bad_line_out);

#endif
