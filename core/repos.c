/*
 * core/repos.c
 *    Repository lists and lookups.
 */
#include "repos.h"

#include "buf.h"
#include "gateconfig.h"
#include "jsonx.h"
#include "metrics.h"
#include "rows.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const repos_status_names[] = {"ungated",       "gated", "exception", "applying",         "error",
                                          "hook_disabled", "new",   "archived",  "pending_deletion", "removed",
                                          "unmanaged",     NULL};

/*
 * A repo_status_stored row as the API's repo object: PostgreSQL sends the columns, repo_json() writes the object's
 * JSON text. Built in SQL (json_build_object, to_char for each timestamp, a base64 cursor for each row), a page of 51
 * rows cost PostgreSQL about 1 ms against 0.35 ms for reading the same columns (pgbench, 10,000 repos), most of the
 * list's CPU. The columns, in the order of enum repo_col.
 */
#define REPO_COLUMNS                                                                                                   \
	"id, path, name, path_with_namespace, namespace_full_path, web_url, default_branch, archived,"                 \
	" marked_for_deletion, access_level, status, last_activity_at, first_seen, last_seen, removed_at,"             \
	" effective_config, config_sources, exception, unmanaged, apply_result, apply_message, applied_at"

enum repo_col {
	RC_ID,
	RC_PATH,
	RC_NAME,
	RC_PWN,
	RC_NAMESPACE,
	RC_WEB_URL,
	RC_BRANCH,
	RC_ARCHIVED,
	RC_PENDING,
	RC_ACCESS,
	RC_STATUS,
	RC_ACTIVITY,
	RC_FIRST_SEEN,
	RC_LAST_SEEN,
	RC_REMOVED_AT,
	RC_CONFIG,
	RC_SOURCES,
	RC_EXCEPTION,
	RC_UNMANAGED,
	RC_RESULT,
	RC_MESSAGE,
	RC_APPLIED_AT,
	RC_N
};

/* s as a JSON string. PostgreSQL's text is valid UTF-8 (the database's encoding), so only quotes, backslashes and
 * control characters are escaped. */
static void put_json_str(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, run, (size_t)(s - run));
		if (!c)
			break;
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c == '\n') {
			buf_puts(b, "\\n");
		} else if (c == '\t') {
			buf_puts(b, "\\t");
		} else if (c == '\r') {
			buf_puts(b, "\\r");
		} else {
			buf_printf(b, "\\u%04x", c);
		}
		run = s + 1;
	}
	buf_putc(b, '"');
}

/* The n decimal digits at t as a number; false when one is not a digit. */
static bool digits(const char *t, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		v = v * 10 + (t[i] - '0');
	}
	*out = v;
	return true;
}

/* The parts of a timestamp column's text ("2026-12-02 07:08:40.5+00": ISO, in UTC, as every pool connection sets
 * it); false for any other shape. Read by hand: sscanf was a tenth of mrgate's CPU for a page of the list. */
static bool ts_parts(const char *t, struct tm *tm, long *micros)
{
	memset(tm, 0, sizeof(*tm));
	if (strnlen(t, 19) < 19 || t[4] != '-' || t[7] != '-' || t[10] != ' ' || t[13] != ':' || t[16] != ':' ||
	    !digits(t, 4, &tm->tm_year) || !digits(t + 5, 2, &tm->tm_mon) || !digits(t + 8, 2, &tm->tm_mday) ||
	    !digits(t + 11, 2, &tm->tm_hour) || !digits(t + 14, 2, &tm->tm_min) || !digits(t + 17, 2, &tm->tm_sec))
		return false;
	const char *p = t + 19;
	*micros = 0;
	if (*p == '.') {
		int n = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				*micros = *micros * 10 + (*p - '0');
		for (; n < 6; n++)
			*micros *= 10;
	}
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	return strcmp(p, "+00") == 0;
}

/* A timestamp column as the API writes it, "2026-12-02T07:08:40Z" (whole seconds), or null. */
static void put_ts(struct buf *b, const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col)) {
		buf_puts(b, "null");
		return;
	}
	const char *t = PQgetvalue(r, row, col);
	struct tm tm;
	long us;
	if (!ts_parts(t, &tm, &us)) {
		put_json_str(b, t); /* not a shape the connection sends; shown as it came rather than dropped */
		return;
	}
	buf_putc(b, '"');
	buf_append(b, t, 10);
	buf_putc(b, 'T');
	buf_append(b, t + 11, 8);
	buf_puts(b, "Z\"");
}

static void put_text(struct buf *b, const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		buf_puts(b, "null");
	else
		put_json_str(b, PQgetvalue(r, row, col));
}

/* A boolean column, NULL as false. */
static void put_bool(struct buf *b, const PGresult *r, int row, int col)
{
	buf_puts(b, !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't' ? "true" : "false");
}

/* A column whose text is JSON already (a number, json, jsonb), NULL as null. */
static void put_raw(struct buf *b, const PGresult *r, int row, int col)
{
	buf_puts(b, PQgetisnull(r, row, col) ? "null" : PQgetvalue(r, row, col));
}

/* How a column is written into the repo object. */
enum repo_put { PUT_RAW, PUT_TEXT, PUT_BOOL, PUT_TS, PUT_ACCESS };

/* The repo object's members before last_apply, in the API's order, with the column each comes from. */
static const struct {
	const char *key;
	enum repo_col col;
	enum repo_put how;
} repo_members[] = {
    {"id", RC_ID, PUT_RAW},
    {"path", RC_PATH, PUT_TEXT},
    {"name", RC_NAME, PUT_TEXT},
    {"path_with_namespace", RC_PWN, PUT_TEXT},
    {"namespace_full_path", RC_NAMESPACE, PUT_TEXT},
    {"web_url", RC_WEB_URL, PUT_TEXT},
    {"default_branch", RC_BRANCH, PUT_TEXT},
    {"archived", RC_ARCHIVED, PUT_BOOL},
    {"pending_deletion", RC_PENDING, PUT_BOOL},
    {"access_level", RC_ACCESS, PUT_ACCESS},
    {"status", RC_STATUS, PUT_TEXT},
    {"last_activity_at", RC_ACTIVITY, PUT_TS},
    {"first_seen", RC_FIRST_SEEN, PUT_TS},
    {"last_seen", RC_LAST_SEEN, PUT_TS},
    {"removed_at", RC_REMOVED_AT, PUT_TS},
    {"config", RC_CONFIG, PUT_RAW},
    {"config_sources", RC_SOURCES, PUT_RAW},
    {"exception", RC_EXCEPTION, PUT_BOOL},
    {"unmanaged", RC_UNMANAGED, PUT_BOOL},
};

static void put_member(struct buf *b, const PGresult *r, int row, enum repo_col col, enum repo_put how)
{
	switch (how) {
	case PUT_RAW: put_raw(b, r, row, col); break;
	case PUT_TEXT: put_text(b, r, row, col); break;
	case PUT_BOOL: put_bool(b, r, row, col); break;
	case PUT_TS: put_ts(b, r, row, col); break;
	case PUT_ACCESS: /* 0 (no access recorded) as null */
		buf_puts(b, PQgetisnull(r, row, col) || strcmp(PQgetvalue(r, row, col), "0") == 0
		                ? "null"
		                : PQgetvalue(r, row, col));
		break;
	}
}

