/*
 * core/findings.c
 *    Finding lists, severity names, the verdict and the commit-status description. See findings.h.
 */
#include "findings.h"

#include "textsafe.h"
#include "xalloc.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const severity_names[] = {
    [SEV_LOW] = "low", [SEV_MEDIUM] = "medium", [SEV_HIGH] = "high", [SEV_CRITICAL] = "critical"};

enum core_status severity_parse(const char *s, enum severity *sev_out)
{
	if (!s || !sev_out)
		return CORE_EINVAL;
	for (int i = SEV_LOW; i <= SEV_CRITICAL; i++) {
		if (strcasecmp(s, severity_names[i]) == 0) {
			*sev_out = (enum severity)i;
			return CORE_OK;
		}
	}
	return CORE_EINVAL;
}

const char *severity_name(enum severity sev)
{
	if (sev < SEV_LOW || sev > SEV_CRITICAL)
		return "unknown";
	return severity_names[sev];
}

enum core_status fail_on_parse(const char *s, enum fail_on *fail_on_out)
{
	if (!s || !fail_on_out)
		return CORE_EINVAL;
	if (strcasecmp(s, "never") == 0) {
		*fail_on_out = FAIL_ON_NEVER;
		return CORE_OK;
	}
	enum severity sev;
	if (severity_parse(s, &sev) != CORE_OK)
		return CORE_EINVAL;
	*fail_on_out = (enum fail_on)sev;
	return CORE_OK;
}

const char *fail_on_name(enum fail_on f)
{
	if (f == FAIL_ON_NEVER)
		return "never";
	return severity_name((enum severity)f);
}

struct finding_list *finding_list_new(void)
{
	return xcalloc(1, sizeof(struct finding_list));
}

static void finding_clear(struct finding *f)
{
	/* The list owns these strings; they are const only for the callers. */
	free((void *)f->scan_type);
	free((void *)f->rule_id);
	free((void *)f->title);
	free((void *)f->path);
	free((void *)f->excerpt);
}

void finding_list_free(struct finding_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		finding_clear(&l->items[i]);
	free(l->items);
	free(l);
}

size_t findings_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	/* Cutting before byte n is clean unless s[n] continues a sequence; back up over at most 3 of those. */
	for (int k = 0; k < 3 && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; k++)
		n--;
	return n;
}

static char *dup_capped(const char *s)
{
	if (!s)
		s = "";
	size_t len = strnlen(s, FINDINGS_STRING_MAX + 1);
	len = findings_utf8_cut(s, len, FINDINGS_STRING_MAX);
	return xstrndup(s, len);
}

struct finding finding_make(const char *scan_type, const char *rule_id, const char *title, enum severity severity,
                            const char *path, long line, const char *excerpt)
{
	/* in the order of struct finding's fields (findings.h); the fingerprint starts empty */
	return (struct finding){scan_type, rule_id, title, severity, path, line, excerpt, ""};
}

enum core_status finding_list_append(struct finding_list *l, const struct finding *f)
{
	if (!l || !f || f->severity < SEV_LOW || f->severity > SEV_CRITICAL)
		return CORE_EINVAL;
	if (l->count >= FINDINGS_MAX)
		return CORE_ETOOLARGE;
	if (l->count == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		if (ncap > FINDINGS_MAX)
			ncap = FINDINGS_MAX;
		l->items = xrealloc(l->items, ncap * sizeof(*l->items));
		l->cap = ncap;
	}
	struct finding c = {0};
	c.severity = f->severity;
	c.line = f->line < 0 ? 0 : f->line;
	c.scan_type = dup_capped(f->scan_type);
	c.rule_id = dup_capped(f->rule_id);
	c.title = dup_capped(f->title);
	c.path = dup_capped(f->path);
	c.excerpt = dup_capped(f->excerpt);
	size_t fl = strnlen(f->fingerprint, FINDING_FINGERPRINT_LEN);
	memcpy(c.fingerprint, f->fingerprint, fl);
	c.fingerprint[fl] = '\0';
	l->items[l->count++] = c;
	return CORE_OK;
}

void finding_list_remove(struct finding_list *l, size_t i)
{
	if (!l || i >= l->count)
		return;
	finding_clear(&l->items[i]);
	memmove(&l->items[i], &l->items[i + 1], (l->count - i - 1) * sizeof(l->items[0]));
	l->count--;
}

void findings_count(const struct finding_list *l, size_t counts_out[SEV_CRITICAL + 1])
{
	for (int i = 0; i <= SEV_CRITICAL; i++)
		counts_out[i] = 0;
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++) {
		enum severity s = l->items[i].severity;
		if (s >= SEV_LOW && s <= SEV_CRITICAL) {
			counts_out[s]++;
			counts_out[0]++;
		}
	}
}

