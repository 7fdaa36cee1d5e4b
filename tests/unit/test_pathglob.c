/*
 * tests/unit/test_pathglob.c
 *    Glob matching of ignore_paths (rules in core/pathglob.h).
 */
#include "pathglob.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gcase {
	const char *pattern, *path;
	bool match;
};

static void run_cases(const struct gcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool got = pathglob_match(c[i].pattern, c[i].path);
		CHECK(got == c[i].match);
		if (got != c[i].match)
			fprintf(stderr, "  pattern \"%s\" path \"%s\": got %d\n", c[i].pattern, c[i].path, got);
	}
}

/* Every case of pattern x path in one table, by topic: "*" and "?", then "**", then anchoring and directories. */
static const struct gcase cases[] = {
    {"*.min.js", "a.min.js", true},
    {"*.min.js", "web/vendor/a.min.js", true},
    {"*.min.js", "a.min.jsx", false},
    {"*.js", "dir.js/readme", true}, /* a directory named *.js: everything below */
    {"src/*.c", "src/a.c", true},
    {"src/*.c", "src/sub/a.c", false},
    {"src/*.c", "lib/src/a.c", false}, /* anchored: has a slash */
    {"?.c", "a.c", true},
    {"?.c", "ab.c", false},
    {"a?c", "a/c", false},
    {"src/?/x", "src/b/x", true},
    {"file[0-9].txt", "file7.txt", true},
    {"file[0-9].txt", "filex.txt", false},
    {"file[!0-9].txt", "filex.txt", true},
    {"file[^0-9].txt", "file1.txt", false},
    {"[]]x", "]x", true},
    {"a[/]b", "a/b", false},
    {"\\*.c", "*.c", true},
    {"\\*.c", "a.c", false},
    {"*", "anything/at/all", true},
    {"README", "README", true},
    {"README", "docs/README", true},
    {"README", "README.md", false},
    /* "**" */
    {"**/test/x", "test/x", true},
    {"**/test/x", "a/b/test/x", true},
    {"**/test/x", "a/btest/x", false},
    {"docs/**", "docs/a.md", true},
    {"docs/**", "docs/a/b/c.md", true},
    {"docs/**", "docs", false},
    {"docs/**", "mydocs/a.md", false},
    {"a/**/b", "a/b", true},
    {"a/**/b", "a/x/b", true},
    {"a/**/b", "a/x/y/b", true},
    {"a/**/b", "a/x/y/c", false},
    {"a/**/b", "xa/x/b", false},
    {"**/*.pb.go", "api/v1/x.pb.go", true},
    {"**/*.pb.go", "x.pb.go", true},
    {"**/*.pb.go", "api/v1/x.go", false},
    {"src/**/*.test.ts", "src/a/b/c.test.ts", true},
    {"src/**/*.test.ts", "src/c.test.ts", true},
    {"**", "a/b", true},
    {"/a**z", "a/b/z", true}, /* anchored: "**" inside a component still crosses '/' */
    {"a**z", "a/b/z", false}, /* no slash: compared with each component */
                              /* anchoring and directories */
    {"/build", "build/x.o", true},
    {"/build", "build", true},
    {"/build", "src/build/x.o", false},
    {"build", "src/build/x.o", true},
    {"build/", "build/x.o", true},
    {"build/", "a/build/y.o", true},
    {"build/", "build", false}, /* a file named build */
    {"build/", "a/build", false},
    {"/third_party", "third_party/z/a.c", true},
    {"vendor", "lib/vendor/y.c", true},
    {"vendor", "lib/vendors/y.c", false},
    {"src/gen", "src/gen/x.c", true},
    {"src/gen", "a/src/gen/x.c", false},
    {"/src/*.c", "./src/a.c", true}, /* leading "./" on the path is ignored */
    {"*.c", "/a.c", true},
    {"", "a", false},
    {"#comment", "#comment", false},
    {"!negated", "negated", false},
    {"/", "a", false},
    {"x", "", false},
};

static void test_cases(void)
{
	run_cases(cases, sizeof(cases) / sizeof(cases[0]));
	CHECK(!pathglob_match(NULL, "a"));
	CHECK(!pathglob_match("a", NULL));
	const char *pats[] = {"*.md", "/vendor"};
	CHECK(pathglob_match_any(pats, 2, "vendor/x.go"));
	CHECK(pathglob_match_any(pats, 2, "doc/x.md"));
	CHECK(!pathglob_match_any(pats, 2, "src/vendor/x.go"));
	CHECK(!pathglob_match_any(NULL, 2, "x"));
}

static void test_valid(void)
{
	CHECK(pathglob_valid("*.js"));
	CHECK(pathglob_valid("docs/**"));
	CHECK(!pathglob_valid(""));
	CHECK(!pathglob_valid("!x"));
	CHECK(!pathglob_valid("#x"));
	CHECK(!pathglob_valid("[abc"));
	CHECK(!pathglob_valid("/"));
	CHECK(!pathglob_valid(NULL));
	char *big = malloc(PATHGLOB_MAX + 2);
	REQUIRE(big);
	memset(big, 'a', PATHGLOB_MAX + 1);
	big[PATHGLOB_MAX + 1] = '\0';
	CHECK(!pathglob_valid(big));
	CHECK(!pathglob_match(big, big));
	free(big);
}

