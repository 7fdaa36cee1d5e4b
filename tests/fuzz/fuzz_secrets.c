/*
 * tests/fuzz/fuzz_secrets.c
 *    The built-in secrets scanner over arbitrary added lines (a diff made of the input) and single lines.
 */
#include "diff.h"
#include "findings.h"
#include "fuzz_input.h"
#include "scan_secrets.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (scan_secrets_init() != CORE_OK)
			abort();
		ready = 1;
	}
	char *line = fuzz_input_cstr(data, size);
	if (!line)
		return 0;
	struct finding_list *out = finding_list_new();
	if (out) {
		scan_secrets_line("config/app.env", 1, line, out);
		/* the same bytes as the added lines of a one-hunk diff */
		size_t cap = size * 2 + 64;
		char *diff = malloc(cap);
		if (diff) {
			size_t n = (size_t)snprintf(diff, cap, "@@ -0,0 +1,1 @@\n+");
			for (size_t i = 0; i < size && n + 3 < cap; i++) {
				diff[n++] = (char)data[i];
				if (data[i] == '\n')
					diff[n++] = '+';
			}
			diff[n] = '\0';
			scan_secrets_diff("src/settings.py", diff, out);
			free(diff);
		}
		finding_list_free(out);
	}
	scan_secrets_entropy(line, size);
	free(line);
	return 0;
}
