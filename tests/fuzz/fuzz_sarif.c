/*
 * tests/fuzz/fuzz_sarif.c
 *    The SARIF reader (scanner stdout, untrusted) against a fixed set of added lines, and artifact URIs.
 */
#include "diff.h"
#include "findings.h"
#include "fuzz_input.h"
#include "scan_sarif.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct diff_added_set *added;
	if (!added) {
		added = diff_added_set_new();
		const char *d = "@@ -0,0 +1,3 @@\n+a\n+b\n+c\n";
		if (!added || diff_added_set_add(added, "src/app.py", d, strlen(d), false) != CORE_OK)
			abort();
	}
	char *buf = fuzz_input_bytes(data, size);
	if (!buf)
		return 0;
	struct finding_list *out = finding_list_new();
	if (out) {
		struct scan_sarif_options opt = {
		    .scan_type = "sast", .added = added, .root = "/tmp/mrgate-gate-x/tree"};
		struct scan_sarif_stats stats;
		scan_sarif_parse(&opt, buf, size, out, &stats);
		finding_list_free(out);
	}
	/* the input as one artifact URI */
	char *uri = fuzz_input_cstr(data, size), path[512];
	if (uri) {
		scan_sarif_uri_to_path(uri, "/tmp/mrgate-gate-x/tree", path, sizeof(path));
		scan_sarif_uri_to_path(uri, NULL, path, sizeof(path));
		free(uri);
	}
	free(buf);
	return 0;
}
