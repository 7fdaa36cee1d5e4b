/*
 * core/json_util.c
 *    Strict parsing.
 */
#include "json_util.h"

#include "textsafe.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

/* true when text[0..end) alone is a complete JSON value (so what follows it is trailing data) */
static bool value_ends_at(const char *text, size_t end)
{
	struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return false;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)end);
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success;
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

/* The value of the \uXXXX escape at text[i] (text[i] == '\\'), or -1 when it is none. */
static long u_escape(const char *text, size_t len, size_t i)
{
	if (i + 5 >= len || text[i] != '\\' || text[i + 1] != 'u')
		return -1;
	long v = 0;
	for (size_t k = i + 2; k < i + 6; k++) {
		char ch = text[k];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
		                                 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* The first escape in a string or key that is a NUL (nul) or half a surrogate pair alone (surrogate): *at. */
static bool bad_escape(const char *text, size_t len, bool nul, bool surrogate, size_t *at)
{
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = text[i] == '"';
		} else if (text[i] == '"') {
			in_string = false;
		} else if (text[i] == '\\' && i + 1 < len) {
			long v = u_escape(text, len, i);
			bool high = v >= 0xD800 && v <= 0xDBFF, low = v >= 0xDC00 && v <= 0xDFFF;
			long next = high ? u_escape(text, len, i + 6) : -1;
			bool pair = high && next >= 0xDC00 && next <= 0xDFFF;
			if ((nul && v == 0) || (surrogate && (low || (high && !pair)))) {
				*at = i;
				return true;
			}
			i += pair ? 11 : 1; /* the pair, or the escaped character (a quote or a backslash is text) */
		}
	}
	return false;
}

bool json_text_has_nul(const char *text, size_t len, size_t *at)
{
	return bad_escape(text, len, true, false, at);
}

bool json_text_has_lone_surrogate(const char *text, size_t len, size_t *at)
{
	return bad_escape(text, len, false, true, at);
}

/* The members of every object in the tree (nesting is bounded by JSON_MAX_DEPTH). */
static size_t count_members(struct json_object *o)
{
	size_t n = 0;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += 1 + count_members(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0, len = json_object_array_length(o); i < len; i++)
			n += count_members(json_object_array_get_idx(o, i));
	}
	return n;
}

/*
 * A parse error in words, at the byte it is found and with that character: json-c's own descriptions ("null
 * expected" for a word that is not null) read as jargon to the people who typed the document.
 */
static void parse_error_words(const char *text, size_t len, size_t at, enum json_tokener_error jerr, char *err,
                              size_t errlen)
{
	const char *why;
	switch (jerr) {
	case json_tokener_error_parse_null:
	case json_tokener_error_parse_boolean:
		why = "a word JSON does not have (the words are true, false and null; text needs double quotes)";
		/* json-c stops inside the word: point at its start */
		while (at > 0 && at <= len && isalpha((unsigned char)text[at - 1]))
			at--;
		break;
	case json_tokener_error_parse_object_key_name: why = "an object's keys are text in double quotes"; break;
	case json_tokener_error_parse_object_key_sep: why = "a ':' must follow an object's key"; break;
	case json_tokener_error_parse_object_value_sep: why = "a ',' or '}' must follow an object's value"; break;
	case json_tokener_error_parse_array: why = "a ',' or ']' must follow an array's value"; break;
	case json_tokener_error_parse_unexpected: why = "a character JSON does not allow here"; break;
	case json_tokener_error_parse_number:
		why = "a number JSON does not allow (no leading zero, no '+', digits after a '.')";
		break;
	case json_tokener_error_parse_string:
		why = "a string JSON does not allow (a bad escape or a control character)";
		break;
	case json_tokener_error_depth: why = "nested too deeply"; break;
	default: why = json_tokener_error_desc(jerr); break;
	}
	unsigned char c = at < len ? (unsigned char)text[at] : 0;
	if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
		snprintf(err, errlen, "invalid JSON at byte %zu (\"%c\"): %s", at, c, why);
	else
		snprintf(err, errlen, "invalid JSON at byte %zu: %s", at, why);
}

enum core_status json_parse_strict(const char *text, size_t len, struct json_object **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!text || len == 0) {
		snprintf(err, errlen, "the request body is empty; a JSON value is expected");
		return CORE_EINVAL;
	}
	if (len > (size_t)INT32_MAX) {
		snprintf(err, errlen, "the JSON document is too large");
		return CORE_ETOOLARGE;
	}
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "invalid JSON: the document contains a NUL byte");
		return CORE_EINVAL;
	}
	size_t bad = 0;
	if (!textsafe_utf8_valid(text, len, &bad)) {
		snprintf(
		    err, errlen,
		    "invalid JSON at byte %zu: not well-formed UTF-8 (an overlong form, a UTF-16 surrogate written as "
		    "UTF-8, or a sequence cut short)",
		    bad);
		return CORE_EINVAL;
	}
	/* json-c 0.16 accepts 'single-quoted' strings even in strict mode; JSON does not. Members are counted on the
	 * way (a ':' outside strings is one) to find duplicate keys below. */
	bool in_string = false;
	size_t members = 0;
	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (text[i] == '\\')
				i++;
			else if (text[i] == '"')
				in_string = false;
		} else if (text[i] == '"') {
			in_string = true;
		} else if (text[i] == ':') {
			members++;
		} else if (text[i] == '\'') {
			snprintf(err, errlen, "invalid JSON at byte %zu: strings must use double quotes", i);
			return CORE_EINVAL;
		}
	}
	struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return CORE_ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue && !obj) {
		/* A bare top-level number, or a truncated document: a final NUL tells json-c the input ended. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = obj ? json_tokener_get_error(tok) : json_tokener_continue;
		used = len;
	}
	enum core_status st = CORE_OK;
	if (!obj || jerr != json_tokener_success) {
		if (jerr == json_tokener_continue)
			snprintf(err, errlen, "invalid JSON: the document ends early");
		else if (used > 0 && value_ends_at(text, used))
			snprintf(err, errlen, "unexpected data after the JSON value at byte %zu", used);
		else
			parse_error_words(text, len, used, jerr, err, errlen);
		st = CORE_EINVAL;
		goto out;
	}
	for (size_t i = used; i < len; i++) {
		char c = text[i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			snprintf(err, errlen, "unexpected data after the JSON value at byte %zu", i);
			st = CORE_EINVAL;
			goto out;
		}
	}
	/* json-c keeps the last of two equal keys and drops the first with its whole value, so the tree then has fewer
	 * members than the text: such a document means different things to different parsers. */
	if (count_members(obj) != members) {
		snprintf(err, errlen, "invalid JSON: an object has the same key twice, so what it means is ambiguous");
		st = CORE_EINVAL;
		goto out;
	}
	*out = obj;
	obj = NULL;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	return st;
}

const char *json_type_of(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return "missing";
	return json_type_to_name(json_object_get_type(v));
}

const char *json_unknown_key(struct json_object *obj, const char *const *allowed)
{
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		size_t i = 0;
		while (allowed[i] && strcmp(key, allowed[i]) != 0)
			i++;
		if (!allowed[i])
			return key;
	}
	return NULL;
}
