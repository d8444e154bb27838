//! NI TestStand XML reports (the `Reports`/`Report` documents of TestStand's XML report
//! generator, a tree of `Prop` elements), importer `TESTSTAND`: one run per UUT
//! `Report` (IMPORTERS.md §6).
//!
//! Decisions where the spec is silent:
//! - `Type="Batch"` reports (batch summaries) are skipped without a warning; a UUT
//!   report without `UUTResult` (an on-the-fly report still being written) is skipped
//!   with one.
//! - The run outcome is `UUTResult`; when that word is unknown, the root result's
//!   `Status`.
//! - A vendor step type whose result props have the `NumericLimitTest` shape
//!   (`Numeric` and `Limits`) imports as a numeric test.

use serde_json::Value;

use crate::db::runs::NewMeasurement;

use super::resultmap::{
    build_run, comparison, finite, label, measurement, plus_seconds, set_numeric, FormatError,
    Header, ImportRun, Meta, ParsedFile, ParsedUnit, Step,
};
use super::xml::{self, Element};

const FORMAT: &str = "TESTSTAND";

/// Parses a TestStand XML document into one unit per UUT report.
pub fn parse(bytes: &[u8]) -> Result<ParsedFile, FormatError> {
    if let Some(reason) = xml::not_xml(bytes) {
        return Err(FormatError::not_format(FORMAT, reason));
    }
    let root = xml::parse(bytes).map_err(|e| FormatError::invalid(FORMAT, e))?;
    let reports = detect(&root)?;
    let mut file = ParsedFile::default();
    for (i, report) in reports.into_iter().enumerate() {
        let serial = value_at(report, &["UUT", "SerialNumber"]);
        let lbl = label("Report", i + 1, serial.as_deref());
        let kind = report.attr_ci("Type").unwrap_or("UUT");
        if kind.eq_ignore_ascii_case("Batch") {
            continue;
        }
        if report.attr("UUTResult").is_none() {
            file.warnings.push(format!(
                "{lbl} skipped: it has no UUTResult (a report still being written)"
            ));
            continue;
        }
        file.units.push(ParsedUnit {
            label: lbl,
            run: map_report(report),
        });
    }
    if file.units.is_empty() {
        return Err(FormatError::no_result());
    }
    Ok(file)
}

fn detect(root: &Element) -> Result<Vec<&Element>, FormatError> {
    let has_props = |r: &Element| r.children_named("Prop").next().is_some();
    match (root.name.as_str(), root.ns.as_deref()) {
        ("Reports", None) if root.children_named("Report").any(has_props) => {
            Ok(root.children_named("Report").collect())
        }
        ("Report", None) if has_props(root) => Ok(vec![root]),
        ("Reports" | "Report", Some(ns)) if ns.contains("wats.virinco.com") => Err(
            FormatError::not_format(FORMAT, "it looks like WSXF; import it with importer WSXF"),
        ),
        ("TestResults" | "TestResultsCollection", Some(_)) => Err(FormatError::not_format(
            FORMAT,
            "it looks like ATML; import it with importer ATML",
        )),
        ("Reports", None) => Err(FormatError::not_format(
            FORMAT,
            "no `Report` element holding `Prop` elements",
        )),
        (name, _) => Err(FormatError::not_format(
            FORMAT,
            format!("root element <{name}> is not a TestStand `Reports` element"),
        )),
    }
}

/// The child `Prop` named `name`.
fn prop<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children_named("Prop")
        .find(|p| p.attr("Name") == Some(name))
}

fn prop_at<'a>(el: &'a Element, path: &[&str]) -> Option<&'a Element> {
    path.iter().try_fold(el, |e, n| prop(e, n))
}

/// The scalar `Value` of a `Prop`, trimmed, `None` when empty.
fn value(p: &Element) -> Option<String> {
    p.child("Value").and_then(Element::text).map(str::to_string)
}

