//! `units.list` — `GET /v2/units`.

use std::collections::HashMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{UnitBatchRef, UnitPart, UnitProcedureRef};
use crate::db::metadata as db_metadata;
use crate::db::units::{ListedUnitRow, SampleFilter, UnitChildRow, UnitFilter, UnitSort};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, Query};
use crate::metadata::{self, Metadata};
use crate::routes::{ListResponse, StationRef, UserRef};
use crate::values::{id_filter, opt_query_ts, opt_query_ts_upper, paginate, Page, SortOrder};
use crate::AppState;

const OUTCOMES: [&str; 5] = ["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"];

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum UnitListSortBy {
    SerialNumber,
    CreatedAt,
    LastRunAt,
    PartNumber,
    LastRunProcedure,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnitListSample {
    Production,
    Golden,
    Failing,
    Ignored,
}

#[derive(Debug, Deserialize)]
pub struct UnitListQuery {
    search_query: Option<String>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    serial_numbers: Vec<String>,
    #[serde(default)]
    part_numbers: Vec<String>,
    #[serde(default)]
    revision_numbers: Vec<String>,
    #[serde(default)]
    batch_numbers: Vec<String>,
    #[serde(default)]
    procedure_ids: Vec<String>,
    #[serde(default)]
    outcomes: Vec<String>,
    started_after: Option<String>,
    started_before: Option<String>,
    /// Accepted and ignored: every unit is listed once anyway.
    #[allow(dead_code)]
    latest_only: Option<bool>,
    run_count_min: Option<String>,
    run_count_max: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    #[serde(default)]
    created_by_user_ids: Vec<String>,
    #[serde(default)]
    created_by_station_ids: Vec<String>,
    exclude_units_with_parent: Option<bool>,
    #[serde(default)]
    samples: Vec<UnitListSample>,
    limit: Option<String>,
    cursor: Option<String>,
    sort_by: Option<UnitListSortBy>,
    sort_order: Option<SortOrder>,
    metadata: Option<String>,
    include_metadata: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct UnitListChild {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize)]
pub struct UnitListParent {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize)]
pub struct UnitListLastRun {
    id: Id,
    outcome: String,
    started_at: Ts,
    ended_at: Option<Ts>,
    procedure: Option<UnitProcedureRef>,
}

#[derive(Debug, Serialize)]
pub struct UnitListItem {
    id: Id,
    serial_number: String,
    created_at: Ts,
    sample: Option<String>,
    children: Vec<UnitListChild>,
    part: UnitPart,
    created_by_user: Option<UserRef>,
    created_by_station: Option<StationRef>,
    batch: Option<UnitBatchRef>,
    parent: Option<UnitListParent>,
    last_run: Option<UnitListLastRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
}

fn run_count(field: &str, raw: &Option<String>) -> ApiResult<Option<i64>> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                field,
                format!("{field} must be a non-negative integer, got `{s}`"),
            )),
        },
    }
}

fn trimmed_all(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.trim().to_string()).collect()
}

