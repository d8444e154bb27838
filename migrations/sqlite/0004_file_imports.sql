-- Structured imports of files that become several runs (STDF, ATDF, …): which runs a
-- file produced, in file order, so a second import of the same bytes answers with
-- them, and a claim that keeps two imports of the same bytes from running at once.
--
-- A row is 'importing' while its runs are being written (heartbeat_at refreshed after
-- every batch) and 'done' once complete. An import that fails deletes its runs and its
-- row; one whose process died is taken over once its heartbeat is stale.
CREATE TABLE file_imports (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    upload_id     TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    importer      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('importing', 'done')),
    created_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX file_imports_claim ON file_imports (org_id, sha256)
    WHERE state = 'importing';
CREATE INDEX file_imports_sha256 ON file_imports (org_id, sha256);

CREATE TABLE file_import_runs (
    import_id  TEXT NOT NULL REFERENCES file_imports(id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    PRIMARY KEY (import_id, position)
);
CREATE INDEX file_import_runs_run ON file_import_runs (run_id);
