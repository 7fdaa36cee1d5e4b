/*
 * tests/fuzz/fuzz_input.h
 *    The fuzz input as the targets hand it on: an exact-size copy of the bytes (no terminator, so a read one byte
 *    past the buffer is caught by ASan), a NUL-terminated string, or the tree json_parse_strict makes of such a copy.
 *    The copies are NULL when out of memory (the target then returns 0), the tree NULL also when the input is not
 *    strict JSON; the caller frees the copy or puts the tree. Header-only: every fuzz_*.c is its own program
 *    (libFuzzer, or replay.c in make test). No state is kept: call from any thread.
 */
#ifndef MRGATE_FUZZ_INPUT_H
#define MRGATE_FUZZ_INPUT_H

#include "json_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_input_bytes(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	if (buf)
		memcpy(buf, data, size);
	return buf;
}

static inline char *fuzz_input_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

static inline struct json_object *fuzz_input_json(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL;
	char err[200];
	char *buf = fuzz_input_bytes(data, size);
	if (buf && json_parse_strict(buf, size, &o, err, sizeof(err)) != CORE_OK)
		o = NULL;
	free(buf);
	return o;
}

#endif
