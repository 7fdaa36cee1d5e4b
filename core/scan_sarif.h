/*
 * core/scan_sarif.h
 *    Import the SARIF 2.1.0 output of an external scanner as findings, keeping only those on added lines.
 *
 * Design: the gate runner runs the configured command on the MR's head tree and hands its output here. The
 * document is parsed strictly (json-c strict mode, UTF-8 validated, nothing but whitespace after the top-level
 * value, at most SCAN_SARIF_MAX_BYTES) and walked defensively: a member of the wrong type never crashes, the
 * result holding it is skipped and counted in stats.invalid. The top-level value must be an object whose "runs" is
 * an array (CORE_EINVAL otherwise); "version", when present, must be "2.1.x".
 * For each runs[].results[] entry:
 *   - results with "kind" other than fail/open/review (pass, notApplicable, informational) and results with an
 *     accepted (or status-less) suppression are skipped (stats.skipped);
 *   - the rule is found by ruleIndex / rule.index, else ruleId / rule.id, in runs[].tool.driver.rules[];
 *   - the location is the first locations[].physicalLocation: artifactLocation.uri (or artifactLocation.index into
 *     runs[].artifacts[]) and region.startLine; the URI loses "file://", a leading `root` + "/" (when given), and
 *     leading "./", and is percent-decoded ("%2F" -> "/"); results without a usable location count in
 *     stats.no_location;
 *   - only results on a line the MR adds (diff_added_has()) are kept; the others count in stats.not_added;
 *   - severity: properties["security-severity"] (number or numeric string, 0-10) of the result, else of the rule:
 *     >= 9 critical, >= 7 high, >= 4 medium, else low; without a score, "level" of the result, else the rule's
 *     defaultConfiguration.level: error -> high, warning -> medium, note/none -> low, absent -> medium;
 *   - title: message.text, else the rule's shortDescription.text, else its name, else the rule id; control
 *     characters become spaces;
 *   - excerpt: the added line's text from the diff (cut to SCAN_SARIF_EXCERPT_MAX bytes), except for scan type
 *     "secrets" where it is empty (a secret scanner's line would hold the secret);
 *   - fingerprint: SHA-256 of rule id, path and the result's partialFingerprints (else fingerprints), sorted by
 *     key; without those, of rule id, path and the added line's text.
 * Threading: no shared state; call from any thread.
 * Ownership: the findings are appended to the caller's list; opt->added is borrowed for the call.
 */
#ifndef MRGATE_CORE_SCAN_SARIF_H
#define MRGATE_CORE_SCAN_SARIF_H

#include "diff.h"
#include "findings.h"
#include "status.h"

#include <stddef.h>

#define SCAN_SARIF_MAX_BYTES   (64u * 1024 * 1024)
#define SCAN_SARIF_MAX_DEPTH   64
#define SCAN_SARIF_EXCERPT_MAX 200
#define SCAN_SARIF_TITLE_MAX   500

struct scan_sarif_options {
	const char *scan_type;              /* "sast", "iac", ...; required */
	const struct diff_added_set *added; /* the MR's added lines; required */
	const char *root;                   /* optional: absolute path of the scanned tree, for file:///abs URIs */
};

struct scan_sarif_stats {
	size_t results;     /* results seen */
	size_t kept;        /* appended as findings */
	size_t not_added;   /* on a line the MR does not add */
	size_t no_location; /* without a path or a start line */
	size_t skipped;     /* kind pass/notApplicable/informational, or suppressed */
	size_t invalid;     /* runs or results with members of the wrong type */
};

/*
 * Parse len bytes of SARIF and append the kept findings to out. stats_out (optional) receives the counts.
 * CORE_ETOOLARGE over SCAN_SARIF_MAX_BYTES (checked before parsing), CORE_EINVAL for a document that is not strict
 * JSON, has trailing bytes or is not a SARIF log; CORE_ETOOLARGE / CORE_ENOMEM from finding_list_append.
 */
enum core_status scan_sarif_parse(const struct scan_sarif_options *opt, const char *json, size_t len,
                                  struct finding_list *out, struct scan_sarif_stats *stats_out);

/* The repository path of a SARIF artifact URI (rules above) into buf. CORE_EINVAL for a bad escape or a NUL,
 * CORE_ETOOLARGE when it does not fit. */
enum core_status scan_sarif_uri_to_path(const char *uri, const char *root, char *buf, size_t bufsz);

/* security-severity score to severity: >= 9 critical, >= 7 high, >= 4 medium, else low. */
enum severity scan_sarif_severity_from_score(double score);

#endif
