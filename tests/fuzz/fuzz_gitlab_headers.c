/*
 * tests/fuzz/fuzz_gitlab_headers.c
 *    GitLab response headers mrgate reads: Retry-After, RateLimit-Reset, Link, X-Next-Page (with the next-page
 *    path built from them), and the path templates of metrics. Values are bounded and never overflow (UBSan).
 */
#include "fuzz_input.h"
#include "gitlab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = fuzz_input_cstr(data, size);
	if (!v)
		return 0;
	int64_t ms = -1;
	if (gitlab_parse_retry_after(v, 1700000000, &ms) && (ms < 0 || ms > 86400 * 1000LL))
		abort();
	if (gitlab_parse_ratelimit_reset(v, 1700000000, &ms) && (ms < 0 || ms > 86400 * 1000LL))
		abort();
	char *url = NULL;
	if (gitlab_parse_link_next(v, &url))
		free(url);
	char *next = NULL;
	if (gitlab_next_page_path("/projects?per_page=100&page=2", v, NULL, &next) == CORE_OK)
		free(next);
	next = NULL;
	if (gitlab_next_page_path("/groups/1/projects?per_page=100", NULL, v, &next) == CORE_OK)
		free(next);
	char tmpl[256];
	gitlab_path_template(v, tmpl, sizeof(tmpl));
	free(v);
	return 0;
}