fn value_at(el: &Element, path: &[&str]) -> Option<String> {
    prop_at(el, path).and_then(value)
}

fn number_at(el: &Element, path: &[&str]) -> Option<f64> {
    finite(value_at(el, path).as_deref()).and_then(|v| v.as_f64())
}

/// The result (`TEResult`) element inside a `Prop` or an array `Value`.
fn te_result(el: &Element) -> Option<&Element> {
    el.children_named("Prop")
        .find(|p| p.attr("Type") == Some("TEResult") || p.attr("TypeName") == Some("TEResult"))
}

fn phase_outcome(status: Option<&str>) -> &'static str {
    match status.unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "passed" | "done" => "PASS",
        "failed" => "FAIL",
        "skipped" => "SKIP",
        _ => "ERROR",
    }
}

fn measurement_outcome(status: Option<&str>) -> &'static str {
    match status.unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "passed" => "PASS",
        "failed" => "FAIL",
        _ => "UNSET",
    }
}

fn run_outcome(word: &str) -> Option<&'static str> {
    match word.trim().to_ascii_lowercase().as_str() {
        "passed" | "done" => Some("PASS"),
        "failed" => Some("FAIL"),
        "error" => Some("ERROR"),
        "terminated" | "aborted" => Some("ABORTED"),
        _ => None,
    }
}

/// `Error/Msg` (with `Error/Code`) when `Error/Occurred` is true or a message is set.
fn error_message(result: &Element) -> Option<String> {
    let err = prop(result, "Error")?;
    let occurred = value_at(err, &["Occurred"]).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let msg = value_at(err, &["Msg"]);
    let code = value_at(err, &["Code"]).filter(|c| c != "0");
    match (msg, occurred) {
        (None, false) => None,
        (msg, _) => Some(match code {
            Some(c) => format!("{} (code {c})", msg.unwrap_or_else(|| "error".into())),
            None => msg.unwrap_or_else(|| "error".into()),
        }),
    }
}

fn map_report(report: &Element) -> Result<ImportRun, String> {
    let root = te_result(report);
    let call = root.and_then(|r| prop_at(r, &["TS", "SequenceCall"]));
    let date = |k: &str| number_at(report, &["StartDate", k]);
    let time = |k: &str| number_at(report, &["StartTime", k]);
    let started_at = (|| {
        let d = chrono::NaiveDate::from_ymd_opt(
            date("Year")? as i32,
            date("Month")? as u32,
            date("MonthDay")? as u32,
        )?;
        let secs = time("Hours")? * 3600.0 + time("Minutes")? * 60.0 + time("Seconds")?;
        let midnight = d.and_hms_opt(0, 0, 0)?.and_utc();
        Some(plus_seconds(crate::db::Ts::from(midnight), secs))
    })();
    let root_start = root.and_then(|r| number_at(r, &["TS", "StartTime"]));

    let mut meta = Meta::default();
    meta.put_opt(
        "station",
        value_at(report, &["StationInfo", "StationID"]).as_deref(),
    );
    meta.put_opt(
        "test_socket",
        value_at(report, &["UUT", "TestSocketIndex"])
            .filter(|v| v.trim() != "-1")
            .as_deref(),
    );
    let sequence = call.and_then(|c| value_at(c, &["Sequence"]));
    meta.put_opt("sequence", sequence.as_deref());
    if let Some(ad) = prop_at(report, &["UUT", "AdditionalData"]) {
        flatten(ad, "", &mut meta, 0);
    }

    let mut steps = Vec::new();
    if let Some(call) = call {
        walk_results(call, &mut Vec::new(), &mut steps, started_at, root_start, 0);
    }
    let outcome = report.attr("UUTResult").and_then(run_outcome).or_else(|| {
        root.and_then(|r| value_at(r, &["Status"]))
            .and_then(|s| run_outcome(&s))
    });
    let procedure = call
        .and_then(|c| value_at(c, &["SequenceFile"]))
        .map(|f| {
            let base = f.rsplit(['\\', '/']).next().unwrap_or(&f).to_string();
            match base.len().checked_sub(4) {
                Some(n) if base.is_char_boundary(n) && base[n..].eq_ignore_ascii_case(".seq") => {
                    base[..n].to_string()
                }
                _ => base,
            }
        })
        .filter(|n| !n.trim().is_empty())
        .or(sequence);
    let header = Header {
        serial: value_at(report, &["UUT", "SerialNumber"]),
        part: value_at(report, &["UUT", "PartNumber"]),
        revision: None,
        batch: value_at(report, &["UUT", "BatchSerialNumber"]),
        procedure,
        version: call.and_then(|c| value_at(c, &["SequenceFileVersion"])),
        outcome,
        started_at,
        ended_at: None,
        duration: root
            .and_then(|r| number_at(r, &["TS", "TotalTime"]))
            .filter(|t| *t >= 0.0 && *t < 1e10),
        operator: value_at(report, &["StationInfo", "LoginName"]),
        docstring: None,
        metadata: meta,
        sub_units: Vec::new(),
        errors: root.and_then(error_message).into_iter().collect(),
    };
    build_run(header, steps, "TestStand")
}

