-- 0016_repo_status_refresh_indexed: keep the stored status of a few repos current by index reads, whatever the
-- number of repos.
--
-- mrgate_repo_status_refresh(ids) (0011) ran one statement for any ids: INSERT ... SELECT FROM repo_status_computed
-- WHERE id = ANY (ids). PL/pgSQL caches that statement's generic plan, which guesses ten ids and joins
-- repo_gitlab_state and config_repos by hashing them whole: every refresh read both tables from end to end. An
-- apply records each repo's result in its own statement, so each repo paid a scan of every repo's GitLab state:
-- 1.3 to 3.0 ms a refresh at 1,000 repos on this machine, and more with more repos.
--
-- Now up to 16 ids (an apply item, a repo's config, a webhook's repo) are refreshed one by one by a statement on
-- one id (c.id = one: its cached plan reads each table by its key; 0.24 to 0.51 ms in the same runs), and more (a
-- discovery page, a group's config, every repo) by the one statement over all of them as before, where hashing
-- pays. The row locks are taken as before: repo_gitlab_state's, then repo_status_stored's, in id order.
--
-- The function is written by mrgate_repo_status_refresh_define(), which lists the stored columns from the
-- catalog: a later migration that adds a column to repo_status_stored (and to repo_status_computed) calls it
-- again, and the refresh copies the new column too.

CREATE FUNCTION mrgate_repo_status_refresh_define() RETURNS void
LANGUAGE plpgsql AS $define$
DECLARE
    sets text;
BEGIN
    SELECT string_agg(format('%1$I = excluded.%1$I', attname), ', ' ORDER BY attnum) INTO sets
      FROM pg_attribute
     WHERE attrelid = 'repo_status_stored'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'id';
    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION mrgate_repo_status_refresh(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    one bigint;
BEGIN
    -- one shape of statement per branch whatever ids holds, so that their cached (generic) plans stay good
    ids := coalesce(ids, ARRAY(SELECT id FROM repos));
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    -- the apply writes repo_gitlab_state and then (its trigger) the stored row: lock in that order too, so that a
    -- config change and a running apply wait for each other instead of deadlocking
    PERFORM 1 FROM repo_gitlab_state WHERE repo_id = ANY (ids) ORDER BY repo_id FOR NO KEY UPDATE;
    PERFORM 1 FROM repo_status_stored WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    IF cardinality(ids) > 16 THEN
        INSERT INTO repo_status_stored AS s SELECT * FROM repo_status_computed c WHERE c.id = ANY (ids)
        ON CONFLICT (id) DO UPDATE SET %1$s WHERE s IS DISTINCT FROM excluded;
        RETURN;
    END IF;
    FOREACH one IN ARRAY ids LOOP
        INSERT INTO repo_status_stored AS s SELECT * FROM repo_status_computed c WHERE c.id = one
        ON CONFLICT (id) DO UPDATE SET %1$s WHERE s IS DISTINCT FROM excluded;
    END LOOP;
END
$body$
$fn$, sets);
END
$define$;

SELECT mrgate_repo_status_refresh_define();
