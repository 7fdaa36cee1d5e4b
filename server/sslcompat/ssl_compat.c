/*
 * server/sslcompat/ssl_compat.c
 *    Lets Debian's CivetWeb 1.15 serve TLS with OpenSSL 3.
 *
 * Design: Debian builds CivetWeb 1.15 to dlopen("libssl.so") and look up, among others,
 *    SSL_get_peer_certificate, which OpenSSL 3 turned into a macro for SSL_get1_peer_certificate; the
 *    lookup fails and mg_init_library(MG_FEATURES_TLS) reports no TLS. This tiny library has the SONAME
 *    "libssl.so", depends on the real libssl.so.3 and defines the one missing function. mrgate and gitlab-sim link
 *    it, so it is already loaded when CivetWeb calls dlopen("libssl.so"): the loader returns it, and
 *    dlsym() finds every other SSL_* symbol in its dependency, the real libssl.
 * Ownership: SSL_get_peer_certificate returns a new reference, as OpenSSL 1.1's did.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *s);

X509 *SSL_get_peer_certificate(const SSL *s)
{
	return SSL_get1_peer_certificate(s);
}
