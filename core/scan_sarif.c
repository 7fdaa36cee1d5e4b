/*
 * core/scan_sarif.c
 *    SARIF 2.1.0 to findings, filtered to added lines. See scan_sarif.h.
 *
 * Every member is read through a typed getter that returns NULL (or false) when the member is absent or of
 * another type; "absent" and "wrong type" are told apart only where the difference matters (a wrong-typed member
 * makes the result invalid, an absent optional one does not).
 */
#include "scan_sarif.h"

#include "json_util.h"
#include "xalloc.h"

#include <ctype.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum member { M_ABSENT, M_OK, M_WRONG };

/* obj[key] when it has type t: M_OK and *v; M_ABSENT when missing or JSON null; M_WRONG otherwise. */
static enum member get_typed(struct json_object *obj, const char *key, enum json_type t, struct json_object **v)
{
	struct json_object *x = NULL;
	*v = NULL;
	if (!obj || !json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &x) ||
	    json_object_is_type(x, json_type_null))
		return M_ABSENT;
	if (!json_object_is_type(x, t))
		return M_WRONG;
	*v = x;
	return M_OK;
}

static struct json_object *get_obj(struct json_object *o, const char *k)
{
	struct json_object *v;
	return get_typed(o, k, json_type_object, &v) == M_OK ? v : NULL;
}

static const char *get_str(struct json_object *o, const char *k)
{
	struct json_object *v;
	return get_typed(o, k, json_type_string, &v) == M_OK ? json_object_get_string(v) : NULL;
}

enum severity scan_sarif_severity_from_score(double score)
{
	if (score >= 9.0)
		return SEV_CRITICAL;
	if (score >= 7.0)
		return SEV_HIGH;
	if (score >= 4.0)
		return SEV_MEDIUM;
	return SEV_LOW;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum core_status scan_sarif_uri_to_path(const char *uri, const char *root, char *buf, size_t bufsz)
{
	if (!uri || !buf || bufsz == 0)
		return CORE_EINVAL;
	if (strncasecmp(uri, "file://", 7) == 0)
		uri += 7;
	size_t n = 0;
	for (const char *p = uri; *p; p++) {
		char c = *p;
		if (c == '%') {
			int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return CORE_EINVAL;
			c = (char)(h * 16 + l);
			p += 2;
		}
		if (n + 1 >= bufsz)
			return CORE_ETOOLARGE;
		buf[n++] = c;
	}
	buf[n] = '\0';
	/* Under the scanned root: make it relative. */
	if (root && *root) {
		size_t rl = strlen(root);
		while (rl > 1 && root[rl - 1] == '/')
			rl--;
		if (n > rl && memcmp(buf, root, rl) == 0 && buf[rl] == '/') {
			memmove(buf, buf + rl + 1, n - rl);
			n -= rl + 1;
		}
	}
	size_t skip = 0;
	while (n - skip >= 2 && buf[skip] == '.' && buf[skip + 1] == '/') {
		skip += 2;
		while (skip < n && buf[skip] == '/')
			skip++;
	}
	if (skip) {
		memmove(buf, buf + skip, n - skip + 1);
		n -= skip;
	}
	return n ? CORE_OK : CORE_EINVAL;
}

/* A security-severity score from properties: number or numeric string in [0, 10]. */
static bool score_of(struct json_object *props, double *out)
{
	struct json_object *v;
	if (!props || !json_object_is_type(props, json_type_object) ||
	    !json_object_object_get_ex(props, "security-severity", &v))
		return false;
	double d;
	if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) {
		d = json_object_get_double(v);
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		char *end;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			return false;
		d = strtod(s, &end);
		while (isspace((unsigned char)*end))
			end++;
		if (*end)
			return false;
	} else {
		return false;
	}
	if (!isfinite(d) || d < 0 || d > 10)
		return false;
	*out = d;
	return true;
}

static bool level_severity(const char *level, enum severity *out)
{
	if (!level)
		return false;
	if (strcmp(level, "error") == 0)
		*out = SEV_HIGH;
	else if (strcmp(level, "warning") == 0)
		*out = SEV_MEDIUM;
	else if (strcmp(level, "note") == 0 || strcmp(level, "none") == 0)
		*out = SEV_LOW;
	else
		return false;
	return true;
}

