/*
 * tests/unit/test_scan_sarif.c
 *    SARIF import: only findings on added lines count, severity mapping, URIs, fingerprints, and malformed input.
 *    Fixtures live in tests/unit/sarif/.
 */
#include "scan_sarif.h"
#include "testlib.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static char *fixture_path(const char *name)
{
	const char *src = getenv("MRGATE_SOURCE_DIR");
	char *p = malloc(4096);
	if (src && *src) {
		snprintf(p, 4096, "%s/tests/unit/sarif/%s", src, name);
	} else {
		/* Run by hand: next to this source file. */
		const char *f = __FILE__, *slash = strrchr(f, '/');
		int dl = slash ? (int)(slash - f) : 1;
		snprintf(p, 4096, "%.*s/sarif/%s", dl, slash ? f : ".", name);
	}
	return p;
}

static char *read_fixture(const char *name, size_t *len)
{
	char *path = fixture_path(name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open fixture %s\n", path);
		free(path);
		return NULL;
	}
	free(path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	fclose(f);
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* The MR: src/app.py adds lines 10-12, src/util.py line 5, "dir with space/x.js" line 2. */
static struct diff_added_set *mr_set(void)
{
	struct diff_added_set *s = diff_added_set_new();
	const char *app = "@@ -1,11 +1,14 @@\n a1\n a2\n a3\n a4\n a5\n a6\n a7\n a8\n a9\n"
	                  "+query = \"SELECT * FROM t WHERE id=\" + request.args[\"id\"]\n+DEBUG = True\n+x = 1 % 2\n"
	                  " a10\n a11\n";
	const char *util = "@@ -4,2 +4,2 @@\n u4\n-old\n+h = hashlib.md5(data)\n";
	const char *js = "@@ -0,0 +1,2 @@\n+// js\n+el.innerHTML = v;\n";
	if (diff_added_set_add(s, "src/app.py", app, strlen(app), false) != CORE_OK ||
	    diff_added_set_add(s, "src/util.py", util, strlen(util), false) != CORE_OK ||
	    diff_added_set_add(s, "dir with space/x.js", js, strlen(js), false) != CORE_OK) {
		diff_added_set_free(s);
		return NULL;
	}
	return s;
}

static const struct finding *at(const struct finding_list *l, const char *rule, const char *path, long line)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].rule_id, rule) == 0 && strcmp(l->items[i].path, path) == 0 &&
		    l->items[i].line == line)
			return &l->items[i];
	return NULL;
}

static void sha_hex(char out[65], const char *const *parts, size_t n)
{
	crypto_hash_sha256_state st;
	unsigned char h[32], z = 0;
	crypto_hash_sha256_init(&st);
	for (size_t i = 0; i < n; i++) {
		if (i)
			crypto_hash_sha256_update(&st, &z, 1);
		crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], strlen(parts[i]));
	}
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(out, 65, h, 32);
}

/* A fixture parsed as scan_type against mr_set() (root: the tree scanners saw): the answer, its stats and findings.
 * list is NULL when the set-up failed; parsed_free releases it all. */
struct parsed {
	struct diff_added_set *set;
	char *json;
	struct finding_list *list;
	struct scan_sarif_stats st;
	enum core_status status;
};

static struct parsed parse_fixture(const char *name, const char *scan_type, const char *root)
{
	struct parsed p = {0};
	size_t len = 0;
	p.set = mr_set();
	p.json = read_fixture(name, &len);
	if (!p.set || !p.json)
		return p;
	p.list = finding_list_new();
	struct scan_sarif_options opt = {scan_type, p.set, root};
	p.status = scan_sarif_parse(&opt, p.json, len, p.list, &p.st);
	return p;
}

static void parsed_free(struct parsed *p)
{
	free(p->json);
	finding_list_free(p->list);
	diff_added_set_free(p->set);
}

/* The fixture name parsed (CORE_OK) results results and kept kept of them, the findings of the list; a failure
 * names the fixture. Returns whether the list is there with kept findings (the test stops otherwise). */
