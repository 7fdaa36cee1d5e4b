/*
 * server/cli_scan.c
 *    `mrgate scan`: the built-in secrets scanner on files (see cli_scan.h).
 */
#include "cli_scan.h"

#include "buf.h"
#include "diff.h"
#include "findings.h"
#include "scan_secrets.h"
#include "workpool.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BINARY_SNIFF     8192
#define SCAN_THREADS_MAX 8

/* One file's outcome: its findings as JSON lines (malloc'd), or the message of why it failed. */
struct file_result {
	struct buf out; /* findings as JSON lines */
	char *err;
	size_t findings;
	bool scanned; /* a text file (binary and oversized files are skipped) */
	bool failed;
	bool done;
};

struct path_list {
	char **paths;
	size_t count, cap;
	bool failed;
};

/* The new-file diff of data[0..len): "@@ -0,0 +1,N @@" and every line prefixed with '+'. */
static void new_file_diff(const char *data, size_t len, struct buf *d)
{
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n')
			lines++;
	if (len && data[len - 1] != '\n')
		lines++;
	buf_printf(d, "@@ -0,0 +1,%zu @@\n", lines);
	for (const char *p = data, *end = data + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		buf_putc(d, '+');
		buf_append(d, p, n);
		buf_putc(d, '\n');
		p += n + (nl != NULL);
	}
}

/* Append one JSON line for f to r->out. */
static void add_finding(struct file_result *r, const struct finding *f)
{
	struct json_object *o = jx_object();
	json_object_object_add(o, "path", jx_str(f->path));
	json_object_object_add(o, "line", jx_int(f->line));
	json_object_object_add(o, "rule_id", jx_str(f->rule_id));
	json_object_object_add(o, "title", jx_str(f->title));
	json_object_object_add(o, "severity", jx_str(severity_name(f->severity)));
	json_object_object_add(o, "excerpt", jx_str(f->excerpt));
	json_object_object_add(o, "fingerprint", jx_str(f->fingerprint));
	buf_puts(&r->out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_putc(&r->out, '\n');
	json_object_put(o);
}

static void fail(struct file_result *r, const char *path, const char *why)
{
	size_t n = strlen(path) + strlen(why) + 32;
	r->err = malloc(n);
	if (r->err)
		snprintf(r->err, n, "could not read %s: %s", path, why);
	r->failed = true;
}

static void scan_file(const char *path, struct file_result *r)
{
	FILE *fp = fopen(path, "rb");
	char *data = NULL;
	struct buf diff = {0};
	struct diff_added_set *set = NULL;
	struct finding_list *fl = NULL;
	struct stat sb;
	if (!fp || fstat(fileno(fp), &sb) != 0) {
		fail(r, path, strerror(errno));
		goto out;
	}
	if ((unsigned long long)sb.st_size > DIFF_MAX_BYTES / 2) {
		r->err = strdup("larger than a merge request diff can show");
		goto out;
	}
	size_t len = (size_t)sb.st_size;
	data = malloc(len + 1);
	if (!data || fread(data, 1, len, fp) != len) {
		fail(r, path, data ? "short read" : "out of memory");
		goto out;
	}
	if (memchr(data, '\0', len < BINARY_SNIFF ? len : BINARY_SNIFF))
		goto out; /* binary: GitLab sends no lines for it */
	r->scanned = true;
	if (len == 0)
		goto out;
	new_file_diff(data, len, &diff);
	set = diff_added_set_new();
	fl = finding_list_new();
	if (!set || !fl) {
		fail(r, path, "out of memory");
		goto out;
	}
	enum core_status st = diff_added_set_add(set, path, buf_str(&diff), diff.len, false);
	if (st == CORE_OK)
		st = scan_secrets_set(set, fl);
	if (st != CORE_OK) {
		fail(r, path, core_status_code(st));
		goto out;
	}
	for (size_t i = 0; i < fl->count; i++)
		add_finding(r, &fl->items[i]);
	r->findings = fl->count;
out:
	if (fp)
		fclose(fp);
	free(data);
	buf_free(&diff);
	diff_added_set_free(set);
	finding_list_free(fl);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(struct path_list *pl, const char *path)
{
	if (pl->count == pl->cap) {
		size_t nc = pl->cap ? pl->cap * 2 : 256;
		char **x = realloc(pl->paths, nc * sizeof(*x));
		if (!x) {
			pl->failed = true;
			return;
		}
		pl->paths = x;
		pl->cap = nc;
	}
	pl->paths[pl->count] = strdup(path);
	if (pl->paths[pl->count])
		pl->count++;
	else
		pl->failed = true;
}

/* The regular files under path, in byte order of their names (so every run prints the same). */
static void walk(const char *path, struct path_list *pl, int depth)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", path, strerror(errno));
		pl->failed = true;
		return;
	}
	if (S_ISREG(sb.st_mode)) {
		add_path(pl, path);
		return;
	}
	if (!S_ISDIR(sb.st_mode) || depth > 64)
		return;
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", path, strerror(errno));
		pl->failed = true;
		return;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, ".git") == 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **x = realloc(names, nc * sizeof(*x));
			if (!x)
				break;
			names = x;
			cap = nc;
		}
		size_t pl_len = strlen(path) + strlen(e->d_name) + 2;
		names[n] = malloc(pl_len);
		if (!names[n])
			break;
		snprintf(names[n], pl_len, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", e->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		walk(names[i], pl, depth + 1);
		free(names[i]);
	}
	free(names);
}

