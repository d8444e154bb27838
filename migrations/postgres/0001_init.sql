-- tofulab schema, Postgres dialect. The SQLite twin (migrations/sqlite) has the same
-- tables, columns and indexes. Conventions:
--   ids          UUID
--   timestamps   TIMESTAMPTZ (microsecond precision)
--   JSON         JSONB
--   *_key        lower-cased copy of a case-insensitive natural key; unique indexes use it
-- Every resource row carries org_id: every query is scoped to the caller's organization.

CREATE TABLE organizations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    name        TEXT,
    image       TEXT,
    banned      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, email_key)
);

CREATE TABLE teams (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE stations (
    id                   UUID PRIMARY KEY,
    org_id               UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    team_id              UUID REFERENCES teams(id) ON DELETE SET NULL,
    image_attachment_id  UUID,
    metadata             JSONB,
    created_at           TIMESTAMPTZ NOT NULL,
    -- Removed stations that are still referenced are archived, not deleted: history stays readable.
    archived_at          TIMESTAMPTZ
);
CREATE INDEX stations_org_created ON stations (org_id, created_at, id);

CREATE TABLE api_keys (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- SHA-256 of the whole key, hex. The key itself is never stored.
    key_hash    TEXT NOT NULL UNIQUE,
    -- The first characters of the key, safe to show ("tp_user_AbC…").
    prefix      TEXT NOT NULL,
    user_id     UUID REFERENCES users(id) ON DELETE CASCADE,
    station_id  UUID REFERENCES stations(id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    CHECK ((user_id IS NULL) <> (station_id IS NULL))
);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_station ON api_keys (station_id);

CREATE TABLE procedures (
    id                  UUID PRIMARY KEY,
    org_id              UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    identifier          TEXT NOT NULL,
    identifier_key      TEXT NOT NULL,
    created_by_user_id  UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, identifier_key)
);
CREATE INDEX procedures_org_created ON procedures (org_id, created_at, id);

CREATE TABLE station_procedures (
    station_id    UUID NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    procedure_id  UUID NOT NULL REFERENCES procedures(id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (station_id, procedure_id)
);
CREATE INDEX station_procedures_procedure ON station_procedures (procedure_id);

CREATE TABLE procedure_versions (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    procedure_id           UUID NOT NULL REFERENCES procedures(id) ON DELETE CASCADE,
    tag                    TEXT NOT NULL,
    tag_key                TEXT NOT NULL,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (procedure_id, tag_key)
);

CREATE TABLE parts (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number                 TEXT NOT NULL,
    number_key             TEXT NOT NULL,
    name                   TEXT NOT NULL,
    metadata               JSONB,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, number_key)
);
CREATE INDEX parts_org_created ON parts (org_id, created_at, id);

CREATE TABLE revisions (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    part_id                UUID NOT NULL REFERENCES parts(id) ON DELETE CASCADE,
    number                 TEXT NOT NULL,
    number_key             TEXT NOT NULL,
    image_attachment_id    UUID,
    metadata               JSONB,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (part_id, number_key)
);
CREATE UNIQUE INDEX revisions_org_number ON revisions (org_id, number_key, part_id);

CREATE TABLE batches (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number                 TEXT NOT NULL,
    number_key             TEXT NOT NULL,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, number_key)
);
CREATE INDEX batches_org_created ON batches (org_id, created_at, id);

CREATE TABLE units (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    serial_number          TEXT NOT NULL,
    serial_key             TEXT NOT NULL,
    -- part_id duplicates revisions.part_id so part filters need no join.
    part_id                UUID NOT NULL REFERENCES parts(id),
    revision_id            UUID NOT NULL REFERENCES revisions(id),
    batch_id               UUID REFERENCES batches(id) ON DELETE SET NULL,
    parent_id              UUID REFERENCES units(id) ON DELETE SET NULL,
    sample                 TEXT,
    metadata               JSONB,
    created_during_run_id  UUID,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, serial_key)
);
CREATE INDEX units_org_created ON units (org_id, created_at, id);
CREATE INDEX units_part ON units (part_id);
CREATE INDEX units_revision ON units (revision_id);
CREATE INDEX units_batch ON units (batch_id);
CREATE INDEX units_parent ON units (parent_id);
CREATE INDEX units_created_during ON units (created_during_run_id);