/* Row `row` of r (REPO_COLUMNS) as the API's repo object, appended to b. */
static void repo_json(struct buf *b, const PGresult *r, int row)
{
	for (size_t i = 0; i < sizeof(repo_members) / sizeof(repo_members[0]); i++) {
		buf_puts(b, i ? ",\"" : "{\"");
		buf_puts(b, repo_members[i].key);
		buf_puts(b, "\":");
		put_member(b, r, row, repo_members[i].col, repo_members[i].how);
	}
	buf_puts(b, ",\"last_apply\":");
	if (PQgetisnull(r, row, RC_RESULT)) {
		buf_puts(b, "null}");
		return;
	}
	buf_puts(b, "{\"result\":");
	put_text(b, r, row, RC_RESULT);
	buf_puts(b, ",\"message\":");
	put_text(b, r, row, RC_MESSAGE);
	buf_puts(b, ",\"at\":");
	put_ts(b, r, row, RC_APPLIED_AT);
	buf_puts(b, "}}");
}

/* The snapshot a statement read in, as text: the count cache's key (count_rows). */
#define SNAPSHOT "pg_current_snapshot()::text AS snap"

/*
 * The opaque page cursor of row `row` (kind 'p', the path sort, or 'a', the activity sort): base64url without
 * padding of "p|<path_with_namespace>|<id>" or "a|<last activity in epoch microseconds, -Infinity when none>|<id>"
 * (decode_cursor reads it back). malloc'd.
 */
