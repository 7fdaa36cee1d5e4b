-- 0026_sync_runs_group: a sync run remembers the group it listed, and the first sync of another group marks no repo
-- `new`.
--
-- A repo is `new` when the latest sync listed it for the first time, unless that sync was the first one (then every
-- repo is new, and none is marked: README). "The first one" counted every done run, so after connecting another
-- group its first sync marked all of its repos `new`. Now it counts the done runs of the latest run's group.
-- discovery_begin stores the connection's group on each run; the runs made before this migration get the group
-- connected now (a NULL group, with no connection, counts with the other NULLs, as before).
ALTER TABLE sync_runs ADD COLUMN group_id bigint;
UPDATE sync_runs SET group_id = (SELECT group_id FROM connection);

-- The done runs of the group the latest done run listed (0 when none is done); repo_status_computed below has the
-- same count written out, as an uncorrelated subquery that a statement evaluates once (a call of this function
-- would run for each row).
CREATE FUNCTION mrgate_sync_runs_done_of_latest_group() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM sync_runs s
    WHERE s.state = 'done'
      AND s.group_id IS NOT DISTINCT FROM (SELECT l.group_id FROM sync_runs l WHERE l.state = 'done'
                                           ORDER BY l.id DESC LIMIT 1)
$$;

-- 0020's trigger with the same count: repos first seen by the latest run can be `new` only when it was not the
-- first run of its group; the repos `new` now are candidates always (they may stop being new).
CREATE OR REPLACE FUNCTION mrgate_repo_status_on_sync_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_since timestamptz; -- repos first seen since then can be `new` (NULL: none can)
BEGIN
    IF mrgate_sync_runs_done_of_latest_group() > 1 THEN
        new_since := (SELECT started_at FROM sync_runs WHERE state = 'done' ORDER BY id DESC LIMIT 1);
    END IF;
    PERFORM mrgate_repo_status_refresh(ARRAY(
        SELECT id FROM repo_status_stored WHERE status = 'new' UNION SELECT id FROM repos WHERE first_seen >= new_since));
    RETURN NULL;
END
$$;

-- repo_status_computed of 0021 with that count in the `new` rule; nothing else changes.
CREATE OR REPLACE VIEW repo_status_computed AS
SELECT r.*,
       st.status,
       c.effective_config, c.config_sources, c.inherited_config, cr.config AS own_config, c.exception,
       coalesce(cr.unmanaged, false) AS unmanaged,
       mrgate_gitlab_want(c.effective_config, cr.unmanaged) AS gitlab_want,
       coalesce(gs.applied_state, 'off') AS gitlab_have,
       gs.last_result AS apply_result, gs.last_message AS apply_message, gs.last_applied_at AS applied_at, gs.hook_id
FROM repos r
CROSS JOIN (SELECT config, mrgate_key_labels(config, 'default') AS labels FROM config_default OFFSET 0) d
LEFT JOIN config_repos cr ON cr.repo_id = r.id
LEFT JOIN repo_gitlab_state gs ON gs.repo_id = r.id
CROSS JOIN LATERAL (
    SELECT mrgate_jsonb_merge(g.config ORDER BY length(g.path)) AS config,
           mrgate_jsonb_merge(mrgate_key_labels(g.config, 'group:' || g.path) ORDER BY length(g.path)) AS sources
    FROM config_groups g
    WHERE g.path = ANY (mrgate_path_prefixes(r.namespace_full_path))
) grp
CROSS JOIN LATERAL (
    SELECT i.inherited AS inherited_config, i.effective AS effective_config,
           coalesce((i.effective ->> 'enabled')::boolean, false) AS enabled,
           d.labels || grp.sources
               || CASE WHEN cr.config IS NULL THEN '{}'::jsonb ELSE mrgate_key_labels(cr.config, 'repo') END
               AS config_sources,
           cr.config IS NOT NULL
               AND EXISTS (SELECT 1 FROM jsonb_each(cr.config) f WHERE i.inherited -> f.key IS DISTINCT FROM f.value)
               AS exception
    FROM (SELECT h.inherited, h.inherited || coalesce(cr.config, '{}') AS effective
          FROM (SELECT d.config || grp.config AS inherited OFFSET 0) h OFFSET 0) i
    OFFSET 0
) c
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.removed_at IS NOT NULL THEN 'removed'
                WHEN r.archived THEN 'archived'
                WHEN r.marked_for_deletion THEN 'pending_deletion'
                WHEN coalesce(gs.applying, false) THEN 'applying'
                WHEN coalesce(cr.unmanaged, false) THEN 'unmanaged'
                WHEN gs.last_result = 'error' THEN 'error'
                WHEN c.enabled AND gs.hook_id IS NOT NULL
                     AND gs.hook_alert_status IN ('temporarily_disabled', 'disabled') THEN 'hook_disabled'
                WHEN c.exception THEN 'exception'
                -- a project hook, or an applied gate while group-hook mode is in force (0007)
                WHEN c.enabled AND (gs.hook_id IS NOT NULL
                                    OR (gs.applied_state <> 'off' AND EXISTS (SELECT 1 FROM group_hook))) THEN 'gated'
                -- first listed by the latest sync (not the first one of its group) and never configured nor applied
                WHEN cr.repo_id IS NULL AND gs.repo_id IS NULL
                     AND r.first_seen >= (SELECT started_at FROM sync_runs WHERE state = 'done' ORDER BY id DESC LIMIT 1)
                     AND (SELECT count(*) FROM sync_runs s
                          WHERE s.state = 'done'
                            AND s.group_id IS NOT DISTINCT FROM (SELECT l.group_id FROM sync_runs l
                                                                 WHERE l.state = 'done'
                                                                 ORDER BY l.id DESC LIMIT 1)) > 1 THEN 'new'
                ELSE 'ungated' END AS status
) st;