CREATE TABLE runs (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    procedure_id           UUID NOT NULL REFERENCES procedures(id) ON DELETE CASCADE,
    version_id             UUID REFERENCES procedure_versions(id),
    unit_id                UUID NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    -- The part revision and batch the unit had for this run; later runs may move the unit.
    revision_id            UUID NOT NULL REFERENCES revisions(id),
    batch_id               UUID REFERENCES batches(id) ON DELETE SET NULL,
    outcome                TEXT NOT NULL,
    started_at             TIMESTAMPTZ NOT NULL,
    ended_at               TIMESTAMPTZ NOT NULL,
    duration_us            BIGINT NOT NULL,
    docstring              TEXT,
    operated_by_user_id    UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    client_run_ref         TEXT,
    execution_id           TEXT,
    slot_key               TEXT,
    slot_name              TEXT,
    deployment_id          TEXT,
    metadata               JSONB,
    config                 JSONB,
    secrets                JSONB,
    sequences              JSONB,
    created_at             TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX runs_client_run_ref ON runs (org_id, client_run_ref) WHERE client_run_ref IS NOT NULL;
CREATE INDEX runs_org_started ON runs (org_id, started_at, id);
CREATE INDEX runs_org_created ON runs (org_id, created_at, id);
CREATE INDEX runs_org_outcome_started ON runs (org_id, outcome, started_at, id);
CREATE INDEX runs_org_duration ON runs (org_id, duration_us, id);
CREATE INDEX runs_unit_started ON runs (unit_id, started_at, id);
CREATE INDEX runs_procedure_started ON runs (procedure_id, started_at, id);
CREATE INDEX runs_version ON runs (version_id, started_at, id);
CREATE INDEX runs_revision ON runs (revision_id, started_at, id);
CREATE INDEX runs_batch ON runs (batch_id, started_at, id);
ALTER TABLE units ADD CONSTRAINT units_created_during_run_fk
    FOREIGN KEY (created_during_run_id) REFERENCES runs(id) ON DELETE SET NULL;

CREATE TABLE phases (
    id             UUID PRIMARY KEY,
    run_id         UUID NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position       BIGINT NOT NULL,
    name           TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    ended_at       TIMESTAMPTZ NOT NULL,
    duration_us    BIGINT NOT NULL,
    retry_count    BIGINT NOT NULL,
    docstring      TEXT,
    sequence_path  TEXT
);
CREATE INDEX phases_run ON phases (run_id, position);

CREATE TABLE measurements (
    id              UUID PRIMARY KEY,
    run_id          UUID NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    phase_id        UUID NOT NULL REFERENCES phases(id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    name            TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    measured_value  JSONB,
    units           TEXT,
    docstring       TEXT,
    validators      JSONB,
    aggregations    JSONB,
    data_series     JSONB,
    -- Typed copies of measured_value for the measurement list filters.
    measurement_type  TEXT NOT NULL,
    value_number      DOUBLE PRECISION,
    value_bool        BOOLEAN,
    value_string      TEXT
);
CREATE INDEX measurements_run ON measurements (run_id);
CREATE INDEX measurements_phase ON measurements (phase_id, position);

CREATE TABLE logs (
    id           UUID PRIMARY KEY,
    run_id       UUID NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    level        TEXT NOT NULL,
    timestamp    TIMESTAMPTZ NOT NULL,
    message      TEXT NOT NULL,
    source_file  TEXT NOT NULL,
    line_number  BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX logs_run ON logs (run_id, position);

CREATE TABLE run_sub_units (
    run_id    UUID NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    unit_id   UUID NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    PRIMARY KEY (run_id, unit_id)
);
CREATE INDEX run_sub_units_unit ON run_sub_units (unit_id);

-- Files. An attachment is what clients see; its bytes live in one blob made of 1 MiB
-- chunks. Deleting a run or unit cascades to its attachments, their blobs and chunks.
CREATE TABLE attachments (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    content_type           TEXT,
    size                   BIGINT,
    sha256                 TEXT,
    -- The blob holding the current bytes (null until an upload completed).
    blob_id                UUID,
    run_id                 UUID REFERENCES runs(id) ON DELETE CASCADE,
    unit_id                UUID REFERENCES units(id) ON DELETE CASCADE,
    is_report              BOOLEAN NOT NULL DEFAULT FALSE,
    created_by_user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_station_id  UUID REFERENCES stations(id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    uploaded_at            TIMESTAMPTZ,
    finalized_at           TIMESTAMPTZ,
    -- Set when the upload is linked to anything (run, unit, image, import); unlinked
    -- uploads are removed after a configurable time.
    linked_at              TIMESTAMPTZ
);
CREATE INDEX attachments_run ON attachments (run_id);
CREATE INDEX attachments_unit ON attachments (unit_id);
CREATE INDEX attachments_unlinked ON attachments (created_at) WHERE linked_at IS NULL;
-- Imported reports by content, to find a file already imported (duplicate imports).
CREATE INDEX attachments_report_sha256 ON attachments (org_id, sha256) WHERE is_report;

CREATE TABLE blobs (
    id             UUID PRIMARY KEY,
    attachment_id  UUID NOT NULL REFERENCES attachments(id) ON DELETE CASCADE,
    -- 'writing' while chunks arrive, 'complete' once size and digest are recorded.
    state          TEXT NOT NULL,
    size           BIGINT,
    sha256         TEXT,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX blobs_attachment ON blobs (attachment_id);

CREATE TABLE blob_chunks (
    blob_id  UUID NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (blob_id, seq)
);

-- Server-wide secrets and settings (the URL signing key lives here so that signed URLs
-- survive restarts).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
