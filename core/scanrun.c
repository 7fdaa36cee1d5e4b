/*
 * core/scanrun.c
 *    Scanner commands and archive trees for the gate (see scanrun.h).
 */
#include "scanrun.h"

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

int64_t scanrun_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void scanrun_result_clear(struct scanrun_result *r)
{
	if (!r)
		return;
	free(r->out);
	memset(r, 0, sizeof(*r));
}

/* Close every descriptor from 3 up in a freshly forked child (async-signal-safe). */
static void close_from_3(void)
{
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = 3; fd < max; fd++)
		close(fd);
}

/*
 * fork + execve with the child in its own process group; fd_in/out/err become 0/1/2 (-1: /dev/null).
 * Everything the child needs is prepared before the fork. Returns the pid or -1.
 */
static pid_t spawn(char *const argv[], char *const envp[], const char *cwd, int fd_in, int fd_out, int fd_err)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		if (dup2(fd_in >= 0 ? fd_in : devnull, 0) < 0 || dup2(fd_out >= 0 ? fd_out : devnull, 1) < 0 ||
		    dup2(fd_err >= 0 ? fd_err : devnull, 2) < 0)
			_exit(126);
		close_from_3();
		if (cwd && chdir(cwd) != 0)
			_exit(126);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(devnull);
	if (pid > 0)
		setpgid(pid, pid); /* also from here: no window in which a kill of the group misses the child */
	return pid;
}

/* Wait for pid until deadline_ms; at the deadline kill its group and reap it. Returns the wait status. */
static int reap(pid_t pid, int64_t deadline_ms, bool *timed_out)
{
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = 0;
			break;
		}
		if (scanrun_now_ms() >= deadline_ms) {
			if (timed_out)
				*timed_out = true;
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(5000);
	}
	kill(-pid, SIGKILL); /* stragglers the command left running in its group */
	return status;
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

static void keep_tail(char *tail, size_t cap, const char *data, size_t n)
{
	size_t have = strlen(tail);
	if (n >= cap - 1) {
		data += n - (cap - 1);
		n = cap - 1;
		have = 0;
	} else if (have + n > cap - 1) {
		size_t drop = have + n - (cap - 1);
		memmove(tail, tail + drop, have - drop);
		have -= drop;
	}
	memcpy(tail + have, data, n);
	tail[have + n] = '\0';
	for (size_t i = 0; i < have + n; i++)
		if ((unsigned char)tail[i] < 0x20)
			tail[i] = ' ';
}

/* The clean environment of a scanner (scanrun.h): PATH, HOME, TMPDIR, LANG and the caller's MRGATE_SCAN_*. */
struct scan_env {
	char path[4200], home[SCANRUN_PATH_MAX + 8], tmp[SCANRUN_PATH_MAX + 8];
	char **envp; /* malloc'd; points into this struct and extra_env */
};

static void scan_env_build(struct scan_env *e, const char *home, const char *const *extra_env)
{
	size_t n_extra = 0, k = 0;
	while (extra_env && extra_env[n_extra])
		n_extra++;
	e->envp = xcalloc(n_extra + 5, sizeof(*e->envp));
	const char *path = getenv("PATH");
	snprintf(e->path, sizeof(e->path), "PATH=%s", path && *path ? path : DEFAULT_PATH);
	snprintf(e->home, sizeof(e->home), "HOME=%s", home);
	snprintf(e->tmp, sizeof(e->tmp), "TMPDIR=%s", home);
	e->envp[k++] = e->path;
	e->envp[k++] = e->home;
	e->envp[k++] = e->tmp;
	e->envp[k++] = "LANG=C.UTF-8";
	for (size_t i = 0; i < n_extra; i++)
		e->envp[k++] = (char *)extra_env[i];
	e->envp[k] = NULL;
}

/* One read from a scanner's pipe; false when the pipe is done (end of file or an error). */
static bool pipe_read(int fd, char *chunk, size_t cap, ssize_t *n_out)
{
	*n_out = read(fd, chunk, cap);
	return *n_out > 0 || (*n_out < 0 && errno == EINTR);
}