impl UnitListQuery {
    fn filter(&self) -> ApiResult<UnitFilter> {
        if let Some(bad) = self
            .outcomes
            .iter()
            .find(|o| !OUTCOMES.contains(&o.as_str()))
        {
            return Err(ApiError::invalid(
                "outcomes",
                format!(
                    "Invalid outcome `{bad}`: expected one of PASS, FAIL, ERROR, TIMEOUT, ABORTED"
                ),
            ));
        }
        Ok(UnitFilter {
            ids: id_filter(&self.ids),
            serial_numbers: trimmed_all(self.serial_numbers.clone()),
            part_numbers: trimmed_all(self.part_numbers.clone()),
            revision_numbers: trimmed_all(self.revision_numbers.clone()),
            batch_numbers: trimmed_all(self.batch_numbers.clone()),
            procedure_ids: id_filter(&self.procedure_ids),
            outcomes: self.outcomes.clone(),
            started_after: opt_query_ts("started_after", &self.started_after)?,
            started_before: opt_query_ts_upper("started_before", &self.started_before)?,
            run_count_min: run_count("run_count_min", &self.run_count_min)?,
            run_count_max: run_count("run_count_max", &self.run_count_max)?,
            created_after: opt_query_ts("created_after", &self.created_after)?,
            created_before: opt_query_ts_upper("created_before", &self.created_before)?,
            created_by_user_ids: id_filter(&self.created_by_user_ids),
            created_by_station_ids: id_filter(&self.created_by_station_ids),
            exclude_units_with_parent: self.exclude_units_with_parent.unwrap_or(false),
            samples: self
                .samples
                .iter()
                .map(|s| match s {
                    UnitListSample::Production => SampleFilter::Production,
                    UnitListSample::Golden => SampleFilter::Flag("golden".into()),
                    UnitListSample::Failing => SampleFilter::Flag("failing".into()),
                    UnitListSample::Ignored => SampleFilter::Flag("ignored".into()),
                })
                .collect(),
            search_query: self.search_query.clone().filter(|s| !s.is_empty()),
            metadata: metadata::parse_filter(self.metadata.as_deref())?,
        })
    }
}

/// `units.list` — `GET /v2/units`, newest first by default.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UnitListQuery>,
) -> ApiResult<axum::Json<ListResponse<UnitListItem>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = q.filter()?;
    let sort = match q.sort_by {
        Some(UnitListSortBy::SerialNumber) => UnitSort::SerialNumber,
        Some(UnitListSortBy::LastRunAt) => UnitSort::LastRunAt,
        Some(UnitListSortBy::PartNumber) => UnitSort::PartNumber,
        Some(UnitListSortBy::LastRunProcedure) => UnitSort::LastRunProcedure,
        Some(UnitListSortBy::CreatedAt) | None => UnitSort::CreatedAt,
    };
    let (rows, children) = state
        .db
        .list_units(
            caller.org_id,
            &filter,
            sort,
            q.sort_order.unwrap_or_default(),
            page,
        )
        .await?;
    let mut children_of: HashMap<Id, Vec<UnitChildRow>> = HashMap::new();
    for c in children {
        children_of.entry(c.parent_id).or_default().push(c);
    }
    let include_metadata = q.include_metadata.unwrap_or(false);
    let (rows, meta) = paginate(rows, page);
    let data = rows
        .into_iter()
        .map(|row| item(row, &mut children_of, include_metadata))
        .collect();
    Ok(axum::Json(ListResponse { data, meta }))
}

fn item(
    row: ListedUnitRow,
    children_of: &mut HashMap<Id, Vec<UnitChildRow>>,
    include_metadata: bool,
) -> UnitListItem {
    let last_run = match (row.lr_id, row.lr_outcome, row.lr_started_at) {
        (Some(id), Some(outcome), Some(started_at)) => Some(UnitListLastRun {
            id,
            outcome,
            started_at,
            ended_at: row.lr_ended_at,
            procedure: row
                .lr_procedure_id
                .zip(row.lr_procedure_name)
                .map(|(id, name)| UnitProcedureRef { id, name }),
        }),
        _ => None,
    };
    let u = row.unit;
    UnitListItem {
        part: u.part(),
        batch: u.batch(),
        created_by_user: u.creator.user(),
        created_by_station: u.creator.station(),
        parent: u
            .parent_id
            .zip(u.parent_serial.clone())
            .map(|(id, serial_number)| UnitListParent { id, serial_number }),
        children: children_of
            .remove(&u.id)
            .unwrap_or_default()
            .into_iter()
            .map(|c| UnitListChild {
                id: c.id,
                serial_number: c.serial_number,
            })
            .collect(),
        last_run,
        metadata: include_metadata.then(|| db_metadata::object(u.metadata.clone())),
        id: u.id,
        serial_number: u.serial_number,
        created_at: u.created_at,
        sample: u.sample,
    }
}
