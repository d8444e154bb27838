//! Request extractors. Each rejects with an `ApiError`, so every failure leaves in the
//! error envelope, naming the field at fault.
//!
//! Order of checks (BEHAVIOR.md §16) follows from the argument order of handlers:
//! authentication runs as middleware (401) before any extractor; then `Path` (400 for a
//! malformed id), then `UserCaller` (403 for station keys on user-only operations), then
//! `ValidatedJson`/`Query` (400), then the handler's lookups (404) and rules (409, …).

use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

pub use crate::caller::{Caller, Principal};
use crate::error::{ApiError, Issue, PathSegment};
use crate::types::Id;

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Missing API key"))
    }
}

/// A caller that must be a user: station keys get `403 FORBIDDEN` naming the restriction
/// ("Stations cannot delete runs"), before the body is read or anything is looked up.
#[derive(Clone, Debug)]
pub struct UserCaller(pub Caller);

impl UserCaller {
    pub fn user_id(&self) -> Id {
        match self.0.principal {
            Principal::User(id) => id,
            // Unreachable by construction; keep a harmless value rather than panic.
            Principal::Station(_) => Id::NIL,
        }
    }
}

impl std::ops::Deref for UserCaller {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_station() {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            return Err(ApiError::forbidden(station_forbidden_message(
                &parts.method,
                &route,
            )));
        }
        Ok(UserCaller(caller))
    }
}

/// "Stations cannot delete runs", from the method and the route's last resource name.
fn station_forbidden_message(method: &Method, route: &str) -> String {
    let resource = route
        .split('/')
        .rev()
        .find(|s| !s.is_empty() && !s.starts_with('{'))
        .unwrap_or("this resource");
    let resource = match resource {
        "current" => "the current user",
        "linkProcedure"
        | "unlinkProcedure"
        | "station.linkProcedure"
        | "station.unlinkProcedure" => "procedure links",
        r => r,
    };
    let verb = match *method {
        Method::GET => "read",
        Method::POST => "create",
        Method::DELETE => "delete",
        _ => "update",
    };
    let verb = if resource == "procedure links" {
        "change"
    } else {
        verb
    };
    format!("Stations cannot {verb} {resource}")
}

/// A JSON request body, deserialized with the path of any bad field and then validated.
/// Unknown fields are ignored; `null` for an optional field means absent.
pub struct ValidatedJson<T>(pub T);

/// Bodies larger than this are parsed and validated on the blocking pool: a run of
/// thousands of measurements takes tens of milliseconds of CPU, which on an async worker
/// would stall every other request that worker holds (a `whoami` waiting behind a 64 MiB
/// upload). Smaller bodies parse in microseconds, where a thread hop would cost more.
const BLOCKING_PARSE_BYTES: usize = 256 * 1024;

impl<S: Send + Sync, T: DeserializeOwned + Validate + Send + 'static> FromRequest<S>
    for ValidatedJson<T>
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_json_content_type(req.headers())?;
        let bytes = body_bytes(req, state).await?;
        let large = bytes.len() > BLOCKING_PARSE_BYTES;
        let parse = move || -> Result<T, ApiError> {
            require_object(&bytes)?;
            let value: T = parse_json(&bytes)?;
            validate(&value)?;
            Ok(value)
        };
        let value = if large {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| ApiError::internal(format!("body parser: {e}")))??
        } else {
            parse()?
        };
        Ok(ValidatedJson(value))
    }
}

/// Every request body of the API is a JSON object. serde would also read a struct from an
/// array (`["v1"]` as `{"tag": "v1"}`); refuse that rather than guess.
pub fn require_object(bytes: &[u8]) -> Result<(), ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None | Some(b'{') => Ok(()),
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => Err(
            ApiError::bad_request("The request body must be a JSON object"),
        ),
        // Not JSON at all: `parse_json` reports it as malformed.
        Some(_) => Ok(()),
    }
}

/// Reads the body, mapping an over-limit body to 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<bytes::Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map(|l| l.0)
        .unwrap_or(u64::MAX);
    bytes::Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            body_error(&rej)
        }
    })
}

/// What a request body that could not be read answers: 408 when it stalled past the
/// request timeout (`--request-timeout`), else 400 (the client went away or sent a
/// broken body).
pub fn body_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "Request timeout: the body stopped arriving (--request-timeout); send it again",
            );
        }
        cause = c.source();
    }
    ApiError::bad_request(format!("Could not read the request body: {e}"))
}

/// The configured JSON body limit, put in request extensions so 413 messages can cite it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub u64);

