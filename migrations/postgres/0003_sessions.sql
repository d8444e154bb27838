-- Dashboard sign-in sessions. The cookie carries a random token; only its SHA-256 is
-- stored. A session belongs to the user API key that opened it and dies with it.
CREATE TABLE web_sessions (
    id          UUID PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    org_id      UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    api_key_id  UUID NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
CREATE INDEX web_sessions_key ON web_sessions (api_key_id);
