/*
 * tests/gitlab-sim/sim_diff.h
 *    Unified diffs between two file versions (what GitLab puts in a diff's "diff" field) and a minimal
 *    ustar + gzip writer for repository archives.
 *
 * Ownership: results are malloc'd and belong to the caller.
 */
#ifndef SIM_DIFF_H
#define SIM_DIFF_H

#include "sim_state.h"

#include <stdbool.h>
#include <stddef.h>

/* Hunks only ("@@ -a,b +c,d @@" lines, no ---/+++ headers), 3 lines of context, as GitLab renders them.
   old_text or new_text may be NULL (new or deleted file). Returns "" when the contents are equal. */
char *sim_unified_diff(const char *old_text, const char *new_text);

/* A .tar.gz of files under the directory prefix/. Returns NULL on failure; *len_out gets the size. */
unsigned char *sim_targz(const char *prefix, const char *sha, const struct sim_file *files, size_t n_files,
                         size_t *len_out);

#endif