/*
 * Files are scanned by a few threads (core/workpool.h; the scanner is thread-safe) and printed in order by the main
 * thread, which waits on cv for each file's result.
 */
struct pool {
	const struct path_list *pl;
	struct file_result *res;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void scan_one(void *arg, size_t i)
{
	struct pool *p = arg;
	struct file_result r = {0};
	scan_file(p->pl->paths[i], &r);
	pthread_mutex_lock(&p->mu);
	p->res[i] = r;
	p->res[i].done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int cli_scan(int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "usage: mrgate scan PATH...\n");
		return 2;
	}
	if (scan_secrets_init() != CORE_OK) {
		fprintf(stderr, "mrgate: the secrets rules do not compile\n");
		return 2;
	}
	struct path_list pl = {0};
	for (int i = 0; i < argc; i++)
		walk(argv[i], &pl, 0);
	struct pool p = {&pl, calloc(pl.count ? pl.count : 1, sizeof(struct file_result)), PTHREAD_MUTEX_INITIALIZER,
	                 PTHREAD_COND_INITIALIZER};
	if (!p.res) {
		fprintf(stderr, "mrgate: out of memory\n");
		return 2;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct workpool wp;
	workpool_start(&wp, pl.count, cpus > SCAN_THREADS_MAX ? SCAN_THREADS_MAX : (int)cpus, scan_one, &p);
	size_t files = 0, findings = 0;
	bool failed = pl.failed;
	for (size_t i = 0; i < pl.count; i++) {
		pthread_mutex_lock(&p.mu);
		while (!p.res[i].done)
			pthread_cond_wait(&p.cv, &p.mu);
		struct file_result r = p.res[i];
		pthread_mutex_unlock(&p.mu);
		fwrite(buf_str(&r.out), 1, r.out.len, stdout);
		if (r.err && r.failed)
			fprintf(stderr, "mrgate: %s\n", r.err);
		else if (r.err)
			fprintf(stderr, "mrgate: skipped %s: %s\n", pl.paths[i], r.err);
		files += r.scanned;
		findings += r.findings;
		failed = failed || r.failed;
		buf_free(&r.out);
		free(r.err);
		free(pl.paths[i]);
	}
	workpool_join(&wp);
	free(p.res);
	free(pl.paths);
	fflush(stdout);
	fprintf(stderr, "mrgate: scanned %zu files, %zu findings\n", files, findings);
	if (failed)
		return 2;
	return findings ? 1 : 0;
}
