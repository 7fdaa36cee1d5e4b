/*
 * tests/db/test_auth.c
 *    Users, login, throttling, sessions, API tokens against the real test database.
 */
#include "auth.h"
#include "crypto.h"
#include "log.h"
#include "migrate.h"
#include "testlib.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *s;

static void users(void)
{
	CHECK(auth_user_add(s, "test", "alice", "alice-secret-1", AUTH_ROLE_EDITOR, NULL) == CORE_OK);
	CHECK(auth_user_add(s, "test", "alice", "alice-secret-2", AUTH_ROLE_EDITOR, NULL) == CORE_ECONFLICT);
	CHECK(auth_user_add(s, "test", "bad name", "alice-secret-1", AUTH_ROLE_EDITOR, NULL) == CORE_EINVAL);
	CHECK(auth_user_add(s, "test", "bob", "short", AUTH_ROLE_EDITOR, NULL) == CORE_EINVAL);
	bool created = true;
	/* users exist, so no bootstrap admin */
	CHECK(auth_bootstrap_admin(s, "admin-password", &created) == CORE_OK);
	CHECK(!created);
}

static void login_and_session(void)
{
	struct auth_login_result res;
	CHECK(auth_login(s, "alice", "wrong-password", "10.0.0.1", &res) == CORE_EUNAUTH);
	CHECK(res.session_token == NULL);
	CHECK(auth_login(s, "nobody", "alice-secret-1", "10.0.0.1", &res) == CORE_EUNAUTH);
	REQUIRE(auth_login(s, "alice", "alice-secret-1", "10.0.0.1", &res) == CORE_OK);
	CHECK(res.session_token != NULL);
	CHECK_STR(res.who.username, "alice");
	struct auth_identity who;
	REQUIRE(auth_session(s, res.session_token, &who) == CORE_OK);
	CHECK_STR(who.username, "alice");
	CHECK(who.via_cookie);
	CHECK_STR(who.csrf_token, res.who.csrf_token);
	CHECK(auth_session(s, "not-a-session", &who) == CORE_EUNAUTH);
	CHECK(auth_logout(s, res.session_token) == CORE_OK);
	CHECK(auth_session(s, res.session_token, &who) == CORE_EUNAUTH);
	crypto_free_secret(res.session_token);
}

static void throttling(void)
{
	long long cleared = 0;
	CHECK(auth_user_add(s, "test", "carol", "carol-secret-3", AUTH_ROLE_EDITOR, NULL) == CORE_OK);
	struct auth_login_result res;
	for (int i = 0; i < AUTH_USER_LIMIT; i++)
		CHECK(auth_login(s, "carol", "nope-nope", "10.0.0.2", &res) == CORE_EUNAUTH);
	/* locked now from that address, even with the right password */
	CHECK(auth_login(s, "carol", "carol-secret-3", "10.0.0.2", &res) == CORE_ETHROTTLED);
	CHECK(res.retry_after > 0 && res.retry_after <= 15 * 60);
	CHECK(!res.address_locked && !res.user_locked_everywhere);
	/* and not from carol's own address: a walk locked admin for everyone with five guesses from anywhere */
	REQUIRE(auth_login(s, "carol", "carol-secret-3", "10.0.0.3", &res) == CORE_OK);
	crypto_free_secret(res.session_token);
	/* the lock is lifted by an admin (mrgate user unlock) */
	CHECK(auth_unlock(s, "test", "CAROL", NULL, &cleared) == CORE_OK);
	CHECK(cleared >= 1);
	REQUIRE(auth_login(s, "carol", "carol-secret-3", "10.0.0.2", &res) == CORE_OK);
	crypto_free_secret(res.session_token);
	/* guesses from many addresses, few from each, lock the user everywhere at AUTH_USER_WIDE_LIMIT */
	for (int i = 0; i < AUTH_USER_WIDE_LIMIT; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 200, i % 200);
		CHECK(auth_login(s, "carol", "nope-nope", ip, &res) == CORE_EUNAUTH);
	}
	CHECK(auth_login(s, "carol", "carol-secret-3", "10.0.0.3", &res) == CORE_ETHROTTLED);
	CHECK(res.user_locked_everywhere && !res.address_locked);
	CHECK(auth_unlock(s, "test", "carol", NULL, &cleared) == CORE_OK);
	REQUIRE(auth_login(s, "carol", "carol-secret-3", "10.0.0.3", &res) == CORE_OK);
	crypto_free_secret(res.session_token);
	/* an unknown user is no error to unlock: nothing to clear */
	CHECK(auth_unlock(s, "test", "nobody-at-all", NULL, &cleared) == CORE_OK && cleared == 0);
	/* another user from another address is not affected */
	REQUIRE(auth_login(s, "alice", "alice-secret-1", "10.0.0.4", &res) == CORE_OK);
	crypto_free_secret(res.session_token);
	/* per address: AUTH_IP_LIMIT failures over many names lock the address */
	for (int i = 0; i < AUTH_IP_LIMIT; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ghost%d", i);
		CHECK(auth_login(s, name, "whatever1", "10.9.9.9", &res) == CORE_EUNAUTH);
	}
	CHECK(auth_login(s, "alice", "alice-secret-1", "10.9.9.9", &res) == CORE_ETHROTTLED);
	CHECK(res.address_locked);
	CHECK(auth_unlock(s, "test", NULL, "10.9.9.9", &cleared) == CORE_OK && cleared >= 1);
	REQUIRE(auth_login(s, "alice", "alice-secret-1", "10.9.9.9", &res) == CORE_OK);
	crypto_free_secret(res.session_token);
}