/// Accepts a missing Content-Type and any JSON type (`application/json`, `…+json`);
/// anything else is a clear 415.
pub fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.is_empty() || essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, not `{essence}`"),
        ))
    }
}

/// Deserializes JSON, turning serde errors into a 400 that names the field.
/// An empty body reads as `{}` so that "missing field" errors name what is missing.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        bytes
    };
    reject_nul_strings(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let inner = err.inner();
            let path = serde_path(err.path());
            if inner.is_syntax() || inner.is_eof() {
                return Err(malformed_at(inner, path));
            }
            return Err(ApiError::validation(vec![serde_issue(inner, path)]));
        }
    };
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// Text with a NUL character cannot be stored (Postgres refuses it in `text` and
/// `jsonb`), so it is a 400 naming the field on every backend rather than a 500 on one.
/// JSON can only carry NUL as the escape `\u0000`: documents without it cost one scan.
fn reject_nul_strings(bytes: &[u8]) -> Result<(), ApiError> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Ok(());
    }
    // Malformed documents are reported by the real parse.
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match nul_path(&doc, &mut Vec::new()) {
        Some(path) => Err(nul_error(path)),
        None => Ok(()),
    }
}

/// The path to the first string or key holding a NUL character.
fn nul_path(v: &serde_json::Value, at: &mut Vec<PathSegment>) -> Option<Vec<PathSegment>> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Some(at.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            at.push(PathSegment::Index(i));
            let found = nul_path(item, at);
            at.pop();
            found
        }),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            at.push(PathSegment::Key(k.clone()));
            let found = if k.contains('\0') {
                Some(at.clone())
            } else {
                nul_path(item, at)
            };
            at.pop();
            found
        }),
        _ => None,
    }
}

