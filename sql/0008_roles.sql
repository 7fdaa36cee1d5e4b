-- Roles (issue #12): admin (connection, settings, hook mode, users, tokens), editor (configs, configure/apply,
-- exceptions, sync, job retry/cancel), viewer (reads). Existing admins stay admins, every other user becomes an
-- editor (what they could do before, less the admin duties). A disabled user's sessions and tokens stop at once:
-- every request joins users and checks `disabled`.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'editor' CHECK (role IN ('admin', 'editor', 'viewer'));
UPDATE users SET role = CASE WHEN is_admin THEN 'admin' ELSE 'editor' END;
ALTER TABLE users DROP COLUMN is_admin;
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- The login throttle decides and records in one statement (core/auth.c): `refused` says whether the statement
-- that last touched the row found it locked, so the caller learns the decision from RETURNING.
ALTER TABLE login_failures ADD COLUMN refused boolean NOT NULL DEFAULT false;