bool findings_failed(const struct finding_list *l, enum fail_on fail_on)
{
	if (!l || fail_on == FAIL_ON_NEVER)
		return false;
	for (size_t i = 0; i < l->count; i++)
		if ((int)l->items[i].severity >= (int)fail_on)
			return true;
	return false;
}

/* A bounded string builder: appends as much as fits, remembers whether anything was cut. */
struct desc_buf {
	char *buf;
	size_t len, max;
	bool cut;
};

static void desc_put(struct desc_buf *d, const char *s, size_t len)
{
	if (d->cut)
		return;
	size_t room = d->max - d->len;
	if (len > room) {
		len = findings_utf8_cut(s, len, room);
		d->cut = true;
	}
	memcpy(d->buf + d->len, s, len);
	d->len += len;
	d->buf[d->len] = '\0';
}

static void desc_puts(struct desc_buf *d, const char *s)
{
	desc_put(d, s, strlen(s));
}

enum core_status findings_describe(const struct finding_list *l, enum fail_on fail_on, const char *const *notes,
                                   size_t n_notes, char *buf, size_t bufsz)
{
	static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
	if (!buf || bufsz < FINDINGS_DESCRIPTION_MAX + 1 || (n_notes && !notes))
		return CORE_EINVAL;
	size_t counts[SEV_CRITICAL + 1];
	findings_count(l, counts);

	/* The counts and the threshold: at most 4 * "NNNNNN critical, " + tail, well under the limit. */
	char head[192];
	size_t hl = 0;
	if (counts[0] == 0) {
		hl = (size_t)snprintf(head, sizeof(head), "no new findings");
	} else {
		for (int s = SEV_CRITICAL; s >= SEV_LOW; s--) {
			if (!counts[s])
				continue;
			hl += (size_t)snprintf(head + hl, sizeof(head) - hl, "%s%zu %s", hl ? ", " : "", counts[s],
			                       severity_names[s]);
		}
		hl += (size_t)snprintf(head + hl, sizeof(head) - hl, " new finding%s", counts[0] == 1 ? "" : "s");
	}
	if (fail_on == FAIL_ON_NEVER)
		snprintf(head + hl, sizeof(head) - hl, " (report only)");
	else
		snprintf(head + hl, sizeof(head) - hl, " (fails on %s)", fail_on_name(fail_on));

	/* Write up to the limit; when something did not fit, cut again to leave room for the ellipsis. */
	struct desc_buf d = {buf, 0, FINDINGS_DESCRIPTION_MAX, false};
	buf[0] = '\0';
	desc_puts(&d, head);
	for (size_t i = 0; i < n_notes && !d.cut; i++) {
		const char *n = notes[i];
		if (!n || !*n)
			continue;
		desc_puts(&d, "; ");
		const char *end = n + strlen(n);
		for (const char *p = n; *p && !d.cut; p++) {
			/* Control characters become spaces, bidi controls and invisible marks "<U+202E>" (a path in a
			 * note must not turn GitLab's status line around); other bytes are copied and the cut keeps
			 * UTF-8 whole. */
			long cp = 0;
			size_t inv = textsafe_invisible(p, end, &cp);
			if (inv) {
				char shown[16];
				snprintf(shown, sizeof(shown), "<U+%04lX>", cp);
				desc_puts(&d, shown);
				p += inv - 1;
				continue;
			}
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				desc_put(&d, " ", 1);
				continue;
			}
			/* one character whole, so that a cut never splits it */
			size_t len = 1;
			while (p + len < end && ((unsigned char)p[len] & 0xC0) == 0x80 && len < 4)
				len++;
			desc_put(&d, p, len);
			p += len - 1;
		}
	}
	if (d.cut) {
		size_t keep = findings_utf8_cut(buf, d.len, FINDINGS_DESCRIPTION_MAX - (sizeof(ellipsis) - 1));
		memcpy(buf + keep, ellipsis, sizeof(ellipsis)); /* with the NUL */
	}
	return CORE_OK;
}

void findings_fingerprint(char out[FINDING_FINGERPRINT_LEN + 1], const char *const *parts, const size_t *lens,
                          size_t n_parts)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
	static const unsigned char zero = 0;
	crypto_hash_sha256_init(&st);
	for (size_t i = 0; i < n_parts; i++) {
		if (i)
			crypto_hash_sha256_update(&st, &zero, 1);
		crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], lens[i]);
	}
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(out, FINDING_FINGERPRINT_LEN + 1, h, sizeof(h));
}
