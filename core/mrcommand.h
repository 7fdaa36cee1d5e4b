/*
 * core/mrcommand.h
 *    "/mrgate" commands written as comments on a merge request (issue 16): `/mrgate bypass <reason>` and
 *    `/mrgate ignore <fingerprint or rule id> <reason>` do what the dashboard's bypass (core/gatebypass.h) and ignore
 *    (core/ignores.h) do, for GitLab users who are Maintainer or Owner of the project, and answer in a reply note.
 *
 * Design: mrgate's hooks ask for note events (core/apply.c). The webhook receiver (core/webhook.c) reads the event
 *    alone (mrcommand_parse_event: a new, non-confidential, non-system comment on a merge request whose text starts
 *    with "/mrgate") and, in the delivery's transaction, records the note by its id in mr_commands
 *    (sql/0017_mr_commands.sql) and queues a job "mrcommand" (mrcommand_enqueue): no GitLab call in the request, and a
 *    note is queued once whatever GitLab redelivers. The job (mrcommand_item) never trusts the payload for rights:
 *      1. a note written by mrgate's own token user is never a command (no loops);
 *      2. it reads the commenter's access level on the project from GitLab (GET /projects/:id/members/all/:user_id,
 *         inherited memberships included); below Maintainer (40) it refuses;
 *      3. bypass: the MR's newest gate run, on the head sha the event named, through gate_bypass(); ignore: a
 *         fingerprint (any case, or a unique prefix of MRCOMMAND_PREFIX_MIN or more hex characters, resolved against
 *         the fingerprints this repo's runs found) or rule some run of this repo found, for this repo, through
 *         ignores_create_via(); both recorded with the actor "gitlab:<username>" (no dashboard user name has a
 *         ':', so a GitLab user named admin is never mrgate's admin) and {"via": "merge request comment", ...} as
 *         audit details;
 *      4. it stores the reply it owes (outcome applied/refused/skipped) before posting it, and the reply's note id
 *         after, so a retried job neither acts nor answers twice.
 *    Replies never let the commenter's text start a line: reasons are one line (the dashboard's rule), every piece of
 *    user text is shown in inline code on a line mrgate begins, so nothing in a reply can be a GitLab quick action.
 * Threading: mrcommand_item runs on the job workers, several at once; the others are pure or run on the caller's
 *    connection.
 * Ownership: strings in struct mrcommand_note are borrowed from the payload; the parse functions write into caller
 *    structs; mrcommand_reply_* return malloc'd text (free()).
 */
#ifndef MRGATE_CORE_MRCOMMAND_H
#define MRGATE_CORE_MRCOMMAND_H

#include "jobs.h"
#include "status.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MRCOMMAND_TEXT_MAX   2048 /* bytes of the command line kept for the job (a reason is at most 200 characters) */
#define MRCOMMAND_TARGET_MAX 200  /* bytes of a fingerprint or rule id (IGNORE_RULE_MAX) */
#define MRCOMMAND_PREFIX_MIN 12   /* hex characters: fewer are a rule id */
#define MRCOMMAND_MIN_LEVEL  40   /* Maintainer */

/* A note event that is a command, as the webhook reads it. Strings are borrowed from the payload. */
struct mrcommand_note {
	int64_t note_id, project_id, mr_iid, author_id;
	const char *username; /* user.username of the payload: shown only, rights are read from GitLab */
	const char *head_sha; /* merge_request.last_commit.id ("" when absent) */
	const char *text;     /* object_attributes.note */
};

/*
 * Is this delivery (X-Gitlab-Event header `event`, parsed body) a command? false with why set for anything else:
 * another event, a confidential or internal note, a system note, an edit (object_attributes.action other than
 * "create": GitLab 16.11+ also sends note events on edits), a comment on a commit, issue or snippet, or a comment
 * that does not start with "/mrgate".
 */
bool mrcommand_parse_event(const char *event, const struct json_object *payload, struct mrcommand_note *out, char *why,
                           size_t cap);

/*
 * In the caller's transaction (the delivery's): record note n (mr_commands, by note id) and queue its "mrcommand"
 * job. *queued_out false (and *job_id_out 0) when the note was recorded before: it is handled once.
 */
enum core_status mrcommand_enqueue(struct store_conn *c, const struct mrcommand_note *n, int64_t event_id,
                                   int64_t *job_id_out, bool *queued_out);

enum mrcommand_verb { MRCOMMAND_USAGE = 0, MRCOMMAND_BYPASS, MRCOMMAND_IGNORE };

/* A command line, parsed (pure). reason and target point into the text given to mrcommand_parse_text. */
struct mrcommand_cmd {
	enum mrcommand_verb verb;              /* MRCOMMAND_USAGE: not understood, why says what is wrong */
	char target[MRCOMMAND_TARGET_MAX + 1]; /* ignore: a fingerprint or its prefix (lower case), or a rule id */
	bool fingerprint;                      /* target is (a prefix of) a fingerprint */
	const char *reason;                    /* "" when missing; validated by the handler (gate_bypass_reason_ok) */
	char why[200];
};

/* Parse the first line of text ("/mrgate <verb> ..."); the line is cut at its end in place. */
void mrcommand_parse_text(char *text, struct mrcommand_cmd *out);

/* Job kind "mrcommand": item->repo_id is the project; params as mrcommand_enqueue wrote them. user: the process's
 * struct applyjob_env. */
enum job_outcome mrcommand_item(void *user, const struct job_item *item, struct job_item_result *res);

#endif
