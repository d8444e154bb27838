//! WATS Standard JSON Format (WSJF) test reports, importer `WATS`: one report, one run
//! (IMPORTERS.md §3). The status, result and step mappings here are shared with WSXF.
//!
//! Decisions where the spec is silent:
//! - The file's operator (`uut.user`) is kept as run metadata `operator`: a run's
//!   `operated_by` must be a member of the organization, which a file cannot promise.
//! - Files of `attachment` steps become attachments of the run (`is_report: false`);
//!   `binaryData` is ignored.
//! - A result code other than the known letters and words leaves the run outcome to be
//!   derived from the steps.

use serde_json::{Map, Value};

use crate::db::runs::{NewDataSeries, NewMeasurement};

use super::lenient_json;
use super::resultmap::{
    self, build_run, comparison, finite_json, label, measurement, seconds, set_numeric, timestamp,
    EmbeddedFile, FormatError, Header, Meta, ParsedFile, ParsedUnit, Step,
};

const FORMAT: &str = "WATS WSJF";

/// Run outcome of a WATS result code or word; `None` when unknown.
pub fn run_result(s: Option<&str>) -> Option<&'static str> {
    match s?.trim().to_ascii_lowercase().as_str() {
        "p" | "passed" | "pass" => Some("PASS"),
        "f" | "failed" | "fail" => Some("FAIL"),
        "e" | "error" | "errored" => Some("ERROR"),
        "t" | "terminated" | "aborted" => Some("ABORTED"),
        _ => None,
    }
}

/// Phase outcome of a WATS step status (letters or words).
pub fn step_status(s: Option<&str>) -> &'static str {
    match s.unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "p" | "passed" | "pass" | "d" | "done" => "PASS",
        "f" | "failed" | "fail" => "FAIL",
        "s" | "skipped" | "skip" => "SKIP",
        _ => "ERROR",
    }
}

/// Measurement outcome of a WATS measurement status.
pub fn measurement_status(s: Option<&str>) -> &'static str {
    match s.unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "p" | "passed" | "pass" => "PASS",
        "f" | "failed" | "fail" => "FAIL",
        _ => "UNSET",
    }
}

/// `<text> (code N)` from an error code and message, when either is set (code 0 with no
/// message is no error).
pub fn error_text(code: Option<String>, message: Option<String>) -> Option<String> {
    let code = code.filter(|c| !c.trim().is_empty() && c.trim() != "0");
    let message = message.filter(|m| !m.trim().is_empty());
    match (message, code) {
        (None, None) => None,
        (Some(m), None) => Some(m.trim().to_string()),
        (None, Some(c)) => Some(format!("error (code {})", c.trim())),
        (Some(m), Some(c)) => Some(format!("{} (code {})", m.trim(), c.trim())),
    }
}

/// Numbers of a `xdata`/`ydata` list: semicolon (or comma) separated; non-finite
/// entries are left out.
pub fn series(text: &str) -> Vec<serde_json::Number> {
    text.split([';', ','])
        .filter_map(|t| match resultmap::number(t)? {
            resultmap::Num::Finite(Value::Number(n)) => Some(n),
            _ => None,
        })
        .collect()
}

/// A chart as one multi-dimensional measurement: the x axis (given, else 0..n−1), then
/// one y axis per series.
pub struct Chart<'a> {
    pub label: String,
    pub x_unit: Option<String>,
    pub y_unit: Option<String>,
    pub x_label: Option<String>,
    /// (name, xdata, ydata)
    pub series: Vec<(Option<String>, Option<&'a str>, Option<&'a str>)>,
}

impl Chart<'_> {
    pub fn to_measurement(&self, outcome: &str) -> NewMeasurement {
        let mut m = measurement(&self.label, outcome);
        let ys: Vec<(Option<String>, Vec<serde_json::Number>)> = self
            .series
            .iter()
            .map(|(n, _, y)| (n.clone(), y.map(series).unwrap_or_default()))
            .collect();
        let n = ys.iter().map(|(_, y)| y.len()).max().unwrap_or(0);
        let x = match self.series.first().and_then(|(_, x, _)| *x).map(series) {
            Some(x) if !x.is_empty() => x,
            _ => (0..n as u64).map(serde_json::Number::from).collect(),
        };
        let mut axes = vec![NewDataSeries {
            data: x,
            units: self.x_unit.clone(),
            name: self.x_label.clone().or_else(|| Some("x".into())),
            description: None,
            validators: None,
            aggregations: None,
        }];
        for (name, data) in ys {
            axes.push(NewDataSeries {
                data,
                units: self.y_unit.clone(),
                name,
                description: None,
                validators: None,
                aggregations: None,
            });
        }
        m.data_series = Some(axes);
        m
    }
}

