-- 0007_group_hook: group-hook mode (one webhook on the connected root group instead of one per project).
-- group_hook holds the group hook mrgate keeps; it has a row exactly while group-hook mode is in force (the
-- switch writes it before removing project hooks and deletes it after they are back). repo_status reads a repo
-- whose last apply gated it as `gated` without a project hook while that row exists; nothing else changes.

CREATE TABLE group_hook (
    id           integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    group_id     bigint NOT NULL,
    hook_id      bigint NOT NULL,
    hook_url     text NOT NULL,
    token_sha256 text,
    alert_status text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    checked_at   timestamptz NOT NULL DEFAULT now()
);

-- As in 0004 (same columns, same order); only the `gated` condition accepts the group hook.
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
            WHEN e.enabled AND (gs.hook_id IS NOT NULL
                                OR (gs.applied_state <> 'off' AND EXISTS (SELECT 1 FROM group_hook))) THEN 'gated'
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