static bool check_parsed(const struct parsed *p, const char *name, long results, long kept)
{
	int failures = testlib_failures;
	CHECK(p->list != NULL);
	CHECK_INT(p->status, CORE_OK);
	CHECK_INT(p->st.results, results);
	CHECK_INT(p->st.kept, kept);
	if (p->list)
		CHECK_INT(p->list->count, kept);
	if (testlib_failures != failures)
		fprintf(stderr, "  in the fixture %s\n", name);
	return p->list && p->list->count == (size_t)kept;
}

static void test_semgrep_fixture(void)
{
	struct parsed p = parse_fixture("semgrep.sarif", "sast", "/work/tree");
	REQUIRE(check_parsed(&p, "semgrep.sarif", 12, 7));
	struct finding_list *l = p.list;
	struct scan_sarif_stats st = p.st;
	CHECK_INT(st.not_added, 1);
	CHECK_INT(st.skipped, 2);
	CHECK_INT(st.no_location, 2);
	CHECK_INT(st.invalid, 0);
	/* Nothing on an unchanged line, nothing passed or suppressed. */
	CHECK(at(l, "py.sqli", "src/app.py", 3) == NULL);
	for (size_t i = 0; i < l->count; i++) {
		CHECK(diff_added_has(p.set, l->items[i].path, l->items[i].line));
		CHECK_STR(l->items[i].scan_type, "sast");
		CHECK_INT(strlen(l->items[i].fingerprint), 64);
	}

	const struct finding *f = at(l, "py.sqli", "src/app.py", 10);
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_CRITICAL); /* rule score 9.1 beats level warning */
	CHECK_STR(f->title, "Query built from user input");
	CHECK_STR(f->excerpt, "query = \"SELECT * FROM t WHERE id=\" + request.args[\"id\"]");
	char want[65];
	const char *pp[] = {"py.sqli", "src/app.py", "primaryLocationLineHash", "8f1e2c:1"};
	sha_hex(want, pp, 4);
	CHECK_STR(f->fingerprint, want);

	f = at(l, "py.weak-hash", "src/util.py", 5);
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_MEDIUM); /* 5.3 beats level error */
	const char *lp[] = {"py.weak-hash", "src/util.py", "h = hashlib.md5(data)"};
	sha_hex(want, lp, 3);
	CHECK_STR(f->fingerprint, want);

	f = at(l, "py.debug", "src/app.py", 11); /* file:///work/tree/ stripped */
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_HIGH); /* rule defaultConfiguration error */

	f = at(l, "py.style", "src/app.py", 12); /* src%2Fapp.py */
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_MEDIUM);

	f = at(l, "py.style", "dir with space/x.js", 2);
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_MEDIUM); /* no level anywhere: warning */
	CHECK_STR(f->title, "py.style");

	f = at(l, "py.custom", "src/app.py", 10);
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_HIGH); /* the result's own score 7.0 beats level note */

	f = at(l, "py.bad-score", "src/util.py", 5);
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_LOW); /* "high" is no score: the rule's level note */

	parsed_free(&p);
}

static void test_codeql_fixture(void)
{
	struct parsed p = parse_fixture("codeql.sarif", "sast", NULL);
	REQUIRE(check_parsed(&p, "codeql.sarif", 3, 3));
	struct finding_list *l = p.list;
	const struct finding *f = at(l, "js/xss", "src/util.py", 5); /* rule.index and artifacts[] */
	REQUIRE(f);
	CHECK_INT(f->severity, SEV_HIGH);
	CHECK_STR(f->title, "xss");
	char want[65];
	const char *pp[] = {"js/xss", "src/util.py", "a", "1", "b", "2"};
	sha_hex(want, pp, 6);
	CHECK_STR(f->fingerprint, want);
	CHECK_STR(l->items[1].rule_id, "js/log-injection");
	CHECK_INT(l->items[1].severity, SEV_MEDIUM); /* 4.0 */
	/* Key order does not change the fingerprint. */
	CHECK_STR(l->items[1].fingerprint, l->items[2].fingerprint);
	parsed_free(&p);
}

