/*
 * core/xalloc.h
 *    mrgate's one out-of-memory policy: allocation failure aborts the process, as Redis's zmalloc does.
 *
 * Design: a service that cannot allocate a few hundred bytes cannot answer, log or roll back reliably either, and
 * every caller that "handles" NULL from malloc invents its own half-answer (json-c even turns a NULL member into a
 * silent JSON null). So allocations of bounded size go through these wrappers, which never return NULL: they log
 * one line to stderr and abort(). systemd / docker restart the process; every write is transactional, so nothing is
 * half-written. Allocations whose size comes from untrusted input (request bodies, GitLab answers, archives) are
 * size-checked against their caps BEFORE allocating (see STYLE.md), so an attacker cannot reach the abort.
 * The json-c constructors wrapped below (jx_*) follow the same rule: a tree built for an answer has no silent holes.
 * Threading: all functions are thread-safe.
 * Ownership: what is returned is the caller's: free() for x*alloc/xstrdup, json_object_put() for jx_* (or hand it
 * to json_object_object_add / json_object_array_add, which take ownership).
 */
#ifndef MRGATE_CORE_XALLOC_H
#define MRGATE_CORE_XALLOC_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Report and abort; never returns. `what` names the allocation ("json object", "malloc"). */
_Noreturn void xalloc_oom(const char *what, size_t size);

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);            /* s must not be NULL */
char *xstrndup(const char *s, size_t n); /* at most n bytes of s, NUL-terminated */

/* json-c constructors that never return NULL. */
struct json_object *jx_object(void);
struct json_object *jx_array(void);
struct json_object *jx_str(const char *s); /* s NULL -> JSON null (returns NULL, which json-c adds as null) */
struct json_object *jx_strn(const char *s, size_t n);
struct json_object *jx_int(int64_t v);
struct json_object *jx_bool(int v);
struct json_object *jx_double(double v);

#endif
