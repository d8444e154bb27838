//! Units (BEHAVIOR.md §2): create, get, update, delete here; the list in `list`, parent/
//! child links in `children`. (Unit attachment endpoints live with attachments.)

pub(crate) mod children;
pub(crate) mod list;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, put};
use axum::Router;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::attachments::{download_url, public_base};
use super::parts::{part_number_rule, revision_number_rule};
use super::{IdResponse, IdsResponse, StationRef, UserRef};
use crate::db::common::CreatedBy;
use crate::db::metadata as db_metadata;
use crate::db::units::{NewUnit, RelatedUnitRow, UnitChanges, UnitRow};
use crate::db::{Id, Ts};
use crate::error::{ApiError, ApiResult, Issue, PathSegment};
use crate::extract::{Caller, Path, Query, UserCaller, ValidatedJson};
use crate::metadata::{self, Metadata};
use crate::routes::params::Texts;
use crate::rules;
use crate::values::{iso_duration, text_rule, trimmed, trimmed_required};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/units", get(list::list).post(create).delete(delete))
        .route("/units/{serial_number}", get(get_one).patch(update))
        .route(
            "/units/{serial_number}/children",
            put(children::add_child)
                .delete(children::remove_child)
                .fallback(children::other_method),
        )
}

pub(crate) fn serial_number_rule(v: &str) -> Result<(), validator::ValidationError> {
    text_rule("Serial number", v, 1, 60)
}

/// The sample flag of a unit; no flag = a production unit.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitSample {
    Golden,
    Failing,
    Ignored,
}

impl UnitSample {
    fn as_str(self) -> &'static str {
        match self {
            UnitSample::Golden => "golden",
            UnitSample::Failing => "failing",
            UnitSample::Ignored => "ignored",
        }
    }
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or set.
fn explicit<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::<T>::deserialize(d)?))
}

fn explicit_trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(trimmed(d)?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct UnitCreateRequest {
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "serial_number_rule"))]
    pub serial_number: String,
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "part_number_rule"))]
    pub part_number: String,
    #[serde(deserialize_with = "trimmed_required")]
    #[validate(custom(function = "revision_number_rule"))]
    pub revision_number: String,
    #[serde(default)]
    pub sample: Option<UnitSample>,
    #[serde(default)]
    #[validate(custom(function = "metadata::rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// `units.create` — `POST /v2/units`. The part and revision must exist; stations may
