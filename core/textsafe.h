/*
 * core/textsafe.h
 *    Characters a reader cannot see: Unicode format characters that are invisible or reorder the text around them.
 *    A path, a pattern or an excerpt that holds one shows readers something else than what it is (a U+202E shows
 *    "a<U+202E>yp.txt" as "atxt.py"), so mrgate refuses them where a user types them (core/pathglob.h) and writes
 *    them as "<U+XXXX>" where it shows text it did not write (the gate's notes, core/gate_report.h; the dashboard's
 *    gate pages do the same with the same list, web/js/gates.js).
 *    The list: U+061C, U+200B-U+200F, U+202A-U+202E, U+2060-U+2069, U+FEFF.
 * Threading: pure functions. Ownership: none.
 */
#ifndef MRGATE_CORE_TEXTSAFE_H
#define MRGATE_CORE_TEXTSAFE_H

#include <stddef.h>

/* The byte length of the invisible character that starts at p (p < end), *cp its code point; 0 when none does. */
size_t textsafe_invisible(const char *p, const char *end, long *cp);

#endif
