//! Creating a run: one transaction holding the run, everything it finds or creates (part,
//! revision, unit, batch, version, sub-unit links) and all of its content. A failed
//! create leaves nothing behind; a transient conflict retries the whole transaction.

use serde_json::Value;

use super::bulk::{insert_sub_unit_links, ContentRows};
use super::model::NewRun;
use super::resolve;
use crate::caller::Caller;
use crate::db::attachments::{link_uploads, LinkTarget};
use crate::db::common::CreatedBy;
use crate::db::file_imports::record_batch;
use crate::db::metadata::{self as meta_sql, MetaTable};
use crate::db::points::RunFacts;
use crate::db::{retry, Db, DbResult, Id, Sql, StoreError, Ts, Tx};

/// What the transaction did.
enum Created {
    New,
    /// A run with the same `client_run_ref` exists (or won a race with this one).
    Duplicate,
}

impl Db {
    /// Creates a run for `caller` and returns its id. With a `client_run_ref` already
    /// used in the organization, returns that run's id and creates nothing.
    ///
    /// Order of failures (BEHAVIOR.md §16): unknown procedure 404 (user keys) or 403 for
    /// stations on an unknown or unlinked procedure; then the timing rule (500); then
    /// the operator (400), a missing part number for a new unit (400), sub-units (404,
    /// 400 for cycles).
    pub async fn create_run(&self, caller: &Caller, run: NewRun) -> DbResult<Id> {
        if let Some(existing) = self.run_by_client_ref(caller.org_id, &run).await? {
            return Ok(existing);
        }
        let run_id = Id::new();
        let rows = ContentRows::build(run_id, &run.phases, &run.logs);
        // A unique violation means a concurrent create took a natural key this attempt
        // had not seen; a foreign-key violation means a concurrent delete took a row this
        // attempt had found (e.g. the unit): the next attempt finds or creates it afresh.
        let raced = |e: &StoreError| {
            e.is_retryable() || e.is_unique_violation() || e.is_foreign_key_violation()
        };
        match retry(raced, || self.create_run_once(caller, &run, run_id, &rows)).await? {
            Created::New => {
                crate::monitoring::runs_ingested(1, measurement_count(&run));
                Ok(run_id)
            }
            Created::Duplicate => self
                .run_by_client_ref(caller.org_id, &run)
                .await?
                .ok_or_else(|| StoreError::other("client_run_ref conflict without a run")),
        }
    }

    /// Creates `runs` (none carrying a `client_run_ref`) in one transaction, all or
    /// none, recorded as file positions `first_position..` of import `import_id` (see
    /// `db::file_imports`). Returns their ids in order. A transient conflict retries the
    /// whole batch; any other failure (e.g. one run's missing part number) fails it, and
    /// the caller may retry the runs one by one to skip the bad one.
    pub async fn create_import_batch(
        &self,
        caller: &Caller,
        runs: &[NewRun],
        import_id: Id,
        first_position: i64,
    ) -> DbResult<Vec<Id>> {
        let ids: Vec<Id> = runs.iter().map(|_| Id::new()).collect();
        let rows: Vec<ContentRows> = runs
            .iter()
            .zip(&ids)
            .map(|(run, id)| ContentRows::build(*id, &run.phases, &run.logs))
            .collect();
        let raced = |e: &StoreError| {
            e.is_retryable() || e.is_unique_violation() || e.is_foreign_key_violation()
        };
        retry(raced, || async {
            let mut tx = self.begin().await?;
            for ((run, id), rows) in runs.iter().zip(&ids).zip(&rows) {
                if let Created::Duplicate = insert_run(&mut tx, caller, run, *id, rows).await? {
                    return Err(StoreError::other(
                        "an imported run carried a client_run_ref",
                    ));
                }
            }
            record_batch(&mut tx, import_id, first_position, &ids).await?;
            tx.commit().await
        })
        .await?;
        crate::monitoring::runs_ingested(runs.len(), runs.iter().map(measurement_count).sum());
        Ok(ids)
    }

    async fn run_by_client_ref(&self, org_id: Id, run: &NewRun) -> DbResult<Option<Id>> {
        let Some(r) = &run.client_run_ref else {
            return Ok(None);
        };
        let found: Option<(Id,)> = self
            .read()
            .fetch_optional(
                Sql::new("SELECT id FROM runs WHERE org_id = $1 AND client_run_ref = $2")
                    .bind(org_id)
                    .bind(r.as_str()),
            )
            .await?;
        Ok(found.map(|r| r.0))
    }

    async fn create_run_once(
        &self,
        caller: &Caller,
        run: &NewRun,
        run_id: Id,
        rows: &ContentRows,
    ) -> DbResult<Created> {
        let mut tx = self.begin().await?;
        let created = insert_run(&mut tx, caller, run, run_id, rows).await?;
        if let Created::New = created {
            tx.commit().await?;
        }
        Ok(created)
    }
}

fn measurement_count(run: &NewRun) -> usize {
    run.phases.iter().map(|p| p.measurements.len()).sum()
}

