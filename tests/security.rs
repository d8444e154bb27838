//! Security table (issue 6): one row per operation of the route inventory
//! (`tests/fixtures/operations.json`, written from the wire contract by
//! `scripts/operations-fixture`; with `TOFULAB_CONTRACT_DIR` set, the test also checks it
//! is up to date), each run against organization A's resources
//!
//! - with organization B's keys: everything naming A's resources is `404` and never shows
//!   A's data, lists show none of A's items, creates with A's natural keys make B's own
//!   rows (no `409` that would reveal A's), and A's data reads the same afterwards;
//! - with A's station key: exactly the permissions of BEHAVIOR.md §15 (403 before
//!   validation for forbidden operations, the run-creation link check of §1.1);
//! - with near misses of real keys (wrong, truncated, extended, re-cased, no `Bearer`,
//!   another scheme, duplicated headers): `401 UNAUTHORIZED` everywhere.
//!
//! The signed `/files/{id}` URLs carry no key; their own test checks that only an
//! untampered signature for that id and method opens them.

mod common;
mod legacy_support;
mod rows;

use std::collections::BTreeSet;

use common::*;
use legacy_support::{record, upload as upload_file, SAMPLE};
use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Value};

// A's natural keys and names: what B must never see unless it sent them itself.
const SN: &str = "ALPHA-SN-1";
const CHILD: &str = "ALPHA-CHILD";
const CHILD2: &str = "ALPHA-CHILD-2";
const PN: &str = "ALPHA-PN";
const REV: &str = "ALPHA-REV";
const LOT: &str = "ALPHA-LOT";
const TAG: &str = "alpha-v1";
/// B's own unit, target of writes that name A's resources in the body.
const B_SN: &str = "BETA-SN-1";

/// Organization A's resources (and B's few own ones), created with the user keys.
struct Fx {
    a: TestOrg,
    b: TestOrg,
    /// A procedure of A not linked to A's station.
    unlinked: String,
    /// A team of A.
    team: String,
    run: String,
    b_run: String,
    /// Upload linked to A's run.
    upload: String,
    /// Unlinked uploads of A: one to delete, one to sync, OpenHTF records, a CSV file.
    spare: String,
    sync_upload: String,
    htf_v1: String,
    htf_v2: String,
    csv: String,
    /// Upload linked to A's unit.
    unit_att: String,
    log: String,
    phase: String,
    measurement: String,
    /// Everything of A that B must never see: ids, natural keys, names, emails.
    secrets: Vec<String>,
}

/// A request of the table.
struct Req {
    method: Method,
    path: String,
    body: Option<Value>,
}

fn get(path: String) -> Req {
    Req {
        method: Method::GET,
        path,
        body: None,
    }
}
fn delete(path: String) -> Req {
    Req {
        method: Method::DELETE,
        path,
        body: None,
    }
}
fn post(path: impl Into<String>, body: Value) -> Req {
    Req {
        method: Method::POST,
        path: path.into(),
        body: Some(body),
    }
}
fn patch(path: String, body: Value) -> Req {
    Req {
        method: Method::PATCH,
        path,
        body: Some(body),
    }
}
fn put(path: String, body: Value) -> Req {
    Req {
        method: Method::PUT,
        path,
        body: Some(body),
    }
}

/// What organization B's user key gets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cross {
    /// The request names A's resources: `404 NOT_FOUND`. B's station key: 403 or 404.
    Missing,
    /// A read B may make: `200` without A's data, while A's own key on the same request
    /// does see A's data (so the filter really names A's items).
    List,
    /// Allowed in B's own organization: `200`, sent after the reads (it may create rows
    /// with A's natural keys, which must not collide with A's).
    Create,
    /// This status, without A's data.
    Own(u16),
}

/// What A's station key gets (BEHAVIOR.md §15, §16, §1.1).
#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Ok,
    /// `403 FORBIDDEN` "Stations cannot …", before validation.
    Deny,
    Is(u16),
}

struct Row {
    /// `METHOD path-template` as in the inventory.
    op: &'static str,
    req: fn(&Fx) -> Req,
    cross: Cross,
    station: St,
}

fn run_body(procedure: &str, serial: &str) -> Value {
    json!({
        "serial_number": serial, "procedure_id": procedure, "part_number": PN,
        "started_at": "2026-03-01T10:00:00Z", "ended_at": "2026-03-01T10:05:00Z",
        "outcome": "PASS",
    })
}

fn csv_mapping() -> Value {
    json!({"fields": {
        "serial_number": {"column": "Serial"},
        "outcome": {"column": "Result"},
        "started_at": {"column": "Start"},
        "ended_at": {"column": "End"},
        "part_number": {"value": PN},
    }})
}

