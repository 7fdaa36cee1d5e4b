-- 0014_finding_ignores: ignoring a finding with a reason and an optional expiry (DESIGN.md §1.7, issue 16).
-- An ignore names a finding by its fingerprint (one finding) or by its rule (every finding of the rule), for one
-- repo or for a group and its subgroups. A later gate run stores a matching finding with the ignore that matched
-- and does not count it; once expires_at has passed the ignore no longer matches and the finding counts again.

CREATE TABLE finding_ignores (
    id          bigserial PRIMARY KEY,
    fingerprint text CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    rule_id     text CHECK (length(rule_id) BETWEEN 1 AND 200),
    repo_id     bigint REFERENCES repos(id) ON DELETE CASCADE,
    group_path  text CHECK (length(group_path) BETWEEN 1 AND 1000),
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    CHECK ((fingerprint IS NULL) <> (rule_id IS NULL)),
    CHECK ((repo_id IS NULL) <> (group_path IS NULL))
);
CREATE INDEX finding_ignores_repo_idx ON finding_ignores (repo_id) WHERE repo_id IS NOT NULL;
CREATE INDEX finding_ignores_group_idx ON finding_ignores (group_path) WHERE group_path IS NOT NULL;

ALTER TABLE gate_findings
    ADD COLUMN ignore_id     bigint,  -- the ignore that matched when the run was decided (kept if it is deleted)
    ADD COLUMN ignore_reason text;
