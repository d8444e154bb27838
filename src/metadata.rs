//! Custom metadata on parts, revisions and units (BEHAVIOR.md §17.2): a flat JSON object
//! of at most 50 keys whose values are strings, numbers or booleans.
//!
//! Writes: a create stores the object as given; an update is a PATCH (keys not sent are
//! kept, a `null` value deletes its key). List filters: the `metadata` query parameter is
//! a JSON object of at most 5 keys, each a plain value (equality) or an object of
//! operators — strings `{in: [...]}` / `{contains: "..."}`, numbers
//! `{gte, lte, gt, lt, eq}`, booleans `{eq: true|false}`. An empty `metadata=` is no
//! filter (the Python client always sends it).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Most keys one entity may carry.
pub const MAX_KEYS: usize = 50;
/// Most keys one list filter may name.
pub const MAX_FILTER_KEYS: usize = 5;
/// Longest key.
pub const MAX_KEY_LEN: usize = 255;
/// Longest string value.
pub const MAX_STRING_LEN: usize = 10_000;

/// `validator` rule for metadata sent on a create: no `null` values (there is nothing
/// to delete yet).
pub fn create_rule(m: &Map<String, Value>) -> Result<(), validator::ValidationError> {
    check(m, false).map_err(rule_error)
}

/// `validator` rule for metadata sent on an update: `null` deletes a key.
pub fn patch_rule(m: &Map<String, Value>) -> Result<(), validator::ValidationError> {
    check(m, true).map_err(rule_error)
}

fn rule_error(message: String) -> validator::ValidationError {
    validator::ValidationError::new("metadata").with_message(Cow::Owned(message))
}

fn check(m: &Map<String, Value>, allow_null: bool) -> Result<(), String> {
    if m.len() > MAX_KEYS {
        return Err(format!(
            "Metadata can have at most {MAX_KEYS} keys, got {}",
            m.len()
        ));
    }
    for (k, v) in m {
        if k.trim().is_empty() {
            return Err("Metadata keys cannot be empty".into());
        }
        if k.chars().count() > MAX_KEY_LEN {
            return Err(format!(
                "Metadata key `{k}` must be at most {MAX_KEY_LEN} characters"
            ));
        }
        match v {
            Value::String(s) if s.chars().count() > MAX_STRING_LEN => {
                return Err(format!(
                    "Metadata value of `{k}` must be at most {MAX_STRING_LEN} characters"
                ))
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
            Value::Null if allow_null => {}
            _ => {
                return Err(format!(
                    "Metadata value of `{k}` must be a string, number or boolean"
                ))
            }
        }
    }
    Ok(())
}

/// The stored form of create metadata: `None` when nothing was given.
pub fn stored(m: Option<Map<String, Value>>) -> Option<Value> {
    m.filter(|m| !m.is_empty()).map(Value::Object)
}

/// Applies a PATCH to stored metadata: `null` deletes, anything else sets. Fails when
/// the result would exceed `MAX_KEYS`.
pub fn merge(
    current: Option<Value>,
    patch: &Map<String, Value>,
) -> Result<Option<Value>, ApiError> {
    let mut merged = match current {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in patch {
        if v.is_null() {
            merged.remove(k);
        } else {
            merged.insert(k.clone(), v.clone());
        }
    }
    if merged.len() > MAX_KEYS {
        return Err(ApiError::invalid(
            "metadata",
            format!(
                "Metadata can have at most {MAX_KEYS} keys; this update would leave {}",
                merged.len()
            ),
        ));
    }
    Ok((!merged.is_empty()).then_some(Value::Object(merged)))
}

/// Metadata as responses render it: always an object.
pub fn rendered(stored: Option<Value>) -> Map<String, Value> {
    match stored {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A comparison on numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl NumOp {
    pub fn sql(self) -> &'static str {
        match self {
            NumOp::Eq => "=",
            NumOp::Gt => ">",
            NumOp::Gte => ">=",
            NumOp::Lt => "<",
            NumOp::Lte => "<=",
        }
    }
}

/// One condition on one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The value is a string equal to one of these.
    TextIn(Vec<String>),
    /// The value is a string containing this, case-insensitively.
    TextContains(String),
    /// The value is a number comparing so.
    Number(NumOp, f64),
    /// The value is this boolean.
    Bool(bool),
}

/// A parsed `metadata` list filter: every condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataFilter {
    pub conds: Vec<(String, Cond)>,
}

impl MetadataFilter {
    /// Parses the raw `metadata` query value. Empty → `None`.
    pub fn parse(raw: Option<&str>) -> Result<Option<MetadataFilter>, ApiError> {
        let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let bad = |msg: String| ApiError::invalid("metadata", msg);
        let obj = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            _ => return Err(bad("metadata must be a JSON object of key filters".into())),
        };
        if obj.is_empty() {
            return Ok(None);
        }
        if obj.len() > MAX_FILTER_KEYS {
            return Err(bad(format!(
                "metadata filters at most {MAX_FILTER_KEYS} keys, got {}",
                obj.len()
            )));
        }
        let mut conds = Vec::new();
        for (key, spec) in obj {
            match spec {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        return Err(bad(format!("metadata filter on `{key}` has no operator")));
                    }
                    for (op, v) in ops {
                        conds.push((key.clone(), operator(&key, &op, v).map_err(bad)?));
                    }
                }
                plain => conds.push((key.clone(), equality(&key, plain).map_err(bad)?)),
            }
        }
        Ok(Some(MetadataFilter { conds }))
    }
}