/// Flattens an `Obj` prop into metadata `a.b` → scalar.
fn flatten(obj: &Element, prefix: &str, meta: &mut Meta, depth: usize) {
    if depth > 20 {
        return;
    }
    for p in obj.children_named("Prop") {
        let Some(name) = p.attr("Name") else { continue };
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        if p.children_named("Prop").next().is_some() {
            flatten(p, &key, meta, depth + 1);
        } else if let Some(v) = value(p) {
            match p.attr("Type") {
                Some("Number") => match finite(Some(&v)) {
                    Some(n) => meta.put(&key, n),
                    None => meta.put(&key, v),
                },
                Some("Boolean") => meta.put(&key, v.eq_ignore_ascii_case("true")),
                _ => meta.put(&key, v),
            }
        }
    }
}

/// Walks the `ResultList` of a sequence call: nested calls recurse, other steps become
/// `Step`s placed at `run_start + (step start − root start)`.
fn walk_results(
    call: &Element,
    path: &mut Vec<String>,
    out: &mut Vec<Step>,
    run_start: Option<crate::db::Ts>,
    root_start: Option<f64>,
    depth: usize,
) {
    if depth > 100 {
        return;
    }
    let Some(list) = prop(call, "ResultList") else {
        return;
    };
    for v in list.children_named("Value") {
        let Some(r) = te_result(v) else { continue };
        let name = value_at(r, &["TS", "StepName"]).unwrap_or_default();
        if let Some(inner) =
            prop_at(r, &["TS", "SequenceCall"]).filter(|c| prop(c, "ResultList").is_some())
        {
            path.push(name);
            walk_results(inner, path, out, run_start, root_start, depth + 1);
            path.pop();
            continue;
        }
        let status = value_at(r, &["Status"]);
        let outcome = phase_outcome(status.as_deref());
        let start = match (run_start, root_start, number_at(r, &["TS", "StartTime"])) {
            (Some(run), Some(root), Some(step)) => Some(plus_seconds(run, (step - root).max(0.0))),
            _ => None,
        };
        let group = value_at(r, &["TS", "StepGroup"]);
        let report_text = value_at(r, &["ReportText"]);
        let docstring = match (group.filter(|g| g != "Main"), report_text) {
            (Some(g), Some(t)) => Some(format!("{g}: {t}")),
            (Some(g), None) => Some(g),
            (None, t) => t,
        };
        out.push(Step {
            measurements: measurements(r, &name, status.as_deref()),
            name,
            outcome,
            start,
            duration: number_at(r, &["TS", "TotalTime"]).filter(|t| *t >= 0.0 && *t < 1e10),
            docstring,
            path: path.clone(),
            errors: error_message(r).into_iter().collect(),
            ..Step::default()
        });
    }
}

