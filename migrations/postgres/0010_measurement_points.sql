-- The measurement records the analytics read (ANALYTICS.md §4.1), one narrow row each:
-- numeric, with a value, not a data series, with at least one spec limit. Written with
-- the run in the same transaction, with what the analytics would otherwise join runs,
-- phases and units for and parse out of the validators: the run's procedure, unit and
-- times, the phase's name and start, the limits (`analytics::limits_from_validators`),
-- and whether the phase is its name's final attempt in the run. An analytics call then
-- reads one index range of this table instead of three tables and a JSON column per
-- record. Deleting the measurement (by cascade from its run) deletes the row.
CREATE TABLE measurement_points (
    measurement_id    UUID PRIMARY KEY REFERENCES measurements(id) ON DELETE CASCADE,
    run_id            UUID NOT NULL,
    org_id            UUID NOT NULL,
    procedure_id      UUID NOT NULL,
    unit_id           UUID NOT NULL,
    run_started_at    TIMESTAMPTZ NOT NULL,
    run_created_at    TIMESTAMPTZ NOT NULL,
    phase_started_at  TIMESTAMPTZ NOT NULL,
    phase             TEXT NOT NULL,
    measurement       TEXT NOT NULL,
    units             TEXT,
    value             DOUBLE PRECISION NOT NULL,
    lsl               DOUBLE PRECISION,
    usl               DOUBLE PRECISION,
    is_final          BOOLEAN NOT NULL
);
CREATE INDEX measurement_points_scope ON measurement_points (procedure_id, run_started_at);
CREATE INDEX measurement_points_series
    ON measurement_points (procedure_id, phase, measurement, run_started_at);

-- Rows written before this migration get their points from the server at its next
-- start (Db::backfill_measurement_points), which then deletes this row.
CREATE TABLE pending_backfills (name TEXT PRIMARY KEY);
INSERT INTO pending_backfills (name) VALUES ('measurement_points');

-- Flagged units (reference samples) are few: the analytics test a point's unit against
-- them (or the flags asked for) instead of looking up every point's unit.
CREATE INDEX units_flagged ON units (org_id, sample) WHERE sample IS NOT NULL;

-- Failed measurements are few: the failure Pareto by measurement finds them by run.
CREATE INDEX measurements_failed ON measurements (run_id) WHERE outcome = 'FAIL';
