/*
 * server/cli_scan.c
 *    `mrgate scan`: the built-in secrets scanner on files or a diff (see cli_scan.h).
 */
#include "cli_scan.h"

#include "buf.h"
#include "diff.h"
#include "findings.h"
#include "patch.h"
#include "scan_report.h"
#include "scan_secrets.h"
#include "workpool.h"
#include "xalloc.h"

#include <ctype.h>
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

enum format { FMT_JSON, FMT_TEXT, FMT_SARIF };

struct opts {
	enum format format;
	enum fail_on fail_on;
	bool diff;
	bool rules;
	char **paths;
	int npaths;
};

/* One unit's outcome (a file, or one file of a diff): its findings, or the message of why it failed. */
struct unit_result {
	struct finding_list *fl;
	char *err;
	bool scanned; /* a text file (binary and oversized files are skipped) */
	bool failed;
	bool done;
};

struct path_list {
	char **paths;
	size_t count, cap;
	bool failed;
};

static const char usage_text[] =
    "usage: mrgate scan [--format json|text|sarif] [--fail-on LEVEL] PATH...\n"
    "       mrgate scan --diff [--format json|text|sarif] [--fail-on LEVEL] FILE|-\n"
    "       mrgate scan --rules\n"
    "LEVEL: critical, high (the default, as the gate's), medium, low or never. Exit 1 when a finding is at or above\n"
    "LEVEL, 0 otherwise, 2 on bad usage or unreadable input.\n";

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

static void fail(struct unit_result *r, const char *path, const char *why)
{
	size_t n = strlen(path) + strlen(why) + 32;
	r->err = xmalloc(n);
	snprintf(r->err, n, "could not read %s: %s", path, why);
	r->failed = true;
}

static void scan_file(const char *path, struct unit_result *r)
{
	FILE *fp = fopen(path, "rb");
	char *data = NULL;
	struct buf diff = {0};
	struct diff_added_set *set = NULL;
	struct stat sb;
	if (!fp || fstat(fileno(fp), &sb) != 0) {
		fail(r, path, strerror(errno));
		goto out;
	}
	if ((unsigned long long)sb.st_size > DIFF_MAX_BYTES / 2) {
		r->err = xstrdup("larger than a merge request diff can show");
		goto out;
	}
	size_t len = (size_t)sb.st_size;
	data = xmalloc(len + 1);
	if (fread(data, 1, len, fp) != len) {
		fail(r, path, "short read");
		goto out;
	}
	if (memchr(data, '\0', len < BINARY_SNIFF ? len : BINARY_SNIFF))
		goto out; /* binary: GitLab sends no lines for it */
	r->scanned = true;
	if (len == 0)
		goto out;
	new_file_diff(data, len, &diff);
	set = diff_added_set_new();
	if (!set) {
		fail(r, path, "out of memory");
		goto out;
	}
	enum core_status st = diff_added_set_add(set, path, buf_str(&diff), diff.len, false);
	if (st == CORE_OK)
		st = scan_secrets_set(set, r->fl);
	if (st != CORE_OK)
		fail(r, path, core_status_code(st));
out:
	if (fp)
		fclose(fp);
	free(data);
	buf_free(&diff);
	diff_added_set_free(set);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(struct path_list *pl, const char *path)
{
	if (pl->count == pl->cap) {
		pl->cap = pl->cap ? pl->cap * 2 : 256;
		pl->paths = xrealloc(pl->paths, pl->cap * sizeof(*pl->paths));
	}
	pl->paths[pl->count++] = xstrdup(path);
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
	struct path_list names = {0};
	struct dirent *e;
	bool slash = path[strlen(path) - 1] == '/';
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, ".git") == 0)
			continue;
		struct buf b = {0};
		buf_printf(&b, "%s%s%s", path, slash ? "" : "/", e->d_name);
		add_path(&names, buf_str(&b));
		buf_free(&b);
	}
	closedir(d);
	qsort(names.paths, names.count, sizeof(*names.paths), name_cmp);
	for (size_t i = 0; i < names.count; i++) {
		walk(names.paths[i], pl, depth + 1);
		free(names.paths[i]);
	}
	free(names.paths);
}

/*
 * Units (files, or the files of a diff) are scanned by a few threads (core/workpool.h; the scanner is thread-safe)
 * and printed in order by the calling thread, which waits on cv for each unit's result.
 */
