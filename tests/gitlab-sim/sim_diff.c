/*
 * tests/gitlab-sim/sim_diff.c
 *    Line diff (longest common subsequence, fine for test-sized files) rendered as unified hunks, and a
 *    ustar writer compressed with zlib's gzip framing.
 *
 * Design: files above SIM_DIFF_MAX_LINES lines on either side are diffed as "all removed, all added"
 *    instead of running the quadratic LCS table; a diff-aware scanner still sees every added line.
 * Ownership: see sim_diff.h.
 */
#include "sim_diff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIM_DIFF_MAX_LINES 3000
#define SIM_DIFF_CONTEXT   3

struct lines {
	const char **start;
	size_t *len;
	size_t n;
	bool no_newline_at_end;
};

static void split_lines(const char *text, struct lines *l)
{
	memset(l, 0, sizeof(*l));
	if (!text || !*text)
		return;
	size_t cap = 1;
	for (const char *p = text; *p; p++)
		if (*p == '\n')
			cap++;
	l->start = sim_xcalloc(cap, sizeof(*l->start));
	l->len = sim_xcalloc(cap, sizeof(*l->len));
	const char *p = text;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		l->start[l->n] = p;
		l->len[l->n] = n;
		l->n++;
		if (!e) {
			l->no_newline_at_end = true;
			break;
		}
		p = e + 1;
	}
}

static void free_lines(struct lines *l)
{
	free(l->start);
	free(l->len);
}

static bool line_eq(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->len[i] == b->len[j] && memcmp(a->start[i], b->start[j], a->len[i]) == 0;
}

struct op {
	char kind;     /* ' ', '-', '+' */
	size_t ai, bi; /* line index in a (for ' ', '-') and b (for ' ', '+') */
};

/* Edit script a -> b. */
static struct op *edit_script(const struct lines *a, const struct lines *b, size_t *n_out)
{
	struct op *ops = sim_xcalloc(a->n + b->n + 1, sizeof(*ops));
	size_t n = 0;
	if (a->n > SIM_DIFF_MAX_LINES || b->n > SIM_DIFF_MAX_LINES) {
		for (size_t i = 0; i < a->n; i++)
			ops[n++] = (struct op){'-', i, 0};
		for (size_t j = 0; j < b->n; j++)
			ops[n++] = (struct op){'+', a->n, j};
		*n_out = n;
		return ops;
	}
	size_t w = b->n + 1;
	uint32_t *t = sim_xcalloc((a->n + 1) * w, sizeof(*t)); /* t[i][j] = LCS of a[i..], b[j..] */
	for (size_t i = a->n; i-- > 0;)
		for (size_t j = b->n; j-- > 0;)
			t[i * w + j] =
			    line_eq(a, i, b, j)
			        ? t[(i + 1) * w + j + 1] + 1
			        : (t[(i + 1) * w + j] >= t[i * w + j + 1] ? t[(i + 1) * w + j] : t[i * w + j + 1]);
	size_t i = 0, j = 0;
	while (i < a->n || j < b->n) {
		if (i < a->n && j < b->n && line_eq(a, i, b, j)) {
			ops[n++] = (struct op){' ', i++, j++};
		} else if (i < a->n && (j == b->n || t[(i + 1) * w + j] >= t[i * w + j + 1])) {
			ops[n++] = (struct op){'-', i++, j};
		} else {
			ops[n++] = (struct op){'+', i, j++};
		}
	}
	free(t);
	*n_out = n;
	return ops;
}

static void range(char *out, size_t cap, size_t start, size_t count)
{
	if (count == 0)
		snprintf(out, cap, "%zu,0", start);
	else if (count == 1)
		snprintf(out, cap, "%zu", start + 1);
	else
		snprintf(out, cap, "%zu,%zu", start + 1, count);
}

char *sim_unified_diff(const char *old_text, const char *new_text)
{
	struct lines a, b;
	split_lines(old_text, &a);
	split_lines(new_text, &b);
	size_t n_ops = 0;
	struct op *ops = edit_script(&a, &b, &n_ops);
	struct sim_buf out = {0};
	sim_buf_put(&out, "", 0);
	size_t k = 0;
	while (k < n_ops) {
		while (k < n_ops && ops[k].kind == ' ')
			k++;
		if (k == n_ops)
			break;
		/* Hunk from the first change, back up SIM_DIFF_CONTEXT context lines, forward until a gap of
		   more than 2*context unchanged lines. */
		size_t first = k >= SIM_DIFF_CONTEXT ? k - SIM_DIFF_CONTEXT : 0;
		size_t last = k; /* index of the last change in the hunk */
		size_t m = k;
		while (m < n_ops) {
			if (ops[m].kind != ' ') {
				last = m;
				m++;
				continue;
			}
			size_t run = 0;
			while (m + run < n_ops && ops[m + run].kind == ' ')
				run++;
			if (m + run == n_ops || run > 2 * SIM_DIFF_CONTEXT)
				break;
			m += run;
		}
		size_t end = last + 1 + SIM_DIFF_CONTEXT;
		if (end > n_ops)
			end = n_ops;
		size_t a_start = ops[first].ai, b_start = ops[first].bi, a_count = 0, b_count = 0;
		for (size_t x = first; x < end; x++) {
			if (ops[x].kind != '+')
				a_count++;
			if (ops[x].kind != '-')
				b_count++;
		}
		char ra[48], rb[48], hdr[128];
		range(ra, sizeof(ra), a_start, a_count);
		range(rb, sizeof(rb), b_start, b_count);
		int hn = snprintf(hdr, sizeof(hdr), "@@ -%s +%s @@\n", ra, rb);
		sim_buf_put(&out, hdr, (size_t)hn);
		for (size_t x = first; x < end; x++) {
			const struct lines *src = ops[x].kind == '+' ? &b : &a;
			size_t idx = ops[x].kind == '+' ? ops[x].bi : ops[x].ai;
			char kind = ops[x].kind;
			sim_buf_put(&out, &kind, 1);
			sim_buf_put(&out, src->start[idx], src->len[idx]);
			sim_buf_put(&out, "\n", 1);
			bool last_line = idx + 1 == src->n;
			if (last_line && src->no_newline_at_end &&
			    (kind != ' ' || (a.no_newline_at_end && b.no_newline_at_end)))
				sim_buf_put(&out, "\\ No newline at end of file\n", 28);
		}
		k = end;
	}
	free(ops);
	free_lines(&a);
	free_lines(&b);
	return out.data;
}

