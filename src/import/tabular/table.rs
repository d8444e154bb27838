//! Reading the CSV file (see the module doc of `tabular`).

use serde_json::{Number, Value};

use super::fault;
use crate::error::ApiError;

/// The parsed file: column names and the non-empty data rows (cells trimmed).
pub struct Table {
    pub columns: Vec<String>,
    pub(super) rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses CSV bytes (see the module doc).
    pub fn parse(bytes: &[u8]) -> Result<Table, ApiError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "The file is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        // NUL cannot be stored in a Postgres text column: read it as U+FFFD.
        let text = text.replace('\0', "\u{FFFD}");
        let text = text.as_str();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(sniff_delimiter(text))
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| ApiError::bad_request(format!("Cannot read the CSV header row: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(ApiError::bad_request(
                "The file has no header row: its first line must name the columns",
            ));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                ApiError::bad_request(format!("Cannot read the CSV file at line {line}: {e}"))
            })?;
            if record.iter().all(str::is_empty) {
                continue;
            }
            rows.push(record.iter().map(str::to_string).collect());
        }
        if rows.is_empty() {
            return Err(ApiError::bad_request(
                "The file has a header row but no data rows",
            ));
        }
        Ok(Table { columns, rows })
    }

    /// The index of `name` (exact, else case-insensitive); 400 at `path` when absent.
    pub(super) fn column(&self, path: &str, name: &str) -> Result<usize, ApiError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .or_else(|| {
                let lower = name.trim().to_lowercase();
                self.columns.iter().position(|c| c.to_lowercase() == lower)
            })
            .ok_or_else(|| {
                fault(
                    path,
                    format!(
                        "Column `{name}` is not in the file (its columns: {})",
                        self.columns.join(", ")
                    ),
                )
            })
    }

    pub(super) fn cell(&self, row: usize, col: usize) -> &str {
        self.rows[row].get(col).map(String::as_str).unwrap_or("")
    }

    /// The one value a run-level column holds (see the module doc); `None` when every
    /// row leaves it empty.
    pub(super) fn run_value(
        &self,
        path: &str,
        col: usize,
    ) -> Result<Option<(usize, String)>, ApiError> {
        let mut found: Option<(usize, &str)> = None;
        for row in 0..self.rows.len() {
            let v = self.cell(row, col);
            if v.is_empty() {
                continue;
            }
            match found {
                None => found = Some((row, v)),
                Some((first, seen)) if seen != v => {
                    return Err(fault(
                        path,
                        format!(
                            "Column `{}` has `{seen}` in row {} and `{v}` in row {}: a tabular file imports as one run, so run fields must hold one value",
                            self.columns[col],
                            first + 1,
                            row + 1
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(found.map(|(row, v)| (row, v.to_string())))
    }
}

/// `,` unless the header line has more `;` or tabs.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let count = |c: char| header.chars().filter(|x| *x == c).count();
    let mut best = (b',', count(','));
    for d in [b';', b'\t'] {
        let n = count(d as char);
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// A cell as a measured value: integer, decimal, boolean or text.
pub fn cell_value(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Some(n) = s
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(Number::from_f64)
    {
        // Only plain decimal notation: `inf`, `nan` and the like stay text.
        if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
            return Value::Number(n);
        }
    }
    match s.to_ascii_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s.to_string()),
    }
}

pub(super) fn number_cell(
    table: &Table,
    path: &str,
    row: usize,
    col: usize,
) -> Result<Option<Number>, ApiError> {
    let s = table.cell(row, col);
    if s.is_empty() {
        return Ok(None);
    }
    match cell_value(s) {
        Value::Number(n) => Ok(Some(n)),
        _ => Err(fault(
            path,
            format!(
                "Column `{}`, row {}: `{s}` is not a number",
                table.columns[col],
                row + 1
            ),
        )),
    }
}