static char *row_cursor(const PGresult *r, int row, char kind)
{
	struct buf raw = {0};
	const char *id = PQgetvalue(r, row, RC_ID);
	if (kind == 'p') {
		buf_printf(&raw, "p|%s|%s", PQgetvalue(r, row, RC_PWN), id);
	} else {
		struct tm tm;
		long us = 0;
		if (PQgetisnull(r, row, RC_ACTIVITY) || !ts_parts(PQgetvalue(r, row, RC_ACTIVITY), &tm, &us))
			buf_printf(&raw, "a|-Infinity|%s", id);
		else
			buf_printf(&raw, "a|%lld|%s", (long long)timegm(&tm) * 1000000LL + us, id);
	}
	size_t cap = sodium_base64_ENCODED_LEN(raw.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = xmalloc(cap);
	sodium_bin2base64(out, cap, (const unsigned char *)buf_str(&raw), raw.len,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_free(&raw);
	return out;
}

/*
 * The page's JSON text into b: {"items": the first `limit` rows of r as repo objects, "count": n (capped),
 * "count_capped", "next_cursor": the last kept row's cursor, or null}. Written as text, not built as a json-c tree and
 * printed again: the text is what the page cache keeps and the response sends.
 */
static void page_text(struct buf *b, const PGresult *r, int limit, char kind, int64_t n)
{
	int rows = PQntuples(r);
	buf_puts(b, "{\"items\":[");
	for (int i = 0; i < rows && i < limit; i++) {
		if (i)
			buf_putc(b, ',');
		repo_json(b, r, i);
	}
	buf_printf(b, "],\"count\":%lld,\"count_capped\":%s,\"next_cursor\":",
	           (long long)(n > REPOS_COUNT_CAP ? REPOS_COUNT_CAP : n), n > REPOS_COUNT_CAP ? "true" : "false");
	if (rows > limit && limit > 0) {
		char *cursor = row_cursor(r, limit - 1, kind); /* base64url: nothing to escape */
		buf_putc(b, '"');
		buf_puts(b, cursor);
		buf_putc(b, '"');
		free(cursor);
	} else {
		buf_puts(b, "null");
	}
	buf_putc(b, '}');
}

/* Decode a cursor into its sort key (*key, malloc'd) and id; false when malformed or of another sort. */
static bool decode_cursor(const char *cursor, char kind, char **key, int64_t *id)
{
	size_t clen = strlen(cursor), len = 0;
	if (clen > 1500)
		return false;
	unsigned char *raw = xmalloc(clen + 1); /* base64 decodes to fewer bytes than its text */
	if (sodium_base642bin(raw, clen, cursor, clen, NULL, &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) !=
	    0) {
		free(raw);
		return false;
	}
	raw[len] = '\0';
	char *s = (char *)raw, *last = NULL, *end = NULL;
	long long v = 0;
	bool ok = len >= 4 && s[0] == kind && s[1] == '|' && strlen(s) == len && (last = strrchr(s + 2, '|'));
	if (ok) {
		*last = '\0';
		errno = 0;
		v = strtoll(last + 1, &end, 10);
		ok = !*end && end != last + 1 && !errno && v > 0;
	}
	if (ok) {
		*key = xstrdup(s + 2);
		*id = v;
	}
	free(raw);
	return ok;
}

/* s as the entry of repos_status_names it equals (a constant), or NULL when it is none. */
static const char *known_status(const char *s)
{
	for (int i = 0; repos_status_names[i]; i++)
		if (strcmp(repos_status_names[i], s) == 0)
			return repos_status_names[i];
	return NULL;
}

/*
 * The WHERE clause of the selection and the summary (repos_select, repos_summary; the list's page and count write
 * only the filters they have, shape_filter). Parameters: $1 q (LIKE pattern), $2 group, $3 group prefix pattern
 * ("group/%": the repos of the group and its subgroups, as path_with_namespace is namespace_full_path/path; a range
 * of the path indexes), $4 status, $5 archived, $6 ids (bigint[]). The statements are planned with their values
 * (PQexecParams), so a NULL parameter's test folds away and each shape gets its index.
 */
#define REPO_FILTER                                                                                                    \
	" ($1::text IS NULL OR path_with_namespace ILIKE $1::text)"                                                    \
	" AND ($2::text IS NULL OR path_with_namespace COLLATE \"C\" LIKE $3::text)"                                   \
	" AND (CASE WHEN $4::text IS NULL THEN status <> 'removed' ELSE status = $4::text END)"                        \
	" AND ($5::boolean IS NULL OR archived = $5::boolean)"                                                         \
	" AND ($6::bigint[] IS NULL OR id = ANY($6::bigint[]))"

/* Storage for the parameters of a filter: the LIKE patterns and the id list. */
struct filter_bufs {
	struct buf q, gp, ids;
};

static void filter_bufs_free(struct filter_bufs *b)
{
	buf_free(&b->q);
	buf_free(&b->gp);
	buf_free(&b->ids);
}

/* s with LIKE's wildcards escaped, appended to b. */
static void like_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
}

/* The parameters $1..$6 of REPO_FILTER for f, appended to p (text kept in b). Shared by the page, the count,
 * repos_select() and repos_summary(). No number is rendered into p, so a copy of p stays valid. */
/* The LIKE patterns of f's q ("%q%") and group ("group/%"), into b. */
static void filter_patterns(const struct repos_filter *f, struct filter_bufs *b)
{
	if (f->q && *f->q) {
		buf_putc(&b->q, '%');
		like_escape(&b->q, f->q);
		buf_putc(&b->q, '%');
	}
	if (f->group && *f->group) {
		like_escape(&b->gp, f->group);
		buf_puts(&b->gp, "/%");
	}
}

static void filter_params(const struct repos_filter *f, struct filter_bufs *b, struct store_params *p)
{
	bool q = f->q && *f->q, group = f->group && *f->group;
	filter_patterns(f, b);
	store_param_str(p, q ? buf_str(&b->q) : NULL);
	store_param_str(p, group ? f->group : NULL);
	store_param_str(p, group ? buf_str(&b->gp) : NULL);
	store_param_str(p, f->status && *f->status ? f->status : NULL);
	if (f->archived < 0)
		store_param_null(p);
	else
		store_param_bool(p, f->archived);
	if (f->ids)
		store_param_i64_array(p, f->ids, (size_t)f->n_ids, &b->ids);
	else
		store_param_null(p);
}

/* Every filter says which statuses there are (Configure Scans said only "unknown status" to a walk). */
static bool status_ok(const struct repos_filter *f, char *err, size_t errlen)
{
	if (!f->status || !*f->status || known_status(f->status))
		return true;
	snprintf(err, errlen,
	         "unknown status \"%.40s\": expected one of ungated, gated, exception, applying, error, "
	         "hook_disabled, new, archived, pending_deletion, removed, unmanaged",
	         f->status);
	return false;
}

/* The two statements of a page (the rows, then the capped count) of a filter's shape, with their parameters, for
 * repos_list() and repos_explain(). Lives on the caller's stack and is not moved: the parameters point into it. */
struct list_query {
	struct buf page_sql, count_sql;
	char *ckey; /* the cursor's sort key, malloc'd */
	int limit;
	struct filter_bufs bufs, count_bufs;
	struct store_params page, count;
};

/* A numbered parameter "$N" for the next value of p (PostgreSQL's numbering starts at 1). */
static void next_param(struct buf *sql, const struct store_params *p, const char *cast)
{
	buf_printf(sql, "$%d::%s", p->n + 1, cast);
}

/* "<lhs>$N::text AND " with value as that parameter. */
static void text_clause(struct buf *sql, struct store_params *p, const char *lhs, const char *value)
{
	buf_puts(sql, lhs);
	next_param(sql, p, "text");
	store_param_str(p, value);
	buf_puts(sql, " AND ");
}

/*
 * The WHERE clause of a filter's shape: only the filters f has, each a numbered parameter taken from b (what the
 * statement reads with REPO_FILTER, without the tests of absent ones), so that a shape is one fixed text
 * PostgreSQL can prepare. Appends to sql and p.
 */
static void shape_filter(struct buf *sql, const struct repos_filter *f, struct filter_bufs *b, struct store_params *p)
{
	buf_puts(sql, " FROM repo_status_stored WHERE ");
	filter_patterns(f, b);
	if (f->q && *f->q)
		text_clause(sql, p, "path_with_namespace ILIKE ", buf_str(&b->q));
	if (f->group && *f->group)
		text_clause(sql, p, "path_with_namespace COLLATE \"C\" LIKE ", buf_str(&b->gp));
	/* archived and status are written into the text, from fixed lists, so that each value gets its own plan: the
	 * archived repos have a partial index of their own, and statuses are far from equally common */
	if (f->archived >= 0)
		buf_puts(sql, f->archived ? "archived AND " : "NOT archived AND ");
	if (f->ids) {
		buf_puts(sql, "id = ANY(");
		next_param(sql, p, "bigint[]");
		store_param_i64_array(p, f->ids, (size_t)f->n_ids, &b->ids);
		buf_puts(sql, ") AND ");
	}
	const char *status = known_status(f->status ? f->status : "");
	if (status) {
		buf_printf(sql, "status = '%s'", status);
	} else {
		buf_puts(sql, "status <> 'removed'");
	}
}

/* The sort key of a page and its cursor column, by sort ('p' path, 'a' activity). */
#define PATH_KEY     "path_with_namespace COLLATE \"C\""
#define ACTIVITY_KEY "coalesce(last_activity_at, '-infinity'::timestamptz)"

/*
 * The page statement of f's shape, into q->page_sql and q->page: the rows after the cursor (ckey, cid; none on the
 * first page) in the sort's order, q->limit + 1 of them (one extra row tells whether a next page exists).
 */
static void shape_page(struct list_query *q, const struct repos_filter *f, char kind, int64_t cid)
{
	struct buf *sql = &q->page_sql;
	bool desc = f->descending;
	const char *key = kind == 'p' ? PATH_KEY : ACTIVITY_KEY;
	/* a substring (q) is left to a plan made for its value: its trigram index pays for rare text only */
	if (!(f->q && *f->q))
		buf_puts(sql, STORE_PREPARE);
	buf_puts(sql, "SELECT " REPO_COLUMNS ", " SNAPSHOT);
	shape_filter(sql, f, &q->bufs, &q->page);
	if (q->ckey) {
		buf_printf(sql, " AND (%s, id) %s (", key, desc ? "<" : ">");
		if (kind == 'p') {
			next_param(sql, &q->page, "text");
		} else {
			buf_puts(sql, "CASE WHEN ");
			next_param(sql, &q->page, "float8");
			buf_puts(sql, " < -1e300 THEN '-infinity'::timestamptz ELSE to_timestamp(");
			next_param(sql, &q->page, "float8");
			buf_puts(sql, " / 1000000) END"); /* the same parameter twice */
		}
		store_param_str(&q->page, q->ckey);
		buf_puts(sql, ", ");
		next_param(sql, &q->page, "bigint");
		store_param_i64(&q->page, cid);
		buf_puts(sql, ")");
	}
	/* the page size is written into the text (an integer of 2..501, checked above): with a LIMIT parameter the
	 * generic plan is costed for a tenth of the rows, never wins, and every page was planned again */
	buf_printf(sql, " ORDER BY %s%s, id%s LIMIT %d", key, desc ? " DESC" : "", desc ? " DESC" : "", q->limit + 1);
}

/* The count statement of f's shape, into q->count_sql and q->count: it stops reading at REPOS_COUNT_CAP + 1
 * matching rows, so a filter matching 100,000 repos costs no more than one matching 10,001, and says which snapshot
 * it counted in (the count cache). */
#define COUNT_CAP_TEXT_(n) #n
#define COUNT_CAP_TEXT(n)  COUNT_CAP_TEXT_(n)
static void shape_count(struct list_query *q, const struct repos_filter *f)
{
	if (!(f->q && *f->q))
		buf_puts(&q->count_sql, STORE_PREPARE);
	buf_puts(&q->count_sql, "SELECT count(*) AS n, " SNAPSHOT " FROM (SELECT 1");
	shape_filter(&q->count_sql, f, &q->count_bufs, &q->count);
	buf_puts(&q->count_sql, " LIMIT " COUNT_CAP_TEXT(REPOS_COUNT_CAP) " + 1) m");
}

static enum core_status list_query_init(struct list_query *q, const struct repos_filter *f, char *err, size_t errlen)
{
	memset(q, 0, sizeof(*q));
	if (!status_ok(f, err, errlen))
		return CORE_EINVAL;
	char kind = f->sort == REPOS_SORT_ACTIVITY ? 'a' : 'p';
	int64_t cid = 0;
	if (f->cursor && *f->cursor && !decode_cursor(f->cursor, kind, &q->ckey, &cid)) {
		snprintf(err, errlen, "the cursor is not valid for this sort; start again without it");
		return CORE_EINVAL;
	}
	q->limit = f->limit <= 0 ? ROWS_LIMIT_DEFAULT : f->limit > 500 ? 500 : f->limit;
	shape_page(q, f, kind, cid);
	shape_count(q, f);
	return CORE_OK;
}

static void list_query_free(struct list_query *q)
{
	filter_bufs_free(&q->bufs);
	filter_bufs_free(&q->count_bufs);
	buf_free(&q->page_sql);
	buf_free(&q->count_sql);
	free(q->ckey);
}

/*
 * The count cache. Counting up to 10,001 matching rows for every page of a filter cost more than the page itself,
 * and paging through a filter counts the same rows again on every page. A count is kept with the snapshot it was
 * counted in (pg_current_snapshot(): xmin, xmax and the transactions in progress), and a page read in the same
 * snapshot - no transaction committed or started writing since - takes it instead of counting: it is exactly what
 * counting again would give. Any commit anywhere in the database moves the snapshot, so under writes the cache
 * simply misses. COUNT_CACHE_SLOTS entries, the oldest replaced; keyed by the filter's parameters.
 */
#define COUNT_CACHE_SLOTS 32
#define COUNT_KEY_MAX     2048

static struct {
	pthread_mutex_t mu;
	struct {
		char key[COUNT_KEY_MAX], snap[256];
		int64_t n;
	} slot[COUNT_CACHE_SLOTS];
	unsigned next;
} count_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The cache key of a count: the database, its statement and parameters; false when it does not fit (not cached). */
static bool count_key(struct store_conn *c, const char *sql, const struct store_params *p, char key[COUNT_KEY_MAX])
{
	PGconn *pg = store_pg(c);
	int w0 = snprintf(key, COUNT_KEY_MAX, "%s:%s/%s\x1d%s\x1d", PQhost(pg) ? PQhost(pg) : "",
	                  PQport(pg) ? PQport(pg) : "", PQdb(pg) ? PQdb(pg) : "", sql);
	if (w0 < 0 || w0 >= COUNT_KEY_MAX)
		return false;
	size_t len = (size_t)w0;
	for (int i = 0; i < p->n; i++) {
		int w =
		    snprintf(key + len, COUNT_KEY_MAX - len, "%s%c", p->v[i] ? p->v[i] : "", p->v[i] ? '\x1f' : '\x1e');
		if (w < 0 || (size_t)w >= COUNT_KEY_MAX - len)
			return false;
		len += (size_t)w;
	}
	return true;
}

static bool count_cached(const char *key, const char *snap, int64_t *n)
{
	bool hit = false;
	pthread_mutex_lock(&count_cache.mu);
	for (int i = 0; i < COUNT_CACHE_SLOTS && !hit; i++)
		if (strcmp(count_cache.slot[i].snap, snap) == 0 && strcmp(count_cache.slot[i].key, key) == 0) {
			*n = count_cache.slot[i].n;
			hit = true;
		}
	pthread_mutex_unlock(&count_cache.mu);
	return hit;
}

static void count_keep(const char *key, const char *snap, int64_t n)
{
	if (!snap || strlen(snap) >= sizeof(count_cache.slot[0].snap))
		return;
	pthread_mutex_lock(&count_cache.mu);
	unsigned i = count_cache.next++ % COUNT_CACHE_SLOTS;
	snprintf(count_cache.slot[i].key, COUNT_KEY_MAX, "%s", key);
	snprintf(count_cache.slot[i].snap, sizeof(count_cache.slot[i].snap), "%s", snap);
	count_cache.slot[i].n = n;
	pthread_mutex_unlock(&count_cache.mu);
}

#define COUNTS_METRIC "mrgate_repo_list_counts_total"

static void describe_counts(void)
{
	metrics_describe(COUNTS_METRIC, "counter",
	                 "repo list counts, by source: counted, or taken from a count made in the same snapshot");
}

/* The filter's count: from the cache when the page was read in the snapshot it was counted in, else counted. */
static enum core_status count_rows(struct store_conn *c, const char *sql, const struct store_params *p,
                                   const char *page_snap, int64_t *n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, describe_counts);
	char key[COUNT_KEY_MAX];
	bool keyed = count_key(c, sql, p, key);
	if (keyed && page_snap && count_cached(key, page_snap, n)) {
		metrics_inc(COUNTS_METRIC, "source=\"cache\"", 1);
		return CORE_OK;
	}
	metrics_inc(COUNTS_METRIC, "source=\"counted\"", 1);
	PGresult *rc = NULL;
	enum core_status st = store_run(c, sql, p, &rc);
	if (st == CORE_OK) {
		*n = store_i64(rc, 0, "n", 0);
		if (keyed)
			count_keep(key, store_str(rc, 0, "snap"), *n);
	}
	PQclear(rc);
	return st;
}

