/*
 * core/buf.h
 *    The one growable byte buffer of mrgate (notes, diffs, descriptions, SQL id lists, HTTP bodies).
 *
 * Design: a struct on the stack, `struct buf b = {0};`, grown by doubling; always NUL-terminated once anything was
 * appended (b.p may be NULL while b.len is 0). Growth follows xalloc.h's policy (abort on out-of-memory). A buffer
 * may carry a cap: appends that would pass it are cut at the cap and set b.truncated, so text built from untrusted
 * input (findings, GitLab names) stays bounded and the caller can say so ("… (truncated)").
 * Threading: a buffer belongs to one thread.
 * Ownership: the bytes are the buffer's until buf_free() or buf_steal() (which hands them to the caller to free()).
 */
#ifndef MRGATE_CORE_BUF_H
#define MRGATE_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p;
	size_t len;
	size_t cap;     /* allocated bytes */
	size_t max;     /* 0: unbounded; otherwise len never passes max */
	bool truncated; /* an append was cut at max */
};

void buf_append(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...);
void buf_reset(struct buf *b); /* len = 0, memory kept */
/* The bytes, NUL-terminated, never NULL ("" for an empty buffer); borrowed until the next append or free. */
const char *buf_str(const struct buf *b);
/* Hand the bytes to the caller (malloc'd, NUL-terminated, never NULL) and leave the buffer empty. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

#endif