struct login_arg {
	const char *user, *password, *ip;
	enum core_status st;
};

static void *login_thread(void *p)
{
	struct login_arg *a = p;
	struct auth_login_result res;
	a->st = auth_login(s, a->user, a->password, a->ip, &res);
	crypto_free_secret(res.session_token);
	return NULL;
}

/* True once a backend waits for a lock in a statement on login_failures (within about 5 s). */
static bool a_login_waits(struct store_conn *watch)
{
	for (int i = 0; i < 500; i++) {
		PGresult *r = NULL;
		bool waiting = store_exec(watch,
		                          "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
		                          " AND query LIKE '%login_failures%' AND pid <> pg_backend_pid()",
		                          0, NULL, &r) == CORE_OK &&
		               PQntuples(r) > 0;
		PQclear(r);
		if (waiting)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * A login attempt takes its throttle rows (address, user at the address, user) in one order, inserting those
 * missing as it reaches them. Parallel logins of one user deadlocked now and then (a 409 "could not log in" in
 * tests/http/test_hardening.py): an attempt inserted the missing pair row first and then waited for the address row,
 * which another attempt held while it waited to insert the same pair row. Here another transaction holds the
 * address row: the attempt must wait for it holding nothing, so that the pair row can still be written.
 */
static void an_attempt_takes_its_rows_in_order(void)
{
	CHECK(auth_user_add(s, "test", "erin", "erin-secret-5", AUTH_ROLE_VIEWER, NULL) == CORE_OK);
	struct store_conn *x = NULL, *watch = NULL;
	REQUIRE(store_get(s, &x) == CORE_OK);
	REQUIRE(store_get(s, &watch) == CORE_OK);
	REQUIRE(store_exec(x,
	                   "INSERT INTO login_failures (key, failures, window_start) VALUES ('ip:10.7.7.7', 1, now())",
	                   0, NULL, NULL) == CORE_OK);
	REQUIRE(store_begin(x) == CORE_OK);
	REQUIRE(store_exec(x, "SET LOCAL lock_timeout = '3s'", 0, NULL, NULL) == CORE_OK);
	REQUIRE(store_exec(x, "SELECT 1 FROM login_failures WHERE key = 'ip:10.7.7.7' FOR UPDATE", 0, NULL, NULL) ==
	        CORE_OK);
	struct login_arg a = {"erin", "erin-secret-5", "10.7.7.7", CORE_EINTERNAL};
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, login_thread, &a) == 0);
	CHECK(a_login_waits(watch));
	/* the pair row is free: the waiting attempt did not insert it before waiting (it would be a deadlock) */
	CHECK(store_exec(x,
	                 "INSERT INTO login_failures (key, failures, window_start)"
	                 " VALUES ('pair:erin|10.7.7.7', 0, now()) ON CONFLICT (key) DO NOTHING",
	                 0, NULL, NULL) == CORE_OK);
	CHECK(store_commit(x) == CORE_OK);
	pthread_join(t, NULL);
	CHECK(a.st == CORE_OK);
	/* the success took back its attempt: the pair row is gone, the address is back at its one failure */
	PGresult *r = NULL;
	REQUIRE(store_exec(x,
	                   "SELECT (SELECT failures FROM login_failures WHERE key = 'ip:10.7.7.7') AS ip,"
	                   " (SELECT count(*) FROM login_failures WHERE key = 'pair:erin|10.7.7.7') AS pair",
	                   0, NULL, &r) == CORE_OK);
	CHECK_INT(store_i64(r, 0, "ip", -1), 1);
	CHECK_INT(store_i64(r, 0, "pair", -1), 0);
	PQclear(r);
	store_put(s, watch);
	store_put(s, x);
}

static void api_tokens(void)
{
	char *tok = NULL;
	REQUIRE(auth_token_create(s, "alice", "ci", &tok) == CORE_OK);
	CHECK(strncmp(tok, "mrg_", 4) == 0);
	struct auth_identity who;
	CHECK(auth_bearer(s, tok, &who) == CORE_OK);
	CHECK_STR(who.username, "alice");
	CHECK(!who.via_cookie);
	CHECK_STR(who.actor, "alice (token ci)");
	CHECK(auth_bearer(s, "mrg_wrong", &who) == CORE_EUNAUTH);
	char *none = NULL;
	CHECK(auth_token_create(s, "nobody", "ci", &none) == CORE_ENOTFOUND);
	CHECK(none == NULL);
	/* only a hash is stored */
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	REQUIRE(store_get(s, &c) == CORE_OK);
	const char *p[] = {tok};
	CHECK(store_exec(c, "SELECT count(*) AS n FROM api_tokens WHERE token_hash = $1 OR hint = $1", 1, p, &r) ==
	      CORE_OK);
	CHECK_INT(store_i64(r, 0, "n", -1), 0);
	PQclear(r);
	store_put(s, c);
	crypto_free_secret(tok);
}

int main(void)
{
	s = testlib_db_start("auth", 4);
	RUN(users);
	RUN(login_and_session);
	RUN(throttling);
	RUN(an_attempt_takes_its_rows_in_order);
	RUN(api_tokens);
	store_close(s);
	return testlib_done();
}
