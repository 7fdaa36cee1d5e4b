-- 0003_jobs: the job engine's queue. A job is a batch of items (usually one per repo); worker threads of any
-- number of mrgate instances claim items with FOR UPDATE SKIP LOCKED and a lease (see core/jobs.h).

CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),       -- apply | discovery | gate | ...
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'failed', 'canceled')),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,                       -- first item claimed
    finished_at  timestamptz,                       -- last item finished, or canceled
    params       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    -- Progress counters, maintained by the same statement that finishes (or resets) an item, so one row read
    -- answers "how far is it" for any job size. done = items finished with any result
    -- = changed + unchanged + skipped + failed.
    total        integer NOT NULL DEFAULT 0,
    done         integer NOT NULL DEFAULT 0,
    changed      integer NOT NULL DEFAULT 0,
    unchanged    integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,
    failed       integer NOT NULL DEFAULT 0,
    CHECK (done = changed + unchanged + skipped + failed AND done >= 0 AND done <= total)
);
CREATE INDEX jobs_kind_idx ON jobs (kind, id DESC);
CREATE INDEX jobs_active_idx ON jobs (id) WHERE state IN ('queued', 'running');

CREATE TABLE job_items (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    kind         text NOT NULL,                     -- the job's kind, copied so a claim needs no join
    repo_id      bigint,                            -- GitLab project id (repos.id), when the item is about one
    payload      jsonb,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
    result       text CHECK (result IN ('changed', 'unchanged', 'skipped', 'error')),
    message      text,
    details      jsonb,
    attempts     integer NOT NULL DEFAULT 0,        -- claims so far (a takeover counts as an attempt)
    lease_owner  text,                              -- the worker holding (running) or that finished the item
    lease_until  timestamptz,                       -- while running: the lease end
    -- The earliest time a worker may claim the item: for a pending item the end of its backoff, for a running
    -- one its lease end (kept equal to lease_until), so one index serves new, retried and taken-over items.
    not_before   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,                       -- last claimed
    finished_at  timestamptz,
    CHECK ((state IN ('done', 'failed')) = (result IS NOT NULL)),
    CHECK ((state = 'failed') = (result IS NOT DISTINCT FROM 'error'))
);
CREATE UNIQUE INDEX job_items_job_repo_idx ON job_items (job_id, repo_id) WHERE repo_id IS NOT NULL;
CREATE INDEX job_items_job_idx ON job_items (job_id, id);
CREATE INDEX job_items_job_state_idx ON job_items (job_id, state, id);
-- The claim scan: claimable items in due order. Finished items leave the index, so it stays small.
CREATE INDEX job_items_claim_idx ON job_items (not_before, id) WHERE state IN ('pending', 'running');