/* Copy s into buf (bufsz), control characters as spaces, cut on a UTF-8 boundary at max bytes. */
static void one_line(char *buf, size_t bufsz, const char *s, size_t len, size_t max)
{
	if (max > bufsz - 1)
		max = bufsz - 1;
	size_t n = findings_utf8_cut(s, len, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	buf[n] = '\0';
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Fingerprint from a {string: string} object, keys sorted; false when it has no string member. Wrong-typed
 * members are ignored.
 */
static bool fingerprint_from_object(char fp[FINDING_FINGERPRINT_LEN + 1], const char *rule, const char *path,
                                    struct json_object *obj)
{
	if (!obj)
		return false;
	size_t n = 0, cap = (size_t)json_object_object_length(obj);
	if (cap == 0 || cap > 1000)
		return false;
	const char **keys = xcalloc(cap, sizeof(*keys));
	json_object_object_foreach(obj, k, v)
	{
		if (json_object_is_type(v, json_type_string) && n < cap)
			keys[n++] = k;
	}
	if (n == 0) {
		free(keys);
		return false;
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	size_t np = 2 + 2 * n;
	const char **parts = xcalloc(np, sizeof(*parts));
	size_t *lens = xcalloc(np, sizeof(*lens));
	parts[0] = rule;
	lens[0] = strlen(rule);
	parts[1] = path;
	lens[1] = strlen(path);
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = NULL;
		json_object_object_get_ex(obj, keys[i], &v);
		parts[2 + 2 * i] = keys[i];
		lens[2 + 2 * i] = strlen(keys[i]);
		parts[3 + 2 * i] = json_object_get_string(v);
		lens[3 + 2 * i] = (size_t)json_object_get_string_len(v);
	}
	findings_fingerprint(fp, parts, lens, np);
	free(keys);
	free(parts);
	free(lens);
	return true;
}

struct run_ctx {
	const struct scan_sarif_options *opt;
	struct json_object *rules;     /* array or NULL */
	struct json_object *artifacts; /* array or NULL */
	struct finding_list *out;
	struct scan_sarif_stats *st;
};

/* The rule object of a result, or NULL. *bad is set when a reference has the wrong type. */
static struct json_object *find_rule(const struct run_ctx *rc, struct json_object *res, const char *rule_id, bool *bad)
{
	struct json_object *v, *ref = get_obj(res, "rule");
	int64_t idx = -1;
	enum member m = get_typed(res, "ruleIndex", json_type_int, &v);
	if (m == M_WRONG)
		*bad = true;
	else if (m == M_OK)
		idx = json_object_get_int64(v);
	if (idx < 0 && ref && get_typed(ref, "index", json_type_int, &v) == M_OK)
		idx = json_object_get_int64(v);
	if (!rc->rules)
		return NULL;
	size_t n = json_object_array_length(rc->rules);
	if (idx >= 0 && (uint64_t)idx < n) {
		struct json_object *r = json_object_array_get_idx(rc->rules, (size_t)idx);
		if (json_object_is_type(r, json_type_object))
			return r;
	}
	if (!rule_id)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(rc->rules, i);
		const char *id = get_str(r, "id");
		if (id && strcmp(id, rule_id) == 0)
			return r;
	}
	return NULL;
}

/* kind and suppressions: true when the result is not an open problem. */
static bool not_a_problem(struct json_object *res, bool *bad)
{
	struct json_object *v;
	enum member m = get_typed(res, "kind", json_type_string, &v);
	if (m == M_WRONG) {
		*bad = true;
		return true;
	}
	if (m == M_OK) {
		const char *k = json_object_get_string(v);
		if (strcmp(k, "fail") != 0 && strcmp(k, "open") != 0 && strcmp(k, "review") != 0)
			return true;
	}
	m = get_typed(res, "suppressions", json_type_array, &v);
	if (m == M_WRONG) {
		*bad = true;
		return true;
	}
	if (m == M_OK) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++) {
			struct json_object *s = json_object_array_get_idx(v, i), *stv;
			if (!json_object_is_type(s, json_type_object))
				continue;
			enum member sm = get_typed(s, "status", json_type_string, &stv);
			if (sm == M_ABSENT || (sm == M_OK && strcmp(json_object_get_string(stv), "accepted") == 0))
				return true;
		}
	}
	return false;
}