static void test_secrets_scan_type_has_no_excerpt(void)
{
	struct parsed p = parse_fixture("codeql.sarif", "secrets", NULL);
	REQUIRE(p.list);
	struct finding_list *l = p.list;
	CHECK_INT(p.status, CORE_OK);
	REQUIRE(l->count == 3);
	for (size_t i = 0; i < l->count; i++)
		CHECK_STR(l->items[i].excerpt, "");
	parsed_free(&p);
}

static void test_malformed_documents(void)
{
	struct diff_added_set *s = mr_set();
	REQUIRE(s);
	static const char *const bad[] = {"trailing.sarif", "truncated.sarif", "not-an-object.sarif",
	                                  "wrong-version.sarif", "runs-not-array.sarif"};
	struct scan_sarif_options opt = {"sast", s, NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len;
		char *json = read_fixture(bad[i], &len);
		REQUIRE(json);
		struct finding_list *l = finding_list_new();
		enum core_status st = scan_sarif_parse(&opt, json, len, l, NULL);
		CHECK_INT(st, CORE_EINVAL);
		if (st != CORE_EINVAL)
			fprintf(stderr, "  %s accepted\n", bad[i]);
		CHECK_INT(l->count, 0);
		free(json);
		finding_list_free(l);
	}
	/* Inline: empty, NUL inside, non-strict JSON, invalid UTF-8, too deep. */
	struct finding_list *l = finding_list_new();
	CHECK_INT(scan_sarif_parse(&opt, "", 0, l, NULL), CORE_EINVAL);
	static const char nul[] = "{\"version\":\"2.1.0\",\"runs\":[]}\0{}";
	CHECK_INT(scan_sarif_parse(&opt, nul, sizeof(nul) - 1, l, NULL), CORE_EINVAL);
	const char *lax = "{\"version\":\"2.1.0\",\"runs\":[],}";
	CHECK_INT(scan_sarif_parse(&opt, lax, strlen(lax), l, NULL), CORE_EINVAL);
	const char *utf = "{\"version\":\"2.1.0\",\"runs\":[],\"x\":\"\xff\xfe\"}";
	CHECK_INT(scan_sarif_parse(&opt, utf, strlen(utf), l, NULL), CORE_EINVAL);
	char deep[400];
	size_t n = 0;
	n += (size_t)snprintf(deep, sizeof(deep), "{\"version\":\"2.1.0\",\"runs\":");
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	for (int i = 0; i < 100; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	CHECK_INT(scan_sarif_parse(&opt, deep, n, l, NULL), CORE_EINVAL);
	/* Trailing whitespace is fine. */
	const char *ws = "{\"version\":\"2.1.0\",\"runs\":[]}\n\n  ";
	CHECK_INT(scan_sarif_parse(&opt, ws, strlen(ws), l, NULL), CORE_OK);
	/* The size cap is checked on the length before anything is read. */
	CHECK_INT(scan_sarif_parse(&opt, "{}", (size_t)SCAN_SARIF_MAX_BYTES + 1, l, NULL), CORE_ETOOLARGE);
	/* Options. */
	struct scan_sarif_options none = {NULL, s, NULL}, noset = {"sast", NULL, NULL};
	CHECK_INT(scan_sarif_parse(&none, ws, strlen(ws), l, NULL), CORE_EINVAL);
	CHECK_INT(scan_sarif_parse(&noset, ws, strlen(ws), l, NULL), CORE_EINVAL);
	CHECK_INT(scan_sarif_parse(&opt, ws, strlen(ws), NULL, NULL), CORE_EINVAL);
	CHECK_INT(l->count, 0);
	finding_list_free(l);
	diff_added_set_free(s);
}

static void test_wrong_types(void)
{
	struct parsed p = parse_fixture("wrong-types.sarif", "sast", NULL);
	REQUIRE(check_parsed(&p, "wrong-types.sarif", 12, 1));
	struct finding_list *l = p.list;
	CHECK_INT(p.st.invalid, 3 + 11); /* three bad runs (or rules), eleven bad results */
	/* Wrong-typed optional members fall back: title from the rule id, level warning, line-text fingerprint. */
	CHECK_STR(l->items[0].rule_id, "ok");
	CHECK_STR(l->items[0].title, "ok");
	CHECK_INT(l->items[0].severity, SEV_MEDIUM);
	parsed_free(&p);
}

static void test_severity_from_score(void)
{
	CHECK_INT(scan_sarif_severity_from_score(10.0), SEV_CRITICAL);
	CHECK_INT(scan_sarif_severity_from_score(9.0), SEV_CRITICAL);
	CHECK_INT(scan_sarif_severity_from_score(8.99), SEV_HIGH);
	CHECK_INT(scan_sarif_severity_from_score(7.0), SEV_HIGH);
	CHECK_INT(scan_sarif_severity_from_score(6.9), SEV_MEDIUM);
	CHECK_INT(scan_sarif_severity_from_score(4.0), SEV_MEDIUM);
	CHECK_INT(scan_sarif_severity_from_score(3.9), SEV_LOW);
	CHECK_INT(scan_sarif_severity_from_score(0.0), SEV_LOW);
}

static void test_level_mapping(void)
{
	/* One result per level, with no score anywhere. */
	struct diff_added_set *s = mr_set();
	REQUIRE(s);
	static const struct {
		const char *level;
		enum severity sev;
	} cases[] = {
	    {"error", SEV_HIGH}, {"warning", SEV_MEDIUM}, {"note", SEV_LOW}, {"none", SEV_LOW}, {"bogus", SEV_MEDIUM}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[512];
		int n = snprintf(json, sizeof(json),
		                 "{\"version\":\"2.1.0\",\"runs\":[{\"results\":[{\"ruleId\":\"r\",\"level\":\"%s\","
		                 "\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\"src/app.py\"},"
		                 "\"region\":{\"startLine\":12}}}]}]}]}",
		                 cases[i].level);
		struct finding_list *l = finding_list_new();
		struct scan_sarif_options opt = {"iac", s, NULL};
		CHECK_INT(scan_sarif_parse(&opt, json, (size_t)n, l, NULL), CORE_OK);
		REQUIRE(l->count == 1);
		CHECK_INT(l->items[0].severity, cases[i].sev);
		CHECK_STR(l->items[0].scan_type, "iac");
		finding_list_free(l);
	}
	diff_added_set_free(s);
}

static void test_uri_to_path(void)
{
	char buf[64];
	CHECK_INT(scan_sarif_uri_to_path("src/a.c", NULL, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "src/a.c");
	CHECK_INT(scan_sarif_uri_to_path("./src/a.c", NULL, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "src/a.c");
	CHECK_INT(scan_sarif_uri_to_path("././src/a.c", NULL, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "src/a.c");
	CHECK_INT(scan_sarif_uri_to_path("file:///tmp/t/src/a.c", "/tmp/t/", buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "src/a.c");
	CHECK_INT(scan_sarif_uri_to_path("file:///tmp/tx/a.c", "/tmp/t", buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "/tmp/tx/a.c");
	CHECK_INT(scan_sarif_uri_to_path("src%2Fa%2ec", NULL, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "src/a.c");
	CHECK_INT(scan_sarif_uri_to_path("a%2", NULL, buf, sizeof(buf)), CORE_EINVAL);
	CHECK_INT(scan_sarif_uri_to_path("a%00b", NULL, buf, sizeof(buf)), CORE_EINVAL);
	CHECK_INT(scan_sarif_uri_to_path("./", NULL, buf, sizeof(buf)), CORE_EINVAL);
	char small[4];
	CHECK_INT(scan_sarif_uri_to_path("abcdef", NULL, small, sizeof(small)), CORE_ETOOLARGE);
}

int main(void)
{
	RUN(test_semgrep_fixture);
	RUN(test_codeql_fixture);
	RUN(test_secrets_scan_type_has_no_excerpt);
	RUN(test_malformed_documents);
	RUN(test_wrong_types);
	RUN(test_severity_from_score);
	RUN(test_level_mapping);
	RUN(test_uri_to_path);
	return testlib_done();
}
