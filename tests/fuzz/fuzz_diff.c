/*
 * tests/fuzz/fuzz_diff.c
 *    Unified diffs as GitLab sends them: the added-lines parser and the per-path set; and multi-file patches as
 *    `mrgate scan --diff` reads them (core/patch.h).
 */
#include "diff.h"
#include "fuzz_input.h"
#include "patch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_input_cstr(data, size);
	if (!buf)
		return 0;
	struct diff_added *a = NULL;
	if (diff_added_parse(buf, size, &a) == CORE_OK)
		for (long l = 0; l < 64; l++)
			diff_added_find(a, l);
	diff_added_free(a);
	struct diff_added_set *s = diff_added_set_new();
	if (s) {
		diff_added_set_add(s, "src/a.c", buf, size, false);
		diff_added_set_add(s, "src/a.c", buf, size, false); /* a diff split over pages is merged */
		diff_added_has(s, "src/a.c", 1);
		diff_added_set_free(s);
	}
	s = diff_added_set_new();
	if (s) {
		size_t bad_line;
		patch_add_to_set(buf, size, s, &bad_line);
		diff_added_set_free(s);
	}
	free(buf);
	return 0;
}
