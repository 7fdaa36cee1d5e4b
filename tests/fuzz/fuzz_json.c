/*
 * tests/fuzz/fuzz_json.c
 *    The strict JSON parsers (json_parse_strict for API bodies and webhooks, jsonx_parse for GitLab answers): any
 *    bytes give a tree or an error, never a crash, a leak or a read past the buffer; a tree serialises and parses back.
 */
#include "fuzz_input.h"
#include "json_util.h"
#include "jsonx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = fuzz_input_json(data, size);
	if (o) {
		const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		struct json_object *back = NULL;
		if (jsonx_parse(s, strlen(s), &back) != CORE_OK)
			abort(); /* what we print we must read back */
		json_object_put(back);
	}
	json_object_put(o);
	o = NULL;
	char *buf = fuzz_input_bytes(data, size);
	if (buf && jsonx_parse(buf, size, &o) == CORE_OK)
		json_object_put(o);
	free(buf);
	return 0;
}