/// A numeric limit measurement from `value_prop` and the `Limits`, `Comp`, `Units` props
/// of `holder`.
fn numeric(
    holder: &Element,
    name: &str,
    value_prop: &str,
    outcome: &'static str,
) -> NewMeasurement {
    let mut m = measurement(name, outcome);
    set_numeric(&mut m, value_at(holder, &[value_prop]).as_deref());
    m.units = value_at(holder, &["Units"]);
    let comp = value_at(holder, &["Comp"]);
    let low = finite(value_at(holder, &["Limits", "Low"]).as_deref());
    let high = finite(value_at(holder, &["Limits", "High"]).as_deref());
    let code = comp.as_deref().map(str::to_ascii_uppercase);
    // TestStand keeps the limit of `LT`/`LE` in `High`.
    let (low, high) = match code.as_deref() {
        Some("LT" | "LE") => (high.or(low), None),
        _ => (low, high),
    };
    m.validators = comparison(code.as_deref(), low, high, outcome);
    m
}

fn measurements(r: &Element, step: &str, status: Option<&str>) -> Vec<NewMeasurement> {
    let kind = value_at(r, &["TS", "StepType"]).unwrap_or_default();
    let outcome = measurement_outcome(status);
    let mut out = Vec::new();
    match kind.as_str() {
        "NI_MultipleNumericLimitTest" => {
            if let Some(arr) = prop(r, "Measurement") {
                for v in arr.children_named("Value") {
                    for el in v.children_named("Prop") {
                        let name = el.attr("Name").filter(|n| !n.is_empty()).unwrap_or(step);
                        let mo = value_at(el, &["Status"])
                            .map(|s| measurement_outcome(Some(&s)))
                            .unwrap_or(outcome);
                        out.push(numeric(el, name, "Data", mo));
                    }
                }
            }
        }
        "PassFailTest" => {
            let mut m = measurement(step, outcome);
            m.measured_value =
                value_at(r, &["PassFail"]).map(|v| Value::Bool(v.eq_ignore_ascii_case("true")));
            m.validators = comparison(Some("EQ"), Some(Value::Bool(true)), None, outcome);
            out.push(m);
        }
        "StringValueTest" => {
            let mut m = measurement(step, outcome);
            m.measured_value = prop(r, "String")
                .and_then(|p| p.child("Value"))
                .map(|v| Value::String(v.text.clone()));
            let code = match value_at(r, &["Comp"])
                .unwrap_or_default()
                .to_ascii_uppercase()
                .as_str()
            {
                "IGNORECASE" => "IGNORECASE",
                "LOG" => "LOG",
                _ => "CASESENSIT",
            };
            let limit = prop_at(r, &["Limits", "String"])
                .and_then(|p| p.child("Value"))
                .map(|v| Value::String(v.text.clone()));
            m.validators = comparison(Some(code), limit, None, outcome);
            out.push(m);
        }
        "CallExecutable" => {
            if let Some(code) = finite(value_at(r, &["ExitCode"]).as_deref()) {
                let mut m = measurement("exit_code", "UNSET");
                m.measured_value = Some(code);
                out.push(m);
            }
        }
        "MessagePopup" => {
            if let Some(resp) = value_at(r, &["Response"]) {
                let mut m = measurement("response", "UNSET");
                m.measured_value = Some(Value::String(resp));
                out.push(m);
            }
        }
        _ => {
            if prop(r, "Numeric").is_some()
                && (prop(r, "Limits").is_some() || kind == "NumericLimitTest")
            {
                out.push(numeric(r, step, "Numeric", outcome));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let e = parse(b"<Reports><Other/></Reports>").unwrap_err();
        assert!(e.0.starts_with("Not a TESTSTAND file"), "{e}");
        let e = parse(b"<TestResults xmlns='urn:IEEE-1636.1:2013:TestResults'/>").unwrap_err();
        assert!(e.0.contains("ATML"), "{e}");
    }
}
