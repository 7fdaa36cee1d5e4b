/*
 * tests/fuzz/fuzz_input.h
 *    The fuzz input as the targets hand it on: an exact-size copy of the bytes (no terminator, so a read one byte
 *    past the buffer is caught by ASan) or a NUL-terminated string. Both return NULL when out of memory (the target
 *    then returns 0); the caller frees the result. Header-only: every fuzz_*.c is its own program (libFuzzer, or
 *    replay.c in make test).
 */
#ifndef MRGATE_FUZZ_INPUT_H
#define MRGATE_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_bytes(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	if (buf)
		memcpy(buf, data, size);
	return buf;
}

static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
