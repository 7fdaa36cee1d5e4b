/*
 * tests/fuzz/pathglob_reference.c
 *    The backtracking matcher core/pathglob.c had before its dynamic programme (git's wildmatch scheme), kept as
 *    an oracle: fuzz_pathglob compares the two on small inputs, where backtracking is still cheap.
 */
#include "pathglob.h"

bool pathglob_reference_match(const char *pattern, const char *path);

#include <string.h>

enum { WM_MATCH = 0, WM_NOMATCH = 1, WM_ABORT_ALL = -1, WM_ABORT_TO_STARSTAR = -2 };

/* The end of a bracket expression starting at p ('['), or NULL when it is not closed. */
static const char *class_end(const char *p, const char *pe)
{
	const char *q = p + 1;
	if (q < pe && (*q == '!' || *q == '^'))
		q++;
	if (q < pe && *q == ']')
		q++; /* a ']' first is literal */
	for (; q < pe; q++) {
		if (*q == '\\' && q + 1 < pe)
			q++;
		else if (*q == ']')
			return q;
	}
	return NULL;
}

/* Does c (never '/') belong to the bracket expression [p, ce] (p at '[', ce at ']')? */
static bool class_match(const char *p, const char *ce, unsigned char c)
{
	const char *q = p + 1;
	bool negate = false, hit = false;
	if (*q == '!' || *q == '^') {
		negate = true;
		q++;
	}
	while (q < ce) {
		unsigned char lo = (unsigned char)*q;
		if (lo == '\\' && q + 1 < ce)
			lo = (unsigned char)*++q;
		unsigned char hi = lo;
		if (q + 2 < ce && q[1] == '-') {
			q += 2;
			hi = (unsigned char)*q;
			if (hi == '\\' && q + 1 < ce)
				hi = (unsigned char)*++q;
		}
		if (c >= lo && c <= hi)
			hit = true;
		q++;
	}
	return hit != negate;
}

static int wm(const char *pstart, const char *p, const char *pe, const char *t, const char *te)
{
	for (; p < pe; p++, t++) {
		if (t >= te && *p != '*')
			return WM_ABORT_ALL;
		switch (*p) {
		case '\\':
			if (p + 1 < pe)
				p++;
			if (*t != *p)
				return WM_NOMATCH;
			break;
		case '?':
			if (*t == '/')
				return WM_NOMATCH;
			break;
		case '[': {
			const char *ce = class_end(p, pe);
			if (!ce) {
				if (*t != '[')
					return WM_NOMATCH;
				break;
			}
			if (*t == '/' || !class_match(p, ce, (unsigned char)*t))
				return WM_NOMATCH;
			p = ce;
			break;
		}
		case '*': {
			const char *first = p;
			bool match_slash = false;
			while (p + 1 < pe && p[1] == '*')
				p++;
			if (p > first) {
				match_slash = true;
				/* A whole-component "**" followed by '/' may also match no directory at all. */
				if ((first == pstart || first[-1] == '/') && p + 1 < pe && p[1] == '/' &&
				    wm(pstart, p + 2, pe, t, te) == WM_MATCH)
					return WM_MATCH;
			}
			if (p + 1 == pe) {
				/* Trailing star: the rest of the text, without '/' for a single star. */
				if (!match_slash && t < te && memchr(t, '/', (size_t)(te - t)))
					return WM_ABORT_TO_STARSTAR;
				return WM_MATCH;
			}
			for (; t < te; t++) {
				int r = wm(pstart, p + 1, pe, t, te);
				if (r != WM_NOMATCH) {
					if (!match_slash || r != WM_ABORT_TO_STARSTAR)
						return r;
				} else if (!match_slash && *t == '/') {
					return WM_ABORT_TO_STARSTAR;
				}
			}
			return WM_ABORT_ALL;
		}
		default:
			if (*t != *p)
				return WM_NOMATCH;
			break;
		}
	}
	return t == te ? WM_MATCH : WM_NOMATCH;
}

static bool match_span(const char *p, const char *pe, const char *t, const char *te)
{
	return wm(p, p, pe, t, te) == WM_MATCH;
}

bool pathglob_reference_match(const char *pattern, const char *path)
{
	if (!pattern || !path)
		return false;
	size_t pl = strnlen(pattern, PATHGLOB_MAX + 1), tl = strnlen(path, PATHGLOB_MAX + 1);
	if (pl == 0 || pl > PATHGLOB_MAX || tl > PATHGLOB_MAX || pattern[0] == '#' || pattern[0] == '!')
		return false;
	const char *p = pattern, *pe = pattern + pl, *t = path, *te = path + tl;
	for (;;) {
		if (te - t >= 2 && t[0] == '.' && t[1] == '/')
			t += 2;
		else if (t < te && t[0] == '/')
			t++;
		else
			break;
	}
	if (t == te)
		return false;

	bool dir_only = false, anchored = false;
	while (pe > p && pe[-1] == '/' && !(pe - p >= 2 && pe[-2] == '\\')) {
		pe--;
		dir_only = true;
	}
	if (p < pe && *p == '/') {
		anchored = true;
		while (p < pe && *p == '/')
			p++;
	}
	if (p == pe)
		return false;
	if (!anchored)
		anchored = memchr(p, '/', (size_t)(pe - p)) != NULL;

	if (anchored) {
		/* The path itself and each parent directory, shortest first. */
		for (const char *e = t; e <= te; e++) {
			if (e < te && *e != '/')
				continue;
			if (e == te && dir_only)
				break;
			if (e > t && match_span(p, pe, t, e))
				return true;
		}
		return false;
	}
	/* Each component; the last one only when the pattern is not restricted to directories. */
	for (const char *s = t; s < te;) {
		const char *e = memchr(s, '/', (size_t)(te - s));
		if (!e)
			e = te;
		if (!(e == te && dir_only) && e > s && match_span(p, pe, s, e))
			return true;
		s = e + 1;
	}
	return false;
}