async fn insert_run(
    tx: &mut Tx,
    caller: &Caller,
    run: &NewRun,
    run_id: Id,
    rows: &ContentRows,
) -> DbResult<Created> {
    let org_id = caller.org_id;
    let by = CreatedBy::of(caller);
    check_procedure(tx, caller, run.procedure_id).await?;
    if run.ended_at < run.started_at {
        // COMPAT: 500, not 400: the older Python client only accepts a generic error or a
        // 500 here (BEHAVIOR.md §1.1 timing rule, §24).
        return Err(StoreError::EndsBeforeStart);
    }
    let operator = match &run.operated_by {
        Some(email) => Some(resolve::operator(tx, org_id, email).await?),
        None => None,
    };

    // Part, revision, batch, unit.
    let existing = resolve::find_unit(tx, org_id, &run.serial_number).await?;
    let part_id = match (&run.part_number, &existing) {
        (Some(number), _) => resolve::part(tx, org_id, number, by).await?,
        (None, Some(unit)) => unit.part_id,
        (None, None) => {
            return Err(StoreError::rejected_at(
                "part_number",
                "Part number is required to create a new unit",
            ))
        }
    };
    let revision_id = match (&run.revision_number, &existing) {
        (Some(number), _) => resolve::revision(tx, org_id, part_id, number, by).await?,
        (None, Some(unit)) if unit.part_id == part_id => unit.revision_id,
        (None, _) => resolve::default_revision(tx, org_id, part_id, by).await?,
    };
    let named_batch = match &run.batch_number {
        Some(number) => Some(resolve::batch(tx, org_id, number, by).await?),
        None => None,
    };
    let (unit, unit_created) = match existing {
        Some(unit) => (unit, false),
        None => {
            resolve::insert_unit(
                tx,
                org_id,
                &run.serial_number,
                part_id,
                revision_id,
                named_batch,
                by,
            )
            .await?
        }
    };
    let batch_id = named_batch.or(unit.batch_id);
    if !unit_created {
        resolve::update_unit(tx, &unit, part_id, revision_id, batch_id).await?;
    }
    let version_id = match &run.procedure_version {
        Some(tag) => Some(resolve::version(tx, org_id, run.procedure_id, tag, by).await?),
        None => None,
    };
    let sub_units = resolve::sub_units(tx, org_id, unit.id, &run.sub_units).await?;

    let facts = RunFacts {
        run_id,
        org_id,
        procedure_id: run.procedure_id,
        unit_id: unit.id,
        started_at: run.started_at,
        created_at: Ts::now(),
    };
    // The run itself. A concurrent retry carrying the same client_run_ref makes this
    // insert do nothing; the caller then answers with the run that won.
    let inserted = tx
        .execute(
            Sql::new(
                "INSERT INTO runs (id, org_id, procedure_id, version_id, unit_id, revision_id,
                    batch_id, outcome, started_at, ended_at, duration_us, docstring,
                    operated_by_user_id, created_by_user_id, created_by_station_id,
                    client_run_ref, execution_id, slot_key, slot_name, deployment_id,
                    metadata, config, secrets, sequences, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                    $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
                 ON CONFLICT (org_id, client_run_ref) WHERE client_run_ref IS NOT NULL
                 DO NOTHING",
            )
            .bind(run_id)
            .bind(org_id)
            .bind(run.procedure_id)
            .bind(version_id)
            .bind(unit.id)
            .bind(revision_id)
            .bind(batch_id)
            .bind(run.outcome.as_str())
            .bind(run.started_at)
            .bind(run.ended_at)
            .bind(run.ended_at.micros() - run.started_at.micros())
            .bind(run.docstring.clone())
            .bind(operator)
            .bind(by.user_id)
            .bind(by.station_id)
            .bind(run.client_run_ref.clone())
            .bind(run.execution_id.clone())
            .bind(run.slot_key.clone())
            .bind(run.slot_name.clone())
            .bind(run.deployment_id.clone())
            .bind(meta_sql::stored(run.metadata.clone()))
            .bind(json_list(&run.config)?)
            .bind(json_list(&run.secrets)?)
            .bind(json_list(&run.sequences)?)
            .bind(facts.created_at),
        )
        .await?;
    if inserted == 0 {
        return Ok(Created::Duplicate);
    }
    if unit_created {
        tx.execute(
            Sql::new("UPDATE units SET created_during_run_id = $1 WHERE id = $2")
                .bind(run_id)
                .bind(unit.id),
        )
        .await?;
    }
    resolve::adopt(tx, unit.id, &sub_units).await?;
    insert_sub_unit_links(tx, run_id, &sub_units).await?;
    if let Some(patch) = &run.unit_metadata {
        meta_sql::patch(tx, MetaTable::Units, unit.id, patch, "unit_metadata").await?;
    }
    rows.insert(tx, &facts).await?;
    if !run.attachments.is_empty() {
        link_uploads(tx, org_id, LinkTarget::Run(run_id), &run.attachments).await?;
    }
    Ok(Created::New)
}

/// User keys: the procedure must exist in the organization (404). Station keys: it must
/// also be linked to the station, and an unknown procedure looks the same as an
/// unlinked one (403).
async fn check_procedure(tx: &mut Tx, caller: &Caller, procedure_id: Id) -> DbResult<()> {
    match caller.station_id() {
        None => {
            let found: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new("SELECT id FROM procedures WHERE org_id = $1 AND id = $2")
                        .bind(caller.org_id)
                        .bind(procedure_id),
                )
                .await?;
            found
                .map(|_| ())
                .ok_or_else(|| StoreError::not_found("Procedure not found"))
        }
        Some(station_id) => {
            let linked: Option<(Id,)> = tx
                .fetch_optional(
                    Sql::new(
                        "SELECT p.id FROM station_procedures sp
                         JOIN procedures p ON p.id = sp.procedure_id
                         WHERE sp.station_id = $1 AND sp.procedure_id = $2 AND p.org_id = $3",
                    )
                    .bind(station_id)
                    .bind(procedure_id)
                    .bind(caller.org_id),
                )
                .await?;
            linked.map(|_| ()).ok_or_else(|| {
                StoreError::NotAllowed(
                    "Station is not authorized to create runs for this procedure".into(),
                )
            })
        }
    }
}

fn json_list<T: serde::Serialize>(items: &[T]) -> DbResult<Option<Value>> {
    if items.is_empty() {
        return Ok(None);
    }
    serde_json::to_value(items)
        .map(Some)
        .map_err(StoreError::other)
}
