/*
 * tests/fuzz/fuzz_gateconfig.c
 *    Gate-config validation (PUT /api/configs/..., import): any JSON gives a normalised config or a message; a
 *    normalised config validates again to itself.
 */
#include "fuzz_input.h"
#include "gateconfig.h"
#include "json_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *in = fuzz_input_json(data, size), *out = NULL, *again = NULL;
	char err[400];
	if (in && gateconfig_validate(in, &out, err, sizeof(err)) == CORE_OK) {
		if (gateconfig_validate(out, &again, err, sizeof(err)) != CORE_OK || !json_object_equal(out, again))
			abort(); /* normalising is idempotent */
	}
	json_object_put(again);
	json_object_put(out);
	json_object_put(in);
	return 0;
}
