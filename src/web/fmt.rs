//! How values read on the pages: times, durations, measured values, limits.

use serde_json::Value;

use crate::db::runs::stored::display;
use crate::db::Ts;

/// `2026-05-04 13:02:07 UTC`.
pub fn time(t: Ts) -> String {
    t.0.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `13:02:07.250`, for log lines within one run.
pub fn clock(t: Ts) -> String {
    t.0.format("%H:%M:%S%.3f").to_string()
}

/// `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 04 min`.
pub fn duration(us: i64) -> String {
    let us = us.max(0);
    if us < 1_000_000 {
        return format!("{} ms", us / 1000);
    }
    let s = us as f64 / 1e6;
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let total = us / 1_000_000;
    if total < 3600 {
        return format!("{} min {:02} s", total / 60, total % 60);
    }
    format!("{} h {:02} min", total / 3600, (total % 3600) / 60)
}

/// A measured value as text: numbers and strings as they are, other JSON compact.
pub fn value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(rows)) if rows.iter().all(Value::is_array) && !rows.is_empty() => {
            format!("{} points", rows.len())
        }
        Some(other) => display(other),
    }
}

/// The validators of a measurement as their expressions: `3.0 <= x <= 3.6`.
pub fn limits(validators: Option<&Value>) -> Vec<(String, String)> {
    match validators {
        Some(Value::Array(vs)) => vs
            .iter()
            .map(|v| {
                let expr = v
                    .get("expression")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let outcome = v
                    .get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or("UNSET")
                    .to_string();
                (expr, outcome)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A ratio as a percentage with one decimal, or `—`.
pub fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// A number with up to 4 significant decimals, or `—`.
pub fn num(x: Option<f64>) -> String {
    match x {
        None => "—".to_string(),
        Some(x) if !x.is_finite() => "—".to_string(),
        Some(x) if x != 0.0 && (x.abs() >= 1e6 || x.abs() < 1e-3) => format!("{x:.3e}"),
        Some(x) => {
            let s = format!("{x:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "0".to_string()
            } else {
                s.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850_000), "850 ms");
        assert_eq!(duration(12_400_000), "12.4 s");
        assert_eq!(duration(185_000_000), "3 min 05 s");
        assert_eq!(duration(7_440_000_000), "2 h 04 min");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(Some(3.30)), "3.3");
        assert_eq!(num(Some(2.0)), "2");
        assert_eq!(num(Some(1234567.0)), "1.235e6");
        assert_eq!(num(None), "—");
        assert_eq!(percent(Some(0.9876)), "98.8%");
    }
}
