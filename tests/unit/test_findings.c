/*
 * tests/unit/test_findings.c
 *    Severity and fail_on names, finding lists, the verdict and the commit-status description.
 */
#include "findings.h"
#include "testlib.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static void add(struct finding_list *l, enum severity sev, const char *rule)
{
	struct finding f = finding_make("sast", rule, "t", sev, "a.c", 3, "x");
	CHECK_INT(finding_list_append(l, &f), CORE_OK);
}

static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80             ? 0
		        : (*p & 0xE0) == 0xC0 ? 1
		        : (*p & 0xF0) == 0xE0 ? 2
		        : (*p & 0xF8) == 0xF0 ? 3
		                              : -1;
		if (n < 0)
			return false;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xC0) != 0x80)
				return false;
	}
	return true;
}

static void test_names(void)
{
	enum severity s;
	enum fail_on f;
	CHECK_INT(severity_parse("high", &s), CORE_OK);
	CHECK_INT(s, SEV_HIGH);
	CHECK_INT(severity_parse("CRITICAL", &s), CORE_OK);
	CHECK_INT(s, SEV_CRITICAL);
	CHECK_INT(severity_parse("never", &s), CORE_EINVAL);
	CHECK_INT(severity_parse("", &s), CORE_EINVAL);
	CHECK_INT(severity_parse(NULL, &s), CORE_EINVAL);
	const char *names[] = {"never", "low", "medium", "high", "critical"};
	for (int i = 0; i < 5; i++) {
		CHECK_INT(fail_on_parse(names[i], &f), CORE_OK);
		CHECK_INT(f, i);
		CHECK_STR(fail_on_name(f), names[i]);
	}
	CHECK_INT(fail_on_parse("severe", &f), CORE_EINVAL);
	CHECK_STR(severity_name(SEV_LOW), "low");
	CHECK_STR(severity_name((enum severity)9), "unknown");
	CHECK_STR(fail_on_name((enum fail_on)9), "unknown");
}

static void test_list(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	finding_list_free(NULL);
	struct finding f = {.rule_id = "r", .severity = SEV_LOW, .line = 7};
	memcpy(f.fingerprint, "abc", 4);
	CHECK_INT(finding_list_append(l, &f), CORE_OK); /* NULL strings become "" */
	CHECK_STR(l->items[0].path, "");
	CHECK_STR(l->items[0].rule_id, "r");
	CHECK_STR(l->items[0].fingerprint, "abc");
	f.severity = (enum severity)0;
	CHECK_INT(finding_list_append(l, &f), CORE_EINVAL);
	f.severity = (enum severity)5;
	CHECK_INT(finding_list_append(l, &f), CORE_EINVAL);
	/* The list copies: the caller's buffer may change afterwards. */
	char path[16] = "src/x.c";
	f.severity = SEV_HIGH;
	f.path = path;
	CHECK_INT(finding_list_append(l, &f), CORE_OK);
	path[0] = 'Z';
	CHECK_STR(l->items[1].path, "src/x.c");
	for (int i = 0; i < 100; i++)
		add(l, SEV_MEDIUM, "grow");
	CHECK_INT(l->count, 102);
	finding_list_remove(l, 0);
	CHECK_STR(l->items[0].path, "src/x.c");
	CHECK_INT(l->count, 101);
	finding_list_remove(l, 5000);
	CHECK_INT(l->count, 101);
	/* Long strings are cut on a UTF-8 boundary. */
	char *big = xmalloc(FINDINGS_STRING_MAX + 10);
	REQUIRE(big);
	memset(big, 'a', FINDINGS_STRING_MAX - 1);
	memcpy(big + FINDINGS_STRING_MAX - 1, "\xc3\xa9zzz", 6);
	f.title = big;
	CHECK_INT(finding_list_append(l, &f), CORE_OK);
	CHECK_INT(strlen(l->items[l->count - 1].title), FINDINGS_STRING_MAX - 1);
	free(big);
	finding_list_free(l);
}

static void test_verdict(void)
{
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK(!findings_failed(l, FAIL_ON_LOW));
	CHECK(!findings_failed(NULL, FAIL_ON_LOW));
	add(l, SEV_MEDIUM, "a");
	CHECK(findings_failed(l, FAIL_ON_LOW));
	CHECK(findings_failed(l, FAIL_ON_MEDIUM));
	CHECK(!findings_failed(l, FAIL_ON_HIGH));
	CHECK(!findings_failed(l, FAIL_ON_CRITICAL));
	CHECK(!findings_failed(l, FAIL_ON_NEVER));
	add(l, SEV_CRITICAL, "b");
	CHECK(findings_failed(l, FAIL_ON_CRITICAL));
	CHECK(!findings_failed(l, FAIL_ON_NEVER));
	size_t c[SEV_CRITICAL + 1];
	findings_count(l, c);
	CHECK_INT(c[0], 2);
	CHECK_INT(c[SEV_MEDIUM], 1);
	CHECK_INT(c[SEV_CRITICAL], 1);
	CHECK_INT(c[SEV_HIGH], 0);
	finding_list_free(l);
}

