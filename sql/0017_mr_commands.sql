-- 0017_mr_commands: "/mrgate" commands written in merge request comments (issue 16, core/mrcommand.h).
-- One row per GitLab note that was a command, keyed by the note's id: a redelivered or repeated note event finds
-- its row and does nothing more. The worker that carries the command out records what it decided (the reply it
-- owes) before it posts the reply, and the reply's note id after, so a retried job never acts twice.

CREATE TABLE mr_commands (
    note_id        bigint PRIMARY KEY,                 -- GitLab's note id (object_attributes.id)
    project_id     bigint NOT NULL,
    mr_iid         bigint NOT NULL,
    author_id      bigint NOT NULL,                    -- the commenter (object_attributes.author_id)
    event_id       bigint,                             -- the webhook_events row that brought it
    job_id         bigint,                             -- the "mrcommand" job that carries it out
    outcome        text CHECK (outcome IN ('applied', 'refused', 'skipped')),
    reply          text,                               -- the reply decided (posted as a note on the MR)
    reply_note_id  bigint,                             -- GitLab's id of the posted reply
    received_at    timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz
);
CREATE INDEX mr_commands_mr_idx ON mr_commands (project_id, mr_iid);
