//! Figure 2b, analytics at scale: the `/api/lab/v1` endpoints over 30 days of the
//! busiest procedure of the read database (`read::seed`: 55 % of the runs, one year).
//!
//! The bulk runs have no content, so this adds, with bulk SQL, phases and measurements
//! to that procedure's runs of June 2025 (about 45 000 runs at 1 000 000): a `power`
//! phase with 3 numeric measurements and an `rf` phase with 3 more, all with limits
//! (the stored validator form), values spread by the run's duration, the `rf` phase
//! failing on failed runs, and then their measurement points the way a database older
//! than the points table gets them (`Db::fill_measurement_points`). Every analytics
//! endpoint is then measured over that window, one request at a time; the goal is
//! p95 < 500 ms.

use tofulab::db::{Db, Dialect, Sql};

use crate::fixture::PROCEDURES;

/// The window measured: 30 whole UTC days.
pub const FROM: &str = "2025-06-01";
pub const TO: &str = "2025-06-30";

/// Measurements per phase.
const MEASUREMENTS: usize = 3;

/// Adds phases and measurements to the runs of `PROCEDURES[0]` in the window; returns
/// the number of measurements written.
pub async fn seed_content(url: &str) -> i64 {
    let db = Db::connect(url).await.expect("open the database");
    let d = db.dialect();
    let scope = "r.procedure_id = $1 AND r.started_at >= $2 AND r.started_at < $3";
    let from = tofulab::db::Ts::parse_rfc3339("2025-06-01T00:00:00Z").expect("ts");
    let to = tofulab::db::Ts::parse_rfc3339("2025-07-01T00:00:00Z").expect("ts");
    let procedure = tofulab::db::Id::parse(PROCEDURES[0]).expect("id");
    let validators = serde_json::json!([
        {"outcome": "PASS", "operator": ">=", "expected_value": 3.0, "expression": "x >= 3.0",
         "is_decisive": null, "is_expression_only": false, "has_custom_expression": false,
         "analytics_expression": "x >= 3.0"},
        {"outcome": "PASS", "operator": "<=", "expected_value": 3.7, "expression": "x <= 3.7",
         "is_decisive": null, "is_expression_only": false, "has_custom_expression": false,
         "analytics_expression": "x <= 3.7"},
    ]);
    let mut tx = db.begin().await.expect("begin");
    for (p, name) in ["power", "rf"].iter().enumerate() {
        let outcome = if *name == "rf" {
            "CASE WHEN r.outcome = 'FAIL' THEN 'FAIL' ELSE 'PASS' END"
        } else {
            "'PASS'"
        };
        let phase_id = derived_id(d, &format!("b00000{p}0"));
        tx.execute(
            Sql::new(leak(format!(
                "INSERT INTO phases (id, run_id, position, name, outcome, started_at, ended_at,
                                     duration_us, retry_count)
                 SELECT {phase_id}, r.id, {p}, '{name}', {outcome}, r.started_at, r.ended_at,
                     r.duration_us, 0
                 FROM runs r WHERE {scope}"
            )))
            .bind(procedure)
            .bind(from)
            .bind(to),
        )
        .await
        .expect("bulk phases");
        for k in 0..MEASUREMENTS {
            let id = derived_id(d, &format!("b00000{p}{}", k + 1));
            // Values 3.03 .. 3.63 V from the run's duration, shifted per measurement.
            let value = format!(
                "(3.0 + CAST(r.duration_us AS DOUBLE PRECISION) / 1000000000.0 + {k} * 0.01)"
            );
            let json_value = match d {
                Dialect::Sqlite => format!("CAST({value} AS TEXT)"),
                Dialect::Postgres => format!("to_jsonb({value})"),
            };
            tx.execute(
                Sql::new(leak(format!(
                    "INSERT INTO measurements (id, run_id, phase_id, position, name, outcome,
                         measured_value, units, validators, measurement_type, value_number)
                     SELECT {id}, r.id, {phase_id}, {k}, '{name}_{k}', 'PASS', {json_value}, 'V',
                         $4, 'numeric', {value}
                     FROM runs r WHERE {scope}"
                )))
                .bind(procedure)
                .bind(from)
                .bind(to)
                .bind(validators.clone()),
            )
            .await
            .expect("bulk measurements");
        }
    }
    tx.commit().await.expect("commit the content");
    // The analytics read measurement points, which the server writes with each run:
    // the bulk rows get theirs the way a database older than the points would.
    db.fill_measurement_points()
        .await
        .expect("measurement points of the bulk content");
    if d == Dialect::Postgres {
        db.read()
            .execute(Sql::new("ANALYZE"))
            .await
            .expect("ANALYZE");
    }
    let (n,): (i64,) = db
        .read()
        .fetch_one(Sql::new(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM measurements WHERE name LIKE 'power%' OR name LIKE 'rf%'",
        ))
        .await
        .expect("count");
    db.close().await;
    n
}

/// A UUID `TAG-0000-7000-8000-<last 12 digits of the run id>`.
fn derived_id(d: Dialect, tag: &str) -> String {
    match d {
        Dialect::Sqlite => format!("'{tag}-0000-7000-8000-' || substr(r.id, 25)"),
        Dialect::Postgres => {
            format!("CAST('{tag}-0000-7000-8000-' || substr(CAST(r.id AS TEXT), 25) AS UUID)")
        }
    }
}

/// The analytics requests measured.
pub fn cases() -> Vec<(&'static str, String)> {
    let lab = |endpoint: &str, extra: &str| {
        format!(
            "/api/lab/v1/{endpoint}?procedure_id={}&from={FROM}&to={TO}{extra}",
            PROCEDURES[0]
        )
    };
    vec![
        ("analytics yield, 30 days", lab("yield", "")),
        (
            "analytics yield by batch, 30 days",
            lab("yield", "&group_by=batch"),
        ),
        ("analytics volume, 30 days", lab("volume", "")),
        ("analytics capability, 30 days", lab("capability", "")),
        ("analytics failures by phase, 30 days", lab("failures", "")),
        (
            "analytics failures by measurement, 30 days",
            lab("failures", "&by=measurement"),
        ),
        (
            "analytics control chart (first page), 30 days",
            lab("series", "&phase=power&measurement=power_0"),
        ),
        (
            "analytics histogram, 30 days",
            lab("histogram", "&phase=power&measurement=power_0"),
        ),
    ]
}

/// `Sql` takes only static text: the benchmark's bulk statements are generated once from
/// its own constants, so leaking them is the honest way to say so.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
