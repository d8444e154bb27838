//! Reading the validator strings OpenHTF writes (`3.1 <= x <= 3.5`, `'x' matches /RE/`,
//! `x == True`, …) back into an operator and an expected value (BEHAVIOR.md §11.4). The
//! legacy v1 API sends the same strings. A string that matches none of the known forms
//! becomes an expression-only validator carrying it unchanged.

use serde_json::{Number, Value};

use crate::db::runs::NewValidator;

/// The validators a list of OpenHTF-style strings stands for: one per string, each
/// carrying the string as its expression and `outcome` (the measurement's) as its
/// outcome.
pub fn from_strings<S: AsRef<str>>(strings: &[S], outcome: &str) -> Vec<NewValidator> {
    strings
        .iter()
        .map(|s| {
            let raw = s.as_ref();
            let parsed = parse(raw);
            NewValidator {
                operator: parsed.operator,
                expected_value: parsed.expected,
                expression: Some(raw.to_string()),
                outcome: Some(outcome.to_string()),
                is_decisive: None,
            }
        })
        .collect()
}

/// What a validator string says: an operator with its expected value, or nothing
/// machine-readable (`operator` and `expected` both `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedValidator {
    pub operator: Option<String>,
    pub expected: Option<Value>,
}

impl ParsedValidator {
    fn new(operator: &str, expected: Value) -> Self {
        ParsedValidator {
            operator: Some(operator.to_string()),
            expected: Some(expected),
        }
    }

    fn expression_only() -> Self {
        ParsedValidator {
            operator: None,
            expected: None,
        }
    }
}

/// Parses one validator string. Forms read (OpenHTF's `__str__` of its validators, and
/// the `x OP value` form in either order):
///
/// | string | operator, expected |
/// |---|---|
/// | `'x' matches /RE/` | `matches`, `RE` |
/// | `'x' is equal to 'S'`, `'S' == x`, `x == 'S'` | `==`, `S` |
/// | `A <= x <= B` (also with `Marginal:` bounds between) | `range`, `[A, B]` |
/// | `A <= x`, `x >= A` | `>=`, `A` |
/// | `x <= B` | `<=`, `B` |
/// | `x == True` / `x == False` / `x == 3` | `==`, the boolean / number |
/// | `x > A`, `x < B`, `x != V` | that operator, `V` |
pub fn parse(s: &str) -> ParsedValidator {
    let s = s.trim();
    if let Some(re) = s
        .strip_prefix("'x' matches /")
        .and_then(|r| r.strip_suffix('/'))
    {
        return ParsedValidator::new("matches", Value::String(re.to_string()));
    }
    if let Some(text) = s
        .strip_prefix("'x' is equal to '")
        .and_then(|r| r.strip_suffix('\''))
    {
        return ParsedValidator::new("==", Value::String(text.to_string()));
    }
    if s.contains("<=") && !s.contains(">=") {
        if let Some(v) = parse_chain(s) {
            return v;
        }
    }
    parse_comparison(s).unwrap_or_else(ParsedValidator::expression_only)
}

/// `A <= x <= B`, `A <= x`, `x <= B`, with optional `Marginal:M` links (ignored: the
/// marginal bounds stay visible in the expression).
fn parse_chain(s: &str) -> Option<ParsedValidator> {
    let parts: Vec<&str> = s
        .split("<=")
        .map(str::trim)
        .filter(|p| !p.starts_with("Marginal:"))
        .collect();
    match parts.as_slice() {
        [a, "x", b] => Some(ParsedValidator::new(
            "range",
            Value::Array(vec![number(a)?, number(b)?]),
        )),
        [a, "x"] => Some(ParsedValidator::new(">=", number(a)?)),
        ["x", b] => Some(ParsedValidator::new("<=", number(b)?)),
        _ => None,
    }
}