struct pool {
	const struct path_list *pl;         /* files mode */
	const struct diff_added_set *added; /* diff mode */
	struct unit_result *res;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void scan_unit(void *arg, size_t i)
{
	struct pool *p = arg;
	struct unit_result r = {.fl = finding_list_new()};
	if (!r.fl) {
		fail(&r, "input", "out of memory");
	} else if (p->added) {
		const char *path = diff_added_set_path_at(p->added, i);
		enum core_status st = scan_secrets_added(path, diff_added_set_get(p->added, path), r.fl);
		r.scanned = true;
		if (st != CORE_OK)
			fail(&r, path, core_status_code(st));
	} else {
		scan_file(p->pl->paths[i], &r);
	}
	pthread_mutex_lock(&p->mu);
	p->res[i] = r;
	p->res[i].done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* What the units found, in order: printed (json, text) or gathered into all (sarif). */
struct tally {
	size_t files, findings;
	bool failed, over_threshold;
	bool sarif_full; /* the SARIF log holds FINDINGS_MAX findings: later ones are counted, not listed */
	struct finding_list *all;
};

static void emit(const struct opts *o, const struct unit_result *r, struct tally *t)
{
	struct buf out = {0};
	for (size_t k = 0; r->fl && k < r->fl->count; k++) {
		const struct finding *f = &r->fl->items[k];
		if (o->fail_on != FAIL_ON_NEVER && (int)f->severity >= (int)o->fail_on)
			t->over_threshold = true;
		if (o->format == FMT_JSON)
			scan_report_json_line(&out, f);
		else if (o->format == FMT_TEXT)
			scan_report_text(&out, f);
		else if (!t->sarif_full && finding_list_append(t->all, f) != CORE_OK)
			t->sarif_full = true;
	}
	fwrite(buf_str(&out), 1, out.len, stdout);
	buf_free(&out);
	t->files += r->scanned;
	t->findings += r->fl ? r->fl->count : 0;
}

/* Scan n units on the pool and emit each in order. */
static void run_units(const struct opts *o, struct pool *p, size_t n, struct tally *t)
{
	p->res = xcalloc(n ? n : 1, sizeof(*p->res));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct workpool wp;
	workpool_start(&wp, n, cpus > SCAN_THREADS_MAX ? SCAN_THREADS_MAX : cpus < 1 ? 1 : (int)cpus, scan_unit, p);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&p->mu);
		while (!p->res[i].done)
			pthread_cond_wait(&p->cv, &p->mu);
		struct unit_result r = p->res[i];
		pthread_mutex_unlock(&p->mu);
		emit(o, &r, t);
		if (r.err && r.failed)
			fprintf(stderr, "mrgate: %s\n", r.err);
		else if (r.err)
			fprintf(stderr, "mrgate: skipped %s: %s\n", p->pl ? p->pl->paths[i] : "?", r.err);
		t->failed = t->failed || r.failed;
		finding_list_free(r.fl);
		free(r.err);
	}
	workpool_join(&wp);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->res);
}

/* Read all of FILE ('-': stdin), at most max bytes. NULL with *err set when it cannot. */
static char *read_input(const char *name, size_t max, size_t *len_out, const char **err)
{
	FILE *fp = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
	struct buf b = {0};
	char chunk[65536];
	size_t n;
	*err = NULL;
	if (!fp) {
		*err = strerror(errno);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 && b.len <= max)
		buf_append(&b, chunk, n);
	if (ferror(fp))
		*err = strerror(errno);
	else if (b.len > max)
		*err = "larger than mrgate reads from a merge request's diffs";
	if (fp != stdin)
		fclose(fp);
	if (*err) {
		buf_free(&b);
		return NULL;
	}
	*len_out = b.len;
	buf_putc(&b, '\0');
	return buf_steal(&b);
}

/* True when text holds only white space, or is a `git format-patch` mail (which may change no file). */
static bool blank_or_mail(const char *text, size_t len)
{
	if (len >= 5 && memcmp(text, "From ", 5) == 0)
		return true;
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)text[i]))
			return false;
	return true;
}

static int scan_diff(const struct opts *o, struct tally *t)
{
	const char *name = o->paths[0], *err = NULL;
	size_t len = 0, bad_line = 0;
	char *text = read_input(name, DIFF_SET_MAX_BYTES, &len, &err);
	if (!text) {
		fprintf(stderr, "mrgate: could not read %s: %s\n", strcmp(name, "-") == 0 ? "stdin" : name, err);
		return 2;
	}
	struct diff_added_set *set = diff_added_set_new();
	enum core_status st = set ? patch_add_to_set(text, len, set, &bad_line) : CORE_ENOMEM;
	bool text_only = st == CORE_OK && diff_added_set_count(set) == 0 && !blank_or_mail(text, len);
	free(text);
	if (text_only) {
		fprintf(stderr,
		        "mrgate: could not read %s: no file header in it (\"diff --git\", or \"---\" then \"+++\"): is "
		        "it a "
		        "diff? An empty input is an empty diff\n",
		        strcmp(name, "-") == 0 ? "the diff on stdin" : name);
		diff_added_set_free(set);
		return 2;
	}
	if (st != CORE_OK) {
		const char *what = strcmp(name, "-") == 0 ? "the diff on stdin" : name;
		if (st == CORE_EINVAL && bad_line)
			fprintf(stderr,
			        "mrgate: could not read %s: line %zu: not a unified diff hunk, or its lines do not "
			        "match its @@ counts\n",
			        what, bad_line);
		else
			fprintf(stderr, "mrgate: could not read %s: %s\n", what,
			        st == CORE_EINVAL ? "it is not a unified diff (hunk counts do not add up)"
			                          : core_status_code(st));
		diff_added_set_free(set);
		return 2;
	}
	struct pool p = {.added = set};
	run_units(o, &p, diff_added_set_count(set), t);
	diff_added_set_free(set);
	return 0;
}

