-- 0022_repo_status_refresh_one_generic: the refresh of one repo's stored status uses its cached generic plan from
-- a connection's first refresh on.
--
-- mrgate_repo_status_refresh (0016) refreshes up to 16 repos one by one with a statement on one id. PL/pgSQL plans
-- a statement with parameters afresh for each of its first five runs on a connection (PostgreSQL's plan_cache_mode
-- auto), and planning repo_status_computed for one id costs more than running it: measured in one psql session per
-- run on 1,000 repos, an apply's outcome write took 6-9 ms the first time (PL/pgSQL compiling the functions, the
-- catalog caches), 1.5-2.5 ms for the next five and 0.4-0.8 ms from then on. Every connection of mrgate's pool pays
-- those five plans, and an apply's workers take up a dozen connections at once: at the start of an apply of 1,000
-- repos at 16 GitLab requests in flight, the plans kept PostgreSQL's two cores busy and left GitLab slots idle.
--
-- Now the statement on one id is a function of its own, whose plan_cache_mode is force_generic_plan: it is planned
-- once per connection (runs 2 to 6 took 0.5-1.1 ms in the same measurement). The refresh of more than 16 ids stays
-- as it was (planned with the ids it is given, where hashing pays). mrgate_repo_status_refresh_define() writes both
-- functions from the catalog's columns as before.

CREATE OR REPLACE FUNCTION mrgate_repo_status_refresh_define() RETURNS void
LANGUAGE plpgsql AS $define$
DECLARE
    sets text;
BEGIN
    SELECT string_agg(format('%1$I = excluded.%1$I', attname), ', ' ORDER BY attnum) INTO sets
      FROM pg_attribute
     WHERE attrelid = 'repo_status_stored'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'id';
    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION mrgate_repo_status_refresh_one(one bigint) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $body$
BEGIN
    -- the caller holds the row locks (mrgate_repo_status_refresh)
    INSERT INTO repo_status_stored AS s SELECT * FROM repo_status_computed c WHERE c.id = one
    ON CONFLICT (id) DO UPDATE SET %1$s WHERE s IS DISTINCT FROM excluded;
END
$body$
$fn$, sets);
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
        PERFORM mrgate_repo_status_refresh_one(one);
    END LOOP;
END
$body$
$fn$, sets);
END
$define$;

SELECT mrgate_repo_status_refresh_define();
