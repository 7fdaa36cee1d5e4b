/*
 * core/jsonscan.c
 *    A strict one-pass JSON checker that keeps chosen members of the elements of an array (see jsonscan.h).
 */
#include "jsonscan.h"

#include "textsafe.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct path {
	const char *key[JSON_SCAN_MAX_STEPS];
	size_t key_len[JSON_SCAN_MAX_STEPS];
	size_t steps;
};

struct scan {
	const char *p, *end;
	const char *fail_at; /* where the text went wrong (for the message) */
	const char *why;
	struct path paths[JSON_SCAN_MAX_PATHS];
	size_t npaths;
	struct jscan_value *cur;            /* the current element's values (npaths of them) */
	unsigned seen[JSON_SCAN_MAX_PATHS]; /* the current element: bit d set when path i's key d was met */
	/* per key depth d: bit (length, first byte) of every path's key d (key_bit), so that most keys no path reads
	 * are passed over without comparing them with each path's */
	uint64_t key_bits[JSON_SCAN_MAX_STEPS][4];
};

/* The bit of a key's (length, first byte) in key_bits: 256 buckets, collisions only cost a comparison. */
static unsigned key_bit(size_t len, unsigned char first)
{
	return (unsigned)((len * 31u + first) & 255u);
}

/* A key no path may read at depth level: its raw (unescaped) text misses key_bits. Escaped keys always may. */
static bool key_skippable(const struct scan *s, int level, const char *k, size_t klen, bool escaped)
{
	if (escaped || klen < 3)
		return false;
	unsigned b = key_bit(klen - 2, (unsigned char)k[1]);
	return !(s->key_bits[level][b >> 6] & (UINT64_C(1) << (b & 63)));
}

static bool fail(struct scan *s, const char *at, const char *why)
{
	if (!s->why) {
		s->fail_at = at;
		s->why = why;
	}
	return false;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/*
 * Whether any byte of w (eight bytes of a string) needs a look of its own: a quote, a backslash, a control character
 * (below 0x20) or a byte of 0x80 or above. Each test is exact for the word as a whole (the borrow of a subtraction
 * can mark a byte above a true match, never a word without one).
 */
static inline bool swar_special(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
	uint64_t zero_q = (q - ones) & ~q, zero_b = (b - ones) & ~b, below_space = (w - ones * 0x20) & ~w;
	return ((zero_q | zero_b | below_space) & high) != 0 || (w & high) != 0;
}

/* A string at s->p (its opening quote); *escaped: it has a backslash. */
static bool scan_string(struct scan *s, bool *escaped)
{
	const unsigned char *p = (const unsigned char *)s->p + 1, *end = (const unsigned char *)s->end;
	*escaped = false;
	while (p < end) {
		/* eight plain ASCII bytes at a time: no quote, backslash, control character or UTF-8 sequence */
		while (end - p >= 8) {
			uint64_t w;
			memcpy(&w, p, sizeof(w));
			if (swar_special(w))
				break;
			p += 8;
		}
		if (p >= end)
			break;
		unsigned c = *p;
		if (c == '"') {
			s->p = (const char *)p + 1;
			return true;
		}
		if (c == '\\') {
			*escaped = true;
			if (p + 1 >= end)
				break;
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't': p += 2; continue;
			case 'u':
				if (end - p < 6 || !isxdigit(p[2]) || !isxdigit(p[3]) || !isxdigit(p[4]) ||
				    !isxdigit(p[5]))
					return fail(s, (const char *)p, "a \\u escape needs four hex digits");
				p += 6;
				continue;
			default: return fail(s, (const char *)p, "an unknown escape in a string");
			}
		}
		if (c < 0x20)
			return fail(s, (const char *)p, "a control character in a string");
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t n = textsafe_utf8_len(p, end);
		if (!n)
			return fail(s, (const char *)p, "invalid UTF-8 in a string");
		p += n;
	}
	return fail(s, s->end, "the document ends inside a string");
}

/* A number at s->p; *is_int: without fraction or exponent. */
static bool scan_number(struct scan *s, bool *is_int)
{
	const char *p = s->p, *end = s->end;
	*is_int = true;
	if (p < end && *p == '-')
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return fail(s, p, "a number needs digits");
	if (*p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return fail(s, p, "a number with a leading zero");
	} else
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	if (p < end && *p == '.') {
		*is_int = false;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return fail(s, p, "a number needs digits after its decimal point");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		*is_int = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return fail(s, p, "a number needs digits in its exponent");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	s->p = p;
	return true;
}

static bool scan_literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, s->p, "an unexpected character");
	s->p += n;
	return true;
}

static bool scan_value(struct scan *s, int depth, unsigned mask, int level, struct jscan_value *out);

/* At the opening of a container `depth` deep that closes with `close`: 1 items follow, 0 it is empty (its close
 * is passed), -1 it is nested too deep (the failure is recorded). */
static int open_items(struct scan *s, int depth, char close)
{
	if (depth > JSON_SCAN_MAX_DEPTH) {
		fail(s, s->p, "nested deeper than 63 levels");
		return -1;
	}
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	return 1;
}