/// create units.
#[utoipa::path(
    post,
    path = "/v2/units",
    tag = "units",
    operation_id = "unit-create",
    request_body = UnitCreateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<UnitCreateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let new = NewUnit {
        serial_number: body.serial_number,
        part_number: body.part_number,
        revision_number: body.revision_number,
        sample: body.sample.map(|s| s.as_str().to_string()),
        metadata: db_metadata::stored(body.metadata),
    };
    let id = state
        .db
        .create_unit(caller.org_id, CreatedBy::of(&caller), new)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitRevisionRef {
    id: Id,
    number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitPart {
    id: Id,
    number: String,
    name: String,
    revision: UnitRevisionRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitBatchRef {
    id: Id,
    number: String,
}

impl UnitRow {
    fn part(&self) -> UnitPart {
        UnitPart {
            id: self.part_id,
            number: self.part_number.clone(),
            name: self.part_name.clone(),
            revision: UnitRevisionRef {
                id: self.revision_id,
                number: self.revision_number.clone(),
            },
        }
    }

    fn batch(&self) -> Option<UnitBatchRef> {
        Some(UnitBatchRef {
            id: self.batch_id?,
            number: self.batch_number.clone()?,
        })
    }
}

/// A parent or child on `GET /v2/units/{serial_number}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitGetRelated {
    id: Id,
    serial_number: String,
    part: UnitPart,
}

impl From<RelatedUnitRow> for UnitGetRelated {
    fn from(r: RelatedUnitRow) -> Self {
        UnitGetRelated {
            id: r.id,
            serial_number: r.serial_number,
            part: UnitPart {
                id: r.part_id,
                number: r.part_number,
                name: r.part_name,
                revision: UnitRevisionRef {
                    id: r.revision_id,
                    number: r.revision_number,
                },
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitProcedureRef {
    id: Id,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitCreatedDuring {
    id: Id,
    created_at: Ts,
    started_at: Ts,
    ended_at: Ts,
    duration: String,
    #[schema(value_type = crate::routes::runs::enums::RunOutcome, inline)]
    outcome: String,
    procedure: UnitProcedureRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitAttachment {
    id: Id,
    name: String,
    #[schema(required = true)]
    size: Option<i64>,
    #[schema(required = true)]
    content_type: Option<String>,
    #[schema(required = true)]
    download_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitGetResponse {
    id: Id,
    serial_number: String,
    created_at: Ts,
    #[schema(required = true, value_type = Option<crate::routes::units::UnitSample>, inline)]
    sample: Option<String>,
    part: UnitPart,
    #[schema(required = true)]
    parent: Option<UnitGetRelated>,
    #[schema(required = true)]
    created_by_user: Option<UserRef>,
    #[schema(required = true)]
    created_by_station: Option<StationRef>,
    #[schema(required = true)]
    batch: Option<UnitBatchRef>,
    children: Vec<UnitGetRelated>,
    #[schema(required = true)]
    created_during: Option<UnitCreatedDuring>,
    attachments: Vec<UnitAttachment>,
    #[schema(value_type = Object)]
    metadata: Metadata,
}

/// `units.get` — `GET /v2/units/{serial_number}`; the serial matches case-insensitively.
#[utoipa::path(
    get,
    path = "/v2/units/{serial_number}",
    tag = "units",
    operation_id = "unit-get",
    params(("serial_number" = String, Path)),
    responses((status = 200, body = UnitGetResponse))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<axum::Json<UnitGetResponse>> {
    let d = state.db.unit(caller.org_id, serial.trim()).await?;
    let attachments = state.db.attachments_of_unit(d.unit.id).await?;
    let base = public_base(&state, &headers);
    let u = d.unit;
    Ok(axum::Json(UnitGetResponse {
        part: u.part(),
        batch: u.batch(),
        created_by_user: u.creator.user(),
        created_by_station: u.creator.station(),
        parent: d.parent.map(UnitGetRelated::from),
        children: d.children.into_iter().map(UnitGetRelated::from).collect(),
        created_during: d.created_during.map(|r| UnitCreatedDuring {
            id: r.id,
            created_at: r.created_at,
            started_at: r.started_at,
            ended_at: r.ended_at,
            duration: iso_duration(r.duration_us),
            outcome: r.outcome,
            procedure: UnitProcedureRef {
                id: r.procedure_id,
                name: r.procedure_name,
            },
        }),
        attachments: attachments
            .into_iter()
            .map(|a| UnitAttachment {
                download_url: a.has_bytes.then(|| download_url(&state, &base, a.id)),
                id: a.id,
                name: a.name,
                size: a.size,
                content_type: a.content_type,
            })
            .collect(),
        id: u.id,
        serial_number: u.serial_number,
        created_at: u.created_at,
        sample: u.sample,
        metadata: db_metadata::object(u.metadata),
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct UnitUpdateRequest {
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "serial_number_rule"))]
    pub new_serial_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "part_number_rule"))]
    pub part_number: Option<String>,
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "revision_number_rule"))]
    pub revision_number: Option<String>,
    /// `null` removes the batch.
    #[serde(default, deserialize_with = "explicit_trimmed")]
    pub batch_number: Option<Option<String>>,
    #[serde(default)]
    pub attachments: Option<Vec<String>>,
    /// `null` clears the flag.
    #[serde(default, deserialize_with = "explicit")]
    pub sample: Option<Option<UnitSample>>,
    #[serde(default)]
    #[validate(custom(function = "metadata::patch_rule"))]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

impl UnitUpdateRequest {
    /// Checks the rules that span fields or need parsing, then builds the changes.
    fn into_changes(self) -> ApiResult<UnitChanges> {
        let mut issues = Vec::new();
        if self.part_number.is_some() && self.revision_number.is_none() {
            issues.push(Issue::at(
                "revision_number is required when part_number is given",
                "revision_number",
            ));
        }
        if let Some(Some(b)) = &self.batch_number {
            if let Err(message) = rules::batch(b) {
                let message = if b.is_empty() {
                    "Batch number cannot be empty (send null to remove the batch)".to_string()
                } else {
                    message
                };
                issues.push(Issue::at(message, "batch_number"));
            }
        }
        let mut attachments = Vec::new();
        for (i, raw) in self.attachments.unwrap_or_default().iter().enumerate() {
            match Id::parse(raw.trim()) {
                Some(id) => attachments.push(id),
                None => issues.push(Issue {
                    message: format!("attachments.{i}: `{raw}` is not an upload id"),
                    path: vec![
                        PathSegment::Key("attachments".into()),
                        PathSegment::Index(i),
                    ],
                }),
            }
        }
        if !issues.is_empty() {
            return Err(ApiError::validation(issues));
        }
        Ok(UnitChanges {
            new_serial_number: self.new_serial_number,
            revision: self.revision_number.map(|rev| (self.part_number, rev)),
            batch_number: self.batch_number,
            attachments,
            sample: self.sample.map(|s| s.map(|s| s.as_str().to_string())),
            metadata: self.metadata,
        })
    }
}

/// `units.update` — `PATCH /v2/units/{serial_number}`. Stations may update units. An
/// empty body changes nothing and answers the unit's id.
#[utoipa::path(
    patch,
    path = "/v2/units/{serial_number}",
    tag = "units",
    operation_id = "unit-update",
    params(("serial_number" = String, Path)),
    request_body = UnitUpdateRequest,
    responses((status = 200, body = IdResponse))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<UnitUpdateRequest>,
) -> ApiResult<axum::Json<IdResponse>> {
    let changes = body.into_changes()?;
    let id = state
        .db
        .update_unit(caller.org_id, serial.trim(), changes)
        .await?;
    Ok(axum::Json(IdResponse { id }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitDeleteQuery {
    #[serde(default)]
    #[param(inline, required = true)]
    serial_numbers: Texts,
}

/// `units.delete` — `DELETE /v2/units?serial_numbers=…`. User keys only. Children are
/// kept (they lose their parent); the units' runs and attachments are deleted with them.
#[utoipa::path(
    delete,
    path = "/v2/units",
    tag = "units",
    operation_id = "unit-delete",
    params(UnitDeleteQuery),
    responses((status = 200, body = IdsResponse))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(q): Query<UnitDeleteQuery>,
) -> ApiResult<axum::Json<IdsResponse>> {
    let serials = q.serial_numbers.0;
    if serials.is_empty() {
        return Err(ApiError::invalid(
            "serial_numbers",
            "serial_numbers is required: name at least one unit",
        ));
    }
    let id = state.db.delete_units(caller.org_id, &serials).await?;
    Ok(axum::Json(IdsResponse { id }))
}
