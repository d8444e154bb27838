//! Custom metadata (BEHAVIOR.md §1.7, §17.2): a flat JSON object whose values are strings,
//! numbers or booleans, at most 50 keys per entity; list filters name at most 5 keys.
//!
//! Writes replace (create) or patch (update: omitted keys kept, `null` deletes a key).
//! The list filter is the JSON object the clients put in the `metadata` query parameter:
//! per key either a plain value (equality) or an operator object — strings
//! `{"in": [...]}` / `{"contains": "..."}` (ci substring), numbers
//! `{"gte", "lte", "gt", "lt", "eq"}`, booleans `{"eq": true|false}`.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Most keys one entity's metadata may hold.
pub const MAX_KEYS: usize = 50;
/// Most keys one list filter may name.
pub const MAX_FILTER_KEYS: usize = 5;

pub type Metadata = Map<String, Value>;

/// Checks a complete metadata object: at most 50 keys, scalar values only.
pub fn check(m: &Metadata) -> Result<(), String> {
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
        if !is_scalar(v) {
            return Err(format!(
                "Metadata value of `{k}` must be a string, number or boolean"
            ));
        }
    }
    Ok(())
}

/// `check` as a `validator` rule for request DTOs.
pub fn rule(m: &Metadata) -> Result<(), validator::ValidationError> {
    check(m).map_err(|msg| {
        validator::ValidationError::new("metadata").with_message(std::borrow::Cow::Owned(msg))
    })
}

/// A metadata patch: every value scalar or `null` (which deletes the key). The key limit
/// is checked on the merged result.
pub fn patch_rule(m: &Metadata) -> Result<(), validator::ValidationError> {
    for (k, v) in m {
        if !(v.is_null() || is_scalar(v)) {
            return Err(validator::ValidationError::new("metadata").with_message(
                std::borrow::Cow::Owned(format!(
                    "Metadata value of `{k}` must be a string, number, boolean or null"
                )),
            ));
        }
    }
    Ok(())
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Applies a patch: `null` deletes the key, anything else sets it. Then checks the result;
/// the error says which rule it breaks.
pub fn merge(current: Option<Metadata>, patch: &Metadata) -> Result<Metadata, String> {
    let mut out = current.unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    check(&out)?;
    Ok(out)
}

/// One condition of a metadata list filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// String value equal to one of these (exact spelling).
    TextIn(String, Vec<String>),
    /// String value containing this text, case-insensitively.
    TextContains(String, String),
    /// Numeric value compared with `op` (one of `>=`, `<=`, `>`, `<`, `=`).
    Number(String, &'static str, f64),
    /// Boolean value.
    Bool(String, bool),
}

/// Parses the `metadata` query parameter. Empty (the Python client sends `metadata=` even
/// without a filter) or `{}` means no filter.
pub fn parse_filter(raw: Option<&str>) -> Result<Vec<Condition>, ApiError> {
    let raw = raw.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |m: String| ApiError::invalid("metadata", m);
    let obj: Metadata = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(o)) => o,
        _ => {
            return Err(bad(
                "metadata filter must be a JSON object of key → value or operator object".into(),
            ))
        }
    };
    if obj.len() > MAX_FILTER_KEYS {
        return Err(bad(format!(
            "metadata filter can name at most {MAX_FILTER_KEYS} keys, got {}",
            obj.len()
        )));
    }
    let mut out = Vec::new();
    for (key, spec) in obj {
        match spec {
            Value::String(s) => out.push(Condition::TextIn(key, vec![s])),
            Value::Bool(b) => out.push(Condition::Bool(key, b)),
            Value::Number(n) => out.push(Condition::Number(key, "=", number(&n))),
            Value::Object(ops) if !ops.is_empty() => {
                for (op, v) in ops {
                    out.push(operator(&key, &op, v).map_err(bad)?);
                }
            }
            _ => {
                return Err(bad(format!(
                    "metadata filter for `{key}` must be a value or a non-empty operator object"
                )))
            }
        }
    }
    Ok(out)
}

fn number(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

fn operator(key: &str, op: &str, v: Value) -> Result<Condition, String> {
    let key = key.to_string();
    let cmp = match op {
        "gte" => Some(">="),
        "lte" => Some("<="),
        "gt" => Some(">"),
        "lt" => Some("<"),
        "eq" => Some("="),
        _ => None,
    };
    match (op, v) {
        ("in", Value::Array(items)) => {
            let texts: Option<Vec<String>> = items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect();
            texts
                .map(|t| Condition::TextIn(key.clone(), t))
                .ok_or_else(|| format!("metadata filter `{key}.in` must be an array of strings"))
        }
        ("contains", Value::String(s)) => Ok(Condition::TextContains(key, s)),
        ("eq", Value::Bool(b)) => Ok(Condition::Bool(key, b)),
        ("eq", Value::String(s)) => Ok(Condition::TextIn(key, vec![s])),
        (_, Value::Number(n)) if cmp.is_some() => {
            Ok(Condition::Number(key, cmp.unwrap_or("="), number(&n)))
        }
        _ => Err(format!(
            "metadata filter `{key}.{op}`: unknown operator or wrong value type \
             (strings: in, contains; numbers: gte, lte, gt, lt, eq; booleans: eq)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Metadata {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn values_must_be_scalars_and_keys_bounded() {
        assert!(check(&obj(json!({"a": "x", "b": 1.5, "c": true}))).is_ok());
        assert!(check(&obj(json!({"a": [1]}))).unwrap_err().contains("`a`"));
        assert!(check(&obj(json!({"a": null}))).is_err());
        let many: Metadata = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(check(&many).unwrap_err().contains("50"));
    }

    #[test]
    fn patches_set_and_delete() {
        let cur = obj(json!({"a": 1, "b": "x"}));
        let out = merge(Some(cur), &obj(json!({"a": null, "c": false}))).unwrap();
        assert_eq!(Value::Object(out), json!({"b": "x", "c": false}));
        let full: Metadata = (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(merge(Some(full), &obj(json!({"extra": 1}))).is_err());
    }

    #[test]
    fn filters_parse() {
        assert!(parse_filter(None).unwrap().is_empty());
        assert!(parse_filter(Some("")).unwrap().is_empty());
        assert!(parse_filter(Some("{}")).unwrap().is_empty());
        let c = parse_filter(Some(
            r#"{"loc": {"in": ["A", "B"]}, "n": {"gte": 2, "lt": 5}, "ok": {"eq": true}, "s": "x"}"#,
        ))
        .unwrap();
        assert_eq!(c.len(), 5);
        assert!(c.contains(&Condition::TextIn(
            "loc".into(),
            vec!["A".into(), "B".into()]
        )));
        assert!(c.contains(&Condition::Number("n".into(), ">=", 2.0)));
        assert!(c.contains(&Condition::Bool("ok".into(), true)));
        assert!(c.contains(&Condition::TextIn("s".into(), vec!["x".into()])));
        assert!(parse_filter(Some("nope")).is_err());
        assert!(parse_filter(Some(r#"{"a": {"near": 1}}"#)).is_err());
        assert!(parse_filter(Some(r#"{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1}"#)).is_err());
    }
}
