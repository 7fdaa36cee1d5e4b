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