/* The count of q's filter when one is cached for the snapshot snap (counted in it): then *n has it. */
static bool count_known(struct store_conn *c, const struct list_query *q, const char *snap, int64_t *n)
{
	char key[COUNT_KEY_MAX];
	if (!snap || !count_key(c, buf_str(&q->count_sql), &q->count, key) || !count_cached(key, snap, n))
		return false;
	metrics_inc(COUNTS_METRIC, "source=\"cache\"", 1);
	return true;
}

/*
 * The page cache. A page's response text is kept with the snapshot it was read in (the page and its count read in
 * one snapshot, as below), and a read of the same shape and parameters (filter, sort, cursor, page size) whose
 * current snapshot is that one takes it: nothing committed since, so reading again gives the same text. Asking the
 * snapshot is one short statement, sent only when a page of that key is kept. Under writes the snapshot moves with
 * every commit and the cache simply misses; while nothing is written (the dashboards of a team looking at the same
 * list, paging back, the first page of every visit) a page costs that statement instead of the page's rows, their
 * JSON and the count. At most PAGE_CACHE_SLOTS pages and page_cache.max_bytes of text (repos_list_cache_set), the
 * oldest replaced first; a page of more than a quarter of it is not kept.
 */
#define PAGE_CACHE_SLOTS 32

static struct {
	pthread_mutex_t mu;
	size_t max_bytes, bytes;
	struct {
		char key[COUNT_KEY_MAX], snap[256];
		char *body; /* malloc'd; NULL: a free slot */
		size_t len;
	} slot[PAGE_CACHE_SLOTS];
	unsigned next;
} page_cache = {.mu = PTHREAD_MUTEX_INITIALIZER, .max_bytes = REPOS_LIST_CACHE_DEFAULT_BYTES};

#define PAGES_METRIC "mrgate_repo_list_pages_total"

static void describe_pages(void)
{
	metrics_describe(PAGES_METRIC, "counter",
	                 "repo list pages, by source: read from the database, the page cache's text of the same "
	                 "snapshot, or shared: the text another request was reading for the same snapshot");
}

static void slot_drop(unsigned i)
{
	page_cache.bytes -= page_cache.slot[i].len;
	free(page_cache.slot[i].body);
	page_cache.slot[i].body = NULL;
	page_cache.slot[i].len = 0;
}

void repos_list_cache_set(size_t max_bytes)
{
	pthread_mutex_lock(&page_cache.mu);
	page_cache.max_bytes = max_bytes;
	for (unsigned i = 0; i < PAGE_CACHE_SLOTS; i++)
		if (page_cache.slot[i].body)
			slot_drop(i);
	pthread_mutex_unlock(&page_cache.mu);
}

/* Whether a page of key is kept (in any snapshot): only then is the current snapshot worth asking. */
static bool page_kept(const char *key)
{
	bool kept = false;
	pthread_mutex_lock(&page_cache.mu);
	for (unsigned i = 0; i < PAGE_CACHE_SLOTS && !kept; i++)
		kept = page_cache.slot[i].body && strcmp(page_cache.slot[i].key, key) == 0;
	pthread_mutex_unlock(&page_cache.mu);
	return kept;
}

/* The kept text of key read in snapshot snap, copied into b; false when there is none. */
static bool page_cached(const char *key, const char *snap, struct buf *b)
{
	bool hit = false;
	pthread_mutex_lock(&page_cache.mu);
	for (unsigned i = 0; i < PAGE_CACHE_SLOTS && !hit; i++)
		if (page_cache.slot[i].body && strcmp(page_cache.slot[i].snap, snap) == 0 &&
		    strcmp(page_cache.slot[i].key, key) == 0) {
			buf_append(b, page_cache.slot[i].body, page_cache.slot[i].len);
			hit = true;
		}
	pthread_mutex_unlock(&page_cache.mu);
	return hit;
}

/* Keep the text of key read in snapshot snap, in place of key's older one, else of the oldest. */
static void page_keep(const char *key, const char *snap, const char *body, size_t len)
{
	if (!snap || strlen(snap) >= sizeof(page_cache.slot[0].snap))
		return;
	pthread_mutex_lock(&page_cache.mu);
	if (len > page_cache.max_bytes / 4) {
		pthread_mutex_unlock(&page_cache.mu);
		return;
	}
	unsigned at = PAGE_CACHE_SLOTS;
	for (unsigned i = 0; i < PAGE_CACHE_SLOTS && at == PAGE_CACHE_SLOTS; i++)
		if (page_cache.slot[i].body && strcmp(page_cache.slot[i].key, key) == 0)
			at = i;
	if (at == PAGE_CACHE_SLOTS)
		at = page_cache.next++ % PAGE_CACHE_SLOTS;
	if (page_cache.slot[at].body)
		slot_drop(at);
	/* the oldest others go until it fits */
	for (unsigned k = 0; k < PAGE_CACHE_SLOTS && page_cache.bytes + len > page_cache.max_bytes; k++) {
		unsigned i = (page_cache.next + k) % PAGE_CACHE_SLOTS;
		if (page_cache.slot[i].body)
			slot_drop(i);
	}
	char *copy = xmalloc(len);
	memcpy(copy, body, len);
	snprintf(page_cache.slot[at].key, COUNT_KEY_MAX, "%s", key);
	snprintf(page_cache.slot[at].snap, sizeof(page_cache.slot[at].snap), "%s", snap);
	page_cache.slot[at].body = copy;
	page_cache.slot[at].len = len;
	page_cache.bytes += len;
	pthread_mutex_unlock(&page_cache.mu);
}

