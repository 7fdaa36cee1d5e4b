/*
 * tests/unit/test_treediff.c
 *    Added lines from a base and a head tree, for files GitLab's diff limits left out (core/treediff.h).
 */
#include "testlib.h"
#include "treediff.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void put(const char *rel, const char *content, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0700);
			*p = '/';
		}
	FILE *f = fopen(path, "wb");
	REQUIRE(f);
	fwrite(content, 1, len, f);
	fclose(f);
}

static void puts_(const char *rel, const char *content)
{
	put(rel, content, strlen(content));
}

static bool skip_vendor(const char *path, void *user)
{
	(void)user;
	return strncmp(path, "vendor/", 7) == 0;
}

static void test_changed_files_only(void)
{
	puts_("base/same.txt", "a\nb\n");
	puts_("base/changed.txt", "one\ntwo\nthree\n");
	puts_("base/gone.txt", "x\n");
	puts_("base/sub/moved.txt", "l1\nl2\nl3\n");
	puts_("head/same.txt", "a\nb\n");
	puts_("head/changed.txt", "one\nNEW\ntwo\nthree\nLAST");
	puts_("head/new/file.txt", "n1\r\nn2\r\n");
	puts_("head/sub/moved.txt", "l3\nl1\nl2\n");
	puts_("head/given.txt", "from the diffs api\n");
	puts_("head/vendor/lib.txt", "ignored\n");
	put("head/bin.dat", "ab\0cd\n", 6);
	char link[512];
	snprintf(link, sizeof(link), "%s/head/link.txt", root);
	CHECK(symlink("/etc/passwd", link) == 0);

	struct diff_added_set *set = diff_added_set_new();
	REQUIRE(set);
	CHECK_INT(diff_added_set_add(set, "given.txt", "@@ -0,0 +1,1 @@\n+from the diffs api\n", 35, false), CORE_OK);
	char base[300], head[300];
	snprintf(base, sizeof(base), "%s/base", root);
	snprintf(head, sizeof(head), "%s/head", root);
	struct treediff_stats st;
	CHECK_INT(treediff_add(base, head, set, skip_vendor, NULL, 0, &st), CORE_OK);
	CHECK_INT(st.unreadable, 0);
	/* changed.txt, new/file.txt, sub/moved.txt (bytes differ, no line is new), bin.dat */
	CHECK_INT(st.added_files, 4);
	CHECK_INT(st.added_lines, 4);
	const struct diff_added *a = diff_added_set_get(set, "changed.txt");
	REQUIRE(a);
	REQUIRE(a->count == 2);
	CHECK_INT(a->lines[0].line, 2);
	CHECK_STR(a->lines[0].text, "NEW");
	CHECK_INT(a->lines[1].line, 5);
	CHECK_STR(a->lines[1].text, "LAST");
	a = diff_added_set_get(set, "new/file.txt");
	REQUIRE(a);
	REQUIRE(a->count == 2);
	CHECK_STR(a->lines[1].text, "n2");
	a = diff_added_set_get(set, "sub/moved.txt");
	REQUIRE(a);
	CHECK_INT(a->count, 0);
	a = diff_added_set_get(set, "bin.dat");
	REQUIRE(a);
	CHECK_INT(a->count, 0);
	CHECK(diff_added_set_get(set, "same.txt") == NULL);
	CHECK(diff_added_set_get(set, "gone.txt") == NULL);
	CHECK(diff_added_set_get(set, "vendor/lib.txt") == NULL);
	CHECK(diff_added_set_get(set, "link.txt") == NULL);
	a = diff_added_set_get(set, "given.txt");
	REQUIRE(a);
	CHECK_INT(a->count, 1); /* what the diffs API gave is kept as is */
	diff_added_set_free(set);
}

static void test_no_base_and_missing_head(void)
{
	struct diff_added_set *set = diff_added_set_new();
	REQUIRE(set);
	char head[300];
	snprintf(head, sizeof(head), "%s/head", root);
	struct treediff_stats st;
	CHECK_INT(treediff_add(NULL, head, set, NULL, NULL, 0, &st), CORE_OK);
	CHECK(st.added_files >= 6); /* every regular file is new */
	snprintf(head, sizeof(head), "%s/nowhere", root);
	CHECK_INT(treediff_add(NULL, head, set, NULL, NULL, 0, &st), CORE_EINVAL);
	diff_added_set_free(set);
}

int main(void)
{
	snprintf(root, sizeof(root), "%s/mrgate-treediff-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root)) {
		fprintf(stderr, "mkdtemp failed\n");
		return 1;
	}
	RUN(test_changed_files_only);
	RUN(test_no_base_and_missing_head);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return testlib_done();
}
