/*
 * core/scan_report.h
 *    Findings of the built-in secrets scanner written out for `mrgate scan`: JSON lines, text, or a SARIF 2.1.0 log.
 *
 * Design: pure formatting of struct finding values, which never hold a secret (scan_secrets.h: the excerpt is
 * redacted, the title says why a rule matched without quoting the value, the fingerprint is a hash), so no output
 * holds one either.
 *   - JSON lines: one object per finding, {"path","line","rule_id","title","severity","excerpt","fingerprint"}.
 *   - text: "path:line: severity rule_id: title" and the excerpt indented on the next line; a path holding a
 *     control byte, '"' or '\' is quoted as git quotes paths ("x\ny"), and an excerpt's control bytes are
 *     escaped, so a file name cannot forge a line and no terminal escape reaches the terminal.
 *   - SARIF 2.1.0: one run whose tool.driver is mrgate with every built-in rule (id, name, shortDescription,
 *     helpUri = the rule's documented source, defaultConfiguration.level, properties.security-severity); each
 *     result has ruleId and ruleIndex, level, message.text (the title), one location
 *     (artifactLocation.uri, the path percent-encoded as a relative URI; region.startLine and a snippet holding the
 *     redacted excerpt), partialFingerprints {"mrgate/v1": fingerprint} and properties.security-severity. These are
 *     the members core/scan_sarif.c reads, so mrgate's own importer reads the log back to the same rule, path, line
 *     and severity (severity -> security-severity: critical 9.5, high 8.0, medium 5.5, low 2.0; level: error for
 *     critical and high, warning for medium, note for low).
 * Threading: no shared state.
 * Ownership: text is appended to the caller's buf; scan_report_sarif() returns a new json-c tree for the caller to
 * json_object_put().
 */
#ifndef MRGATE_CORE_SCAN_REPORT_H
#define MRGATE_CORE_SCAN_REPORT_H

#include "buf.h"
#include "findings.h"

struct json_object;

/* One JSON object and a newline. */
void scan_report_json_line(struct buf *out, const struct finding *f);
/* Two lines of text: where and what, then the redacted excerpt indented by four spaces (when not empty). */
void scan_report_text(struct buf *out, const struct finding *f);
/* The SARIF 2.1.0 log of l (NULL: no result). */
struct json_object *scan_report_sarif(const struct finding_list *l);
/* Every built-in rule as one JSON object per line: id, title, severity, source, regex, case_insensitive. */
void scan_report_rules(struct buf *out);

#endif
