-- 0031_repo_status_from_gitlab_state: a write of repos' GitLab state sets their stored rows from that state alone.
--
-- Every apply writes each repo's repo_gitlab_state row at least once (its outcome; a first apply twice), and the
-- triggers of 0019 and 0023 recomputed the repo's whole stored row from repo_status_computed: its config merged from
-- the default and every group above it, labels of where each key comes from, the exception test. pg_stat_statements
-- (track = all) over bench/apply at 1,000 repos: the outcome statement took 3.1 ms on average in a re-apply with
-- nothing to change, 2.5 ms of it that refresh, and PostgreSQL was the largest user of the machine's two cores.
--
-- Of a stored row, the GitLab state feeds only gitlab_have, apply_result, apply_message, applied_at, hook_id and the
-- status; everything else the status reads is in the stored row itself (removed_at, archived, marked_for_deletion,
-- unmanaged, exception, and `enabled` in effective_config), kept current by the triggers of the other tables, or is
-- group_hook. And with a GitLab state row present a repo is never `new` (that needs none). So where a statement
-- inserts or updates GitLab state rows, the stored rows of those repos are set from their state and their own
-- columns, in the status order of repo_status_computed (0026); a row that left a repo (its key changed, or deleted)
-- still takes the full refresh, as does a repo without a stored row. mrgate_repo_status_set_applying (0023), a
-- special case of this, goes. tests/http/test_repo_status_stored.py changes every column of the state by hand for
-- a repo of every status and compares the stored rows with the view.
--
-- Locks: the triggering statement holds the GitLab state rows; the stored rows are locked next, in id order, as
-- mrgate_repo_status_lock orders them, and read by the statement after the lock (a config change that committed
-- meanwhile is seen).

CREATE FUNCTION mrgate_repo_status_set_gitlab_state(ids bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM 1 FROM repo_status_stored WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE repo_status_stored s
       SET status = v.status, gitlab_have = v.gitlab_have, apply_result = v.last_result,
           apply_message = v.last_message, applied_at = v.last_applied_at, hook_id = v.hook_id
      FROM (SELECT x.id,
                   CASE WHEN x.removed_at IS NOT NULL THEN 'removed'
                        WHEN x.archived THEN 'archived'
                        WHEN x.marked_for_deletion THEN 'pending_deletion'
                        WHEN gs.applying THEN 'applying'
                        WHEN x.unmanaged THEN 'unmanaged'
                        WHEN gs.last_result = 'error' THEN 'error'
                        WHEN e.enabled AND gs.hook_id IS NOT NULL
                             AND gs.hook_alert_status IN ('temporarily_disabled', 'disabled') THEN 'hook_disabled'
                        WHEN x.exception THEN 'exception'
                        WHEN e.enabled AND (gs.hook_id IS NOT NULL
                                            OR (gs.applied_state <> 'off' AND EXISTS (SELECT 1 FROM group_hook)))
                             THEN 'gated'
                        ELSE 'ungated' END AS status,
                   coalesce(gs.applied_state, 'off') AS gitlab_have,
                   gs.last_result, gs.last_message, gs.last_applied_at, gs.hook_id
              FROM repo_status_stored x
              JOIN repo_gitlab_state gs ON gs.repo_id = x.id
             CROSS JOIN LATERAL (SELECT coalesce((x.effective_config ->> 'enabled')::boolean, false) AS enabled) e
             WHERE x.id = ANY (ids)) v
     WHERE s.id = v.id
       AND (s.status, s.gitlab_have, s.apply_result, s.apply_message, s.applied_at, s.hook_id)
           IS DISTINCT FROM (v.status, v.gitlab_have, v.last_result, v.last_message, v.last_applied_at, v.hook_id);
    -- none is expected (a repo's row is stored when it is inserted), but a repo without one is computed in full
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT unnest(ids)
                                             EXCEPT SELECT id FROM repo_status_stored WHERE id = ANY (ids)));
END
$$;

CREATE OR REPLACE FUNCTION mrgate_repo_status_on_gitlab_state_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    ids := ARRAY(SELECT repo_id FROM new_rows);
    IF cardinality(ids) > 0 THEN -- an INSERT ... ON CONFLICT DO UPDATE that updated fires this with no rows
        PERFORM mrgate_repo_status_set_gitlab_state(ids);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION mrgate_repo_status_on_gitlab_state_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    left_repo bigint[];
BEGIN
    -- a row whose key changed left its old repo (which may be `new` again) and arrived at another
    SELECT coalesce(array_agg(k) FILTER (WHERE NOT gone), '{}'), coalesce(array_agg(k) FILTER (WHERE gone), '{}')
      INTO ids, left_repo
      FROM (SELECT coalesce(n.repo_id, o.repo_id) AS k, n.repo_id IS NULL AS gone
              FROM new_rows n FULL JOIN old_rows o ON o.repo_id = n.repo_id
             WHERE n.repo_id IS NULL OR o.repo_id IS NULL
                OR (n.hook_id, n.hook_alert_status, n.applied_state, n.last_result, n.last_message,
                    n.last_applied_at, n.applying)
                   IS DISTINCT FROM
                   (o.hook_id, o.hook_alert_status, o.applied_state, o.last_result, o.last_message,
                    o.last_applied_at, o.applying)) c;
    IF cardinality(ids) > 0 THEN
        PERFORM mrgate_repo_status_set_gitlab_state(ids);
    END IF;
    IF cardinality(left_repo) > 0 THEN
        PERFORM mrgate_repo_status_refresh(left_repo);
    END IF;
    RETURN NULL;
END
$$;

DROP FUNCTION mrgate_repo_status_set_applying(bigint[]);
