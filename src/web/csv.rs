//! CSV downloads of the tables and charts on the pages.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// A CSV download named `filename` from a header row and records.
pub fn download(filename: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header_row);
    for r in rows {
        let _ = w.write_record(r.iter().map(|c| neutralize(c)));
    }
    let bytes = w.into_inner().unwrap_or_default();
    let mut resp = Response::new(axum::body::Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Text that a spreadsheet would run as a formula (`=…`, `+…`, `-…`, `@…`) gets a
/// leading `'`; numbers (`-1.5`) are left alone.
fn neutralize(s: &str) -> String {
    let risky = s.starts_with(['=', '+', '@', '\t', '\r'])
        || (s.starts_with('-') && s.parse::<f64>().is_err());
    if risky {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// An optional number as a CSV cell (empty when absent).
pub fn opt(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_are_neutralized() {
        assert_eq!(super::neutralize("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(super::neutralize("-1.5"), "-1.5");
        assert_eq!(super::neutralize("-x"), "'-x");
        assert_eq!(super::neutralize("ok"), "ok");
    }
}
