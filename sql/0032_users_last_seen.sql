-- 0032_users_last_seen: a user's "last seen" outlives their sessions.
--
-- GET /api/users computed last_seen_at from the user's sessions alone, and an admin's password reset, a disable, the
-- user's own password change, a logout or the expiry sweep deletes sessions: the Users page then said "never" of an
-- account that had been used an hour before, which is what an admin looks at when investigating it. A deleted
-- session now leaves its last_seen on the user (the later of the two), and the listing reads the later of that and
-- the sessions still open.
ALTER TABLE users ADD COLUMN last_seen_at timestamptz;

CREATE FUNCTION mrgate_users_keep_last_seen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- a user deleted in the same statement (ON DELETE CASCADE) is no longer there to update
    UPDATE users u SET last_seen_at = greatest(u.last_seen_at, o.seen)
      FROM (SELECT user_id, max(last_seen) AS seen FROM old_rows GROUP BY user_id) o
     WHERE u.id = o.user_id AND u.last_seen_at IS DISTINCT FROM greatest(u.last_seen_at, o.seen);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_keep_last_seen AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mrgate_users_keep_last_seen();