/*
 * Reads in flight. When the snapshot moves (any commit), every request for a page misses at once: at 100,000 repos
 * 32 connections searching the same text each read the same page, about 700 ms of PostgreSQL CPU each, on two cores.
 * A request that misses while another reads the same page for the same snapshot waits for that read, holding no
 * database connection, and is answered with its text: read at or after the snapshot the request started in, so
 * nothing older than a read of its own would show. When that read fails (or takes over PAGE_FLIGHT_WAIT_SEC) the
 * waiters read for themselves. At most PAGE_FLIGHTS reads are shared at once; further ones are simply read; none
 * while the page cache is off. page_cache.mu guards them.
 */
#define PAGE_FLIGHTS         16
#define PAGE_FLIGHT_WAIT_SEC 60

static struct {
	pthread_once_t once;
	pthread_cond_t done; /* broadcast when a flight ends */
	struct {
		char key[COUNT_KEY_MAX], snap[256];
		bool busy;    /* a read leads this slot */
		unsigned gen; /* reads ended in this slot */
		int waiters;  /* requests waiting for (or still copying) this slot's read; the slot is free at 0 */
		char *body;   /* malloc'd: the text of the read that ended, for its waiters; NULL when it failed */
		size_t len;
	} f[PAGE_FLIGHTS];
} flights = {.once = PTHREAD_ONCE_INIT};

static void flights_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&flights.done, &ca);
	pthread_condattr_destroy(&ca);
}

/*
 * After a miss of key for snapshot snap: the slot of a read of the same page in flight, with its generation in
 * *gen (wait for it with flight_wait); else the slot this request now leads (*gen = -1: end it with flight_end
 * whatever happens); else -1 (not shared).
 */
static int flight_join(const char *key, const char *snap, long *gen)
{
	int free_slot = -1, at = -1;
	*gen = -1;
	if (strlen(snap) >= sizeof(flights.f[0].snap) || strlen(key) >= COUNT_KEY_MAX)
		return -1;
	pthread_once(&flights.once, flights_init);
	pthread_mutex_lock(&page_cache.mu);
	for (int i = 0; i < PAGE_FLIGHTS && at < 0; i++) {
		if (!flights.f[i].busy) {
			if (free_slot < 0 && flights.f[i].waiters == 0)
				free_slot = i;
		} else if (strcmp(flights.f[i].snap, snap) == 0 && strcmp(flights.f[i].key, key) == 0) {
			at = i;
			*gen = flights.f[i].gen;
			flights.f[i].waiters++;
		}
	}
	if (at < 0 && free_slot >= 0 && page_cache.max_bytes > 0) {
		at = free_slot;
		flights.f[at].busy = true;
		snprintf(flights.f[at].key, COUNT_KEY_MAX, "%s", key);
		snprintf(flights.f[at].snap, sizeof(flights.f[at].snap), "%s", snap);
	}
	pthread_mutex_unlock(&page_cache.mu);
	return at;
}

/* Wait for the read in slot i of generation gen to end; its text into b (true), or false when it failed. */
static bool flight_wait(int i, long gen, struct buf *b)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += PAGE_FLIGHT_WAIT_SEC;
	pthread_mutex_lock(&page_cache.mu);
	while (flights.f[i].busy && flights.f[i].gen == (unsigned)gen &&
	       pthread_cond_timedwait(&flights.done, &page_cache.mu, &until) != ETIMEDOUT)
		;
	/* the slot is not reused while it has waiters: an ended read of generation gen left its text here */
	bool got = !flights.f[i].busy && flights.f[i].gen == (unsigned)gen + 1 && flights.f[i].body;
	if (got)
		buf_append(b, flights.f[i].body, flights.f[i].len);
	if (--flights.f[i].waiters == 0) {
		free(flights.f[i].body);
		flights.f[i].body = NULL;
		flights.f[i].len = 0;
	}
	pthread_mutex_unlock(&page_cache.mu);
	return got;
}

/* End the read this request leads in slot i: its text (NULL: it failed) goes to the requests waiting for it. */
static void flight_end(int i, const char *body, size_t len)
{
	pthread_mutex_lock(&page_cache.mu);
	flights.f[i].busy = false;
	flights.f[i].gen++;
	if (flights.f[i].waiters > 0 && body) {
		flights.f[i].body = xmalloc(len);
		memcpy(flights.f[i].body, body, len);
		flights.f[i].len = len;
		pthread_cond_broadcast(&flights.done);
	} else if (flights.f[i].waiters > 0) {
		pthread_cond_broadcast(&flights.done);
	}
	pthread_mutex_unlock(&page_cache.mu);
}

/* The text of key's page from the cache, into b, when it was read in snapshot (NULL or "": the connection's
 * current one, asked only when a page of key is kept). */
static bool page_from_cache(struct store_conn *c, const char *key, const char *snapshot, struct buf *b)
{
	if (snapshot && *snapshot)
		return page_cached(key, snapshot, b);
	PGresult *r = NULL;
	bool hit = page_kept(key) && store_run(c, STORE_PREPARE "SELECT " SNAPSHOT, NULL, &r) == CORE_OK &&
	           page_cached(key, store_str(r, 0, "snap"), b);
	PQclear(r);
	return hit;
}

/* A value PostgreSQL refused in the page statement (CORE_EINVAL): text that is not UTF-8, or a forged cursor. */
static void refused_message(const struct repos_filter *f, char *err, size_t errlen)
{
	snprintf(err, errlen,
	         f->cursor && *f->cursor ? "the cursor is not valid; start again without it"
	                                 : "q and group must be UTF-8 text");
}

/*
 * f with its group as GitLab spells it, into *out (a copy of f; *group owns the spelling, or NULL). GitLab's paths
 * ignore case: ?group=ACME/Web is acme/web's repos, as Configure Scans takes it (a walk listed none where Configure
 * applied to the whole group).
 */
static enum core_status respelt(struct store_conn *c, const struct repos_filter *f, struct repos_filter *out,
                                char **group)
{
	*out = *f;
	*group = NULL;
	if (!f->group || !*f->group || !gateconfig_group_path_valid(f->group))
		return CORE_OK;
	enum core_status st = gateconfig_group_spelling_on(c, f->group, group);
	if (st == CORE_EINVAL)
		return CORE_OK; /* not UTF-8: the page statement says so */
	if (st == CORE_OK)
		out->group = *group;
	return st;
}

