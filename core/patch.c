/*
 * core/patch.c
 *    Split a multi-file unified diff into per-file diffs (see patch.h).
 */
#include "patch.h"

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The file being collected: its path and where its first hunk starts. */
struct cur {
	struct buf path;
	bool deleted;
	bool have;          /* a file header was read */
	const char *hunks;  /* first hunk header of the file, or NULL */
	size_t hunks_line;  /* its line number in the patch */
	bool git_prefix;    /* "diff --git a/... b/..." or "--- a/...": strip "b/" */
	struct buf old_pth; /* the "--- " path, for a deleted file */
};

/* A non-negative decimal at *p (advanced); false when there is none or it is absurdly large. */
static bool read_count(const char **p, const char *end, long *out)
{
	long v = 0;
	const char *s = *p;
	while (*p < end && **p >= '0' && **p <= '9' && v < 100000000) {
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return *p > s && v < 100000000;
}

/* "@@ -a[,b] +c[,d] @@": the old and new line counts (1 when omitted). */
static bool hunk_counts(const char *l, size_t n, long *old_out, long *new_out)
{
	const char *p = l + 4, *end = l + n;
	long a, c;
	*old_out = *new_out = 1;
	if (n < 4 || memcmp(l, "@@ -", 4) != 0 || !read_count(&p, end, &a))
		return false;
	if (p < end && *p == ',' && (p++, !read_count(&p, end, old_out)))
		return false;
	if (end - p < 2 || memcmp(p, " +", 2) != 0)
		return false;
	p += 2;
	if (!read_count(&p, end, &c))
		return false;
	if (p < end && *p == ',' && (p++, !read_count(&p, end, new_out)))
		return false;
	return end - p >= 3 && memcmp(p, " @@", 3) == 0;
}

/* Git's quoted path ("\"a/x\\ty\""): C escapes and octal bytes. False when malformed. */
static bool unquote(const char *s, size_t n, struct buf *out)
{
	static const char esc_in[] = "abtnvfr\"\\", esc_out[] = "\a\b\t\n\v\f\r\"\\";
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return false;
	for (size_t i = 1; i + 1 < n; i++) {
		if (s[i] != '\\') {
			buf_putc(out, s[i]);
			continue;
		}
		if (++i + 1 >= n)
			return false;
		const char *e = strchr(esc_in, s[i]);
		if (e && *e) {
			buf_putc(out, esc_out[e - esc_in]);
		} else if (i + 3 < n && s[i] >= '0' && s[i] <= '3' && s[i + 1] >= '0' && s[i + 1] <= '7' &&
		           s[i + 2] >= '0' && s[i + 2] <= '7') {
			buf_putc(out, (char)((s[i] - '0') * 64 + (s[i + 1] - '0') * 8 + (s[i + 2] - '0')));
			i += 2;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * The path of a "--- "/"+++ " line's rest s[0..n): without what follows a tab (a timestamp; git ends a path that has
 * a space with a tab, quoted or not: a quoted path holds a tab only as "\t"), unquoted.
 */
static bool header_path(const char *s, size_t n, struct buf *out)
{
	buf_reset(out);
	const char *tab = memchr(s, '\t', n);
	if (tab)
		n = (size_t)(tab - s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
		n--;
	if (n && s[0] == '"')
		return unquote(s, n, out);
	buf_append(out, s, n);
	buf_putc(out, '\0'); /* an empty path still has a string */
	out->len = n;
	return n > 0;
}

/* Hand the collected file to the set (a header without hunks adds the path with no line). */
static enum core_status flush(struct cur *c, const char *upto, struct diff_added_set *set, size_t *bad_line)
{
	enum core_status st = CORE_OK;
	if (c->have && c->path.len) {
		const char *p = buf_str(&c->path);
		if (c->git_prefix && strncmp(p, "b/", 2) == 0)
			p += 2;
		const char *h = c->hunks ? c->hunks : "";
		size_t hl = c->hunks ? (size_t)(upto - c->hunks) : 0;
		st = diff_added_set_add(set, p, h, hl, c->deleted && !c->hunks);
		if (st == CORE_EINVAL && bad_line)
			*bad_line = c->hunks_line;
	}
	c->have = c->deleted = c->git_prefix = false;
	c->hunks = NULL;
	buf_reset(&c->path);
	return st;
}

enum core_status patch_add_to_set(const char *text, size_t len, struct diff_added_set *set, size_t *bad_line_out)
{
	struct cur c = {0};
	long old_left = 0, new_left = 0;
	size_t line_no = 0;
	enum core_status st = CORE_OK;
	if (bad_line_out)
		*bad_line_out = 0;
	if (!text || !set)
		return CORE_EINVAL;
	for (const char *p = text, *end = text + len; p < end && st == CORE_OK;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		size_t n = (size_t)((nl ? nl : end) - p);
		line_no++;
		if (old_left > 0 || new_left > 0) { /* inside a hunk: counted, never a header */
			char k = n ? p[0] : ' ';
			if (k == ' ' || k == '\r' || n == 0) {
				old_left--;
				new_left--;
			} else if (k == '-') {
				old_left--;
			} else if (k == '+') {
				new_left--;
			} else if (k != '\\') {
				old_left = new_left = 0; /* short hunk: diff_added_set_add() says so */
				line_no--;
				continue;
			}
			p = next;
			continue;
		}
		if (n >= 2 && memcmp(p, "@@", 2) == 0) {
			if (!c.have ||
			    !hunk_counts(p, n, &old_left, &new_left)) { /* no file to put it in, or malformed */
				st = CORE_EINVAL;
				if (bad_line_out)
					*bad_line_out = line_no;
				break;
			}
			if (!c.hunks) {
				c.hunks = p;
				c.hunks_line = line_no;
			}
		} else if (n >= 11 && memcmp(p, "diff --git ", 11) == 0) {
			st = flush(&c, p, set, bad_line_out);
			c.have = true;
			c.git_prefix = true;
			/* the new path, until a "+++" line says better: the text after " b/" */
			const char *b = NULL;
			for (const char *q = p + 11; q + 3 <= p + n; q++)
				if (memcmp(q, " b/", 3) == 0)
					b = q + 1;
			if (b)
				header_path(b, (size_t)(p + n - b), &c.path);
		} else if (n >= 4 && memcmp(p, "--- ", 4) == 0 && next < end && end - next >= 4 &&
		           memcmp(next, "+++ ", 4) == 0) {
			if (c.hunks || !c.have)
				st = flush(&c, p, set, bad_line_out);
			c.have = true;
			if (!header_path(p + 4, n - 4, &c.old_pth)) {
				st = CORE_EINVAL;
				if (bad_line_out)
					*bad_line_out = line_no;
				break;
			}
			const char *nl2 = memchr(next, '\n', (size_t)(end - next));
			size_t n2 = (size_t)((nl2 ? nl2 : end) - next);
			line_no++;
			struct buf np = {0};
			if (!header_path(next + 4, n2 - 4, &np)) {
				buf_free(&np);
				st = CORE_EINVAL;
				if (bad_line_out)
					*bad_line_out = line_no;
				break;
			}
			/* git's prefixes, with or without its "diff --git" line: "a/" on the old side, or a new file's
			 * "b/" */
			c.git_prefix =
			    c.git_prefix || strncmp(buf_str(&c.old_pth), "a/", 2) == 0 ||
			    (strcmp(buf_str(&c.old_pth), "/dev/null") == 0 && strncmp(buf_str(&np), "b/", 2) == 0);
			buf_reset(&c.path);
			if (strcmp(buf_str(&np), "/dev/null") == 0) {
				c.deleted = true;
				const char *o = buf_str(&c.old_pth);
				buf_puts(&c.path, c.git_prefix && strncmp(o, "a/", 2) == 0 ? o + 2 : o);
				c.git_prefix = false;
			} else {
				buf_append(&c.path, buf_str(&np), np.len);
			}
			buf_free(&np);
			next = nl2 ? nl2 + 1 : end;
		}
		p = next;
	}
	if (st == CORE_OK)
		st = flush(&c, text + len, set, bad_line_out);
	buf_free(&c.path);
	buf_free(&c.old_pth);
	return st;
}
