//! Figure 2, reads at scale: the database is filled to `--runs` runs (1 000 000 by
//! default) with bulk SQL into the real tables — valid rows the API reads like any
//! other, spread like a real lab's: 4 procedures (55/30/12/3 %), 8 parts with 2
//! revisions, 100 batches, 5 000 units, outcomes mostly PASS, one year of start times.
//! Then, one request at a time and then 4 at a time, a few hundred of each:
//! `GET /api/v2/runs?limit=50` unfiltered and filtered by serial number, outcome, start
//! window, procedure, and part + outcome; and `GET /api/v2/runs/{id}` for a run of 50
//! phases × 20 measurements posted over HTTP.
//!
//! Baseline: `GET /api/v2/whoami` measured the same way in the same minute — an
//! authenticated request that reads two small rows, i.e. the fixed cost of any request
//! (HTTP, authentication, the pool, the client). The ratio says how much the list itself
//! adds on top.

use std::time::{Duration, Instant};

use tofulab::db::{Db, Dialect, Id, Sql};

use crate::drive::{client, drive};
use crate::fixture::{run_payload, KEY, PROCEDURES};
use crate::server::Server;
use crate::stats::Latencies;

/// Units, parts, revisions per part and batches of the bulk data.
const UNITS: i64 = 5_000;
const PARTS: i64 = 8;
const BATCHES: i64 = 100;
/// Start times spread over 2025.
const YEAR_START: i64 = 1_735_689_600;
const YEAR: i64 = 31_536_000;

/// One measured request: a label and its path.
pub struct Case {
    pub label: &'static str,
    pub path: String,
}

/// What was measured for one case at one concurrency.
pub struct Measured {
    pub label: &'static str,
    pub concurrency: usize,
    pub latency: Latencies,
    /// Rows in the first page (lists only), to show the filter matched something.
    pub rows: usize,
}

pub struct ReadResult {
    pub total_runs: i64,
    pub bulk_runs: i64,
    pub seed_time: Duration,
    pub baseline: Vec<Measured>,
    pub cases: Vec<Measured>,
    pub peak_kib: u64,
    /// `/api/lab/v1` over 30 days (`crate::analytics`), one client.
    pub analytics: Vec<Measured>,
    /// Measurements written for the analytics window.
    pub analytics_measurements: i64,
    pub analytics_peak_kib: u64,
}

