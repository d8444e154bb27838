//! OpenHTF JSON test records (what `openhtf.output.callbacks.json_factory.OutputToJSON`
//! writes, and what the `tofupilot.openhtf.upload` callback uploads for import): parsing,
//! leniently, and the mapping of BEHAVIOR.md §11.4 into a new run.
//!
//! Decisions where the spec is silent:
//! - `NaN` / `Infinity` / `-Infinity` tokens are read as those strings (see
//!   `lenient_json`); a measured value that was such a token is kept as that string.
//! - Numbers that should be numbers but are not (a `NaN` start time) count as absent.
//! - A record outcome other than `PASS`, `FAIL`, `ERROR`, `TIMEOUT`, `ABORTED` (or none)
//!   imports as `ERROR`; a phase outcome other than `PASS`, `FAIL`, `SKIP`, `ERROR` as
//!   `ERROR`; a measurement outcome other than `PASS`, `FAIL` as `UNSET`.
//! - Missing times: the run starts at `start_time_millis`, else at its earliest phase,
//!   else now; it ends at `end_time_millis`, else at its latest phase end, else when it
//!   started; an end before the start is moved to the start (imports never fail on
//!   timing). A phase without a start starts with the run (`start_time_millis`, else
//!   now), one without an end ends when it started; log lines without a time take the
//!   run's start.
//! - A phase that repeats the phase right before it (same name and descriptor, which is
//!   how OpenHTF records `repeat_on_measurement_fail` / `repeat_on_timeout` attempts) gets
//!   the next `retry_count`.
//! - Measurement `units` is the suffix of OpenHTF's unit (`V`, `Hz`, `°C`), else its
//!   name, else null.
//! - A NUL character (`\u0000`), which a Postgres text column cannot hold, is read as
//!   U+FFFD: the record still imports, on every backend alike.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::db::runs::{NewLog, NewMeasurement, NewPhase, NewRun};
use crate::db::{Id, Ts};
use crate::error::ApiError;

use super::{lenient_json, validators};
use crate::rules;

/// An OpenHTF test record, as much of it as becomes a run. Unknown keys are ignored and
/// every key is optional: the mapping decides what is required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Record {
    pub dut_id: Option<Value>,
    pub start_time_millis: Option<Value>,
    pub end_time_millis: Option<Value>,
    pub outcome: Option<String>,
    pub metadata: Map<String, Value>,
    pub phases: Vec<Phase>,
    pub log_records: Vec<LogRecord>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Phase {
    pub name: Option<String>,
    pub descriptor_id: Option<Value>,
    pub outcome: Option<String>,
    pub start_time_millis: Option<Value>,
    pub end_time_millis: Option<Value>,
    /// Keyed by measurement name, in record order.
    #[serde(deserialize_with = "ordered_entries")]
    pub measurements: Vec<(String, Measurement)>,
    pub codeinfo: Option<CodeInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CodeInfo {
    pub docstring: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Measurement {
    pub name: Option<String>,
    pub outcome: Option<String>,
    /// `None` when absent or `null`.
    pub measured_value: Option<Value>,
    pub units: Option<Units>,
    pub validators: Option<Vec<Value>>,
    pub docstring: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Units {
    pub name: Option<String>,
    pub suffix: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogRecord {
    pub level: Option<Value>,
    pub message: Option<String>,
    pub source: Option<String>,
    pub lineno: Option<Value>,
    pub timestamp_millis: Option<Value>,
}

impl Record {
    /// Parses an uploaded record. Anything that is not a JSON object of this shape is a
    /// 400 naming the place that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Record, ApiError> {
        // serde would also read a struct from an array; a record is an object.
        let first = bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(bytes)
            .iter()
            .find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(ApiError::bad_request(
                "The upload is not an OpenHTF JSON test record: expected a JSON object",
            ));
        }
        let bytes = replace_nul_escapes(bytes);
        lenient_json::from_slice::<Record>(&bytes).map_err(|e| {
            let (path, inner) = (e.path, e.inner);
            let mut msg = inner.to_string();
            if let Some(i) = msg.rfind(" at line ") {
                if !inner.is_syntax() && !inner.is_eof() {
                    msg.truncate(i);
                }
            }
            let at = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            ApiError::bad_request(format!(
                "The upload is not an OpenHTF JSON test record{at}: {msg}"
            ))
        })
    }

    /// The serial number (`dut_id`), as text.
    pub fn serial_number(&self) -> Option<String> {
        self.dut_id.as_ref().and_then(text)
    }

    /// A metadata value as text (strings trimmed, numbers printed); `None` when absent,
    /// empty or not a scalar.
    pub fn meta(&self, key: &str) -> Option<String> {
        self.metadata.get(key).and_then(text)
    }

    /// `metadata.procedure_id`: a procedure id or identifier.
    pub fn procedure_ref(&self) -> Option<String> {
        self.meta("procedure_id")
    }

    /// `metadata.sub_units`: `[{"serial_number": …}]` (plain strings accepted too).
    pub fn sub_units(&self) -> Vec<String> {
        let Some(Value::Array(items)) = self.metadata.get("sub_units") else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match item {
                Value::Object(o) => o.get("serial_number").and_then(text),
                other => text(other),
            })
            .collect()
    }

    /// The run outcome (see the module doc for unknown values).
    pub fn run_outcome(&self) -> &'static str {
        run_outcome(self.outcome.as_deref())
    }
}

