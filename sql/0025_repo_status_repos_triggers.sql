-- 0025_repo_status_repos_triggers: a discovery page's writes of repos refresh the stored status with static SQL.
--
-- 0011 gave repos the generic statement triggers of every input table: mrgate_repo_status_on_change builds its key
-- query with EXECUTE, parsed and planned again at every call, and turns the ids into text and back. A sync stores
-- each page of 100 projects in one statement, so a first sync of 100,000 repos ran that dynamic query 1,000 times
-- (and INSERT ... ON CONFLICT DO UPDATE fires the UPDATE trigger as well). As 0019 did for repo_gitlab_state, the
-- INSERT and UPDATE triggers of repos now run static SQL whose plans PL/pgSQL caches. Every column of repos is
-- copied into the stored row (repo_status_computed selects r.*), so an update refreshes every repo it touched.
DROP TRIGGER repo_status_repos_insert ON repos;
DROP TRIGGER repo_status_repos_update ON repos;

CREATE FUNCTION mrgate_repo_status_on_repos_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END
$$;

CREATE FUNCTION mrgate_repo_status_on_repos_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT id FROM new_rows UNION SELECT id FROM old_rows));
    RETURN NULL;
END
$$;

CREATE TRIGGER repo_status_repos_insert AFTER INSERT ON repos
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION mrgate_repo_status_on_repos_insert();
CREATE TRIGGER repo_status_repos_update AFTER UPDATE ON repos
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION mrgate_repo_status_on_repos_update();
