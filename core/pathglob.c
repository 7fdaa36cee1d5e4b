/*
 * core/pathglob.c
 *    gitignore-like glob matching. See pathglob.h for the rules.
 *
 * The matcher is a dynamic programme over (pattern position, text position), run forwards over the pattern: row
 * F holds, for every prefix of the text, whether the pattern read so far matches it. Each pattern token turns one
 * row into the next in O(text) steps, so a match costs O(pattern x text) whatever the stars: no backtracking, and no
 * pattern (git's wildmatch was exponential with many "**" + "/") can make it slow. Three rows of PATHGLOB_MAX + 1
 * bytes live on the stack; nothing is allocated. One run answers every prefix of the text at once, which is what
 * the parent-directory rule needs.
 */
#include "pathglob.h"

#include "textsafe.h"

#include <stdio.h>
#include <string.h>

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

/*
 * Match [p, pe) against every prefix of [t, t + tl): on return row[j] is 1 iff the pattern matches t[0, j).
 * row, tmp and skip each hold tl + 1 bytes. Returns false when no prefix matches (row is then all zero).
 */
static bool match_prefixes(const char *p, const char *pe, const char *t, size_t tl, unsigned char *row,
                           unsigned char *tmp, unsigned char *skip)
{
	const char *pstart = p;
	unsigned char *cur = row, *nxt = tmp;
	bool skip_pending = false, any = true;
	memset(cur, 0, tl + 1);
	cur[0] = 1;
	while (p < pe && any) {
		any = false;
		if (*p == '*') {
			const char *first = p;
			while (p + 1 < pe && p[1] == '*')
				p++;
			bool starstar = p > first;
			/* A whole-component "**" followed by '/' may also match no directory at all: the row before
			 * it is carried over the '/' (see the single-character case). */
			if (starstar && (first == pstart || first[-1] == '/') && p + 1 < pe && p[1] == '/') {
				memcpy(skip, cur, tl + 1);
				skip_pending = true;
			}
			nxt[0] = cur[0];
			any = nxt[0];
			for (size_t j = 1; j <= tl; j++) {
				nxt[j] = cur[j] | (nxt[j - 1] & (starstar || t[j - 1] != '/'));
				any |= nxt[j];
			}
			p++;
		} else {
			/* One character of text: a literal, "\x", "?" or a bracket expression. */
			const char *ce = NULL;
			unsigned char lit = (unsigned char)*p;
			int kind = 0; /* 0 literal, 1 '?', 2 class */
			bool raw_slash = *p == '/';
			if (*p == '\\') {
				if (p + 1 < pe)
					lit = (unsigned char)*++p;
			} else if (*p == '?') {
				kind = 1;
			} else if (*p == '[' && (ce = class_end(p, pe)) != NULL) {
				kind = 2;
			}
			nxt[0] = 0;
			for (size_t j = 0; j < tl; j++) {
				unsigned char c = (unsigned char)t[j];
				bool ok = false;
				if (cur[j]) {
					if (kind == 0)
						ok = c == lit;
					else if (kind == 1)
						ok = c != '/';
					else
						ok = c != '/' && class_match(p, ce, c);
				}
				nxt[j + 1] = ok;
			}
			if (skip_pending && raw_slash) {
				for (size_t j = 0; j <= tl; j++)
					nxt[j] |= skip[j];
			}
			skip_pending = false;
			for (size_t j = 0; j <= tl && !any; j++)
				any = nxt[j];
			p = kind == 2 ? ce + 1 : p + 1;
		}
		unsigned char *x = cur;
		cur = nxt;
		nxt = x;
	}
	if (cur != row)
		memcpy(row, cur, tl + 1);
	return any;
}

/* Write the reason into why (when given) and return false. */
#define REFUSE(...)                                                                                                    \
	do {                                                                                                           \
		if (why && whylen)                                                                                     \
			snprintf(why, whylen, __VA_ARGS__);                                                            \
		return false;                                                                                          \
	} while (0)

