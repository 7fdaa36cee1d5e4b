/*
 * tests/unit/test_clientaddr.c
 *    The client address behind trusted proxies: the peer unless it is a trusted proxy; then the right-most
 *    X-Forwarded-For entry that is not, never an entry the client wrote to the left of it; lists and ranges checked.
 */
#include "clientaddr.h"
#include "testlib.h"

#include <string.h>

static const char *client(const char *trusted, const char *peer, const char *xff)
{
	static char out[CLIENTADDR_MAX];
	clientaddr_resolve(trusted, peer, xff, out, sizeof(out));
	return out;
}

static void with_no_proxy_named_the_header_is_ignored(void)
{
	CHECK_STR(client(NULL, "203.0.113.9", "198.51.100.1"), "203.0.113.9");
	CHECK_STR(client("", "203.0.113.9", "198.51.100.1"), "203.0.113.9");
	/* a peer that is no proxy of ours cannot name another address */
	CHECK_STR(client("10.0.0.5", "203.0.113.9", "198.51.100.1"), "203.0.113.9");
}

static void behind_a_proxy_the_right_most_untrusted_entry_is_the_client(void)
{
	CHECK_STR(client("10.0.0.5", "10.0.0.5", "198.51.100.1"), "198.51.100.1");
	/* what the client wrote itself sits left of what the proxy appended: never believed */
	CHECK_STR(client("10.0.0.5", "10.0.0.5", "6.6.6.6, 198.51.100.1"), "198.51.100.1");
	CHECK_STR(client("10.0.0.5", "10.0.0.5", "6.6.6.6,198.51.100.1"), "198.51.100.1");
	/* a chain of trusted proxies (a range and an address) */
	CHECK_STR(client("10.0.0.0/8, 172.16.0.1", "172.16.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3"), "198.51.100.1");
	/* no header: the proxy itself */
	CHECK_STR(client("10.0.0.5", "10.0.0.5", NULL), "10.0.0.5");
	CHECK_STR(client("10.0.0.5", "10.0.0.5", ""), "10.0.0.5");
	/* an entry that is no address ends the walk: the hop before it */
	CHECK_STR(client("10.0.0.5", "10.0.0.5", "198.51.100.1, unknown"), "10.0.0.5");
	CHECK_STR(client("10.0.0.0/8", "10.0.0.5", "garbage, 10.0.0.7"), "10.0.0.7");
	/* every hop trusted: the left-most */
	CHECK_STR(client("10.0.0.0/8", "10.0.0.5", "10.0.0.9, 10.0.0.7"), "10.0.0.9");
	/* IPv6, and IPv4 as an IPv4-mapped peer */
	CHECK_STR(client("::1", "::1", "2001:db8::7"), "2001:db8::7");
	CHECK_STR(client("10.0.0.5", "::ffff:10.0.0.5", "198.51.100.1"), "198.51.100.1");
	CHECK_STR(client("fd00::/8", "fd12::1", "2001:db8::7"), "2001:db8::7");
	/* a range's edges */
	CHECK_STR(client("10.0.0.0/31", "10.0.0.1", "198.51.100.1"), "198.51.100.1");
	CHECK_STR(client("10.0.0.0/31", "10.0.0.2", "198.51.100.1"), "10.0.0.2");
	CHECK_STR(client("0.0.0.0/0", "192.0.2.1", "198.51.100.1"), "198.51.100.1");
	/* an entry too long for an address */
	char longest[200];
	memset(longest, '1', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	CHECK_STR(client("10.0.0.5", "10.0.0.5", longest), "10.0.0.5");
}

static void lists_are_checked(void)
{
	char err[200];
	CHECK(clientaddr_check(NULL, err, sizeof(err)) == CORE_OK);
	CHECK(clientaddr_check("", err, sizeof(err)) == CORE_OK);
	CHECK(clientaddr_check("10.0.0.5, 172.16.0.0/12,::1, fd00::/8,", err, sizeof(err)) == CORE_OK);
	const char *bad[] = {"proxy.local", "10.0.0.0/33",        "::1/129",  "10.0.0.5/", "10.0.0.5/x",
	                     "10.0.0.0/-1", "10.0.0.5,,10.0.0.6", "300.1.1.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(clientaddr_check(bad[i], err, sizeof(err)) == CORE_EINVAL);
		CHECK(strstr(err, "MRGATE_TRUSTED_PROXIES") != NULL);
	}
	CHECK(clientaddr_check("10.0.0.5, proxy.local", err, sizeof(err)) == CORE_EINVAL);
	/* one address, as mrgate user unlock --address takes it */
	CHECK(clientaddr_valid("10.0.0.5") && clientaddr_valid("::1") && clientaddr_valid("2001:db8::7"));
	CHECK(!clientaddr_valid("10.0.0.999") && !clientaddr_valid("10.0.0.0/8") && !clientaddr_valid("a, b") &&
	      !clientaddr_valid("") && !clientaddr_valid(NULL));
	CHECK(strstr(err, "\"proxy.local\"") != NULL);
}

int main(void)
{
	RUN(with_no_proxy_named_the_header_is_ignored);
	RUN(behind_a_proxy_the_right_most_untrusted_entry_is_the_client);
	RUN(lists_are_checked);
	return testlib_done();
}
