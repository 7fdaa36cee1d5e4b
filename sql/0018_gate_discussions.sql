-- 0018_gate_discussions: the comment mode "inline" (issue 16, "findings on the line"). A gate run in that mode opens
-- one GitLab discussion per new finding, positioned on the added line; this table remembers it per merge request
-- and fingerprint, so a redelivery, a re-run or a later push with the finding still there posts nothing again, and
-- a push that removes the finding resolves that same discussion.

CREATE TABLE gate_discussions (
    project_id        bigint NOT NULL,
    mr_iid            bigint NOT NULL,
    fingerprint       text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    discussion_id     text NOT NULL CHECK (length(discussion_id) BETWEEN 1 AND 64),
    path              text NOT NULL,
    line              bigint NOT NULL,
    resolved          boolean NOT NULL DEFAULT false,  -- as mrgate last set or saw it
    resolved_by_gate  boolean NOT NULL DEFAULT false,  -- mrgate resolved it (a fix push): reopened if it returns
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, mr_iid, fingerprint)
);