/// Parses a WSJF report into its run.
pub fn parse(bytes: &[u8]) -> Result<ParsedFile, FormatError> {
    let first = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .iter()
        .find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(FormatError::not_format(
            FORMAT,
            match first {
                Some(b'<') => {
                    "it is XML, not JSON; an XML WATS report imports with importer WSXF".to_string()
                }
                _ => "expected a JSON object".to_string(),
            },
        ));
    }
    let doc: Map<String, Value> = lenient_json::from_slice(bytes).map_err(|e| {
        let at = if e.path.is_empty() || e.path == "." {
            String::new()
        } else {
            format!(" at `{}`", e.path)
        };
        FormatError::invalid(FORMAT, format!("{}{at}", e.inner))
    })?;
    detect(&doc)?;
    let mut file = ParsedFile::default();
    let report_type = s(doc.get("type"));
    if report_type.is_some_and(|t| t.eq_ignore_ascii_case("R") || t.eq_ignore_ascii_case("UUR")) {
        return Err(FormatError(
            "WSJF repair (UUR) reports are not imported".into(),
        ));
    }
    let serial = s(doc.get("sn")).or_else(|| s(doc.get("serialNumber")));
    let label = label("Report", 1, serial.as_deref());
    let run = map_report(&doc, &mut file.warnings);
    file.units.push(ParsedUnit { label, run });
    Ok(file)
}

fn detect(doc: &Map<String, Value>) -> Result<(), FormatError> {
    let has = |k: &str| doc.contains_key(k);
    if ["sn", "pn", "result", "start", "serialNumber", "partNumber"]
        .iter()
        .any(|k| has(k))
        || (doc.get("root").and_then(|r| r.get("steps")).is_some() && has("processName"))
    {
        return Ok(());
    }
    if has("phases") && has("start_time_millis") {
        return Err(FormatError::not_format(
            FORMAT,
            "it looks like OPENHTF; import it with importer OPENHTF",
        ));
    }
    Err(FormatError::not_format(
        FORMAT,
        "none of `sn`, `pn`, `result`, `start` or a `root.steps` tree with `processName` is present",
    ))
}

/// Trimmed non-empty text of a JSON scalar.
pub fn s(v: Option<&Value>) -> Option<String> {
    let t = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!t.is_empty()).then_some(t)
}

fn map_report(
    doc: &Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<resultmap::ImportRun, String> {
    let get = |k: &str| doc.get(k);
    let uut = doc.get("uut").and_then(Value::as_object);
    let u = |k: &str| uut.and_then(|o| o.get(k));
    let root = doc.get("root").and_then(Value::as_object);
    let seq_call = root
        .and_then(|r| r.get("seqCall"))
        .and_then(Value::as_object);

    let mut meta = Meta::default();
    meta.put_opt("station", s(get("machineName")).as_deref());
    meta.put_opt("location", s(get("location")).as_deref());
    meta.put_opt("purpose", s(get("purpose")).as_deref());
    meta.put_opt("process_code", s(get("processCode")).as_deref());
    meta.put_opt("fixture_id", s(u("fixtureId")).as_deref());
    meta.put_opt("test_socket", s(u("testSocketIndex")).as_deref());
    meta.put_opt(
        "product_name",
        s(get("productName"))
            .or_else(|| s(u("productName")))
            .as_deref(),
    );
    meta.put_opt("wats_report_id", s(get("id")).as_deref());
    for info in get("miscInfos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = s(info.get("description")).or_else(|| s(info.get("name")));
        let value = s(info.get("text"))
            .map(Value::String)
            .or_else(|| finite_json(info.get("numeric")))
            .or_else(|| s(info.get("value")).map(Value::String));
        if let (Some(k), Some(v)) = (key, value) {
            meta.put(&k, v);
        }
    }

    let mut steps = Vec::new();
    if let Some(root) = root {
        let mut path = Vec::new();
        walk(root, &mut path, &mut steps, warnings, 0, true);
    }
    let header = Header {
        serial: s(get("sn")).or_else(|| s(get("serialNumber"))),
        part: s(get("pn")).or_else(|| s(get("partNumber"))),
        revision: s(get("rev")).or_else(|| s(get("partRevision"))),
        batch: s(u("batchSN")),
        procedure: s(get("processName"))
            .or_else(|| root.and_then(|r| s(r.get("name"))))
            .or_else(|| seq_call.and_then(|c| s(c.get("name")))),
        version: seq_call.and_then(|c| s(c.get("version"))),
        outcome: run_result(s(get("result")).as_deref()),
        started_at: s(get("startUTC"))
            .and_then(|t| timestamp(&t))
            .or_else(|| s(get("start")).and_then(|t| timestamp(&t))),
        ended_at: None,
        duration: seconds(u("execTime")),
        operator: s(u("user")),
        docstring: s(u("comment")),
        metadata: meta,
        sub_units: get("subUnits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|su| {
                let sn = s(su.get("sn")).or_else(|| s(su.get("serialNumber")));
                if sn.is_none() {
                    warnings.push(format!(
                        "Sub-unit {} without a serial number not linked",
                        s(su.get("pn")).unwrap_or_default()
                    ));
                }
                sn
            })
            .collect(),
        errors: error_text(s(u("errorCode")), s(u("errorMessage")))
            .into_iter()
            .collect(),
    };
    build_run(header, steps, "WATS")
}