/* After a member or an element of a container that closes with `close`: 1 another follows (its ',' is passed),
 * 0 the container ended (its close is passed), -1 neither (the failure is recorded). */
static int next_item(struct scan *s, char close)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		return 1;
	}
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	fail(s, s->p,
	     close == '}' ? "an object needs ',' or '}' after a member" : "an array needs ',' or ']' after an element");
	return -1;
}

/* The decoded key k (with its quotes, escaped or not) equals want[0..n). */
static bool key_is(const char *k, size_t klen, bool escaped, const char *want, size_t n)
{
	if (!escaped)
		return klen == n + 2 && memcmp(k + 1, want, n) == 0;
	struct jscan_value v = {JSCAN_STRING, k, klen};
	struct buf b = {0};
	bool eq = jscan_str(&v, &b) && b.len == n && memcmp(buf_str(&b), want, n) == 0;
	buf_free(&b);
	return eq;
}

/*
 * An object at s->p. mask: the paths whose first `level` keys lead here (level -1: an object outside any element,
 * or an element's descendant no path reads).
 */
static bool scan_object(struct scan *s, int depth, unsigned mask, int level)
{
	int items = open_items(s, depth, '}');
	if (items <= 0)
		return items == 0;
	for (;;) {
		skip_ws(s);
		if (s->p >= s->end || *s->p != '"')
			return fail(s, s->p, "an object member needs a double-quoted key");
		const char *k = s->p;
		bool escaped = false;
		if (!scan_string(s, &escaped))
			return false;
		size_t klen = (size_t)(s->p - k);
		unsigned sub = 0;
		if (mask && !key_skippable(s, level, k, klen, escaped))
			for (unsigned m = mask; m; m &= m - 1) {
				size_t i = (size_t)__builtin_ctz(m);
				const struct path *pa = &s->paths[i];
				if (!key_is(k, klen, escaped, pa->key[level], pa->key_len[level]))
					continue;
				if (s->seen[i] & (1u << level))
					return fail(
					    s, k,
					    "an object has a member mrgate reads twice, so what it means is ambiguous");
				s->seen[i] |= 1u << level;
				sub |= 1u << i;
			}
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return fail(s, s->p, "an object member needs a ':' after its key");
		s->p++;
		skip_ws(s);
		/* a path that ends at this key takes the value; the others go on into it */
		struct jscan_value *take = NULL;
		unsigned deeper = 0;
		for (unsigned m = sub; m; m &= m - 1) {
			size_t i = (size_t)__builtin_ctz(m);
			if (s->paths[i].steps == (size_t)level + 1)
				take = &s->cur[i];
			else
				deeper |= 1u << i;
		}
		struct jscan_value v = {0};
		if (!scan_value(s, depth, deeper, deeper ? level + 1 : -1, &v))
			return false;
		for (unsigned m = take ? sub : 0; m; m &= m - 1) {
			size_t i = (size_t)__builtin_ctz(m);
			if (s->paths[i].steps == (size_t)level + 1)
				s->cur[i] = v;
		}
		int more = next_item(s, '}');
		if (more <= 0)
			return more == 0;
	}
}

/* An array at s->p that is not the top-level one. */
static bool scan_array(struct scan *s, int depth)
{
	int items = open_items(s, depth, ']');
	if (items <= 0)
		return items == 0;
	for (;;) {
		struct jscan_value v;
		skip_ws(s);
		if (!scan_value(s, depth, 0, -1, &v))
			return false;
		int more = next_item(s, ']');
		if (more <= 0)
			return more == 0;
	}
}

/* A value at s->p (after whitespace), nested `depth` containers deep; its type and text into *out. */
static bool scan_value(struct scan *s, int depth, unsigned mask, int level, struct jscan_value *out)
{
	const char *start = s->p;
	bool ok, flag = false;
	if (s->p >= s->end)
		return fail(s, s->p, "the document ends where a value should be");
	switch (*s->p) {
	case '{':
		out->type = JSCAN_OBJECT;
		ok = scan_object(s, depth + 1, mask, level);
		break;
	case '[':
		out->type = JSCAN_ARRAY;
		ok = scan_array(s, depth + 1);
		break;
	case '"':
		out->type = JSCAN_STRING;
		ok = scan_string(s, &flag);
		break;
	case 't':
		out->type = JSCAN_TRUE;
		ok = scan_literal(s, "true", 4);
		break;
	case 'f':
		out->type = JSCAN_FALSE;
		ok = scan_literal(s, "false", 5);
		break;
	case 'n':
		out->type = JSCAN_NULL;
		ok = scan_literal(s, "null", 4);
		break;
	default:
		if (*s->p != '-' && (*s->p < '0' || *s->p > '9'))
			return fail(s, s->p, "an unexpected character");
		ok = scan_number(s, &flag);
		out->type = flag ? JSCAN_INT : JSCAN_NUMBER;
		break;
	}
	out->at = start;
	out->len = (size_t)(s->p - start);
	return ok;
}

