/*
 * core/crypto.c
 *    libsodium wrappers.
 */
#include "crypto.h"

#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum core_status crypto_init(void)
{
	return sodium_init() < 0 ? CORE_EINTERNAL : CORE_OK;
}

enum core_status crypto_password_hash(const char *password, char **hash_out)
{
	*hash_out = NULL;
	char *h = xmalloc(crypto_pwhash_STRBYTES);
	if (crypto_pwhash_str_alg(h, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                          crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		free(h);
		return CORE_ENOMEM; /* the only failure is running out of memory */
	}
	*hash_out = h;
	return CORE_OK;
}

bool crypto_password_verify(const char *hash, const char *password)
{
	if (!hash || !password)
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

char *crypto_random_token(const char *prefix)
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t b64 = sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = xmalloc(plen + b64);
	if (plen)
		memcpy(out, prefix, plen);
	sodium_bin2base64(out + plen, b64, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	return out;
}

char *crypto_sha256_hex(const char *s, size_t len)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, (const unsigned char *)s, len);
	char *hex = xmalloc(crypto_hash_sha256_BYTES * 2 + 1);
	sodium_bin2hex(hex, crypto_hash_sha256_BYTES * 2 + 1, digest, sizeof(digest));
	return hex;
}

bool crypto_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return false;
	return sodium_memcmp(a, b, la) == 0;
}

char *crypto_token_hint(const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	char *out = xmalloc(3 + 4 + 1);
	/* "…" is three bytes in UTF-8 */
	snprintf(out, 8, "\xe2\x80\xa6%s", n >= 8 ? secret + n - 4 : "");
	return out;
}

static enum core_status make_parent_dir(const char *path)
{
	char *copy = xstrdup(path);
	char *dir = dirname(copy);
	int rc = 0;
	if (strcmp(dir, ".") != 0 && strcmp(dir, "/") != 0)
		rc = mkdir(dir, 0700);
	free(copy);
	return (rc == 0 || errno == EEXIST) ? CORE_OK : CORE_EINVAL;
}

enum core_status crypto_load_key(const char *path, unsigned char key[CRYPTO_KEY_BYTES], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (make_parent_dir(path) != CORE_OK) {
			snprintf(err, errlen, "could not create the directory of secret key file %s: %s", path,
			         strerror(errno));
			return CORE_EINVAL;
		}
		unsigned char fresh[CRYPTO_KEY_BYTES];
		randombytes_buf(fresh, sizeof(fresh));
		int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (wfd >= 0) {
			ssize_t w = write(wfd, fresh, sizeof(fresh));
			int closed = close(wfd);
			sodium_memzero(fresh, sizeof(fresh));
			if (w != (ssize_t)sizeof(fresh) || closed != 0) {
				unlink(path);
				snprintf(err, errlen, "could not write secret key file %s", path);
				return CORE_EINVAL;
			}
		} else if (errno != EEXIST) { /* EEXIST: another instance created it first; read theirs */
			snprintf(err, errlen, "could not create secret key file %s: %s", path, strerror(errno));
			return CORE_EINVAL;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, errlen, "could not open secret key file %s: %s", path, strerror(errno));
		return CORE_EINVAL;
	}
	struct stat sb;
	enum core_status st = CORE_OK;
	if (fstat(fd, &sb) != 0 || sb.st_size != CRYPTO_KEY_BYTES) {
		snprintf(err, errlen, "secret key file %s must hold exactly %d bytes", path, CRYPTO_KEY_BYTES);
		st = CORE_EINVAL;
	} else if (sb.st_mode & 0077) {
		snprintf(err, errlen, "secret key file %s is readable by others (mode %03o); chmod 600 it", path,
		         (unsigned)(sb.st_mode & 0777));
		st = CORE_EINVAL;
	} else if (read(fd, key, CRYPTO_KEY_BYTES) != CRYPTO_KEY_BYTES) {
		snprintf(err, errlen, "could not read secret key file %s", path);
		st = CORE_EINVAL;
	}
	close(fd);
	return st;
}

enum core_status crypto_seal(const unsigned char key[CRYPTO_KEY_BYTES], const char *plaintext, char **sealed_out)
{
	*sealed_out = NULL;
	size_t mlen = strlen(plaintext);
	size_t blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + mlen;
	unsigned char *buf = malloc(blen);
	if (!buf)
		return CORE_ENOMEM;
	randombytes_buf(buf, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(buf + crypto_secretbox_NONCEBYTES, (const unsigned char *)plaintext, mlen, buf, key);
	size_t b64 = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(3 + b64);
	if (!out) {
		free(buf);
		return CORE_ENOMEM;
	}
	memcpy(out, "v1:", 3);
	sodium_bin2base64(out + 3, b64, buf, blen, sodium_base64_VARIANT_ORIGINAL);
	free(buf);
	*sealed_out = out;
	return CORE_OK;
}

enum core_status crypto_open(const unsigned char key[CRYPTO_KEY_BYTES], const char *sealed, char **plaintext_out)
{
	*plaintext_out = NULL;
	if (!sealed || strncmp(sealed, "v1:", 3) != 0)
		return CORE_ECRYPTO;
	const char *b64 = sealed + 3;
	size_t cap = strlen(b64);
	unsigned char *buf = malloc(cap + 1);
	if (!buf)
		return CORE_ENOMEM;
	size_t blen = 0;
	enum core_status st = CORE_ECRYPTO;
	char *out = NULL;
	if (sodium_base642bin(buf, cap, b64, cap, NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
		goto out;
	size_t mlen = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
	out = malloc(mlen + 1);
	if (!out) {
		st = CORE_ENOMEM;
		goto out;
	}
	if (crypto_secretbox_open_easy((unsigned char *)out, buf + crypto_secretbox_NONCEBYTES,
	                               blen - crypto_secretbox_NONCEBYTES, buf, key) != 0) {
		free(out);
		out = NULL;
		goto out;
	}
	out[mlen] = '\0';
	*plaintext_out = out;
	st = CORE_OK;
out:
	free(buf);
	return st;
}

void crypto_free_secret(char *s)
{
	if (!s)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}
