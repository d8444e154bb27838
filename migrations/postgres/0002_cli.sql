-- Stations and developers on the TofuPilot CLI (spec/CLI.md): setup tokens, CLI
-- installations, the device login flow and per-organization CLI settings.
-- Postgres dialect; the SQLite twin (migrations/sqlite/0002_cli.sql) has the same tables.

-- Where a key came from. NULL: an admin path (seed file, `tofulab keys create`, first
-- start) — such keys are never revoked by CLI flows. `cli_installation`: minted by
-- redeeming a setup token. `cli_login`: minted by the device login of a developer.
ALTER TABLE api_keys ADD COLUMN source TEXT
    CHECK (source IS NULL OR source IN ('cli_installation', 'cli_login'));

-- Single-use, expiring tokens that install the CLI on one station. Only the SHA-256 of
-- the token is stored.
CREATE TABLE setup_tokens (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    station_id  UUID NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX setup_tokens_station ON setup_tokens (station_id);

-- One row per `tofupilot login --token` on a station. A station has at most one
-- `active` installation: a new one replaces (and revokes the key of) the previous.
CREATE TABLE cli_installations (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    station_id   UUID NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    api_key_id   UUID NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    hostname     TEXT NOT NULL,
    os           TEXT,
    platform     TEXT,
    mac_address  TEXT,
    cli_version  TEXT,
    status       TEXT NOT NULL
        CHECK (status IN ('active', 'replaced', 'logged_out', 'uninstalled')),
    created_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    replaced_by  UUID REFERENCES cli_installations(id) ON DELETE SET NULL
);
CREATE INDEX cli_installations_station ON cli_installations (station_id, created_at, id);
CREATE INDEX cli_installations_key ON cli_installations (api_key_id);

-- Device authorization requests (RFC 8628) of `tofupilot login`. The device code and
-- the access token are stored as SHA-256 digests; the short user code is what an
-- administrator approves. Approval names a user by email (`email_key`): the access
-- token then reaches every organization that has a user with that email.
CREATE TABLE device_codes (
    id                 UUID PRIMARY KEY,
    device_code_hash   TEXT NOT NULL UNIQUE,
    user_code          TEXT NOT NULL UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    interval_secs      BIGINT NOT NULL,
    last_polled_at     TIMESTAMPTZ,
    approved_email_key TEXT,
    decided_at         TIMESTAMPTZ,
    denied             BOOLEAN NOT NULL DEFAULT FALSE,
    access_token_hash  TEXT UNIQUE,
    token_expires_at   TIMESTAMPTZ,
    token_used_at      TIMESTAMPTZ
);

-- Settings the CLI reads from `GET /api/cli/config`, per organization. Keys not stored
-- here take tofulab's defaults.
CREATE TABLE cli_settings (
    org_id  UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
);
