//! `units.list` — `GET /v2/units`.

use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{UnitBatchRef, UnitPart, UnitProcedureRef};
use crate::db::metadata as db_metadata;
use crate::db::units::{ListedUnitRow, SampleFilter, UnitChildRow, UnitFilter, UnitSort};
use crate::db::{Id, Ts};
use crate::error::ApiResult;
use crate::extract::{Caller, Query};
use crate::metadata::{self, Metadata};
use crate::routes::params::{After, Before, Count, Enums, Flag, Ids, Search, SortBy, Texts};
use crate::routes::runs::enums::RunOutcome;
use crate::routes::{ListResponse, StationRef, UserRef};
use crate::values::{paginate, Page, SortOrder};
use crate::AppState;

#[derive(Debug, Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitListSortBy {
    SerialNumber,
    CreatedAt,
    LastRunAt,
    PartNumber,
    LastRunProcedure,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitListSample {
    Production,
    Golden,
    Failing,
    Ignored,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct UnitListQuery {
    #[param(inline)]
    search_query: Search,
    #[param(inline)]
    ids: Ids,
    #[param(inline)]
    serial_numbers: Texts,
    #[param(inline)]
    part_numbers: Texts,
    #[param(inline)]
    revision_numbers: Texts,
    #[param(inline)]
    batch_numbers: Texts,
    #[param(inline)]
    procedure_ids: Ids,
    #[param(inline)]
    outcomes: Enums<RunOutcome>,
    #[param(inline)]
    started_after: After,
    #[param(inline)]
    started_before: Before,
    /// Accepted and ignored: every unit is listed once anyway.
    #[allow(dead_code)]
    #[param(inline)]
    latest_only: Flag,
    #[param(inline)]
    run_count_min: Count,
    #[param(inline)]
    run_count_max: Count,
    #[param(inline)]
    created_after: After,
    #[param(inline)]
    created_before: Before,
    #[param(inline)]
    created_by_user_ids: Ids,
    #[param(inline)]
    created_by_station_ids: Ids,
    #[param(inline)]
    exclude_units_with_parent: Flag,
    #[param(inline)]
    samples: Enums<UnitListSample>,
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    #[param(value_type = Option<i64>)]
    cursor: Option<String>,
    #[param(inline)]
    sort_by: SortBy<UnitListSortBy>,
    #[param(inline)]
    sort_order: SortOrder,
    metadata: Option<String>,
    #[param(inline)]
    include_metadata: Flag,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitListChild {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitListParent {
    id: Id,
    serial_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitListLastRun {
    id: Id,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    outcome: String,
    started_at: Ts,
    #[schema(required = true)]
    ended_at: Option<Ts>,
    #[schema(required = true)]
    procedure: Option<UnitProcedureRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitListItem {
    id: Id,
    serial_number: String,
    created_at: Ts,
    #[schema(required = true, value_type = Option<crate::routes::units::UnitSample>, inline)]
    sample: Option<String>,
    children: Vec<UnitListChild>,
    part: UnitPart,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
    #[schema(required = true)]
    batch: Option<UnitBatchRef>,
    #[schema(required = true)]
    parent: Option<UnitListParent>,
    #[schema(required = true)]
    last_run: Option<UnitListLastRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Metadata>,
}

impl UnitListQuery {
    fn filter(&self) -> ApiResult<UnitFilter> {
        Ok(UnitFilter {
            ids: self.ids.0.clone(),
            serial_numbers: self.serial_numbers.0.clone(),
            part_numbers: self.part_numbers.0.clone(),
            revision_numbers: self.revision_numbers.0.clone(),
            batch_numbers: self.batch_numbers.0.clone(),
            procedure_ids: self.procedure_ids.0.clone(),
            outcomes: self.outcomes.texts(RunOutcome::as_str),
            started_after: self.started_after.0,
            started_before: self.started_before.0,
            run_count_min: self.run_count_min.0,
            run_count_max: self.run_count_max.0,
            created_after: self.created_after.0,
            created_before: self.created_before.0,
            created_by_user_ids: self.created_by_user_ids.0.clone(),
            created_by_station_ids: self.created_by_station_ids.0.clone(),
            exclude_units_with_parent: self.exclude_units_with_parent.on(),
            samples: self
                .samples
                .0
                .iter()
                .map(|s| match s {
                    UnitListSample::Production => SampleFilter::Production,
                    UnitListSample::Golden => SampleFilter::Flag("golden".into()),
                    UnitListSample::Failing => SampleFilter::Flag("failing".into()),
                    UnitListSample::Ignored => SampleFilter::Flag("ignored".into()),
                })
                .collect(),
            search_query: self.search_query.0.clone(),
            metadata: metadata::parse_filter(self.metadata.as_deref())?,
        })
    }
}

/// `units.list` — `GET /v2/units`, newest first by default.
#[utoipa::path(
    get,
    path = "/v2/units",
    tag = "units",
    operation_id = "unit-list",
    params(UnitListQuery),
    responses((status = 200, body = ListResponse<UnitListItem>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UnitListQuery>,
) -> ApiResult<axum::Json<ListResponse<UnitListItem>>> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = q.filter()?;
    let sort = match q.sort_by.0 {
        Some(UnitListSortBy::SerialNumber) => UnitSort::SerialNumber,
        Some(UnitListSortBy::LastRunAt) => UnitSort::LastRunAt,
        Some(UnitListSortBy::PartNumber) => UnitSort::PartNumber,
        Some(UnitListSortBy::LastRunProcedure) => UnitSort::LastRunProcedure,
        Some(UnitListSortBy::CreatedAt) | None => UnitSort::CreatedAt,
    };
    let (rows, children) = state
        .db
        .list_units(caller.org_id, &filter, sort, q.sort_order, page)
        .await?;
    let mut children_of: HashMap<Id, Vec<UnitChildRow>> = HashMap::new();
    for c in children {
        children_of.entry(c.parent_id).or_default().push(c);
    }
    let include_metadata = q.include_metadata.on();
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