/// Fills the database at `url` (the server's) with bulk runs until it holds `target`.
pub async fn seed(url: &str, target: i64) -> (i64, i64, Duration) {
    let t = Instant::now();
    let db = Db::connect(url).await.expect("open the database");
    let mut r = db.read();
    let (existing,): (i64,) = r
        .fetch_one(Sql::new("SELECT CAST(COUNT(*) AS BIGINT) FROM runs"))
        .await
        .expect("count runs");
    let (org_id, user_id): (Id, Id) = r
        .fetch_one(Sql::new(
            "SELECT org_id, id FROM users WHERE email_key = 'bench@lab.test'",
        ))
        .await
        .expect("the benchmark user");
    let n = (target - existing).max(0);
    let d = Dialect::of(&db);
    let statements = [
        format!(
            "INSERT INTO parts (id, org_id, number, number_key, name, created_at, updated_at)
             {} SELECT {}, $1, 'BP-' || i, 'bp-' || i, 'Board ' || i, {}, {} FROM {}",
            d.with(PARTS),
            d.id("b0000001", "i"),
            d.ts(&YEAR_START.to_string()),
            d.ts(&YEAR_START.to_string()),
            d.source(PARTS)
        ),
        format!(
            "INSERT INTO revisions (id, org_id, part_id, number, number_key, created_at)
             {} SELECT {}, $1, {}, CASE i % 2 WHEN 0 THEN 'A' ELSE 'B' END,
                 CASE i % 2 WHEN 0 THEN 'a' ELSE 'b' END, {} FROM {}",
            d.with(PARTS * 2),
            d.id("b0000002", "i"),
            d.id("b0000001", "i / 2"),
            d.ts(&YEAR_START.to_string()),
            d.source(PARTS * 2)
        ),
        format!(
            "INSERT INTO batches (id, org_id, number, number_key, created_at)
             {} SELECT {}, $1, 'LOT-' || i, 'lot-' || i, {} FROM {}",
            d.with(BATCHES),
            d.id("b0000003", "i"),
            d.ts(&YEAR_START.to_string()),
            d.source(BATCHES)
        ),
        // Unit i: part i % 8, revision A or B, batch i % 100.
        format!(
            "INSERT INTO units (id, org_id, serial_number, serial_key, part_id, revision_id,
                                batch_id, created_at)
             {} SELECT {}, $1, {}, lower({}), {}, {}, {}, {} FROM {}",
            d.with(UNITS),
            d.id("b0000004", "i"),
            d.serial("i"),
            d.serial("i"),
            d.id("b0000001", &format!("i % {PARTS}")),
            d.id(
                "b0000002",
                &format!("(i % {PARTS}) * 2 + (i / {PARTS}) % 2")
            ),
            d.id("b0000003", &format!("i % {BATCHES}")),
            d.ts(&YEAR_START.to_string()),
            d.source(UNITS)
        ),
    ];
    let mut tx = db.begin().await.expect("begin");
    if d == Dialect::Sqlite {
        // A large page cache for this loading connection only (the server's are
        // untouched): the runs' dozen indexes then stay in memory while they grow.
        tx.execute(Sql::new("PRAGMA cache_size = -1000000"))
            .await
            .expect("cache size");
    }
    for s in statements {
        // `Sql` takes only static text; these few statements are generated once from the
        // benchmark's own constants, so leaking them is the honest way to say so.
        let s: &'static str = Box::leak(s.into_boxed_str());
        tx.execute(Sql::new(s).bind(org_id))
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    if n > 0 {
        // Run i: unit i % 5000 (its revision and batch), start times in order over the
        // year, 30 s to 10 min long.
        let unit = format!("i % {UNITS}");
        let started = format!("{YEAR_START} + i * {YEAR} / {n}");
        let ended = format!("{started} + 30 + (i * 17) % 570");
        let runs = format!(
            "INSERT INTO runs (id, org_id, procedure_id, unit_id, revision_id, batch_id,
                               outcome, started_at, ended_at, duration_us,
                               created_by_user_id, created_at)
             {} SELECT {}, $1,
                 CASE WHEN i % 100 < 55 THEN $3 WHEN i % 100 < 85 THEN $4
                      WHEN i % 100 < 97 THEN $5 ELSE $6 END,
                 {}, {}, {},
                 CASE WHEN (i * 13) % 100 < 85 THEN 'PASS' WHEN (i * 13) % 100 < 93 THEN 'FAIL'
                      WHEN (i * 13) % 100 < 97 THEN 'ERROR' WHEN (i * 13) % 100 < 99 THEN 'TIMEOUT'
                      ELSE 'ABORTED' END,
                 {}, {}, (30 + (i * 17) % 570) * 1000000, $2, {}
             FROM {}",
            d.with(n),
            d.id("b0000010", "i"),
            d.id("b0000004", &unit),
            d.id(
                "b0000002",
                &format!("(({unit}) % {PARTS}) * 2 + (({unit}) / {PARTS}) % 2")
            ),
            d.id("b0000003", &format!("({unit}) % {BATCHES}")),
            d.ts(&started),
            d.ts(&ended),
            d.ts(&ended),
            d.source(n)
        );
        let runs: &'static str = Box::leak(runs.into_boxed_str());
        let mut q = Sql::new(runs).bind(org_id).bind(user_id);
        for p in PROCEDURES {
            q = q.bind(Id::parse(p).expect("procedure id"));
        }
        tx.execute(q).await.expect("bulk runs");
    }
    tx.commit().await.expect("commit the bulk data");
    if d == Dialect::Postgres {
        // What autovacuum would do soon after such a load: fresh planner statistics.
        db.read()
            .execute(Sql::new("ANALYZE"))
            .await
            .expect("ANALYZE");
    }
    db.close().await;
    (existing + n, n, t.elapsed())
}

/// The SQL that differs between the backends for the bulk load.
trait BulkSql {
    fn of(db: &Db) -> Self;
    /// What goes before `SELECT` (SQLite: the recursive counter).
    fn with(&self, n: i64) -> String;
    /// The row source giving `i` in `0..n`.
    fn source(&self, n: i64) -> String;
    /// A UUID `TAG-0000-7000-8000-<i as 12 hex digits>`.
    fn id(&self, tag: &str, i: &str) -> String;
    /// A timestamp `seconds` after the Unix epoch.
    fn ts(&self, seconds: &str) -> String;
    /// Serial number `SN-` and 6 digits.
    fn serial(&self, i: &str) -> String;
}

impl BulkSql for Dialect {
    fn of(db: &Db) -> Self {
        db.dialect()
    }

    fn with(&self, n: i64) -> String {
        match self {
            Dialect::Sqlite => format!(
                "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < {n} - 1)"
            ),
            Dialect::Postgres => String::new(),
        }
    }

    fn source(&self, n: i64) -> String {
        match self {
            Dialect::Sqlite => "k".into(),
            Dialect::Postgres => format!("generate_series(CAST(0 AS BIGINT), {n} - 1) AS k(i)"),
        }
    }

