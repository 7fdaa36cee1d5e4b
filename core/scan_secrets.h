/*
 * core/scan_secrets.h
 *    The built-in secrets scanner: well-known credential formats and private keys on the lines an MR adds.
 *
 * Design: a table of rules (id, title, severity, a POSIX extended regex, which capture group is the secret, and
 * checks: token boundaries, minimum length and Shannon entropy, an allowlist of placeholders such as "EXAMPLE",
 * "xxxx", "changeme", "${VAR}", "<token>" or one repeated character). Only added lines are scanned, so a secret
 * that a commit removes is never reported. The regexes are compiled once, on first use (pthread_once).
 * A private-key rule fires only when key material follows the BEGIN line: on the same line (a JSON "\n"-escaped
 * key, as in GCP service-account files) or, for scan_secrets_added()/_diff(), on the next added lines.
 * The generic rules (generic-password, generic-secret) flag quoted or unquoted values assigned to names such as
 * password, secret, token, api_key, client_secret (also dotted, app.db.password, and XML key="..." value="...")
 * in the forms key = "v", key: v, "key": "v", KEY=v, when the value is long and random enough; they are skipped
 * where a specific rule already matched the same text. password-call-argument flags setPassword("v"),
 * set_password('v'), withPassword("v"), .password("v").
 * Near misses dropped (each unit-tested on its own): placeholders; vendor documentation examples (jwt.io's token,
 * the Azurite key, AWS's EXAMPLE keys); and, for the generic rules, class names ("AbstractTokenResolver"),
 * environment variable names ("DJANGO_SECRET_KEY"), test fixtures ("test_password_123"), identifiers under *_id
 * keys (UUIDs), hashes under *_sha256/digest keys, Stripe test and publishable keys, references (config.password);
 * URLs whose password is a default ("user:password@", "guest:guest@"); PEM headers in code with no key after them.
 * Provider tokens with a documented prefix or shape are found whatever the key is called. Every rule carries its
 * source: the provider's documentation of the format (scan_secrets_rule(i)->source).
 * Each finding carries: scan type "secrets", the rule id, a title that is the rule's title followed by why it
 * matched ("Hard-coded secret or token (rule generic-secret: key name \"client_secret\", value of 40 characters
 * with entropy 4.91 bits per character, at least 3.5 wanted)"; for provider rules the rule, the length and the
 * entropy; a key name that overlaps a secret is not quoted), the severity, the path, the new-file line
 * number, an excerpt of the line in which every secret found on it is replaced by its first few characters,
 * "…" and its length (e.g. token = "ghp_…(40 chars)"), so the excerpt never holds a secret; and the fingerprint,
 * hex SHA-256 of rule id, path and the secret (for a multi-line private key: its key material), which is stable
 * across pushes and line moves and reveals nothing.
 * Threading: all functions may be called from any thread at the same time (the compiled rules are read-only after
 * the one-time initialisation).
 * Ownership: findings are appended to the caller's list; nothing is retained.
 */
#ifndef MRGATE_CORE_SCAN_SECRETS_H
#define MRGATE_CORE_SCAN_SECRETS_H

#include "diff.h"
#include "findings.h"
#include "status.h"

#include <stdbool.h>
#include <stddef.h>

#define SCAN_SECRETS_EXCERPT_MAX 200 /* bytes of excerpt kept around the first secret */

struct scan_secrets_rule_info {
	const char *id;    /* e.g. "github-pat" */
	const char *title; /* e.g. "GitHub personal access token" */
	enum severity severity;
	const char *source; /* where the format is documented: the provider's page (or the RFC), an https URL */
};

/* Compile the rules (done implicitly by every scan). CORE_EINTERNAL when a rule does not compile (a bug). */
enum core_status scan_secrets_init(void);
size_t scan_secrets_rule_count(void);
/* The i-th rule, or NULL when i is out of range (borrowed, static). */
const struct scan_secrets_rule_info *scan_secrets_rule(size_t i);
/*
 * The i-th rule's POSIX extended regex as the table holds it (static), or NULL when i is out of range; *icase_out
 * (optional) says whether it is matched case-insensitively. A regex that starts with '^' is anchored at each place
 * one of the rule's key words occurs, not at the start of the line. The regex only finds candidates: boundaries,
 * length, entropy, the allowlist and the near-miss checks decide what is reported (bench/scan hands these to
 * grep -E to compare).
 */
const char *scan_secrets_rule_regex(size_t i, bool *icase_out);

/*
 * Scan one line (NUL-terminated, without its line end) as if it were added at line_no of path.
 * Findings are appended to out. CORE_EINTERNAL when the rules did not compile; errors of finding_list_append.
 */
enum core_status scan_secrets_line(const char *path, long line_no, const char *text, struct finding_list *out);
/* Scan the added lines of one file (from diff_added_parse() or a diff_added_set). */
enum core_status scan_secrets_added(const char *path, const struct diff_added *added, struct finding_list *out);
/* Parse one file's unified diff (see diff.h, same errors) and scan its added lines. */
enum core_status scan_secrets_diff(const char *path, const char *diff_text, struct finding_list *out);
/* Scan every path of a set. */
enum core_status scan_secrets_set(const struct diff_added_set *set, struct finding_list *out);

/* Shannon entropy of s[0..len) over bytes, in bits per byte (0 for an empty string). Exposed for tests. */
double scan_secrets_entropy(const char *s, size_t len);

#endif
