/*
 * core/diff.c
 *    Unified diff parsing into added lines, and the per-path added-line set. See diff.h.
 *
 * The parser walks the diff once. The texts of the added lines are copied into one buffer of len + 1 bytes: every
 * added line gives up its '+' for the NUL, so the buffer always suffices and is sized before anything is copied.
 * The set keeps its entries sorted by path (memcmp order) for binary search; an MR has at most a few thousand
 * files, so the insertion memmove is cheap.
 */
#include "diff.h"

#include "xalloc.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#define HUNK_NUM_MAX 1000000000L /* line numbers and counts above this are a malformed header */

void diff_added_free(struct diff_added *a)
{
	if (!a)
		return;
	free(a->lines);
	free(a->storage);
	free(a);
}

/* Parse decimal digits in [*p, end) into *out; at least one digit, at most HUNK_NUM_MAX. */
static bool parse_num(const char **p, const char *end, long *out)
{
	const char *s = *p;
	long v = 0;
	if (s >= end || *s < '0' || *s > '9')
		return false;
	while (s < end && *s >= '0' && *s <= '9') {
		v = v * 10 + (*s - '0');
		if (v > HUNK_NUM_MAX)
			return false;
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

/* Skip the literal lit at *p; false when [*p, end) does not start with it. */
static bool skip_lit(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* A hunk range after its sign: "start[,count]" (count 1 when left out). */
static bool parse_range(const char **p, const char *end, long *start, long *count)
{
	*count = 1;
	if (!parse_num(p, end, start))
		return false;
	return *p >= end || **p != ',' || (++*p, parse_num(p, end, count));
}

/* "@@ -a[,b] +c[,d] @@[ section]" */
static bool parse_hunk_header(const char *s, const char *end, long *old_count, long *new_start, long *new_count)
{
	long a, b, c, d;
	if (!skip_lit(&s, end, "@@ -") || !parse_range(&s, end, &a, &b) || !skip_lit(&s, end, " +") ||
	    !parse_range(&s, end, &c, &d) || !skip_lit(&s, end, " @@"))
		return false;
	if (s < end && *s != ' ' && *s != '\t')
		return false; /* "@@@" and other combined-diff forms */
	(void)a;
	if (d > 0 && c == 0)
		return false;
	*old_count = b;
	*new_start = c;
	*new_count = d;
	return true;
}

enum core_status diff_added_parse(const char *diff, size_t len, struct diff_added **out)
{
	if (!out || (!diff && len))
		return CORE_EINVAL;
	*out = NULL;
	if (len > DIFF_MAX_BYTES)
		return CORE_ETOOLARGE;

	enum core_status st = CORE_EINVAL;
	struct diff_added *a = xcalloc(1, sizeof(*a));
	a->storage = xmalloc(len + 1); /* len <= DIFF_MAX_BYTES, checked above */
	size_t used = 0, cap = 0;

	long old_rem = 0, new_rem = 0, cur = 0;
	bool seen_hunk = false, in_header = false;
	const char *p = diff, *end = diff ? diff + len : NULL;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		if (le > p && le[-1] == '\r')
			le--;
		size_t ll = (size_t)(le - p);
		bool in_hunk = old_rem > 0 || new_rem > 0;

		if (!in_hunk) {
			if (ll >= 2 && p[0] == '@' && p[1] == '@') {
				if (!parse_hunk_header(p, le, &old_rem, &cur, &new_rem))
					goto out;
				seen_hunk = true;
				in_header = false;
			} else if (ll >= 5 && memcmp(p, "diff ", 5) == 0) {
				in_header = true;
			} else if (ll >= 1 && p[0] == '\\') {
				/* "\ No newline at end of file" after a hunk's last line */
			} else if (seen_hunk && !in_header && ll >= 1 && (p[0] == '+' || p[0] == '-' || p[0] == ' ')) {
				goto out; /* more lines than the hunk announced */
			}
			/* otherwise a header line ("---", "+++", "index", "Binary files ... differ", ...) */
			p = next;
			continue;
		}

		char c = ll ? p[0] : ' ';
		switch (c) {
		case '+':
			if (new_rem == 0)
				goto out;
			if (a->count == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				a->lines = xrealloc(a->lines, ncap * sizeof(*a->lines));
				cap = ncap;
			}
			/* The line's '+' pays for the NUL: used stays <= the input consumed so far. */
			memcpy(a->storage + used, p + 1, ll - 1);
			a->storage[used + ll - 1] = '\0';
			a->lines[a->count].line = cur;
			a->lines[a->count].len = ll - 1;
			a->lines[a->count].text = a->storage + used; /* storage never moves */
			a->count++;
			used += ll;
			cur++;
			new_rem--;
			break;
		case '-':
			if (old_rem == 0)
				goto out;
			old_rem--;
			break;
		case ' ':
			if (old_rem == 0 || new_rem == 0)
				goto out;
			old_rem--;
			new_rem--;
			cur++;
			break;
		case '\\': break;
		default: goto out;
		}
		p = next;
	}
	if (old_rem > 0 || new_rem > 0)
		goto out; /* the diff ended inside a hunk: truncated */
	*out = a;
	a = NULL;
	st = CORE_OK;
out:
	diff_added_free(a);
	return st;
}

const struct diff_line *diff_added_find(const struct diff_added *a, long line)
{
	if (!a)
		return NULL;
	size_t lo = 0, hi = a->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->lines[mid].line < line)
			lo = mid + 1;
		else if (a->lines[mid].line > line)
			hi = mid;
		else
			return &a->lines[mid];
	}
	return NULL;
}