static bool split_path(const char *path, struct path *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || out->steps == JSON_SCAN_MAX_STEPS)
			return false;
		out->key[out->steps] = p;
		out->key_len[out->steps++] = n;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

enum core_status jscan_each(const char *text, size_t len, const char *const *paths, size_t npaths,
                            enum core_status (*each)(const struct jscan_value *vals, void *user), void *user,
                            size_t *elements_out, char *err, size_t errlen)
{
	struct scan s = {.p = text, .end = text + len, .npaths = npaths};
	struct jscan_value *vals = NULL;
	size_t n = 0, cap = 0;
	enum core_status st = CORE_OK;
	if (elements_out)
		*elements_out = 0;
	if (npaths > JSON_SCAN_MAX_PATHS) {
		snprintf(err, errlen, "more than %d paths", JSON_SCAN_MAX_PATHS);
		return CORE_EINVAL;
	}
	for (size_t i = 0; i < npaths; i++) {
		if (!split_path(paths[i], &s.paths[i])) {
			snprintf(err, errlen, "the path \"%s\" is empty or too long", paths[i]);
			return CORE_EINVAL;
		}
		for (size_t d = 0; d < s.paths[i].steps; d++) {
			unsigned b = key_bit(s.paths[i].key_len[d], (unsigned char)s.paths[i].key[d][0]);
			s.key_bits[d][b >> 6] |= UINT64_C(1) << (b & 63);
		}
	}
	skip_ws(&s);
	if (s.p >= s.end || *s.p != '[') {
		snprintf(err, errlen, "the document is not a JSON array");
		return CORE_EINVAL;
	}
	s.p++;
	skip_ws(&s);
	bool ok = true;
	if (s.p < s.end && *s.p == ']') {
		s.p++;
	} else {
		for (;;) {
			if (n == cap) {
				cap = cap ? cap * 2 : 128;
				vals = xrealloc(vals, cap * (npaths ? npaths : 1) * sizeof(*vals));
			}
			s.cur = vals + n * (npaths ? npaths : 1);
			memset(s.cur, 0, (npaths ? npaths : 1) * sizeof(*vals));
			memset(s.seen, 0, sizeof(s.seen));
			skip_ws(&s);
			struct jscan_value v;
			bool element_object = s.p < s.end && *s.p == '{';
			ok = scan_value(&s, 1, element_object && npaths ? (1u << npaths) - 1 : 0,
			                element_object ? 0 : -1, &v);
			if (!ok)
				break;
			n++;
			int more = next_item(&s, ']');
			ok = more >= 0;
			if (more <= 0)
				break;
		}
	}
	if (ok) {
		skip_ws(&s);
		if (s.p < s.end)
			ok = fail(&s, s.p, "unexpected data after the JSON value");
	}
	if (!ok) {
		snprintf(err, errlen, "invalid JSON at byte %zu: %s", (size_t)(s.fail_at - text), s.why);
		st = CORE_EINVAL;
		goto out;
	}
	if (elements_out)
		*elements_out = n;
	for (size_t i = 0; i < n && st == CORE_OK; i++)
		st = each(vals + i * (npaths ? npaths : 1), user);
out:
	free(vals);
	return st;
}

bool jscan_int64(const struct jscan_value *v, int64_t *out)
{
	char tmp[32];
	if (v->type != JSCAN_INT || v->len >= sizeof(tmp))
		return false;
	memcpy(tmp, v->at, v->len);
	tmp[v->len] = '\0';
	errno = 0;
	char *e = NULL;
	long long x = strtoll(tmp, &e, 10);
	if (errno == ERANGE || *e != '\0')
		return false;
	*out = (int64_t)x;
	return true;
}

bool jscan_bool(const struct jscan_value *v, bool *out)
{
	if (v->type != JSCAN_TRUE && v->type != JSCAN_FALSE && v->type != JSCAN_NULL)
		return false;
	*out = v->type == JSCAN_TRUE;
	return true;
}

static void put_utf8(struct buf *b, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(b, u, n);
}

/* The four hex digits at p (checked by the scan). */
static unsigned long hex4(const char *p)
{
	char h[5] = {p[0], p[1], p[2], p[3], '\0'};
	return strtoul(h, NULL, 16);
}

bool jscan_str(const struct jscan_value *v, struct buf *b)
{
	if (v->type != JSCAN_STRING || v->len < 2)
		return false;
	buf_reset(b);
	buf_append(b, "", 0);
	const char *p = v->at + 1, *end = v->at + v->len - 1; /* between the quotes; checked by the scan */
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
		buf_append(b, p, run);
		p += run;
		if (!bs)
			break;
		char c = p[1];
		p += 2;
		unsigned long cp;
		switch (c) {
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			cp = hex4(p);
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
				unsigned long lo = hex4(p + 2);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd; /* a lone surrogate */
			break;
		default: cp = (unsigned char)c; break; /* " \ / */
		}
		if (cp == 0)
			return false; /* a C string would end here: the value would be read cut short */
		put_utf8(b, cp);
	}
	return true;
}
