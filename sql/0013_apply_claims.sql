-- Who is applying a repo right now (core/apply.c). Replaces the advisory lock apply held, with its database
-- connection, across the repo's GitLab calls: a claim is one row written by the statement that loads the repo and
-- deleted by the one that records the outcome, so no connection is held in between. A claim past expires_at (its
-- holder crashed) is free for the next apply.
CREATE TABLE apply_claims (
    repo_id    bigint PRIMARY KEY,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
);