enum core_status repos_list_text(struct store *db, const struct repos_filter *f, const char *snapshot, char **body_out,
                                 size_t *len_out, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, describe_pages);
	*body_out = NULL;
	*len_out = 0;
	struct list_query q;
	struct store_conn *c = NULL;
	PGresult *r = NULL;
	struct buf body = {0};
	int64_t n = 0;
	char key[COUNT_KEY_MAX];
	bool keyed = false;
	struct repos_filter spelt;
	char *group = NULL;
	int flight = -1; /* the slot of the read this request leads */
	long gen = -1;
	enum core_status st = list_query_init(&q, f, err, errlen);
	if (st != CORE_OK || (st = store_get(db, &c)) != CORE_OK)
		goto out;
	keyed = count_key(c, buf_str(&q.page_sql), &q.page, key);
	if (keyed && page_from_cache(c, key, snapshot, &body)) {
		metrics_inc(PAGES_METRIC, "source=\"cache\"", 1);
		goto done;
	}
	if (keyed && snapshot && *snapshot && (flight = flight_join(key, snapshot, &gen)) >= 0 && gen >= 0) {
		/* another request reads this page in this snapshot: wait for it without holding a connection */
		store_put(db, c);
		c = NULL;
		bool got = flight_wait(flight, gen, &body);
		flight = -1;
		if (got) {
			metrics_inc(PAGES_METRIC, "source=\"shared\"", 1);
			goto done;
		}
		if ((st = store_get(db, &c)) != CORE_OK)
			goto out;
	}
	metrics_inc(PAGES_METRIC, "source=\"read\"", 1);
	/* the page is kept under the filter as sent (key), and read with the group as GitLab spells it */
	if ((st = respelt(c, f, &spelt, &group)) != CORE_OK)
		goto out;
	if (group && strcmp(group, f->group) != 0) {
		list_query_free(&q);
		if ((st = list_query_init(&q, &spelt, err, errlen)) != CORE_OK)
			goto out;
	}
	/*
	 * The page and its count in one snapshot: read apart, a job committing in between gave "1-75 of 59". A page
	 * read on its own in a snapshot whose count is cached needs nothing more (one statement, the usual case while
	 * nothing is written); otherwise the page is read again with its count in one read-only transaction.
	 */
	st = store_run(c, buf_str(&q.page_sql), &q.page, &r);
	if (st == CORE_OK && PQntuples(r) > 0 && count_known(c, &q, store_str(r, 0, "snap"), &n))
		goto page;
	PQclear(r);
	r = NULL;
	if (st != CORE_OK && st != CORE_EINVAL)
		goto out;
	if ((st = store_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, NULL)) != CORE_OK)
		goto out;
	st = store_run(c, buf_str(&q.page_sql), &q.page, &r);
	if (st == CORE_EINVAL) {
		refused_message(f, err, errlen);
		goto out;
	}
	if (st != CORE_OK ||
	    (st = count_rows(c, buf_str(&q.count_sql), &q.count, PQntuples(r) > 0 ? store_str(r, 0, "snap") : NULL,
	                     &n)) != CORE_OK ||
	    (st = store_commit(c)) != CORE_OK)
		goto out;
page:
	page_text(&body, r, q.limit, f->sort == REPOS_SORT_ACTIVITY ? 'a' : 'p', n);
	/* an empty page says no snapshot, and is not kept */
	if (keyed && PQntuples(r) > 0)
		page_keep(key, store_str(r, 0, "snap"), buf_str(&body), body.len);
done:
	if (flight >= 0) {
		flight_end(flight, buf_str(&body), body.len);
		flight = -1;
	}
	*len_out = body.len;
	*body_out = buf_steal(&body);
out:
	if (flight >= 0)
		flight_end(flight, NULL, 0);
	buf_free(&body);
	PQclear(r);
	store_put(db, c);
	list_query_free(&q);
	free(group);
	return st;
}

enum core_status repos_list(struct store *db, const struct repos_filter *f, struct json_object **out, char *err,
                            size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	enum core_status st = repos_list_text(db, f, NULL, &text, &len, err, errlen);
	if (st == CORE_OK && !(*out = json_tokener_parse(text)))
		st = CORE_EINTERNAL;
	free(text);
	return st;
}

/* EXPLAIN of one statement, its plan lines appended to b. */
static enum core_status explain_into(struct store_conn *c, const char *sql, const struct store_params *p, struct buf *b)
{
	struct buf text = {0};
	PGresult *r = NULL;
	buf_puts(&text, "EXPLAIN ");
	buf_puts(&text, sql);
	enum core_status st = store_run(c, buf_str(&text), p, &r);
	for (int i = 0; st == CORE_OK && i < PQntuples(r); i++) {
		buf_puts(b, PQgetvalue(r, i, 0));
		buf_putc(b, '\n');
	}
	PQclear(r);
	buf_free(&text);
	return st;
}

enum core_status repos_explain(struct store *db, const struct repos_filter *f, char **plan_out, char *err,
                               size_t errlen)
{
	*plan_out = NULL;
	struct list_query q;
	struct store_conn *c = NULL;
	struct buf plan = {0};
	struct repos_filter spelt;
	char *group = NULL;
	memset(&q, 0, sizeof(q));
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK || (st = respelt(c, f, &spelt, &group)) != CORE_OK ||
	    (st = list_query_init(&q, &spelt, err, errlen)) != CORE_OK)
		goto out;
	buf_puts(&plan, "-- page\n");
	if ((st = explain_into(c, buf_str(&q.page_sql), &q.page, &plan)) == CORE_EINVAL) {
		refused_message(f, err, errlen);
		goto out;
	}
	buf_puts(&plan, "-- count\n");
	if (st == CORE_OK && (st = explain_into(c, buf_str(&q.count_sql), &q.count, &plan)) == CORE_OK)
		*plan_out = buf_steal(&plan);
out:
	buf_free(&plan);
	store_put(db, c);
	list_query_free(&q);
	free(group);
	return st;
}

enum core_status repos_select(struct store_conn *c, const struct repos_filter *f, PGresult **res_out, char *err,
                              size_t errlen)
{
	*res_out = NULL;
	if (!status_ok(f, err, errlen))
		return CORE_EINVAL;
	struct filter_bufs bufs = {0};
	struct store_params p = {0};
	filter_params(f, &bufs, &p);
	enum core_status st =
	    store_run(c,
	              "SELECT id, path_with_namespace, status FROM repo_status_stored WHERE" REPO_FILTER
	              " ORDER BY path_with_namespace COLLATE \"C\", id",
	              &p, res_out);
	filter_bufs_free(&bufs);
	return st;
}

/* {"repos": N, "statuses": {...}, "fields": {...}} from the per-status and per-field-value counts. */
static struct json_object *summary_json(const PGresult *rs, const PGresult *rf)
{
	struct json_object *o = jx_object(), *statuses = jx_object(), *fields = jx_object();
	int64_t total = 0;
	for (int i = 0; i < PQntuples(rs); i++) {
		int64_t n = store_i64(rs, i, "n", 0);
		total += n;
		json_object_object_add(statuses, store_str(rs, i, "status"), jx_int(n));
	}
	for (int i = 0; i < PQntuples(rf); i++) {
		const char *key = store_str(rf, i, "key");
		struct json_object *arr = NULL, *e = jx_object();
		if (!json_object_object_get_ex(fields, key, &arr)) {
			arr = jx_array();
			json_object_object_add(fields, key, arr);
		}
		json_object_object_add(e, "value", rows_row(rf, i));
		json_object_object_add(e, "repos", jx_int(store_i64(rf, i, "n", 0)));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "repos", jx_int(total));
	json_object_object_add(o, "statuses", statuses);
	json_object_object_add(o, "fields", fields);
	return o;
}