impl Record {
    /// The run this record describes, for procedure `procedure_id` (resolved by the
    /// caller from `procedure_ref`). 400 naming the record key when the serial number,
    /// part, revision, batch or version is unusable.
    pub fn to_new_run(&self, procedure_id: Id) -> Result<NewRun, ApiError> {
        let serial = self.serial_number().unwrap_or_default();
        let part = self.meta("part_number");
        let revision = self
            .meta("revision")
            .or_else(|| self.meta("revision_number"));
        let batch = self.meta("batch_number");
        let version = self.meta("procedure_version");
        let mut faults = crate::values::Faults::new();
        faults.check("dut_id", rules::serial(&serial));
        if let Some(p) = &part {
            faults.check("metadata.part_number", rules::part(p));
        }
        if let Some(r) = &revision {
            faults.check("metadata.revision", rules::revision(r));
        }
        if let Some(b) = &batch {
            faults.check("metadata.batch_number", rules::batch(b));
        }
        if let Some(v) = &version {
            faults.check("metadata.procedure_version", rules::version(v));
        }
        faults.into_result()?;

        let start = millis_ts(self.start_time_millis.as_ref());
        let phases = self.new_phases(start.unwrap_or_else(Ts::now));
        let started_at = start
            .or_else(|| phases.iter().map(|p| p.started_at).min())
            .unwrap_or_else(Ts::now);
        let ended_at = millis_ts(self.end_time_millis.as_ref())
            .or_else(|| phases.iter().map(|p| p.ended_at).max())
            .unwrap_or(started_at)
            .max(started_at);
        let logs = self
            .log_records
            .iter()
            .map(|l| {
                NewLog::new(
                    log_level(l.level.as_ref()),
                    millis_ts(l.timestamp_millis.as_ref()).unwrap_or(started_at),
                    l.message.as_deref().unwrap_or(""),
                    l.source.as_deref().unwrap_or(""),
                    millis(l.lineno.as_ref()).unwrap_or(0).max(0),
                )
            })
            .collect();

        let mut run = NewRun::new(
            procedure_id,
            serial,
            self.run_outcome(),
            started_at,
            ended_at,
        );
        run.part_number = part;
        run.revision_number = revision;
        run.batch_number = batch;
        run.procedure_version = version;
        run.sub_units = self.sub_units();
        run.phases = phases;
        run.logs = logs;
        Ok(run)
    }

    /// The phases in record order; a phase repeating the one before it (same name and
    /// descriptor) is its next attempt. A phase without a start time starts at
    /// `default_start`.
    fn new_phases(&self, default_start: Ts) -> Vec<NewPhase> {
        let mut out: Vec<NewPhase> = Vec::with_capacity(self.phases.len());
        let mut previous: Option<(String, Option<&Value>)> = None;
        for (i, p) in self.phases.iter().enumerate() {
            let name = p
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("phase {}", i + 1));
            let started_at = millis_ts(p.start_time_millis.as_ref()).unwrap_or(default_start);
            let ended_at = millis_ts(p.end_time_millis.as_ref())
                .unwrap_or(started_at)
                .max(started_at);
            let key = (name.clone(), p.descriptor_id.as_ref());
            let retry_count = match (&previous, out.last()) {
                (Some(prev), Some(last)) if *prev == key => last.retry_count + 1,
                _ => 0,
            };
            previous = Some(key);
            out.push(NewPhase {
                name,
                outcome: phase_outcome(p.outcome.as_deref()).to_string(),
                started_at,
                ended_at,
                retry_count,
                docstring: p
                    .codeinfo
                    .as_ref()
                    .and_then(|c| c.docstring.clone())
                    .filter(|d| !d.trim().is_empty()),
                sequence_path: None,
                measurements: p
                    .measurements
                    .iter()
                    .map(|(key, m)| m.to_new_measurement(key))
                    .collect(),
            });
        }
        out
    }
}

