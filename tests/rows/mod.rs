//! Rows written straight into the database for states the API under test cannot produce
//! by itself: runs referencing a version or created by a station, uploads, teams.
#![allow(dead_code)]

use tofulab::db::{Db, Id, Sql, Ts};

/// The organization id of the caller behind `key` (from `whoami`).
pub async fn org_id(srv: &crate::common::TestServer, key: &str) -> Id {
    let r = srv.get("/api/v2/whoami", key).await;
    Id::parse(r.expect(200)["organization"]["id"].as_str().unwrap()).unwrap()
}

fn id(s: &str) -> Id {
    Id::parse(s).expect("an id")
}

/// Inserts a run of `procedure_id` (on a fresh part, revision and unit), optionally
/// referencing a version and created by a station, `age` ago. Returns the run id.
pub async fn insert_run(
    db: &Db,
    org_id: Id,
    procedure_id: &str,
    version_id: Option<&str>,
    station_id: Option<&str>,
    age: chrono::Duration,
) -> Id {
    let now = Ts::now();
    let created = Ts::from(now.0 - age);
    let (part, revision, unit, run) = (Id::new(), Id::new(), Id::new(), Id::new());
    let mut tx = db.begin().await.unwrap();
    let number = format!("P-{part}");
    tx.execute(
        Sql::new(
            "INSERT INTO parts (id, org_id, number, number_key, name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $3, $5, $5)",
        )
        .bind(part)
        .bind(org_id)
        .bind(&number)
        .bind(number.to_lowercase())
        .bind(now),
    )
    .await
    .unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO revisions (id, org_id, part_id, number, number_key, created_at)
             VALUES ($1, $2, $3, 'A', 'a', $4)",
        )
        .bind(revision)
        .bind(org_id)
        .bind(part)
        .bind(now),
    )
    .await
    .unwrap();
    let serial = format!("SN-{unit}");
    tx.execute(
        Sql::new(
            "INSERT INTO units (id, org_id, serial_number, serial_key, part_id, revision_id,
                                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(unit)
        .bind(org_id)
        .bind(&serial)
        .bind(serial.to_lowercase())
        .bind(part)
        .bind(revision)
        .bind(now),
    )
    .await
    .unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO runs (id, org_id, procedure_id, version_id, unit_id, revision_id,
                               outcome, started_at, ended_at, duration_us,
                               created_by_station_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'PASS', $7, $7, 0, $8, $7)",
        )
        .bind(run)
        .bind(org_id)
        .bind(id(procedure_id))
        .bind(version_id.map(id))
        .bind(unit)
        .bind(revision)
        .bind(created)
        .bind(station_id.map(id)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    run
}

pub async fn delete_run(db: &Db, run: Id) {
    let mut tx = db.begin().await.unwrap();
    tx.execute(Sql::new("DELETE FROM runs WHERE id = $1").bind(run))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Inserts an upload (attachment row without a target) and returns its id.
pub async fn insert_upload(db: &Db, org_id: Id) -> Id {
    let upload = Id::new();
    let mut tx = db.begin().await.unwrap();
    tx.execute(
        Sql::new(
            "INSERT INTO attachments (id, org_id, name, created_at)
             VALUES ($1, $2, 'bench.png', $3)",
        )
        .bind(upload)
        .bind(org_id)
        .bind(Ts::now()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    upload
}

/// Inserts a team and returns its id.
pub async fn insert_team(db: &Db, org_id: Id, name: &str) -> Id {
    let team = Id::new();
    let mut tx = db.begin().await.unwrap();
    tx.execute(
        Sql::new("INSERT INTO teams (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(team)
            .bind(org_id)
            .bind(name)
            .bind(Ts::now()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    team
}

/// One text/id column of one row, for assertions on state the API does not show.
pub async fn column(db: &Db, sql: &'static str, id: Id) -> Option<String> {
    let row: Option<(Option<String>,)> = db
        .read()
        .fetch_optional(Sql::new(sql).bind(id))
        .await
        .unwrap();
    row.and_then(|r| r.0)
}
