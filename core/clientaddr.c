/*
 * core/clientaddr.c
 *    Client addresses through trusted proxies.
 */
#include "clientaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An address as 16 bytes (IPv4 as its IPv4-mapped IPv6 form, so "::ffff:10.0.0.1" and "10.0.0.1" are one). */
struct addr {
	unsigned char b[16];
};

static bool parse_addr(const char *text, struct addr *a)
{
	struct in_addr v4;
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &v4) == 1) {
		a->b[10] = a->b[11] = 0xff;
		memcpy(a->b + 12, &v4, 4);
		return true;
	}
	return inet_pton(AF_INET6, text, a->b) == 1;
}

bool clientaddr_valid(const char *text)
{
	struct addr a;
	return text && parse_addr(text, &a);
}

/* One list entry ("10.0.0.0/8", "::1", "10.0.0.5"): its address and prefix length over the 16 bytes. */
static bool parse_range(const char *text, struct addr *a, int *bits)
{
	char buf[64];
	size_t n = strlen(text);
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, text, n + 1);
	char *slash = strchr(buf, '/');
	long prefix = -1;
	if (slash) {
		char *end = NULL;
		*slash = '\0';
		if (!isdigit((unsigned char)slash[1]))
			return false;
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0')
			return false;
	}
	if (!parse_addr(buf, a))
		return false;
	bool v4 = strchr(buf, ':') == NULL;
	int max = v4 ? 32 : 128;
	if (prefix > max)
		return false;
	*bits = prefix < 0 ? 128 : (int)prefix + (v4 ? 96 : 0);
	return true;
}

static bool in_range(const struct addr *x, const struct addr *net, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(x->b, net->b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (x->b[full] & mask) == (net->b[full] & mask);
}

/* Copy the entry of list (comma-separated) at *pos, spaces trimmed, into buf; advance *pos. False at the end. */
static bool next_entry(const char **pos, char *buf, size_t cap, bool *too_long)
{
	const char *p = *pos;
	if (!p || !*p)
		return false;
	const char *comma = strchr(p, ',');
	const char *end = comma ? comma : p + strlen(p);
	*pos = comma ? comma + 1 : end;
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	size_t n = (size_t)(end - p);
	*too_long = n >= cap;
	if (*too_long)
		n = cap - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

enum core_status clientaddr_check(const char *trusted, char *err, size_t errlen)
{
	const char *pos = trusted;
	char entry[64];
	bool too_long = false;
	while (next_entry(&pos, entry, sizeof(entry), &too_long)) {
		struct addr a;
		int bits = 0;
		if (!*entry && !*pos)
			break; /* a trailing comma */
		if (too_long || !parse_range(entry, &a, &bits)) {
			snprintf(
			    err, errlen,
			    "MRGATE_TRUSTED_PROXIES: \"%.60s\" is neither an IP address nor a CIDR range (give the "
			    "reverse proxies' addresses, comma-separated, e.g. 10.0.0.5, 172.16.0.0/12)",
			    entry);
			return CORE_EINVAL;
		}
	}
	return CORE_OK;
}

static bool trusted_has(const char *trusted, const struct addr *x)
{
	const char *pos = trusted;
	char entry[64];
	bool too_long = false;
	while (next_entry(&pos, entry, sizeof(entry), &too_long)) {
		struct addr net;
		int bits = 0;
		if (!too_long && parse_range(entry, &net, &bits) && in_range(x, &net, bits))
			return true;
	}
	return false;
}

bool clientaddr_resolve(const char *trusted, const char *peer, const char *xff, char *out, size_t cap)
{
	snprintf(out, cap, "%s", peer ? peer : "unknown");
	struct addr a;
	if (!trusted || !*trusted || !peer || !parse_addr(peer, &a) || !trusted_has(trusted, &a))
		return false;
	/* right to left: each trusted hop vouches for the entry before it */
	size_t n = xff ? strlen(xff) : 0;
	bool from_xff = false;
	while (n > 0) {
		size_t end = n;
		while (n > 0 && xff[n - 1] != ',')
			n--;
		size_t start = n;
		if (n > 0)
			n--; /* the comma */
		while (start < end && isspace((unsigned char)xff[start]))
			start++;
		while (end > start && isspace((unsigned char)xff[end - 1]))
			end--;
		char entry[CLIENTADDR_MAX];
		if (end - start == 0 || end - start >= sizeof(entry))
			break;
		memcpy(entry, xff + start, end - start);
		entry[end - start] = '\0';
		if (!parse_addr(entry, &a))
			break; /* not an address: the hop that wrote it is the client */
		snprintf(out, cap, "%s", entry);
		from_xff = true;
		if (!trusted_has(trusted, &a))
			break;
	}
	return from_xff;
}