fn nul_error(path: Vec<PathSegment>) -> ApiError {
    let field = path
        .iter()
        .map(|p| match p {
            PathSegment::Key(k) => k.replace('\0', "\\u0000"),
            PathSegment::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    let path = path
        .into_iter()
        .map(|p| match p {
            PathSegment::Key(k) => PathSegment::Key(k.replace('\0', "\\u0000")),
            i => i,
        })
        .collect();
    ApiError::validation(vec![Issue {
        message: format!("Invalid {field}: text must not contain NUL (\\u0000) characters"),
        path,
    }])
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("Malformed JSON in request body: {err}"))
}

/// A syntax error inside a field (`NaN`, `Infinity`, `1e400` as a number, nesting too
/// deep) names that field, in the message and as an issue.
fn malformed_at(err: &serde_json::Error, path: Vec<PathSegment>) -> ApiError {
    if path.is_empty() {
        return malformed(err);
    }
    let field = path
        .iter()
        .map(|p| match p {
            PathSegment::Key(k) => k.clone(),
            PathSegment::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    let mut e = ApiError::bad_request(format!("Malformed JSON in request body at {field}: {err}"));
    e.issues = vec![Issue {
        message: format!("Invalid {field}: {err}"),
        path,
    }];
    e
}

fn serde_issue(err: &serde_json::Error, path: Vec<PathSegment>) -> Issue {
    // serde_json appends " at line L column C"; the path says more than the position.
    let mut msg = err.to_string();
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    let field = path
        .iter()
        .map(|p| match p {
            PathSegment::Key(k) => k.clone(),
            PathSegment::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    let message = if field.is_empty() {
        msg
    } else if msg.starts_with("missing field") {
        format!("{field}: {msg}")
    } else {
        format!("Invalid {field}: {msg}")
    };
    Issue { message, path }
}

fn serde_path(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Runs `validator` and flattens its nested errors into issues with paths.
pub fn validate<T: Validate>(value: &T) -> Result<(), ApiError> {
    match value.validate() {
        Ok(()) => Ok(()),
        Err(errors) => {
            let mut issues = Vec::new();
            flatten_validation(&errors, &mut Vec::new(), &mut issues);
            Err(ApiError::validation(issues))
        }
    }
}

fn flatten_validation(
    errors: &ValidationErrors,
    path: &mut Vec<PathSegment>,
    out: &mut Vec<Issue>,
) {
    for (field, kind) in errors.errors() {
        path.push(PathSegment::Key(field.to_string()));
        match kind {
            ValidationErrorsKind::Field(errs) => {
                for e in errs {
                    let message = e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| format!("Invalid {field}"));
                    out.push(Issue {
                        message,
                        path: path.clone(),
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten_validation(inner, path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    path.push(PathSegment::Index(*i));
                    flatten_validation(inner, path, out);
                    path.pop();
                }
            }
        }
        path.pop();
    }
}

/// Query parameters; arrays are repeated keys (`ids=a&ids=b`).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        parse_query(q).map(Query)
    }
}

pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    check_query_text(q)?;
    let de = serde_html_form::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|err| {
        let field = err.path().to_string();
        let msg = err.inner().to_string();
        let message = if field.is_empty() || field == "." {
            format!("Invalid query: {msg}")
        } else {
            format!("Invalid query parameter {field}: {msg}")
        };
        ApiError::validation(vec![Issue {
            message,
            path: serde_path(err.path()),
        }])
    })
}

/// Every parameter must decode to UTF-8 text without NUL: decoding lossily would
/// silently filter on another value (`%FF` as `\u{FFFD}`), and NUL cannot be stored.
fn check_query_text(q: &str) -> Result<(), ApiError> {
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| -> Option<String> {
            let s = s.replace('+', " ");
            let text = percent_encoding::percent_decode_str(&s)
                .decode_utf8()
                .ok()?;
            (!text.contains('\0')).then(|| text.into_owned())
        };
        let Some(name) = decode(key) else {
            return Err(ApiError::validation(vec![Issue::new(
                "Invalid query: a parameter name is not UTF-8 text without NUL characters",
            )]));
        };
        if decode(value).is_none() {
            return Err(ApiError::validation(vec![Issue::at(
                format!("Invalid query parameter {name}: not UTF-8 text without NUL characters"),
                &name,
            )]));
        }
    }
    Ok(())
}

/// Path parameters, percent-decoded. A malformed id is a 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // A NUL in a serial or number cannot be stored or looked up (see `parse_json`).
        if parts.uri.path().contains("%00") {
            return Err(ApiError::bad_request(
                "Invalid path: NUL (%00) characters are not allowed",
            ));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rej) => {
                let text = rej.body_text();
                if text.contains("Invalid uuid") {
                    Err(ApiError::bad_request("Invalid uuid"))
                } else {
                    Err(ApiError::bad_request(text))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        outcome: Outcome,
    }
    #[derive(Deserialize, Debug)]
    enum Outcome {
        #[serde(rename = "PASS")]
        Pass,
    }

    #[test]
    fn serde_errors_name_the_field() {
        let e =
            parse_json::<Body>(br#"{"name":"x","items":[{"outcome":"PASS"},{"outcome":"NOPE"}]}"#)
                .unwrap_err();
        assert!(
            e.issues[0].message.contains("items.1.outcome"),
            "{:?}",
            e.issues
        );
        assert_eq!(
            e.issues[0].path,
            vec![
                PathSegment::Key("items".into()),
                PathSegment::Index(1),
                PathSegment::Key("outcome".into())
            ]
        );
        let e = parse_json::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert!(e.issues[0].message.contains("name"), "{:?}", e.issues);
        let e = parse_json::<Body>(b"{not json").unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("Malformed JSON"));
        for bad in ["NaN", "-Infinity", "1e400"] {
            let body = format!(r#"{{"name":"x","items":[{{"outcome":{bad}}}]}}"#);
            let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert!(
                e.message.contains("items.0.outcome"),
                "{bad}: {}",
                e.message
            );
            assert_eq!(
                e.issues[0].path,
                vec![
                    PathSegment::Key("items".into()),
                    PathSegment::Index(0),
                    PathSegment::Key("outcome".into())
                ]
            );
        }
        let e = parse_json::<Body>(br#"{"name":"a\u0000b","items":[]}"#).unwrap_err();
        assert_eq!(e.issues[0].path, vec![PathSegment::Key("name".into())]);
    }

    #[test]
    fn station_messages_name_the_restriction() {
        assert_eq!(
            station_forbidden_message(&Method::DELETE, "/api/v2/runs"),
            "Stations cannot delete runs"
        );
        assert_eq!(
            station_forbidden_message(
                &Method::PATCH,
                "/api/v2/parts/{part_number}/revisions/{revision_number}"
            ),
            "Stations cannot update revisions"
        );
    }

    #[derive(Deserialize, Debug)]
    struct Q {
        #[serde(default)]
        ids: Vec<String>,
        limit: Option<String>,
    }

    #[test]
    fn repeated_query_keys_make_arrays() {
        let q: Q = parse_query("ids=a&ids=b&limit=5").unwrap();
        assert_eq!(q.ids, vec!["a", "b"]);
        assert_eq!(q.limit.as_deref(), Some("5"));
        let q: Q = parse_query("ids=a").unwrap();
        assert_eq!(q.ids, vec!["a"]);
    }
}
