/*
 * server/cli_scan.h
 *    `mrgate scan`: the gate's built-in secrets scanner, locally, with no database: on files and directory trees as
 *    if a merge request added them, or on the lines a unified diff adds.
 *
 *    mrgate scan [--format json|text|sarif] [--fail-on LEVEL] PATH...
 *    mrgate scan --diff [--format json|text|sarif] [--fail-on LEVEL] FILE|-
 *    mrgate scan --rules
 *
 * Files: each PATH is a file or a directory (walked recursively, in byte order of the names; ".git" directories,
 * symbolic links and files with a NUL byte in their first 8 KiB, which GitLab shows as binary, are skipped). Every
 * file is turned into the diff GitLab sends for a new file (one hunk of '+' lines) and scanned through
 * diff_added_set_add() and scan_secrets_set(), the path the gate takes.
 * --diff: FILE ('-': stdin) is a unified diff of any number of files (`git diff`, `git diff --cached`,
 * `git format-patch`, `diff -ru`; core/patch.h); only the lines it adds are scanned, under their new path and line.
 * Output on stdout, in path order then line order: json (the default) one JSON object per finding (path, line,
 * rule_id, title, severity, excerpt, fingerprint); text two lines per finding; sarif one SARIF 2.1.0 log
 * (core/scan_report.h) of at most FINDINGS_MAX results (stderr says so when more were found; the exit code counts
 * them all). --rules prints the rules as JSON lines (id, title, severity, source, regex,
 * case_insensitive). The secret itself is never printed: excerpts are redacted, titles say why a rule matched.
 * A summary ("mrgate: scanned N files, M findings") and skipped files go to stderr.
 * Exit code: 1 when a finding's severity is at or above --fail-on (critical, high, medium, low or never; default
 * high, the gate's default fail_on), 0 otherwise; 2 on bad usage, an unreadable path or a diff that cannot be read
 * (the reason on stderr), whatever was found.
 * Threading: files (and a diff's files) are scanned by a few threads (core/workpool.h), printed in order by the
 * calling thread.
 */
#ifndef MRGATE_SERVER_CLI_SCAN_H
#define MRGATE_SERVER_CLI_SCAN_H

int cli_scan(int argc, char **argv);

#endif
