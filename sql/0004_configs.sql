-- 0004_configs: gating configs (one default, one per GitLab group path, one per repo), the per-repo GitLab state
-- the apply engine keeps, and the repo_status view redefined with the gating states.
--
-- A config is a JSON object holding a subset of the fields enabled, fail_on, scans, block_merge, comment,
-- ignore_paths (validated and normalised by core/gateconfig.c before it is stored). The effective config of a
-- repo is the field-wise merge default -> each ancestor group from the root down -> the repo's own config, most
-- specific wins; jsonb's || operator is exactly that merge.

-- The default level always holds every field (core/gateconfig.c fills what a PUT leaves out from the built-in).
CREATE TABLE config_default (
    id          integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    config      jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);
-- The built-in default: nothing gated until the user configures it (gateconfig_builtin() says the same).
INSERT INTO config_default (id, config) VALUES
    (1, '{"enabled": false, "fail_on": "high", "scans": ["secrets"], "block_merge": false,
          "comment": "on_findings", "ignore_paths": []}');

-- Per GitLab group full path ("acme/platform"); a group need not have been discovered yet.
CREATE TABLE config_groups (
    path        text PRIMARY KEY CHECK (path ~ '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$'),
    config      jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);

-- Per repo: an exception (config) and/or the unmanaged flag (mrgate removes its hook and restores what it changed).
CREATE TABLE config_repos (
    repo_id     bigint PRIMARY KEY REFERENCES repos (id),
    config      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    unmanaged   boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);

-- What mrgate did on GitLab for a repo (core/apply.c).
CREATE TABLE repo_gitlab_state (
    repo_id               bigint PRIMARY KEY REFERENCES repos (id),
    hook_id               bigint,                 -- our project hook, when one exists
    hook_url              text,
    hook_token_sha256     text,                   -- hex SHA-256 of the secret token last pushed to that hook
    hook_alert_status     text,                   -- executable | temporarily_disabled | disabled, as last read
    merge_setting_prior   boolean,                -- only_allow_merge_if_pipeline_succeeds before we set it
    merge_setting_changed boolean NOT NULL DEFAULT false, -- we set it and owe a restore
    applied_state         text NOT NULL DEFAULT 'off' CHECK (applied_state IN ('off', 'hook', 'hook+merge')),
    last_result           text CHECK (last_result IN ('unchanged', 'changed', 'error', 'skipped')),
    last_message          text,
    last_applied_at       timestamptz,
    applying              boolean NOT NULL DEFAULT false,
    applying_since        timestamptz,
    apply_run             bigint                  -- the run that set applying (progress of a configure)
);
CREATE INDEX repo_gitlab_state_applying_idx ON repo_gitlab_state (apply_run) WHERE applying;
CREATE SEQUENCE apply_run_seq;

-- "a/b/c" -> {a, a/b, a/b/c}: the group paths whose configs a repo in namespace "a/b/c" inherits.
CREATE FUNCTION mrgate_path_prefixes(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(array_to_string(parts[1:i], '/') ORDER BY i), '{}')
    FROM (SELECT string_to_array(p, '/') AS parts) s, generate_series(1, coalesce(cardinality(s.parts), 0)) i
$$;

-- {"k": v, ...}, "label" -> {"k": "label", ...}: where each field of a level's config comes from.
CREATE FUNCTION mrgate_key_labels(cfg jsonb, label text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, label), '{}') FROM jsonb_object_keys(coalesce(cfg, '{}')) k
$$;

-- Field-wise merge of configs in the aggregate's ORDER BY (later wins).
CREATE AGGREGATE mrgate_jsonb_merge(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb, INITCOND = '{}');

-- The state GitLab should be in for an effective config: off | hook | hook+merge.
CREATE FUNCTION mrgate_gitlab_want(effective jsonb, unmanaged boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(unmanaged, false) OR NOT coalesce((effective ->> 'enabled')::boolean, false) THEN 'off'
                WHEN coalesce((effective ->> 'block_merge')::boolean, false) THEN 'hook+merge'
                ELSE 'hook' END
$$;

-- Each repo with its status, effective config and where each field came from. The leading columns (repos.*,
-- status) are those of 0002; the rest are appended.
CREATE OR REPLACE VIEW repo_status AS
SELECT r.*,
       CASE WHEN r.removed_at IS NOT NULL THEN 'removed'
            WHEN r.archived THEN 'archived'
            WHEN r.marked_for_deletion THEN 'pending_deletion'
            WHEN coalesce(gs.applying, false) THEN 'applying'
            WHEN coalesce(cr.unmanaged, false) THEN 'unmanaged'
            WHEN gs.last_result = 'error' THEN 'error'
            WHEN e.enabled AND gs.hook_id IS NOT NULL AND gs.hook_alert_status IN ('temporarily_disabled', 'disabled')
                THEN 'hook_disabled'
            WHEN e.exception THEN 'exception'
            WHEN e.enabled AND gs.hook_id IS NOT NULL THEN 'gated'
            -- first listed by the latest sync (not the first one) and never configured nor applied
            WHEN cr.repo_id IS NULL AND gs.repo_id IS NULL
                 AND r.first_seen >= (SELECT started_at FROM sync_runs WHERE state = 'done' ORDER BY id DESC LIMIT 1)
                 AND (SELECT count(*) FROM sync_runs WHERE state = 'done') > 1 THEN 'new'
            ELSE 'ungated' END AS status,
       e.effective AS effective_config,
       e.sources AS config_sources,
       e.inherited AS inherited_config,
       cr.config AS own_config,
       e.exception,
       coalesce(cr.unmanaged, false) AS unmanaged,
       mrgate_gitlab_want(e.effective, cr.unmanaged) AS gitlab_want,
       coalesce(gs.applied_state, 'off') AS gitlab_have,
       gs.last_result AS apply_result,
       gs.last_message AS apply_message,
       gs.last_applied_at AS applied_at,
       gs.hook_id
FROM repos r
CROSS JOIN config_default d
LEFT JOIN config_repos cr ON cr.repo_id = r.id
LEFT JOIN repo_gitlab_state gs ON gs.repo_id = r.id
CROSS JOIN LATERAL (
    SELECT mrgate_jsonb_merge(g.config ORDER BY length(g.path)) AS config,
           mrgate_jsonb_merge(mrgate_key_labels(g.config, 'group:' || g.path) ORDER BY length(g.path)) AS sources
    FROM config_groups g
    WHERE g.path = ANY (mrgate_path_prefixes(r.namespace_full_path))
) grp
CROSS JOIN LATERAL (
    SELECT i.inherited,
           i.inherited || coalesce(cr.config, '{}') AS effective,
           mrgate_key_labels(d.config, 'default') || grp.sources || mrgate_key_labels(cr.config, 'repo') AS sources,
           coalesce(((i.inherited || coalesce(cr.config, '{}')) ->> 'enabled')::boolean, false) AS enabled,
           coalesce(EXISTS (SELECT 1 FROM jsonb_each(cr.config) f WHERE i.inherited -> f.key IS DISTINCT FROM f.value),
                    false) AS exception
    FROM (SELECT d.config || grp.config AS inherited) i
) e;