enum core_status repos_summary(struct store *db, const struct repos_filter *f, struct json_object **out, char *err,
                               size_t errlen)
{
	*out = NULL;
	if (!status_ok(f, err, errlen))
		return CORE_EINVAL;
	struct store_conn *c = NULL;
	PGresult *rs = NULL, *rf = NULL;
	struct filter_bufs bufs = {0};
	struct store_params p = {0};
	struct repos_filter spelt;
	char *group = NULL;
	enum core_status st = store_get(db, &c);
	if (st != CORE_OK || (st = respelt(c, f, &spelt, &group)) != CORE_OK)
		goto out;
	filter_params(&spelt, &bufs, &p);
	/* rf's "j" column is the value itself, read by rows_row */
	if ((st = store_run(c,
	                    "SELECT status, count(*) AS n FROM repo_status_stored WHERE" REPO_FILTER
	                    " GROUP BY status ORDER BY status",
	                    &p, &rs)) != CORE_OK ||
	    (st = store_run(c,
	                    "SELECT f.key, f.value::text AS j, count(*) AS n FROM repo_status_stored"
	                    " CROSS JOIN LATERAL jsonb_each(effective_config) f WHERE" REPO_FILTER
	                    " GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
	                    &p, &rf)) != CORE_OK)
		goto out;
	*out = summary_json(rs, rf);
out:
	PQclear(rs);
	PQclear(rf);
	store_put(db, c);
	filter_bufs_free(&bufs);
	free(group);
	return st;
}

enum core_status repos_get(struct store *db, int64_t id, struct json_object **out)
{
	struct store_params p = {0};
	PGresult *r = NULL;
	*out = NULL;
	store_param_i64(&p, id);
	enum core_status st = store_run1(db, "SELECT " REPO_COLUMNS " FROM repo_status_stored WHERE id = $1", &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0)
		st = CORE_ENOTFOUND;
	if (st == CORE_OK) {
		struct buf b = {0};
		repo_json(&b, r, 0);
		*out = json_tokener_parse(buf_str(&b));
		buf_free(&b);
		if (!*out)
			st = CORE_EINTERNAL;
	}
	PQclear(r);
	return st;
}

enum core_status repos_groups(struct store *db, struct json_object **out)
{
	/* Count repos per namespace once (one scan), then add each namespace to the groups it is in or under:
	 * a join of groups x namespaces, both a few hundred at most, instead of a scan of repos per group. */
	return rows_query_all(db,
	                      "WITH ns AS (SELECT r.namespace_full_path AS path, count(*) AS n,"
	                      "            count(*) FILTER (WHERE coalesce(gs.applied_state, 'off') <> 'off'"
	                      "             AND NOT r.archived AND NOT r.marked_for_deletion) AS gated"
	                      "            FROM repos r LEFT JOIN repo_gitlab_state gs ON gs.repo_id = r.id"
	                      "            WHERE r.removed_at IS NULL GROUP BY r.namespace_full_path)"
	                      " SELECT g.id, g.full_path, g.name, nullif(g.parent_id, 0) AS parent_id,"
	                      "  coalesce(sum(ns.n), 0)::bigint AS repos, coalesce(sum(ns.gated), 0)::bigint AS gated"
	                      " FROM gitlab_groups g LEFT JOIN ns ON ns.path = g.full_path"
	                      "  OR left(ns.path, length(g.full_path) + 1) = g.full_path || '/'"
	                      " WHERE g.removed_at IS NULL"
	                      " GROUP BY g.id, g.full_path, g.name, g.parent_id ORDER BY g.full_path COLLATE \"C\"",
	                      NULL, out);
}

/* One config field's value in words: on/off, a list joined by ", " ("none" when empty), or the text. */
static void value_words(struct json_object *v, struct buf *b)
{
	if (json_object_is_type(v, json_type_boolean)) {
		buf_puts(b, json_object_get_boolean(v) ? "on" : "off");
	} else if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++)
			buf_printf(b, "%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(v, i)));
		if (n == 0)
			buf_puts(b, "none");
	} else if (!v) {
		buf_puts(b, "as inherited"); /* a field a level no longer sets */
	} else {
		for (const char *c = json_object_get_string(v); *c; c++) /* "on_findings" reads "on findings" */
			buf_putc(b, *c == '_' ? ' ' : *c);
	}
}

/* The config fields in the dashboard's order, with the words it uses for them. */
static const struct {
	const char *key, *label;
} labels[] = {{"enabled", "gate"},    {"fail_on", "fail on"},
              {"scans", "scans"},     {"block_merge", "block merge"},
              {"comment", "comment"}, {"ignore_paths", "ignore paths"}};

/* A config's fields in words, in the dashboard's order: "fail on critical; scans secrets, sast"; "no field" (a null
 * field: "as inherited"). */
static void config_words(struct json_object *cfg, struct buf *b)
{
	size_t before = b->len, n = sizeof(labels) / sizeof(labels[0]);
	if (!json_object_is_type(cfg, json_type_object)) {
		buf_puts(b, "no field");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = NULL;
		if (!json_object_object_get_ex(cfg, labels[i].key, &v))
			continue;
		buf_printf(b, "%s%s ", b->len > before ? "; " : "", labels[i].label);
		value_words(v, b);
	}
	json_object_object_foreach(cfg, key, val)
	{
		size_t i = 0;
		while (i < n && strcmp(labels[i].key, key) != 0)
			i++;
		if (i == n) { /* a field of a later version */
			buf_printf(b, "%s%s ", b->len > before ? "; " : "", key);
			value_words(val, b);
		}
	}
	if (b->len == before)
		buf_puts(b, "no field");
}

/* The fields of after that differ from before (a new object; a field after no longer has is null). */
static struct json_object *changed_fields(struct json_object *before, struct json_object *after)
{
	struct json_object *d = jx_object();
	if (json_object_is_type(after, json_type_object)) {
		json_object_object_foreach(after, key, val)
		{
			struct json_object *was = jsonx_get(before, key);
			if (!was || !json_object_equal(was, val))
				json_object_object_add(d, key, json_object_get(val));
		}
	}
	if (json_object_is_type(before, json_type_object)) {
		json_object_object_foreach(before, key, val)
		{
			(void)val;
			if (!jsonx_get(after, key))
				json_object_object_add(d, key, NULL);
		}
	}
	return d;
}

/* "; its own config sets fail on, which applies here" for the fields of changed that own (a repo's own config)
 * sets: an inherited change that does not reach this repository says so. */
static void overridden_words(struct json_object *changed, struct json_object *own, struct buf *b)
{
	size_t n = sizeof(labels) / sizeof(labels[0]), count = 0;
	struct buf which = {0};
	json_object_object_foreach(changed, key, val)
	{
		(void)val;
		if (!jsonx_get(own, key))
			continue;
		const char *label = key;
		for (size_t i = 0; i < n; i++)
			if (strcmp(labels[i].key, key) == 0)
				label = labels[i].label;
		buf_printf(&which, "%s%s", count++ ? ", " : "", label);
	}
	if (count)
		buf_printf(b, "; this repository's own config sets %s, which %s here", buf_str(&which),
		           count == 1 ? "applies" : "apply");
	buf_free(&which);
}

/* "; replaced this repository's own fail on low" for the fields a configure took out of its own config. */
static void replaced_words(struct json_object *sent, struct json_object *own_before, struct json_object *own_after,
                           struct buf *b)
{
	struct json_object *gone = jx_object();
	json_object_object_foreach(sent, key, val)
	{
		(void)val;
		struct json_object *was = jsonx_get(own_before, key);
		if (was && !jsonx_get(own_after, key))
			json_object_object_add(gone, key, json_object_get(was));
	}
	if (json_object_object_length(gone) > 0) {
		buf_puts(b, "; replaced this repository's own ");
		config_words(gone, b);
	}
	json_object_put(gone);
}

/*
 * The message of a history row of the audit log's about configs: what was set, and at which level (a walk read
 * "its own config (exception) set" with no word of what, and no Configure Scans row at all). The row's audit_*
 * columns are read and taken out.
 */