/* uri and startLine of the first location. 0: found, 1: none, -1: wrong types. */
static int first_location(const struct run_ctx *rc, struct json_object *res, const char **uri, long *line)
{
	struct json_object *locs, *v;
	enum member m = get_typed(res, "locations", json_type_array, &locs);
	if (m == M_WRONG)
		return -1;
	if (m == M_ABSENT || json_object_array_length(locs) == 0)
		return 1;
	struct json_object *loc = json_object_array_get_idx(locs, 0);
	if (!json_object_is_type(loc, json_type_object))
		return -1;
	struct json_object *phys, *art, *region;
	if ((m = get_typed(loc, "physicalLocation", json_type_object, &phys)) != M_OK)
		return m == M_WRONG ? -1 : 1;
	if ((m = get_typed(phys, "artifactLocation", json_type_object, &art)) != M_OK)
		return m == M_WRONG ? -1 : 1;
	m = get_typed(art, "uri", json_type_string, &v);
	if (m == M_WRONG)
		return -1;
	*uri = m == M_OK ? json_object_get_string(v) : NULL;
	if (!*uri) {
		/* artifactLocation.index into run.artifacts[] */
		if ((m = get_typed(art, "index", json_type_int, &v)) != M_OK)
			return m == M_WRONG ? -1 : 1;
		int64_t i = json_object_get_int64(v);
		if (!rc->artifacts || i < 0 || (uint64_t)i >= json_object_array_length(rc->artifacts))
			return -1;
		struct json_object *a = json_object_array_get_idx(rc->artifacts, (size_t)i);
		*uri = get_str(get_obj(a, "location"), "uri");
		if (!*uri)
			return -1;
	}
	if ((m = get_typed(phys, "region", json_type_object, &region)) != M_OK)
		return m == M_WRONG ? -1 : 1;
	if ((m = get_typed(region, "startLine", json_type_int, &v)) != M_OK)
		return m == M_WRONG ? -1 : 1;
	int64_t l = json_object_get_int64(v);
	if (l < 1 || l > INT_MAX)
		return -1;
	*line = (long)l;
	return 0;
}

static enum core_status do_result(const struct run_ctx *rc, struct json_object *res)
{
	struct scan_sarif_stats *st = rc->st;
	bool bad = false;
	st->results++;
	if (!json_object_is_type(res, json_type_object)) {
		st->invalid++;
		return CORE_OK;
	}
	if (not_a_problem(res, &bad)) {
		if (bad)
			st->invalid++;
		else
			st->skipped++;
		return CORE_OK;
	}
	struct json_object *v;
	const char *rule_id = NULL;
	enum member m = get_typed(res, "ruleId", json_type_string, &v);
	if (m == M_WRONG) {
		st->invalid++;
		return CORE_OK;
	}
	if (m == M_OK)
		rule_id = json_object_get_string(v);
	if (!rule_id)
		rule_id = get_str(get_obj(res, "rule"), "id");
	struct json_object *rule = find_rule(rc, res, rule_id, &bad);
	if (bad) {
		st->invalid++;
		return CORE_OK;
	}
	if (!rule_id)
		rule_id = get_str(rule, "id");
	if (!rule_id)
		rule_id = "unknown";

	const char *uri = NULL;
	long line = 0;
	int lr = first_location(rc, res, &uri, &line);
	if (lr < 0) {
		st->invalid++;
		return CORE_OK;
	}
	if (lr > 0) {
		st->no_location++;
		return CORE_OK;
	}
	char path[DIFF_PATH_MAX + 1];
	enum core_status s = scan_sarif_uri_to_path(uri, rc->opt->root, path, sizeof(path));
	if (s != CORE_OK) {
		st->invalid++;
		return CORE_OK;
	}
	const struct diff_line *dl = diff_added_find(diff_added_set_get(rc->opt->added, path), line);
	if (!dl) {
		st->not_added++;
		return CORE_OK;
	}

	/* Severity: a score, else a level, else warning. */
	enum severity sev = SEV_MEDIUM;
	double score;
	struct json_object *dc = get_obj(rule, "defaultConfiguration");
	if (score_of(get_obj(res, "properties"), &score) || score_of(get_obj(rule, "properties"), &score))
		sev = scan_sarif_severity_from_score(score);
	else if (!level_severity(get_str(res, "level"), &sev))
		level_severity(get_str(dc, "level"), &sev);

