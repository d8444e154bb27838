//! Query-string parameters shared by the run, phase, measurement and log lists: lists
//! of values (empty values ignored), ids, flags, durations and sort keys.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::db::Id;
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::values::{id_filter, parse_iso_duration, SortOrder};

/// The non-empty values of a repeated parameter, trimmed. (Clients send an empty value
/// for "no filter".)
pub fn texts(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// An id filter: `None` when absent; malformed ids match nothing.
pub fn ids(values: Vec<String>) -> Option<Vec<Id>> {
    id_filter(&texts(values))
}

/// Enum values of a repeated parameter, as their wire text; 400 for unknown values.
pub fn enums<T: DeserializeOwned + Copy>(
    field: &str,
    values: Vec<String>,
    text: impl Fn(T) -> &'static str,
) -> ApiResult<Vec<String>> {
    texts(values)
        .into_iter()
        .map(|v| {
            serde_json::from_value::<T>(Value::String(v.clone()))
                .map(|e| text(e).to_string())
                .map_err(|e| ApiError::invalid(field, format!("Invalid {field} value `{v}`: {e}")))
        })
        .collect()
}

/// A boolean parameter: `true`/`false` (any case), absent or empty = false.
pub fn flag(field: &str, v: &Option<String>) -> ApiResult<bool> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(false),
        Some(s) => Err(ApiError::invalid(
            field,
            format!("{field} must be true or false, got `{s}`"),
        )),
    }
}

/// An optional boolean parameter (absent or empty = `None`).
pub fn opt_flag(field: &str, v: &Option<String>) -> ApiResult<Option<bool>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        _ => flag(field, v).map(Some),
    }
}

/// An ISO 8601 duration parameter in microseconds.
pub fn duration(field: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_iso_duration(s).map(Some).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} must be an ISO 8601 duration such as PT4M or PT1.5S, got `{s}`"),
            )
        }),
    }
}

/// An optional number parameter.
pub fn number(field: &str, v: &Option<String>) -> ApiResult<Option<f64>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(field, format!("{field} must be a number, got `{s}`"))
            }),
    }
}

/// `sort_by`: absent or empty = the default; else one of the enum's values.
pub fn sort_by<T: DeserializeOwned + Default>(v: &Option<String>) -> ApiResult<T> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(T::default()),
        Some(s) => serde_json::from_value(Value::String(s.to_string()))
            .map_err(|e| ApiError::invalid("sort_by", format!("Invalid sort_by value `{s}`: {e}"))),
    }
}

/// `sort_order`: `asc` or `desc` (default).
pub fn sort_order(v: &Option<String>) -> ApiResult<SortOrder> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(SortOrder::Desc),
        Some(s) if s.eq_ignore_ascii_case("asc") => Ok(SortOrder::Asc),
        Some(s) if s.eq_ignore_ascii_case("desc") => Ok(SortOrder::Desc),
        Some(s) => Err(ApiError::invalid(
            "sort_order",
            format!("sort_order must be asc or desc, got `{s}`"),
        )),
    }
}
