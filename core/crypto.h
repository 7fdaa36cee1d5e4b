/*
 * core/crypto.h
 *    libsodium wrappers: password hashing, random tokens, hashes, constant-time comparison and the secretbox
 *    that encrypts GitLab tokens at rest.
 *
 * Design: passwords are hashed with argon2id (crypto_pwhash_str, interactive limits). Session cookies and API
 * tokens are 32 random bytes, base64url; only their SHA-256 is stored. Secrets at rest are sealed with
 * crypto_secretbox (XSalsa20-Poly1305) under a 32-byte key read from a file that is created with mode 0600 on
 * first use; the sealed form is "v1:" + base64(nonce || box). Opening with the wrong key fails with
 * CORE_ECRYPTO and a message; it never returns garbage.
 * Threading: all functions are thread-safe after crypto_init().
 * Ownership: returned strings are malloc'd and owned by the caller; buffers holding secrets should be freed with
 * crypto_free_secret(), which zeroes them first.
 */
#ifndef MRGATE_CORE_CRYPTO_H
#define MRGATE_CORE_CRYPTO_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

#define CRYPTO_KEY_BYTES 32

/* Initialise libsodium; CORE_EINTERNAL when it cannot. Call once at start (repeat calls are harmless). */
enum core_status crypto_init(void);

/* argon2id hash of password into a new string (crypto_pwhash_str format). */
enum core_status crypto_password_hash(const char *password, char **hash_out);
/* true when password matches hash. */
bool crypto_password_verify(const char *hash, const char *password);

/* A new random token: 32 bytes as base64url without padding (43 characters), with an optional prefix. Never NULL
 * (xalloc.h's policy); the caller frees it with crypto_free_secret(). */
char *crypto_random_token(const char *prefix);
/* Lower-case hex SHA-256 of s (64 characters), malloc'd; never NULL. */
char *crypto_sha256_hex(const char *s, size_t len);
/* Constant-time equality of two strings (their lengths are not secret). */
bool crypto_equal(const char *a, const char *b);
/* "…abcd": the last four characters of a secret, for display. Never more. malloc'd; never NULL. */
char *crypto_token_hint(const char *secret);

/*
 * Load the 32-byte key from path, creating it (random, mode 0600, parent directory created) when missing.
 * A file of the wrong size, or one readable by others, is refused with a message in err.
 */
enum core_status crypto_load_key(const char *path, unsigned char key[CRYPTO_KEY_BYTES], char *err, size_t errlen);

/* Seal plaintext under key into "v1:..." (malloc'd). */
enum core_status crypto_seal(const unsigned char key[CRYPTO_KEY_BYTES], const char *plaintext, char **sealed_out);
/* Open a sealed string; CORE_ECRYPTO when the key is wrong or the data corrupted. Free with crypto_free_secret. */
enum core_status crypto_open(const unsigned char key[CRYPTO_KEY_BYTES], const char *sealed, char **plaintext_out);

/* Zero and free a string that held a secret. NULL is fine. */
void crypto_free_secret(char *s);

#endif