	const char *title = get_str(get_obj(res, "message"), "text");
	if (!title)
		title = get_str(get_obj(rule, "shortDescription"), "text");
	if (!title)
		title = get_str(rule, "name");
	if (!title)
		title = rule_id;
	char tbuf[SCAN_SARIF_TITLE_MAX + 1], ebuf[SCAN_SARIF_EXCERPT_MAX + 1];
	one_line(tbuf, sizeof(tbuf), title, strlen(title), SCAN_SARIF_TITLE_MAX);
	if (strcmp(rc->opt->scan_type, "secrets") == 0) {
		ebuf[0] = '\0';
	} else {
		size_t b = 0;
		while (b < dl->len && (dl->text[b] == ' ' || dl->text[b] == '\t'))
			b++;
		one_line(ebuf, sizeof(ebuf), dl->text + b, dl->len - b, SCAN_SARIF_EXCERPT_MAX);
	}

	struct finding f = finding_make(rc->opt->scan_type, rule_id, tbuf, sev, path, line, ebuf);
	if (!fingerprint_from_object(f.fingerprint, rule_id, path, get_obj(res, "partialFingerprints")) &&
	    !fingerprint_from_object(f.fingerprint, rule_id, path, get_obj(res, "fingerprints"))) {
		const char *parts[3] = {rule_id, path, dl->text};
		size_t lens[3] = {strlen(rule_id), strlen(path), dl->len};
		findings_fingerprint(f.fingerprint, parts, lens, 3);
	}
	s = finding_list_append(rc->out, &f);
	if (s == CORE_OK)
		st->kept++;
	return s;
}

enum core_status scan_sarif_parse(const struct scan_sarif_options *opt, const char *json, size_t len,
                                  struct finding_list *out, struct scan_sarif_stats *stats_out)
{
	struct scan_sarif_stats st = {0};
	if (stats_out)
		*stats_out = st;
	if (!opt || !opt->scan_type || !*opt->scan_type || !opt->added || !out || (!json && len))
		return CORE_EINVAL;
	if (len > SCAN_SARIF_MAX_BYTES)
		return CORE_ETOOLARGE;
	if (len == 0)
		return CORE_EINVAL;

	struct json_object *root = NULL;
	char err[160];
	enum core_status s = json_parse_strict(json, len, &root, err, sizeof(err));
	if (s != CORE_OK) {
		s = s == CORE_ENOMEM ? s : CORE_EINVAL;
		goto out;
	}
	s = CORE_EINVAL;
	if (!json_object_is_type(root, json_type_object))
		goto out;
	struct json_object *v, *runs;
	enum member m = get_typed(root, "version", json_type_string, &v);
	if (m == M_WRONG || (m == M_OK && strncmp(json_object_get_string(v), "2.1.", 4) != 0))
		goto out;
	if (get_typed(root, "runs", json_type_array, &runs) != M_OK)
		goto out;

	s = CORE_OK;
	size_t nruns = json_object_array_length(runs);
	for (size_t r = 0; r < nruns && s == CORE_OK; r++) {
		struct json_object *run = json_object_array_get_idx(runs, r), *results, *rules = NULL, *arts = NULL;
		if (!json_object_is_type(run, json_type_object)) {
			st.invalid++;
			continue;
		}
		m = get_typed(run, "results", json_type_array, &results);
		if (m != M_OK) {
			if (m == M_WRONG)
				st.invalid++;
			continue;
		}
		struct json_object *driver = get_obj(get_obj(run, "tool"), "driver");
		if (get_typed(driver, "rules", json_type_array, &rules) == M_WRONG)
			st.invalid++; /* results are still read, without rule metadata */
		get_typed(run, "artifacts", json_type_array, &arts);
		struct run_ctx rc = {opt, rules, arts, out, &st};
		size_t n = json_object_array_length(results);
		for (size_t i = 0; i < n && s == CORE_OK; i++)
			s = do_result(&rc, json_object_array_get_idx(results, i));
	}
out:
	if (stats_out)
		*stats_out = st;
	json_object_put(root);
	return s;
}