static void test_pathological(void)
{
	/* Many stars against a long non-matching path must stay fast (no exponential backtracking). */
	char path[2048];
	for (size_t i = 0; i < sizeof(path) - 1; i++)
		path[i] = (i % 8 == 7) ? '/' : 'a';
	path[sizeof(path) - 1] = '\0';
	const char *pats[] = {"*a*a*a*a*a*a*a*a*a*a*b", "**/*a*a*a*a*a*a*a*b", "a**a**a**a**a**a**a**b",
	                      "**/**/**/**/**/**/b"};
	clock_t t0 = clock();
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
		CHECK(!pathglob_match(pats[i], path));
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	CHECK(secs < 20.0); /* natively ~0.1 s; generous for valgrind; exponential backtracking would take hours */
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The patterns that took 0.64 s and more than 10 s with the backtracking matcher: polynomial now. */
static void test_hostile_patterns_are_fast(void)
{
	char path[128] = "", sixtyfive[256] = "", twentytwo[80] = "";
	for (int i = 0; i < 40; i++) /* 40 segments */
		strcat(path, i ? "/a" : "a");
	for (int i = 0; i < 65; i++) /* 195 bytes */
		strcat(sixtyfive, "**/");
	for (int i = 0; i < 22; i++)
		strcat(twentytwo, "**/");
	strcat(twentytwo, "x");
	REQUIRE(strlen(sixtyfive) == 195);
	char sixtyfive_x[260];
	snprintf(sixtyfive_x, sizeof(sixtyfive_x), "%.192sx", sixtyfive); /* 64 x "**" + "/" and "x": 195 bytes */
	REQUIRE(strlen(sixtyfive_x) == 193);
	double t0 = now_ms();
	CHECK(!pathglob_match(twentytwo, path));
	CHECK(!pathglob_match(sixtyfive_x, path));
	CHECK(pathglob_match(sixtyfive, path)); /* every directory of it */
	double ms = now_ms() - t0;
	CHECK(ms < 10.0); /* generous: each is well under a millisecond; the old matcher took seconds */
	if (ms >= 10.0)
		fprintf(stderr, "  hostile patterns took %.1f ms\n", ms);
	/* the same shapes still match what they should */
	char hit[140];
	snprintf(hit, sizeof(hit), "%s/x", path);
	CHECK(pathglob_match(twentytwo, hit));
	CHECK(pathglob_match(sixtyfive_x, hit));
}

/* Patterns users store are capped in length and "**" count, with a reason to show. */
static void test_check_caps(void)
{
	char why[120];
	char big[PATHGLOB_PATTERN_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(!pathglob_check(big, why, sizeof(why)));
	CHECK(strstr(why, "512 bytes") != NULL);
	big[PATHGLOB_PATTERN_MAX] = '\0';
	CHECK(pathglob_check(big, why, sizeof(why)));
	CHECK(pathglob_check("**/a/**/b/**/c/**/d/**/e/**/f/**/g/**/h", why, sizeof(why)));     /* 8 */
	CHECK(!pathglob_check("**/a/**/b/**/c/**/d/**/e/**/f/**/g/**/h/**", why, sizeof(why))); /* 9 */
	CHECK(strstr(why, "9 \"**\"; at most 8") != NULL);
	CHECK(!pathglob_check("[abc", why, sizeof(why)));
	CHECK(strstr(why, "not closed") != NULL);
	CHECK(!pathglob_check("!x", why, sizeof(why)));
	CHECK(strstr(why, "negation") != NULL);
	CHECK(!pathglob_check(NULL, NULL, 0));
	CHECK(pathglob_check("\\*\\*", NULL, 0)); /* escaped stars are no "**" */
	/* what a reader cannot see: control characters, bidi controls, zero-width characters; other UTF-8 is fine */
	CHECK(!pathglob_check("docs/\tx", why, sizeof(why)));
	CHECK(strstr(why, "control character (0x09) at byte 6") != NULL);
	CHECK(!pathglob_check("docs/\x7f", why, sizeof(why)));
	CHECK(!pathglob_check("vendor/\xe2\x80\xae**", why, sizeof(why))); /* U+202E */
	CHECK(strstr(why, "U+202E at byte 8") != NULL);
	CHECK(!pathglob_check("a\xe2\x81\xa6"
	                      "b",
	                      why, sizeof(why))); /* U+2066 */
	CHECK(strstr(why, "U+2066") != NULL);
	CHECK(!pathglob_check("a\xe2\x80\x8b", why, sizeof(why))); /* U+200B */
	CHECK(!pathglob_check("\xef\xbb\xbf"
	                      "a",
	                      why, sizeof(why)));                                          /* U+FEFF */
	CHECK(!pathglob_check("a\xd8\x9c", why, sizeof(why)));                             /* U+061C */
	CHECK(pathglob_check("docs/r\xc3\xa9sum\xc3\xa9/**", why, sizeof(why)));           /* é */
	CHECK(pathglob_check("\xe2\x80\x94/\xe2\x82\xac/\xef\xbc\x8a", why, sizeof(why))); /* U+2014, U+20AC, U+FF0A */
	CHECK(pathglob_check("\xd8\xa7/**", why, sizeof(why)));                            /* U+0627 */
}

int main(void)
{
	RUN(test_cases);
	RUN(test_valid);
	RUN(test_pathological);
	RUN(test_hostile_patterns_are_fast);
	RUN(test_check_caps);
	return testlib_done();
}
