//! CSV files with a column mapping (`imports.tabular`): one file is one run.
//!
//! The file: UTF-8 (a byte order mark is skipped), a header row naming the columns, then
//! data rows. The delimiter is `,`, or `;` / tab when the header has more of those.
//! Fully empty rows are skipped. Column names are matched exactly, else
//! case-insensitively.
//!
//! The mapping (vendor DTO `ImportTabularMapping`):
//! - `fields`: each run field comes from a `column` or is a fixed `value`. A run field
//!   read from a column takes the column's value; rows may leave it empty or repeat it,
//!   but two different values are a 400 (a file is one run). `serial_number`,
//!   `outcome`, `started_at` and `ended_at` are required. Times are RFC 3339, or
//!   `YYYY-MM-DD HH:MM:SS[.f]` / `YYYY-MM-DDTHH:MM:SS[.f]` taken as UTC. A column
//!   `outcome` goes through `valueMap` (exact key, then case-insensitive), else must
//!   itself be a run outcome (case-insensitive).
//! - `measurements`, by `layout`:
//!   - `none`: no measurements;
//!   - `wide`: each listed column is a measurement, one per row that has a value in it
//!     (`name` defaults to the column name);
//!   - `long`: each row is one measurement (`nameColumn`, `valueColumn`, optional units,
//!     limits, outcome and phase columns); rows without a name are skipped.
//!
//!   Values: integers and decimals become numbers, `true`/`false` booleans, anything else
//!   stays text; an empty value is no value. Limits become `>=` / `<=` validators. The
//!   outcome is the outcome column's (`PASS`, `FAIL`, `UNSET`, case-insensitive) when
//!   there is one, else computed from the limits for a numeric value (`PASS`/`FAIL`;
//!   `UNSET` for a value that is not a number), else `PASS` for a set value and
//!   `UNSET` for none.
//! - `phases` (`nameColumn`, optional `outcomeColumn`, `startedColumn`, `endedColumn`,
//!   `valueMap`): rows are grouped into phases by name, in order of first appearance. A
//!   phase's outcome is the worst its rows give (`ERROR` > `FAIL` > `PASS` > `SKIP`,
//!   mapped through `valueMap`), else `FAIL` when one of its measurements failed, else
//!   `PASS`; its times are the earliest start and latest end its rows give, else the
//!   run's. Measurements go to the phase of their column (`wide` `phase`) or row
//!   (`long` `phaseColumn`, else the row's phase); without any, to one phase named
//!   `Measurements`.
//! - `metadata` / `unitMetadata`: `{key, column | value}`; a column's value (typed like
//!   measurement values) is read like a run field.
//!
//! Errors name the mapping path, the column and the 1-based data row.

mod run;
mod table;

use std::collections::HashMap;
use utoipa::ToSchema;

use serde::Deserialize;
use serde_json::Number;

use crate::error::{ApiError, Issue, PathSegment};

pub use table::{cell_value, Table};

/// Name of the phase measurements go to when nothing names one.
pub const DEFAULT_PHASE: &str = "Measurements";

/// A run field: read from a column, or a fixed value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ImportTabularSource {
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// The outcome: a fixed value, or a column with an optional map of cell values.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ImportTabularOutcome {
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, rename = "valueMap", alias = "value_map")]
    pub value_map: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ImportTabularFields {
    pub serial_number: ImportTabularSource,
    pub outcome: ImportTabularOutcome,
    pub started_at: ImportTabularSource,
    pub ended_at: ImportTabularSource,
    #[serde(default)]
    pub part_number: Option<ImportTabularSource>,
    #[serde(default)]
    pub revision_number: Option<ImportTabularSource>,
    #[serde(default)]
    pub batch_number: Option<ImportTabularSource>,
    #[serde(default)]
    pub operated_by: Option<ImportTabularSource>,
    #[serde(default)]
    pub docstring: Option<ImportTabularSource>,
}

/// A `wide` measurement column.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ImportTabularColumn {
    pub column: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub units: Option<String>,
    #[serde(default, rename = "lowerLimit", alias = "lower_limit")]
    #[schema(value_type = Option<f64>)]
    pub lower_limit: Option<Number>,
    #[serde(default, rename = "upperLimit", alias = "upper_limit")]
    #[schema(value_type = Option<f64>)]
    pub upper_limit: Option<Number>,
    #[serde(default)]
    pub phase: Option<String>,
}

