/*
 * tests/unit/test_diff.c
 *    Unified diff parsing into added lines, and the per-path added-line set.
 */
#include "diff.h"
#include "testlib.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

static struct diff_added *parse(const char *d, enum core_status want)
{
	struct diff_added *a = (struct diff_added *)1;
	enum core_status st = diff_added_parse(d, strlen(d), &a);
	CHECK_INT(st, want);
	if (st != CORE_OK)
		CHECK(a == NULL);
	return st == CORE_OK ? a : NULL;
}

/* How many added lines d has (it must parse), -1 when it does not. */
static long count_added(const char *d)
{
	struct diff_added *a = parse(d, CORE_OK);
	long n = a ? (long)a->count : -1;
	diff_added_free(a);
	return n;
}

/* An added line as a test expects it: its new-file line number and its text. */
struct want_line {
	long line;
	const char *text;
};

/*
 * d must parse to exactly the n added lines want, in order; a failure names the diff. Returns the parse (the
 * caller frees it) or NULL when it failed or has another count.
 */
static struct diff_added *expect_lines(const char *d, size_t n, const struct want_line *want)
{
	int failures = testlib_failures;
	struct diff_added *a = parse(d, CORE_OK);
	if (a && a->count != n) {
		CHECK_INT(a->count, n);
		diff_added_free(a);
		a = NULL;
	}
	for (size_t i = 0; a && i < n; i++) {
		CHECK_INT(a->lines[i].line, want[i].line);
		CHECK_STR(a->lines[i].text, want[i].text);
	}
	if (testlib_failures != failures)
		fprintf(stderr, "  in the diff \"%s\"\n", d);
	return a;
}

static void test_modified_file(void)
{
	const char *d = "@@ -1,5 +1,5 @@ int main(void)\n"
	                " line1\n"
	                "-old2\n"
	                "+new2\n"
	                "+new3\n"
	                " line4\n"
	                "-old5\n"
	                " line6\n"
	                "@@ -20,3 +20,3 @@\n"
	                " a\n"
	                "-b\n"
	                "+B\n"
	                " c\n";
	struct diff_added *a = expect_lines(d, 3, (const struct want_line[]){{2, "new2"}, {3, "new3"}, {21, "B"}});
	REQUIRE(a);
	CHECK_INT(a->lines[0].len, 4);
	CHECK(diff_added_find(a, 21) == &a->lines[2]);
	CHECK(diff_added_find(a, 1) == NULL);
	CHECK(diff_added_find(a, 4) == NULL);
	diff_added_free(a);
	diff_added_free(NULL);
}

static void test_new_deleted_binary_empty(void)
{
	struct diff_added *a = parse("@@ -0,0 +1,3 @@\n+a\n+\n+c\n\\ No newline at end of file\n", CORE_OK);
	REQUIRE(a);
	CHECK_INT(a->count, 3);
	CHECK_STR(a->lines[1].text, "");
	CHECK_INT(a->lines[2].line, 3);
	diff_added_free(a);

	CHECK_INT(count_added("@@ -1,2 +0,0 @@\n-a\n-b\n"), 0);
	CHECK_INT(count_added(""), 0);
	CHECK_INT(count_added("Binary files a/logo.png and b/logo.png differ\n"), 0);

	/* GitLab's documented short form: counts omitted mean 1. */
	diff_added_free(expect_lines("@@ -1 +1 @@\n-Title\n+README\n", 1, (const struct want_line[]){{1, "README"}}));
}

static void test_crlf_and_no_newline(void)
{
	struct diff_added *a = expect_lines("@@ -1,2 +1,2 @@\r\n-x\r\n+y\r\n\\ No newline at end of file\r\n a\r\n", 1,
	                                    (const struct want_line[]){{1, "y"}});
	REQUIRE(a);
	CHECK_INT(a->lines[0].len, 1);
	diff_added_free(a);
	/* Last line without a line end; a '\r' inside a line is content. */
	diff_added_free(expect_lines("@@ -1 +1,2 @@\n x\n+a\rb", 1, (const struct want_line[]){{2, "a\rb"}}));
	/* An empty line inside a hunk is an empty context line. */
	diff_added_free(expect_lines("@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n", 1, (const struct want_line[]){{3, "c"}}));
}

