-- 0019_repo_status_gitlab_state_trigger: an apply's writes of repo_gitlab_state refresh a repo's stored status only
-- when a column the status is computed from changed, with statements whose plans are cached.
--
-- 0011 gave repo_gitlab_state the generic statement triggers of every input table: mrgate_repo_status_on_change
-- builds its key query with EXECUTE (parsed and planned again at every call) and refreshes every row the statement
-- touched. An apply writes the table twice per repo: the merge setting it is about to change (merge_setting_prior,
-- merge_setting_changed, which the status does not read), then the outcome. INSERT ... ON CONFLICT DO UPDATE fires
-- both the INSERT and the UPDATE statement triggers, so each write paid two dynamic queries, and the first a refresh
-- that found nothing to change. At 1,000 repos and 16 GitLab requests in flight, the triggers were a third of
-- PostgreSQL's CPU during an apply.
--
-- Now the INSERT and UPDATE triggers of repo_gitlab_state run static SQL, and an UPDATE refreshes only the repos
-- whose row changed in a column that repo_status_computed reads (the view of 0007: hook_id, hook_alert_status,
-- applied_state, last_result, last_message, last_applied_at, applying), or whose key changed. A later migration that
-- makes the status read another column of repo_gitlab_state adds it here (tests/http/test_repo_status_stored.py
-- changes every column of the table alone and checks the stored rows, and fails for a column it does not know).
-- The DELETE trigger stays as it was (rare).
DROP TRIGGER repo_status_repo_gitlab_state_insert ON repo_gitlab_state;
DROP TRIGGER repo_status_repo_gitlab_state_update ON repo_gitlab_state;

CREATE FUNCTION mrgate_repo_status_on_gitlab_state_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT repo_id FROM new_rows));
    RETURN NULL;
END
$$;

CREATE FUNCTION mrgate_repo_status_on_gitlab_state_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    ids := ARRAY(
        SELECT coalesce(n.repo_id, o.repo_id)
          FROM new_rows n FULL JOIN old_rows o ON o.repo_id = n.repo_id
         WHERE n.repo_id IS NULL OR o.repo_id IS NULL
            OR (n.hook_id, n.hook_alert_status, n.applied_state, n.last_result, n.last_message, n.last_applied_at,
                n.applying)
               IS DISTINCT FROM
               (o.hook_id, o.hook_alert_status, o.applied_state, o.last_result, o.last_message, o.last_applied_at,
                o.applying));
    IF cardinality(ids) > 0 THEN
        PERFORM mrgate_repo_status_refresh(ids);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER repo_status_repo_gitlab_state_insert AFTER INSERT ON repo_gitlab_state
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION mrgate_repo_status_on_gitlab_state_insert();
CREATE TRIGGER repo_status_repo_gitlab_state_update AFTER UPDATE ON repo_gitlab_state
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION mrgate_repo_status_on_gitlab_state_update();
