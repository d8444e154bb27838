-- Dashboard sign-in sessions. The cookie carries a random token; only its SHA-256 is
-- stored. A session belongs to the user API key that opened it and dies with it.
CREATE TABLE web_sessions (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    api_key_id  TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
CREATE INDEX web_sessions_key ON web_sessions (api_key_id);
