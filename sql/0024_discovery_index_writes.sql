-- 0024_discovery_index_writes: what each new repo a sync lists no longer writes or checks.
--
-- A sync of 100,000 new repos is bound by PostgreSQL's CPU (docs/PERFORMANCE.md, "Discovery"), and a profile of a
-- backend storing pages puts 41 % of it in index insertion and 8 % in the foreign-key check of repo_status_stored.
-- Measured on the statement a sync runs per page (1,000 pages of 100 new repos, one connection; the best of three
-- runs each): 6.7 s as before, 5.9 s with what follows.
--
-- repos_namespace_idx (0002) is read by nothing: the prefix matches on namespace_full_path (UNDER in
-- core/gateconfig.c) compare in the database's collation, which an index in the "C" collation cannot serve (EXPLAIN
-- shows a sequential scan even with sequential scans disabled), and the other reads of it scan every repo anyway.
DROP INDEX repos_namespace_idx;

-- repos_first_seen_idx (0011) serves one read per completed sync (the repos first seen since the latest done run
-- can be `new`, 0020), where a sequential scan of 100,000 repos takes about 10 ms, against a B-tree entry written
-- for every repo a sync inserts.
DROP INDEX repos_first_seen_idx;

-- The foreign key of repo_status_stored checked, for every stored row inserted, that its repo exists. A stored row
-- is only ever inserted by mrgate_repo_status_refresh from repo_status_computed, that is from repos itself, and
-- repos are never deleted (a repo GitLab no longer lists is kept with removed_at). The cascade it gave the one who
-- deletes a repo by hand is kept by a trigger.
ALTER TABLE repo_status_stored DROP CONSTRAINT repo_status_stored_id_fkey;

CREATE FUNCTION mrgate_repo_status_on_repos_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM repo_status_stored WHERE id IN (SELECT id FROM old_rows);
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_repos_delete AFTER DELETE ON repos REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repos_delete();
