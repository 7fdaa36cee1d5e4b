/*
 * tests/fuzz/fuzz_jsonscan.c
 *    jscan_each (core/jsonscan.h), the tree-less reader of GitLab's list pages, against json_parse_strict and jsonx,
 *    the tree the rest of mrgate reads: on any bytes, the scan never crashes or reads past the buffer, refuses what
 *    the strict parser refuses (but for a duplicate key among members it does not read), and where both accept,
 *    hands over for every element and path the value jsonx_path() finds, with the same type and content. Aborts
 *    on any disagreement, so `make test` (the seed corpus) and `make fuzz` both catch one.
 */
#include "fuzz_input.h"
#include "jsonscan.h"
#include "jsonx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* what discovery reads, plus paths that reach into arrays and scalars */
static const char *const paths[] = {
    "id",
    "path",
    "path_with_namespace",
    "namespace.full_path",
    "namespace.id",
    "name",
    "archived",
    "web_url",
    "a",
    "a.b",
    "a.b.c",
    "x",
    "permissions.project_access.access_level",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

struct ctx {
	struct json_object *tree; /* json_parse_strict's, or NULL */
	size_t i;                 /* the element being compared */
	struct buf s;
	bool nul_key; /* the text has "\\u0000": json-c keeps a key "x\\u0000t" as "x", the scan as a key of its own */
};

/* v is what the scan found where jsonx_path() found want (NULL: absent, or null); strings are compared in each(). */
static void check_value(const struct jscan_value *v, struct json_object *want)
{
	int64_t a = 0, b = 0;
	bool x = false;
	if (!want) {
		if (v->type != JSCAN_ABSENT && v->type != JSCAN_NULL) /* jsonx_get() reads a null member as absent */
			abort();
		return;
	}
	switch (json_object_get_type(want)) {
	case json_type_boolean:
		if (!jscan_bool(v, &x) || x != json_object_get_boolean(want))
			abort();
		break;
	case json_type_int:
		/* the same integer; the scan may refuse one that does not fit int64 where json-c clamps it */
		if (v->type != JSCAN_INT || (jscan_int64(v, &b) && (!jsonx_as_int64(want, &a) || a != b)))
			abort();
		break;
	case json_type_double:
		if (v->type != JSCAN_NUMBER && v->type != JSCAN_INT)
			abort();
		break;
	case json_type_object:
		if (v->type != JSCAN_OBJECT)
			abort();
		break;
	case json_type_array:
		if (v->type != JSCAN_ARRAY)
			abort();
		break;
	default: abort();
	}
}

static enum core_status ignore(const struct jscan_value *vals, void *user)
{
	(void)vals;
	(void)user;
	return CORE_OK;
}

static enum core_status each(const struct jscan_value *vals, void *user)
{
	struct ctx *c = user;
	struct json_object *el = json_object_array_get_idx(c->tree, c->i++);
	for (size_t k = 0; k < NPATHS; k++) {
		struct json_object *want = json_object_is_type(el, json_type_object) ? jsonx_path(el, paths[k]) : NULL;
		const struct jscan_value *v = &vals[k];
		if (c->nul_key && v->type == JSCAN_ABSENT)
			continue; /* json-c may have found it under a key cut short at its NUL */
		if (want && json_object_is_type(want, json_type_string)) {
			const char *s = NULL;
			if (!jsonx_as_str(want, &s))
				abort();
			/* a string holding a NUL is not read by the scan (json-c keeps it, and C reads it cut short) */
			bool nul = strlen(s) != (size_t)json_object_get_string_len(want);
			if (nul ? jscan_str(v, &c->s) : !jscan_str(v, &c->s) || strcmp(buf_str(&c->s), s) != 0)
				abort();
			continue;
		}
		check_value(v, want);
	}
	return CORE_OK;
}

/* The text has what json-c's strict mode accepts and RFC 8259 does not, and the scan said so (err). */
static bool lax_json_c(const char *text, size_t len, const char *err)
{
	bool control = false, utf8 = false, literal = false, deep = false, zero = false, number = false;
	int open = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		control = control || c < 0x20;
		utf8 = utf8 || c == 0xc0 || c == 0xc1 || c == 0xe0 || c == 0xed || c == 0xf0 || c == 0xf4 || c >= 0xf5;
		literal = literal || c == 'N' || c == 'I';
		open += c == '[' || c == '{';
		number = number || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
		zero = zero || (c == '0' && i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '9');
	}
	deep = open > JSON_SCAN_MAX_DEPTH;
	return (control && strstr(err, "control character")) || (utf8 && strstr(err, "UTF-8")) ||
	       (literal && strstr(err, "unexpected character")) || (deep && strstr(err, "nested deeper")) ||
	       (zero && strstr(err, "leading zero")) || (number && strstr(err, "a number needs digits"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_input_bytes(data, size);
	if (!buf)
		return 0;
	struct ctx c = {0};
	char err[200], err2[200];
	for (size_t i = 0; i + 6 <= size && !c.nul_key; i++)
		c.nul_key = memcmp(buf + i, "\\u0000", 6) == 0;
	enum core_status strict = json_parse_strict(buf, size, &c.tree, err, sizeof(err));
	bool array = strict == CORE_OK && json_object_is_type(c.tree, json_type_array);
	size_t n = 0;
	/* the scan hands values over only when the tree exists to compare them with */
	enum core_status st = jscan_each(buf, size, paths, NPATHS, array ? each : ignore, &c, &n, err2, sizeof(err2));
	if (array && st != CORE_OK) {
		/* the scan refused an array json-c's strict mode reads: only where RFC 8259 forbids it (jsonscan.h) */
		if (!lax_json_c(buf, size, err2))
			abort();
	} else if (array) {
		/* both read it: the same elements, every value compared by each() */
		if (n != json_object_array_length(c.tree) || c.i != n)
			abort();
	} else if (strict == CORE_OK) {
		if (st == CORE_OK) /* not an array */
			abort();
	} else if (st == CORE_OK) {
		/* the scan accepted what the strict parser refused: allowed only for a duplicate key among members not
		 * read (the strict parser refuses every duplicate) */
		if (!strstr(err, "same key twice"))
			abort();
	}
	json_object_put(c.tree);
	buf_free(&c.s);
	free(buf);
	return 0;
}
