/*
 * core/jsonscan.h
 *    Reading a few members of each object of a large JSON array without building a tree.
 *
 * Design: GitLab's list pages are arrays of whole entities (a project is about 4.5 KB and 80 members, nested), of
 * which discovery keeps a dozen. Building the json-c tree of every page was most of mrgate's CPU during a sync
 * (docs/PERFORMANCE.md, discovery). jscan_each() checks the whole text as strictly as json_parse_strict() does
 * (RFC 8259's grammar, UTF-8, no NUL byte, nesting at most JSON_SCAN_MAX_DEPTH, nothing but whitespace after the
 * value), and more strictly where json-c's strict mode is lax and RFC 8259 is not (a control character unescaped in
 * a string, an overlong or surrogate UTF-8 sequence, NaN or Infinity, numbers such as 00 or -.5:
 * GitLab's JSON has none), and hands the caller,
 * for each element of the top-level array, the members named by a list of dotted paths ("id", "namespace.full_path") as
 * slices of the text. Every other value is checked and skipped. Duplicate keys: json_parse_strict() refuses a document
 * with any key twice in one object, because parsers disagree on which one holds. Here that is refused for the members
 * read (a path's key twice in one object, at any step of the path); a duplicate among members nobody reads changes
 * nothing mrgate does, and is allowed. Values are typed as they are written; the readers below apply jsonx.h's rules
 * (an int is an integer that fits int64; a bool may be null, read as false; a string is decoded, and a \u0000 ends it
 * as it ends a json-c string read through jsonx_str()). Threading: pure functions. Ownership: a value's slice points
 * into the caller's text.
 */
#ifndef MRGATE_CORE_JSONSCAN_H
#define MRGATE_CORE_JSONSCAN_H

#include "buf.h"
#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_SCAN_MAX_DEPTH 63 /* containers in one another, as json_parse_strict() allows */
#define JSON_SCAN_MAX_PATHS 16 /* paths per scan */
#define JSON_SCAN_MAX_STEPS 4  /* keys per path */

enum jscan_type {
	JSCAN_ABSENT = 0, /* no such member (or a step of its path is not an object) */
	JSCAN_NULL,
	JSCAN_FALSE,
	JSCAN_TRUE,
	JSCAN_INT,    /* a number without fraction or exponent */
	JSCAN_NUMBER, /* any other number */
	JSCAN_STRING,
	JSCAN_OBJECT,
	JSCAN_ARRAY,
};

struct jscan_value {
	enum jscan_type type;
	const char *at; /* the value's text (a string with its quotes); NULL when absent */
	size_t len;
};

/*
 * Check text[0..len) and call each(vals, user) once per element of its top-level array, in order, with vals[i]
 * the member at paths[i] of that element (all absent when the element is not an object). npaths ≤
 * JSON_SCAN_MAX_PATHS, each path at most JSON_SCAN_MAX_STEPS keys. A non-CORE_OK status from each stops the scan
 * and is returned. The whole text is checked before the first call, so nothing is handed over from a document
 * that turns out to be invalid. CORE_EINVAL with a message in err: the text is not valid JSON, is not an array, or
 * has a member read twice in one object. *elements_out (may be NULL): the elements of the array.
 */
enum core_status jscan_each(const char *text, size_t len, const char *const *paths, size_t npaths,
                            enum core_status (*each)(const struct jscan_value *vals, void *user), void *user,
                            size_t *elements_out, char *err, size_t errlen);

/* Readers: true only when the value has the asked type (jsonx.h's rules); *out is untouched otherwise. */
bool jscan_int64(const struct jscan_value *v, int64_t *out);
bool jscan_bool(const struct jscan_value *v, bool *out); /* true, false; null reads as false */
/* A string, decoded into b (replacing what b held; NUL-terminated). False also when it holds a \u0000: read as a C
 * string it would be cut short ("demo/a\u0000x" would read as the path "demo/a"). */
bool jscan_str(const struct jscan_value *v, struct buf *b);

#endif
