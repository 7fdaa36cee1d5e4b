/*
 * core/treediff.c
 *    Added lines from two unpacked trees (see treediff.h).
 */
#include "treediff.h"

#include "buf.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BINARY_PROBE 8000 /* git looks for a NUL in the first 8,000 bytes */

struct walk {
	struct diff_added_set *set;
	bool (*skip)(const char *path, void *user);
	void *user;
	int64_t deadline_ms;
	struct treediff_stats *st;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of scanrun_now_ms(), which gives the gate's deadlines */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unreadable(struct walk *w, const char *path)
{
	if (w->st->unreadable++ == 0)
		snprintf(w->st->first_unreadable, sizeof(w->st->first_unreadable), "%s", path);
}

/* Read a regular file (no symlink) below dirfd into *out (NUL-terminated), at most max bytes. */
static enum core_status read_file(int dirfd, const char *name, size_t max, char **out, size_t *len_out)
{
	*out = NULL;
	*len_out = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? CORE_ENOTFOUND : CORE_EINVAL;
	struct stat sb;
	enum core_status st = CORE_OK;
	char *buf = NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		st = CORE_ENOTFOUND;
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		st = CORE_ETOOLARGE;
		goto out;
	}
	size_t size = (size_t)sb.st_size, got = 0;
	buf = xmalloc(size + 1); /* size <= max, checked above */
	for (ssize_t n = 0; got < size; got += (size_t)n) {
		n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			n = 0; /* interrupted: read again */
		else if (n <= 0)
			break; /* the file shrank, or an error: what was read is compared */
	}
	buf[got] = '\0';
	*out = buf;
	*len_out = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return st;
}

static uint64_t line_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h | 1; /* 0 marks an empty slot */
}

/* The length of the line starting at s (without "\n" or "\r\n"), and where the next one starts. */
static size_t next_line(const char *s, const char *end, const char **next)
{
	const char *nl = memchr(s, '\n', (size_t)(end - s));
	const char *e = nl ? nl : end;
	*next = nl ? nl + 1 : end;
	if (e > s && e[-1] == '\r')
		e--;
	return (size_t)(e - s);
}

struct line_set {
	uint64_t *slots;
	size_t mask;
};

static void line_set_fill(struct line_set *ls, const char *text, size_t len)
{
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	size_t cap = 16;
	while (cap < lines * 2)
		cap <<= 1;
	ls->slots = xcalloc(cap, sizeof(uint64_t));
	ls->mask = cap - 1;
	const char *p = text, *end = text + len, *next;
	while (p < end) {
		size_t n = next_line(p, end, &next);
		uint64_t h = line_hash(p, n);
		size_t i = (size_t)h & ls->mask;
		while (ls->slots[i] && ls->slots[i] != h)
			i = (i + 1) & ls->mask;
		ls->slots[i] = h;
		p = next;
	}
}

static bool line_set_has(const struct line_set *ls, const char *s, size_t n)
{
	if (!ls->slots)
		return false;
	uint64_t h = line_hash(s, n);
	for (size_t i = (size_t)h & ls->mask; ls->slots[i]; i = (i + 1) & ls->mask)
		if (ls->slots[i] == h)
			return true;
	return false;
}

/*
 * A unified diff whose hunks hold the head lines not in base (base NULL: all of them), one hunk per run of
 * consecutive added lines: "@@ -0,0 +start,count @@" then "+line" each. *lines_out counts them.
 */
static enum core_status added_diff(const char *head, size_t hlen, const char *base, size_t blen, struct buf *out,
                                   size_t *lines_out)
{
	struct line_set ls = {0};
	enum core_status st = CORE_OK;
	if (base)
		line_set_fill(&ls, base, blen);
	const char *p = head, *end = head + hlen, *next = head + hlen;
	long lineno = 0, run_start = 0;
	size_t run_len = 0;
	struct buf run = {0};
	*lines_out = 0;
	for (;;) {
		bool at_end = p >= end;
		size_t n = 0;
		bool added = false;
		if (!at_end) {
			n = next_line(p, end, &next);
			lineno++;
			added = !line_set_has(&ls, p, n);
		}
		if ((!added || at_end) && run_len > 0) {
			buf_printf(out, "@@ -0,0 +%ld,%zu @@\n", run_start, run_len);
			buf_append(out, run.p, run.len);
			*lines_out += run_len;
			buf_reset(&run);
			run_len = 0;
		}
		if (at_end)
			break;
		if (added) {
			if (run_len == 0)
				run_start = lineno;
			buf_putc(&run, '+');
			buf_append(&run, p, n);
			buf_putc(&run, '\n');
			run_len++;
		}
		p = next;
	}
	buf_free(&run);
	free(ls.slots);
	return st;
}

