//! Concurrent run creation (BEHAVIOR.md §22): find-or-create must be race-safe.

mod common;
mod runs_helpers;

use common::*;
use runs_helpers::*;
use tofupilot::types::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_uploads_for_one_new_unit_create_it_once() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let now = chrono::Utc::now();
    let phases = vec![RunCreatePhases::builder()
        .name("p")
        .outcome(PhaseGetOutcome::Pass)
        .started_at(now)
        .ended_at(now)
        .measurements(vec![RunCreateMeasurements::builder()
            .name("m")
            .outcome(Outcome::Pass)
            .measured_value(serde_json::json!(1.5))
            .build()
            .unwrap()])
        .build()
        .unwrap()];
    let uploads = (0..16).map(|i| {
        let c = &c;
        let phases = phases.clone();
        let org = &org;
        async move {
            // Alternate the spelling: the natural keys are case-insensitive.
            let (serial, part, batch, version) = if i % 2 == 0 {
                ("RACE-001", "RACE-PART", "RACE-LOT", "v9")
            } else {
                ("race-001", "race-part", "race-lot", "V9")
            };
            c.runs()
                .create()
                .serial_number(serial)
                .procedure_id(&org.procedure_id)
                .part_number(part)
                .revision_number("R1")
                .batch_number(batch)
                .procedure_version(version)
                .started_at(now)
                .ended_at(now)
                .outcome(LogGetOutcome::Pass)
                .phases(phases)
                .send()
                .await
        }
    });
    let results = futures_util::future::join_all(uploads).await;
    let mut ids = Vec::new();
    for r in results {
        ids.push(r.expect("every concurrent upload succeeds").id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16, "16 distinct runs");
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM runs").await, 16);
    for table in [
        "units",
        "parts",
        "revisions",
        "batches",
        "procedure_versions",
    ] {
        assert_eq!(
            count_rows(&srv, table).await,
            1,
            "exactly one row in {table}"
        );
    }
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM measurements").await, 16);
    // Every run points at the one unit, which the first run created.
    assert_eq!(
        count(
            &srv,
            "SELECT COUNT(*) FROM runs r JOIN units u ON u.id = r.unit_id
             WHERE u.created_during_run_id IS NOT NULL"
        )
        .await,
        16
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_units_sharing_a_new_part_and_default_revision() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let uploads = (0..16).map(|i| {
        let srv = &srv;
        let org = &org;
        async move {
            // Sixteen new units of one new part: all need the part's default revision.
            let body = run_body(&org.procedure_id, &format!("U-{i:02}"), "SHARED-PART");
            srv.post("/api/v2/runs", &org.station_key, body).await
        }
    });
    for r in futures_util::future::join_all(uploads).await {
        r.expect(200);
    }
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM units").await, 16);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM parts").await, 1);
    assert_eq!(count(&srv, "SELECT COUNT(*) FROM revisions").await, 1);
}
