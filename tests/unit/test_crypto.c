/*
 * tests/unit/test_crypto.c
 *    Secret key file handling, sealing with the right and wrong key, password hashes, token helpers.
 */
#include "config.h"
#include "crypto.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void key_file(void)
{
	char path[300], err[512];
	unsigned char k1[CRYPTO_KEY_BYTES], k2[CRYPTO_KEY_BYTES];
	snprintf(path, sizeof(path), "%s/sub/secret.key", dir);
	REQUIRE(crypto_load_key(path, k1, err, sizeof(err)) == CORE_OK);
	struct stat sb;
	REQUIRE(stat(path, &sb) == 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	CHECK_INT(sb.st_size, CRYPTO_KEY_BYTES);
	/* loading again gives the same key */
	REQUIRE(crypto_load_key(path, k2, err, sizeof(err)) == CORE_OK);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);
	/* a key readable by others is refused with a message that says so */
	chmod(path, 0644);
	CHECK(crypto_load_key(path, k2, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "readable by others") != NULL);
	chmod(path, 0600);
	/* a truncated key is refused */
	REQUIRE(truncate(path, 10) == 0);
	CHECK(crypto_load_key(path, k2, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "exactly 32 bytes") != NULL);
}

static void seal_open(void)
{
	unsigned char k1[CRYPTO_KEY_BYTES], k2[CRYPTO_KEY_BYTES];
	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	char *sealed = NULL, *plain = NULL;
	REQUIRE(crypto_seal(k1, "glpat-secret-value-1234", &sealed) == CORE_OK);
	CHECK(strncmp(sealed, "v1:", 3) == 0);
	CHECK(strstr(sealed, "secret") == NULL);
	CHECK(crypto_open(k1, sealed, &plain) == CORE_OK);
	CHECK_STR(plain, "glpat-secret-value-1234");
	crypto_free_secret(plain);
	plain = NULL;
	/* the wrong key fails cleanly: no garbage comes back */
	CHECK(crypto_open(k2, sealed, &plain) == CORE_ECRYPTO);
	CHECK(plain == NULL);
	/* corrupted data fails too */
	sealed[10] = sealed[10] == 'A' ? 'B' : 'A';
	CHECK(crypto_open(k1, sealed, &plain) == CORE_ECRYPTO);
	CHECK(crypto_open(k1, "garbage", &plain) == CORE_ECRYPTO);
	free(sealed);
}

static void passwords_and_tokens(void)
{
	char *h = NULL;
	REQUIRE(crypto_password_hash("hunter2hunter2", &h) == CORE_OK);
	CHECK(strncmp(h, "$argon2id$", 10) == 0);
	CHECK(crypto_password_verify(h, "hunter2hunter2"));
	CHECK(!crypto_password_verify(h, "hunter2hunter3"));
	free(h);
	char *t1 = crypto_random_token("mrg_"), *t2 = crypto_random_token("mrg_");
	CHECK(t1 && t2 && strcmp(t1, t2) != 0);
	CHECK_INT(strlen(t1), 4 + 43);
	char *hint = crypto_token_hint("glpat-abcdefgh1234");
	CHECK_STR(hint, "\xe2\x80\xa6"
	                "1234");
	free(hint);
	hint = crypto_token_hint("short");
	CHECK_STR(hint, "\xe2\x80\xa6"); /* too short to show any of it */
	free(hint);
	CHECK(crypto_equal("abc", "abc"));
	CHECK(!crypto_equal("abc", "abd"));
	CHECK(!crypto_equal("abc", "abcd"));
	CHECK(!crypto_equal(NULL, "abc"));
	char *sha = crypto_sha256_hex("abc", 3);
	CHECK_STR(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	free(sha);
	free(t1);
	free(t2);
}

static void config_parsing(void)
{
	struct config cfg;
	int rest[8], nrest = 0;
	char err[256];
	char *argv1[] = {"mrgate", "--workers", "7", "serve", "--listen=0.0.0.0:9", NULL};
	setenv("MRGATE_GITLAB_CONCURRENCY", "3", 1);
	REQUIRE(config_load(&cfg, 5, argv1, rest, &nrest, err, sizeof(err)) == CORE_OK);
	CHECK_INT(cfg.workers, 7);
	CHECK_INT(cfg.gitlab_concurrency, 3);
	CHECK_STR(cfg.listen, "0.0.0.0:9");
	CHECK_INT(nrest, 1);
	CHECK_INT(rest[0], 3);
	config_free(&cfg);
	char *argv2[] = {"mrgate", "--workers", "lots", NULL};
	CHECK(config_load(&cfg, 3, argv2, rest, &nrest, err, sizeof(err)) == CORE_EINVAL);
	CHECK(strstr(err, "MRGATE_WORKERS") != NULL);
	config_free(&cfg);
	setenv("MRGATE_GITLAB_CONCURRENCY", "0", 1);
	char *argv3[] = {"mrgate", NULL};
	CHECK(config_load(&cfg, 1, argv3, rest, &nrest, err, sizeof(err)) == CORE_EINVAL);
	config_free(&cfg);
	unsetenv("MRGATE_GITLAB_CONCURRENCY");
}

int main(void)
{
	if (crypto_init() != CORE_OK)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/mrgate-test-crypto-%d", (int)getpid());
	mkdir(dir, 0700);
	RUN(key_file);
	RUN(seal_open);
	RUN(passwords_and_tokens);
	RUN(config_parsing);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return testlib_done();
}