/* The first character of [p, pe) a reader of the pattern cannot see, or NULL: a C0 control or DEL (*cp its byte),
 * or an invisible or reordering format character (core/textsafe.h; *cp its code point). */
static const char *invisible_char(const char *p, const char *pe, long *cp)
{
	for (const char *u = p; u < pe; u++) {
		if ((unsigned char)*u < 0x20 || *u == 0x7f) {
			*cp = (unsigned char)*u;
			return u;
		}
		if (textsafe_invisible(u, pe, cp))
			return u;
	}
	return NULL;
}

bool pathglob_check(const char *pattern, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = '\0';
	if (!pattern)
		REFUSE("it is not a string");
	size_t n = strnlen(pattern, PATHGLOB_PATTERN_MAX + 1);
	if (n == 0)
		REFUSE("it is empty");
	if (n > PATHGLOB_PATTERN_MAX)
		REFUSE("it is longer than %d bytes, the most allowed", PATHGLOB_PATTERN_MAX);
	if (pattern[0] == '!')
		REFUSE("\"!\" negation is not supported");
	if (pattern[0] == '#')
		REFUSE("a pattern starting with \"#\" is a comment and matches nothing");
	const char *pe = pattern + n;
	long cp = 0;
	const char *bad = invisible_char(pattern, pe, &cp);
	if (bad && cp < 0x80)
		REFUSE("it has a control character (0x%02lx) at byte %zu", cp, (size_t)(bad - pattern) + 1);
	if (bad)
		REFUSE("it has the invisible character U+%04lX at byte %zu, which hides from readers what it ignores",
		       cp, (size_t)(bad - pattern) + 1);
	size_t starstar = 0;
	for (const char *p = pattern; p < pe; p++) {
		if (*p == '\\' && p + 1 < pe) {
			p++;
		} else if (*p == '[') {
			const char *ce = class_end(p, pe);
			if (!ce)
				REFUSE("a bracket \"[\" is not closed");
			p = ce;
		} else if (*p == '*' && p + 1 < pe && p[1] == '*') {
			starstar++;
			while (p + 1 < pe && p[1] == '*')
				p++;
		}
	}
	if (starstar > PATHGLOB_MAX_STARSTAR)
		REFUSE("it has %zu \"**\"; at most %d are allowed", starstar, PATHGLOB_MAX_STARSTAR);
	/* "/" alone or only slashes names nothing */
	if (strspn(pattern, "/") == n)
		REFUSE("it names no path, only slashes");
	return true;
}
#undef REFUSE

bool pathglob_valid(const char *pattern)
{
	return pathglob_check(pattern, NULL, 0);
}

bool pathglob_match(const char *pattern, const char *path)
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

	unsigned char row[PATHGLOB_MAX + 1], tmp[PATHGLOB_MAX + 1], skip[PATHGLOB_MAX + 1];
	if (anchored) {
		/* The path itself and each parent directory: one run answers every prefix. */
		size_t tl = (size_t)(te - t);
		if (!match_prefixes(p, pe, t, tl, row, tmp, skip))
			return false;
		for (size_t e = 1; e <= tl; e++) {
			if (e < tl && t[e] != '/')
				continue;
			if (e == tl && dir_only)
				break;
			if (row[e])
				return true;
		}
		return false;
	}
	/* Each component; the last one only when the pattern is not restricted to directories. */
	for (const char *s = t; s < te;) {
		const char *e = memchr(s, '/', (size_t)(te - s));
		if (!e)
			e = te;
		if (!(e == te && dir_only) && e > s && match_prefixes(p, pe, s, (size_t)(e - s), row, tmp, skip) &&
		    row[e - s])
			return true;
		s = e + 1;
	}
	return false;
}

bool pathglob_match_any(const char *const *patterns, size_t n, const char *path)
{
	if (!patterns)
		return false;
	for (size_t i = 0; i < n; i++)
		if (pathglob_match(patterns[i], path))
			return true;
	return false;
}