static void audit_words(struct json_object *it)
{
	struct json_object *details = jsonx_get(it, "audit_details"), *own = jsonx_get(it, "audit_own");
	struct json_object *level_cfg = jsonx_get(it, "audit_level_config");
	struct json_object *level_before = jsonx_get(it, "audit_level_before");
	struct json_object *own_before = jsonx_get(it, "audit_own_before");
	struct json_object *own_cfg = jsonx_get(own, "config"), *own_before_cfg = jsonx_get(own_before, "config");
	const char *action = NULL, *target = NULL, *level = NULL;
	int64_t selected = 0;
	bool unmanaged = false;
	jsonx_str(it, "action", &action);
	jsonx_str(it, "audit_target", &target);
	struct buf b = {0};
	if (!action || strncmp(action, "config.", 7) != 0) {
		/* not a config change: no words of its own */
	} else if (strcmp(action, "config.configure") == 0 && jsonx_str(details, "level", &level)) {
		struct json_object *cfg = jsonx_get(details, "config");
		jsonx_int64(details, "selected", &selected);
		if (strcmp(level, "repos") == 0)
			buf_printf(&b, "Configure Scans of %s: ",
			           selected > 1 ? "this repository and others" : "this repository");
		else if (strcmp(level, "group") == 0)
			buf_printf(&b, "Configure Scans of group %s: ", target ? target : "?");
		else
			buf_puts(&b, "Configure Scans of the default config: ");
		if (cfg && json_object_object_length(cfg) > 0)
			config_words(cfg, &b);
		else
			buf_puts(&b, "no field changed");
		if (strcmp(level, "repos") != 0 && cfg)
			replaced_words(cfg, own_before_cfg, own_cfg, &b);
		bool reapply = false;
		if (jsonx_bool(details, "reapply", &reapply) && reapply)
			buf_puts(&b, " (applied again)");
	} else if (strcmp(action, "config.repo.update") == 0 && own) {
		struct json_object *cfg = jsonx_get(own, "config");
		jsonx_bool(own, "unmanaged", &unmanaged);
		buf_puts(&b, unmanaged ? "not managed by mrgate; its own config: " : "its own config: ");
		if (cfg && json_object_object_length(cfg) > 0)
			config_words(cfg, &b);
		else
			buf_puts(&b, "none, it inherits every field");
	} else if (strcmp(action, "config.repo.delete") == 0) {
		buf_puts(&b, "its own config removed: it inherits every field");
	} else if (strcmp(action, "config.group.update") == 0 || strcmp(action, "config.default.update") == 0) {
		/* what changed, not the whole config (a walk read "gate off" about a repository its own config gates)
		 */
		struct json_object *changed = changed_fields(level_before, level_cfg);
		if (strcmp(action, "config.group.update") == 0)
			buf_printf(&b, "group %s's config changed: ", target ? target : "?");
		else
			buf_puts(&b, "the default config changed: ");
		if (json_object_object_length(changed) > 0)
			config_words(changed, &b);
		else
			buf_puts(&b, "no field");
		overridden_words(changed, own_cfg, &b);
		json_object_put(changed);
	} else if (strcmp(action, "config.group.delete") == 0) {
		buf_printf(&b, "group %s's config removed: this repository inherits from above it",
		           target ? target : "?");
	} else if (strcmp(action, "config.import") == 0) {
		buf_puts(&b, "configs imported: the default, the groups' and the repositories' own");
	}
	if (b.len)
		json_object_object_add(it, "message", jx_str(buf_str(&b)));
	buf_free(&b);
	json_object_object_del(it, "audit_details");
	json_object_object_del(it, "audit_own");
	json_object_object_del(it, "audit_level_config");
	json_object_object_del(it, "audit_level_before");
	json_object_object_del(it, "audit_own_before");
	json_object_object_del(it, "audit_target");
}

/* The audit actions that change the config of every repository below their target (a group path or "default"). */
#define INHERITED_ACTIONS "('config.configure', 'config.group.update', 'config.group.delete', 'config.default.update')"

enum core_status repos_history(struct store *db, int64_t id, int limit, struct json_object **out)
{
	*out = NULL;
	PGresult *r = NULL;
	struct store_params p = {0};
	store_param_i64(&p, id);
	store_param_i64(&p, limit < 1 ? 100 : limit > 500 ? 500 : limit);
	enum core_status st = store_run1(
	    db,
	    "SELECT " STORE_TS("h.at") " AS at, h.kind, h.action, h.result, h.message, h.actor,"
	                               " nullif(h.job_id, 0) AS job_id, nullif(h.gate_id, 0) AS gate_id,"
	                               " h.audit_target, h.audit_details, h.audit_own, h.audit_level_config,"
	                               " h.audit_own_before, h.audit_level_before"
	                               " FROM repos r, LATERAL ("
	                               "  SELECT i.finished_at AS at, 'job' AS kind, j.kind AS action, i.result,"
	                               "   i.message, i.job_id, NULL::bigint AS gate_id, j.created_by AS actor,"
	                               "   NULL::text AS audit_target, NULL::jsonb AS audit_details,"
	                               "   NULL::jsonb AS audit_own, NULL::jsonb AS audit_level_config,"
	                               "   NULL::jsonb AS audit_own_before, NULL::jsonb AS audit_level_before"
	                               "  FROM job_items i JOIN jobs j ON j.id = i.job_id"
	                               "  WHERE i.repo_id = r.id AND i.finished_at IS NOT NULL"
	                               "  UNION ALL"
	                               "  SELECT g.created_at, 'gate', 'gate !' || g.mr_iid, g.verdict, g.description,"
	                               "   NULL, g.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	                               "  FROM gate_runs g WHERE g.project_id = r.id"
	                               "  UNION ALL"
	                               "  SELECT a.at, 'audit', a.action, NULL, NULL, NULL, NULL, a.actor, a.target,"
	                               "   a.details, a.after -> 'repos' -> r.path_with_namespace,"
	                               "   CASE WHEN a.target = 'default' THEN a.after -> 'default'"
	                               "    ELSE a.after -> 'groups' -> a.target END,"
	                               "   a.before -> 'repos' -> r.path_with_namespace,"
	                               "   CASE WHEN a.target = 'default' THEN a.before -> 'default'"
	                               "    ELSE a.before -> 'groups' -> a.target END"
	                               "  FROM audit_log a"
	                               "  WHERE a.target = r.id::text OR a.target = r.path_with_namespace"
	                               /* Configure Scans of repositories this one was among (details.repo_ids;
	                                  entries written before it had them: its path in a snapshot) */
	                               "   OR (a.action = 'config.configure' AND a.details ->> 'level' = 'repos'"
	                               "    AND (a.details -> 'repo_ids' @> to_jsonb(r.id)"
	                               "     OR a.before -> 'repos' ? r.path_with_namespace"
	                               "     OR a.after -> 'repos' ? r.path_with_namespace))"
	                               /* the default's and its groups' configs, which it inherits */
	                               "   OR (a.action IN " INHERITED_ACTIONS " AND (a.target = 'default'"
	                               "    OR lower(left(r.path_with_namespace, length(a.target) + 1))"
	                               "     = lower(a.target) || '/'))"
	                               "   OR a.action = 'config.import'"
	                               " ) h WHERE r.id = $1 ORDER BY h.at DESC NULLS LAST LIMIT $2::int",
	    &p, &r);
	if (st == CORE_OK && PQntuples(r) == 0) {
		/* nothing happened yet, or no such repo: tell them apart */
		PGresult *e = NULL;
		struct store_params pid = {0};
		store_param_i64(&pid, id);
		st = store_run1(db, "SELECT 1 FROM repos WHERE id = $1", &pid, &e);
		if (st == CORE_OK && PQntuples(e) == 0)
			st = CORE_ENOTFOUND;
		PQclear(e);
	}
	if (st == CORE_OK) {
		struct json_object *items = rows_all(r);
		for (size_t i = 0; i < json_object_array_length(items); i++)
			audit_words(json_object_array_get_idx(items, i));
		*out = jx_object();
		json_object_object_add(*out, "items", items);
	}
	PQclear(r);
	return st;
}