/*
 * Read the child's stdout (into out, capped by out->max) and stderr (its tail into res) until both pipes close or
 * the deadline passes (then the child's group is killed and res->timed_out set). Output over the cap kills the
 * scanner (its document is unusable anyway) and sets res->out_truncated.
 */
static void pump(pid_t pid, int out_fd, int err_fd, int64_t deadline_ms, struct buf *out, struct scanrun_result *res)
{
	bool out_open = true, err_open = true;
	char chunk[16384];
	ssize_t n;
	while (out_open || err_open) {
		int64_t left = deadline_ms - scanrun_now_ms();
		if (left <= 0) {
			res->timed_out = true;
			kill(-pid, SIGKILL);
			return;
		}
		struct pollfd pf[2] = {{.fd = out_open ? out_fd : -1, .events = POLLIN},
		                       {.fd = err_open ? err_fd : -1, .events = POLLIN}};
		int pr = poll(pf, 2, left > 1000 ? 1000 : (int)left);
		if (pr < 0 && errno != EINTR)
			return;
		if (pr <= 0)
			continue;
		if (out_open && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			out_open = pipe_read(out_fd, chunk, sizeof(chunk), &n);
			if (n > 0)
				buf_append(out, chunk, (size_t)n);
			if (out->truncated) {
				res->out_truncated = true;
				out_open = false;
				kill(-pid, SIGKILL);
			}
		}
		if (err_open && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			err_open = pipe_read(err_fd, chunk, sizeof(chunk), &n);
			if (n > 0)
				keep_tail(res->err_tail, sizeof(res->err_tail), chunk, (size_t)n);
		}
	}
}

enum core_status scanrun_command(const char *command, const char *tree, const char *home, const char *const *extra_env,
                                 int64_t deadline_ms, size_t max_out, struct scanrun_result *res)
{
	enum core_status st = CORE_EINTERNAL;
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
	struct buf script = {0}, out = {.max = max_out};
	struct scan_env env;
	pid_t pid = -1;
	memset(res, 0, sizeof(*res));
	buf_printf(&script, "%s \"$@\"", command);
	char *argv[] = {"/bin/sh", "-c", script.p, "mrgate-scan", (char *)tree, NULL};
	scan_env_build(&env, home, extra_env);
	if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)
		goto out;
	pid = spawn(argv, env.envp, tree, -1, out_p[1], err_p[1]);
	if (pid < 0)
		goto out;
	close(out_p[1]);
	close(err_p[1]);
	out_p[1] = err_p[1] = -1;
	pump(pid, out_p[0], err_p[0], deadline_ms, &out, res);
	bool late = false;
	int status = reap(pid, res->timed_out ? scanrun_now_ms() : deadline_ms, &late);
	pid = -1;
	if (late)
		res->timed_out = true;
	res->exit_code = exit_code_of(status);
	res->out_len = out.len;
	res->out = buf_steal(&out);
	st = CORE_OK;
out:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		reap(pid, scanrun_now_ms(), NULL);
	}
	for (int i = 0; i < 2; i++) {
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
	}
	buf_free(&script);
	buf_free(&out);
	free(env.envp);
	return st;
}

