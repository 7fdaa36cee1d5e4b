-- 0006_scheduler: installation settings, the scheduler's state, and resync summaries.

CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scheduler_state (
    id               integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    leader           text,
    leader_since     timestamptz,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    next_run_at      timestamptz
);
