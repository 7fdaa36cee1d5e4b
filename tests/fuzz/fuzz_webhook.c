/*
 * tests/fuzz/fuzz_webhook.c
 *    The merge request webhook payload reader: strict JSON, then webhook_parse_mr and webhook_mr_changes_code.
 */
#include "fuzz_input.h"
#include "json_util.h"
#include "webhook.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = fuzz_input_json(data, size);
	if (o) {
		struct webhook_mr m;
		char why[200];
		if (webhook_parse_mr(o, &m, why, sizeof(why)) == CORE_OK) {
			if (!m.action || !m.state || !m.head_sha || !m.source_branch)
				abort(); /* documented: strings, "" when absent */
			webhook_mr_changes_code(&m, why, sizeof(why));
		}
	}
	json_object_put(o);
	return 0;
}
