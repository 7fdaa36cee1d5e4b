-- 0005_gate: webhook deliveries, merge-request gate runs, their findings and the sticky MR note.
-- Independent of 0003 (jobs) and 0004 (configs): gate runs have their own small queue (claimed with
-- FOR UPDATE SKIP LOCKED, leased so that a crashed worker's run is taken over).

-- Every webhook delivery that passed the token check, gated or not. idempotency_key is GitLab's
-- Idempotency-Key (stable across retries of one event), else X-Gitlab-Webhook-UUID; NULL when neither came.
CREATE TABLE webhook_events (
    id               bigserial PRIMARY KEY,
    idempotency_key  text UNIQUE,
    webhook_uuid     text,
    event_type       text NOT NULL,                 -- X-Gitlab-Event, e.g. "Merge Request Hook"
    action           text,                          -- object_attributes.action for MR events
    project_id       bigint,
    mr_iid           bigint,
    received_at      timestamptz NOT NULL DEFAULT now(),
    payload          jsonb,                         -- the body when at most 256 KiB, else NULL (payload_bytes says)
    payload_bytes    integer NOT NULL DEFAULT 0,
    ignored_reason   text,                          -- NULL when the event started a gate run
    run_id           bigint
);
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at DESC, id DESC);
CREATE INDEX webhook_events_mr_idx ON webhook_events (project_id, mr_iid);

-- One evaluation of one MR head commit.
CREATE TABLE gate_runs (
    id                 bigserial PRIMARY KEY,
    project_id         bigint NOT NULL,             -- the target project (the gated repo, whose hook fired)
    source_project_id  bigint NOT NULL,             -- where the head commit lives; statuses go there
    mr_iid             bigint NOT NULL,
    head_sha           text NOT NULL,
    source_branch      text NOT NULL,
    event_id           bigint REFERENCES webhook_events(id) ON DELETE SET NULL,
    state              text NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'done', 'superseded', 'error')),
    verdict            text CHECK (verdict IN ('passed', 'failed', 'error', 'timeout', 'skipped')),
    description        text,                        -- the commit-status description posted (<= 255 bytes)
    fail_on            text,
    scans              text[],
    counts             jsonb,                       -- {"critical":n,"high":n,"medium":n,"low":n,"total":n}
    notes              jsonb NOT NULL DEFAULT '[]', -- things the verdict had to say (no scanner, unscannable files)
    error              text,
    pipeline_id        bigint,                      -- the MR head pipeline the status was attached to
    status_ref         text,                        -- the ref the statuses were posted with
    pending_posted     boolean NOT NULL DEFAULT false,
    status_posted      text,                        -- the final state posted: success | failed
    note_id            bigint,
    timings            jsonb NOT NULL DEFAULT '{}', -- milliseconds per phase
    lease_owner        text,
    lease_until        timestamptz,
    attempts           integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    superseded_by      bigint
);
-- The queue: claimable runs in id order.
CREATE INDEX gate_runs_queue_idx ON gate_runs (id) WHERE state IN ('queued', 'running');
-- GET /api/gates filters (newest first).
CREATE INDEX gate_runs_list_idx ON gate_runs (id DESC);
CREATE INDEX gate_runs_mr_idx ON gate_runs (project_id, mr_iid, id DESC);
CREATE INDEX gate_runs_verdict_idx ON gate_runs (verdict, id DESC);

CREATE TABLE gate_findings (
    id           bigserial PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES gate_runs(id) ON DELETE CASCADE,
    scan_type    text NOT NULL,
    rule_id      text NOT NULL,
    title        text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    path         text NOT NULL,
    line         integer NOT NULL DEFAULT 0,
    excerpt      text NOT NULL DEFAULT '',            -- redacted by the scanner: never a secret
    fingerprint  text NOT NULL
);
CREATE INDEX gate_findings_run_idx ON gate_findings (run_id, id);

-- The one sticky note mrgate keeps per MR (edited on later runs, never a new note per push).
CREATE TABLE mr_notes (
    project_id  bigint NOT NULL,
    mr_iid      bigint NOT NULL,
    note_id     bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, mr_iid)
);
