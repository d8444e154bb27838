//! Query plans of the run list: the first page, with or without filters, must come from
//! an index, never from a scan of the whole runs table.
//!
//! `query_plans_use_indexes` checks the plans on a small bulk-loaded database. SQLite
//! plans from its heuristics (tofulab does not run ANALYZE, so table sizes do not change
//! them). Postgres plans from statistics, and on a small table a sequential scan is
//! cheapest; with sequential scans priced out (`enable_seqscan = off`) the plan shows
//! whether an index can serve the query at all, which is what a large table needs. `million_runs` (ignored by default; `cargo test --test runs_plans -- --ignored
//! --nocapture`) loads 1 000 000 runs and prints plans and timings.

mod common;
mod runs_helpers;

use std::time::Instant;

use common::*;
use tofulab::db::runs::{RunFilter, RunSort};
use tofulab::db::{Db, Dialect, Id, Sql, Ts};
use tofulab::metadata::Condition;
use tofulab::values::{Page, SortOrder};

/// Loads `n` runs into `org` with SQL alone: 1 000 units over 10 parts (3 revisions
/// each), 50 batches, 5 versions, outcomes cycling, one run a minute.
async fn bulk_load(db: &Db, org: &TestOrg, n: i64) {
    let org_id = Id::parse(&org.procedure_id).unwrap();
    let (org_id,): (Id,) = db
        .read()
        .fetch_one(Sql::new("SELECT org_id FROM procedures WHERE id = $1").bind(org_id))
        .await
        .unwrap();
    let proc_id = Id::parse(&org.procedure_id).unwrap();
    let now = Ts::now();
    let mut tx = db.begin().await.unwrap();
    if db.dialect() == Dialect::Postgres {
        for s in PG_BULK {
            tx.execute(Sql::new(s).bind(org_id).bind(proc_id).bind(now).bind(n))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        db.read().execute(Sql::new("ANALYZE")).await.unwrap();
        return;
    }
    let statements = [
        "INSERT INTO parts (id, org_id, number, number_key, name, created_at, updated_at)
         WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 9)
         SELECT printf('00000000-0000-7000-a000-%012x', i), $1, 'PART-' || i, 'part-' || i,
                'Part ' || i, $2, $2 FROM k",
        "INSERT INTO revisions (id, org_id, part_id, number, number_key, created_at)
         WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 29)
         SELECT printf('00000000-0000-7000-b000-%012x', i), $1,
                printf('00000000-0000-7000-a000-%012x', i / 3), char(65 + i % 3),
                lower(char(65 + i % 3)), $2 FROM k",
        "INSERT INTO batches (id, org_id, number, number_key, created_at)
         WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 49)
         SELECT printf('00000000-0000-7000-c000-%012x', i), $1, 'LOT-' || i, 'lot-' || i, $2
         FROM k",
        "INSERT INTO units (id, org_id, serial_number, serial_key, part_id, revision_id,
                            batch_id, created_at)
         WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 999)
         SELECT printf('00000000-0000-7000-9000-%012x', i), $1, 'SN-' || i, 'sn-' || i,
                printf('00000000-0000-7000-a000-%012x', i % 10),
                printf('00000000-0000-7000-b000-%012x', (i % 10) * 3),
                printf('00000000-0000-7000-c000-%012x', i % 50), $2 FROM k",
    ];
    for s in statements {
        tx.execute(Sql::new(s).bind(org_id).bind(now))
            .await
            .unwrap();
    }
    tx.execute(
        Sql::new(
            "INSERT INTO procedure_versions (id, org_id, procedure_id, tag, tag_key, created_at)
             WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 4)
             SELECT printf('00000000-0000-7000-d000-%012x', i), $1, $2, 'v' || i, 'v' || i, $3
             FROM k",
        )
        .bind(org_id)
        .bind(proc_id)
        .bind(now),
    )
    .await
    .unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO runs (id, org_id, procedure_id, version_id, unit_id, revision_id,
                               batch_id, outcome, started_at, ended_at, duration_us,
                               created_at)
             WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < $3 - 1)
             SELECT printf('%08x-0000-7000-8000-%012x', i, i), $1, $2,
                    printf('00000000-0000-7000-d000-%012x', i % 5),
                    printf('00000000-0000-7000-9000-%012x', i % 1000),
                    printf('00000000-0000-7000-b000-%012x', (i % 10) * 3),
                    printf('00000000-0000-7000-c000-%012x', i % 50),
                    CASE i % 5 WHEN 0 THEN 'FAIL' WHEN 1 THEN 'ERROR' ELSE 'PASS' END,
                    strftime('%Y-%m-%dT%H:%M:%S', 1767225600 + i * 60, 'unixepoch') || '.000000Z',
                    strftime('%Y-%m-%dT%H:%M:%S', 1767225600 + i * 60 + i % 600, 'unixepoch')
                        || '.000000Z',
                    (i % 600) * 1000000,
                    strftime('%Y-%m-%dT%H:%M:%S', 1767225600 + i * 61, 'unixepoch') || '.000000Z'
             FROM k",
        )
        .bind(org_id)
        .bind(proc_id)
        .bind(n),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// `bulk_load` for Postgres ($1 org, $2 procedure, $3 now, $4 runs): the same rows.
