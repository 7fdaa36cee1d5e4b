/*
 * core/pathglob.h
 *    Glob matching of repository paths for the ignore_paths config field, with gitignore-like rules.
 *
 * Design: a path is repository-relative with '/' separators ("src/app/main.c"); a leading "./" or "/" on the path
 * is ignored. A pattern is matched as follows:
 *   - "*" matches any run of characters except '/'; "?" one character except '/'; "[abc]", "[a-z]", "[!a-z]"
 *     (or "[^a-z]") one character of (or not of) the set, never '/'; "\x" matches x literally.
 *   - "**" matches any run of characters including '/'; written as a whole component, "**" + "/" also matches zero
 *     directories: "**" + "/test/x" matches "test/x" and "a/b/test/x", "docs/" + "**" matches everything under
 *     docs, "a/" + "**" + "/b" matches "a/b" and "a/x/y/b". In a pattern without a slash (next rule) every
 *     component is matched on its own, so there "**" acts like "*".
 *   - Anchoring: a pattern that starts with '/' or contains a '/' other than a trailing one is anchored at the
 *     repository root ("/build" and "src/gen/x.c" match from the root only). A pattern without such a slash
 *     matches at any depth: it is compared with every path component, like gitignore ("*.min.js" matches
 *     "web/a.min.js", "vendor" matches "vendor/x.c" and "lib/vendor/y.c").
 *   - A pattern matches a path when it matches the path itself or one of its parent directories, so a pattern
 *     naming a directory ignores everything below it ("/third_party" ignores "third_party/z/a.c").
 *   - A trailing '/' restricts the pattern to directories: "build/" matches "build/x.o" and "a/build/y.o" but not a
 *     file named "build".
 *   - Empty patterns and patterns starting with '#' match nothing. Negation ("!pat") is not supported: such a
 *     pattern is rejected by pathglob_valid().
 * Matching is byte-wise and case-sensitive and takes O(pattern length x path length) steps whatever the pattern
 * (a dynamic programme, no backtracking); patterns and paths over PATHGLOB_MAX bytes never match. Patterns a user
 * stores are further held to PATHGLOB_PATTERN_MAX bytes and PATHGLOB_MAX_STARSTAR "**" by pathglob_check().
 * Threading: pure functions, no state.
 */
#ifndef MRGATE_CORE_PATHGLOB_H
#define MRGATE_CORE_PATHGLOB_H

#include <stdbool.h>
#include <stddef.h>

#define PATHGLOB_MAX          4096
#define PATHGLOB_PATTERN_MAX  512 /* bytes of a pattern pathglob_check() accepts */
#define PATHGLOB_MAX_STARSTAR 8   /* "**" runs in a pattern pathglob_check() accepts */

/* True iff path matches pattern under the rules above. NULL arguments are false. */
bool pathglob_match(const char *pattern, const char *path);
/* True iff path matches one of the n patterns. */
bool pathglob_match_any(const char *const *patterns, size_t n, const char *path);
/*
 * True iff pattern is usable: not empty, at most PATHGLOB_PATTERN_MAX bytes and PATHGLOB_MAX_STARSTAR "**", no '!'
 * negation or '#' comment, brackets closed, not only slashes, no character a reader cannot see (control
 * characters, bidirectional controls such as U+202E, zero-width characters). When false and why is not NULL, why
 * (whylen bytes) receives the reason, lower case ("it is 600 bytes long; at most 512 are allowed").
 */
bool pathglob_check(const char *pattern, char *why, size_t whylen);
/* pathglob_check() without the reason. */
bool pathglob_valid(const char *pattern);

#endif
