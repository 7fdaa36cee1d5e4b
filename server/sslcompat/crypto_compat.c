/*
 * server/sslcompat/crypto_compat.c
 *    Gives the name "libcrypto.so" that Debian's CivetWeb 1.15 dlopens for TLS, without libssl-dev.
 *
 * Design: CivetWeb calls dlopen("libcrypto.so") (the unversioned name, shipped only by libssl-dev) and looks up
 *    its CRYPTO_* and ERR_* functions there. This library has the SONAME "libcrypto.so" and depends on the real
 *    libcrypto.so.3; mrgate links it, so it is loaded at start and the loader returns it for that dlopen, and dlsym()
 *    finds every symbol in its dependency. So a runtime with only libssl3 (the Docker image) serves TLS, and
 *    nothing is looked up through LD_LIBRARY_PATH or a path of the build tree (mrgate's RUNPATH is $ORIGIN-relative).
 * Ownership: nothing; the one function only keeps the dependency from being dropped as unused.
 */
#include <openssl/crypto.h>

unsigned long mrgate_crypto_compat_version(void);

unsigned long mrgate_crypto_compat_version(void)
{
	return OpenSSL_version_num();
}