static void test_describe(void)
{
	char buf[FINDINGS_DESCRIPTION_MAX + 1];
	struct finding_list *l = finding_list_new();
	REQUIRE(l);
	CHECK_INT(findings_describe(l, FAIL_ON_HIGH, NULL, 0, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "no new findings (fails on high)");
	add(l, SEV_HIGH, "a");
	CHECK_INT(findings_describe(l, FAIL_ON_HIGH, NULL, 0, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "1 high new finding (fails on high)");
	add(l, SEV_MEDIUM, "b");
	add(l, SEV_HIGH, "c");
	CHECK_INT(findings_describe(l, FAIL_ON_HIGH, NULL, 0, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "2 high, 1 medium new findings (fails on high)");
	add(l, SEV_CRITICAL, "d");
	add(l, SEV_LOW, "e");
	CHECK_INT(findings_describe(l, FAIL_ON_NEVER, NULL, 0, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "1 critical, 2 high, 1 medium, 1 low new findings (report only)");

	const char *notes[] = {"sast: no scanner configured", "", NULL, "iac:\tno\nscanner"};
	CHECK_INT(findings_describe(l, FAIL_ON_LOW, notes, 4, buf, sizeof(buf)), CORE_OK);
	CHECK_STR(buf, "1 critical, 2 high, 1 medium, 1 low new findings (fails on low); sast: no scanner configured; "
	               "iac: no scanner");
	/* Too small a buffer, notes without an array. */
	char small[100];
	CHECK_INT(findings_describe(l, FAIL_ON_LOW, NULL, 0, small, sizeof(small)), CORE_EINVAL);
	CHECK_INT(findings_describe(l, FAIL_ON_LOW, NULL, 1, buf, sizeof(buf)), CORE_EINVAL);
	finding_list_free(l);
}

static void test_describe_truncates(void)
{
	char buf[FINDINGS_DESCRIPTION_MAX + 1];
	/* A note of multi-byte characters that overflows at every possible offset. */
	for (int pad = 0; pad < 4; pad++) {
		char note[800];
		size_t n = 0;
		for (int i = 0; i < pad; i++)
			note[n++] = 'p';
		while (n + 4 < sizeof(note)) {
			memcpy(note + n, "\xe2\x82\xac", 3); /* euro sign */
			n += 3;
		}
		note[n] = '\0';
		const char *notes[] = {note};
		CHECK_INT(findings_describe(NULL, FAIL_ON_HIGH, notes, 1, buf, sizeof(buf)), CORE_OK);
		CHECK(strlen(buf) <= FINDINGS_DESCRIPTION_MAX);
		CHECK(strlen(buf) >= FINDINGS_DESCRIPTION_MAX - 6);
		CHECK(valid_utf8(buf));
		CHECK(strncmp(buf, "no new findings (fails on high); p", 33) == 0);
		size_t bl = strlen(buf);
		CHECK(bl >= 3 && strcmp(buf + bl - 3, "\xe2\x80\xa6") == 0);
	}
	/* Exactly at the limit: no ellipsis. */
	const char *head = "no new findings (fails on high); ";
	char note[FINDINGS_DESCRIPTION_MAX + 1];
	size_t nl = FINDINGS_DESCRIPTION_MAX - strlen(head);
	memset(note, 'n', nl);
	note[nl] = '\0';
	const char *notes[] = {note};
	CHECK_INT(findings_describe(NULL, FAIL_ON_HIGH, notes, 1, buf, sizeof(buf)), CORE_OK);
	CHECK_INT(strlen(buf), FINDINGS_DESCRIPTION_MAX);
	CHECK(buf[FINDINGS_DESCRIPTION_MAX - 1] == 'n');
	/* One more byte: cut, with the ellipsis, still within the limit. */
	char note2[FINDINGS_DESCRIPTION_MAX + 2];
	memset(note2, 'n', nl + 1);
	note2[nl + 1] = '\0';
	notes[0] = note2;
	CHECK_INT(findings_describe(NULL, FAIL_ON_HIGH, notes, 1, buf, sizeof(buf)), CORE_OK);
	CHECK_INT(strlen(buf), FINDINGS_DESCRIPTION_MAX);
	CHECK_STR(buf + FINDINGS_DESCRIPTION_MAX - 3, "\xe2\x80\xa6");
}

static void test_utf8_cut_and_fingerprint(void)
{
	CHECK_INT(findings_utf8_cut("abc", 3, 10), 3);
	CHECK_INT(findings_utf8_cut("ab\xc3\xa9", 4, 3), 2);
	CHECK_INT(findings_utf8_cut("ab\xc3\xa9", 4, 4), 4);
	CHECK_INT(findings_utf8_cut("\xf0\x9f\x98\x80x", 5, 3), 0);
	char a[65], b[65], c[65];
	const char *p1[] = {"rule", "path", "secret"};
	size_t l1[] = {4, 4, 6};
	findings_fingerprint(a, p1, l1, 3);
	CHECK_INT(strlen(a), 64);
	CHECK_STR(
	    a, "e6042959652808d3cd0699a134a454b7e9b931288661fc09f427cd621a4cdf40"); /* sha256 of "rule\0path\0secret" */
	/* The parts are separated: moving a byte across a boundary changes the hash. */
	const char *p2[] = {"rul", "epath", "secret"};
	size_t l2[] = {3, 5, 6};
	findings_fingerprint(b, p2, l2, 3);
	CHECK(strcmp(a, b) != 0);
	findings_fingerprint(c, p1, l1, 3);
	CHECK_STR(a, c);
	for (int i = 0; i < 64; i++)
		CHECK((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
}

int main(void)
{
	RUN(test_names);
	RUN(test_list);
	RUN(test_verdict);
	RUN(test_describe);
	RUN(test_describe_truncates);
	RUN(test_utf8_cut_and_fingerprint);
	return testlib_done();
}