fn millis_ts(v: Option<&Value>) -> Option<Ts> {
    millis(v).and_then(|ms| Ts::from_micros(ms.checked_mul(1000)?))
}

impl Measurement {
    fn to_new_measurement(&self, key: &str) -> NewMeasurement {
        let outcome = measurement_outcome(self.outcome.as_deref());
        let strings = self.validator_strings();
        NewMeasurement {
            name: self
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| key.to_string()),
            outcome: outcome.to_string(),
            measured_value: self.measured_value.clone(),
            units: self.units_text(),
            docstring: self.docstring.clone().filter(|d| !d.trim().is_empty()),
            validators: (!strings.is_empty()).then(|| validators::from_strings(&strings, outcome)),
            aggregations: None,
            data_series: None,
        }
    }
}

/// A scalar JSON value as trimmed, non-empty text.
/// `bytes` with every `\u0000` escape (one whose backslash is not itself escaped)
/// replaced by `\ufffd`, the same length. JSON has no other way to carry NUL.
fn replace_nul_escapes(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NUL: &[u8] = b"\\u0000";
    if !bytes.windows(NUL.len()).any(|w| w == NUL) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + NUL.len() <= out.len() {
        if out[i] == b'\\' {
            if &out[i..i + NUL.len()] == NUL {
                out[i + 2..i + NUL.len()].copy_from_slice(b"fffd");
            }
            // Skip the escaped character, so `\\u0000` stays text.
            i += 2;
        } else {
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

pub fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// Whole milliseconds from a number (integer or float) or a numeric string; `None` for
/// anything else (including the strings `NaN` / `Infinity`).
pub fn millis(v: Option<&Value>) -> Option<i64> {
    let f = match v? {
        Value::Number(n) => n.as_i64().map(|i| i as f64).or_else(|| n.as_f64())?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (f.is_finite() && f.abs() < 1e17).then(|| f.round() as i64)
}

pub fn run_outcome(s: Option<&str>) -> &'static str {
    match s.map(str::trim).map(str::to_ascii_uppercase).as_deref() {
        Some("PASS") => "PASS",
        Some("FAIL") => "FAIL",
        Some("TIMEOUT") => "TIMEOUT",
        Some("ABORTED") => "ABORTED",
        _ => "ERROR",
    }
}

pub fn phase_outcome(s: Option<&str>) -> &'static str {
    match s.map(str::trim).map(str::to_ascii_uppercase).as_deref() {
        Some("PASS") => "PASS",
        Some("FAIL") => "FAIL",
        Some("SKIP") => "SKIP",
        _ => "ERROR",
    }
}

/// `PASS` and `FAIL` as given; `UNSET`, `PARTIALLY_SET` and anything else → `UNSET`.
pub fn measurement_outcome(s: Option<&str>) -> &'static str {
    match s.map(str::trim).map(str::to_ascii_uppercase).as_deref() {
        Some("PASS") => "PASS",
        Some("FAIL") => "FAIL",
        _ => "UNSET",
    }
}

/// A Python logging level (number or name) as a log level of the API: 10 `DEBUG`,
/// 20 `INFO`, 30 `WARNING`, 40 `ERROR`, 50 `CRITICAL`; other numbers take the nearest
/// lower standard level (below 10: `DEBUG`); unknown names `INFO`.
pub fn log_level(v: Option<&Value>) -> &'static str {
    let n = match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(20.0),
        Some(Value::String(s)) => {
            return match s.trim().to_ascii_uppercase().as_str() {
                "DEBUG" | "TRACE" => "DEBUG",
                "WARNING" | "WARN" => "WARNING",
                "ERROR" => "ERROR",
                "CRITICAL" | "FATAL" => "CRITICAL",
                other => match other.parse::<f64>() {
                    Ok(n) => numeric_level(n),
                    Err(_) => "INFO",
                },
            }
        }
        _ => 20.0,
    };
    numeric_level(n)
}

fn numeric_level(n: f64) -> &'static str {
    if n >= 50.0 {
        "CRITICAL"
    } else if n >= 40.0 {
        "ERROR"
    } else if n >= 30.0 {
        "WARNING"
    } else if n >= 20.0 {
        "INFO"
    } else {
        "DEBUG"
    }
}

