/*
 * tests/unit/test_gate_scanrun.c
 *    Scanner commands (clean environment, tree argument and cwd, stdout cap, deadline) and archive trees (size cap,
 *    top-level directory, removal).
 */
#include "scanrun.h"
#include "testlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char work[SCANRUN_PATH_MAX];

static bool exists(const char *p)
{
	struct stat sb;
	return lstat(p, &sb) == 0;
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
	CHECK_INT(scanrun_command("printf '%s|%s|' \"$(pwd)\"; env | sort | tr '\\n' ' '; echo; printf 'arg=%s'",
				  tree, home, extra, scanrun_now_ms() + 10000, 1 << 20, &r),
		  CORE_OK);
	REQUIRE(r.out);
	CHECK_INT(r.exit_code, 0);
	CHECK(!r.timed_out && !r.out_truncated);
	CHECK(strncmp(r.out, tree, strlen(tree)) == 0);           /* cwd is the tree */
	CHECK(strstr(r.out, "MRGATE_SCAN_TYPE=sast") != NULL);
	CHECK(strstr(r.out, "do-not-leak") == NULL);             /* nothing of the server's environment */
	CHECK(strstr(r.out, "MRGATE_SECRET_SETTING") == NULL);
	char want[SCANRUN_PATH_MAX + 40];
	snprintf(want, sizeof(want), "arg=%s", tree);            /* the tree is the last argument */
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
	CHECK_INT(scanrun_command(cmd, work, work, NULL, scanrun_now_ms() + 700, 1024, &r), CORE_OK);
	CHECK(r.timed_out);
	CHECK(scanrun_now_ms() - t0 < 5000);
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
	char *buf = malloc((size_t)n);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	unlink(out);
	return buf;
}

static void test_extract(void)
{
	char src[SCANRUN_PATH_MAX + 16], cmd[8 * SCANRUN_PATH_MAX], dest[SCANRUN_PATH_MAX + 16], root[SCANRUN_PATH_MAX + 300],
		err[300];
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
	CHECK_INT(scanrun_extract_targz(tgz, len, dest, 10 << 20, scanrun_now_ms() + 20000, root, sizeof(root), err,
					sizeof(err)),
		  CORE_OK);
	char want[SCANRUN_PATH_MAX + 300];
	snprintf(want, sizeof(want), "%s/proj-abc", dest);
	CHECK_STR(root, want);
	snprintf(want, sizeof(want), "%s/proj-abc/src/a.py", dest);
	CHECK(exists(want));
	/* over the cap: refused (the stream is counted while it unpacks) */
	snprintf(dest, sizeof(dest), "%s/tree2", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz(tgz, len, dest, 100000, scanrun_now_ms() + 20000, root, sizeof(root), err,
					sizeof(err)),
		  CORE_ETOOLARGE);
	CHECK(strstr(err, "more than 100000 bytes") != NULL);
	/* not an archive */
	snprintf(dest, sizeof(dest), "%s/tree3", work);
	mkdir(dest, 0700);
	CHECK_INT(scanrun_extract_targz("garbage", 7, dest, 1 << 20, scanrun_now_ms() + 20000, root, sizeof(root), err,
					sizeof(err)),
		  CORE_EINVAL);
	free(tgz);
	/* removal, read-only directories included */
	snprintf(cmd, sizeof(cmd), "chmod 500 %s/tree1/proj-abc/src", work);
	CHECK(system(cmd) == 0);
	snprintf(dest, sizeof(dest), "%s/tree1", work);
	scanrun_rmtree(dest);
	CHECK(!exists(dest));
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
	scanrun_rmtree(work);
	int rc = testlib_done();
	if (exists(work)) {
		fprintf(stderr, "work directory %s was not removed\n", work);
		rc = 1;
	}
	return rc;
}
