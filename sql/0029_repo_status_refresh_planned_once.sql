-- 0029_repo_status_refresh_planned_once: refreshing a few repos' stored status plans nothing after a connection's
-- first refresh.
--
-- pg_stat_statements with track = all over an apply of 500 repos (bench/apply, first apply and re-apply) counted the
-- statements inside the refresh that PostgreSQL planned again on every run, as PL/pgSQL and SQL functions do for a
-- statement with parameters whose custom plan looks cheaper than the generic one, and for the body of an SQL
-- function that cannot be inlined (planned once per call of the statement that calls it):
--   the two row-locking statements of mrgate_repo_status_refresh (`= ANY (ids)`)  1,004 plans  129 ms
--   ids := coalesce(ids, ARRAY(SELECT id FROM repos))                              1,016 plans   31 ms
--   the body of mrgate_path_prefixes                                                 500 plans   68 ms
--   the body of mrgate_key_labels                                                  1,000 plans   35 ms
-- about 0.25 ms of PostgreSQL's CPU per repo applied, planning more than running (the same statements ran in
-- 250 ms). Now:
--   - the refresh of up to 16 repos locks their rows through mrgate_repo_status_lock, whose plan_cache_mode is
--     force_generic_plan (the primary-key scan its generic plan is, whatever the ids); more than 16 are locked as
--     before, planned with the ids they are;
--   - ids is replaced only when it is NULL (the condition is a simple expression, planned once);
--   - mrgate_path_prefixes and mrgate_key_labels are PL/pgSQL: the first is plain expressions, the second one query
--     cached per connection. They return what the SQL versions returned, strict and immutable as they were.
-- mrgate_repo_status_refresh_define() writes the refresh functions from the catalog's columns as before.

CREATE FUNCTION mrgate_repo_status_lock(ids bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    -- the apply writes repo_gitlab_state and then (its trigger) the stored row: lock in that order too, so that a
    -- config change and a running apply wait for each other instead of deadlocking
    PERFORM 1 FROM repo_gitlab_state WHERE repo_id = ANY (ids) ORDER BY repo_id FOR NO KEY UPDATE;
    PERFORM 1 FROM repo_status_stored WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
END
$$;

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
    IF ids IS NULL THEN
        ids := ARRAY(SELECT id FROM repos);
    END IF;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(ids) > 16 THEN
        -- the lock order of mrgate_repo_status_lock, planned with the ids given (many: hashing may pay)
        PERFORM 1 FROM repo_gitlab_state WHERE repo_id = ANY (ids) ORDER BY repo_id FOR NO KEY UPDATE;
        PERFORM 1 FROM repo_status_stored WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
        INSERT INTO repo_status_stored AS s SELECT * FROM repo_status_computed c WHERE c.id = ANY (ids)
        ON CONFLICT (id) DO UPDATE SET %1$s WHERE s IS DISTINCT FROM excluded;
        RETURN;
    END IF;
    PERFORM mrgate_repo_status_lock(ids);
    FOREACH one IN ARRAY ids LOOP
        PERFORM mrgate_repo_status_refresh_one(one);
    END LOOP;
END
$body$
$fn$, sets);
END
$define$;

SELECT mrgate_repo_status_refresh_define();

CREATE OR REPLACE FUNCTION mrgate_path_prefixes(p text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    parts text[] := string_to_array(p, '/');
    res text[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(cardinality(parts), 0) LOOP
        res := res || array_to_string(parts[1:i], '/');
    END LOOP;
    RETURN res;
END
$$;

CREATE OR REPLACE FUNCTION mrgate_key_labels(cfg jsonb, label text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    res jsonb := '{}';
    k text;
BEGIN
    FOR k IN SELECT jsonb_object_keys(coalesce(cfg, '{}')) LOOP
        res := res || jsonb_build_object(k, label);
    END LOOP;
    RETURN res;
END
$$;
