//! Stations: test benches with their own keys, linked to procedures.
//!
//! Removing a station archives it (`archived_at`): it then behaves as gone everywhere
//! (get, update, list, remove, key authentication), its keys are revoked and its
//! procedure links dropped, while runs, units and versions it created keep naming it as
//! their creator. The vendor deletes unused stations outright; archiving always gives the
//! same observable behaviour without having to prove that nothing references the row.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;

use super::procedures::require_procedure;
use super::{ci_key, Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::db::metadata::{self as meta_sql, MetaTable};
use crate::metadata::{Condition, Metadata};
use crate::values::{contains_pattern, Page};

#[derive(Debug, Clone, FromRow)]
pub struct StationRow {
    pub id: Id,
    pub name: String,
    pub team_id: Option<Id>,
    pub team_name: Option<String>,
    pub metadata: Option<Json<Value>>,
    pub created_at: Ts,
}

impl StationRow {
    /// The metadata object (`{}` when none was set).
    pub fn metadata(&self) -> Metadata {
        match &self.metadata {
            Some(Json(Value::Object(m))) => m.clone(),
            _ => Metadata::new(),
        }
    }
}

/// A procedure linked to a station (list items).
#[derive(Debug, Clone, FromRow)]
pub struct LinkedProcedureRow {
    pub station_id: Id,
    pub id: Id,
    pub identifier: String,
    pub name: String,
}

/// A procedure linked to a station with this station's recent run count (detail).
#[derive(Debug, Clone, FromRow)]
pub struct StationProcedureRow {
    pub id: Id,
    pub identifier: String,
    pub name: String,
    pub runs_count: i64,
}

pub struct StationDetail {
    pub station: StationRow,
    /// Masked prefix of the newest live key, if any.
    pub api_key: Option<String>,
    pub organization_slug: String,
    pub procedures: Vec<StationProcedureRow>,
}

#[derive(Debug, Default)]
pub struct StationFilter {
    pub search_query: Option<String>,
    /// `Some(empty)` matches nothing.
    pub procedure_ids: Option<Vec<Id>>,
    pub metadata: Vec<Condition>,
}

pub struct NewStation {
    pub name: String,
    pub procedure_id: Option<Id>,
    pub team_id: Option<Id>,
    pub metadata: Option<Metadata>,
}

/// A station update; `None` = leave unchanged.
#[derive(Debug, Default)]
pub struct StationChanges {
    pub name: Option<String>,
    /// `Some(None)` removes the image.
    pub image_id: Option<Option<Id>>,
    /// `Some(None)` unassigns the team.
    pub team_id: Option<Option<Id>>,
    /// Patch: `null` values delete keys.
    pub metadata: Option<Metadata>,
}

/// How far back a station's per-procedure `runs_count` looks (the vendor documents it as
/// "runs created by this station in the last 7 days").
pub const RUNS_COUNT_WINDOW_DAYS: i64 = 7;

const SELECT_STATION: &str = "SELECT s.id, s.name, s.team_id, t.name AS team_name, s.metadata,
        s.created_at
    FROM stations s LEFT JOIN teams t ON t.id = s.team_id";

impl Db {
    /// Id and name of a live station of the organization.
    pub async fn station_name(&self, org_id: Id, id: Id) -> DbResult<(Id, String)> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT id, name FROM stations
                     WHERE org_id = $1 AND id = $2 AND archived_at IS NULL",
                )
                .bind(org_id)
                .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Station not found"))
    }

    /// Creates a station, linked to `procedure_id` and in team `team_id` when given.
    pub async fn create_station(&self, org_id: Id, new: NewStation) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        if let Some(p) = new.procedure_id {
            require_procedure(&mut tx, org_id, p).await?;
        }
        if let Some(t) = new.team_id {
            require_team(&mut tx, org_id, t).await?;
        }
        let id = Id::new();
        tx.execute(
            Sql::new(
                "INSERT INTO stations (id, org_id, name, team_id, metadata, created_at, name_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(org_id)
            .bind(&new.name)
            .bind(new.team_id)
            .bind(meta_sql::stored(new.metadata))
            .bind(Ts::now())
            .bind(ci_key(&new.name)),
        )
        .await?;
        if let Some(p) = new.procedure_id {
            insert_link(&mut tx, id, p).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A page of live stations, newest first, with the procedures each is linked to.
    pub async fn list_stations(
        &self,
        org_id: Id,
        filter: &StationFilter,
        page: Page,
    ) -> DbResult<(Vec<StationRow>, Vec<LinkedProcedureRow>)> {
        let mut q = Sql::new(SELECT_STATION);
        q.push(" WHERE s.org_id = ")
            .push_bind(org_id)
            .push(" AND s.archived_at IS NULL");
        if let Some(s) = &filter.search_query {
            q.push(" AND s.name_key LIKE ")
                .push_bind(contains_pattern(s))
                .push(" ESCAPE '\\'");
        }
        match &filter.procedure_ids {
            Some(ids) if ids.is_empty() => {
                q.push(" AND 1 = 0");
            }
            Some(ids) => {
                q.push(
                    " AND s.id IN (SELECT sp.station_id FROM station_procedures sp
                       WHERE sp.procedure_id IN ",
                )
                .push_tuple(ids.iter().copied())
                .push(")");
            }
            None => {}
        }
        meta_sql::push_filter(&mut q, self.dialect(), "s.metadata", &filter.metadata);
        q.push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
            .push_bind(page.fetch_limit())
            .push(" OFFSET ")
            .push_bind(page.offset);
        let mut r = self.read();
        let rows: Vec<StationRow> = r.fetch_all(q).await?;
        if rows.is_empty() {
            return Ok((rows, Vec::new()));
        }
        let mut q = Sql::new(
            "SELECT sp.station_id, p.id, p.identifier, p.name
             FROM station_procedures sp JOIN procedures p ON p.id = sp.procedure_id
             WHERE sp.station_id IN ",
        );
        q.push_tuple(rows.iter().map(|s| s.id))
            .push(" ORDER BY sp.created_at, p.id");
        let links = r.fetch_all(q).await?;
        Ok((rows, links))
    }

    /// A live station with its key prefix, organization and linked procedures.
    pub async fn station(&self, org_id: Id, id: Id) -> DbResult<StationDetail> {
        let mut r = self.read();
        let station: StationRow = r
            .fetch_optional(
                Sql::new(SELECT_STATION)
                    .then(" WHERE s.org_id = $1 AND s.id = $2 AND s.archived_at IS NULL")
                    .bind(org_id)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Station not found"))?;
        let api_key: Option<(String,)> = r
            .fetch_optional(
                Sql::new(
                    "SELECT prefix FROM api_keys
                     WHERE station_id = $1 AND revoked_at IS NULL
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(id),
            )
            .await?;
        let (organization_slug,): (String,) = r
            .fetch_one(Sql::new("SELECT slug FROM organizations WHERE id = $1").bind(org_id))
            .await?;
        let since = Ts::from(Ts::now().0 - chrono::Duration::days(RUNS_COUNT_WINDOW_DAYS));
        let procedures = r
            .fetch_all(
                Sql::new(
                    "SELECT p.id, p.identifier, p.name,
                        (SELECT COUNT(*) FROM runs r
                         WHERE r.procedure_id = p.id AND r.created_by_station_id = $1
                           AND r.created_at >= $2) AS runs_count
                     FROM station_procedures sp JOIN procedures p ON p.id = sp.procedure_id
                     WHERE sp.station_id = $1
                     ORDER BY sp.created_at, p.id",
                )
                .bind(id)
                .bind(since),
            )
            .await?;
        Ok(StationDetail {
            station,
            api_key: api_key.map(|k| k.0),
            organization_slug,
            procedures,
        })
    }

    /// Applies `changes` to a live station; returns its (possibly new) name.
    pub async fn update_station(
        &self,
        org_id: Id,
        id: Id,
        changes: StationChanges,
    ) -> DbResult<String> {
        let mut tx = self.begin().await?;
        let (name,): (String,) = tx
            .fetch_optional(
                Sql::new(
                    "SELECT name FROM stations
                     WHERE org_id = $1 AND id = $2 AND archived_at IS NULL",
                )
                .bind(org_id)
                .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("Station not found"))?;
        let mut q = Sql::new("UPDATE stations SET name = ");
        let name = changes.name.unwrap_or(name);
        q.push_bind(&name)
            .push(", name_key = ")
            .push_bind(ci_key(&name));
        if let Some(image) = changes.image_id {
            if let Some(upload) = image {
                super::attachments::mark_linked(&mut tx, org_id, upload).await?;
            }
            q.push(", image_attachment_id = ").push_bind(image);
        }
        if let Some(team) = changes.team_id {
            if let Some(t) = team {
                require_team(&mut tx, org_id, t).await?;
            }
            q.push(", team_id = ").push_bind(team);
        }
        q.push(" WHERE id = ").push_bind(id);
        tx.execute(q).await?;
        if let Some(patch) = &changes.metadata {
            meta_sql::patch(&mut tx, MetaTable::Stations, id, patch, "metadata").await?;
        }
        tx.commit().await?;
        Ok(name)
    }

    /// Archives a live station: revokes its keys and drops its procedure links.
    pub async fn remove_station(&self, org_id: Id, id: Id) -> DbResult<()> {
        let now = Ts::now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE stations SET archived_at = $1
                     WHERE org_id = $2 AND id = $3 AND archived_at IS NULL",
                )
                .bind(now)
                .bind(org_id)
                .bind(id),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("Station not found"));
        }
        tx.execute(
            Sql::new(
                "UPDATE api_keys SET revoked_at = $1 WHERE station_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id),
        )
        .await?;
        tx.execute(Sql::new("DELETE FROM station_procedures WHERE station_id = $1").bind(id))
            .await?;
        tx.commit().await
    }

    /// Links a live station to a procedure of the same organization. Idempotent.
    pub async fn link_station_procedure(
        &self,
        org_id: Id,
        station_id: Id,
        procedure_id: Id,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        require_station(&mut tx, org_id, station_id).await?;
        require_procedure(&mut tx, org_id, procedure_id).await?;
        insert_link(&mut tx, station_id, procedure_id).await?;
        tx.commit().await
    }

    /// Removes a station–procedure link. Idempotent: unlinking what is not linked succeeds.
    pub async fn unlink_station_procedure(
        &self,
        org_id: Id,
        station_id: Id,
        procedure_id: Id,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        require_station(&mut tx, org_id, station_id).await?;
        require_procedure(&mut tx, org_id, procedure_id).await?;
        tx.execute(
            Sql::new("DELETE FROM station_procedures WHERE station_id = $1 AND procedure_id = $2")
                .bind(station_id)
                .bind(procedure_id),
        )
        .await?;
        tx.commit().await
    }
}

async fn insert_link(tx: &mut Tx, station_id: Id, procedure_id: Id) -> DbResult<()> {
    tx.execute(
        Sql::new(
            "INSERT INTO station_procedures (station_id, procedure_id, created_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(station_id)
        .bind(procedure_id)
        .bind(Ts::now()),
    )
    .await?;
    Ok(())
}

async fn require_station(tx: &mut Tx, org_id: Id, id: Id) -> DbResult<()> {
    tx.fetch_optional::<(Id,)>(
        Sql::new("SELECT id FROM stations WHERE org_id = $1 AND id = $2 AND archived_at IS NULL")
            .bind(org_id)
            .bind(id),
    )
    .await?
    .map(|_| ())
    .ok_or_else(|| StoreError::not_found("Station not found"))
}

async fn require_team(tx: &mut Tx, org_id: Id, id: Id) -> DbResult<()> {
    tx.fetch_optional::<(Id,)>(
        Sql::new("SELECT id FROM teams WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id),
    )
    .await?
    .map(|_| ())
    .ok_or_else(|| StoreError::not_found("Team not found"))
}
