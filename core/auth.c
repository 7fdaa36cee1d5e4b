/*
 * core/auth.c
 *    Users, sessions, API tokens, throttling.
 */
#include "auth.h"

#include "audit.h"
#include "buf.h"
#include "crypto.h"
#include "limiter.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool valid_username(const char *u)
{
	size_t n = u ? strlen(u) : 0;
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = u[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

const char *auth_role_name(enum auth_role role)
{
	switch (role) {
	case AUTH_ROLE_VIEWER: return "viewer";
	case AUTH_ROLE_EDITOR: return "editor";
	case AUTH_ROLE_ADMIN: return "admin";
	case AUTH_ROLE_NONE: break;
	}
	return "none";
}

bool auth_role_parse(const char *name, enum auth_role *out)
{
	static const enum auth_role all[] = {AUTH_ROLE_VIEWER, AUTH_ROLE_EDITOR, AUTH_ROLE_ADMIN};
	for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(name, auth_role_name(all[i])) == 0) {
			*out = all[i];
			return true;
		}
	return false;
}

/* The process-wide bound on argon2id hashing (64 MiB and a core each). */
static struct limiter *hash_slots;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_slots_init(void)
{
	hash_slots = limiter_new(AUTH_HASH_SLOTS);
}

static bool hash_slot_take(void)
{
	pthread_once(&hash_once, hash_slots_init);
	return hash_slots && limiter_acquire_timed(hash_slots, AUTH_HASH_WAIT_MS);
}

static void hash_slot_give(void)
{
	limiter_release(hash_slots);
}

/* The next code point of UTF-8 text at *p (advanced), or -1 for a malformed or overlong sequence or a surrogate. */
static long utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	long cp;
	int k;
	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	if (s[0] >= 0xC2 && s[0] < 0xE0)
		cp = s[0] & 0x1F, k = 1;
	else if (s[0] >= 0xE0 && s[0] < 0xF0)
		cp = s[0] & 0x0F, k = 2;
	else if (s[0] >= 0xF0 && s[0] < 0xF5)
		cp = s[0] & 0x07, k = 3;
	else
		return -1;
	for (int i = 1; i <= k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	static const long least[] = {0, 0x80, 0x800, 0x10000};
	if (cp < least[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*p = s + k + 1;
	return cp;
}

/* A control character, or one that shows nothing (zero-width, direction marks, tags): it cannot be typed again. */
static bool invisible(long cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD || cp == 0x34F || cp == 0x61C ||
	       (cp >= 0x115F && cp <= 0x1160) || (cp >= 0x180B && cp <= 0x180F) || (cp >= 0x200B && cp <= 0x200F) ||
	       (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0x3164 || cp == 0xFEFF ||
	       cp == 0xFFA0 || (cp >= 0xFFF0 && cp <= 0xFFFB) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

/* Whether the n code points repeat a unit of at most n / 2 of them ("aaaaaaaa", "abababab", "abcabcab"). */
static bool repeats(const long *cp, size_t n)
{
	for (size_t unit = 1; unit <= n / 2; unit++) {
		size_t i = unit;
		while (i < n && cp[i] == cp[i - unit])
			i++;
		if (i == n)
			return true;
	}
	return false;
}

/* The longest stretch of cp (at least 2 long) whose code points run up or down by one ("12345678", "hgfedcba"). */
static size_t longest_run(const long *cp, size_t n)
{
	size_t best = 1;
	for (size_t i = 0; i + 1 < n;) {
		long d = cp[i + 1] - cp[i];
		size_t j = i + 1;
		if (d == 1 || d == -1)
			while (j + 1 < n && cp[j + 1] - cp[j] == d)
				j++;
		if (j - i + 1 > best && (d == 1 || d == -1))
			best = j - i + 1;
		i = j;
	}
	return best;
}

/* Keyboard rows and columns (QWERTY, QWERTZ, AZERTY), read either way, compared with the text unshifted
 * (keys_unshift: "!qaz@wsx" is the walk "1qaz2wsx"). */
static const char *const KEY_WALKS[] = {"qwertyuiopasdfghjklzxcvbnm",
                                        "qwertzuiopasdfghjklyxcvbnm",
                                        "azertyuiopqsdfghjklmwxcvbn",
                                        "qwertyuiop[]\\",
                                        "asdfghjkl;'",
                                        "zxcvbnm,./",
                                        "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
                                        "zaq12wsxcde34rfvbgt56yhnmju78ik,.lo90p",
                                        "qazwsxedcrfvtgbyhnujmikolp",
                                        "1234567890-=qwertyuiop",
                                        "`1234567890-=",
                                        "q1w2e3r4t5y6u7i8o9p0",
                                        "1q2w3e4r5t6y7u8i9o0p",
                                        "qweasdzxc",
                                        "zxcasdqwe"};

/* fold (ASCII, lower case) with each shifted symbol as its key's unshifted one, in place. */
static void keys_unshift(char *t)
{
	static const char from[] = "!@#$%^&*()_+{}|:\"<>?~", to[] = "1234567890-=[]\\;',./`";
	for (; *t; t++) {
		const char *k = strchr(from, *t);
		if (k)
			*t = to[k - from];
	}
}

#define KEY_WALK_MAX 40 /* the longest of KEY_WALKS: no longer stretch can be one */

/* Whether keys[0..len) (unshifted, len <= KEY_WALK_MAX) is a stretch of a keyboard walk, either way. */
static bool is_walk(const char *keys, size_t len)
{
	char piece[KEY_WALK_MAX + 1], rev[KEY_WALK_MAX + 1];
	memcpy(piece, keys, len);
	piece[len] = '\0';
	for (size_t k = 0; k < len; k++)
		rev[k] = piece[len - 1 - k];
	rev[len] = '\0';
	for (size_t w = 0; w < sizeof(KEY_WALKS) / sizeof(KEY_WALKS[0]); w++)
		if (strstr(KEY_WALKS[w], piece) || strstr(KEY_WALKS[w], rev))
			return true;
	return false;
}

/* The longest stretch of keys (unshifted) that is a stretch of a keyboard walk, either way. */
static size_t longest_walk(const char *keys, size_t n)
{
	size_t best = 0;
	/* a stretch of a walk is one at every shorter length from the same start: grow it until it is not */
	for (size_t i = 0; i < n; i++)
		for (size_t len = 1; i + len <= n && len <= KEY_WALK_MAX && is_walk(keys + i, len); len++)
			if (len > best)
				best = len;
	return best;
}

/*
 * Passwords and words that lead the public lists of leaked passwords, compared with the password folded (lower case,
 * fullwidth letters as ASCII), its common substitutions undone (p@ssw0rd) and the digits and symbols it ends with
 * taken off (Password123!): not a breach corpus, the first ones any guesser tries, with the names a GitLab or mrgate
 * admin would think of.
 */
static const char *const COMMON[] = {
    "password", "passwort",  "passwd",   "iloveyou", "sunshine",  "princess", "football", "baseball",  "welcome",
    "letmein",  "trustno",   "superman", "starwars", "whatever",  "changeme", "qwerty",   "admin",     "administrator",
    "root",     "gitlab",    "mrgate",   "security", "secret",    "michelle", "jennifer", "computer",  "corvette",
    "mercedes", "liverpool", "chelsea",  "monkey",   "dragon",    "master",   "shadow",   "internet",  "samsung",
    "hello",    "freedom",   "pokemon",  "loveyou",  "test",      "testtest", "default",  "summer",    "winter",
    "spring",   "autumn",    "batman",   "charlie",  "jordan",    "michael",  "ashley",   "killer",    "hunter",
    "soccer",   "hockey",    "ranger",   "buster",   "thomas",    "tigger",   "robert",   "access",    "love",
    "login",    "abc",       "qwe",      "asd",      "zxc",       "guest",    "temp",     "demo",      "toor",
    "january",  "february",  "march",    "april",    "june",      "july",     "august",   "september", "october",
    "november", "december",  "monday",   "tuesday",  "wednesday", "thursday", "friday",   "saturday",  "sunday",
    "arsenal",  "qwertz",    "azerty",   "cookie",   "flower",    "orange",   "pepper"};

/* Folded text with the substitutions a guesser tries first undone (in place). */
static void unleet(char *t)
{
	static const char from[] = "4@0315$7!", to[] = "aaoeisstl";
	for (; *t; t++) {
		const char *k = strchr(from, *t);
		if (k)
			*t = to[k - from];
	}
}

/* Whether fold (n bytes), its trailing digits and symbols taken off and its substitutions undone, is a common word. */
static bool common_password(const char *fold, size_t n)
{
	char base[1025];
	size_t m = n;
	while (m > 0 && !isalpha((unsigned char)fold[m - 1]))
		m--;
	bool digits_only = m == 0;
	memcpy(base, fold, m);
	base[m] = '\0';
	unleet(base);
	char rev[1025]; /* drowssap */
	for (size_t i = 0; i < m; i++)
		rev[i] = base[m - 1 - i];
	rev[m] = '\0';
	for (size_t i = 0; !digits_only && i < sizeof(COMMON) / sizeof(COMMON[0]); i++)
		if (strcmp(base, COMMON[i]) == 0 || strcmp(rev, COMMON[i]) == 0)
			return true;
	/* the date and number passwords: ddmmyyyy, 11223344, 123123123 and their like are digits only */
	if (digits_only) {
		size_t distinct = 0;
		bool seen[10] = {0};
		for (size_t i = 0; i < n; i++)
			if (fold[i] >= '0' && fold[i] <= '9' && !seen[fold[i] - '0'])
				seen[fold[i] - '0'] = true, distinct++;
		return distinct <= 4;
	}
	return false;
}

/*
 * Whether the password is at most 2 guessable pieces and 2 other characters: qwertyuiop123, qwer1234, abcd1234,
 * Carol123 for carol (a walk found each of them passing the single-run rule). A piece is a run of 3 or more
 * (abc, 4321), a keyboard walk of 3 or more (in keys, unshifted), one character 3 or more times, 1 to 4 digits
 * (a year, a PIN), a common word of 4 letters or more either way (in plain: fold with its substitutions undone)
 * or the user name (user, lower case, 3 characters or more, in fold). A minimum cover over the
 * prefixes: pieces[f][i] is the fewest pieces that make up the first i characters with f other characters.
 */
static bool few_pieces(const long *cp, const char *fold, const char *keys, const char *plain, size_t n,
                       const char *user)
{
	enum { FREE = 2, NONE = 1 << 20 };
	int pieces[FREE + 1][1025];
	size_t ulen = user ? strlen(user) : 0;
	for (int f = 0; f <= FREE; f++)
		for (size_t i = 0; i <= n; i++)
			pieces[f][i] = NONE;
	pieces[0][0] = 0;
	for (size_t i = 0; i < n; i++)
		for (int f = 0; f <= FREE; f++) {
			int here = pieces[f][i];
			if (here == NONE)
				continue;
			int *next = pieces[f];
#define PIECE_ENDS_AT(end) (next[(end)] = next[(end)] < here + 1 ? next[(end)] : here + 1)
			if (f < FREE && pieces[f + 1][i + 1] > here)
				pieces[f + 1][i + 1] = here;
			if (here >= 2)
				continue; /* a third piece is past the rule: only other characters may follow */
			/* a run up or down, one character repeated */
			for (long d = -1; d <= 1; d++)
				for (size_t j = i + 1; j < n && cp[j] - cp[j - 1] == d; j++)
					if (j - i + 1 >= 3)
						PIECE_ENDS_AT(j + 1);
			for (size_t len = 3; i + len <= n && len <= KEY_WALK_MAX && is_walk(keys + i, len); len++)
				PIECE_ENDS_AT(i + len);
			for (size_t len = 1;
			     len <= 4 && i + len <= n && fold[i + len - 1] >= '0' && fold[i + len - 1] <= '9'; len++)
				PIECE_ENDS_AT(i + len);
			if (ulen >= 3 && i + ulen <= n && strncmp(fold + i, user, ulen) == 0)
				PIECE_ENDS_AT(i + ulen);
			/* a common word of 4 letters or more, either way (in plain: its substitutions undone) */
			for (size_t w = 0; w < sizeof(COMMON) / sizeof(COMMON[0]); w++) {
				size_t wl = strlen(COMMON[w]), k = 0;
				if (wl < 4 || i + wl > n)
					continue;
				if (strncmp(plain + i, COMMON[w], wl) == 0)
					PIECE_ENDS_AT(i + wl);
				while (k < wl && plain[i + k] == COMMON[w][wl - 1 - k])
					k++;
				if (k == wl)
					PIECE_ENDS_AT(i + wl);
			}
#undef PIECE_ENDS_AT
		}
	for (int f = 0; f <= FREE; f++)
		if (pieces[f][n] <= 2)
			return true;
	return false;
}

const char *auth_password_problem(const char *password, const char *username)
{
	size_t bytes = password ? strlen(password) : 0;
	if (bytes > 1024)
		return "is longer than 1024 bytes";
	long cp[1024];
	char fold[1025]; /* ASCII lower case; fullwidth forms as ASCII; any other character as \x01 */
	size_t n = 0;
	bool ascii = true;
	for (const unsigned char *p = (const unsigned char *)(password ? password : ""); *p;) {
		long c = utf8_next(&p);
		if (c < 0)
			return "is not valid UTF-8";
		if (invisible(c))
			return "contains a control character or an invisible one (such as a zero-width space): it "
			       "could "
			       "not be typed again";
		long f = c >= 0xFF01 && c <= 0xFF5E ? c - 0xFEE0 : c; /* fullwidth ASCII */
		ascii = ascii && f < 0x80;
		fold[n] = f < 0x80 ? (char)tolower((int)f) : '\x01';
		cp[n] = f < 0x80 ? (unsigned char)fold[n] : c;
		n++;
	}
	fold[n] = '\0';
	if (n < 8)
		return "has fewer than 8 characters";
	size_t distinct = 0;
	for (size_t i = 0; i < n && distinct <= 2; i++) {
		bool before = false;
		for (size_t k = 0; k < i && !before; k++)
			before = cp[k] == cp[i];
		distinct += !before;
	}
	if (distinct <= 2 || repeats(cp, n))
		return "repeats one character or a short pattern (such as aaaaaaab or abababab)";
	/* all but 2 characters a run or a keyboard walk: 12345678, a12345678, mnbvcxz1, !@#$%^&* */
	char keys[1025], user[65] = "";
	memcpy(keys, fold, n + 1);
	keys_unshift(keys);
	size_t stretch = longest_run(cp, n), walk = ascii ? longest_walk(keys, n) : 0;
	if ((stretch > walk ? stretch : walk) + 2 >= n)
		return "is mostly a run of neighbouring characters (such as 12345678, abcdefgh or qwertyui)";
	if (ascii && common_password(fold, n))
		return "is one of the most common passwords, or one with digits or symbols added";
	if (username && strcasecmp(password, username) == 0)
		return "is the user name";
	for (size_t i = 0; username && username[i] && i + 1 < sizeof(user); i++)
		user[i] = (char)tolower((unsigned char)username[i]), user[i + 1] = '\0';
	char plain[1025];
	memcpy(plain, fold, n + 1);
	unleet(plain);
	if (few_pieces(cp, fold, keys, plain, n, user))
		return "is built from guessable pieces: runs, keyboard walks, a year, common words or the user name, "
		       "with at most 2 other characters (such as qwer1234, 123password or alice123 for alice)";
	return NULL;
}

bool auth_username_ok(const char *username)
{
	return valid_username(username);
}

bool auth_password_ok(const char *password)
{
	return auth_password_problem(password, NULL) == NULL;
}

enum core_status auth_hash_password(const char *password, char **hash_out)
{
	*hash_out = NULL;
	if (!hash_slot_take())
		return CORE_ETHROTTLED;
	enum core_status st = crypto_password_hash(password, hash_out);
	hash_slot_give();
	return st;
}

enum core_status auth_user_add(struct store *s, const char *actor, const char *username, const char *password,
                               enum auth_role role, int64_t *id_out)
{
	if (id_out)
		*id_out = 0;
	if (!valid_username(username) || auth_password_problem(password, username) || role == AUTH_ROLE_NONE)
		return CORE_EINVAL;
	char *hash = NULL;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct json_object *after = NULL;
	enum core_status st = auth_hash_password(password, &hash);
	if (st != CORE_OK)
		goto out;
	if ((st = store_get_begin(s, &c)) != CORE_OK)
		goto out;
	struct store_params p = {0};
	store_param_str(&p, username);
	store_param_str(&p, hash);
	store_param_str(&p, auth_role_name(role));
	/* names are unique ignoring case (sql: users_username_lower_key): "Ann" beside "ann" is a conflict */
	st = store_run(c, "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING id", &p, &r);
	if (st == CORE_OK) {
		after = jx_object();
		json_object_object_add(after, "username", jx_str(username));
		json_object_object_add(after, "role", jx_str(auth_role_name(role)));
		json_object_object_add(after, "disabled", jx_bool(false));
		st = audit_write(c, actor, "user.create", username, NULL, after, NULL);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	else
		store_rollback(c);
	if (st == CORE_OK && id_out)
		*id_out = store_i64(r, 0, "id", 0);
out:
	PQclear(r);
	json_object_put(after);
	store_put(s, c);
	free(hash);
	return st;
}

enum core_status auth_bootstrap_admin(struct store *s, const char *password, bool *created_out)
{
	*created_out = false;
	if (!password || !*password)
		return CORE_OK;
	PGresult *r = NULL;
	enum core_status st = store_run1(s, "SELECT EXISTS (SELECT 1 FROM users) AS any", NULL, &r);
	bool any = st == CORE_OK && store_bool(r, 0, "any", true);
	PQclear(r);
	if (st != CORE_OK || any)
		return st;
	st = auth_user_add(s, "system (first start)", "admin", password, AUTH_ROLE_ADMIN, NULL);
	if (st == CORE_ECONFLICT) /* another instance created it at the same moment */
		return CORE_OK;
	if (st == CORE_OK)
		*created_out = true;
	return st;
}

/* The throttle's keys of one attempt, in the order every attempt creates and locks their rows ("ip:" < "pair:" <
 * "user:"), with the failures in 15 minutes that lock each. */
enum { KEY_IP, KEY_PAIR, KEY_USER, KEYS };
struct throttle_keys {
	char key[KEYS][200];
	int limit[KEYS];
};

/* What a lock refused, and what the attempt let through locked up front (throttle_success takes that back). */
struct throttle_out {
	int retry;             /* 0: the attempt may go on; else the seconds until the longest lock ends */
	bool refused_by[KEYS]; /* the keys whose lock refused it */
	bool locked_now[KEYS]; /* the keys this attempt, counted up front, locked */
};

/*
 * The throttle's decision and its record, for the three keys, in one short transaction: the rows are created if
 * missing and locked in key order (so concurrent attempts for a key are decided one after the other and cannot
 * deadlock). If a key is locked, the attempt is refused and nothing is counted: it never reached a password check,
 * so it is no failure of anyone's (an address locked by someone else's guesses must not lock a user who only
 * retried, nor the other way round). Otherwise the attempt counts as a failure of each key up front, so at most a
 * key's limit of them are let through to the password check in a window however many arrive at once.
 */
static enum core_status throttle_attempt(struct store_conn *c, const struct throttle_keys *k, struct throttle_out *o)
{
	memset(o, 0, sizeof(*o));
	PGresult *r = NULL;
	enum core_status st = store_begin(c);
	/* One statement takes the three rows in key order (ip: < pair: < user:, in any collation), inserting each that
	 * is missing: rows are taken in the order VALUES lists them, and the same order everywhere (throttle_success)
	 * means no deadlock. Inserting the missing rows first and locking all three next did deadlock under parallel
	 * logins (tests/http/test_hardening.py, a 409 "could not log in"): one attempt had inserted the pair row, which
	 * a success had deleted, and waited to lock the address row that another attempt had just inserted again, which
	 * waited for the first one's pair row. A row auth_tidy or a success deleted meanwhile is inserted again: its
	 * count had ended, and the attempt starts it afresh. */
	if (st == CORE_OK)
		st = STORE_RUN(c,
		               "INSERT INTO login_failures AS f (key, failures, window_start) "
		               "VALUES ($1::text, 0, now()), ($2::text, 0, now()), ($3::text, 0, now()) "
		               "ON CONFLICT (key) DO UPDATE SET failures = f.failures "
		               "RETURNING key, coalesce(locked_until > now(), false) AS locked,"
		               " ceil(extract(epoch FROM locked_until - now()))::int AS secs",
		               &r, STORE_STR(k->key[KEY_IP]), STORE_STR(k->key[KEY_PAIR]), STORE_STR(k->key[KEY_USER]));
	/* the rows locked (whether locked or not: an attempt waiting here sees the one before it counted) */
	for (int i = 0; st == CORE_OK && i < PQntuples(r); i++) {
		if (!store_bool(r, i, "locked", false))
			continue;
		int secs = (int)store_i64(r, i, "secs", 1);
		if (secs < 1)
			secs = 1;
		if (secs > o->retry)
			o->retry = secs;
		for (int j = 0; j < KEYS; j++)
			if (strcmp(store_str(r, i, "key"), k->key[j]) == 0)
				o->refused_by[j] = true;
	}
	PQclear(r);
	r = NULL;
	if (st == CORE_OK && o->retry == 0)
		st = STORE_RUN(
		    c,
		    "UPDATE login_failures AS f SET"
		    " failures = CASE WHEN f.window_start < now() - interval '15 minutes' THEN 1"
		    "                 ELSE f.failures + 1 END,"
		    " window_start = CASE WHEN f.window_start < now() - interval '15 minutes' THEN now()"
		    "                     ELSE f.window_start END,"
		    " locked_until = CASE WHEN f.window_start >= now() - interval '15 minutes'"
		    "                      AND f.failures + 1 >= v.lim"
		    "   THEN now() + least(interval '15 minutes',"
		    "                      interval '1 minute' * power(2, f.failures + 1 - v.lim))"
		    "   WHEN v.lim <= 1 THEN now() + interval '1 minute' ELSE f.locked_until END "
		    "FROM (VALUES ($1::text, $4::int), ($2::text, $5::int), ($3::text, $6::int)) AS v(k, lim)"
		    " WHERE f.key = v.k "
		    "RETURNING f.key, coalesce(f.locked_until > now(), false) AS locked",
		    &r, STORE_STR(k->key[KEY_IP]), STORE_STR(k->key[KEY_PAIR]), STORE_STR(k->key[KEY_USER]),
		    STORE_I64(k->limit[KEY_IP]), STORE_I64(k->limit[KEY_PAIR]), STORE_I64(k->limit[KEY_USER]));
	for (int i = 0; st == CORE_OK && i < PQntuples(r); i++)
		for (int j = 0; j < KEYS; j++)
			if (store_bool(r, i, "locked", false) && strcmp(store_str(r, i, "key"), k->key[j]) == 0)
				o->locked_now[j] = true;
	PQclear(r);
	if (st == CORE_OK)
		st = store_commit(c);
	else
		store_rollback(c);
	return st;
}

/*
 * A correct password: the user's failures at this address are cleared, and the address and the user everywhere
 * get back the attempt counted up front, with the lock that attempt set (locked_now): after a lock ended, the
 * failures still reach the limit until their window closes, so each attempt locks up front, and a correct one must
 * not leave it locked for the next. (The user's count from everywhere is not cleared: a guesser spread over many
 * addresses must not get a fresh count each time the user logs in.)
 */
static void throttle_success(struct store_conn *c, const struct throttle_keys *k, const struct throttle_out *o)
{
	/* one transaction that takes the rows in the attempt's key order first (throttle_attempt): an UPDATE of two
	 * rows takes them in whatever order its plan reads them, and could wait for an attempt that waits for it */
	if (store_begin(c) != CORE_OK)
		return;
	enum core_status st =
	    STORE_RUN(c, "SELECT 1 FROM login_failures WHERE key IN ($1, $2, $3) ORDER BY key FOR UPDATE", NULL,
	              STORE_STR(k->key[KEY_IP]), STORE_STR(k->key[KEY_PAIR]), STORE_STR(k->key[KEY_USER]));
	if (st == CORE_OK)
		st = STORE_RUN(c, "DELETE FROM login_failures WHERE key = $1", NULL, STORE_STR(k->key[KEY_PAIR]));
	if (st == CORE_OK)
		st = STORE_RUN(
		    c,
		    "UPDATE login_failures AS f SET failures = greatest(f.failures - 1, 0), "
		    " locked_until = CASE WHEN v.undo OR f.failures - 1 < v.lim THEN NULL ELSE f.locked_until END "
		    "FROM (VALUES ($1::text, $3::int, $5::boolean), ($2::text, $4::int, $6::boolean))"
		    " AS v(k, lim, undo) WHERE f.key = v.k",
		    NULL, STORE_STR(k->key[KEY_IP]), STORE_STR(k->key[KEY_USER]), STORE_I64(k->limit[KEY_IP]),
		    STORE_I64(k->limit[KEY_USER]), STORE_BOOL(o->locked_now[KEY_IP]),
		    STORE_BOOL(o->locked_now[KEY_USER]));
	/* a count back at nothing is no row (every login would leave its user's) */
	if (st == CORE_OK)
		st = STORE_RUN(
		    c, "DELETE FROM login_failures WHERE key IN ($1, $2) AND failures = 0 AND locked_until IS NULL",
		    NULL, STORE_STR(k->key[KEY_IP]), STORE_STR(k->key[KEY_USER]));
	if (st == CORE_OK)
		st = store_commit(c);
	if (st != CORE_OK) {
		store_rollback(c);
		log_warn("could not take back a successful login's attempt for %s: %s", k->key[KEY_PAIR],
		         core_status_code(st));
	}
}

/* The keys of an attempt: names are unique ignoring case ("Dave" is counted against dave); a name or address longer
 * than any we accept is cut on purpose (the key bounds the row). */
static void throttle_keys(struct throttle_keys *k, const char *username, const char *client_ip)
{
	char name[101];
	snprintf(name, sizeof(name), "%.100s", username);
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	const char *ip = client_ip ? client_ip : "unknown";
	snprintf(k->key[KEY_IP], sizeof(k->key[KEY_IP]), "ip:%.80s", ip);
	snprintf(k->key[KEY_PAIR], sizeof(k->key[KEY_PAIR]), "pair:%s|%.80s", name, ip);
	snprintf(k->key[KEY_USER], sizeof(k->key[KEY_USER]), "user:%s", name);
	k->limit[KEY_IP] = AUTH_IP_LIMIT;
	k->limit[KEY_PAIR] = AUTH_USER_LIMIT;
	k->limit[KEY_USER] = AUTH_USER_WIDE_LIMIT;
}

enum core_status auth_user_exists(struct store *s, const char *username, bool *exists)
{
	PGresult *r = NULL;
	*exists = false;
	enum core_status st =
	    STORE_RUN1(s, "SELECT 1 FROM users WHERE lower(username) = lower($1)", &r, STORE_STR(username));
	if (st == CORE_OK)
		*exists = PQntuples(r) > 0;
	PQclear(r);
	return st;
}

enum core_status auth_unlock(struct store *s, const char *actor, const char *username, const char *address,
                             long long *cleared_out)
{
	*cleared_out = 0;
	char name[101] = "";
	if (username) {
		snprintf(name, sizeof(name), "%.100s", username);
		for (char *p = name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	enum core_status st = store_get_begin(s, &c);
	/* keys are compared by prefix and suffix with left()/right(): a name or address holds no LIKE pattern */
	if (st == CORE_OK)
		st =
		    STORE_RUN(c,
		              /* rows taken in key order, as a login takes them (throttle_attempt) */
		              "WITH d AS (DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures WHERE"
		              " ($1::text IS NOT NULL AND (key = 'user:' || $1 OR left(key, length($1) + 6) = 'pair:' "
		              "|| $1 || '|'))"
		              " OR ($2::text IS NOT NULL AND (key = 'ip:' || $2 OR (left(key, 5) = 'pair:'"
		              "  AND right(key, length($2) + 1) = '|' || $2)))"
		              " ORDER BY key FOR UPDATE)"
		              " RETURNING 1) SELECT count(*) AS n FROM d",
		              &r, STORE_STR(username ? name : NULL), STORE_STR(address));
	if (st == CORE_OK) {
		*cleared_out = store_i64(r, 0, "n", 0);
		struct json_object *details = jx_object();
		if (username)
			json_object_object_add(details, "user", jx_str(name));
		if (address)
			json_object_object_add(details, "address", jx_str(address));
		json_object_object_add(details, "cleared", jx_int(*cleared_out));
		st = audit_write(c, actor, "user.unlock", username ? name : address, NULL, NULL, details);
		json_object_put(details);
	}
	if (st == CORE_OK)
		st = store_commit(c);
	PQclear(r);
	store_put(s, c);
	return st;
}

enum core_status auth_tidy(struct store *s, long long *sessions_out, long long *failures_out)
{
	PGresult *r = NULL;
	if (sessions_out)
		*sessions_out = 0;
	if (failures_out)
		*failures_out = 0;
	enum core_status st =
	    store_run1(s,
	               "WITH a AS (DELETE FROM sessions WHERE expires_at < now() RETURNING 1),"
	               /* rows taken in key order, as a login takes them (throttle_attempt) */
	               " b AS (DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures"
	               "  WHERE window_start < now() - interval '1 hour'"
	               "    AND (locked_until IS NULL OR locked_until < now() - interval '1 hour')"
	               "  ORDER BY key FOR UPDATE)"
	               "  RETURNING 1)"
	               " SELECT (SELECT count(*) FROM a) AS sessions, (SELECT count(*) FROM b) AS failures",
	               NULL, &r);
	if (st == CORE_OK) {
		if (sessions_out)
			*sessions_out = store_i64(r, 0, "sessions", 0);
		if (failures_out)
			*failures_out = store_i64(r, 0, "failures", 0);
	}
	PQclear(r);
	return st;
}

static void fill_identity(struct auth_identity *who, const PGresult *r, bool via_cookie, const char *token_name)
{
	memset(who, 0, sizeof(*who));
	who->user_id = store_i64(r, 0, "id", 0);
	snprintf(who->username, sizeof(who->username), "%s", store_str(r, 0, "username"));
	enum auth_role role = AUTH_ROLE_NONE;
	auth_role_parse(store_str(r, 0, "role"), &role);
	who->role = role;
	who->is_admin = role == AUTH_ROLE_ADMIN;
	who->via_cookie = via_cookie;
	const char *csrf = store_str(r, 0, "csrf_token");
	if (csrf)
		snprintf(who->csrf_token, sizeof(who->csrf_token), "%s", csrf);
	const char *snap = PQfnumber(r, "snap") >= 0 ? store_str(r, 0, "snap") : NULL;
	if (snap && strlen(snap) < sizeof(who->snapshot))
		memcpy(who->snapshot, snap, strlen(snap) + 1);
	if (token_name)
		snprintf(who->actor, sizeof(who->actor), "%s (token %s)", who->username, token_name);
	else
		snprintf(who->actor, sizeof(who->actor), "%s", who->username);
}

enum core_status auth_login(struct store *s, const char *username, const char *password, const char *client_ip,
                            struct auth_login_result *out)
{
	/* A fixed hash to verify against for unknown users, so that timing does not tell which names exist. */
	static const char *dummy = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
	                           "Zb9vxUs6KhFyRT0/gqzW1v+sL0EVwS9kbxiOHoVhUrc";
	memset(out, 0, sizeof(*out));
	if (!username || !password)
		return CORE_EINVAL;
	struct throttle_keys keys;
	throttle_keys(&keys, username, client_ip);

	struct store_conn *c = NULL;
	PGresult *r = NULL;
	char *token = NULL, *token_hash = NULL, *csrf = NULL;
	/* a hashing slot first (before a database connection, so that waiting logins do not drain the pool): an
	 * attempt refused for want of one is not counted against the user */
	if (!hash_slot_take()) {
		out->retry_after = 1;
		out->busy = true;
		return CORE_ETHROTTLED;
	}
	bool have_slot = true;
	enum core_status st = store_get(s, &c);
	if (st != CORE_OK)
		goto out;
	struct throttle_out th;
	st = throttle_attempt(c, &keys, &th);
	if (st != CORE_OK)
		goto out;
	if (th.retry > 0) {
		out->retry_after = th.retry;
		out->address_locked = th.refused_by[KEY_IP];
		out->user_locked_everywhere = !th.refused_by[KEY_IP] && !th.refused_by[KEY_PAIR];
		st = CORE_ETHROTTLED;
		goto out;
	}

	struct store_params p = {0};
	store_param_str(&p, username);
	st = store_run(
	    c, "SELECT id, username, role, disabled, password_hash FROM users WHERE lower(username) = lower($1)", &p,
	    &r);
	if (st != CORE_OK)
		goto out;
	const char *hash = PQntuples(r) > 0 ? store_str(r, 0, "password_hash") : NULL;
	bool ok = crypto_password_verify(hash ? hash : dummy, password) && hash;
	/* the slot is kept until the outcome is recorded (the success's clearing below): an attempt is counted up
	 * front, so with the slot handed on first, a fifth attempt was counted while four right ones were pending
	 * and locked the user (AUTH_HASH_SLOTS < AUTH_USER_LIMIT keeps that from happening) */
	bool disabled = ok && store_bool(r, 0, "disabled", false);
	if (!ok || disabled) {
		st = CORE_EUNAUTH;
		/* a name no user has is not logged: it may be a password typed into the name field */
		if (hash)
			log_info("failed login for user \"%.64s\" from %s%s", store_str(r, 0, "username"),
			         client_ip ? client_ip : "unknown", disabled ? " (the user is disabled)" : "");
		else
			log_info("failed login for a user name that does not exist, from %s",
			         client_ip ? client_ip : "unknown");
		goto out;
	}

	token = crypto_random_token(NULL);
	csrf = crypto_random_token(NULL);
	token_hash = crypto_sha256_hex(token, strlen(token));
	st = STORE_RUN(c,
	               "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) "
	               "VALUES ($1, $2, $3, now() + $4::int * interval '1 hour')",
	               NULL, STORE_STR(token_hash), STORE_I64(store_i64(r, 0, "id", 0)), STORE_STR(csrf),
	               STORE_I64(AUTH_SESSION_HOURS));
	if (st != CORE_OK)
		goto out;
	throttle_success(c, &keys, &th);
	fill_identity(&out->who, r, true, NULL);
	snprintf(out->who.csrf_token, sizeof(out->who.csrf_token), "%s", csrf);
	out->session_token = token;
	token = NULL;
	log_info("user \"%s\" logged in from %s", out->who.username, client_ip ? client_ip : "unknown");
out:
	if (have_slot)
		hash_slot_give();
	PQclear(r);
	store_put(s, c);
	crypto_free_secret(token);
	crypto_free_secret(csrf);
	free(token_hash);
	return st;
}

enum core_status auth_password_change(struct store *s, const struct auth_identity *who, const char *current,
                                      const char *next, const char *client_ip, const char *keep_session,
                                      struct auth_login_result *out)
{
	memset(out, 0, sizeof(*out));
	if (!current || !next || auth_password_problem(next, who->username))
		return CORE_EINVAL;
	struct throttle_keys keys;
	throttle_keys(&keys, who->username, client_ip);
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	char *hash = NULL, *keep_hash = NULL;
	/* one hashing slot for both the check and the new hash (taking a second could wait on ourselves) */
	if (!hash_slot_take()) {
		out->retry_after = 1;
		out->busy = true;
		return CORE_ETHROTTLED;
	}
	enum core_status st = store_get(s, &c);
	struct throttle_out th;
	memset(&th, 0, sizeof(th));
	if (st == CORE_OK)
		st = throttle_attempt(c, &keys, &th);
	if (st == CORE_OK && th.retry > 0) {
		/* the current password is guessed through the same throttle as a login (a session left open must not
		 * let anyone try passwords without end) */
		out->retry_after = th.retry;
		out->address_locked = th.refused_by[KEY_IP];
		out->user_locked_everywhere = !th.refused_by[KEY_IP] && !th.refused_by[KEY_PAIR];
		st = CORE_ETHROTTLED;
	}
	if (st == CORE_OK)
		st = STORE_RUN(c, "SELECT password_hash FROM users WHERE id = $1 AND NOT disabled", &r,
		               STORE_I64(who->user_id));
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_EUNAUTH;
	if (st == CORE_OK && !crypto_password_verify(store_str(r, 0, "password_hash"), current)) {
		log_info("a wrong current password for user \"%.64s\" from %s in a password change", who->username,
		         client_ip ? client_ip : "unknown");
		st = CORE_EFORBIDDEN;
	}
	if (st == CORE_OK)
		st = crypto_password_hash(next, &hash);
	if (st == CORE_OK && keep_session)
		keep_hash = crypto_sha256_hex(keep_session, strlen(keep_session));
	/* the new password, the user's other sessions ended (a session someone else holds ends with the old
	 * password), the audit entry: one transaction */
	if (st == CORE_OK && (st = store_begin(c)) == CORE_OK) {
		st = STORE_RUN(c, "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", NULL,
		               STORE_I64(who->user_id), STORE_STR(hash));
		if (st == CORE_OK)
			st = STORE_RUN(c, "DELETE FROM sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2",
			               NULL, STORE_I64(who->user_id), STORE_STR(keep_hash));
		if (st == CORE_OK)
			st = audit_write(c, who->actor, "user.password_change", who->username, NULL, NULL, NULL);
		if (st == CORE_OK)
			st = store_commit(c);
		else
			store_rollback(c);
	}
	if (st == CORE_OK) {
		throttle_success(c, &keys, &th);
		log_info("user \"%s\" changed their password from %s", who->username,
		         client_ip ? client_ip : "unknown");
	}
	hash_slot_give();
	PQclear(r);
	store_put(s, c);
	crypto_free_secret(hash);
	free(keep_hash);
	return st;
}

/*
 * The identity behind a session cookie or an API token: one statement (sql) that takes the token's SHA-256 as $1
 * and returns the user's id, username, role and csrf_token (sessions) or name (the token's).
 */
static enum core_status identity_by_token(struct store *s, const char *token, const char *sql, bool via_cookie,
                                          struct auth_identity *out)
{
	memset(out, 0, sizeof(*out));
	if (!token || !*token)
		return CORE_EUNAUTH;
	char *h = crypto_sha256_hex(token, strlen(token));
	struct store_params p = {0};
	store_param_str(&p, h);
	PGresult *r = NULL;
	enum core_status st = store_run1(s, sql, &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_EUNAUTH;
	if (st == CORE_OK)
		fill_identity(out, r, via_cookie, via_cookie ? NULL : store_str(r, 0, "name"));
	PQclear(r);
	free(h);
	return st;
}

#define STR_(x) #x
#define STR(x)  STR_(x)

enum core_status auth_session(struct store *s, const char *session_token, struct auth_identity *out)
{
	/* Sliding expiry: a used session lives another AUTH_SESSION_HOURS (written at most once a minute). */
	return identity_by_token(s, session_token,
	                         STORE_PREPARE
	                         "WITH s AS (UPDATE sessions SET last_seen = now(), "
	                         "  expires_at = now() + " STR(
	                             AUTH_SESSION_HOURS) " * interval '1 hour' "
	                                                 "  WHERE token_hash = $1 AND expires_at > now() AND last_seen "
	                                                 "< now() - interval '1 minute' "
	                                                 "  RETURNING user_id, csrf_token) "
	                                                 "SELECT u.id, u.username, u.role, x.csrf_token, "
	                                                 "pg_current_snapshot()::text AS snap FROM "
	                                                 " (SELECT user_id, csrf_token FROM s UNION ALL "
	                                                 "  SELECT user_id, csrf_token FROM sessions WHERE token_hash "
	                                                 "= $1 AND expires_at > now()) x "
	                                                 " JOIN users u ON u.id = x.user_id AND NOT u.disabled LIMIT 1",
	                         true, out);
}

enum core_status auth_bearer(struct store *s, const char *token, struct auth_identity *out)
{
	/* last_used_at is written at most once a minute per token: a script's burst of requests costs one write */
	return identity_by_token(s, token,
	                         STORE_PREPARE
	                         "WITH w AS (UPDATE api_tokens t SET last_used_at = now() FROM users d"
	                         "  WHERE t.token_hash = $1 AND d.id = t.user_id AND NOT d.disabled"
	                         "  AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')"
	                         "  RETURNING t.user_id, t.name)"
	                         " SELECT u.id, u.username, u.role, x.name, pg_current_snapshot()::text AS snap FROM"
	                         " (SELECT user_id, name FROM w UNION ALL"
	                         "  SELECT user_id, name FROM api_tokens WHERE token_hash = $1) x"
	                         " JOIN users u ON u.id = x.user_id AND NOT u.disabled LIMIT 1",
	                         false, out);
}

enum core_status auth_logout(struct store *s, const char *session_token)
{
	if (!session_token || !*session_token)
		return CORE_OK;
	char *h = crypto_sha256_hex(session_token, strlen(session_token));
	struct store_params p = {0};
	store_param_str(&p, h);
	enum core_status st = store_run1(s, "DELETE FROM sessions WHERE token_hash = $1", &p, NULL);
	free(h);
	return st;
}

enum core_status auth_token_audit(struct store_conn *c, const char *actor, bool created, const char *username,
                                  const char *name, const char *hint)
{
	struct buf target = {0};
	struct json_object *token = jx_object();
	json_object_object_add(token, "name", jx_str(name));
	json_object_object_add(token, "hint", jx_str(hint));
	json_object_object_add(token, "user", jx_str(username));
	buf_printf(&target, "%s (token %s)", username, name);
	enum core_status st = audit_write(c, actor, created ? "token.create" : "token.delete", buf_str(&target),
	                                  created ? NULL : token, created ? token : NULL, NULL);
	json_object_put(token);
	buf_free(&target);
	return st;
}

struct token_create {
	const char *username, *name, *hash, *hint;
};

static enum core_status token_create_tx(struct store_conn *c, void *user)
{
	const struct token_create *t = user;
	PGresult *r = NULL;
	enum core_status st =
	    STORE_RUN(c,
	              "INSERT INTO api_tokens (user_id, name, token_hash, hint) "
	              "SELECT id, $2, $3, $4 FROM users WHERE username = $1 RETURNING id",
	              &r, STORE_STR(t->username), STORE_STR(t->name), STORE_STR(t->hash), STORE_STR(t->hint));
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	PQclear(r);
	if (st == CORE_OK)
		st = auth_token_audit(c, "system (mrgate token create)", true, t->username, t->name, t->hint);
	return st;
}

enum core_status auth_token_create(struct store *s, const char *username, const char *name, char **token_out)
{
	*token_out = NULL;
	if (!name || !*name || strlen(name) > AUTH_TOKEN_NAME_MAX)
		return CORE_EINVAL;
	char *token = crypto_random_token("mrg_");
	char *h = crypto_sha256_hex(token, strlen(token));
	char *hint = crypto_token_hint(token);
	struct token_create t = {.username = username, .name = name, .hash = h, .hint = hint};
	enum core_status st = store_tx(s, token_create_tx, &t);
	if (st == CORE_OK) {
		*token_out = token;
		token = NULL;
	}
	crypto_free_secret(token);
	free(h);
	free(hint);
	return st;
}