static enum core_status one_file(struct walk *w, int head_dir, int base_dir, const char *name, const char *path)
{
	char *head = NULL, *base = NULL;
	size_t hlen = 0, blen = 0;
	struct buf diff = {0};
	enum core_status st = read_file(head_dir, name, DIFF_MAX_BYTES, &head, &hlen);
	if (st == CORE_ENOMEM)
		return st;
	if (st != CORE_OK) {
		if (st != CORE_ENOTFOUND)
			unreadable(w, path);
		return CORE_OK;
	}
	bool have_base = false;
	if (base_dir >= 0) {
		st = read_file(base_dir, name, DIFF_MAX_BYTES, &base, &blen);
		if (st == CORE_ENOMEM)
			goto out;
		have_base = st == CORE_OK;
		if (st == CORE_ETOOLARGE) {
			/* a base version too large to compare: count every head line (fail-safe) */
			have_base = false;
		}
	}
	st = CORE_OK;
	if (have_base && blen == hlen && memcmp(base, head, hlen) == 0)
		goto out; /* unchanged */
	size_t probe = hlen < BINARY_PROBE ? hlen : BINARY_PROBE;
	size_t lines = 0;
	if (memchr(head, '\0', probe) == NULL) {
		st = added_diff(head, hlen, have_base ? base : NULL, blen, &diff, &lines);
		if (st != CORE_OK)
			goto out;
	}
	st = diff_added_set_add(w->set, path, buf_str(&diff), diff.len, false);
	if (st == CORE_OK) {
		w->st->added_files++;
		w->st->added_lines += lines;
	} else if (st != CORE_ENOMEM && st != CORE_ETOOLARGE) {
		unreadable(w, path);
		st = CORE_OK;
	}
out:
	free(head);
	free(base);
	buf_free(&diff);
	return st;
}

static enum core_status walk_dir(struct walk *w, int head_dir, int base_dir, char *path, size_t plen)
{
	int dup = fcntl(head_dir, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return CORE_EINVAL;
	DIR *d = fdopendir(dup);
	if (!d) {
		close(dup);
		return CORE_EINVAL;
	}
	enum core_status st = CORE_OK;
	struct dirent *e;
	while (st == CORE_OK && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (w->deadline_ms > 0 && now_ms() >= w->deadline_ms) {
			st = CORE_ETIMEOUT;
			break;
		}
		size_t nl = strlen(e->d_name);
		if (plen + nl + 2 > DIFF_PATH_MAX + 1) {
			unreadable(w, e->d_name);
			continue;
		}
		size_t at = plen;
		if (plen) {
			path[at++] = '/';
		}
		memcpy(path + at, e->d_name, nl + 1);
		struct stat sb;
		if (fstatat(head_dir, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			unreadable(w, path);
		} else if (S_ISDIR(sb.st_mode)) {
			int hd = openat(head_dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int bd = base_dir >= 0
			             ? openat(base_dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			             : -1;
			if (hd < 0)
				unreadable(w, path);
			else
				st = walk_dir(w, hd, bd, path, at + nl);
			if (hd >= 0)
				close(hd);
			if (bd >= 0)
				close(bd);
		} else if (S_ISREG(sb.st_mode)) {
			if (!diff_added_set_get(w->set, path) && !(w->skip && w->skip(path, w->user)))
				st = one_file(w, head_dir, base_dir, e->d_name, path);
		}
		path[plen] = '\0';
	}
	closedir(d);
	return st;
}

enum core_status treediff_add(const char *base_root, const char *head_root, struct diff_added_set *set,
                              bool (*skip)(const char *path, void *user), void *user, int64_t deadline_ms,
                              struct treediff_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!head_root || !*head_root || !set)
		return CORE_EINVAL;
	int hd = open(head_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (hd < 0)
		return CORE_EINVAL;
	int bd = base_root && *base_root ? open(base_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	char *path = xcalloc(1, DIFF_PATH_MAX + 2);
	struct walk w = {.set = set, .skip = skip, .user = user, .deadline_ms = deadline_ms, .st = out};
	enum core_status st = walk_dir(&w, hd, bd, path, 0);
	free(path);
	close(hd);
	if (bd >= 0)
		close(bd);
	return st;
}