enum core_status scanrun_workdir(char *buf, size_t cap)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	int n = snprintf(buf, cap, "%s/mrgate-gate-XXXXXX", base);
	if (n < 0 || (size_t)n >= cap)
		return CORE_EINVAL;
	if (!mkdtemp(buf)) {
		log_error("could not create a temporary directory under %s: %s", base, strerror(errno));
		buf[0] = '\0';
		return CORE_EINTERNAL;
	}
	return CORE_OK;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void scanrun_rmtree(const char *path)
{
	if (!path || !*path)
		return;
	/* extracted trees may hold read-only directories: make them writable first */
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return;
	char *argv[] = {"/bin/chmod", "-R", "u+rwx", (char *)path, NULL};
	char *envp[] = {"PATH=" DEFAULT_PATH, NULL};
	pid_t pid = spawn(argv, envp, NULL, -1, -1, -1);
	if (pid > 0)
		reap(pid, scanrun_now_ms() + 30000, NULL);
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/*
 * One archive member's name, made safe: NULL for a name that would leave the tree (absolute, "..", empty after
 * "./" prefixes) or is too long; otherwise dir + "/" + name in buf.
 */
static const char *member_path(const char *dir, const char *name, char *buf, size_t cap)
{
	if (!name || name[0] == '/' || name[0] == '\0')
		return NULL;
	/* every component: no "..", no empty name that is the whole member */
	for (const char *c = name; *c;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return NULL;
		c += n;
		while (*c == '/')
			c++;
	}
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	if (name[0] == '\0' || strcmp(name, ".") == 0)
		return NULL;
	int n = snprintf(buf, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return NULL;
	return buf;
}

/* One extraction: the archive read, the tree written, the caps and what was counted against them. */
struct unpack {
	struct archive *in, *out;
	const char *real; /* the tree directory, resolved */
	char *path;       /* PATH_MAX bytes: a member's path under real */
	size_t max_bytes, max_entries, total, entries, skipped;
	int64_t deadline_ms;
	char *err;
	size_t errlen;
};

static enum core_status unpack_fail(struct unpack *u, enum core_status st, struct archive *a, const char *what)
{
	if (st == CORE_ETOOLARGE)
		snprintf(u->err, u->errlen, "the repository archive unpacks to more than %zu bytes", u->max_bytes);
	else if (st == CORE_ETIMEOUT)
		snprintf(u->err, u->errlen, "the archive was not extracted in time");
	else
		snprintf(u->err, u->errlen, "%s: %s", what, archive_error_string(a));
	return st;
}

/* The data of one regular member (size as its header declares); written bytes are capped by max_bytes. */
static enum core_status unpack_data(struct unpack *u, la_int64_t size)
{
	const void *buf;
	size_t n;
	la_int64_t off;
	int r;
	/* Count what is written (a sparse member's holes count too): the cap holds whatever the headers say. */
	while ((r = archive_read_data_block(u->in, &buf, &n, &off)) == ARCHIVE_OK) {
		if (off < 0 || (uint64_t)off + n > (uint64_t)size || u->total + (uint64_t)off + n > u->max_bytes)
			return unpack_fail(u, CORE_ETOOLARGE, NULL, NULL);
		if (archive_write_data_block(u->out, buf, n, off) < ARCHIVE_WARN)
			return unpack_fail(u, CORE_EINTERNAL, u->out, "could not write the tree");
		if (scanrun_now_ms() >= u->deadline_ms)
			return unpack_fail(u, CORE_ETIMEOUT, NULL, NULL);
	}
	if (r != ARCHIVE_EOF)
		return unpack_fail(u, CORE_EINVAL, u->in, "the repository archive could not be unpacked");
	return CORE_OK;
}

/* One archive member (rules in scanrun.h): written, or skipped and counted. */
static enum core_status unpack_member(struct unpack *u, struct archive_entry *e)
{
	if (scanrun_now_ms() >= u->deadline_ms)
		return unpack_fail(u, CORE_ETIMEOUT, NULL, NULL);
	if (++u->entries > u->max_entries) {
		snprintf(u->err, u->errlen, "the repository archive holds more than %zu files", u->max_entries);
		return CORE_ETOOLARGE;
	}
	/* Only regular files and directories: links, devices, FIFOs and sockets are left out, so the tree
	 * handed to scanners points nowhere else. */
	mode_t type = archive_entry_filetype(e);
	const char *p = member_path(u->real, archive_entry_pathname(e), u->path, PATH_MAX);
	/* Every member's declared size counts, written or not: skipping data still inflates it. */
	la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0 || (uint64_t)size > u->max_bytes - u->total)
		return unpack_fail(u, CORE_ETOOLARGE, NULL, NULL);
	if (!p || archive_entry_hardlink(e) || archive_entry_symlink(e) || (type != AE_IFREG && type != AE_IFDIR)) {
		u->skipped++;
		u->total += (size_t)size;
		archive_read_data_skip(u->in);
		return CORE_OK;
	}
	archive_entry_set_pathname(e, p);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : (archive_entry_perm(e) & 0111) ? 0755 : 0644);
	archive_entry_set_uid(e, getuid());
	archive_entry_set_gid(e, getgid());
	if (archive_write_header(u->out, e) < ARCHIVE_WARN)
		return unpack_fail(u, CORE_EINVAL, u->out, "the repository archive could not be unpacked");
	if (type != AE_IFREG)
		return CORE_OK;
	enum core_status st = unpack_data(u, size);
	if (st != CORE_OK)
		return st;
	u->total += (size_t)size;
	if (archive_write_finish_entry(u->out) < ARCHIVE_WARN)
		return unpack_fail(u, CORE_EINTERNAL, u->out, "could not write the tree");
	return CORE_OK;
}

