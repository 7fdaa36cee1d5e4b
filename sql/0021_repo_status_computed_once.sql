-- 0021_repo_status_computed_once: the same repo_status_computed (0007: same columns, same values), with each part
-- of a row computed once.
--
-- Every write that feeds a repo's stored status recomputes its row from this view (0011), so its cost is paid by
-- every discovery page, configure and apply result. Before, for each row:
--   - mrgate_key_labels() of the default config ran once per repo, although there is one default. It is a SQL
--     function with a FROM clause, which PostgreSQL cannot inline: each call starts an executor of its own, with an
--     aggregate (about a third of a discovery page's refresh in `perf`);
--   - mrgate_key_labels() of the repo's own config ran also where a repo has none (most repos), giving {};
--   - the inherited config (default || groups) and the effective config (|| own) were concatenated again at each
--     of their uses: the planner pulls a FROM-less subquery up into its uses;
--   - the exception test (one of the repo's own fields differs from what it inherits) ran twice, for the status and
--     for its column, also where there is no own config.
-- Now the default's labels are computed once per statement (OFFSET 0 keeps its subquery from being pulled up), the
-- inherited and effective configs once per row (OFFSET 0 again), and a repo without its own config skips the
-- label and exception work (the old expressions give {} and false there). Measured on 100 new repos (one
-- discovery page), 200 pages: computing the rows took 0.57-0.59 s before and 0.24-0.34 s after.
--
-- Changing the definition changes no stored row: the refresh compares what this view gives with what is stored,
-- and tests/http/test_repo_status_stored.py checks that the two are equal after every kind of change.
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
                -- first listed by the latest sync (not the first one) and never configured nor applied
                WHEN cr.repo_id IS NULL AND gs.repo_id IS NULL
                     AND r.first_seen >= (SELECT started_at FROM sync_runs WHERE state = 'done' ORDER BY id DESC LIMIT 1)
                     AND (SELECT count(*) FROM sync_runs WHERE state = 'done') > 1 THEN 'new'
                ELSE 'ungated' END AS status
) st;