static void test_git_headers(void)
{
	/* A raw diff with headers, and added lines that look like headers. */
	const char *d = "diff --git a/x b/x\n"
	                "index 111..222 100644\n"
	                "--- a/x\n"
	                "+++ b/x\n"
	                "@@ -1,1 +1,3 @@\n"
	                " keep\n"
	                "+++ not a header\n"
	                "+--- nor this\n";
	diff_added_free(expect_lines(d, 2, (const struct want_line[]){{2, "++ not a header"}, {3, "--- nor this"}}));
}

static void test_malformed(void)
{
	parse("@@ -1,2 +1,2 @@\n x\n", CORE_EINVAL);     /* truncated hunk */
	parse("@@ -1 +1 @@\n-a\n+b\n+c\n", CORE_EINVAL); /* more added lines than announced */
	parse("@@ -1 +1 @@\n*a\n", CORE_EINVAL);         /* unknown line type */
	parse("@@ -x +1 @@\n+a\n", CORE_EINVAL);         /* bad header */
	parse("@@ -1 +1\n+a\n", CORE_EINVAL);
	parse("@@@ -1 -1 +1 @@@\n", CORE_EINVAL);          /* combined diff */
	parse("@@ -1 +99999999999 @@\n+a\n", CORE_EINVAL); /* absurd number */
	parse("@@\\ -1.9.7\\ +1.9.8", CORE_EINVAL);        /* GitLab's mangled doc example */
	struct diff_added *a = NULL;
	CHECK_INT(diff_added_parse(NULL, 3, &a), CORE_EINVAL);
	CHECK_INT(diff_added_parse("", 0, NULL), CORE_EINVAL);
}

static void test_size_cap(void)
{
	/* The cap is checked on the length alone, before reading or allocating. */
	struct diff_added *a = NULL;
	static const char one[] = "x";
	CHECK_INT(diff_added_parse(one, (size_t)DIFF_MAX_BYTES + 1, &a), CORE_ETOOLARGE);
	CHECK(a == NULL);
	struct diff_added_set *s = diff_added_set_new();
	REQUIRE(s);
	CHECK_INT(diff_added_set_add(s, "a", one, (size_t)DIFF_MAX_BYTES + 1, false), CORE_ETOOLARGE);
	CHECK_INT(diff_added_set_count(s), 0);
	diff_added_set_free(s);
}

static void test_set(void)
{
	struct diff_added_set *s = diff_added_set_new();
	REQUIRE(s);
	const char *d1 = "@@ -1,2 +1,3 @@\n a\n+b\n+c\n-d\n";
	CHECK_INT(diff_added_set_add(s, "src/new_name.c", d1, strlen(d1), false), CORE_OK);
	CHECK_INT(diff_added_set_add(s, "gone.c", "@@ -1 +0,0 @@\n-x\n", 15, true), CORE_OK);
	const char *d2 = "@@ -0,0 +1 @@\n+z\n";
	CHECK_INT(diff_added_set_add(s, "a.txt", d2, strlen(d2), false), CORE_OK);
	CHECK_INT(diff_added_set_add(s, "bad.c", "@@ -1 +1 @@\n?\n", 14, false), CORE_EINVAL);
	CHECK_INT(diff_added_set_add(s, "", d2, strlen(d2), false), CORE_EINVAL);
	CHECK_INT(diff_added_set_count(s), 3);
	CHECK_STR(diff_added_set_path_at(s, 0), "a.txt");
	CHECK_STR(diff_added_set_path_at(s, 1), "gone.c");
	CHECK_STR(diff_added_set_path_at(s, 2), "src/new_name.c");
	CHECK(diff_added_set_path_at(s, 3) == NULL);
	CHECK(diff_added_has(s, "src/new_name.c", 2));
	CHECK(diff_added_has(s, "src/new_name.c", 3));
	CHECK(!diff_added_has(s, "src/new_name.c", 1));
	CHECK(!diff_added_has(s, "src/new_name.c", 4));
	CHECK(!diff_added_has(s, "src/new_name", 2));
	CHECK(!diff_added_has(s, "gone.c", 1));
	CHECK(diff_added_has(s, "a.txt", 1));
	CHECK(!diff_added_has(s, "b.txt", 1));
	CHECK(!diff_added_has(NULL, "a.txt", 1));
	CHECK(!diff_added_has(s, NULL, 1));
	/* The same path again (a diff split over pages): merged. */
	const char *d3 = "@@ -10 +10,2 @@\n x\n+y\n";
	CHECK_INT(diff_added_set_add(s, "a.txt", d3, strlen(d3), false), CORE_OK);
	CHECK_INT(diff_added_set_count(s), 3);
	CHECK(diff_added_has(s, "a.txt", 1));
	CHECK(diff_added_has(s, "a.txt", 11));
	const struct diff_added *a = diff_added_set_get(s, "a.txt");
	REQUIRE(a && a->count == 2);
	CHECK_STR(a->lines[1].text, "y");
	diff_added_set_free(s);
	diff_added_set_free(NULL);
}