const PG_BULK: [&str; 6] = [
    "INSERT INTO parts (id, org_id, number, number_key, name, created_at, updated_at)
     SELECT ('00000000-0000-7000-a000-' || lpad(to_hex(i), 12, '0'))::uuid, $1,
            'PART-' || i, 'part-' || i, 'Part ' || i, $3, $3
     FROM generate_series(0, 9) i WHERE $2::uuid IS NOT NULL AND $4::bigint > 0",
    "INSERT INTO revisions (id, org_id, part_id, number, number_key, created_at)
     SELECT ('00000000-0000-7000-b000-' || lpad(to_hex(i), 12, '0'))::uuid, $1,
            ('00000000-0000-7000-a000-' || lpad(to_hex(i / 3), 12, '0'))::uuid,
            chr(65 + i % 3), lower(chr(65 + i % 3)), $3
     FROM generate_series(0, 29) i WHERE $2::uuid IS NOT NULL AND $4::bigint > 0",
    "INSERT INTO batches (id, org_id, number, number_key, created_at)
     SELECT ('00000000-0000-7000-c000-' || lpad(to_hex(i), 12, '0'))::uuid, $1,
            'LOT-' || i, 'lot-' || i, $3
     FROM generate_series(0, 49) i WHERE $2::uuid IS NOT NULL AND $4::bigint > 0",
    "INSERT INTO units (id, org_id, serial_number, serial_key, part_id, revision_id,
                        batch_id, created_at)
     SELECT ('00000000-0000-7000-9000-' || lpad(to_hex(i), 12, '0'))::uuid, $1,
            'SN-' || i, 'sn-' || i,
            ('00000000-0000-7000-a000-' || lpad(to_hex(i % 10), 12, '0'))::uuid,
            ('00000000-0000-7000-b000-' || lpad(to_hex((i % 10) * 3), 12, '0'))::uuid,
            ('00000000-0000-7000-c000-' || lpad(to_hex(i % 50), 12, '0'))::uuid, $3
     FROM generate_series(0, 999) i WHERE $2::uuid IS NOT NULL AND $4::bigint > 0",
    "INSERT INTO procedure_versions (id, org_id, procedure_id, tag, tag_key, created_at)
     SELECT ('00000000-0000-7000-d000-' || lpad(to_hex(i), 12, '0'))::uuid, $1, $2,
            'v' || i, 'v' || i, $3
     FROM generate_series(0, 4) i WHERE $4::bigint > 0",
    "INSERT INTO runs (id, org_id, procedure_id, version_id, unit_id, revision_id,
                       batch_id, outcome, started_at, ended_at, duration_us, created_at)
     SELECT (lpad(to_hex(i), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
            $1, $2,
            ('00000000-0000-7000-d000-' || lpad(to_hex(i % 5), 12, '0'))::uuid,
            ('00000000-0000-7000-9000-' || lpad(to_hex(i % 1000), 12, '0'))::uuid,
            ('00000000-0000-7000-b000-' || lpad(to_hex((i % 10) * 3), 12, '0'))::uuid,
            ('00000000-0000-7000-c000-' || lpad(to_hex(i % 50), 12, '0'))::uuid,
            CASE i % 5 WHEN 0 THEN 'FAIL' WHEN 1 THEN 'ERROR' ELSE 'PASS' END,
            to_timestamp(1767225600 + i * 60), to_timestamp(1767225600 + i * 60 + i % 600),
            (i % 600) * 1000000, to_timestamp(1767225600 + i * 61)
     FROM generate_series(0, $4 - 1) i WHERE $3::timestamptz IS NOT NULL",
];

/// The list queries whose plans matter: each filter with the default sort, and each
/// index-backed sort without filters.
fn cases(org_id: Id) -> Vec<(&'static str, RunFilter, RunSort)> {
    let _ = org_id;
    let mut out = vec![("no filter", RunFilter::default(), RunSort::StartedAt)];
    let f = |edit: fn(&mut RunFilter)| {
        let mut f = RunFilter::default();
        edit(&mut f);
        f
    };
    out.push((
        "serial_numbers",
        f(|f| f.serial_numbers = vec!["SN-7".into()]),
        RunSort::StartedAt,
    ));
    out.push((
        "part_numbers",
        f(|f| f.part_numbers = vec!["PART-3".into()]),
        RunSort::StartedAt,
    ));
    out.push((
        "revision_numbers",
        f(|f| f.revision_numbers = vec!["B".into()]),
        RunSort::StartedAt,
    ));
    out.push((
        "batch_numbers",
        f(|f| f.batch_numbers = vec!["LOT-4".into()]),
        RunSort::StartedAt,
    ));
    out.push((
        "procedure_versions",
        f(|f| f.procedure_versions = vec!["v1".into()]),
        RunSort::StartedAt,
    ));
    out.push((
        "ids",
        f(|f| f.ids = Some(vec![Id::new()])),
        RunSort::StartedAt,
    ));
    out.push((
        "outcomes",
        f(|f| f.outcomes = vec!["FAIL".into()]),
        RunSort::StartedAt,
    ));
    out.push((
        "started window",
        f(|f| {
            f.started_after = Ts::parse_rfc3339("2026-03-01T00:00:00Z");
            f.started_before = Ts::parse_rfc3339("2026-03-02T00:00:00Z");
        }),
        RunSort::StartedAt,
    ));
    out.push((
        "search_query",
        f(|f| f.search_query = Some("sn-77".into())),
        RunSort::StartedAt,
    ));
    out.push((
        "metadata",
        f(|f| f.metadata = vec![Condition::TextIn("station".into(), vec!["s1".into()])]),
        RunSort::StartedAt,
    ));
    out.push(("sort created_at", RunFilter::default(), RunSort::CreatedAt));
    out.push(("sort duration", RunFilter::default(), RunSort::Duration));
    out.push(("sort outcome", RunFilter::default(), RunSort::Outcome));
    out.push((
        "sort serial_number",
        RunFilter::default(),
        RunSort::SerialNumber,
    ));
    out.push((
        "sort part_number",
        RunFilter::default(),
        RunSort::PartNumber,
    ));
    out.push((
        "sort revision_number",
        RunFilter::default(),
        RunSort::RevisionNumber,
    ));
    out.push((
        "procedure_ids",
        f(|f| f.procedure_ids = Some(vec![Id::new()])),
        RunSort::StartedAt,
    ));
    out.push((
        "serials by duration",
        f(|f| f.serial_numbers = vec!["SN-7".into(), "SN-8".into()]),
        RunSort::Duration,
    ));
    out.push((
        "part sorted by serial",
        f(|f| f.part_numbers = vec!["PART-3".into()]),
        RunSort::SerialNumber,
    ));
    out
}

async fn plan(db: &Db, org_id: Id, filter: &RunFilter, sort: RunSort, order: SortOrder) -> String {
    let page = Page::parse(None, None).unwrap();
    let Some(q) = db
        .list_runs_query(org_id, filter, sort, order, page)
        .await
        .unwrap()
    else {
        return "matches nothing: no query".into();
    };
    let q = q.prefixed("EXPLAIN QUERY PLAN ");
    let rows: Vec<(i64, i64, i64, String)> = db.read().fetch_all(q).await.unwrap();
    rows.into_iter()
        .map(|r| r.3)
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn org_id(db: &Db, org: &TestOrg) -> Id {
    let (id,): (Id,) = db
        .read()
        .fetch_one(
            Sql::new("SELECT org_id FROM procedures WHERE id = $1")
                .bind(Id::parse(&org.procedure_id).unwrap()),
        )
        .await
        .unwrap();
    id
}

fn sqlite_only() -> bool {
    std::env::var("TOFULAB_TEST_DATABASE_URL").map_or(true, |u| !u.starts_with("postgres"))
}

/// The Postgres plan of the list query with sequential scans priced out.
async fn pg_plan(
    db: &Db,
    org_id: Id,
    filter: &RunFilter,
    sort: RunSort,
    order: SortOrder,
) -> String {
    let page = Page::parse(None, None).unwrap();
    let Some(q) = db
        .list_runs_query(org_id, filter, sort, order, page)
        .await
        .unwrap()
    else {
        return "matches nothing: no query".into();
    };
    let mut tx = db.begin().await.unwrap();
    tx.execute(Sql::new("SET LOCAL enable_seqscan = off"))
        .await
        .unwrap();
    let rows: Vec<(String,)> = tx.fetch_all(q.prefixed("EXPLAIN ")).await.unwrap();
    rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn query_plans_use_indexes() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    bulk_load(&srv.db, &org, 5_000).await;
    let org_id = org_id(&srv.db, &org).await;
    let mut problems = Vec::new();
    if !sqlite_only() {
        for (name, filter, sort) in cases(org_id) {
            for order in [SortOrder::Desc, SortOrder::Asc] {
                let p = pg_plan(&srv.db, org_id, &filter, sort, order).await;
                if p.contains("Seq Scan on runs") {
                    problems.push(format!("{name} {order:?}: no index serves it:\n{p}"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
        let r = srv
            .get("/api/v2/runs?limit=3&serial_numbers=SN-7", &org.user_key)
            .await;
        assert_eq!(r.expect(200)["data"].as_array().unwrap().len(), 3);
        return;
    }
    for (name, filter, sort) in cases(org_id) {
        for order in [SortOrder::Desc, SortOrder::Asc] {
            let p = plan(&srv.db, org_id, &filter, sort, order).await;
            // The statement finds the page's run ids first, then joins the rest onto
            // those few rows (by primary key).
            let Some((inner, outer)) = p.split_once(" | SCAN page") else {
                problems.push(format!("{name} {order:?}: no page step: {p}"));
                continue;
            };
            // The runs table is reached through an index (a primary-key or index
            // search, or an ordered index scan), never a plain scan.
            if inner.split(" | ").any(|step| step == "SCAN r") || outer.contains("SCAN r") {
                problems.push(format!("{name} {order:?}: full scan of runs: {p}"));
            }
            let ordered_by_index = matches!(
                name,
                "no filter"
                    | "started window"
                    | "search_query"
                    | "metadata"
                    | "sort created_at"
                    | "sort duration"
                    | "sort outcome"
                    | "sort serial_number"
                    | "sort part_number"
                    | "sort revision_number"
                    | "procedure_ids"
                    | "serial_numbers"
                    | "batch_numbers"
                    | "procedure_versions"
                    | "part sorted by serial"
            );
            if ordered_by_index && inner.contains("TEMP B-TREE") {
                problems.push(format!("{name} {order:?}: sorts instead of streaming: {p}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The list answers the same as the plans promise.
    let r = srv
        .get("/api/v2/runs?limit=3&serial_numbers=SN-7", &org.user_key)
        .await;
    assert_eq!(r.expect(200)["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
#[ignore]
async fn million_runs() {
    if !sqlite_only() {
        return;
    }
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let n: i64 = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    bulk_load(&srv.db, &org, n).await;
    println!("loaded {n} runs in {:?}", t.elapsed());
    let org_id = org_id(&srv.db, &org).await;
    for (name, filter, sort) in cases(org_id) {
        let p = plan(&srv.db, org_id, &filter, sort, SortOrder::Desc).await;
        let t = Instant::now();
        let rows = srv
            .db
            .list_runs(
                org_id,
                &filter,
                sort,
                SortOrder::Desc,
                Page::parse(None, None).unwrap(),
            )
            .await
            .unwrap();
        println!(
            "{name:20} {:>6} rows {:>10.1?}  {p}",
            rows.len(),
            t.elapsed()
        );
    }
    for path in [
        "/api/v2/runs",
        "/api/v2/runs?part_numbers=PART-3&outcomes=FAIL",
        "/api/v2/runs?sort_by=duration&sort_order=asc",
        "/api/v2/runs?serial_numbers=SN-999&sort_by=started_at&sort_order=asc&cursor=900",
    ] {
        let t = Instant::now();
        srv.get(path, &org.user_key).await.expect(200);
        println!("GET {path}: {:?}", t.elapsed());
    }
}
