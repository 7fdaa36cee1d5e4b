/*
 * core/textsafe.c
 *    Characters a reader cannot see (see textsafe.h).
 */
#include "textsafe.h"

size_t textsafe_invisible(const char *p, const char *end, long *cp)
{
	const unsigned char *u = (const unsigned char *)p, *ue = (const unsigned char *)end;
	long c;
	size_t len;
	if (u[0] == 0xd8 && u + 1 < ue) {
		c = 0x600 | (u[1] & 0x3f);
		len = 2;
	} else if ((u[0] == 0xe2 || u[0] == 0xef) && u + 2 < ue) {
		c = ((long)(u[0] & 0x0f) << 12) | ((long)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
		len = 3;
	} else {
		return 0;
	}
	if (c == 0x61c || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2060 && c <= 0x2069) || c == 0xfeff) {
		*cp = c;
		return len;
	}
	return 0;
}

size_t textsafe_utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* U+D800-U+DFFF: surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0; /* a continuation byte first, C0/C1 (overlong ASCII), F5-FF, or ASCII */
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

bool textsafe_utf8_valid(const char *text, size_t len, size_t *at)
{
	const unsigned char *s = (const unsigned char *)text, *end = s + len;
	for (size_t i = 0; i < len;) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = textsafe_utf8_len(s + i, end);
		if (n == 0) {
			*at = i;
			return false;
		}
		i += n;
	}
	return true;
}
