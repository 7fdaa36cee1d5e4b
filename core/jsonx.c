/*
 * core/jsonx.c
 *    Strict JSON parsing and typed getters that never trust a field's type (see jsonx.h).
 */
#include "jsonx.h"

#include "json_util.h"

#include <string.h>

enum core_status jsonx_parse(const char *buf, size_t len, struct json_object **out)
{
	char err[160];
	return json_parse_strict(buf, len, out, err, sizeof(err));
}

struct json_object *jsonx_get(const struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;
	if (!obj || !key || !json_object_is_type(obj, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

struct json_object *jsonx_path(const struct json_object *obj, const char *path)
{
	char key[256];
	const struct json_object *cur = obj;
	const char *p = path;

	if (!obj || !path)
		return NULL;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		struct json_object *next = jsonx_get(cur, key);
		if (!next)
			return NULL;
		if (!dot)
			return next;
		cur = next;
		p = dot + 1;
	}
}

bool jsonx_as_int64(const struct json_object *v, int64_t *out)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return false;
	int64_t i = json_object_get_int64(v);
	/* json-c keeps values above INT64_MAX as uint64 and clamps get_int64: reject those. */
	if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return false;
	*out = i;
	return true;
}

bool jsonx_as_str(const struct json_object *v, const char **out)
{
	if (!v || !json_object_is_type(v, json_type_string))
		return false;
	*out = json_object_get_string((struct json_object *)v);
	return *out != NULL;
}

bool jsonx_as_bool(const struct json_object *v, bool *out)
{
	if (!v) {
		/* json-c represents JSON null as NULL: GitLab sends null for some false booleans. */
		*out = false;
		return true;
	}
	if (!json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v) != 0;
	return true;
}

bool jsonx_int64(const struct json_object *obj, const char *key, int64_t *out)
{
	return jsonx_as_int64(jsonx_get(obj, key), out);
}

bool jsonx_str(const struct json_object *obj, const char *key, const char **out)
{
	return jsonx_as_str(jsonx_get(obj, key), out);
}

bool jsonx_bool(const struct json_object *obj, const char *key, bool *out)
{
	struct json_object *v = NULL;
	if (!obj || !key || !json_object_is_type(obj, json_type_object))
		return false;
	if (!json_object_object_get_ex(obj, key, &v))
		return false; /* missing is not false: the caller decides the default */
	return jsonx_as_bool(v, out);
}

static bool member_of_type(const struct json_object *obj, const char *key, json_type type, struct json_object **out)
{
	struct json_object *v = jsonx_get(obj, key);
	if (!v || !json_object_is_type(v, type))
		return false;
	*out = v;
	return true;
}

bool jsonx_array(const struct json_object *obj, const char *key, struct json_object **out)
{
	return member_of_type(obj, key, json_type_array, out);
}

bool jsonx_object(const struct json_object *obj, const char *key, struct json_object **out)
{
	return member_of_type(obj, key, json_type_object, out);
}

bool jsonx_path_int64(const struct json_object *obj, const char *path, int64_t *out)
{
	return jsonx_as_int64(jsonx_path(obj, path), out);
}

bool jsonx_path_str(const struct json_object *obj, const char *path, const char **out)
{
	return jsonx_as_str(jsonx_path(obj, path), out);
}

bool jsonx_path_bool(const struct json_object *obj, const char *path, bool *out)
{
	const char *dot = path ? strrchr(path, '.') : NULL;
	if (!dot)
		return jsonx_bool(obj, path, out);
	char parent[256];
	size_t n = (size_t)(dot - path);
	if (n >= sizeof(parent))
		return false;
	memcpy(parent, path, n);
	parent[n] = '\0';
	return jsonx_bool(jsonx_path(obj, parent), dot + 1, out);
}
