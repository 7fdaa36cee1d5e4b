/*
 * tests/fuzz/fuzz_pathglob.c
 *    Glob matching: input is "pattern\npath". Every pattern is checked, every match ends (a DP, polynomial) and a
 *    pattern always matches a path equal to itself when it has no special characters; on small inputs the answer is
 *    the old backtracking matcher's (pathglob_reference.c).
 */
#include "fuzz_input.h"
#include "pathglob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool pathglob_reference_match(const char *pattern, const char *path); /* pathglob_reference.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * PATHGLOB_MAX + 2)
		return 0;
	char *buf = fuzz_input_cstr(data, size);
	if (!buf)
		return 0;
	char *nl = memchr(buf, '\n', size);
	const char *pattern = buf, *path = "src/app/main.c";
	if (nl) {
		*nl = '\0';
		path = nl + 1;
	}
	char why[120];
	bool valid = pathglob_check(pattern, why, sizeof(why));
	(void)valid;
	bool got = pathglob_match(pattern, path);
	pathglob_match(pattern, pattern);
	/* the same answer as the old backtracking matcher, on inputs small enough for it */
	size_t stars = 0;
	for (const char *q = pattern; *q; q++)
		stars += *q == '*';
	if (strlen(pattern) <= 48 && strlen(path) <= 64 && stars <= 8 && got != pathglob_reference_match(pattern, path))
		abort();
	const char *pats[] = {pattern, "**/*.min.js", "vendor/"};
	pathglob_match_any(pats, 3, path);
	/* a plain pattern (no glob characters, no leading '/', '#' or '!', no "./") matches itself */
	if (*pattern && strlen(pattern) <= PATHGLOB_MAX && !strpbrk(pattern, "*?[\\#!") && pattern[0] != '/' &&
	    pattern[strlen(pattern) - 1] != '/' && !strstr(pattern, "//") && strncmp(pattern, "./", 2) != 0 &&
	    !strstr(pattern, "/./") && strspn(pattern, "/") < strlen(pattern) && !pathglob_match(pattern, pattern))
		abort();
	free(buf);
	return 0;
}
