//! The OpenAPI 3.1 document of the v2 API, generated from the request, query and response
//! types the handlers use (`utoipa`): `GET /api/v2/openapi.json`, browsable at
//! `/api/docs` (Swagger UI, embedded in the binary, so it works offline).
//!
//! The handlers carry `#[utoipa::path]` with their method, path, parameters and bodies;
//! the error responses every operation can give are added here, once. The test
//! `tests/openapi.rs` holds the document against the vendor's contract operation by
//! operation, so code and document cannot drift.

use std::borrow::Cow;

use axum::Router;
use utoipa::__dev::ComposeSchema;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, Schema, Server,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::db::{Id, Ts};
use crate::error::ErrorBody;
use crate::routes::params::{
    After, Before, Count, Duration, Enums, Flag, Ids, Number, Search, SortBy, Texts,
};
use crate::routes::{
    attachments, batches, deployments, identity, imports, logs, measurements, parts, phases,
    procedures, revisions, runs, stations, units, versions,
};
use crate::values::SortOrder;
use crate::AppState;

/// Where the document and its page are served.
pub const DOCUMENT_PATH: &str = "/api/v2/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tofulab: the TofuPilot REST API v2",
        description = "The v2 operations as tofulab serves them. Authenticate with \
                       `Authorization: Bearer <api key>`."
    ),
    paths(
        identity::list_users,
        identity::current_user,
        identity::whoami,
        procedures::create,
        procedures::list,
        procedures::get_one,
        procedures::update,
        procedures::delete,
        versions::create,
        versions::get_one,
        versions::delete,
        stations::create,
        stations::list,
        stations::get_current,
        stations::get_one,
        stations::update,
        stations::remove,
        parts::create,
        parts::list,
        parts::get_one,
        parts::update,
        parts::delete,
        revisions::create,
        revisions::get_one,
        revisions::update,
        revisions::delete,
        units::create,
        units::list::list,
        units::delete,
        units::get_one,
        units::update,
        attachments::create_unit_attachment,
        attachments::delete_unit_attachments,
        units::children::add_child,
        units::children::remove_child,
        runs::create,
        runs::list,
        runs::delete,
        runs::get_one,
        runs::update,
        attachments::create_run_attachment,
        runs::update_metadata,
        attachments::initialize,
        attachments::finalize,
        phases::list,
        phases::get_one,
        measurements::list,
        measurements::get_one,
        logs::list,
        logs::get_one,
        deployments::list,
        deployments::get_one,
        imports::structured,
        imports::tabular,
        batches::create,
        batches::list,
        batches::get_one,
        batches::update,
        batches::delete,
    ),
    modifiers(&Conventions)
)]
pub struct ApiDoc;

/// The document, built once per call (the server builds it once at start).
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// `GET /api/v2/openapi.json` and the Swagger UI at `/api/docs`, outside the API's auth.
pub fn routes() -> Router<AppState> {
    SwaggerUi::new(DOCS_PATH)
        .url(DOCUMENT_PATH, document())
        .into()
}

/// What holds for every operation, said once: the server prefix, bearer auth, and the
/// error envelope under each status the API answers with.
struct Conventions;

/// The statuses any operation may answer besides its success (BEHAVIOR.md §13.3):
/// validation, auth, permission, missing resource, conflict, rate limit, timeout and the
/// server's own failures all use the same envelope.
const ERROR_STATUSES: [(&str, &str); 10] = [
    ("400", "The request is invalid; `issues` names the fields."),
    ("401", "No API key, or an unknown or revoked one."),
    ("403", "The key may not do this."),
    (
        "404",
        "The resource does not exist in the caller's organization.",
    ),
    ("408", "The request took too long."),
    ("409", "The resource conflicts with an existing one."),
    ("413", "The body is too large."),
    (
        "429",
        "Over the rate limit; `Retry-After` says when to retry.",
    ),
    ("500", "A server error."),
    (
        "503",
        "Temporarily unavailable; `Retry-After` says when to retry.",
    ),
];

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        doc.servers = Some(vec![Server::new("/api")]);
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The value types that DTO fields name by reference (query parameters inline
        // theirs), and the error envelope.
        let leaves = [
            (Id::name(), Id::schema()),
            (Ts::name(), Ts::schema()),
            (ErrorBody::name(), ErrorBody::schema()),
        ];
        for (name, schema) in leaves {
            components.schemas.insert(name.into_owned(), schema);
        }
        let mut body_schemas = Vec::new();
        <ErrorBody as ToSchema>::schemas(&mut body_schemas);
        components.schemas.extend(body_schemas);
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearerAuth",
            Vec::<String>::new(),
        )]);
        let error = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build();
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                add_error_responses(op, &error);
            }
        }
    }
}

fn add_error_responses(op: &mut Operation, error: &utoipa::openapi::Content) {
    for (status, description) in ERROR_STATUSES {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", error.clone())
                    .into()
            });
    }
}

// The schemas of tofulab's own value types: how each serializes on the wire.

fn string(format: Option<SchemaFormat>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format)
        .into()
}

/// A time bound: RFC 3339, or a date and time without offset (UTC), or a date alone.
fn time_bound() -> Schema {
    AnyOfBuilder::new()
        .item(string(Some(SchemaFormat::KnownFormat(
            KnownFormat::DateTime,
        ))))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")),
        )
        .into()
}

fn array_of(items: RefOr<Schema>) -> Schema {
    ArrayBuilder::new().items(items).into()
}

macro_rules! leaf_schema {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T($schema)
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

leaf_schema!(Id, "Id", string(Some(SchemaFormat::Custom("uuid".into()))));
leaf_schema!(
    Ts,
    "Timestamp",
    string(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
);

// Query parameters: a repeated parameter is an array (`ids=a&ids=b`).
leaf_schema!(Texts, "Texts", array_of(string(None).into()));
leaf_schema!(Ids, "Ids", array_of(string(None).into()));
leaf_schema!(
    Flag,
    "Flag",
    ObjectBuilder::new().schema_type(Type::Boolean).into()
);
leaf_schema!(
    Duration,
    "IsoDuration",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("An ISO 8601 duration, e.g. PT4M or PT1.5S"))
        .into()
);
leaf_schema!(
    Number,
    "Number",
    ObjectBuilder::new().schema_type(Type::Number).into()
);
leaf_schema!(
    Count,
    "Count",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .into()
);
leaf_schema!(After, "After", time_bound());
leaf_schema!(Before, "Before", time_bound());
leaf_schema!(Search, "Search", string(None));
leaf_schema!(
    SortOrder,
    "SortOrder",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["asc", "desc"]))
        .default(Some("desc".into()))
        .into()
);

// The generic ones compose (`utoipa`'s hook for generic types): `#[param(inline)]`
// inlines them with their own item type.
impl<T: ToSchema> ComposeSchema for Enums<T> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        RefOr::T(array_of(T::schema()))
    }
}
impl<T: ToSchema> ToSchema for Enums<T> {}

impl<T: ToSchema> ComposeSchema for SortBy<T> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        T::schema()
    }
}
impl<T: ToSchema> ToSchema for SortBy<T> {}