/// `x OP V` or `V OP x` with a single comparison operator.
fn parse_comparison(s: &str) -> Option<ParsedValidator> {
    // Longest operators first, so `>=` is not read as `>`.
    for op in ["==", "!=", ">=", "<=", ">", "<"] {
        let Some((left, right)) = s.split_once(op) else {
            continue;
        };
        let (left, right) = (left.trim(), right.trim());
        if right.contains(['<', '>', '=']) {
            return None;
        }
        if left == "x" || left == "'x'" {
            return Some(ParsedValidator::new(op, operand(right)?));
        }
        if right == "x" || right == "'x'" {
            // `V OP x` reads as `x OP' V` with the comparison mirrored.
            let mirrored = match op {
                ">=" => "<=",
                "<=" => ">=",
                ">" => "<",
                "<" => ">",
                same => same,
            };
            return Some(ParsedValidator::new(mirrored, operand(left)?));
        }
        return None;
    }
    None
}

/// A comparison operand: a number, `True`/`False`, or a quoted string.
fn operand(s: &str) -> Option<Value> {
    match s {
        "True" | "true" => return Some(Value::Bool(true)),
        "False" | "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            if s.len() >= 2 {
                return Some(Value::String(inner.to_string()));
            }
        }
    }
    number(s)
}

/// A finite number as Python prints it (`3`, `3.1`, `1e-05`); integers stay integers.
pub fn number(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    // Rust also parses `inf` / `nan`, which JSON cannot carry: refuse them.
    let f: f64 = s.parse().ok().filter(|f: &f64| f.is_finite())?;
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> (Option<String>, Option<Value>) {
        let v = parse(s);
        (v.operator, v.expected)
    }

    fn op(o: &str, v: Value) -> (Option<String>, Option<Value>) {
        (Some(o.to_string()), Some(v))
    }

    #[test]
    fn openhtf_forms() {
        assert_eq!(p("3.1 <= x <= 3.5"), op("range", json!([3.1, 3.5])));
        assert_eq!(
            p("'x' matches /^1\\.2\\.3$/"),
            op("matches", json!("^1\\.2\\.3$"))
        );
        assert_eq!(p("x == True"), op("==", json!(true)));
        assert_eq!(p("x == False"), op("==", json!(false)));
        assert_eq!(p("x == 3"), op("==", json!(3)));
        assert_eq!(p("1 <= x"), op(">=", json!(1)));
        assert_eq!(p("x <= 5"), op("<=", json!(5)));
        assert_eq!(
            p("0 <= Marginal:1 <= x <= Marginal:9 <= 10"),
            op("range", json!([0, 10]))
        );
        assert_eq!(p("0 <= Marginal:1 <= x"), op(">=", json!(0)));
        assert_eq!(p("x <= Marginal:9 <= 10"), op("<=", json!(10)));
        assert_eq!(p("'x' is equal to 'abc'"), op("==", json!("abc")));
        assert_eq!(
            p("-1e-05 <= x <= 2.5e+20"),
            op("range", json!([-1e-05, 2.5e20]))
        );
    }

    #[test]
    fn comparison_forms() {
        assert_eq!(p("x >= 3.1"), op(">=", json!(3.1)));
        assert_eq!(p("x > 0"), op(">", json!(0)));
        assert_eq!(p("x < 0"), op("<", json!(0)));
        assert_eq!(p("x != 2"), op("!=", json!(2)));
        assert_eq!(p("'1.2.3' == x"), op("==", json!("1.2.3")));
        assert_eq!(p("x == '1.2.3'"), op("==", json!("1.2.3")));
        assert_eq!(p("5 > x"), op("<", json!(5)));
    }

    #[test]
    fn anything_else_is_expression_only() {
        let none = (None, None);
        assert_eq!(p("'x' is within 5% of 10."), none);
        assert_eq!(p("All values pass: 0 <= x <= 1"), none);
        assert_eq!(p("x <= inf"), none);
        assert_eq!(p("nan <= x <= 1"), none);
        assert_eq!(p(""), none);
        assert_eq!(p("y >= 3"), none);
        assert_eq!(p("Decimal('1.5') <= x"), none);
    }
}
