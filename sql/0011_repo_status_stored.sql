-- 0011_repo_status_stored: each repo's status and effective config stored, kept current by triggers, indexed for
-- every filter and sort of the repo list.
--
-- Before, the view repo_status (0004, 0007) computed every row on read: a status filter, the substring search and
-- count(*) read every repo and merged its configs. Now:
--   repo_status_computed  the old view, renamed and unchanged: the one definition of a repo's status and effective
--                         config. The refresh below and the consistency test (tests/http/test_repo_status_stored.py)
--                         read it; nothing else should.
--   repo_status_stored    a table with exactly its columns, one row per repo, indexed for the list.
--   repo_status           a view over the table with the same columns as before, so every reader is now cheap.
--
-- Kept current in the same transactions that change the inputs, by PostgreSQL triggers on every input table:
-- repos (discovery), config_default, config_groups (every repo under the path), config_repos, repo_gitlab_state
-- (apply), group_hook (existence) and sync_runs (the `new` status reads the last done sync). Why triggers rather
-- than refresh calls in the C writers: every writer, present and future (the CLI, imports, tests seeding SQL, other
-- modules), stays correct without knowing about the table, and the refresh runs in the writer's transaction, so a
-- reader never sees a config without its effect. Why statement-level triggers with transition tables: one refresh
-- over all the repo ids a statement touched (a discovery page, a bulk configure of 10,000 repos) is one
-- set-based INSERT ... SELECT instead of 10,000 single-row recomputations; sync_runs alone uses row triggers with
-- WHEN, so its frequent progress updates cost nothing.
--
-- The refresh (mrgate_repo_status_refresh) first locks the rows it depends on and will rewrite, in id order (the
-- repos' repo_gitlab_state rows, then their stored rows: the order an apply takes them in, so the two cannot
-- deadlock), and then recomputes them with a fresh snapshot (a VOLATILE function's statements each take one under
-- READ COMMITTED). Two transactions changing inputs of the same repo therefore refresh it one after the other, and
-- the later one reads the earlier one's committed inputs: no lost update. The one window left: a repo inserted by a discovery that
-- commits while a concurrent group/default config change is between its id lookup and its commit keeps the older
-- config until its next refresh; every sync rewrites every listed repo (last_seen), which refreshes it.
-- A rewrite that would change nothing is skipped (ON CONFLICT ... WHERE ... IS DISTINCT FROM), so a sync that
-- changes nothing writes no stored row twice.

ALTER VIEW repo_status RENAME TO repo_status_computed;

CREATE TABLE repo_status_stored AS SELECT * FROM repo_status_computed WITH NO DATA;
ALTER TABLE repo_status_stored
    ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (id) REFERENCES repos (id) ON DELETE CASCADE,
    ALTER COLUMN status SET NOT NULL;
INSERT INTO repo_status_stored SELECT * FROM repo_status_computed;

CREATE VIEW repo_status AS SELECT * FROM repo_status_stored;

-- The list's shapes (core/repos.c): every repo not removed (the default) or one status; by path or by last activity,
-- either direction; narrowed by group (a path prefix: path_with_namespace COLLATE "C" LIKE 'g/%'), archived, a
-- substring (trigram) or ids (the primary key). The partial indexes serve the default "not removed" list; the small
-- (status, archived) index makes the capped count of a status or archived filter an index-only scan.
CREATE INDEX repo_status_stored_path_idx ON repo_status_stored ((path_with_namespace COLLATE "C"), id)
    WHERE status <> 'removed';
CREATE INDEX repo_status_stored_activity_idx
    ON repo_status_stored ((coalesce(last_activity_at, '-infinity'::timestamptz)), id) WHERE status <> 'removed';
CREATE INDEX repo_status_stored_status_path_idx ON repo_status_stored (status, (path_with_namespace COLLATE "C"), id);
CREATE INDEX repo_status_stored_status_activity_idx
    ON repo_status_stored (status, (coalesce(last_activity_at, '-infinity'::timestamptz)), id);
CREATE INDEX repo_status_stored_archived_idx ON repo_status_stored ((path_with_namespace COLLATE "C"), id)
    WHERE archived;
CREATE INDEX repo_status_stored_count_idx ON repo_status_stored (status, archived);
CREATE INDEX repo_status_stored_search_idx ON repo_status_stored USING gin (path_with_namespace gin_trgm_ops);
-- for the refresh after a sync is done (repos first seen since its start)
CREATE INDEX repos_first_seen_idx ON repos (first_seen);