static void test_many_paths(void)
{
	struct diff_added_set *s = diff_added_set_new();
	REQUIRE(s);
	const char *d = "@@ -0,0 +1 @@\n+v\n";
	char p[32];
	for (int i = 999; i >= 0; i--) {
		snprintf(p, sizeof(p), "dir/f%d.c", i);
		CHECK_INT(diff_added_set_add(s, p, d, strlen(d), false), CORE_OK);
	}
	CHECK_INT(diff_added_set_count(s), 1000);
	for (int i = 0; i < 1000; i += 37) {
		snprintf(p, sizeof(p), "dir/f%d.c", i);
		CHECK(diff_added_has(s, p, 1));
	}
	for (size_t i = 1; i < diff_added_set_count(s); i++)
		CHECK(strcmp(diff_added_set_path_at(s, i - 1), diff_added_set_path_at(s, i)) < 0);
	diff_added_set_free(s);
}

static void test_gitlab_json(void)
{
	/* mr-diffs.jsonc with its invalid "\ " escapes fixed, plus a rename, a new file, a deleted file. */
	const char *j =
	    "["
	    "{\"old_path\":\"README\",\"new_path\":\"README\",\"a_mode\":\"100644\",\"b_mode\":\"100644\","
	    "\"diff\":\"@@ -1 +1 @@\\n-Title\\n+README\\n\",\"new_file\":false,\"renamed_file\":false,"
	    "\"deleted_file\":false,\"generated_file\":false},"
	    "{\"old_path\":\"old/name.py\",\"new_path\":\"new/name.py\",\"renamed_file\":true,"
	    "\"diff\":\"@@ -3,1 +3,2 @@\\n x\\n+y\\n\",\"deleted_file\":false},"
	    "{\"old_path\":\"n.txt\",\"new_path\":\"n.txt\",\"new_file\":true,\"diff\":\"@@ -0,0 +1 @@\\n+n\\n\"},"
	    "{\"old_path\":\"d.txt\",\"new_path\":\"d.txt\",\"deleted_file\":true,\"diff\":\"@@ -1 +0,0 @@\\n-d\\n\"}"
	    "]";
	struct json_object *arr = json_tokener_parse(j);
	REQUIRE(arr);
	struct diff_added_set *s = diff_added_set_new();
	REQUIRE(s);
	CHECK_INT(diff_added_set_add_gitlab(s, arr), CORE_OK);
	CHECK(diff_added_has(s, "README", 1));
	CHECK(diff_added_has(s, "new/name.py", 4));
	CHECK(!diff_added_has(s, "old/name.py", 4));
	CHECK(diff_added_has(s, "n.txt", 1));
	CHECK(!diff_added_has(s, "d.txt", 1));
	CHECK_INT(diff_added_set_count(s), 4);
	diff_added_set_free(s);
	json_object_put(arr);

	/* Wrong types are refused, never guessed. */
	const char *bad[] = {"{}",
	                     "[1]",
	                     "[{\"diff\":\"\"}]",
	                     "[{\"new_path\":5,\"diff\":\"\"}]",
	                     "[{\"new_path\":\"a\",\"diff\":7}]",
	                     "[{\"new_path\":\"a\",\"diff\":\"\",\"deleted_file\":\"yes\"}]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		arr = json_tokener_parse(bad[i]);
		REQUIRE(arr);
		s = diff_added_set_new();
		REQUIRE(s);
		CHECK_INT(diff_added_set_add_gitlab(s, arr), CORE_EINVAL);
		diff_added_set_free(s);
		json_object_put(arr);
	}
}

int main(void)
{
	RUN(test_modified_file);
	RUN(test_new_deleted_binary_empty);
	RUN(test_crlf_and_no_newline);
	RUN(test_git_headers);
	RUN(test_malformed);
	RUN(test_size_cap);
	RUN(test_set);
	RUN(test_many_paths);
	RUN(test_gitlab_json);
	return testlib_done();
}
