/*
 * core/clientaddr.h
 *    The client address of a request that may have come through trusted reverse proxies (MRGATE_TRUSTED_PROXIES).
 *
 * Design: behind a proxy every request comes from the proxy's address, so the login throttle counted everyone's
 * failures as one address's (20 failed logins anywhere locked every user out). The operator names the proxies,
 * as addresses or CIDR ranges ("10.0.0.5, 172.16.0.0/12, ::1"); a request whose peer is one of them is from the
 * right-most X-Forwarded-For entry that is not (a proxy appends the address it got the request from, so the entries
 * left of it were written by the client and are never believed). An entry that is no address ends the walk at the
 * hop that sent it. With no proxies named, X-Forwarded-For is ignored and the peer is the client.
 * Threading: pure functions on caller-owned data. Ownership: nothing is kept; clientaddr_check() validates a list.
 */
#ifndef MRGATE_CORE_CLIENTADDR_H
#define MRGATE_CORE_CLIENTADDR_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest textual IPv6 address with its NUL (INET6_ADDRSTRLEN). */
#define CLIENTADDR_MAX 46

/* CORE_EINVAL with err naming the entry when the comma-separated list (NULL or "" is fine) holds something that is
 * neither an IP address nor a CIDR range. */
enum core_status clientaddr_check(const char *trusted, char *err, size_t errlen);

/* True when text is one IPv4 or IPv6 address (no range, no list). */
bool clientaddr_valid(const char *text);

/*
 * The client's address into out (cap CLIENTADDR_MAX): peer, or, when peer is in trusted (a list clientaddr_check()
 * accepted), the right-most address of xff (the X-Forwarded-For values in the order received, joined with ","; NULL
 * when none) that is not in trusted. Returns true when it came from xff.
 */
bool clientaddr_resolve(const char *trusted, const char *peer, const char *xff, char *out, size_t cap);

#endif