/* Parse the flags into o; 0 when fine, else the exit code (2, or 0 for --help) after saying why. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){FMT_JSON, FAIL_ON_HIGH, false, false, xcalloc((size_t)argc + 1, sizeof(char *)), 0};
	bool only_paths = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (only_paths || a[0] != '-' || strcmp(a, "-") == 0) {
			o->paths[o->npaths++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_paths = true;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		bool takes =
		    (nl == 8 && strncmp(a, "--format", 8) == 0) || (nl == 9 && strncmp(a, "--fail-on", 9) == 0);
		if (takes) {
			v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v) {
				fprintf(stderr, "mrgate scan: %.*s needs a value\n%s", (int)nl, a, usage_text);
				return 2;
			}
		}
		if (nl == 8 && strncmp(a, "--format", 8) == 0) {
			static const char *const names[] = {
			    [FMT_JSON] = "json", [FMT_TEXT] = "text", [FMT_SARIF] = "sarif"};
			size_t f = 0;
			while (f < 3 && strcmp(v, names[f]) != 0)
				f++;
			if (f == 3) {
				fprintf(stderr, "mrgate scan: --format must be json, text or sarif (got \"%s\")\n", v);
				return 2;
			}
			o->format = (enum format)f;
		} else if (takes) {
			if (fail_on_parse(v, &o->fail_on) != CORE_OK) {
				fprintf(stderr,
				        "mrgate scan: --fail-on must be critical, high, medium, low or never (got "
				        "\"%s\")\n",
				        v);
				return 2;
			}
		} else if (strcmp(a, "--diff") == 0) {
			o->diff = true;
		} else if (strcmp(a, "--rules") == 0) {
			o->rules = true;
		} else {
			fprintf(stderr, "mrgate scan: unknown option %s\n%s", a, usage_text);
			return 2;
		}
	}
	if (o->rules)
		return o->npaths ? (fprintf(stderr, "mrgate scan: --rules takes no path\n"), 2) : 0;
	if (o->npaths == 0) {
		fprintf(stderr,
		        "mrgate scan: nothing to scan: give files or directories, or --diff FILE (- for stdin)\n%s",
		        usage_text);
		return 2;
	}
	if (o->diff && o->npaths != 1) {
		fprintf(stderr, "mrgate scan: --diff reads one diff (a file, or - for stdin), got %d paths\n",
		        o->npaths);
		return 2;
	}
	for (int i = 0; !o->diff && i < o->npaths; i++)
		if (strcmp(o->paths[i], "-") == 0) {
			fprintf(stderr, "mrgate scan: '-' reads a unified diff from stdin: add --diff\n");
			return 2;
		}
	return 0;
}

int cli_scan(int argc, char **argv)
{
	struct opts o;
	struct tally t = {0};
	int rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		goto out;
	if (scan_secrets_init() != CORE_OK) {
		fprintf(stderr, "mrgate: the secrets rules do not compile\n");
		rc = 2;
		goto out;
	}
	if (o.rules) {
		struct buf b = {0};
		scan_report_rules(&b);
		fwrite(buf_str(&b), 1, b.len, stdout);
		buf_free(&b);
		goto out;
	}
	t.all = finding_list_new();
	if (!t.all) {
		rc = 2;
		goto out;
	}
	if (o.diff) {
		rc = scan_diff(&o, &t);
		if (rc != 0)
			goto out;
	} else {
		struct path_list pl = {0};
		for (int i = 0; i < o.npaths; i++)
			walk(o.paths[i], &pl, 0);
		struct pool p = {.pl = &pl};
		run_units(&o, &p, pl.count, &t);
		t.failed = t.failed || pl.failed;
		for (size_t i = 0; i < pl.count; i++)
			free(pl.paths[i]);
		free(pl.paths);
	}
	if (o.format == FMT_SARIF) {
		struct json_object *log = scan_report_sarif(t.all);
		fputs(json_object_to_json_string_ext(log, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
		      stdout);
		fputc('\n', stdout);
		json_object_put(log);
	}
	fflush(stdout);
	if (t.sarif_full)
		fprintf(stderr, "mrgate: the SARIF log lists the first %zu findings only\n", t.all->count);
	/* a path that could not be read is not a clean result: the closing line says so (exit 2) */
	fprintf(stderr, "mrgate: scanned %zu file%s, %zu finding%s%s\n", t.files, t.files == 1 ? "" : "s", t.findings,
	        t.findings == 1 ? "" : "s",
	        t.failed ? "; some paths could not be read (see above): the scan is incomplete" : "");
	rc = t.failed ? 2 : t.over_threshold ? 1 : 0;
out:
	finding_list_free(t.all);
	free(o.paths);
	return rc;
}
