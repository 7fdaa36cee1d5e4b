/*
 * core/xalloc.c
 *    Allocation wrappers that abort on out-of-memory (the policy is written in xalloc.h).
 */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void xalloc_oom(const char *what, size_t size)
{
	fprintf(stderr, "mrgate: out of memory allocating %zu bytes (%s); aborting\n", size, what);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		xalloc_oom("malloc", size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		xalloc_oom("calloc", n * size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q)
		xalloc_oom("realloc", size);
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		xalloc_oom("strdup", strlen(s) + 1);
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		xalloc_oom("strndup", n + 1);
	return p;
}

static struct json_object *checked(struct json_object *o, const char *what)
{
	if (!o)
		xalloc_oom(what, sizeof(void *));
	return o;
}

struct json_object *jx_object(void)
{
	return checked(json_object_new_object(), "json object");
}

struct json_object *jx_array(void)
{
	return checked(json_object_new_array(), "json array");
}

struct json_object *jx_str(const char *s)
{
	return s ? checked(json_object_new_string(s), "json string") : NULL;
}

struct json_object *jx_strn(const char *s, size_t n)
{
	return s ? checked(json_object_new_string_len(s, (int)n), "json string") : NULL;
}

struct json_object *jx_int(int64_t v)
{
	return checked(json_object_new_int64(v), "json int");
}

struct json_object *jx_bool(int v)
{
	return checked(json_object_new_boolean(v ? 1 : 0), "json bool");
}

struct json_object *jx_double(double v)
{
	return checked(json_object_new_double(v), "json double");
}
