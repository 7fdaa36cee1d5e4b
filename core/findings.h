/*
 * core/findings.h
 *    Scan findings, severities, the fail_on threshold, the gate verdict and the commit-status description.
 *
 * Design: every scanner (the built-in secrets scanner, the SARIF importer) appends struct finding values to one
 * struct finding_list; the gate filters the list (ignore_paths, added lines) and asks findings_failed() and
 * findings_describe() for the verdict and the one-line description posted as the GitLab commit status.
 * The numeric values of enum severity and enum fail_on line up (FAIL_ON_HIGH == SEV_HIGH), so "severity >= fail_on"
 * is a plain comparison; FAIL_ON_NEVER (0) is handled apart: it never fails.
 * A finding's fingerprint is a lower-case hex SHA-256 (64 characters) that identifies the same finding across
 * pushes; it never contains or reveals a secret.
 * Threading: no shared state; a finding_list is not locked, use one per thread or lock it yourself.
 * Ownership: every string of a finding inside a finding_list is owned by the list (finding_list_append copies the
 * strings of the finding it is given; the caller keeps its own). Pointers into the list are borrowed and stay valid
 * until the next append or finding_list_free().
 */
#ifndef MRGATE_CORE_FINDINGS_H
#define MRGATE_CORE_FINDINGS_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

enum severity { SEV_LOW = 1, SEV_MEDIUM, SEV_HIGH, SEV_CRITICAL };

/* The config field fail_on: the lowest severity that fails the gate, or never (report only). */
enum fail_on { FAIL_ON_NEVER = 0, FAIL_ON_LOW = SEV_LOW, FAIL_ON_MEDIUM, FAIL_ON_HIGH, FAIL_ON_CRITICAL };

#define FINDING_FINGERPRINT_LEN  64     /* hex characters of a SHA-256 */
#define FINDINGS_MAX             100000 /* findings one list accepts; more is CORE_ETOOLARGE */
#define FINDINGS_STRING_MAX      4096   /* longer strings (title, excerpt, path) are cut on a UTF-8 boundary */
#define FINDINGS_DESCRIPTION_MAX 255    /* GitLab's limit on a commit status description, in bytes */

struct finding {
	const char *scan_type; /* "secrets", "sast", "dependencies", "iac", "license", "malware" */
	const char *rule_id;   /* e.g. "github-pat" or the SARIF ruleId */
	const char *title;     /* one line for humans */
	enum severity severity;
	const char *path;    /* repository-relative path on the MR's head (the diff's new_path) */
	long line;           /* 1-based line in the new file, 0 when unknown */
	const char *excerpt; /* the line with any secret replaced; never the secret; may be "" */
	char fingerprint[FINDING_FINGERPRINT_LEN + 1]; /* lower-case hex, NUL-terminated */
};

struct finding_list {
	struct finding *items;
	size_t count;
	size_t cap;
};

/* "low|medium|high|critical" (case-insensitive). CORE_EINVAL when unknown. */
enum core_status severity_parse(const char *s, enum severity *sev_out);
/* "low", "medium", "high", "critical"; "unknown" for other values. Never NULL. */
const char *severity_name(enum severity sev);

/* "critical|high|medium|low|never" (case-insensitive). CORE_EINVAL when unknown. */
enum core_status fail_on_parse(const char *s, enum fail_on *fail_on_out);
/* "critical", "high", "medium", "low", "never"; "unknown" for other values. Never NULL. */
const char *fail_on_name(enum fail_on f);

/* An empty list, or NULL when out of memory. */
struct finding_list *finding_list_new(void);
/* Frees the list and all its strings. NULL is fine. */
void finding_list_free(struct finding_list *l);
/*
 * Append a deep copy of *f (NULL strings become ""; strings longer than FINDINGS_STRING_MAX are cut on a UTF-8
 * boundary; the fingerprint is copied as is). CORE_EINVAL for a severity out of range or a NULL argument,
 * CORE_ETOOLARGE when the list already holds FINDINGS_MAX findings, CORE_ENOMEM.
 */
enum core_status finding_list_append(struct finding_list *l, const struct finding *f);
/* A finding of these fields with an empty fingerprint (the scanner writes f.fingerprint next); strings borrowed. */
struct finding finding_make(const char *scan_type, const char *rule_id, const char *title, enum severity severity,
                            const char *path, long line, const char *excerpt);
/* Remove the finding at index i (order kept). Out-of-range indexes are ignored. */
void finding_list_remove(struct finding_list *l, size_t i);

/* counts_out[SEV_LOW..SEV_CRITICAL] receive the number of findings per severity; counts_out[0] the total. */
void findings_count(const struct finding_list *l, size_t counts_out[SEV_CRITICAL + 1]);

/* The verdict: true iff some finding has severity >= fail_on. FAIL_ON_NEVER never fails; NULL is no findings. */
bool findings_failed(const struct finding_list *l, enum fail_on fail_on);

/*
 * Write the commit-status description into buf (NUL-terminated, at most FINDINGS_DESCRIPTION_MAX bytes plus the
 * NUL), e.g. "2 high, 1 medium new findings (fails on high)", "no new findings (fails on high)",
 * "1 low new finding (report only)". Each of the n_notes notes (e.g. "sast: no scanner configured") is appended
 * after "; ". Control characters in notes become spaces. When everything does not fit, the text is cut on a UTF-8
 * boundary and ends with "…"; the counts always fit. bufsz must be at least FINDINGS_DESCRIPTION_MAX + 1
 * (CORE_EINVAL otherwise).
 */
enum core_status findings_describe(const struct finding_list *l, enum fail_on fail_on, const char *const *notes,
                                   size_t n_notes, char *buf, size_t bufsz);

/*
 * The longest prefix of s[0..len) that is at most max bytes and does not end inside a UTF-8 sequence; returns its
 * length. Used to cut strings cleanly.
 */
size_t findings_utf8_cut(const char *s, size_t len, size_t max);

/* Hex SHA-256 of the parts joined by a NUL byte, written to out (FINDING_FINGERPRINT_LEN + 1 bytes). */
void findings_fingerprint(char out[FINDING_FINGERPRINT_LEN + 1], const char *const *parts, const size_t *lens,
                          size_t n_parts);

#endif
