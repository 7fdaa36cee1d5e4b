/*
 * server/cli_scan.h
 *    `mrgate scan PATH...`: run the built-in secrets scanner over files as if each were added by a merge request.
 *
 * Each PATH is a file or a directory (walked recursively; ".git" directories, symbolic links and files with a NUL
 * byte in their first 8 KiB, which GitLab shows as binary, are skipped). Every file is turned into the diff GitLab
 * sends for a new file (one hunk of '+' lines) and scanned through diff_added_set_add() and scan_secrets_set(), the
 * path the gate takes. One JSON object per finding is printed on stdout (path, line, rule_id, title, severity,
 * excerpt, fingerprint); the title says why the rule matched; neither it nor the excerpt holds the secret.
 * Returns the exit code: 0 no finding, 1 findings, 2 bad usage or an unreadable file (named on stderr).
 */
#ifndef MRGATE_SERVER_CLI_SCAN_H
#define MRGATE_SERVER_CLI_SCAN_H

int cli_scan(int argc, char **argv);

#endif
