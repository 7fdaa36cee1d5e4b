/*
 * server/cli_scan.c
 *    `mrgate scan`: the built-in secrets scanner on files (see cli_scan.h).
 */
#include "cli_scan.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diff.h"
#include "findings.h"
#include "scan_secrets.h"

#define BINARY_SNIFF 8192

struct scan_totals {
	size_t files;
	size_t findings;
	bool failed;
};

/* The new-file diff of data[0..len): "@@ -0,0 +1,N @@" and every line prefixed with '+'. Caller frees. */
static char *new_file_diff(const char *data, size_t len, size_t *out_len)
{
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n')
			lines++;
	if (len && data[len - 1] != '\n')
		lines++;
	size_t cap = len + lines * 2 + 64;
	char *d = malloc(cap);
	if (!d)
		return NULL;
	int hl = snprintf(d, cap, "@@ -0,0 +1,%zu @@\n", lines);
	size_t o = (size_t)hl;
	bool bol = true;
	for (size_t i = 0; i < len; i++) {
		if (bol)
			d[o++] = '+';
		d[o++] = data[i];
		bol = data[i] == '\n';
	}
	if (len && !bol)
		d[o++] = '\n';
	d[o] = '\0';
	*out_len = o;
	return d;
}

static void print_finding(const struct finding *f)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return;
	json_object_object_add(o, "path", json_object_new_string(f->path));
	json_object_object_add(o, "line", json_object_new_int64(f->line));
	json_object_object_add(o, "rule_id", json_object_new_string(f->rule_id));
	json_object_object_add(o, "title", json_object_new_string(f->title));
	json_object_object_add(o, "severity", json_object_new_string(severity_name(f->severity)));
	json_object_object_add(o, "excerpt", json_object_new_string(f->excerpt));
	json_object_object_add(o, "fingerprint", json_object_new_string(f->fingerprint));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void scan_file(const char *path, struct scan_totals *t)
{
	FILE *fp = fopen(path, "rb");
	char *data = NULL, *diff = NULL;
	struct diff_added_set *set = NULL;
	struct finding_list *fl = NULL;
	struct stat sb;
	if (!fp || fstat(fileno(fp), &sb) != 0) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", path, strerror(errno));
		t->failed = true;
		goto out;
	}
	if ((unsigned long long)sb.st_size > DIFF_MAX_BYTES / 2) {
		fprintf(stderr, "mrgate: skipped %s: larger than a merge request diff can show\n", path);
		goto out;
	}
	size_t len = (size_t)sb.st_size;
	data = malloc(len + 1);
	if (!data || fread(data, 1, len, fp) != len) {
		fprintf(stderr, "mrgate: could not read %s\n", path);
		t->failed = true;
		goto out;
	}
	if (memchr(data, '\0', len < BINARY_SNIFF ? len : BINARY_SNIFF))
		goto out; /* binary: GitLab sends no lines for it */
	t->files++;
	if (len == 0)
		goto out;
	size_t dl = 0;
	diff = new_file_diff(data, len, &dl);
	set = diff_added_set_new();
	fl = finding_list_new();
	if (!diff || !set || !fl) {
		fprintf(stderr, "mrgate: out of memory\n");
		t->failed = true;
		goto out;
	}
	enum core_status st = diff_added_set_add(set, path, diff, dl, false);
	if (st == CORE_OK)
		st = scan_secrets_set(set, fl);
	if (st != CORE_OK) {
		fprintf(stderr, "mrgate: could not scan %s: %s\n", path, core_status_code(st));
		t->failed = true;
		goto out;
	}
	for (size_t i = 0; i < fl->count; i++)
		print_finding(&fl->items[i]);
	t->findings += fl->count;
out:
	if (fp)
		fclose(fp);
	free(data);
	free(diff);
	diff_added_set_free(set);
	finding_list_free(fl);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_path(const char *path, struct scan_totals *t, int depth)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", path, strerror(errno));
		t->failed = true;
		return;
	}
	if (S_ISREG(sb.st_mode)) {
		scan_file(path, t);
		return;
	}
	if (!S_ISDIR(sb.st_mode) || depth > 64)
		return;
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", path, strerror(errno));
		t->failed = true;
		return;
	}
	/* Sorted, so the output is the same on every run. */
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
		size_t pl = strlen(path) + strlen(e->d_name) + 2;
		names[n] = malloc(pl);
		if (!names[n])
			break;
		snprintf(names[n], pl, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", e->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		scan_path(names[i], t, depth + 1);
		free(names[i]);
	}
	free(names);
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
	struct scan_totals t = { 0, 0, false };
	for (int i = 0; i < argc; i++)
		scan_path(argv[i], &t, 0);
	fflush(stdout);
	fprintf(stderr, "mrgate: scanned %zu files, %zu findings\n", t.files, t.findings);
	if (t.failed)
		return 2;
	return t.findings ? 1 : 0;
}
