/*
 * core/json_util.h
 *    Strict JSON parsing for untrusted input (API bodies, webhooks, GitLab answers).
 *
 * Design: json_parse_strict() uses json_tokener with JSON_TOKENER_STRICT, rejects anything after the value
 * except whitespace, caps the nesting depth, and says why it failed in PostgreSQL-style words
 * ("invalid JSON at byte 12: unexpected character", "unexpected data after the JSON value at byte 40").
 * The size cap is the caller's job and is checked before the body is read.
 * Ownership: *out is a new tree owned by the caller (json_object_put).
 */
#ifndef MRGATE_CORE_JSON_UTIL_H
#define MRGATE_CORE_JSON_UTIL_H

#include "status.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum core_status json_parse_strict(const char *text, size_t len, struct json_object **out, char *err, size_t errlen);

/*
 * Does a JSON text hold the escape \u0000 inside a string or a key? json-c decodes it into a NUL byte, and every C
 * string read from the tree then ends there: "low\u0000x" reads as "low", "\u0000" as "". Request bodies from
 * users are refused when it does (http_read_json, mrgate import); *at is the byte offset of the escape.
 */
bool json_text_has_nul(const char *text, size_t len, size_t *at);

/*
 * Does a JSON text hold a \u escape of half a UTF-16 surrogate pair without its other half (\ud800 alone, or a
 * \udc00 not after a \ud800-\udbff)? json-c decodes one into U+FFFD: a reason sent as "ok \ud800" reached GitLab as
 * "ok \ufffd". Request bodies are refused when it does (http_read_json); *at is the byte offset of the escape.
 */
bool json_text_has_lone_surrogate(const char *text, size_t len, size_t *at);

/* Typed getters live in jsonx.h. The JSON type name of a member ("missing" when absent), for error messages. */
const char *json_type_of(struct json_object *obj, const char *key);
/* The first key of object obj that is not in allowed (NULL-terminated), or NULL when every key is known. */
const char *json_unknown_key(struct json_object *obj, const char *const *allowed);

#endif