    fn id(&self, tag: &str, i: &str) -> String {
        match self {
            Dialect::Sqlite => format!("printf('{tag}-0000-7000-8000-%012x', {i})"),
            Dialect::Postgres => {
                format!("CAST('{tag}-0000-7000-8000-' || lpad(to_hex({i}), 12, '0') AS UUID)")
            }
        }
    }

    fn ts(&self, seconds: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("strftime('%Y-%m-%dT%H:%M:%S', {seconds}, 'unixepoch') || '.000000Z'")
            }
            Dialect::Postgres => format!("to_timestamp({seconds})"),
        }
    }

    fn serial(&self, i: &str) -> String {
        match self {
            Dialect::Sqlite => format!("printf('SN-%06d', {i})"),
            Dialect::Postgres => format!("'SN-' || lpad(CAST({i} AS TEXT), 6, '0')"),
        }
    }
}

/// The list requests measured, all with `limit=50`.
pub fn cases(detail_id: &str) -> Vec<Case> {
    let list = |q: &str| format!("/api/v2/runs?limit=50{q}");
    vec![
        Case {
            label: "list, no filter",
            path: list(""),
        },
        Case {
            label: "list, serial number",
            path: list("&serial_numbers=SN-001234"),
        },
        Case {
            label: "list, outcome",
            path: list("&outcomes=FAIL"),
        },
        Case {
            label: "list, start window (1 week)",
            path: list("&started_after=2025-06-01T00:00:00Z&started_before=2025-06-08T00:00:00Z"),
        },
        Case {
            label: "list, procedure",
            path: list(&format!("&procedure_ids={}", PROCEDURES[2])),
        },
        Case {
            label: "list, part + outcome",
            path: list("&part_numbers=BP-3&outcomes=FAIL"),
        },
        Case {
            label: "get run (50 phases × 20 measurements)",
            path: format!("/api/v2/runs/{detail_id}"),
        },
    ]
}

/// Posts the large run read by the `get run` case; returns its id.
pub async fn post_detail_run(server: &Server) -> String {
    let body = run_payload(9_999_999, 50, 20);
    let r = client()
        .post(format!("{}/api/v2/runs", server.base))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("POST the large run");
    assert!(
        r.status().is_success(),
        "POST the large run: {}",
        r.status()
    );
    let v: serde_json::Value = r.json().await.expect("id");
    v["id"].as_str().expect("id").to_string()
}

/// `requests` GETs of `path` on `concurrency` tasks (after a short warm-up).
pub async fn measure(
    server: &Server,
    label: &'static str,
    path: &str,
    requests: usize,
    concurrency: usize,
) -> Measured {
    let client = client();
    let url = format!("{}{path}", server.base);
    let get = |client: reqwest::Client, url: String| async move {
        let r = client.get(&url).bearer_auth(KEY).send().await.expect("GET");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("JSON body");
        assert!(status.is_success(), "GET {url}: {status} {v}");
        v["data"].as_array().map_or(0, Vec::len)
    };
    let mut rows = 0;
    for _ in 0..5 {
        rows = get(client.clone(), url.clone()).await;
    }
    let (_, latency) = drive(requests, concurrency, move |_| {
        let fut = get(client.clone(), url.clone());
        async move {
            fut.await;
        }
    })
    .await;
    Measured {
        label,
        concurrency,
        latency,
        rows,
    }
}

/// Seeds, then measures the baseline and every case at concurrency 1 and 4.
pub async fn run(server: &Server, url: &str, target: i64, requests: usize) -> ReadResult {
    let (total_runs, bulk_runs, seed_time) = seed(url, target).await;
    let analytics_measurements = crate::analytics::seed_content(url).await;
    let detail_id = post_detail_run(server).await;
    server.reset_peak();
    let mut baseline = Vec::new();
    let mut measured = Vec::new();
    for concurrency in [1, 4] {
        baseline.push(measure(server, "whoami", "/api/v2/whoami", requests, concurrency).await);
        for case in cases(&detail_id) {
            measured.push(measure(server, case.label, &case.path, requests, concurrency).await);
        }
    }
    let peak_kib = server.peak_kib();
    server.reset_peak();
    // Analytics calls cost tens to hundreds of milliseconds: fewer of them, one client.
    let mut analytics = Vec::new();
    for (label, path) in crate::analytics::cases() {
        analytics.push(measure(server, label, &path, (requests / 10).max(20), 1).await);
    }
    ReadResult {
        total_runs,
        bulk_runs,
        seed_time,
        baseline,
        cases: measured,
        peak_kib,
        analytics,
        analytics_measurements,
        analytics_peak_kib: server.peak_kib(),
    }
}
