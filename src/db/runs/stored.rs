//! The stored form of validators, aggregations and data series: JSON in the shape the
//! API returns (every key present, expressions generated), written once at creation so
//! that reads pass it through. Also how a measured value is classified for the
//! measurement list filters.

use serde_json::{json, Value};

use super::model::{NewAggregation, NewDataSeries, NewValidator};
use crate::db::Id;

/// The stored (and returned) form of a validator: every key of the response shape,
/// with the display expression generated when the caller gave none. `expected_value`
/// is kept as sent; readers render shapes the clients cannot take as text.
pub fn validator_json(v: &NewValidator) -> Value {
    let generated = v
        .operator
        .as_deref()
        .map(|op| generated_expression(op, v.expected_value.as_ref()));
    let expression = match (&v.expression, &generated) {
        (Some(e), _) => e.clone(),
        (None, Some(g)) => g.clone(),
        // Neither an operator nor an expression: show the expected value, if any.
        (None, None) => v.expected_value.as_ref().map(display).unwrap_or_default(),
    };
    json!({
        "outcome": v.outcome.as_deref().unwrap_or("UNSET"),
        "operator": v.operator,
        "expected_value": v.expected_value,
        "expression": expression,
        "is_decisive": v.is_decisive,
        "is_expression_only": v.expression.is_some() && v.operator.is_none(),
        "has_custom_expression": v.expression.is_some(),
        "analytics_expression": generated,
    })
}

pub fn validators_json(vs: &Option<Vec<NewValidator>>) -> Value {
    match vs {
        Some(vs) => Value::Array(vs.iter().map(validator_json).collect()),
        None => Value::Null,
    }
}

/// The stored form of an aggregation; each gets an id.
pub fn aggregation_json(a: &NewAggregation) -> Value {
    json!({
        "id": Id::new(),
        "type": a.kind,
        "outcome": a.outcome,
        "value": a.value,
        "unit": a.unit,
        "validators": validators_json(&a.validators),
    })
}

pub fn aggregations_json(aggs: &Option<Vec<NewAggregation>>) -> Value {
    match aggs {
        Some(aggs) => Value::Array(aggs.iter().map(aggregation_json).collect()),
        None => Value::Null,
    }
}

pub fn data_series_json(series: &[NewDataSeries]) -> Value {
    Value::Array(
        series
            .iter()
            .map(|s| {
                json!({
                    "data": s.data,
                    "units": s.units,
                    "name": s.name,
                    "description": s.description,
                    "validators": validators_json(&s.validators),
                    "aggregations": aggregations_json(&s.aggregations),
                })
            })
            .collect(),
    )
}

/// The human expression for an operator and expected value: `x >= 3.0`,
/// `x in ["A", "B"]`, `3.0 <= x <= 3.6`, `x matches /^A/`.
pub fn generated_expression(operator: &str, expected: Option<&Value>) -> String {
    let shown = expected.map(display).unwrap_or_else(|| "null".into());
    match (operator, expected) {
        ("range", Some(Value::Array(b))) if b.len() == 2 => {
            format!("{} <= x <= {}", display(&b[0]), display(&b[1]))
        }
        ("matches", Some(Value::String(re))) => format!("x matches /{re}/"),
        _ => format!("x {operator} {shown}"),
    }
}

/// A JSON value as it reads in an expression: numbers as sent, strings quoted, lists
/// with `, ` between items, objects as compact JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// How a measured value is classified for the measurement list filters, with its typed
/// copy: (`measurement_type`, number, bool, string).
pub fn classify_value(
    value: Option<&Value>,
    has_series: bool,
) -> (&'static str, Option<f64>, Option<bool>, Option<String>) {
    match value {
        Some(Value::Number(n)) => ("numeric", n.as_f64(), None, None),
        Some(Value::Bool(b)) => ("boolean", None, Some(*b), None),
        Some(Value::String(s)) => ("string", None, None, Some(s.clone())),
        Some(Value::Array(rows)) if rows.iter().all(Value::is_array) && !rows.is_empty() => {
            ("multidimensional", None, None, None)
        }
        _ if has_series => ("multidimensional", None, None, None),
        Some(Value::Array(_)) | Some(Value::Object(_)) => ("json", None, None, None),
        Some(Value::Null) | None => ("empty", None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::runs::model::NewValidator;

    fn v(op: Option<&str>, expected: Option<Value>, expression: Option<&str>) -> Value {
        validator_json(&NewValidator {
            operator: op.map(str::to_string),
            expected_value: expected,
            expression: expression.map(str::to_string),
            outcome: None,
            is_decisive: None,
        })
    }

    #[test]
    fn expressions_are_generated() {
        assert_eq!(
            v(Some(">="), Some(json!(3.0)), None)["expression"],
            "x >= 3.0"
        );
        assert_eq!(
            v(Some("<="), Some(json!(10)), None)["expression"],
            "x <= 10"
        );
        assert_eq!(
            v(Some("in"), Some(json!(["A", "B"])), None)["expression"],
            "x in [\"A\", \"B\"]"
        );
        assert_eq!(
            v(Some("range"), Some(json!([3.0, 3.6])), None)["expression"],
            "3.0 <= x <= 3.6"
        );
        assert_eq!(
            v(Some("matches"), Some(json!("^SN")), None)["expression"],
            "x matches /^SN/"
        );
        assert_eq!(
            v(Some("=="), Some(json!(true)), None)["expression"],
            "x == true"
        );
        let full = v(Some(">="), Some(json!(1)), None);
        assert_eq!(full["outcome"], "UNSET");
        assert_eq!(full["is_expression_only"], false);
        assert_eq!(full["has_custom_expression"], false);
        assert_eq!(full["analytics_expression"], "x >= 1");
        assert_eq!(full["is_decisive"], Value::Null);
    }

    #[test]
    fn custom_and_expression_only_validators() {
        let only = v(None, None, Some("value > threshold"));
        assert_eq!(only["expression"], "value > threshold");
        assert_eq!(only["is_expression_only"], true);
        assert_eq!(only["has_custom_expression"], true);
        assert_eq!(only["analytics_expression"], Value::Null);
        let custom = v(Some(">="), Some(json!(0)), Some("safe"));
        assert_eq!(custom["expression"], "safe");
        assert_eq!(custom["is_expression_only"], false);
        assert_eq!(custom["has_custom_expression"], true);
        assert_eq!(custom["analytics_expression"], "x >= 0");
    }

    #[test]
    fn values_are_classified() {
        assert_eq!(classify_value(Some(&json!(1.5)), false).0, "numeric");
        assert_eq!(classify_value(Some(&json!(true)), false).0, "boolean");
        assert_eq!(classify_value(Some(&json!("x")), false).0, "string");
        assert_eq!(
            classify_value(Some(&json!([[1, 2]])), false).0,
            "multidimensional"
        );
        assert_eq!(classify_value(None, true).0, "multidimensional");
        assert_eq!(classify_value(Some(&json!([1, 2])), false).0, "json");
        assert_eq!(classify_value(Some(&json!({"a": 1})), false).0, "json");
        assert_eq!(classify_value(None, false).0, "empty");
    }
}