/// Walks a step: sequence calls recurse (the root's own name is not part of the path),
/// other steps become `Step`s.
fn walk(
    step: &Map<String, Value>,
    path: &mut Vec<String>,
    out: &mut Vec<Step>,
    warnings: &mut Vec<String>,
    depth: usize,
    is_root: bool,
) {
    let name = s(step.get("name")).unwrap_or_default();
    let kind = s(step.get("stepType")).unwrap_or_default();
    let children = step.get("steps").and_then(Value::as_array);
    if children.is_some() || kind.eq_ignore_ascii_case("SequenceCall") || is_root {
        if depth > 100 {
            return;
        }
        if !is_root {
            path.push(name);
        }
        for child in children.into_iter().flatten().filter_map(Value::as_object) {
            walk(child, path, out, warnings, depth + 1, false);
        }
        if !is_root {
            path.pop();
        }
        return;
    }
    let outcome = step_status(s(step.get("status")).as_deref());
    let mut st = Step {
        name: name.clone(),
        outcome,
        start: s(step.get("start")).and_then(|t| timestamp(&t)),
        duration: seconds(step.get("totTime")),
        docstring: s(step.get("reportText")),
        path: path.clone(),
        errors: error_text(s(step.get("errorCode")), s(step.get("errorMessage")))
            .into_iter()
            .collect(),
        ..Step::default()
    };
    let list = |k: &str| -> Vec<&Map<String, Value>> {
        match step.get(k) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
            Some(Value::Object(o)) => vec![o],
            _ => Vec::new(),
        }
    };
    let mut numeric = list("numericMeas");
    numeric.extend(list("measurement"));
    for m in numeric {
        let mo = measurement_status(
            s(m.get("status"))
                .as_deref()
                .or(Some(outcome_letter(outcome))),
        );
        let mut nm = measurement(&s(m.get("name")).unwrap_or_else(|| name.clone()), mo);
        match m.get("value") {
            Some(Value::Number(n)) => nm.measured_value = Some(Value::Number(n.clone())),
            Some(Value::String(t)) => set_numeric(&mut nm, Some(t)),
            _ => {}
        }
        nm.units = s(m.get("unit")).or_else(|| s(m.get("units")));
        nm.validators = comparison(
            s(m.get("compOp")).as_deref(),
            finite_json(m.get("lowLimit")),
            finite_json(m.get("highLimit")),
            mo,
        );
        st.measurements.push(nm);
    }
    for m in list("booleanMeas") {
        let mo = measurement_status(s(m.get("status")).as_deref());
        let mut bm = measurement(&s(m.get("name")).unwrap_or_else(|| name.clone()), mo);
        bm.measured_value = match mo {
            "PASS" => Some(Value::Bool(true)),
            "FAIL" => Some(Value::Bool(false)),
            _ => None,
        };
        bm.validators = comparison(Some("EQ"), Some(Value::Bool(true)), None, mo);
        st.measurements.push(bm);
    }
    for m in list("stringMeas") {
        let mo = measurement_status(s(m.get("status")).as_deref());
        let mut sm = measurement(&s(m.get("name")).unwrap_or_else(|| name.clone()), mo);
        sm.measured_value = m.get("value").and_then(|v| match v {
            Value::String(t) => Some(Value::String(t.clone())),
            Value::Number(_) | Value::Bool(_) => Some(Value::String(v.to_string())),
            _ => None,
        });
        sm.validators = comparison(
            s(m.get("compOp")).as_deref(),
            m.get("limit").and_then(|v| match v {
                Value::String(t) => Some(Value::String(t.clone())),
                _ => None,
            }),
            None,
            mo,
        );
        st.measurements.push(sm);
    }
    if let Some(c) = step.get("chart").and_then(Value::as_object) {
        let chart = Chart {
            label: s(c.get("label")).unwrap_or_else(|| name.clone()),
            x_unit: s(c.get("xUnit")),
            y_unit: s(c.get("yUnit")),
            x_label: s(c.get("xLabel")),
            series: c
                .get("series")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|se| {
                    (
                        s(se.get("name")),
                        se.get("xdata").and_then(Value::as_str),
                        se.get("ydata").and_then(Value::as_str),
                    )
                })
                .collect(),
        };
        st.measurements
            .push(chart.to_measurement(chart_outcome(outcome)));
    }
    if let Some(a) = step.get("attachment").and_then(Value::as_object) {
        match EmbeddedFile::decode(
            s(a.get("name")),
            s(a.get("contentType")),
            a.get("data").and_then(Value::as_str).unwrap_or(""),
            &name,
        ) {
            Ok(f) => st.files.push(f),
            Err(w) => warnings.push(w),
        }
    }
    if let Some(code) = step
        .get("callExe")
        .and_then(|c| c.get("exitCode"))
        .and_then(|v| finite_json(Some(v)))
    {
        let mut m = measurement("exit_code", "UNSET");
        m.measured_value = Some(code);
        st.measurements.push(m);
    }
    if let Some(r) = step.get("messagePopup").and_then(|c| s(c.get("response"))) {
        let mut m = measurement("response", "UNSET");
        m.measured_value = Some(Value::String(r));
        st.measurements.push(m);
    }
    out.push(st);
}