struct set_entry {
	char *path;
	size_t path_len;
	struct diff_added *added;
};

struct diff_added_set {
	struct set_entry *entries;
	size_t count, cap;
	size_t bytes; /* diff bytes added so far, for DIFF_SET_MAX_BYTES */
};

struct diff_added_set *diff_added_set_new(void)
{
	return xcalloc(1, sizeof(struct diff_added_set));
}

void diff_added_set_free(struct diff_added_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->count; i++) {
		free(s->entries[i].path);
		diff_added_free(s->entries[i].added);
	}
	free(s->entries);
	free(s);
}

static int path_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Index of path, or the insertion point with *found false. */
static size_t set_search(const struct diff_added_set *s, const char *path, size_t pl, bool *found)
{
	size_t lo = 0, hi = s->count;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = path_cmp(s->entries[mid].path, s->entries[mid].path_len, path, pl);
		if (c < 0) {
			lo = mid + 1;
		} else if (c > 0) {
			hi = mid;
		} else {
			*found = true;
			return mid;
		}
	}
	return lo;
}

static int line_cmp(const void *x, const void *y)
{
	const struct diff_line *a = x, *b = y;
	return a->line < b->line ? -1 : a->line > b->line ? 1 : 0;
}

/* A new diff_added holding the lines of both (sorted by number, a's copy kept on duplicates). */
static enum core_status merge_added(const struct diff_added *a, const struct diff_added *b, struct diff_added **out)
{
	size_t n = a->count + b->count, bytes = 0;
	for (size_t i = 0; i < a->count; i++)
		bytes += a->lines[i].len + 1;
	for (size_t i = 0; i < b->count; i++)
		bytes += b->lines[i].len + 1;
	struct diff_added *m = xcalloc(1, sizeof(*m));
	m->lines = xcalloc(n ? n : 1, sizeof(*m->lines));
	m->storage = xmalloc(bytes ? bytes : 1);
	size_t used = 0;
	for (int k = 0; k < 2; k++) {
		const struct diff_added *src = k ? b : a;
		for (size_t i = 0; i < src->count; i++) {
			struct diff_line *d = &m->lines[m->count++];
			memcpy(m->storage + used, src->lines[i].text, src->lines[i].len + 1);
			d->line = src->lines[i].line;
			d->len = src->lines[i].len;
			d->text = m->storage + used;
			used += d->len + 1;
		}
	}
	/* Sort by line number and drop duplicates (a line sent twice has the same text either way). */
	qsort(m->lines, m->count, sizeof(*m->lines), line_cmp);
	size_t w = 0;
	for (size_t i = 0; i < m->count; i++) {
		if (w && m->lines[w - 1].line == m->lines[i].line)
			continue; /* the same line from two pages: keep one */
		m->lines[w++] = m->lines[i];
	}
	m->count = w;
	*out = m;
	return CORE_OK;
}

