-- 0020_discovery_writes_less: what a sync of a large group no longer writes or recomputes.
--
-- The repo list's substring and activity indexes on repos go. The list reads repo_status_stored (0011), which has
-- its own trigram and activity indexes; nothing reads repos by a substring or in last-activity order any more.
-- Every repo a sync lists still wrote both: the trigram GIN entry of its path (one per three characters) and the
-- activity B-tree entry, on each insert and on each update that could not stay a heap-only update, about a tenth
-- of the upsert of a discovery page.
DROP INDEX repos_search_idx;
DROP INDEX repos_activity_idx;

-- A sync run becoming done refreshed the stored status of every repo first seen since its start: after the first
-- sync of 100,000 repos, all of them (4.7 s on this machine, after the listing, recomputing rows that could not
-- change). A repo is `new` only while more than one run is done (repo_status_computed, 0007), so those repos are
-- candidates only then; the repos `new` now are candidates always (they may stop being new).
CREATE OR REPLACE FUNCTION mrgate_repo_status_on_sync_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_since timestamptz; -- repos first seen since then can be `new` (NULL: none can)
BEGIN
    IF (SELECT count(*) FROM sync_runs WHERE state = 'done') > 1 THEN
        new_since := (SELECT started_at FROM sync_runs WHERE state = 'done' ORDER BY id DESC LIMIT 1);
    END IF;
    PERFORM mrgate_repo_status_refresh(ARRAY(
        SELECT id FROM repo_status_stored WHERE status = 'new' UNION SELECT id FROM repos WHERE first_seen >= new_since));
    RETURN NULL;
END
$$;
