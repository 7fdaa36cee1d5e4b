-- 0023_repo_status_applying: marking repos for an apply sets their stored status without recomputing their rows.
--
-- A configure changes a config (its trigger recomputes the stored rows of every repo in scope) and then, in the same
-- transaction, marks the repos to apply: repo_gitlab_state.applying becomes true, and the triggers of 0019 computed
-- the same rows from repo_status_computed a second time. At 1,000 repos that second refresh took about 60 ms of the
-- configure request, before the apply job could start.
--
-- Marking changes one thing a stored row holds. In repo_status_computed (0007, 0021) `applying` is read only by the
-- status, where it comes fourth: removed, archived, pending deletion, then applying. A row inserted with applying
-- and nothing else (no hook, applied_state 'off', no result, message or time) gives the same gitlab_have, hook_id
-- and apply result as no row at all. So where a statement inserts such rows, or changes only `applying` (to true)
-- among the columns the view reads, the status becomes the first of those four that holds, computed from the stored
-- row's own removed_at, archived and marked_for_deletion (kept current by the repos trigger), and every other row
-- takes the full refresh as before. tests/http/test_repo_status_stored.py marks repos of every status, with and
-- without a GitLab state row, and compares the stored rows with the view.

-- The "applying" status of stored rows ids: locked in id order, as mrgate_repo_status_refresh locks them.
CREATE FUNCTION mrgate_repo_status_set_applying(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM repo_status_stored WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE repo_status_stored s
       SET status = v.status
      FROM (SELECT x.id, CASE WHEN x.removed_at IS NOT NULL THEN 'removed'
                              WHEN x.archived THEN 'archived'
                              WHEN x.marked_for_deletion THEN 'pending_deletion'
                              ELSE 'applying' END AS status
              FROM repo_status_stored x WHERE x.id = ANY (ids)) v
     WHERE s.id = v.id AND s.status IS DISTINCT FROM v.status;
END
$$;

CREATE OR REPLACE FUNCTION mrgate_repo_status_on_gitlab_state_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    marked bigint[];
BEGIN
    marked := ARRAY(SELECT repo_id FROM new_rows
                     WHERE applying AND hook_id IS NULL AND hook_alert_status IS NULL AND applied_state = 'off'
                       AND last_result IS NULL AND last_message IS NULL AND last_applied_at IS NULL);
    IF cardinality(marked) > 0 THEN
        PERFORM mrgate_repo_status_set_applying(marked);
    END IF;
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT repo_id FROM new_rows EXCEPT SELECT unnest(marked)));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION mrgate_repo_status_on_gitlab_state_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    marked bigint[];
BEGIN
    SELECT coalesce(array_agg(k) FILTER (WHERE NOT only_marked), '{}'),
           coalesce(array_agg(k) FILTER (WHERE only_marked), '{}')
      INTO ids, marked
      FROM (SELECT coalesce(n.repo_id, o.repo_id) AS k,
                   n.repo_id IS NOT NULL AND o.repo_id IS NOT NULL AND n.applying AND NOT o.applying
                   AND (n.hook_id, n.hook_alert_status, n.applied_state, n.last_result, n.last_message,
                        n.last_applied_at)
                       IS NOT DISTINCT FROM
                       (o.hook_id, o.hook_alert_status, o.applied_state, o.last_result, o.last_message,
                        o.last_applied_at) AS only_marked
              FROM new_rows n FULL JOIN old_rows o ON o.repo_id = n.repo_id
             WHERE n.repo_id IS NULL OR o.repo_id IS NULL
                OR (n.hook_id, n.hook_alert_status, n.applied_state, n.last_result, n.last_message,
                    n.last_applied_at, n.applying)
                   IS DISTINCT FROM
                   (o.hook_id, o.hook_alert_status, o.applied_state, o.last_result, o.last_message,
                    o.last_applied_at, o.applying)) c;
    IF cardinality(marked) > 0 THEN
        PERFORM mrgate_repo_status_set_applying(marked);
    END IF;
    IF cardinality(ids) > 0 THEN
        PERFORM mrgate_repo_status_refresh(ids);
    END IF;
    RETURN NULL;
END
$$;
