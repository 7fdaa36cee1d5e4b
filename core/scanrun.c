/*
 * core/scanrun.c
 *    Scanner commands and archive trees for the gate (see scanrun.h).
 */
#include "scanrun.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

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

enum core_status scanrun_command(const char *command, const char *tree, const char *home,
				 const char *const *extra_env, int64_t deadline_ms, size_t max_out,
				 struct scanrun_result *res)
{
	enum core_status st = CORE_EINTERNAL;
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
	char *script = NULL, **envp = NULL;
	char path_env[4200], home_env[SCANRUN_PATH_MAX + 8], tmp_env[SCANRUN_PATH_MAX + 8];
	size_t cap = 0;
	pid_t pid = -1;
	memset(res, 0, sizeof(*res));

	size_t clen = strlen(command);
	script = malloc(clen + 8);
	if (!script) {
		st = CORE_ENOMEM;
		goto out;
	}
	memcpy(script, command, clen);
	memcpy(script + clen, " \"$@\"", 6);
	char *argv[] = {"/bin/sh", "-c", script, "mrgate-scan", (char *)tree, NULL};

	size_t n_extra = 0;
	while (extra_env && extra_env[n_extra])
		n_extra++;
	envp = calloc(n_extra + 5, sizeof(*envp));
	if (!envp) {
		st = CORE_ENOMEM;
		goto out;
	}
	const char *path = getenv("PATH");
	snprintf(path_env, sizeof(path_env), "PATH=%s", path && *path ? path : DEFAULT_PATH);
	snprintf(home_env, sizeof(home_env), "HOME=%s", home);
	snprintf(tmp_env, sizeof(tmp_env), "TMPDIR=%s", home);
	size_t k = 0;
	envp[k++] = path_env;
	envp[k++] = home_env;
	envp[k++] = tmp_env;
	envp[k++] = "LANG=C.UTF-8";
	for (size_t i = 0; i < n_extra; i++)
		envp[k++] = (char *)extra_env[i];
	envp[k] = NULL;