/* GitLab's archives hold one top-level directory: when dir holds exactly one directory, the scan root is it. */
static void single_root(const char *dir, char *root_out, size_t root_cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	int count = 0;
	char only[256] = "";
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		count++;
		snprintf(only, sizeof(only), "%s", e->d_name);
	}
	closedir(d);
	if (count == 1) {
		char cand[SCANRUN_PATH_MAX + 260];
		struct stat sb;
		snprintf(cand, sizeof(cand), "%s/%s", dir, only);
		if (lstat(cand, &sb) == 0 && S_ISDIR(sb.st_mode) && strlen(cand) < root_cap)
			snprintf(root_out, root_cap, "%s", cand);
	}
}

enum core_status scanrun_extract_targz(const char *data, size_t len, const char *dir, size_t max_bytes,
                                       size_t max_entries, int64_t deadline_ms, char *root_out, size_t root_cap,
                                       char *err, size_t errlen)
{
	enum core_status st = CORE_EINTERNAL;
	char real[PATH_MAX];
	struct unpack u = {.max_bytes = max_bytes,
	                   .max_entries = max_entries,
	                   .deadline_ms = deadline_ms,
	                   .real = real,
	                   .err = err,
	                   .errlen = errlen};
	err[0] = '\0';
	snprintf(root_out, root_cap, "%s", dir);
	/* The prefix is resolved once, so the checks below only ever see the archive's own names. */
	if (!realpath(dir, real)) {
		snprintf(err, errlen, "could not resolve the tree directory: %s", strerror(errno));
		return CORE_EINTERNAL;
	}
	u.path = xmalloc(PATH_MAX);
	u.in = archive_read_new();
	u.out = archive_write_disk_new();
	if (!u.in || !u.out) {
		st = CORE_ENOMEM;
		goto out;
	}
	/* GitLab's archive.tar.gz: gzip around a pax/ustar tar (git archive). Nothing else is accepted. */
	archive_read_support_filter_gzip(u.in);
	archive_read_support_format_tar(u.in);
	/* libarchive's secure extraction: never through a symlink, never "..". Owners, stored permissions and times
	 * are not restored. The names are checked here too, before they are made absolute (member_path: which is why
	 * ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS cannot be used: chdir would be process-wide). */
	archive_write_disk_set_options(u.out, ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
	if (archive_read_open_memory(u.in, data, len) != ARCHIVE_OK) {
		st = unpack_fail(&u, CORE_EINVAL, u.in, "the repository archive is not a tar.gz");
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(u.in, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			st = unpack_fail(&u, CORE_EINVAL, u.in, "the repository archive could not be unpacked");
			goto out;
		}
		if ((st = unpack_member(&u, e)) != CORE_OK)
			goto out;
	}
	if (archive_write_close(u.out) < ARCHIVE_WARN) {
		st = unpack_fail(&u, CORE_EINTERNAL, u.out, "could not write the tree");
		goto out;
	}
	if (u.skipped)
		log_debug("gate: %zu archive members left out of the tree (links, devices, FIFOs or unsafe names)",
		          u.skipped);
	single_root(dir, root_out, root_cap);
	st = CORE_OK;
out:
	archive_read_free(u.in);
	archive_write_free(u.out);
	free(u.path);
	return st;
}
