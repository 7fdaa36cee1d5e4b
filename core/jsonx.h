/*
 * core/jsonx.h
 *    Typed access to json-c trees that never trusts a field's type, and a strict parser.
 *
 * Design: JSON from GitLab (and from browsers) is untrusted: a field may be missing, null, or of another type
 * than documented. Every getter here returns false unless the value exists and has exactly the asked type, so
 * callers write `if (!jsonx_int64(p, "id", &id)) -> invalid` and never crash on a string where an int was
 * expected. The one documented leniency is jsonx_bool(): GitLab sends null for some false booleans
 * (GITLAB-API.md §6, allow_merge_on_skipped_pipeline), so null reads as false.
 * Paths ("namespace.full_path") walk nested objects; keys containing '.' are not reachable through paths.
 * Threading: pure functions; a json-c tree must not be changed by another thread while it is read.
 * Ownership: every returned json_object and string is borrowed from `obj` and lives as long as that tree;
 * jsonx_parse() returns a new tree the caller frees with json_object_put().
 */
#ifndef MRGATE_CORE_JSONX_H
#define MRGATE_CORE_JSONX_H

#include "status.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parse exactly one JSON value from buf[0..len) with json-c's strict mode; trailing bytes other than whitespace,
 * an empty input, or nesting deeper than 64 are CORE_EINVAL. *out is a new tree (the caller puts it).
 */
enum core_status jsonx_parse(const char *buf, size_t len, struct json_object **out);

/* The member `key` of an object, borrowed; NULL when obj is not an object or has no such member (or it is null). */
struct json_object *jsonx_get(const struct json_object *obj, const char *key);
/* The value at a dotted path ("namespace.full_path"), borrowed; NULL when any step is missing or not an object. */
struct json_object *jsonx_path(const struct json_object *obj, const char *path);

/* Value readers: true only when the value exists with the asked type; *out is untouched otherwise. */
bool jsonx_as_int64(const struct json_object *v, int64_t *out);   /* json int that fits int64 */
bool jsonx_as_str(const struct json_object *v, const char **out); /* json string (borrowed, NUL-terminated) */
bool jsonx_as_bool(const struct json_object *v, bool *out);       /* json bool; json null reads as false */

/* Member readers: the same rules applied to jsonx_get(obj, key). */
bool jsonx_int64(const struct json_object *obj, const char *key, int64_t *out);
bool jsonx_str(const struct json_object *obj, const char *key, const char **out);
bool jsonx_bool(const struct json_object *obj, const char *key, bool *out);
/* An array or an object member, borrowed. */
bool jsonx_array(const struct json_object *obj, const char *key, struct json_object **out);
bool jsonx_object(const struct json_object *obj, const char *key, struct json_object **out);

/* Path readers: the same rules applied to jsonx_path(obj, path). */
bool jsonx_path_int64(const struct json_object *obj, const char *path, int64_t *out);
bool jsonx_path_str(const struct json_object *obj, const char *path, const char **out);
bool jsonx_path_bool(const struct json_object *obj, const char *path, bool *out);

#endif