/// `mapping.measurements`: the three layouts in one shape (told apart by `layout`,
/// else by which keys are present).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ImportTabularMeasurements {
    #[serde(default)]
    pub layout: Option<String>,
    #[serde(default)]
    pub columns: Option<Vec<ImportTabularColumn>>,
    #[serde(default, rename = "nameColumn", alias = "name_column")]
    pub name_column: Option<String>,
    #[serde(default, rename = "valueColumn", alias = "value_column")]
    pub value_column: Option<String>,
    #[serde(default, rename = "unitsColumn", alias = "units_column")]
    pub units_column: Option<String>,
    #[serde(default, rename = "lowerColumn", alias = "lower_column")]
    pub lower_column: Option<String>,
    #[serde(default, rename = "upperColumn", alias = "upper_column")]
    pub upper_column: Option<String>,
    #[serde(default, rename = "outcomeColumn", alias = "outcome_column")]
    pub outcome_column: Option<String>,
    #[serde(default, rename = "phaseColumn", alias = "phase_column")]
    pub phase_column: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ImportTabularPhases {
    #[serde(rename = "nameColumn", alias = "name_column")]
    pub name_column: String,
    #[serde(default, rename = "outcomeColumn", alias = "outcome_column")]
    pub outcome_column: Option<String>,
    #[serde(default, rename = "startedColumn", alias = "started_column")]
    pub started_column: Option<String>,
    #[serde(default, rename = "endedColumn", alias = "ended_column")]
    pub ended_column: Option<String>,
    #[serde(default, rename = "valueMap", alias = "value_map")]
    pub value_map: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ImportTabularMetadata {
    pub key: String,
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ImportTabularMapping {
    pub fields: ImportTabularFields,
    #[serde(default)]
    pub measurements: Option<ImportTabularMeasurements>,
    #[serde(default)]
    pub phases: Option<ImportTabularPhases>,
    #[serde(default)]
    pub metadata: Option<Vec<ImportTabularMetadata>>,
    #[serde(default, rename = "unitMetadata", alias = "unit_metadata")]
    pub unit_metadata: Option<Vec<ImportTabularMetadata>>,
}

/// A 400 with one issue at `path` (e.g. `mapping.fields.outcome.column`).
fn fault(path: &str, message: impl Into<String>) -> ApiError {
    let path = path
        .split('.')
        .map(|seg| match seg.parse::<usize>() {
            Ok(i) => PathSegment::Index(i),
            Err(_) => PathSegment::Key(seg.to_string()),
        })
        .collect();
    ApiError::validation(vec![Issue {
        message: message.into(),
        path,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Id;
    use serde_json::{json, Value};

    fn mapping(v: Value) -> ImportTabularMapping {
        serde_json::from_value(v).unwrap()
    }

    fn base_fields() -> Value {
        json!({
            "serial_number": {"column": "serial"},
            "outcome": {"column": "result", "valueMap": {"ok": "PASS", "nok": "FAIL"}},
            "started_at": {"column": "start"},
            "ended_at": {"value": "2026-01-02T03:10:00Z"},
            "part_number": {"value": "PN-1"},
        })
    }

    const WIDE: &str = "serial,result,start,v1,temp,step\n\
        SN-1,ok,2026-01-02T03:04:05Z,3.3,25,power\n\
        SN-1,,,3.4,,thermal\n";

    #[test]
    fn wide_layout_with_phases() {
        let t = Table::parse(WIDE.as_bytes()).unwrap();
        let m = mapping(json!({
            "fields": base_fields(),
            "measurements": {"layout": "wide", "columns": [
                {"column": "v1", "name": "voltage", "units": "V", "lowerLimit": 3.0, "upperLimit": 3.35},
                {"column": "TEMP"}
            ]},
            "phases": {"nameColumn": "step"},
            "metadata": [{"key": "fixture", "value": "F1"}, {"key": "start", "column": "start"}]
        }));
        let run = m.to_new_run(&t, Id::NIL).unwrap();
        assert_eq!(run.serial_number, "SN-1");
        assert_eq!(run.outcome, "PASS");
        assert_eq!(run.part_number.as_deref(), Some("PN-1"));
        assert_eq!(run.phases.len(), 2);
        let power = &run.phases[0];
        assert_eq!(power.name, "power");
        assert_eq!(power.measurements.len(), 2);
        assert_eq!(power.measurements[0].name, "voltage");
        assert_eq!(power.measurements[0].outcome, "PASS");
        assert_eq!(power.measurements[0].validators.as_ref().unwrap().len(), 2);
        assert_eq!(power.measurements[1].name, "temp");
        assert_eq!(power.measurements[1].measured_value, Some(json!(25)));
        let thermal = &run.phases[1];
        assert_eq!(thermal.outcome, "FAIL", "3.4 is above the upper limit");
        assert_eq!(thermal.measurements.len(), 1);
        let md = run.metadata.unwrap();
        assert_eq!(md["fixture"], json!("F1"));
        assert_eq!(md["start"], json!("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn long_layout() {
        let csv = "serial;result;start;name;value;unit;low;high;outcome\n\
            SN-2;FAIL;2026-01-02 03:04:05;voltage;3.3;V;3;3.6;\n\
            SN-2;FAIL;2026-01-02 03:04:05;label;ABC;;;;pass\n\
            SN-2;FAIL;2026-01-02 03:04:05;;;;;;\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let m = mapping(json!({
            "fields": base_fields(),
            "measurements": {"layout": "long", "nameColumn": "name", "valueColumn": "value",
                "unitsColumn": "unit", "lowerColumn": "low", "upperColumn": "high",
                "outcomeColumn": "outcome"}
        }));
        let run = m.to_new_run(&t, Id::NIL).unwrap();
        assert_eq!(run.outcome, "FAIL");
        assert_eq!(run.phases.len(), 1);
        assert_eq!(run.phases[0].name, DEFAULT_PHASE);
        let ms = &run.phases[0].measurements;
        assert_eq!(ms.len(), 2);
        assert_eq!(
            (ms[0].outcome.as_str(), ms[0].units.as_deref()),
            ("PASS", Some("V"))
        );
        assert_eq!(ms[1].measured_value, Some(json!("ABC")));
        assert_eq!(ms[1].outcome, "PASS");
        assert_eq!(run.started_at.to_string(), "2026-01-02T03:04:05.000000Z");
    }

    #[test]
    fn none_layout_makes_no_measurements() {
        let t = Table::parse(WIDE.as_bytes()).unwrap();
        let m = mapping(json!({"fields": base_fields(), "measurements": {"layout": "none"}}));
        let run = m.to_new_run(&t, Id::NIL).unwrap();
        assert!(run.phases.is_empty());
    }

    #[test]
    fn errors_name_column_and_row() {
        let t = Table::parse(WIDE.as_bytes()).unwrap();
        let mut fields = base_fields();
        fields["serial_number"] = json!({"column": "sn"});
        let e = mapping(json!({"fields": fields, "measurements": {"layout": "none"}}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(e.issues[0].message.contains("`sn`"), "{:?}", e.issues);
        assert!(
            e.issues[0].message.contains("serial, result"),
            "{:?}",
            e.issues
        );

        let csv = "serial,result,start\nSN-1,maybe,2026-01-02T03:04:05Z\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields()}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(e.issues[0].message.contains("maybe"), "{:?}", e.issues);
        assert!(e.issues[0].message.contains("row 1"), "{:?}", e.issues);

        let csv = "serial,result,start,low\nSN-1,ok,yesterday,1\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields()}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(e.issues[0].message.contains("yesterday"), "{:?}", e.issues);

        let csv = "serial,result,start,name,value,low\nSN-1,ok,2026-01-02T03:04:05Z,v,1,abc\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields(), "measurements": {
            "layout": "long", "nameColumn": "name", "valueColumn": "value", "lowerColumn": "low"}}))
        .to_new_run(&t, Id::NIL)
        .unwrap_err();
        assert!(
            e.issues[0].message.contains("Column `low`, row 1"),
            "{:?}",
            e.issues
        );

        let csv = "serial,result,start\nSN-1,ok,2026-01-02T03:04:05Z\nSN-2,ok,\n";
        let t = Table::parse(csv.as_bytes()).unwrap();
        let e = mapping(json!({"fields": base_fields()}))
            .to_new_run(&t, Id::NIL)
            .unwrap_err();
        assert!(
            e.issues[0].message.contains("row 1") && e.issues[0].message.contains("row 2"),
            "{:?}",
            e.issues
        );
    }

    #[test]
    fn file_errors() {
        assert!(Table::parse(b"a,b\n").is_err(), "no data rows");
        assert!(Table::parse(b"\xff\xfe").is_err(), "not UTF-8");
        let t = Table::parse(b"\xEF\xBB\xBFa\tb\n1\t2\n").unwrap();
        assert_eq!(t.columns, ["a", "b"]);
    }

    #[test]
    fn cell_values() {
        assert_eq!(cell_value("3"), json!(3));
        assert_eq!(cell_value("-3.5e2"), json!(-350.0));
        assert_eq!(cell_value("TRUE"), json!(true));
        assert_eq!(cell_value("nan"), json!("nan"));
        assert_eq!(cell_value("inf"), json!("inf"));
        assert_eq!(cell_value("1.2.3"), json!("1.2.3"));
    }
}
