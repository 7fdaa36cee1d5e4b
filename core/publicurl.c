/*
 * core/publicurl.c
 *    MRGATE_PUBLIC_URL checks (see publicurl.h).
 */
#include "publicurl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Split an http(s) URL: the host (brackets of an IPv6 literal removed) into host, and where the port starts. */
static bool split(const char *url, char *host, size_t hcap, const char **port, const char **rest)
{
	const char *p;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return false;
	const char *end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)))
		return false; /* no user info in a public URL */
	const char *hs = p, *he;
	*port = NULL;
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (!he)
			return false;
		if (he + 1 < end) {
			if (he[1] != ':')
				return false;
			*port = he + 2;
		}
	} else {
		he = memchr(p, ':', (size_t)(end - p));
		if (he)
			*port = he + 1;
		else
			he = end;
	}
	size_t n = (size_t)(he - hs);
	if (n == 0 || n >= hcap)
		return false;
	for (size_t i = 0; i < n; i++)
		host[i] = (char)tolower((unsigned char)hs[i]);
	host[n] = '\0';
	*rest = end;
	return true;
}

enum core_status publicurl_check(const char *url, char *err, size_t errlen)
{
	char host[256];
	const char *port = NULL, *rest = NULL;
	const char *why = NULL;
	if (!url || !*url)
		why = "it is empty";
	else if (strlen(url) > PUBLICURL_MAX)
		why = "it is longer than 500 characters";
	for (const char *c = url; !why && *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			why = "it contains a blank or a control character";
	if (!why && !split(url, host, sizeof(host), &port, &rest))
		why = strstr(url, "://") ? "it must be an http:// or https:// URL with a host"
		                         : "it has no scheme: write it as http://host[:port] or https://host[:port]";
	if (!why && port) {
		const char *pe = port;
		long v = 0;
		while (pe < rest && isdigit((unsigned char)*pe) && v <= 65535)
			v = v * 10 + (*pe++ - '0');
		if (pe != rest || pe == port || v < 1 || v > 65535)
			why = "its port must be a number from 1 to 65535";
	}
	if (!why && strpbrk(rest, "?#"))
		why = "it must not have a query or a fragment";
	for (size_t i = 0; !why && i < strlen(host); i++) {
		unsigned char ch = (unsigned char)host[i];
		if (!(isalnum(ch) || ch == '-' || ch == '.' || ch == ':' || ch == '_'))
			why = "its host has characters a host name cannot have";
	}
	if (why) {
		snprintf(
		    err, errlen,
		    "invalid MRGATE_PUBLIC_URL \"%.200s\": %s (it is the address GitLab sends webhooks to and links "
		    "commit statuses to, e.g. https://mrgate.example.com)",
		    url ? url : "", why);
		return CORE_EINVAL;
	}
	return CORE_OK;
}

bool publicurl_local(const char *url, char *why, size_t whylen)
{
	char host[256];
	const char *port = NULL, *rest = NULL;
	const char *kind = NULL;
	if (!url || !split(url, host, sizeof(host), &port, &rest))
		return false;
	size_t n = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;
	if (strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0)) {
		kind = "a loopback address";
	} else if (inet_pton(AF_INET, host, &a4) == 1) {
		uint32_t ip = ntohl(a4.s_addr);
		if ((ip >> 24) == 127)
			kind = "a loopback address";
		else if ((ip >> 24) == 10 || (ip >> 20) == (172u << 4 | 1) || (ip >> 16) == (192u << 8 | 168))
			kind = "a private network address";
		else if ((ip >> 16) == (169u << 8 | 254))
			kind = "a link-local address";
		else if ((ip >> 22) == (100u << 2 | 1))
			kind = "a shared (carrier-grade NAT) address";
		else if ((ip >> 24) == 0)
			kind = "an unspecified address";
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		static const unsigned char loop[16] = {[15] = 1}, any[16] = {0};
		const unsigned char *b = a6.s6_addr;
		if (memcmp(b, loop, 16) == 0)
			kind = "a loopback address";
		else if (memcmp(b, any, 16) == 0)
			kind = "an unspecified address";
		else if ((b[0] & 0xfe) == 0xfc)
			kind = "a private network address";
		else if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
			kind = "a link-local address";
	} else if (!strchr(host, '.')) {
		kind = "a name without a domain, which no public DNS resolves";
	}
	if (!kind)
		return false;
	snprintf(
	    why, whylen,
	    "MRGATE_PUBLIC_URL %.200s is %s: a GitLab cannot deliver webhooks there (GitLab.com never can, and a "
	    "self-managed GitLab refuses such hook URLs unless local requests are allowed); set MRGATE_PUBLIC_URL to "
	    "an address GitLab can reach before applying gates",
	    url, kind);
	return true;
}
