/*
 * core/gatebypass.h
 *    Bypassing a failed gate run (DESIGN.md §1.7): an editor accepts the risk of one MR head commit with a reason.
 *
 * Design: gate_bypass() reads the run, checks that it may be bypassed (done, its verdict failed, error or timeout,
 * and still the newest run of its MR: a newer push is gated normally and must be bypassed on its own), claims the
 * run in one short statement (a second bypass at the same time is refused before it reaches GitLab: "being
 * bypassed by another request"; the claim expires after two minutes and is released when GitLab refuses), posts
 * `success` named "mrgate" on the run's head commit with "bypassed by NAME: reason" (cut at a character boundary
 * to GitLab's 255 bytes) into the pipeline the run's verdict was posted to, then records the verdict `bypassed`
 * with who, why and when, and the audit entry `gate.bypass`, in one transaction. No database connection is held
 * while GitLab is called. When GitLab refuses the status nothing is recorded (the caller answers 502 with why);
 * when the record fails after the post, bypassing again posts the same status again (idempotent on GitLab).
 * A reason is 1 to 200 characters of text (no control characters): it is shown on GitLab beside the status.
 * Threading: thread-safe (the struct gitlab is shared).
 * Ownership: strings are borrowed; msg is the caller's buffer.
 */
#ifndef MRGATE_CORE_GATEBYPASS_H
#define MRGATE_CORE_GATEBYPASS_H

#include "gitlab.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATE_BYPASS_REASON_MAX 200 /* characters */

/* SQL: whether the repo of a run is gated now (its effective config enabled and managed by mrgate), over the
 * repo_status_stored row s (NULL: no such repo, not gated). A run of a repo no longer gated cannot be bypassed. */
#define GATE_BYPASS_REPO_GATED                                                                                         \
	"coalesce((s.effective_config->>'enabled')::bool AND NOT coalesce(s.unmanaged, false), false)"

struct gate_bypass_req {
	int64_t run_id;
	const char *actor;                 /* the user's name, shown on GitLab and in the audit log */
	const char *reason;                /* validated by gate_bypass() */
	const char *public_url;            /* the report link's base; NULL or "": no link */
	struct json_object *audit_details; /* the audit entry's details (borrowed), NULL: none */
};

/*
 * CORE_OK: GitLab shows the bypass and the run says so. CORE_EINVAL: the reason is unusable; CORE_ENOTFOUND: no
 * such run; CORE_ESTATE: the run cannot be bypassed (not failed, not finished, superseded, already bypassed, being
 * bypassed by another request);
 * CORE_EGITLAB (or the client's status): GitLab refused or could not be reached. msg says why in each case.
 */
enum core_status gate_bypass(struct store *db, struct gitlab *gl, const struct gate_bypass_req *req, char *msg,
                             size_t cap);

/*
 * A bypass holds for its head commit until a new push: when run_id (just decided, its verdict stored as failed)
 * gates a head sha an editor bypassed in an earlier run of the same MR (the MR was reopened, gating turned on
 * again), the run takes that bypass over: verdict bypassed, the same who, why, when and description, which
 * description_out receives for the success status to post. false when there is no such bypass.
 */
bool gate_bypass_carry(struct store *db, int64_t run_id, char *description_out, size_t cap);

/* Whether reason is usable (1..GATE_BYPASS_REASON_MAX characters of UTF-8 text, no control characters). */
int gate_bypass_reason_ok(const char *reason, char *msg, size_t cap);
/* The same rule for an ignore's reason; its messages say "say why this finding may be ignored". */
int gate_ignore_reason_ok(const char *reason, char *msg, size_t cap);

#endif