	if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)
		goto out;
	cap = 64 * 1024;
	res->out = malloc(cap + 1);
	if (!res->out) {
		st = CORE_ENOMEM;
		goto out;
	}
	res->out[0] = '\0';
	pid = spawn(argv, envp, tree, -1, out_p[1], err_p[1]);
	if (pid < 0)
		goto out;
	close(out_p[1]);
	close(err_p[1]);
	out_p[1] = err_p[1] = -1;

	bool out_open = true, err_open = true;
	char chunk[16384];
	while (out_open || err_open) {
		int64_t left = deadline_ms - scanrun_now_ms();
		if (left <= 0) {
			res->timed_out = true;
			kill(-pid, SIGKILL);
			break;
		}
		struct pollfd pf[2];
		int np = 0, io = -1, ie = -1;
		if (out_open) {
			io = np;
			pf[np].fd = out_p[0];
			pf[np++].events = POLLIN;
		}
		if (err_open) {
			ie = np;
			pf[np].fd = err_p[0];
			pf[np++].events = POLLIN;
		}
		int pr = poll(pf, (nfds_t)np, left > 1000 ? 1000 : (int)left);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0)
			continue;
		if (io >= 0 && (pf[io].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(out_p[0], chunk, sizeof(chunk));
			if (n <= 0) {
				if (n == 0 || errno != EINTR)
					out_open = false;
			} else if (res->out_len + (size_t)n > max_out) {
				/* over the cap: keep what fits, stop the scanner (its document is unusable anyway) */
				res->out_truncated = true;
				out_open = false;
				kill(-pid, SIGKILL);
			} else {
				if (res->out_len + (size_t)n > cap) {
					size_t ncap = cap * 2;
					while (ncap < res->out_len + (size_t)n)
						ncap *= 2;
					if (ncap > max_out)
						ncap = max_out;
					char *nb = realloc(res->out, ncap + 1);
					if (!nb) {
						kill(-pid, SIGKILL);
						reap(pid, scanrun_now_ms(), NULL);
						pid = -1;
						st = CORE_ENOMEM;
						goto out;
					}
					res->out = nb;
					cap = ncap;
				}
				memcpy(res->out + res->out_len, chunk, (size_t)n);
				res->out_len += (size_t)n;
				res->out[res->out_len] = '\0';
			}
		}
		if (ie >= 0 && (pf[ie].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(err_p[0], chunk, sizeof(chunk));
			if (n <= 0) {
				if (n == 0 || errno != EINTR)
					err_open = false;
			} else {
				keep_tail(res->err_tail, sizeof(res->err_tail), chunk, (size_t)n);
			}
		}
	}
	bool late = false;
	int status = reap(pid, res->timed_out ? scanrun_now_ms() : deadline_ms, &late);
	pid = -1;
	if (late)
		res->timed_out = true;
	res->exit_code = exit_code_of(status);
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
	free(script);
	free(envp);
	if (st != CORE_OK) {
		free(res->out);
		res->out = NULL;
		res->out_len = 0;
	}
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

/* The last bytes of a file (for error messages), control characters as spaces. */
static void file_tail(const char *path, char *out, size_t cap)
{
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[512];
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
	ssize_t n = pread(fd, buf, sizeof(buf), from);
	close(fd);
	if (n > 0)
		keep_tail(out, cap, buf, (size_t)n);
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

enum core_status scanrun_extract_targz(const char *data, size_t len, const char *dir, size_t max_bytes,
				       int64_t deadline_ms, char *root_out, size_t root_cap, char *err, size_t errlen)
{
	enum core_status st = CORE_EINTERNAL;
	char archive[SCANRUN_PATH_MAX + 32], gz_err[SCANRUN_PATH_MAX + 32], tar_err[SCANRUN_PATH_MAX + 32];
	int gz_out[2] = {-1, -1}, tar_in[2] = {-1, -1}, fd = -1, gz_err_fd = -1, tar_err_fd = -1;
	pid_t gz = -1, tar = -1;
	size_t total = 0;
	bool gz_late = false, tar_late = false;
	err[0] = '\0';
	snprintf(root_out, root_cap, "%s", dir);
	snprintf(archive, sizeof(archive), "%s.tar.gz", dir);
	snprintf(gz_err, sizeof(gz_err), "%s.gzip.err", dir);
	snprintf(tar_err, sizeof(tar_err), "%s.tar.err", dir);

	fd = open(archive, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !write_all(fd, data, len)) {
		snprintf(err, errlen, "could not write the archive to %s: %s", archive, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	gz_err_fd = open(gz_err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	tar_err_fd = open(tar_err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (gz_err_fd < 0 || tar_err_fd < 0 || pipe2(gz_out, O_CLOEXEC) != 0 || pipe2(tar_in, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "could not prepare the extraction: %s", strerror(errno));
		goto out;
	}
	char *envp[] = {"PATH=" DEFAULT_PATH, "LANG=C.UTF-8", NULL};
	char *gz_argv[] = {"/bin/gzip", "-dc", archive, NULL};
	char *tar_argv[] = {"/bin/tar", "-x", "-f", "-", "-C", (char *)dir, "--no-same-owner", "--no-same-permissions",
			    "--delay-directory-restore", NULL};
	if (access(gz_argv[0], X_OK) != 0)
		gz_argv[0] = "/usr/bin/gzip";
	if (access(tar_argv[0], X_OK) != 0)
		tar_argv[0] = "/usr/bin/tar";
	gz = spawn(gz_argv, envp, NULL, -1, gz_out[1], gz_err_fd);
	tar = spawn(tar_argv, envp, NULL, tar_in[0], -1, tar_err_fd);
	close(gz_out[1]);
	close(tar_in[0]);
	gz_out[1] = tar_in[0] = -1;
	if (gz < 0 || tar < 0) {
		snprintf(err, errlen, "could not start gzip and tar");
		goto out;
	}
	char chunk[65536];
	for (;;) {
		int64_t left = deadline_ms - scanrun_now_ms();
		if (left <= 0) {
			st = CORE_ETIMEOUT;
			snprintf(err, errlen, "the archive was not extracted in time");
			goto out;
		}
		struct pollfd pf = {.fd = gz_out[0], .events = POLLIN};
		int pr = poll(&pf, 1, left > 1000 ? 1000 : (int)left);
		if (pr <= 0)
			continue;
		ssize_t n = read(gz_out[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
		if (total > max_bytes) {
			st = CORE_ETOOLARGE;
			snprintf(err, errlen, "the repository archive unpacks to more than %zu bytes", max_bytes);
			goto out;
		}
		if (!write_all(tar_in[1], chunk, (size_t)n))
			break; /* tar gave up: its status says why */
	}
	close(tar_in[1]);
	tar_in[1] = -1;
	int gs = reap(gz, deadline_ms, &gz_late), ts = reap(tar, deadline_ms, &tar_late);
	gz = tar = -1;
	if (gz_late || tar_late) {
		st = CORE_ETIMEOUT;
		snprintf(err, errlen, "the archive was not extracted in time");
		goto out;
	}
	char tail[300];
	if (exit_code_of(gs) != 0) {
		file_tail(gz_err, tail, sizeof(tail));
		snprintf(err, errlen, "the repository archive is not a gzip file: %s", tail);
		st = CORE_EINVAL;
		goto out;
	}
	if (exit_code_of(ts) != 0) {
		file_tail(tar_err, tail, sizeof(tail));
		snprintf(err, errlen, "the repository archive could not be unpacked: %s", tail);
		st = CORE_EINVAL;
		goto out;
	}
	/* GitLab's archives hold one top-level directory: scan below it */
	DIR *d = opendir(dir);
	if (d) {
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
	st = CORE_OK;
out:
	if (gz > 0) {
		kill(-gz, SIGKILL);
		reap(gz, scanrun_now_ms(), NULL);
	}
	if (tar > 0) {
		kill(-tar, SIGKILL);
		reap(tar, scanrun_now_ms(), NULL);
	}
	if (fd >= 0)
		close(fd);
	if (gz_err_fd >= 0)
		close(gz_err_fd);
	if (tar_err_fd >= 0)
		close(tar_err_fd);
	for (int i = 0; i < 2; i++) {
		if (gz_out[i] >= 0)
			close(gz_out[i]);
		if (tar_in[i] >= 0)
			close(tar_in[i]);
	}
	unlink(archive);
	unlink(gz_err);
	unlink(tar_err);
	return st;
}
