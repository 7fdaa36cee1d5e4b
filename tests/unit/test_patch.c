/*
 * tests/unit/test_patch.c
 *    Multi-file unified diffs split into per-file added lines (core/patch.h), as `mrgate scan --diff` reads them.
 */
#include "patch.h"
#include "testlib.h"

#include <string.h>

/* Parse p into a new set (NULL when it fails with want != CORE_OK); *bad_line_out gets the reported line. */
static struct diff_added_set *split(const char *p, enum core_status want, size_t *bad_line_out)
{
	struct diff_added_set *s = diff_added_set_new();
	size_t bad = 0;
	CHECK_INT(patch_add_to_set(p, strlen(p), s, &bad), want);
	if (bad_line_out)
		*bad_line_out = bad;
	if (want != CORE_OK) {
		diff_added_set_free(s);
		return NULL;
	}
	return s;
}

/* The text of path's added line number line, or NULL. */
static const char *line_text(const struct diff_added_set *s, const char *path, long line)
{
	const struct diff_added *a = diff_added_set_get(s, path);
	const struct diff_line *l = a ? diff_added_find(a, line) : NULL;
	return l ? l->text : NULL;
}

static void test_git_diff_many_files(void)
{
	/* A removed line that reads "--- x" and "+++ y" (SQL comments) inside a hunk is no file header. */
	const char *p = "diff --git a/app/db.sql b/app/db.sql\n"
	                "index 1111111..2222222 100644\n"
	                "--- a/app/db.sql\n"
	                "+++ b/app/db.sql\n"
	                "@@ -1,3 +1,3 @@\n"
	                " select 1;\n"
	                "--- x\n"
	                "++++ y\n"
	                " select 2;\n"
	                "diff --git a/new.txt b/new.txt\n"
	                "new file mode 100644\n"
	                "--- /dev/null\n"
	                "+++ b/new.txt\n"
	                "@@ -0,0 +1,2 @@\n"
	                "+first\n"
	                "+second\n"
	                "\\ No newline at end of file\n"
	                "diff --git a/gone.txt b/gone.txt\n"
	                "deleted file mode 100644\n"
	                "--- a/gone.txt\n"
	                "+++ /dev/null\n"
	                "@@ -1 +0,0 @@\n"
	                "-bye\n"
	                "diff --git a/logo.png b/logo.png\n"
	                "Binary files a/logo.png and b/logo.png differ\n";
	struct diff_added_set *s = split(p, CORE_OK, NULL);
	REQUIRE(s);
	CHECK_INT((long)diff_added_set_count(s), 4);
	CHECK_STR(line_text(s, "app/db.sql", 2), "+++ y");
	CHECK_INT((long)diff_added_set_get(s, "app/db.sql")->count, 1);
	CHECK_STR(line_text(s, "new.txt", 1), "first");
	CHECK_STR(line_text(s, "new.txt", 2), "second");
	CHECK(diff_added_set_get(s, "gone.txt") && diff_added_set_get(s, "gone.txt")->count == 0);
	CHECK(diff_added_set_get(s, "logo.png") && diff_added_set_get(s, "logo.png")->count == 0);
	diff_added_set_free(s);
}

static void test_plain_diff_and_quoted_paths(void)
{
	/* diff -ru: no "diff --git", timestamps after a tab, no a/ b/ prefixes to strip. */
	const char *p = "diff -ru old/x.conf new/x.conf\n"
	                "--- old/x.conf\t2026-12-01 02:00:00.000000000 +0000\n"
	                "+++ new/x.conf\t2026-12-01 02:01:00.000000000 +0000\n"
	                "@@ -1 +1,2 @@\n"
	                " a=1\n"
	                "+b=2\n"
	                "diff --git \"a/sp ace\\303\\251.txt\" \"b/sp ace\\303\\251.txt\"\n"
	                "--- \"a/sp ace\\303\\251.txt\"\n"
	                "+++ \"b/sp ace\\303\\251.txt\"\n"
	                "@@ -0,0 +1 @@\n"
	                "+tab\\there\n"
	                /* git ends a header path that has a space with a tab, after the quotes too (a walk's
	                 * `git diff` of "\xc3\xa9 sp.py" was refused as "not a unified diff hunk") */
	                "diff --git \"a/\\303\\251 sp.py\" \"b/\\303\\251 sp.py\"\n"
	                "new file mode 100644\n"
	                "--- /dev/null\n"
	                "+++ \"b/\\303\\251 sp.py\"\t\n"
	                "@@ -0,0 +1 @@\n"
	                "+K = 1\n";
	struct diff_added_set *s = split(p, CORE_OK, NULL);
	REQUIRE(s);
	CHECK_STR(line_text(s, "new/x.conf", 2), "b=2");
	CHECK_STR(line_text(s, "sp ace\xc3\xa9.txt", 1), "tab\\there");
	CHECK_STR(line_text(s, "\xc3\xa9 sp.py", 1), "K = 1");
	diff_added_set_free(s);
}

static void test_malformed(void)
{
	size_t bad = 0;
	/* A hunk before any file header: which file would its lines be in? */
	split("@@ -1 +1 @@\n+x\n", CORE_EINVAL, &bad);
	CHECK_INT((long)bad, 1);
	/* A hunk whose lines do not match its counts: the whole patch is refused, naming the hunk. */
	split("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n+x\nzzz\n", CORE_EINVAL, &bad);
	CHECK_INT((long)bad, 3);
	split("--- a/x\n+++ b/x\n@@ -a +1 @@\n", CORE_EINVAL, &bad);
	CHECK_INT((long)bad, 3);
	/* Nothing but text: no file, no line, no error. */
	struct diff_added_set *s = split("just a commit message\n", CORE_OK, NULL);
	CHECK_INT((long)diff_added_set_count(s), 0);
	diff_added_set_free(s);
}

int main(void)
{
	RUN(test_git_diff_many_files);
	RUN(test_plain_diff_and_quoted_paths);
	RUN(test_malformed);
	return testlib_done();
}