enum core_status diff_added_set_add(struct diff_added_set *s, const char *path, const char *diff, size_t len,
                                    bool deleted_file)
{
	if (!s || !path)
		return CORE_EINVAL;
	size_t pl = strnlen(path, DIFF_PATH_MAX + 1);
	if (pl == 0 || pl > DIFF_PATH_MAX)
		return CORE_EINVAL;
	if (deleted_file)
		len = 0;
	if (len > DIFF_MAX_BYTES || len > DIFF_SET_MAX_BYTES - s->bytes)
		return CORE_ETOOLARGE;
	bool found;
	size_t at = set_search(s, path, pl, &found);
	if (!found && s->count >= DIFF_SET_MAX_FILES)
		return CORE_ETOOLARGE;

	struct diff_added *a = NULL;
	enum core_status st = diff_added_parse(deleted_file ? "" : diff, len, &a);
	if (st != CORE_OK)
		return st;
	if (found) {
		struct diff_added *m;
		st = merge_added(s->entries[at].added, a, &m);
		diff_added_free(a);
		if (st != CORE_OK)
			return st;
		diff_added_free(s->entries[at].added);
		s->entries[at].added = m;
		s->bytes += len;
		return CORE_OK;
	}
	if (s->count == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 32;
		s->entries = xrealloc(s->entries, ncap * sizeof(*s->entries));
		s->cap = ncap;
	}
	char *pc = xstrndup(path, pl);
	memmove(&s->entries[at + 1], &s->entries[at], (s->count - at) * sizeof(s->entries[0]));
	s->entries[at] = (struct set_entry){pc, pl, a};
	s->count++;
	s->bytes += len;
	return CORE_OK;
}

enum core_status diff_added_set_add_gitlab(struct diff_added_set *s, const struct json_object *diffs)
{
	if (!s || !diffs || !json_object_is_type(diffs, json_type_array))
		return CORE_EINVAL;
	size_t n = json_object_array_length(diffs);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(diffs, i), *v;
		if (!json_object_is_type(e, json_type_object))
			return CORE_EINVAL;
		const char *path = NULL, *diff = "";
		size_t dl = 0;
		bool deleted = false;
		if (!json_object_object_get_ex(e, "new_path", &v) || !json_object_is_type(v, json_type_string))
			return CORE_EINVAL;
		path = json_object_get_string(v);
		if (json_object_object_get_ex(e, "diff", &v) && !json_object_is_type(v, json_type_null)) {
			if (!json_object_is_type(v, json_type_string))
				return CORE_EINVAL;
			diff = json_object_get_string(v);
			dl = (size_t)json_object_get_string_len(v);
		}
		if (json_object_object_get_ex(e, "deleted_file", &v) && !json_object_is_type(v, json_type_null)) {
			if (!json_object_is_type(v, json_type_boolean))
				return CORE_EINVAL;
			deleted = json_object_get_boolean(v);
		}
		enum core_status st = diff_added_set_add(s, path, diff, dl, deleted);
		if (st != CORE_OK)
			return st;
	}
	return CORE_OK;
}

const struct diff_added *diff_added_set_get(const struct diff_added_set *s, const char *path)
{
	if (!s || !path)
		return NULL;
	size_t pl = strnlen(path, DIFF_PATH_MAX + 1);
	if (pl > DIFF_PATH_MAX)
		return NULL;
	bool found;
	size_t at = set_search(s, path, pl, &found);
	return found ? s->entries[at].added : NULL;
}

bool diff_added_has(const struct diff_added_set *s, const char *path, long line)
{
	return diff_added_find(diff_added_set_get(s, path), line) != NULL;
}

size_t diff_added_set_count(const struct diff_added_set *s)
{
	return s ? s->count : 0;
}

const char *diff_added_set_path_at(const struct diff_added_set *s, size_t i)
{
	if (!s || i >= s->count)
		return NULL;
	return s->entries[i].path;
}
