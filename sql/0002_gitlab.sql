-- 0002_gitlab: the GitLab connection, the group tree and the repositories discovered in it.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One connection per installation: a GitLab URL, a root group and a token (sealed with the secret key).
CREATE TABLE connection (
    id                    integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    gitlab_url            text NOT NULL,
    group_ref             text NOT NULL,            -- the group as the user entered it (id or full path)
    group_id              bigint NOT NULL,
    group_full_path       text NOT NULL,
    group_name            text,
    token_sealed          text NOT NULL,            -- crypto_seal(): "v1:" + base64(nonce || box)
    token_hint            text NOT NULL,            -- last 4 characters
    token_name            text,
    token_scopes          text[] NOT NULL DEFAULT '{}',
    token_expires_at      date,
    token_kind            text NOT NULL DEFAULT 'unknown',  -- personal | group_access | service_account | unknown
    gitlab_user_id        bigint,
    gitlab_username       text,
    gitlab_user_bot       boolean,
    group_access_level    integer,                  -- the token user's role on the group, when known
    capability            text NOT NULL CHECK (capability IN ('gate', 'read_only', 'insufficient')),
    warnings              jsonb NOT NULL DEFAULT '[]',
    ca_bundle             text,                     -- PEM of a private CA, when given
    token_status          text NOT NULL DEFAULT 'ok' CHECK (token_status IN ('ok', 'expired', 'revoked', 'invalid')),
    token_problem         text,
    token_checked_at      timestamptz,
    webhook_secret_sealed text NOT NULL,            -- the X-Gitlab-Token our hooks carry; kept across token updates
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- The root group and its descendants, for the group-tree filter.
CREATE TABLE gitlab_groups (
    id          bigint PRIMARY KEY,
    full_path   text NOT NULL UNIQUE,
    name        text NOT NULL,
    parent_id   bigint,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz,
    seen_sync   bigint
);

CREATE TABLE repos (
    id                   bigint PRIMARY KEY,        -- GitLab's project id
    path                 text NOT NULL,
    name                 text NOT NULL,
    path_with_namespace  text NOT NULL,
    namespace_id         bigint,
    namespace_full_path  text NOT NULL,
    web_url              text,
    default_branch       text,
    archived             boolean NOT NULL DEFAULT false,
    marked_for_deletion  boolean NOT NULL DEFAULT false,
    access_level         integer,                   -- the token's role on the project, when listed
    last_activity_at     timestamptz,
    first_seen           timestamptz NOT NULL DEFAULT now(),
    last_seen            timestamptz NOT NULL DEFAULT now(),
    removed_at           timestamptz,               -- no longer listed by GitLab (kept, never deleted)
    seen_sync            bigint                     -- the sync run that last listed it
);
-- Sorting and cursor paging by path; prefix filters on the namespace ("C" collation makes LIKE 'a/b/%' indexable).
CREATE INDEX repos_path_idx ON repos ((path_with_namespace COLLATE "C"), id);
CREATE INDEX repos_namespace_idx ON repos ((namespace_full_path COLLATE "C"));
CREATE INDEX repos_activity_idx ON repos ((coalesce(last_activity_at, '-infinity'::timestamptz)), id);
CREATE INDEX repos_search_idx ON repos USING gin (path_with_namespace gin_trgm_ops);

-- Discovery runs ("sync"): progress while running, a summary when done. At most one runs at a time.
CREATE TABLE sync_runs (
    id           bigserial PRIMARY KEY,
    trigger      text NOT NULL,                     -- api | cli | schedule
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    owner        text NOT NULL,                     -- the instance running it
    heartbeat    timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    pages        integer NOT NULL DEFAULT 0,
    repos_seen   integer NOT NULL DEFAULT 0,
    groups_seen  integer NOT NULL DEFAULT 0,
    new_repos    integer NOT NULL DEFAULT 0,
    updated      integer NOT NULL DEFAULT 0,
    removed      integer NOT NULL DEFAULT 0,
    archived     integer NOT NULL DEFAULT 0,
    skipped      integer NOT NULL DEFAULT 0,        -- list entries GitLab sent that could not be read
    error        text,
    summary      jsonb
);
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs ((true)) WHERE state = 'running';

-- Each repo with its status. Later migrations redefine this view as gating adds states.
CREATE VIEW repo_status AS
SELECT r.*,
       CASE WHEN r.removed_at IS NOT NULL THEN 'removed'
            WHEN r.archived THEN 'archived'
            WHEN r.marked_for_deletion THEN 'pending_deletion'
            ELSE 'ungated' END AS status
FROM repos r;
