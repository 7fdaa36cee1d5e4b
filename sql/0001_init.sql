-- 0001_init: users, sessions, API tokens, login throttling, audit log.
-- Shipped migrations are never edited; a change is a new numbered file.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_hash text NOT NULL,              -- argon2id, libsodium crypto_pwhash_str format
    is_admin      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Browser sessions. Only a SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    token_hash  text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- API tokens for scripts (Authorization: Bearer). Only a SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    hint         text NOT NULL,               -- last 4 characters, for listings
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- Failed logins per key ("user:NAME" or "ip:ADDR") in a sliding window, shared by all instances.
CREATE TABLE login_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,                 -- username, "token:NAME", or "system"
    action     text NOT NULL,                 -- e.g. "user.login", "config.update"
    target     text,
    before     jsonb,
    after      jsonb,
    details    jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
