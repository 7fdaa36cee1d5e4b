/*
 * core/textsafe.h
 *    Characters a reader cannot see: Unicode format characters that are invisible or reorder the text around them.
 *    A path, a pattern or an excerpt that holds one shows readers something else than what it is (a U+202E shows
 *    "a<U+202E>yp.txt" as "atxt.py"), so mrgate refuses them where a user types them (core/pathglob.h) and writes
 *    them as "<U+XXXX>" where it shows text it did not write (the gate's notes, core/gate_report.h; the dashboard's
 *    gate pages do the same with the same list, web/js/gates.js).
 *    The list: U+061C, U+200B-U+200F, U+202A-U+202E, U+2060-U+2069, U+FEFF. And the rule of well-formed UTF-8,
 *    which the strict JSON parser (core/json_util.h) and the list reader (core/jsonscan.h) both apply.
 * Threading: pure functions. Ownership: none.
 */
#ifndef MRGATE_CORE_TEXTSAFE_H
#define MRGATE_CORE_TEXTSAFE_H

#include <stdbool.h>
#include <stddef.h>

/* The byte length of the invisible character that starts at p (p < end), *cp its code point; 0 when none does. */
size_t textsafe_invisible(const char *p, const char *end, long *cp);

/*
 * Is text[0..len) well-formed UTF-8 as RFC 3629 defines it: no overlong form (C0 AF), no UTF-16 surrogate (ED A0 80,
 * which CESU-8 and "WTF-8" write), nothing past U+10FFFF, no sequence cut short? json-c's check lets the first two
 * through; PostgreSQL refuses them later, after a GitLab call may already have been made. false with *at the byte
 * offset of the first bad sequence.
 */
bool textsafe_utf8_valid(const char *text, size_t len, size_t *at);

/* The length of the well-formed UTF-8 sequence of a non-ASCII character at p (p < end), or 0 (Unicode 15, table
 * 3-7: the same rule as textsafe_utf8_valid). */
size_t textsafe_utf8_len(const unsigned char *p, const unsigned char *end);

#endif