fn equality(key: &str, v: Value) -> Result<Cond, String> {
    match v {
        Value::String(s) => Ok(Cond::TextIn(vec![s])),
        Value::Bool(b) => Ok(Cond::Bool(b)),
        Value::Number(n) => n
            .as_f64()
            .map(|f| Cond::Number(NumOp::Eq, f))
            .ok_or_else(|| format!("metadata filter on `{key}`: number out of range")),
        _ => Err(format!(
            "metadata filter on `{key}` must be a string, number, boolean or operator object"
        )),
    }
}

fn operator(key: &str, op: &str, v: Value) -> Result<Cond, String> {
    let num = |v: &Value| {
        v.as_f64()
            .ok_or_else(|| format!("metadata filter `{key}.{op}` needs a number"))
    };
    match op {
        "eq" => equality(key, v),
        "gt" => Ok(Cond::Number(NumOp::Gt, num(&v)?)),
        "gte" => Ok(Cond::Number(NumOp::Gte, num(&v)?)),
        "lt" => Ok(Cond::Number(NumOp::Lt, num(&v)?)),
        "lte" => Ok(Cond::Number(NumOp::Lte, num(&v)?)),
        "contains" => match v {
            Value::String(s) => Ok(Cond::TextContains(s)),
            _ => Err(format!("metadata filter `{key}.contains` needs a string")),
        },
        "in" => match v {
            Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(format!("metadata filter `{key}.in` needs an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Cond::TextIn),
            _ => Err(format!("metadata filter `{key}.in` needs an array of strings")),
        },
        other => Err(format!(
            "unknown metadata operator `{other}` on `{key}` (use in, contains, eq, gt, gte, lt, lte)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn values_must_be_scalars() {
        assert!(create_rule(&map(json!({"a": "x", "b": 1, "c": true}))).is_ok());
        assert!(create_rule(&map(json!({"a": null}))).is_err());
        assert!(patch_rule(&map(json!({"a": null}))).is_ok());
        assert!(create_rule(&map(json!({"a": [1]}))).is_err());
        assert!(create_rule(&map(json!({"a": {"b": 1}}))).is_err());
        assert!(create_rule(&map(json!({"": 1}))).is_err());
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(create_rule(&many).is_err());
    }

    #[test]
    fn patches_upsert_and_delete() {
        let merged = merge(
            Some(json!({"a": 1, "b": "x"})),
            &map(json!({"a": null, "c": true})),
        )
        .unwrap();
        assert_eq!(merged, Some(json!({"b": "x", "c": true})));
        assert_eq!(merge(None, &map(json!({"a": null}))).unwrap(), None);
        let full: Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(merge(Some(Value::Object(full)), &map(json!({"new": 1}))).is_err());
    }

    #[test]
    fn filters_parse() {
        assert_eq!(MetadataFilter::parse(Some("")).unwrap(), None);
        assert_eq!(MetadataFilter::parse(None).unwrap(), None);
        assert_eq!(MetadataFilter::parse(Some("{}")).unwrap(), None);
        let f = MetadataFilter::parse(Some(
            r#"{"fw": {"in": ["1.0", "1.1"]}, "temp": {"gte": 20, "lt": 30}, "ok": true}"#,
        ))
        .unwrap()
        .unwrap();
        assert!(f
            .conds
            .contains(&("fw".into(), Cond::TextIn(vec!["1.0".into(), "1.1".into()]))));
        assert!(f
            .conds
            .contains(&("temp".into(), Cond::Number(NumOp::Gte, 20.0))));
        assert!(f
            .conds
            .contains(&("temp".into(), Cond::Number(NumOp::Lt, 30.0))));
        assert!(f.conds.contains(&("ok".into(), Cond::Bool(true))));
        assert!(MetadataFilter::parse(Some("nope")).is_err());
        assert!(MetadataFilter::parse(Some(r#"{"a": {"like": "x"}}"#)).is_err());
        assert!(MetadataFilter::parse(Some(r#"{"a": {"gt": "x"}}"#)).is_err());
        assert!(MetadataFilter::parse(Some(r#"{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1}"#)).is_err());
    }
}
