/*
 * core/scanrun.h
 *    Running external scanners for the gate: a size-capped temporary tree from a repository archive, a command
 *    with a deadline whose stdout is captured with a cap, and the removal of the tree afterwards.
 *
 * Design: a scanner is a command line configured per scan type (MRGATE_SCANNER_SAST, ...). It runs as
 * `/bin/sh -c '<command> "$@"' mrgate-scan <tree>`: the tree path is its last argument and its working directory,
 * stdin is /dev/null, stdout (the SARIF document) is captured up to a cap, stderr keeps its last bytes for the
 * error message. The environment is built from scratch (PATH, HOME and TMPDIR inside the work directory, LANG,
 * and the MRGATE_SCAN_* variables given by the caller), so the GitLab token or any MRGATE_* setting of the server
 * never reaches a scanner. The child leads its own process group; at the deadline the whole group gets SIGKILL.
 * A tree is made from GitLab's tar.gz archive with libarchive, in this process: only regular files and
 * directories are written (symlinks, hardlinks, devices, FIFOs and sockets are left out, so nothing in the tree
 * points outside it), members with absolute names or ".." are left out, libarchive's secure-extract flags refuse to
 * write through a symlink or "..", no owner is restored and modes become 0644/0755 (the executable bit is kept).
 * More than max_bytes of file content (the sizes the headers declare, and no member may write past its own) or
 * more than max_entries members is CORE_ETOOLARGE at once, so an archive bomb costs at most max_bytes of disk and
 * max_entries inodes. GitLab's archives hold one top-level directory ("<project>-<sha>-<sha>/");
 * scanrun_extract_targz() reports the tree root below it.
 * Threading: functions may run in many threads at once; children are created with fork+execve (only async-signal-
 * safe calls between them) and reaped with waitpid on their own pid, never with a wildcard.
 * Ownership: results are owned by the caller (scanrun_result_clear()); paths are written into caller buffers.
 */
#ifndef MRGATE_CORE_SCANRUN_H
#define MRGATE_CORE_SCANRUN_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCANRUN_PATH_MAX    512
#define SCANRUN_STDERR_TAIL 600
#define SCANRUN_MAX_ENTRIES 200000 /* members of a repository archive the gate unpacks */

/* Milliseconds of CLOCK_MONOTONIC, for deadlines. */
int64_t scanrun_now_ms(void);

struct scanrun_result {
	char *out; /* stdout, NUL-terminated (owned; never NULL after scanrun_command returned CORE_OK) */
	size_t out_len;
	bool out_truncated;                 /* stdout went over max_out: out holds the first max_out bytes */
	int exit_code;                      /* exit status, or 128 + signal */
	bool timed_out;                     /* killed at the deadline */
	char err_tail[SCANRUN_STDERR_TAIL]; /* the last bytes of stderr, control characters replaced by spaces */
};
void scanrun_result_clear(struct scanrun_result *r); /* frees out; the struct may be reused */

/*
 * Run command (a shell command line) on tree (an existing directory) until deadline_ms (scanrun_now_ms() time).
 * extra_env: "NAME=value" strings added to the clean environment (NULL-terminated, may be NULL); home: a
 * directory for HOME and TMPDIR. CORE_OK when the command ran to its end or was killed at the deadline (look at
 * res->timed_out, res->exit_code); CORE_EINTERNAL when it could not be started (fork, pipes), CORE_ENOMEM.
 */
enum core_status scanrun_command(const char *command, const char *tree, const char *home, const char *const *extra_env,
                                 int64_t deadline_ms, size_t max_out, struct scanrun_result *res);

/* A new private directory (mode 0700) under $TMPDIR or /tmp: "<base>/mrgate-gate-XXXXXX". */
enum core_status scanrun_workdir(char *buf, size_t cap);
/* Remove a directory tree (never following symlinks). NULL or "" is fine. */
void scanrun_rmtree(const char *path);

/*
 * Extract a tar.gz held in memory into dir (which must exist and be empty) with at most max_bytes of file content
 * and max_entries members, until deadline_ms (rules above). root_out receives the scan root: dir, or its only
 * top-level directory when the archive holds exactly one. CORE_ETOOLARGE over a cap, CORE_ETIMEOUT at the
 * deadline, CORE_EINVAL when the archive is not a readable tar.gz (err says why), CORE_EINTERNAL when the tree
 * cannot be written, CORE_ENOMEM. On failure dir may hold part of the tree: remove it with scanrun_rmtree().
 */
enum core_status scanrun_extract_targz(const char *data, size_t len, const char *dir, size_t max_bytes,
                                       size_t max_entries, int64_t deadline_ms, char *root_out, size_t root_cap,
                                       char *err, size_t errlen);

#endif