-- Recompute the stored rows of these repos (NULL: every repo) from repo_status_computed.
CREATE FUNCTION mrgate_repo_status_refresh(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- one shape of statement whatever ids holds, so that a cached (generic) plan stays an indexed read
    ids := coalesce(ids, ARRAY(SELECT id FROM repos));
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    -- the apply writes repo_gitlab_state and then (its trigger) the stored row: lock in that order too, so that a
    -- config change and a running apply wait for each other instead of deadlocking
    PERFORM 1 FROM repo_gitlab_state WHERE repo_id = ANY (ids) ORDER BY repo_id FOR NO KEY UPDATE;
    PERFORM 1 FROM repo_status_stored WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    INSERT INTO repo_status_stored AS s
    SELECT * FROM repo_status_computed c WHERE c.id = ANY (ids)
    ON CONFLICT (id) DO UPDATE SET
        path = excluded.path, name = excluded.name, path_with_namespace = excluded.path_with_namespace,
        namespace_id = excluded.namespace_id, namespace_full_path = excluded.namespace_full_path,
        web_url = excluded.web_url, default_branch = excluded.default_branch, archived = excluded.archived,
        marked_for_deletion = excluded.marked_for_deletion, access_level = excluded.access_level,
        last_activity_at = excluded.last_activity_at, first_seen = excluded.first_seen,
        last_seen = excluded.last_seen, removed_at = excluded.removed_at, seen_sync = excluded.seen_sync,
        status = excluded.status, effective_config = excluded.effective_config,
        config_sources = excluded.config_sources, inherited_config = excluded.inherited_config,
        own_config = excluded.own_config, exception = excluded.exception, unmanaged = excluded.unmanaged,
        gitlab_want = excluded.gitlab_want, gitlab_have = excluded.gitlab_have,
        apply_result = excluded.apply_result, apply_message = excluded.apply_message,
        applied_at = excluded.applied_at, hook_id = excluded.hook_id
    WHERE s IS DISTINCT FROM excluded;
END
$$;

-- The repos a statement changed, from its transition tables (new_rows, old_rows; which exist depends on TG_OP) and
-- the key column TG_ARGV[0]: "id" (repos), "repo_id" (config_repos, repo_gitlab_state) or "path" (config_groups:
-- every repo under each path; paths match ^[A-Za-z0-9_.-]+(/...)*$, so "under p" is the "C" range
-- [p || '/', p || '0') of the path index, '0' following '/').
CREATE FUNCTION mrgate_repo_status_on_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT %1$I AS k FROM new_rows'
                               WHEN 'DELETE' THEN 'SELECT %1$I AS k FROM old_rows'
                               ELSE 'SELECT %1$I AS k FROM new_rows UNION SELECT %1$I FROM old_rows' END;
    keys text[];
BEGIN
    EXECUTE format('SELECT array_agg(DISTINCT k::text) FROM (' || changed || ') c', TG_ARGV[0]) INTO keys;
    IF TG_ARGV[0] = 'path' THEN
        PERFORM mrgate_repo_status_refresh(ARRAY(
            SELECT DISTINCT r.id FROM unnest(keys) p, repos r
            WHERE r.path_with_namespace COLLATE "C" >= p || '/' AND r.path_with_namespace COLLATE "C" < p || '0'));
    ELSE
        PERFORM mrgate_repo_status_refresh(coalesce(keys, '{}')::bigint[]);
    END IF;
    RETURN NULL;
END
$$;

-- The statement triggers of table t on the events ev (each event its own trigger: one with transition tables
-- fires for one event), calling mrgate_repo_status_on_change(key). Used below, then dropped.
CREATE FUNCTION mrgate_repo_status_triggers(t text, key text, ev text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    e text;
BEGIN
    FOREACH e IN ARRAY ev LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s FOR EACH STATEMENT'
                       ' EXECUTE FUNCTION mrgate_repo_status_on_change(%L)',
                       'repo_status_' || t || '_' || lower(e), e, t,
                       CASE e WHEN 'INSERT' THEN 'NEW TABLE AS new_rows' WHEN 'DELETE' THEN 'OLD TABLE AS old_rows'
                              ELSE 'NEW TABLE AS new_rows OLD TABLE AS old_rows' END, key);
    END LOOP;
END
$$;
-- repos are never deleted (removed_at), and a deleted one's stored row goes with it (ON DELETE CASCADE)
SELECT mrgate_repo_status_triggers('repos', 'id', '{INSERT,UPDATE}');
SELECT mrgate_repo_status_triggers('config_repos', 'repo_id', '{INSERT,UPDATE,DELETE}');
SELECT mrgate_repo_status_triggers('repo_gitlab_state', 'repo_id', '{INSERT,UPDATE,DELETE}');
SELECT mrgate_repo_status_triggers('config_groups', 'path', '{INSERT,UPDATE,DELETE}');
DROP FUNCTION mrgate_repo_status_triggers(text, text, text[]);

-- config_default: every repo (a rare, deliberate change; about a second per 100,000 repos here).
CREATE FUNCTION mrgate_repo_status_on_config_default() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(NULL);
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_config_default AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON config_default
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_config_default();

-- group_hook: its existence turns repos applied without a project hook into `gated`; only those can change.
CREATE FUNCTION mrgate_repo_status_on_group_hook() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT repo_id FROM repo_gitlab_state WHERE applied_state <> 'off'));
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_group_hook AFTER INSERT OR DELETE OR TRUNCATE ON group_hook
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_group_hook();

-- sync_runs: a run becoming (or ceasing to be) done moves the `new` window; the repos that can change are those
-- `new` now and those first seen since the start of the latest done run.
CREATE FUNCTION mrgate_repo_status_on_sync_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(ARRAY(
        SELECT id FROM repo_status_stored WHERE status = 'new'
        UNION
        SELECT id FROM repos
        WHERE first_seen >= (SELECT started_at FROM sync_runs WHERE state = 'done' ORDER BY id DESC LIMIT 1)));
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_sync_runs_ins AFTER INSERT ON sync_runs FOR EACH ROW WHEN (NEW.state = 'done')
    EXECUTE FUNCTION mrgate_repo_status_on_sync_runs();
CREATE TRIGGER repo_status_sync_runs_upd AFTER UPDATE ON sync_runs FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND (OLD.state = 'done' OR NEW.state = 'done')
          OR (NEW.state = 'done' AND OLD.started_at IS DISTINCT FROM NEW.started_at))
    EXECUTE FUNCTION mrgate_repo_status_on_sync_runs();
CREATE TRIGGER repo_status_sync_runs_del AFTER DELETE ON sync_runs FOR EACH ROW WHEN (OLD.state = 'done')
    EXECUTE FUNCTION mrgate_repo_status_on_sync_runs();