/// The status letter of a phase outcome, for measurements without a status of their own.
fn outcome_letter(outcome: &str) -> &'static str {
    match outcome {
        "PASS" => "P",
        "FAIL" => "F",
        _ => "",
    }
}

/// A chart's outcome: the step's, as a measurement outcome.
pub fn chart_outcome(phase: &str) -> &'static str {
    match phase {
        "PASS" => "PASS",
        "FAIL" => "FAIL",
        _ => "UNSET",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_and_errors() {
        let e = parse(b"[1]").unwrap_err();
        assert!(e.0.starts_with("Not a WATS WSJF file"), "{e}");
        let e = parse(br#"{"phases": [], "start_time_millis": 1}"#).unwrap_err();
        assert!(e.0.contains("OPENHTF"), "{e}");
        let e = parse(b"{\"sn\": \"A\",\n \"pn\": ").unwrap_err();
        assert!(
            e.0.starts_with("Invalid WATS WSJF file") && e.0.contains("line 2"),
            "{e}"
        );
        let e = parse(br#"{"type": "R", "sn": "A"}"#).unwrap_err();
        assert!(e.0.contains("repair"), "{e}");
    }

    #[test]
    fn minimal_report() {
        let f = parse(br#"{"sn": "A1", "pn": "P", "result": "F", "start": "2024-01-01T00:00:00Z",
            "root": {"stepType": "SequenceCall", "steps": [
              {"name": "s", "status": "F", "totTime": 2,
               "numericMeas": [{"name": "v", "value": 5, "status": "F", "compOp": "LE", "lowLimit": 3}]}]}}"#)
        .unwrap();
        let run = f.units[0].run.as_ref().unwrap();
        assert_eq!(run.run.outcome, "FAIL");
        assert_eq!(run.procedure, "WATS");
        let p = &run.run.phases[0];
        assert_eq!(p.outcome, "FAIL");
        assert_eq!(p.ended_at.micros() - p.started_at.micros(), 2_000_000);
        assert_eq!(
            p.measurements[0].validators.as_ref().unwrap()[0]
                .operator
                .as_deref(),
            Some("<=")
        );
    }
}
