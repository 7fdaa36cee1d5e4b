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
-- The refresh (mrgate_repo_status_refresh) first locks the stored rows it will rewrite, in id order, and then
-- recomputes them with a fresh snapshot (a VOLATILE function's statements each take one under READ COMMITTED). Two
-- transactions changing inputs of the same repo therefore refresh it one after the other, and the later one reads
-- the earlier one's committed inputs: no lost update. The one window left: a repo inserted by a discovery that
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
    IF ids IS NOT NULL AND cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM repo_status_stored WHERE ids IS NULL OR id = ANY (ids) ORDER BY id FOR UPDATE;
    INSERT INTO repo_status_stored AS s
    SELECT * FROM repo_status_computed c WHERE ids IS NULL OR c.id = ANY (ids)
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

-- repos: the rows a statement inserted or updated.
CREATE FUNCTION mrgate_repo_status_on_repos() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mrgate_repo_status_refresh(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_repos_ins AFTER INSERT ON repos REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repos();
CREATE TRIGGER repo_status_repos_upd AFTER UPDATE ON repos REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repos();

-- config_repos and repo_gitlab_state: the repo_id of every row a statement inserted, updated or deleted.
CREATE FUNCTION mrgate_repo_status_on_repo_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM mrgate_repo_status_refresh(ARRAY(SELECT repo_id FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM mrgate_repo_status_refresh(ARRAY(SELECT repo_id FROM new_rows UNION SELECT repo_id FROM old_rows));
    ELSE
        PERFORM mrgate_repo_status_refresh(ARRAY(SELECT repo_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_config_repos_ins AFTER INSERT ON config_repos REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repo_rows();
CREATE TRIGGER repo_status_config_repos_upd AFTER UPDATE ON config_repos
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repo_rows();
CREATE TRIGGER repo_status_config_repos_del AFTER DELETE ON config_repos REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repo_rows();
CREATE TRIGGER repo_status_gitlab_state_ins AFTER INSERT ON repo_gitlab_state REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repo_rows();
CREATE TRIGGER repo_status_gitlab_state_upd AFTER UPDATE ON repo_gitlab_state
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repo_rows();
CREATE TRIGGER repo_status_gitlab_state_del AFTER DELETE ON repo_gitlab_state REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_repo_rows();

-- config_groups: every repo under each path a statement wrote or deleted. Paths match
-- ^[A-Za-z0-9_.-]+(/...)*$, so "under p" is the "C" range [p || '/', p || '0') of the path index ('0' follows '/').
CREATE FUNCTION mrgate_repo_status_on_config_groups() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    paths text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        paths := ARRAY(SELECT path FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        paths := ARRAY(SELECT path FROM new_rows UNION SELECT path FROM old_rows);
    ELSE
        paths := ARRAY(SELECT path FROM old_rows);
    END IF;
    PERFORM mrgate_repo_status_refresh(ARRAY(
        SELECT DISTINCT r.id FROM unnest(paths) p, repos r
        WHERE r.path_with_namespace COLLATE "C" >= p || '/' AND r.path_with_namespace COLLATE "C" < p || '0'));
    RETURN NULL;
END
$$;
CREATE TRIGGER repo_status_config_groups_ins AFTER INSERT ON config_groups REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_config_groups();
CREATE TRIGGER repo_status_config_groups_upd AFTER UPDATE ON config_groups
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_config_groups();
CREATE TRIGGER repo_status_config_groups_del AFTER DELETE ON config_groups REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_repo_status_on_config_groups();

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