impl Measurement {
    /// The validator strings (non-strings printed as JSON).
    pub fn validator_strings(&self) -> Vec<String> {
        self.validators
            .iter()
            .flatten()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    /// `units.suffix`, else `units.name`, else none.
    pub fn units_text(&self) -> Option<String> {
        let u = self.units.as_ref()?;
        [&u.suffix, &u.name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// Deserializes a JSON object (or `null`) into its entries in document order.
fn ordered_entries<'de, D, T>(d: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Entries<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
        type Value = Vec<(String, T)>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object keyed by measurement name")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some((k, v)) = map.next_entry::<String, T>()? {
                out.push((k, v));
            }
            Ok(out)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }

    d.deserialize_any(Entries(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &[u8] = include_bytes!("../../tests/fixtures/openhtf/sample.json");

    #[test]
    fn nul_escapes_become_replacement_characters() {
        let rec = Record::parse(br#"{"dut_id": "a\u0000b", "outcome": "PASS\\u0000"}"#).unwrap();
        assert_eq!(rec.serial_number().as_deref(), Some("a\u{FFFD}b"));
        // An escaped backslash followed by `u0000` is text, not NUL.
        assert_eq!(rec.outcome.as_deref(), Some("PASS\\u0000"));
    }

    #[test]
    fn sample_record_parses() {
        let r = Record::parse(SAMPLE).unwrap();
        assert_eq!(r.serial_number().as_deref(), Some("SN-0001"));
        assert_eq!(r.procedure_ref().as_deref(), Some("FVT1"));
        assert_eq!(r.meta("part_number").as_deref(), Some("PN-1"));
        assert_eq!(r.run_outcome(), "PASS");
        assert_eq!(millis(r.start_time_millis.as_ref()), Some(1704164645000));
        let names: Vec<_> = r.phases.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(names, ["trigger_phase", "check_power"]);
        assert!(r.phases[0].measurements.is_empty());
        let m: Vec<_> = r.phases[1]
            .measurements
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(m, ["voltage", "firmware"], "record order is kept");
        let voltage = &r.phases[1].measurements[0].1;
        assert_eq!(voltage.units_text().as_deref(), Some("V"));
        assert_eq!(voltage.measured_value, Some(json!(3.3)));
        assert_eq!(voltage.validator_strings(), ["3.1 <= x <= 3.5"]);
        assert!(r.phases[1].measurements[1].1.units_text().is_none());
        assert_eq!(r.log_records.len(), 14);
        assert_eq!(log_level(r.log_records[6].level.as_ref()), "INFO");
    }

    #[test]
    fn lenient_about_shapes_and_tokens() {
        let r = Record::parse(
            br#"{"dut_id": 1234, "start_time_millis": NaN, "metadata": {"part_number": 42,
                 "sub_units": [{"serial_number": "S1"}, "S2", {"x": 1}]},
                 "phases": [{"name": "p", "measurements": null,
                             "end_time_millis": 5.0}]}"#,
        )
        .unwrap();
        assert_eq!(r.serial_number().as_deref(), Some("1234"));
        assert_eq!(r.meta("part_number").as_deref(), Some("42"));
        assert_eq!(millis(r.start_time_millis.as_ref()), None);
        assert_eq!(millis(r.phases[0].end_time_millis.as_ref()), Some(5));
        assert_eq!(r.sub_units(), ["S1", "S2"]);
        assert!(r.phases[0].measurements.is_empty());
        assert_eq!(r.run_outcome(), "ERROR");
    }

    #[test]
    fn not_a_record_names_the_place() {
        let e = Record::parse(b"[1, 2]").unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("OpenHTF"), "{}", e.message);
        let e = Record::parse(br#"{"phases": [{"outcome": 3}]}"#).unwrap_err();
        assert!(e.message.contains("phases[0].outcome"), "{}", e.message);
        let e = Record::parse(b"{\"dut_id\": ").unwrap_err();
        assert!(e.message.contains("OpenHTF"), "{}", e.message);
    }

    #[test]
    fn outcomes_and_levels() {
        assert_eq!(measurement_outcome(Some("PARTIALLY_SET")), "UNSET");
        assert_eq!(measurement_outcome(Some("FAIL")), "FAIL");
        assert_eq!(measurement_outcome(None), "UNSET");
        assert_eq!(phase_outcome(Some("SKIP")), "SKIP");
        assert_eq!(phase_outcome(Some("TIMEOUT")), "ERROR");
        assert_eq!(run_outcome(Some("ABORTED")), "ABORTED");
        for (n, l) in [
            (10, "DEBUG"),
            (20, "INFO"),
            (30, "WARNING"),
            (40, "ERROR"),
            (50, "CRITICAL"),
            (5, "DEBUG"),
            (25, "INFO"),
            (45, "ERROR"),
            (60, "CRITICAL"),
        ] {
            assert_eq!(log_level(Some(&json!(n))), l, "level {n}");
        }
        assert_eq!(log_level(Some(&json!("warn"))), "WARNING");
        assert_eq!(log_level(None), "INFO");
    }
}