/// The table, in inventory order. Several rows may test one operation.
fn table() -> Vec<Row> {
    use Cross::*;
    vec![
        Row {
            op: "POST /api/v2/attachments",
            req: |_| post("/api/v2/attachments", json!({"name": "alpha-new.txt"})),
            cross: Create,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/attachments/{id}/finalize",
            req: |f| {
                post(
                    format!("/api/v2/attachments/{}/finalize", f.upload),
                    json!({}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "DELETE /api/v2/attachments",
            req: |f| delete(format!("/api/v2/attachments?ids={}", f.spare)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/batches",
            req: |_| post("/api/v2/batches", json!({ "number": LOT })),
            cross: Create,
            station: St::Is(409),
        },
        Row {
            op: "GET /api/v2/batches",
            req: |_| get(format!("/api/v2/batches?numbers={LOT}")),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/batches/{number}",
            req: |_| get(format!("/api/v2/batches/{LOT}")),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/batches/{number}",
            req: |_| {
                patch(
                    format!("/api/v2/batches/{LOT}"),
                    json!({"new_number": "STOLEN"}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "DELETE /api/v2/batches/{number}",
            req: |_| delete(format!("/api/v2/batches/{LOT}")),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/deployments",
            req: |f| {
                get(format!(
                    "/api/v2/deployments?procedure_ids={}",
                    f.a.procedure_id
                ))
            },
            // There are no deployments at all: nothing for A to see either.
            cross: Own(200),
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/deployments/{id}",
            req: |f| get(format!("/api/v2/deployments/{}", f.run)),
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "POST /api/v2/imports/structured",
            req: |f| {
                post(
                    "/api/v2/imports/structured",
                    json!({"items": [{"upload_id": f.htf_v2, "importer": "OPENHTF"}]}),
                )
            },
            // Per-item failure inside a 200; that B imported nothing is checked after
            // the reads (B's organization holds none of A's data).
            cross: Own(200),
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/imports/tabular",
            req: |f| {
                post(
                    "/api/v2/imports/tabular",
                    json!({"upload_id": f.csv, "procedure_id": f.a.procedure_id,
                           "mapping": csv_mapping()}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/imports/tabular",
            req: |f| {
                post(
                    "/api/v2/imports/tabular",
                    json!({"upload_id": f.csv, "procedure_id": f.b.procedure_id,
                           "mapping": csv_mapping()}),
                )
            },
            // B's own procedure, A's file.
            cross: Missing,
            station: St::Is(403),
        },
        Row {
            op: "GET /api/v2/logs",
            req: |f| get(format!("/api/v2/logs?run_ids={}", f.run)),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/logs/{id}",
            req: |f| get(format!("/api/v2/logs/{}", f.log)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/measurements",
            req: |f| {
                get(format!(
                    "/api/v2/measurements?procedure_id={}",
                    f.a.procedure_id
                ))
            },
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/measurements/{id}",
            req: |f| get(format!("/api/v2/measurements/{}", f.measurement)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/parts",
            req: |_| post("/api/v2/parts", json!({ "number": PN })),
            cross: Create,
            station: St::Is(409),
        },
        Row {
            op: "GET /api/v2/parts",
            req: |_| get(format!("/api/v2/parts?search_query={PN}")),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/parts/{number}",
            req: |_| get(format!("/api/v2/parts/{PN}")),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/parts/{number}",
            req: |_| patch(format!("/api/v2/parts/{PN}"), json!({"name": "stolen"})),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "DELETE /api/v2/parts/{number}",
            req: |_| delete(format!("/api/v2/parts/{PN}")),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/parts/{part_number}/revisions",
            req: |_| {
                post(
                    format!("/api/v2/parts/{PN}/revisions"),
                    json!({ "number": REV }),
                )
            },
            cross: Missing,
            station: St::Is(409),
        },
        Row {
            op: "GET /api/v2/parts/{part_number}/revisions/{revision_number}",
            req: |_| get(format!("/api/v2/parts/{PN}/revisions/{REV}")),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/parts/{part_number}/revisions/{revision_number}",
            req: |_| {
                patch(
                    format!("/api/v2/parts/{PN}/revisions/{REV}"),
                    json!({"number": "STOLEN"}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "DELETE /api/v2/parts/{part_number}/revisions/{revision_number}",
            req: |_| delete(format!("/api/v2/parts/{PN}/revisions/{REV}")),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/phases",
            req: |f| get(format!("/api/v2/phases?procedure_id={}", f.a.procedure_id)),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/phases/{id}",
            req: |f| get(format!("/api/v2/phases/{}", f.phase)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/procedures",
            req: |_| post("/api/v2/procedures", json!({"name": "Alpha Functional"})),
            cross: Create,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/procedures",
            req: |_| get("/api/v2/procedures?search_query=alpha".into()),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/procedures/{id}",
            req: |f| get(format!("/api/v2/procedures/{}", f.a.procedure_id)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/procedures/{id}",
            req: |f| {
                patch(
                    format!("/api/v2/procedures/{}", f.a.procedure_id),
                    json!({"name": "stolen"}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "DELETE /api/v2/procedures/{id}",
            req: |f| delete(format!("/api/v2/procedures/{}", f.a.procedure_id)),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/procedures/{procedure_id}/versions",
            req: |f| {
                post(
                    format!("/api/v2/procedures/{}/versions", f.a.procedure_id),
                    json!({"tag": "alpha-v2"}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/procedures/{procedure_id}/versions/{tag}",
            req: |f| {
                get(format!(
                    "/api/v2/procedures/{}/versions/{TAG}",
                    f.a.procedure_id
                ))
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "DELETE /api/v2/procedures/{procedure_id}/versions/{tag}",
            req: |f| {
                delete(format!(
                    "/api/v2/procedures/{}/versions/{TAG}",
                    f.a.procedure_id
                ))
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/runs",
            req: |f| post("/api/v2/runs", run_body(&f.a.procedure_id, SN)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/runs",
            req: |f| post("/api/v2/runs", run_body(&f.unlinked, SN)),
            cross: Missing,
            // §1.1: a procedure not linked to the station.
            station: St::Is(403),
        },
        Row {
            op: "POST /api/v2/runs",
            req: |f| post("/api/v2/runs", run_body(&f.b.procedure_id, SN)),
            // B's own procedure with A's serial and part number: B's own unit.
            cross: Create,
            station: St::Is(403),
        },
        Row {
            op: "GET /api/v2/runs",
            req: |f| get(format!("/api/v2/runs?ids={}", f.run)),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/runs",
            req: |_| get(format!("/api/v2/runs?serial_numbers={SN}&limit=100")),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "DELETE /api/v2/runs",
            req: |f| delete(format!("/api/v2/runs?ids={}", f.run)),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/runs/{id}",
            req: |f| get(format!("/api/v2/runs/{}", f.run)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/runs/{id}",
            req: |f| {
                patch(
                    format!("/api/v2/runs/{}", f.run),
                    json!({"attachments": []}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/runs/{id}",
            // B's own run with A's upload.
            req: |f| {
                patch(
                    format!("/api/v2/runs/{}", f.b_run),
                    json!({"attachments": [f.upload]}),
                )
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "POST /api/v2/runs/{id}/attachments",
            req: |f| {
                post(
                    format!("/api/v2/runs/{}/attachments", f.run),
                    json!({"name": "x.txt"}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/runs/{id}/metadata",
            req: |f| {
                patch(
                    format!("/api/v2/runs/{}/metadata", f.run),
                    json!({"metadata": {"stolen": "yes"}}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v2/stations",
            req: |f| {
                post(
                    "/api/v2/stations",
                    json!({"name": "Alpha Bench", "procedure_id": f.a.procedure_id}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/stations",
            req: |_| post("/api/v2/stations", json!({"name": "Alpha Bench"})),
            cross: Create,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/stations",
            req: |f| {
                get(format!(
                    "/api/v2/stations?procedure_ids={}",
                    f.a.procedure_id
                ))
            },
            cross: List,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/stations/current",
            req: |_| get("/api/v2/stations/current".into()),
            // A user key has no current station.
            cross: Own(403),
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/stations/{id}",
            req: |f| get(format!("/api/v2/stations/{}", f.a.station_id)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/stations/{id}",
            req: |f| {
                patch(
                    format!("/api/v2/stations/{}", f.a.station_id),
                    json!({"name": "stolen"}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "DELETE /api/v2/stations/{id}",
            req: |f| delete(format!("/api/v2/stations/{}", f.a.station_id)),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/units",
            req: |_| {
                post(
                    "/api/v2/units",
                    json!({"serial_number": SN, "part_number": PN, "revision_number": REV}),
                )
            },
            // B has no such part or revision.
            cross: Missing,
            station: St::Is(409),
        },
        Row {
            op: "GET /api/v2/units",
            req: |_| get(format!("/api/v2/units?serial_numbers={SN}")),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "DELETE /api/v2/units",
            req: |_| delete(format!("/api/v2/units?serial_numbers={SN}")),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/units/{serial_number}",
            req: |_| get(format!("/api/v2/units/{SN}")),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/units/{serial_number}",
            req: |_| {
                patch(
                    format!("/api/v2/units/{SN}"),
                    json!({ "batch_number": LOT }),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PATCH /api/v2/units/{serial_number}",
            // B's own unit with A's batch.
            req: |_| {
                patch(
                    format!("/api/v2/units/{B_SN}"),
                    json!({ "batch_number": LOT }),
                )
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "PATCH /api/v2/units/{serial_number}",
            // B's own unit with A's upload.
            req: |f| {
                patch(
                    format!("/api/v2/units/{B_SN}"),
                    json!({"attachments": [f.unit_att]}),
                )
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "POST /api/v2/units/{serial_number}/attachments",
            req: |_| {
                post(
                    format!("/api/v2/units/{SN}/attachments"),
                    json!({"name": "x.txt"}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "DELETE /api/v2/units/{serial_number}/attachments",
            req: |f| delete(format!("/api/v2/units/{SN}/attachments?ids={}", f.unit_att)),
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PUT /api/v2/units/{serial_number}/children",
            req: |_| {
                put(
                    format!("/api/v2/units/{SN}/children"),
                    json!({ "child_serial_number": CHILD2 }),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "PUT /api/v2/units/{serial_number}/children",
            // B's own unit adopting A's unit.
            req: |_| {
                put(
                    format!("/api/v2/units/{B_SN}/children"),
                    json!({ "child_serial_number": CHILD }),
                )
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "DELETE /api/v2/units/{serial_number}/children",
            req: |_| {
                delete(format!(
                    "/api/v2/units/{SN}/children?child_serial_number={CHILD}"
                ))
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/users",
            req: |_| get("/api/v2/users".into()),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/users",
            req: |_| get("/api/v2/users?current=true".into()),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "GET /api/v2/users/current",
            req: |_| get("/api/v2/users/current".into()),
            cross: List,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v2/whoami",
            req: |_| get("/api/v2/whoami".into()),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v1/runs",
            req: |f| {
                post(
                    "/api/v1/runs",
                    json!({"unit_under_test": {"serial_number": SN, "part_number": PN},
                           "run_passed": true, "procedure_id": f.a.procedure_id,
                           "client": "Python", "client_version": "2.26.1"}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v1/runs",
            req: |f| {
                post(
                    "/api/v1/runs",
                    json!({"unit_under_test": {"serial_number": SN, "part_number": PN},
                           "run_passed": true, "procedure_id": f.unlinked,
                           "client": "Python", "client_version": "2.26.1"}),
                )
            },
            cross: Missing,
            station: St::Is(403),
        },
        Row {
            op: "GET /api/v1/runs",
            req: |_| get(format!("/api/v1/runs?serial_number={SN}")),
            cross: List,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v1/uploads/initialize",
            req: |_| {
                post(
                    "/api/v1/uploads/initialize",
                    json!({"name": "alpha-new.txt"}),
                )
            },
            cross: Create,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v1/import",
            req: |f| {
                post(
                    "/api/v1/import",
                    json!({"upload_id": f.htf_v1, "importer": "OPENHTF",
                           "client": "Python", "client_version": "2.26.1"}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v1/uploads/sync",
            req: |f| {
                post(
                    "/api/v1/uploads/sync",
                    json!({"upload_id": f.sync_upload, "run_id": f.run}),
                )
            },
            cross: Missing,
            station: St::Ok,
        },
        Row {
            op: "POST /api/v1/uploads/sync",
            // A's upload onto B's own run.
            req: |f| {
                post(
                    "/api/v1/uploads/sync",
                    json!({"upload_id": f.sync_upload, "run_id": f.b_run}),
                )
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "POST /api/trpc/station.linkProcedure",
            req: |f| {
                post(
                    "/api/trpc/station.linkProcedure",
                    json!({"json": {"id": f.a.station_id, "procedure_id": f.unlinked}}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/trpc/station.linkProcedure",
            // B's own station with A's procedure.
            req: |f| {
                post(
                    "/api/trpc/station.linkProcedure",
                    json!({"json": {"id": f.b.station_id, "procedure_id": f.a.procedure_id}}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/trpc/station.unlinkProcedure",
            req: |f| {
                post(
                    "/api/trpc/station.unlinkProcedure",
                    json!({"json": {"id": f.a.station_id, "procedure_id": f.a.procedure_id}}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "GET /api/v1/streaming",
            req: |_| get("/api/v1/streaming".into()),
            cross: Own(200),
            station: St::Ok,
        },
        // Writes to B's own rows naming A's resources in the body: 404 for B, and for
        // A's station (B's rows do not exist for it) 404 or its own 403s.
        Row {
            op: "POST /api/v2/runs",
            req: |f| {
                let mut body = run_body(&f.b.procedure_id, "BETA-SN-2");
                body["part_number"] = json!("BETA-PN");
                body["sub_units"] = json!([CHILD]);
                post("/api/v2/runs", body)
            },
            cross: Missing,
            station: St::Is(403),
        },
        Row {
            op: "POST /api/v2/runs",
            req: |f| {
                let mut body = run_body(&f.b.procedure_id, "BETA-SN-2");
                body["part_number"] = json!("BETA-PN");
                body["operated_by"] = json!("admin@alpha.test");
                post("/api/v2/runs", body)
            },
            // A's member is nobody in B.
            cross: Own(400),
            station: St::Is(403),
        },
        Row {
            op: "PATCH /api/v2/parts/{part_number}/revisions/{revision_number}",
            req: |f| {
                patch(
                    "/api/v2/parts/BETA-PN/revisions/A".into(),
                    json!({"image_id": f.spare}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/stations",
            req: |f| post("/api/v2/stations", json!({"name": "x", "team_id": f.team})),
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "PATCH /api/v2/stations/{id}",
            req: |f| {
                patch(
                    format!("/api/v2/stations/{}", f.b.station_id),
                    json!({"team_id": f.team}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "PATCH /api/v2/stations/{id}",
            req: |f| {
                patch(
                    format!("/api/v2/stations/{}", f.b.station_id),
                    json!({"image_id": f.spare}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        Row {
            op: "PATCH /api/v2/units/{serial_number}",
            req: |_| {
                patch(
                    format!("/api/v2/units/{B_SN}"),
                    json!({"part_number": PN, "revision_number": REV}),
                )
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "DELETE /api/v2/units/{serial_number}/attachments",
            req: |f| {
                delete(format!(
                    "/api/v2/units/{B_SN}/attachments?ids={}",
                    f.unit_att
                ))
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "DELETE /api/v2/units/{serial_number}/children",
            req: |_| {
                delete(format!(
                    "/api/v2/units/{B_SN}/children?child_serial_number={CHILD}"
                ))
            },
            cross: Missing,
            station: St::Is(404),
        },
        Row {
            op: "POST /api/trpc/station.unlinkProcedure",
            req: |f| {
                post(
                    "/api/trpc/station.unlinkProcedure",
                    json!({"json": {"id": f.b.station_id, "procedure_id": f.a.procedure_id}}),
                )
            },
            cross: Missing,
            station: St::Deny,
        },
        // A's natural keys under B's own parents: B's own rows, no conflict.
        Row {
            op: "POST /api/v2/procedures/{procedure_id}/versions",
            req: |f| {
                post(
                    format!("/api/v2/procedures/{}/versions", f.b.procedure_id),
                    json!({ "tag": TAG }),
                )
            },
            cross: Create,
            station: St::Deny,
        },
        Row {
            op: "POST /api/v2/parts/{part_number}/revisions",
            req: |_| post("/api/v2/parts/BETA-PN/revisions", json!({ "number": REV })),
            cross: Create,
            // B's part does not exist for A's station.
            station: St::Is(404),
        },
    ]
}

/// Inventory entries without a key-carrying row: the signed file URLs, tested by
/// `signed_file_urls_open_only_with_their_own_signature`.
const FILE_OPS: [&str; 2] = ["PUT /files/{id}", "GET /files/{id}"];

async fn send(srv: &TestServer, req: &Req, key: &str) -> Resp {
    srv.call(req.method.clone(), &req.path, Some(key), req.body.clone())
        .await
}

/// The request as text, lower-cased: what the caller already knows.
fn request_text(req: &Req) -> String {
    format!(
        "{} {}",
        req.path,
        req.body.as_ref().map(Value::to_string).unwrap_or_default()
    )
    .to_lowercase()
}

/// A's secrets found in `body` that the request did not itself carry.
fn leaks<'a>(fx: &'a Fx, req: &Req, body: &str) -> Vec<&'a str> {
    let sent = request_text(req);
    let body = body.to_lowercase();
    fx.secrets
        .iter()
        .map(|s| s.as_str())
        .filter(|s| {
            let s = s.to_lowercase();
            body.contains(&s) && !sent.contains(&s)
        })
        .collect()
}

/// Asserts the status and the error body for it: the v2 envelope (tRPC adds its own
/// `error` member to it), or the legacy `{"success": false, "error": {"message"}}`.
#[track_caller]
fn expect_status(r: &Resp, status: u16, ctx: &str) {
    assert_eq!(r.status, status, "{ctx}: {}", r.text);
    if status < 400 {
        return;
    }
    if ctx.contains(" /api/v1/") {
        assert_eq!(r.json["success"], json!(false), "{ctx}: {}", r.text);
        assert!(r.json["error"]["message"].is_string(), "{ctx}: {}", r.text);
    } else {
        assert_error_envelope(r);
    }
}

fn ctx(row: &Row, who: &str) -> String {
    format!("{who} {} ({})", row.op, row.op_path_hint())
}

impl Row {
    fn op_path_hint(&self) -> &'static str {
        match self.cross {
            Cross::Missing => "names A's resources",
            Cross::List => "read",
            Cross::Create => "create",
            Cross::Own(_) => "own",
        }
    }
}

/// Keys are never echoed, not even to their own organization (a station's `api_key`
/// shows four characters of the secret).
#[track_caller]
fn assert_no_keys(fx: &Fx, r: &Resp, ctx: &str) {
    for key in [
        &fx.a.user_key,
        &fx.a.station_key,
        &fx.b.user_key,
        &fx.b.station_key,
    ] {
        let secret = &key[key.rfind('_').unwrap() + 1..];
        assert!(!r.text.contains(&secret[..12]), "{ctx}: {}", r.text);
    }
}

/// Removes what legitimately differs between two reads of the same data: signed URLs
/// (fresh expiry each time).
fn stable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                for k in ["download_url", "url", "upload_url"] {
                    o.remove(k);
                }
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// Everything of A, read with A's user key.
async fn snapshot(srv: &TestServer, fx: &Fx) -> Vec<(String, Value)> {
    let p = &fx.a.procedure_id;
    let mut paths = vec![
        format!("/api/v2/runs/{}", fx.run),
        "/api/v2/runs?limit=100".to_string(),
        format!("/api/v2/units/{SN}"),
        format!("/api/v2/units/{CHILD}"),
        format!("/api/v2/units/{CHILD2}"),
        "/api/v2/units?limit=100".to_string(),
        format!("/api/v2/parts/{PN}"),
        "/api/v2/parts?limit=100".to_string(),
        format!("/api/v2/parts/{PN}/revisions/{REV}"),
        format!("/api/v2/batches/{LOT}"),
        "/api/v2/batches?limit=100".to_string(),
        format!("/api/v2/procedures/{p}"),
        format!("/api/v2/procedures/{}", fx.unlinked),
        "/api/v2/procedures?limit=100".to_string(),
        format!("/api/v2/procedures/{p}/versions/{TAG}"),
        format!("/api/v2/stations/{}", fx.a.station_id),
        "/api/v2/stations?limit=100".to_string(),
        "/api/v2/users".to_string(),
        format!("/api/v2/logs/{}", fx.log),
        format!("/api/v2/phases/{}", fx.phase),
        format!("/api/v2/measurements/{}", fx.measurement),
    ];
    // Filtered by natural keys B also uses once it has created its own rows.
    for q in [
        format!("runs?part_numbers={PN}&serial_numbers={SN}&limit=100"),
        format!("runs?batch_numbers={LOT}&procedure_versions={TAG}&limit=100"),
        format!("runs?revision_numbers={REV}&search_query=alpha&limit=100"),
        format!("units?batch_numbers={LOT}&part_numbers={PN}&limit=100"),
        format!("units?revision_numbers={REV}&search_query=alpha&limit=100"),
        format!("batches?part_numbers={PN}&revision_numbers={REV}"),
        format!("parts?procedure_ids={p}&search_query=alpha"),
        "procedures?search_query=alpha".to_string(),
        format!("logs?serial_numbers={SN}"),
        format!("measurements?procedure_id={p}&part_numbers={PN}"),
    ] {
        paths.push(format!("/api/v2/{q}"));
    }
    paths.push(format!("/api/v1/runs?serial_number={SN}"));
    paths.push(format!("/api/v2/logs?run_ids={}", fx.run));
    let mut out = Vec::new();
    for path in paths {
        let r = srv.get(&path, &fx.a.user_key).await;
        assert_eq!(r.status, 200, "A reads {path}: {}", r.text);
        if let Some(data) = r.json.get("data") {
            assert_ne!(data, &json!([]), "A reads {path}: nothing to compare");
        }
        out.push((path, stable(r.json)));
    }
    // Uploads: still there, still A's (finalize answers only for the owner).
    for id in [&fx.upload, &fx.spare, &fx.sync_upload, &fx.unit_att] {
        let r = srv
            .post(
                &format!("/api/v2/attachments/{id}/finalize"),
                &fx.a.user_key,
                json!({}),
            )
            .await;
        out.push((format!("finalize {id}"), json!(r.status)));
    }
    out
}

async fn ok_json(srv: &TestServer, key: &str, req: Req) -> Value {
    let r = send(srv, &req, key).await;
    assert_eq!(r.status, 200, "{} {}: {}", req.method, req.path, r.text);
    r.json
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// A's resources and B's few own ones.
async fn fixture(srv: &TestServer) -> Fx {
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    let ak = a.user_key.clone();
    let mut secrets: Vec<String> = vec![
        SN,
        CHILD,
        CHILD2,
        PN,
        REV,
        LOT,
        TAG,
        "Alpha Functional",
        "Alpha Unlinked",
        "Alpha Bench",
        "admin@alpha.test",
        "Alpha Admin",
        "alpha-report.txt",
        "alpha-unit.txt",
        "alpha log line",
        "alpha.py",
        "alpha_phase",
        "alpha_meas",
        "ALPHA-HTF",
        "ALPHA-CSV",
    ]
    .into_iter()
    .map(String::from)
    .collect();

    let unlinked = id_of(
        &ok_json(
            srv,
            &ak,
            post("/api/v2/procedures", json!({"name": "Alpha Unlinked"})),
        )
        .await,
    );
    let mut body = run_body(&a.procedure_id, SN);
    let extra = json!({
        "revision_number": REV, "batch_number": LOT, "procedure_version": TAG,
        "phases": [{"name": "alpha_phase", "outcome": "PASS",
                    "started_at": "2026-03-01T10:00:00Z", "ended_at": "2026-03-01T10:01:00Z",
                    "measurements": [{"name": "alpha_meas", "outcome": "PASS", "measured_value": 1.5}]}],
        "logs": [{"level": "INFO", "timestamp": "2026-03-01T10:00:01Z", "message": "alpha log line",
                  "source_file": "alpha.py", "line_number": 1}],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let run = id_of(&ok_json(srv, &ak, post("/api/v2/runs", body)).await);
    for serial in [CHILD, CHILD2] {
        ok_json(
            srv,
            &ak,
            post(
                "/api/v2/units",
                json!({"serial_number": serial, "part_number": PN, "revision_number": REV}),
            ),
        )
        .await;
    }
    ok_json(
        srv,
        &ak,
        put(
            format!("/api/v2/units/{SN}/children"),
            json!({ "child_serial_number": CHILD }),
        ),
    )
    .await;

    // Uploads: one linked to the run (bytes, finalized), one to the unit, spares.
    let init = ok_json(
        srv,
        &ak,
        post("/api/v2/attachments", json!({"name": "alpha-report.txt"})),
    )
    .await;
    let upload = id_of(&init);
    let put_status = reqwest::Client::new()
        .put(init["upload_url"].as_str().unwrap())
        .body("alpha bytes")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(put_status, 200);
    ok_json(
        srv,
        &ak,
        post(format!("/api/v2/attachments/{upload}/finalize"), json!({})),
    )
    .await;
    ok_json(
        srv,
        &ak,
        patch(
            format!("/api/v2/runs/{run}"),
            json!({ "attachments": [upload] }),
        ),
    )
    .await;
    let unit_att = id_of(
        &ok_json(
            srv,
            &ak,
            post(
                format!("/api/v2/units/{SN}/attachments"),
                json!({"name": "alpha-unit.txt"}),
            ),
        )
        .await,
    );
    let spare = id_of(
        &ok_json(
            srv,
            &ak,
            post("/api/v2/attachments", json!({"name": "alpha-spare.txt"})),
        )
        .await,
    );
    let sync_upload = id_of(
        &ok_json(
            srv,
            &ak,
            post("/api/v2/attachments", json!({"name": "alpha-sync.txt"})),
        )
        .await,
    );
    let htf_v1 = upload_file(
        srv,
        &ak,
        "alpha-htf-1.json",
        record(SAMPLE, "ALPHA-HTF-1", Some(&a.procedure_id), Some(PN)),
    )
    .await;
    let htf_v2 = upload_file(
        srv,
        &ak,
        "alpha-htf-2.json",
        record(SAMPLE, "ALPHA-HTF-2", Some(&a.procedure_id), Some(PN)),
    )
    .await;
    let csv = upload_file(
        srv,
        &ak,
        "alpha.csv",
        b"Serial,Result,Start,End\nALPHA-CSV-1,PASS,2026-01-02T03:04:05Z,2026-01-02T03:05:00Z\n"
            .to_vec(),
    )
    .await;

    // Ids of everything A has.
    let got = ok_json(srv, &ak, get(format!("/api/v2/runs/{run}"))).await;
    let phase = id_of(&got["phases"][0]);
    let measurement = id_of(&got["phases"][0]["measurements"][0]);
    let log = id_of(&got["logs"][0]);
    for v in [
        &got["unit"],
        &got["unit"]["part"],
        &got["unit"]["part"]["revision"],
        &got["unit"]["batch"],
        &got["procedure"]["version"],
        &got["created_by_user"],
    ] {
        secrets.push(id_of(v));
    }
    for serial in [CHILD, CHILD2] {
        secrets.push(id_of(
            &ok_json(srv, &ak, get(format!("/api/v2/units/{serial}"))).await,
        ));
    }
    let who = ok_json(srv, &ak, get("/api/v2/whoami".into())).await;
    secrets.push(id_of(&who["organization"]));
    secrets.push(who["organization"]["slug"].as_str().unwrap().to_string());
    secrets.extend([
        run.clone(),
        a.procedure_id.clone(),
        unlinked.clone(),
        a.station_id.clone(),
        upload.clone(),
        unit_att.clone(),
        spare.clone(),
        sync_upload.clone(),
        htf_v1.clone(),
        htf_v2.clone(),
        csv.clone(),
        phase.clone(),
        measurement.clone(),
        log.clone(),
        a.user_key.clone(),
        a.station_key.clone(),
    ]);

    let team = rows::insert_team(&srv.db, rows::org_id(srv, &ak).await, "Alpha Team")
        .await
        .to_string();
    secrets.extend([team.clone(), "Alpha Team".to_string()]);

    // B's own run and unit, targets of writes naming A's resources in the body.
    let b_run = id_of(
        &ok_json(
            srv,
            &b.user_key,
            post(
                "/api/v2/runs",
                json!({"serial_number": B_SN, "procedure_id": b.procedure_id,
                       "part_number": "BETA-PN", "started_at": "2026-03-01T10:00:00Z",
                       "ended_at": "2026-03-01T10:05:00Z", "outcome": "PASS"}),
            ),
        )
        .await,
    );

    // The 404s of writes to B's rows are about A's resources: B's rows exist.
    for path in [
        format!("/api/v2/units/{B_SN}"),
        "/api/v2/parts/BETA-PN/revisions/A".to_string(),
        format!("/api/v2/stations/{}", b.station_id),
    ] {
        ok_json(srv, &b.user_key, get(path)).await;
    }

    Fx {
        a,
        b,
        unlinked,
        team,
        run,
        b_run,
        upload,
        spare,
        sync_upload,
        htf_v1,
        htf_v2,
        csv,
        unit_att,
        log,
        phase,
        measurement,
        secrets,
    }
}

/// The route inventory, read at run time.
fn inventory_file() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/operations.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// `METHOD path` of each entry of `operations` whose `source` is `source` (any if None).
fn op_keys(ops: &Value, source: Option<&str>) -> BTreeSet<String> {
    ops.as_array()
        .unwrap()
        .iter()
        .filter(|o| source.is_none_or(|s| o["source"] == s))
        .map(|o| {
            format!(
                "{} {}",
                o["method"].as_str().unwrap(),
                o["path"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn the_table_covers_every_operation_of_the_inventory() {
    let v = inventory_file();
    let inventory = op_keys(&v["operations"], None);
    let v2 = op_keys(&v["operations"], Some("v2-operations.json"));
    assert_eq!(json!(v2.len()), v["contract_operation_count"]);
    // With the contract at hand (`TOFULAB_CONTRACT_DIR`), the inventory is up to date.
    if let Ok(dir) = std::env::var("TOFULAB_CONTRACT_DIR") {
        let text = std::fs::read_to_string(format!("{dir}/v2-operations.json")).unwrap();
        let contract: Value = serde_json::from_str(&text).unwrap();
        let ops: Vec<Value> = contract["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| json!({"method": o["method"], "path": format!("/api{}", o["path"].as_str().unwrap())}))
            .collect();
        assert_eq!(
            op_keys(&json!(ops), None),
            v2,
            "regenerate tests/fixtures/operations.json with scripts/operations-fixture"
        );
    }
    let mut covered: BTreeSet<String> = table().iter().map(|r| r.op.to_string()).collect();
    covered.extend(FILE_OPS.iter().map(|s| s.to_string()));
    let missing: Vec<&String> = inventory.difference(&covered).collect();
    assert!(missing.is_empty(), "operations without a row: {missing:?}");
    let unknown: Vec<&String> = covered.difference(&inventory).collect();
    assert!(
        unknown.is_empty(),
        "rows for operations not in the inventory: {unknown:?}"
    );
}

#[tokio::test]
async fn other_organizations_never_see_or_touch_a_data_and_stations_get_their_permissions() {
    let srv = TestServer::start().await;
    let fx = fixture(&srv).await;
    let rows = table();
    let before = snapshot(&srv, &fx).await;

    // B's reads and writes naming A's resources, with B's user key and station key.
    for row in rows.iter().filter(|r| r.cross != Cross::Create) {
        let req = (row.req)(&fx);
        let r = send(&srv, &req, &fx.b.user_key).await;
        let c = ctx(row, "B user");
        match row.cross {
            Cross::Missing => expect_status(&r, 404, &c),
            Cross::List | Cross::Own(200) => expect_status(&r, 200, &c),
            Cross::Own(s) => expect_status(&r, s, &c),
            Cross::Create => unreachable!(),
        }
        assert_eq!(
            leaks(&fx, &req, &r.text),
            Vec::<&str>::new(),
            "{c}: {}",
            r.text
        );
        if row.cross == Cross::List {
            // The same read with A's key does show A's data: the filter names A's items.
            let mine = send(&srv, &req, &fx.a.user_key).await;
            assert_eq!(mine.status, 200, "A {}: {}", row.op, mine.text);
            assert_no_keys(&fx, &mine, row.op);
            assert!(
                !leaks(&fx, &get(String::new()), &mine.text).is_empty(),
                "A {} sees nothing of A: {}",
                row.op,
                mine.text
            );
        }

        let r = send(&srv, &req, &fx.b.station_key).await;
        let c = ctx(row, "B station");
        let allowed: Vec<u16> = match row.cross {
            Cross::Missing => vec![403, 404],
            Cross::Own(s) => vec![s, 200, 403],
            _ => vec![200, 403],
        };
        assert!(allowed.contains(&r.status), "{c}: {} {}", r.status, r.text);
        if r.status >= 400 {
            expect_status(&r, r.status, &c);
        }
        // A 403 is the station gate (operations forbidden to stations) or, for the
        // rest, the run-creation link check, which answers the same for A's procedure as
        // for an unknown one (§1.1); never a hint that A's resource exists.
        if row.cross == Cross::Missing {
            if row.station == St::Deny {
                assert_eq!(r.status, 403, "{c}: {}", r.text);
                assert!(
                    r.error_text().contains("stations cannot"),
                    "{c}: {}",
                    r.text
                );
            } else if r.status == 403 {
                assert!(
                    r.text.to_lowercase().contains("not authorized"),
                    "{c}: {}",
                    r.text
                );
            }
        }
        assert_eq!(
            leaks(&fx, &req, &r.text),
            Vec::<&str>::new(),
            "{c}: {}",
            r.text
        );
    }

    // B's organization holds nothing of A's (no import, link or move took A's rows).
    for path in [
        "/api/v2/runs?limit=100",
        "/api/v2/units?limit=100",
        "/api/v2/parts?limit=100",
        "/api/v2/batches?limit=100",
        "/api/v2/procedures?limit=100",
        "/api/v2/stations?limit=100",
        "/api/v2/users",
        "/api/v2/logs?limit=100",
        "/api/v1/runs?serial_number=ALPHA-HTF-2",
    ] {
        let r = srv.get(path, &fx.b.user_key).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(
            leaks(&fx, &get(String::new()), &r.text),
            Vec::<&str>::new(),
            "B {path}: {}",
            r.text
        );
    }

    // B's creates, with A's natural keys: B's own rows, never a conflict with A's.
    for row in rows.iter().filter(|r| r.cross == Cross::Create) {
        let req = (row.req)(&fx);
        let r = send(&srv, &req, &fx.b.user_key).await;
        let c = ctx(row, "B user");
        expect_status(&r, 200, &c);
        assert_eq!(
            leaks(&fx, &req, &r.text),
            Vec::<&str>::new(),
            "{c}: {}",
            r.text
        );
    }

    // B now has rows with A's natural keys (unit ALPHA-SN-1, part ALPHA-PN, batch
    // ALPHA-LOT, procedure "Alpha Functional"): reading them, by key or through any
    // filter naming them, shows B's rows only.
    let bp = &fx.b.procedure_id;
    for path in [
        format!("/api/v2/units/{SN}"),
        format!("/api/v2/parts/{PN}"),
        format!("/api/v2/batches/{LOT}"),
        format!("/api/v2/procedures/{bp}"),
        format!("/api/v2/runs?serial_numbers={SN}&limit=100"),
        format!("/api/v2/runs?part_numbers={PN}&limit=100"),
        format!("/api/v2/runs?revision_numbers={REV}&limit=100"),
        format!("/api/v2/runs?batch_numbers={LOT}&limit=100"),
        format!("/api/v2/runs?procedure_versions={TAG}&limit=100"),
        "/api/v2/runs?search_query=alpha&limit=100".to_string(),
        format!("/api/v2/units?serial_numbers={SN}&limit=100"),
        format!("/api/v2/units?part_numbers={PN}&limit=100"),
        format!("/api/v2/units?revision_numbers={REV}&limit=100"),
        format!("/api/v2/units?batch_numbers={LOT}&limit=100"),
        "/api/v2/units?search_query=alpha&limit=100".to_string(),
        format!("/api/v2/batches?numbers={LOT}"),
        format!("/api/v2/batches?part_numbers={PN}"),
        format!("/api/v2/batches?revision_numbers={REV}"),
        "/api/v2/parts?search_query=alpha".to_string(),
        format!("/api/v2/parts?procedure_ids={bp}"),
        "/api/v2/procedures?search_query=alpha".to_string(),
        "/api/v2/stations?search_query=alpha".to_string(),
        format!("/api/v2/logs?serial_numbers={SN}&limit=100"),
        format!("/api/v2/phases?procedure_id={bp}&serial_numbers={SN}"),
        format!("/api/v2/measurements?procedure_id={bp}&part_numbers={PN}"),
        format!("/api/v1/runs?serial_number={SN}"),
    ] {
        let req = get(path);
        let r = send(&srv, &req, &fx.b.user_key).await;
        assert_eq!(r.status, 200, "B {}: {}", req.path, r.text);
        // B's own rows carry the natural keys it created.
        let known = Req {
            body: Some(json!([
                SN,
                PN,
                REV,
                LOT,
                TAG,
                "Alpha Functional",
                "Alpha Bench"
            ])),
            ..get(req.path.clone())
        };
        assert_eq!(
            leaks(&fx, &known, &r.text),
            Vec::<&str>::new(),
            "B {}: {}",
            req.path,
            r.text
        );
    }

    // Filters that match A's rows by natural key or id, but none of B's: empty for B
    // (B's same-named rows must not be matched through A's).
    let ap = &fx.a.procedure_id;
    for path in [
        format!("/api/v2/runs?revision_numbers={REV}"),
        format!("/api/v2/runs?batch_numbers={LOT}"),
        format!("/api/v2/runs?procedure_versions={TAG}"),
        format!("/api/v2/runs?procedure_ids={ap}"),
        format!("/api/v2/units?revision_numbers={REV}"),
        format!("/api/v2/units?batch_numbers={LOT}"),
        format!("/api/v2/units?procedure_ids={ap}"),
        format!("/api/v2/batches?part_numbers={PN}"),
        format!("/api/v2/batches?revision_numbers={REV}"),
        format!("/api/v2/parts?procedure_ids={ap}"),
        format!("/api/v2/stations?procedure_ids={ap}"),
        format!("/api/v2/logs?serial_numbers={SN}"),
        format!("/api/v2/logs?procedure_ids={ap}"),
        format!("/api/v2/phases?procedure_id={bp}&serial_numbers={SN}"),
        format!("/api/v2/phases?procedure_id={ap}"),
        format!("/api/v2/measurements?procedure_id={bp}&part_numbers={PN}"),
        format!("/api/v2/measurements?procedure_id={ap}"),
    ] {
        let r = srv.get(&path, &fx.b.user_key).await;
        assert_eq!(r.expect(200)["data"], json!([]), "B {path}");
    }
    let r = srv
        .get(&format!("/api/v2/batches/{LOT}"), &fx.b.user_key)
        .await;
    assert_eq!(r.expect(200)["units"], json!([]));

    // Bulk deletes mixing A's ids with B's delete B's only and answer B's only.
    let bk = &fx.b.user_key;
    let mut body = run_body(&fx.b.procedure_id, "BETA-SN-3");
    body["part_number"] = json!("BETA-PN");
    let b_run = id_of(&ok_json(&srv, bk, post("/api/v2/runs", body)).await);
    let r = srv
        .delete(&format!("/api/v2/runs?ids={}&ids={b_run}", fx.run), bk)
        .await;
    assert_eq!(r.expect(200)["id"], json!([b_run]));
    let b_upload = id_of(
        &ok_json(
            &srv,
            bk,
            post("/api/v2/attachments", json!({"name": "b.txt"})),
        )
        .await,
    );
    let r = srv
        .delete(
            &format!("/api/v2/attachments?ids={}&ids={b_upload}", fx.spare),
            bk,
        )
        .await;
    assert_eq!(r.expect(200)["id"], json!([b_upload]));
    let r = srv
        .delete(
            &format!("/api/v2/units?serial_numbers={CHILD}&serial_numbers=BETA-SN-3"),
            bk,
        )
        .await;
    assert_eq!(
        r.expect(200)["id"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    assert_eq!(leaks(&fx, &get(String::new()), &r.text), Vec::<&str>::new());

    // A's data reads exactly as before.
    let after = snapshot(&srv, &fx).await;
    for ((path, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(a, b, "A's {path} changed");
    }

    // A's station key: forbidden operations first (403 before validation: an empty body
    // too), and they change nothing.
    for row in rows.iter().filter(|r| r.station == St::Deny) {
        let mut req = (row.req)(&fx);
        for body in [req.body.clone(), req.body.as_ref().map(|_| json!({}))] {
            req.body = body;
            let r = send(&srv, &req, &fx.a.station_key).await;
            let c = ctx(row, "A station");
            expect_status(&r, 403, &c);
            let text = r.error_text();
            assert!(text.contains("stations cannot"), "{c}: {}", r.text);
        }
    }
    let after = snapshot(&srv, &fx).await;
    for ((path, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(a, b, "A's {path} changed by refused station requests");
    }
    // Then everything else, in table order (some of it writes).
    for row in rows.iter().filter(|r| r.station != St::Deny) {
        let req = (row.req)(&fx);
        let r = send(&srv, &req, &fx.a.station_key).await;
        let c = ctx(row, "A station");
        match row.station {
            St::Ok => expect_status(&r, 200, &c),
            St::Is(s) => expect_status(&r, s, &c),
            St::Deny => unreachable!(),
        }
        if row.station == St::Is(403) {
            let text = r.text.to_lowercase();
            assert!(text.contains("not authorized"), "{c}: {}", r.text);
        }
        assert_no_keys(&fx, &r, &c);
    }
}

/// Near misses of a real key, as `Authorization` header lists.
fn near_misses(key: &str) -> Vec<(String, Vec<String>)> {
    let cut = key.rfind('_').unwrap() + 1;
    let recased = format!("{}{}", &key[..cut], key[cut..].to_uppercase());
    assert_ne!(recased, key);
    let other = format!("{}{}", &key[..cut], uuid::Uuid::new_v4().simple());
    let bearer = |k: &str| format!("Bearer {k}");
    vec![
        ("no header".into(), vec![]),
        ("wrong key".into(), vec![bearer(&other)]),
        ("truncated".into(), vec![bearer(&key[..key.len() - 1])]),
        ("extended".into(), vec![bearer(&format!("{key}0"))]),
        ("re-cased".into(), vec![bearer(&recased)]),
        (
            "prefix re-cased".into(),
            vec![bearer(&format!(
                "{}{}",
                key[..cut].to_uppercase(),
                &key[cut..]
            ))],
        ),
        ("prefix only".into(), vec![bearer(&key[..cut])]),
        ("no scheme".into(), vec![key.to_string()]),
        ("Basic".into(), vec![format!("Basic {key}")]),
        ("Token".into(), vec![format!("Token {key}")]),
        ("scheme glued".into(), vec![format!("Bearer{key}")]),
        ("empty bearer".into(), vec!["Bearer ".into()]),
        ("two keys".into(), vec![format!("Bearer {key} {key}")]),
        ("duplicated".into(), vec![bearer(key), bearer(key)]),
        (
            "duplicated, first wrong".into(),
            vec![bearer(&other), bearer(key)],
        ),
        (
            "duplicated, second wrong".into(),
            vec![bearer(key), bearer(&other)],
        ),
    ]
}

#[tokio::test]
async fn only_the_exact_key_authenticates_any_operation() {
    let srv = TestServer::start().await;
    let fx = fixture(&srv).await;
    let rows = table();
    let mut sent = 0;
    for key in [&fx.a.user_key, &fx.a.station_key] {
        let variants = near_misses(key);
        for row in &rows {
            let req = (row.req)(&fx);
            // The variants of one row concurrently: they are independent 401s.
            let answers = futures_util::future::join_all(variants.iter().map(|(_, headers)| {
                let mut b = srv.raw(req.method.clone(), &req.path);
                for h in headers {
                    b = b.header(AUTHORIZATION, h);
                }
                if let Some(body) = &req.body {
                    b = b.json(body);
                }
                async move { Resp::from(b.send().await.unwrap()).await }
            }))
            .await;
            for ((name, _), r) in variants.iter().zip(answers) {
                expect_status(&r, 401, &format!("{name}: {} {}", req.method, req.path));
                if !req.path.starts_with("/api/v1/") {
                    assert_eq!(r.code(), "UNAUTHORIZED");
                }
                assert!(!r.text.contains(key.as_str()), "{}", r.text);
                sent += 1;
            }
        }
    }
    assert!(sent > 2000, "{sent}");
    // The exact key still works (nothing above locked it out), and the scheme is
    // case-insensitive (RFC 9110 §11.1).
    srv.get("/api/v2/whoami", &fx.a.user_key).await.expect(200);
    for scheme in ["bearer", "BEARER"] {
        let r = srv
            .raw(Method::GET, "/api/v2/whoami")
            .header(AUTHORIZATION, format!("{scheme} {}", fx.a.station_key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{scheme}");
    }
}

/// Replaces the query parameter `name` of `url`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => p.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
}

/// Flips the last hex digit.
fn tamper(sig: &str) -> String {
    let (head, last) = sig.split_at(sig.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

#[tokio::test]
async fn signed_file_urls_open_only_with_their_own_signature() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let http = reqwest::Client::new();
    let init = srv
        .post("/api/v2/attachments", &a.user_key, json!({"name": "a.txt"}))
        .await;
    let id = init.expect(200)["id"].as_str().unwrap().to_string();
    let put_url = init.json["upload_url"].as_str().unwrap().to_string();
    let other = srv
        .post("/api/v2/attachments", &a.user_key, json!({"name": "b.txt"}))
        .await;
    let other_id = other.expect(200)["id"].as_str().unwrap().to_string();
    let other_put = other.json["upload_url"].as_str().unwrap().to_string();

    let status = |r: reqwest::Response| r.status().as_u16();
    let sig = param(&put_url, "signature").to_string();
    let refused_puts = [
        with_param(&put_url, "signature", &tamper(&sig)),
        with_param(&put_url, "signature", &sig[..sig.len() - 2]),
        with_param(&put_url, "signature", &format!("{sig}00")),
        with_param(&put_url, "signature", &sig.to_uppercase().replace('0', "1")),
        with_param(&put_url, "signature", ""),
        with_param(
            &put_url,
            "expires",
            &(param(&put_url, "expires").parse::<i64>().unwrap() + 1).to_string(),
        ),
        // Another upload's valid signature.
        put_url.replace(&id, &other_id),
        other_put.replace(&other_id, &id),
        put_url.split('?').next().unwrap().to_string(),
    ];
    for url in &refused_puts {
        let r = http.put(url).body("evil").send().await.unwrap();
        assert_eq!(status(r), 403, "{url}");
    }
    // An API key does not replace a signature.
    let bare = put_url.split('?').next().unwrap();
    let r = http
        .put(bare)
        .bearer_auth(&a.user_key)
        .body("evil")
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 403);

    let r = http.put(&put_url).body("good").send().await.unwrap();
    assert_eq!(status(r), 200);
    let fin = srv
        .post(
            &format!("/api/v2/attachments/{id}/finalize"),
            &a.user_key,
            json!({}),
        )
        .await;
    let get_url = fin.expect(200)["url"].as_str().unwrap().to_string();
    let gsig = param(&get_url, "signature").to_string();

    for url in [
        with_param(&get_url, "signature", &tamper(&gsig)),
        with_param(&get_url, "signature", &sig), // the PUT signature
        get_url.replace(&id, &other_id),
        put_url.clone(), // signed for PUT, not GET
        bare.to_string(),
    ] {
        let r = http.get(&url).send().await.unwrap();
        let s = status(r);
        assert_eq!(s, 403, "{url}");
    }
    let r = http
        .get(bare)
        .bearer_auth(&a.user_key)
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 403);
    let r = http
        .head(with_param(&get_url, "signature", &tamper(&gsig)))
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 403);
    // A GET signature does not upload.
    let r = http.put(&get_url).body("evil").send().await.unwrap();
    assert_eq!(status(r), 403);

    // The refused requests changed nothing; the real URL serves the real bytes.
    let r = http.get(&get_url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "good");
}
