/*
 * tests/unit/test_gate_scanrun.c
 *    Scanner commands (clean environment, tree argument and cwd, stdout cap, deadline) and archive trees (size cap,
 *    top-level directory, removal), and hostile archives: escapes, links, devices, FIFOs, bombs.
 */
#include "scanrun.h"
#include "testlib.h"
#include "xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char work[SCANRUN_PATH_MAX];

static bool exists(const char *p)
{
	struct stat sb;
	return lstat(p, &sb) == 0;
}

/* Is there anything (even a dangling link) at dir/name? */
static bool exists_in(const char *dir, const char *name)
{
	char p[SCANRUN_PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return exists(p);
}

/* Running (not gone, not a zombie waiting for whoever adopted it). */
static bool alive(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *close = strrchr(buf, ')');
	return close && close[1] == ' ' && close[2] != 'Z' && close[2] != 'X';
}

static void test_command_env_and_args(void)
{
	char tree[SCANRUN_PATH_MAX + 16], home[SCANRUN_PATH_MAX + 16];
	snprintf(tree, sizeof(tree), "%s/t", work);
	snprintf(home, sizeof(home), "%s/h", work);
	mkdir(tree, 0700);
	mkdir(home, 0700);
	setenv("MRGATE_SECRET_SETTING", "do-not-leak", 1);
	setenv("GITLAB_TOKEN", "glpat-do-not-leak", 1);
	const char *extra[] = {"MRGATE_SCAN_TYPE=sast", NULL};
	struct scanrun_result r;
	CHECK_INT(scanrun_command("printf '%s|%s|' \"$(pwd)\"; env | sort | tr '\\n' ' '; echo; printf 'arg=%s'", tree,
	                          home, extra, scanrun_now_ms() + 10000, 1 << 20, &r),
	          CORE_OK);
	REQUIRE(r.out);
	CHECK_INT(r.exit_code, 0);
	CHECK(!r.timed_out && !r.out_truncated);
	CHECK(strncmp(r.out, tree, strlen(tree)) == 0); /* cwd is the tree */
	CHECK(strstr(r.out, "MRGATE_SCAN_TYPE=sast") != NULL);
	CHECK(strstr(r.out, "do-not-leak") == NULL); /* nothing of the server's environment */
	CHECK(strstr(r.out, "MRGATE_SECRET_SETTING") == NULL);
	char want[SCANRUN_PATH_MAX + 40];
	snprintf(want, sizeof(want), "arg=%s", tree); /* the tree is the last argument */
	CHECK(strstr(r.out, want) != NULL);
	snprintf(want, sizeof(want), "HOME=%s", home);
	CHECK(strstr(r.out, want) != NULL);
	scanrun_result_clear(&r);
	/* exit status and stderr tail */
	CHECK_INT(scanrun_command("echo oops >&2; exit 7 #", tree, home, NULL, scanrun_now_ms() + 10000, 1024, &r),
	          CORE_OK);
	CHECK_INT(r.exit_code, 7);
	CHECK_INT(r.out_len, 0);
	CHECK(strstr(r.err_tail, "oops") != NULL);
	scanrun_result_clear(&r);
	unsetenv("MRGATE_SECRET_SETTING");
	unsetenv("GITLAB_TOKEN");
}

static void test_command_cap_and_deadline(void)
{
	struct scanrun_result r;
	/* stdout over the cap: cut and the command stopped */
	int64_t t0 = scanrun_now_ms();
	CHECK_INT(scanrun_command("yes abcdefgh #", work, work, NULL, scanrun_now_ms() + 10000, 4096, &r), CORE_OK);
	CHECK(r.out_truncated);
	CHECK(r.out_len <= 4096);
	CHECK(scanrun_now_ms() - t0 < 5000);
	scanrun_result_clear(&r);
	/* the deadline kills the whole process group, children included */
	char pidfile[SCANRUN_PATH_MAX + 16];
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", work);
	char cmd[SCANRUN_PATH_MAX + 100];
	snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > %s; wait #", pidfile);
	t0 = scanrun_now_ms();
	/* 2 s: the shell must have written the pid file before the deadline; with 700 ms a loaded machine (test-asan
	 * beside other tests) killed it first now and then */
	CHECK_INT(scanrun_command(cmd, work, work, NULL, scanrun_now_ms() + 2000, 1024, &r), CORE_OK);
	CHECK(r.timed_out);
	CHECK(scanrun_now_ms() - t0 < 6000);
	scanrun_result_clear(&r);
	FILE *f = fopen(pidfile, "r");
	REQUIRE(f);
	int child = 0;
	CHECK(fscanf(f, "%d", &child) == 1);
	fclose(f);
	usleep(100000);
	CHECK(child > 0 && !alive(child)); /* the background sleep is gone too */
}

/* Build a tar.gz with the system tar: dir holds the files. Returns malloc'd bytes. */
static char *make_targz(const char *dir, const char *top, size_t *len)
{
	char cmd[3 * SCANRUN_PATH_MAX], out[SCANRUN_PATH_MAX + 16];
	snprintf(out, sizeof(out), "%s/a.tgz", work);
	snprintf(cmd, sizeof(cmd), "tar -czf %s -C %s %s", out, dir, top);
	if (system(cmd) != 0)
		return NULL;
	FILE *f = fopen(out, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = xmalloc(n > 0 ? (size_t)n : 1);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	unlink(out);
	return buf;
}

static void test_extract(void)
{
	char src[SCANRUN_PATH_MAX + 16], cmd[8 * SCANRUN_PATH_MAX], dest[SCANRUN_PATH_MAX + 16],
	    root[SCANRUN_PATH_MAX + 300], err[300];
	snprintf(src, sizeof(src), "%s/src", work);
	snprintf(cmd, sizeof(cmd),
	         "mkdir -p %s/proj-abc/src && printf 'x = 1\\n' > %s/proj-abc/src/a.py && "
	         "head -c 300000 /dev/zero > %s/proj-abc/big.bin",
	         src, src, src);
	REQUIRE(system(cmd) == 0);
	size_t len = 0;
	char *tgz = make_targz(src, "proj-abc", &len);
	REQUIRE(tgz);
	/* fits: the root is the one top-level directory */
	snprintf(dest, sizeof(dest), "%s/tree1", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz(tgz, len, dest, 10 << 20, 1000, scanrun_now_ms() + 20000, root, sizeof(root),
	                                err, sizeof(err)),
	          CORE_OK);
	char want[SCANRUN_PATH_MAX + 300];
	snprintf(want, sizeof(want), "%s/proj-abc", dest);
	CHECK_STR(root, want);
	snprintf(want, sizeof(want), "%s/proj-abc/src/a.py", dest);
	CHECK(exists(want));
	/* over the cap: refused (the stream is counted while it unpacks) */
	snprintf(dest, sizeof(dest), "%s/tree2", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz(tgz, len, dest, 100000, 1000, scanrun_now_ms() + 20000, root, sizeof(root), err,
	                                sizeof(err)),
	          CORE_ETOOLARGE);
	CHECK(strstr(err, "more than 100000 bytes") != NULL);
	/* not an archive */
	snprintf(dest, sizeof(dest), "%s/tree3", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz("garbage", 7, dest, 1 << 20, 1000, scanrun_now_ms() + 20000, root, sizeof(root),
	                                err, sizeof(err)),
	          CORE_EINVAL);
	free(tgz);
	/* removal, read-only directories included */
	snprintf(cmd, sizeof(cmd), "chmod 500 %s/tree1/proj-abc/src", work);
	CHECK(system(cmd) == 0);
	snprintf(dest, sizeof(dest), "%s/tree1", work);
	scanrun_rmtree(dest);
	CHECK(!exists(dest));
}

/* --- hostile archives, written with libarchive as an attacker would ------------------------------------------ */

struct tgz {
	struct archive *a;
	char *buf;
	size_t cap, used;
};

static void tgz_open(struct tgz *t)
{
	t->cap = 8 << 20;
	t->buf = xmalloc(t->cap);
	t->used = 0;
	t->a = archive_write_new();
	archive_write_add_filter_gzip(t->a);
	archive_write_set_filter_option(t->a, "gzip", "compression-level", "1");
	archive_write_set_format_pax_restricted(t->a);
	REQUIRE(archive_write_open_memory(t->a, t->buf, t->cap, &t->used) == ARCHIVE_OK);
}

/* Add a member: type AE_IFREG with data (size may exceed len: the rest is zeros), or a link/device/FIFO. */
static void tgz_add(struct tgz *t, const char *name, mode_t type, int perm, const char *data, int64_t size,
                    const char *symlink, const char *hardlink)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	if (symlink)
		archive_entry_set_symlink(e, symlink);
	if (hardlink)
		archive_entry_set_hardlink(e, hardlink);
	if (type == AE_IFCHR)
		archive_entry_set_rdev(e, makedev(1, 3));
	archive_entry_set_size(e, type == AE_IFREG && !hardlink ? size : 0);
	REQUIRE(archive_write_header(t->a, e) == ARCHIVE_OK);
	if (type == AE_IFREG && !hardlink) {
		static char zeros[1 << 20];
		int64_t left = size;
		if (data) {
			archive_write_data(t->a, data, strlen(data));
			left -= (int64_t)strlen(data);
		}
		while (left > 0) {
			size_t n = left > (int64_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
			REQUIRE(archive_write_data(t->a, zeros, n) == (la_ssize_t)n);
			left -= (int64_t)n;
		}
	}
	archive_entry_free(e);
}

static void tgz_close(struct tgz *t)
{
	REQUIRE(archive_write_close(t->a) == ARCHIVE_OK);
	archive_write_free(t->a);
}

static int links_or_specials;
static int count_bad(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	if (!S_ISREG(sb->st_mode) && !S_ISDIR(sb->st_mode))
		links_or_specials++;
	else if (S_ISREG(sb->st_mode) && sb->st_nlink != 1)
		links_or_specials++; /* a hardlink inside the tree */
	return 0;
}

static void test_extract_hostile(void)
{
	char outside[SCANRUN_PATH_MAX + 64], abs_name[SCANRUN_PATH_MAX + 128], dest[SCANRUN_PATH_MAX + 128],
	    root[SCANRUN_PATH_MAX + 300], err[300], p[SCANRUN_PATH_MAX + 300];
	snprintf(outside, sizeof(outside), "%s/outside", work); /* the tree's sibling: nothing may land here */
	mkdir(outside, 0700);
	snprintf(dest, sizeof(dest), "%s/tree", outside);
	mkdir(dest, 0700);
	snprintf(abs_name, sizeof(abs_name), "%s/abs.txt", outside);

	struct tgz t;
	tgz_open(&t);
	tgz_add(&t, "proj/", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
	tgz_add(&t, "proj/run.sh", AE_IFREG, 04755, "#!/bin/sh\n", 10, NULL, NULL);
	tgz_add(&t, "proj/a.txt", AE_IFREG, 0644, "hello\n", 6, NULL, NULL);
	tgz_add(&t, "../escape.txt", AE_IFREG, 0644, "x", 1, NULL, NULL);
	tgz_add(&t, "proj/sub/../../../escape2.txt", AE_IFREG, 0644, "x", 1, NULL, NULL);
	tgz_add(&t, abs_name, AE_IFREG, 0644, "x", 1, NULL, NULL);
	tgz_add(&t, "proj/passwd", AE_IFLNK, 0777, NULL, 0, "/etc/passwd", NULL);
	tgz_add(&t, "proj/up", AE_IFLNK, 0777, NULL, 0, "..", NULL);
	tgz_add(&t, "proj/out", AE_IFLNK, 0777, NULL, 0, outside, NULL);
	tgz_add(&t, "proj/out/through.txt", AE_IFREG, 0644, "x", 1, NULL, NULL); /* through the link, were it made */
	tgz_add(&t, "proj/up/up.txt", AE_IFREG, 0644, "x", 1, NULL, NULL);
	tgz_add(&t, "proj/hard", AE_IFREG, 0644, NULL, 0, NULL, "proj/a.txt");
	tgz_add(&t, "proj/hard-passwd", AE_IFREG, 0644, NULL, 0, NULL, "/etc/passwd");
	tgz_add(&t, "proj/null", AE_IFCHR, 0666, NULL, 0, NULL, NULL);
	tgz_add(&t, "proj/fifo", AE_IFIFO, 0644, NULL, 0, NULL, NULL);
	tgz_close(&t);

	CHECK_INT(scanrun_extract_targz(t.buf, t.used, dest, 1 << 20, 1000, scanrun_now_ms() + 20000, root,
	                                sizeof(root), err, sizeof(err)),
	          CORE_OK);
	if (err[0])
		fprintf(stderr, "  err: %s\n", err);
	/* nothing outside the tree */
	CHECK(!exists_in(outside, "escape.txt"));
	CHECK(!exists_in(outside, "escape2.txt"));
	CHECK(!exists_in(work, "escape2.txt"));
	CHECK(!exists(abs_name));
	CHECK(!exists_in(outside, "through.txt"));
	CHECK(!exists_in(dest, "up.txt"));
	/* no link, device or FIFO inside it */
	links_or_specials = 0;
	CHECK(nftw(dest, count_bad, 16, FTW_PHYS) == 0);
	CHECK_INT(links_or_specials, 0);
	CHECK(!exists_in(dest, "proj/passwd"));
	CHECK(!exists_in(dest, "proj/null"));
	CHECK(!exists_in(dest, "proj/fifo"));
	/* the plain members are there; the executable bit is kept, setuid is not */
	struct stat sb;
	snprintf(p, sizeof(p), "%s/proj/run.sh", dest);
	CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0100) && !(sb.st_mode & 04000));
	snprintf(p, sizeof(p), "%s/proj/a.txt", dest);
	CHECK(stat(p, &sb) == 0 && sb.st_size == 6 && !(sb.st_mode & 0111));
	snprintf(p, sizeof(p), "%s/proj", dest);
	CHECK_STR(root, p);
	free(t.buf);
	scanrun_rmtree(outside);
}

static void test_extract_bombs(void)
{
	char dest[SCANRUN_PATH_MAX + 16], root[SCANRUN_PATH_MAX + 300], err[300];
	/* 300 MiB of zeros: a few hundred KiB of gzip */
	struct tgz t;
	tgz_open(&t);
	tgz_add(&t, "proj/small.txt", AE_IFREG, 0644, "x", 1, NULL, NULL);
	tgz_add(&t, "proj/zeros.bin", AE_IFREG, 0644, NULL, 300LL << 20, NULL, NULL);
	tgz_close(&t);
	CHECK(t.used < (2 << 20));
	snprintf(dest, sizeof(dest), "%s/bomb", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz(t.buf, t.used, dest, 16 << 20, 1000, scanrun_now_ms() + 60000, root,
	                                sizeof(root), err, sizeof(err)),
	          CORE_ETOOLARGE);
	CHECK(strstr(err, "more than 16777216 bytes") != NULL);
	struct stat sb;
	char p[SCANRUN_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/proj/zeros.bin", dest);
	CHECK(lstat(p, &sb) != 0 || sb.st_size <= (16 << 20)); /* nothing past the cap reached the disk */
	scanrun_rmtree(dest);
	free(t.buf);

	/* many empty members: the entry cap */
	tgz_open(&t);
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "proj/f%d", i);
		tgz_add(&t, name, AE_IFREG, 0644, NULL, 0, NULL, NULL);
	}
	tgz_close(&t);
	snprintf(dest, sizeof(dest), "%s/many", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz(t.buf, t.used, dest, 16 << 20, 20, scanrun_now_ms() + 60000, root, sizeof(root),
	                                err, sizeof(err)),
	          CORE_ETOOLARGE);
	CHECK(strstr(err, "more than 20 files") != NULL);
	scanrun_rmtree(dest);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz(t.buf, t.used, dest, 16 << 20, 100, scanrun_now_ms() + 60000, root,
	                                sizeof(root), err, sizeof(err)),
	          CORE_OK);
	scanrun_rmtree(dest);
	free(t.buf);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as in the server: a dead tar must not kill the test */
	if (scanrun_workdir(work, sizeof(work)) != CORE_OK) {
		fprintf(stderr, "no temporary directory\n");
		return 1;
	}
	RUN(test_command_env_and_args);
	RUN(test_command_cap_and_deadline);
	RUN(test_extract);
	RUN(test_extract_hostile);
	RUN(test_extract_bombs);
	scanrun_rmtree(work);
	int rc = testlib_done();
	if (exists(work)) {
		fprintf(stderr, "work directory %s was not removed\n", work);
		rc = 1;
	}
	return rc;
}