/* --- tar.gz -------------------------------------------------------------------------------------------- */

/* A zero-padded octal field of width-1 digits plus NUL. */
static void put_octal(unsigned char *field, size_t width, unsigned long long value)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), value);
	if (n > 0 && (size_t)n < width)
		memcpy(field, tmp, (size_t)n + 1);
}

/* A ustar header as git archive writes it: owner root (0/0), mtime of the commit, the mode after tar.umask 002. */
static void tar_header(unsigned char h[512], const char *name, size_t size, char type, unsigned mode, const char *link)
{
	memset(h, 0, 512);
	size_t nl = strlen(name);
	if (nl <= 100) {
		memcpy(h, name, nl);
	} else {
		/* ustar: split into prefix (155) / name (100) at a slash. */
		const char *cut = name + nl - 100;
		const char *slash = strchr(cut, '/');
		if (!slash || (size_t)(slash - name) > 155)
			slash = NULL;
		if (slash) {
			memcpy(h + 345, name, (size_t)(slash - name));
			memcpy(h, slash + 1, strlen(slash + 1));
		} else {
			memcpy(h, name + nl - 100, 100);
		}
	}
	put_octal(h + 100, 8, mode);
	put_octal(h + 108, 8, 0);
	put_octal(h + 116, 8, 0);
	put_octal(h + 124, 12, (unsigned long long)size);
	put_octal(h + 136, 12, 1704067200ull);
	h[156] = (unsigned char)type;
	if (link) {
		size_t ll = strlen(link);
		memcpy(h + 157, link, ll < 100 ? ll : 100);
	}
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 265, "root", 4);
	memcpy(h + 297, "root", 4);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	put_octal(h + 148, 7, sum);
	h[155] = ' ';
}

static void tar_member(struct sim_buf *tar, const char *name, const char *data, size_t sz, char type, unsigned mode,
                       const char *link)
{
	static const unsigned char zero[512];
	unsigned char h[512];
	tar_header(h, name, sz, type, mode, link);
	sim_buf_put(tar, (const char *)h, 512);
	if (sz) {
		sim_buf_put(tar, data, sz);
		sim_buf_put(tar, (const char *)zero, (512 - sz % 512) % 512);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

unsigned char *sim_targz(const char *prefix, const char *sha, const struct sim_file *files, size_t n_files,
                         size_t *len_out)
{
	unsigned char *out = NULL;
	struct sim_buf tar = {0};
	static const unsigned char zero[1024];
	/* As `git archive` (GitLab's archive.tar.gz): a pax global header carrying the commit id, then every directory
	 * (0775), regular files (0664, or 0775 when executable) and symlinks (0777, the target as link name). */
	char *rec = sim_printf("52 comment=%.40s\n", sha);
	tar_member(&tar, "pax_global_header", rec, strlen(rec), 'g', 0666, NULL);
	free(rec);
	char *dir = sim_printf("%s/", prefix);
	tar_member(&tar, dir, NULL, 0, '5', 0775, NULL);
	char **dirs = sim_xcalloc(1, sizeof(char *));
	size_t nd = 0, capd = 1;
	for (size_t i = 0; i < n_files; i++) {
		for (const char *sl = strchr(files[i].path, '/'); sl; sl = strchr(sl + 1, '/')) {
			if (nd == capd) {
				capd *= 2;
				dirs = realloc(dirs, capd * sizeof(char *));
				if (!dirs)
					abort();
			}
			dirs[nd++] = sim_printf("%s%.*s/", dir, (int)(sl - files[i].path), files[i].path);
		}
	}
	qsort(dirs, nd, sizeof(char *), cmp_str);
	for (size_t i = 0; i < nd; i++) {
		if (i == 0 || strcmp(dirs[i], dirs[i - 1]) != 0)
			tar_member(&tar, dirs[i], NULL, 0, '5', 0775, NULL);
	}
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	for (size_t i = 0; i < n_files; i++) {
		char *name = sim_printf("%s%s", dir, files[i].path);
		if (files[i].mode == 0120000)
			tar_member(&tar, name, NULL, 0, '2', 0777, files[i].content);
		else
			tar_member(&tar, name, files[i].content, strlen(files[i].content), '0',
			           files[i].mode == 0100755 ? 0775 : 0664, NULL);
		free(name);
	}
	sim_buf_put(&tar, (const char *)zero, 1024);
	free(dir);

	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		goto out;
	uLong bound = deflateBound(&zs, (uLong)tar.len) + 64;
	out = sim_xmalloc(bound);
	zs.next_in = (Bytef *)tar.data;
	zs.avail_in = (uInt)tar.len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	int rc = deflate(&zs, Z_FINISH);
	*len_out = zs.total_out;
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(out);
		out = NULL;
	}
out:
	free(tar.data);
	return out;
}
