//! WATS Standard XML Format (WSXF), importer `WSXF`: each test `Report` of a `Reports`
//! document is one run, mapped like WSJF (IMPORTERS.md §4). Repair (UUR) reports are
//! skipped with a warning.
//!
//! Decisions where the spec is silent:
//! - A lone `Report` root in the WATS namespace is read like a `Reports` of one.
//! - When a report's steps are one sequence call, that call is the root sequence: it
//!   names the procedure (when `Process@Name` is absent) and its version, and is not
//!   part of the phases' `in:` path.
//! - `Attachment` elements (base64) become attachments of the run.

use serde_json::Value;

use super::resultmap::{
    build_run, comparison, finite, label, measurement, seconds, set_numeric, timestamp,
    EmbeddedFile, FormatError, Header, ImportRun, Meta, ParsedFile, ParsedUnit, Step,
};
use super::wats::{self, Chart};
use super::xml::{self, Element};

const FORMAT: &str = "WSXF";
const NAMESPACES: [&str; 2] = [
    "http://wats.virinco.com/schemas/WATS/Report/wsxf",
    "http://wats.virinco.com/schemas/WATS/Report/wrml",
];

/// Parses a WSXF document into one unit per test report.
pub fn parse(bytes: &[u8]) -> Result<ParsedFile, FormatError> {
    if let Some(reason) = xml::not_xml(bytes) {
        return Err(FormatError::not_format(FORMAT, reason));
    }
    let root = xml::parse(bytes).map_err(|e| FormatError::invalid(FORMAT, e))?;
    let reports: Vec<&Element> = detect(&root)?;
    let mut file = ParsedFile::default();
    let mut position = 0;
    for report in reports {
        position += 1;
        let kind = report.attr_ci("type").unwrap_or("UUT");
        if kind.eq_ignore_ascii_case("UUR") || kind.eq_ignore_ascii_case("R") {
            file.warnings.push(format!(
                "{} skipped: repair (UUR) reports are not imported",
                label("Report", position, report.attr_ci("SN"))
            ));
            continue;
        }
        let run = map_report(report, &mut file.warnings);
        file.units.push(ParsedUnit {
            label: label("Report", position, report.attr_ci("SN")),
            run,
        });
    }
    if file.units.is_empty() {
        return Err(FormatError::no_result());
    }
    Ok(file)
}

fn detect(root: &Element) -> Result<Vec<&Element>, FormatError> {
    let wats_ns = root.ns.as_deref().is_some_and(|n| NAMESPACES.contains(&n));
    match (root.name.as_str(), wats_ns) {
        ("Reports", true) => Ok(root.children_named("Report").collect()),
        ("Report", true) => Ok(vec![root]),
        ("Reports", false)
            if root.ns.is_none()
                && root.children_named("Report").next().is_some()
                && root
                    .children_named("Report")
                    .all(|r| r.attr_ci("SN").is_some() || r.attr_ci("PN").is_some()) =>
        {
            Ok(root.children_named("Report").collect())
        }
        ("Reports", false)
            if root
                .children_named("Report")
                .any(|r| r.children_named("Prop").next().is_some()) =>
        {
            Err(FormatError::not_format(
                FORMAT,
                "it looks like TESTSTAND; import it with importer TESTSTAND",
            ))
        }
        ("TestResultsCollection" | "TestResults", _) => Err(FormatError::not_format(
            FORMAT,
            "it looks like ATML; import it with importer ATML",
        )),
        _ => Err(FormatError::not_format(
            FORMAT,
            format!(
                "root element <{}>{} is not a WATS `Reports` element",
                root.name,
                root.ns
                    .as_deref()
                    .map(|n| format!(" in namespace {n}"))
                    .unwrap_or_default()
            ),
        )),
    }
}

fn a(el: &Element, name: &str) -> Option<String> {
    el.attr_ci(name).map(str::to_string)
}

fn map_report(report: &Element, warnings: &mut Vec<String>) -> Result<ImportRun, String> {
    let uut = report.child_ci("UUT");
    let u = |k: &str| uut.and_then(|e| a(e, k));
    let process = report.child_ci("Process");
    let steps: Vec<&Element> = report.children_named("Step").collect();
    let root_call = match steps.as_slice() {
        [only] if is_sequence_call(only) => Some(*only),
        _ => None,
    };

    let mut meta = Meta::default();
    meta.put_opt("station", a(report, "MachineName").as_deref());
    meta.put_opt("location", a(report, "Location").as_deref());
    meta.put_opt("purpose", a(report, "Purpose").as_deref());
    meta.put_opt(
        "process_code",
        process.and_then(|p| a(p, "Code")).as_deref(),
    );
    meta.put_opt("fixture_id", u("FixtureId").as_deref());
    meta.put_opt("test_socket", u("TestSocketIndex").as_deref());
    meta.put_opt("wats_report_id", a(report, "ID").as_deref());
    for info in report
        .children
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case("MiscInfo"))
    {
        let value = info
            .text()
            .map(|t| Value::String(t.to_string()))
            .or_else(|| finite(info.attr_ci("Numeric")));
        if let (Some(k), Some(v)) = (info.attr_ci("Description"), value) {
            meta.put(k, v);
        }
    }

    let mut out = Vec::new();
    match root_call {
        Some(root) => {
            for child in root.children_named("Step") {
                walk(child, &mut Vec::new(), &mut out, warnings);
            }
        }
        None => {
            for step in steps {
                walk(step, &mut Vec::new(), &mut out, warnings);
            }
        }
    }
    let root_seq = root_call.and_then(|r| r.child_ci("SequenceCall"));
    let header = Header {
        serial: a(report, "SN"),
        part: a(report, "PN"),
        revision: a(report, "Rev"),
        batch: u("BatchSN"),
        procedure: process
            .and_then(|p| a(p, "Name"))
            .or_else(|| root_seq.and_then(|s| a(s, "Name")))
            .or_else(|| root_call.and_then(|r| a(r, "Name"))),
        version: root_seq.and_then(|s| a(s, "Version")),
        outcome: wats::run_result(report.attr_ci("Result")),
        started_at: report
            .attr_ci("Start_utc")
            .and_then(timestamp)
            .or_else(|| report.attr_ci("Start").and_then(timestamp)),
        ended_at: None,
        duration: seconds(u("ExecutionTime").map(Value::String).as_ref()),
        operator: u("UserLoginName"),
        docstring: uut
            .and_then(|e| e.child_ci("Comment"))
            .and_then(|c| c.text())
            .map(str::to_string),
        metadata: meta,
        sub_units: report
            .children
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case("ReportUnitHierarchy"))
            .filter_map(|h| {
                let sn = a(h, "SN");
                if sn.is_none() {
                    warnings.push(format!(
                        "Sub-unit {} without a serial number not linked",
                        a(h, "PN").unwrap_or_default()
                    ));
                }
                sn
            })
            .collect(),
        errors: wats::error_text(u("ErrorCode"), u("ErrorMessage"))
            .into_iter()
            .collect(),
    };
    build_run(header, out, "WATS")
}

fn is_sequence_call(step: &Element) -> bool {
    step.child_ci("SequenceCall").is_some()
        || step
            .attr_ci("StepType")
            .is_some_and(|t| t.eq_ignore_ascii_case("SequenceCall"))
        || step.children_named("Step").next().is_some()
}

fn walk(step: &Element, path: &mut Vec<String>, out: &mut Vec<Step>, warnings: &mut Vec<String>) {
    let name = a(step, "Name").unwrap_or_default();
    if is_sequence_call(step) {
        path.push(name);
        for child in step.children_named("Step") {
            walk(child, path, out, warnings);
        }
        path.pop();
        return;
    }
    let outcome = wats::step_status(step.attr_ci("Status"));
    let mut st = Step {
        name: name.clone(),
        outcome,
        duration: seconds(a(step, "total_time").map(Value::String).as_ref()),
        docstring: step
            .child_ci("ReportText")
            .and_then(|t| t.text())
            .map(str::to_string),
        path: path.clone(),
        errors: wats::error_text(a(step, "ErrorCode"), a(step, "ErrorMessage"))
            .into_iter()
            .collect(),
        ..Step::default()
    };
    for child in &step.children {
        let mname = a(child, "Name").unwrap_or_else(|| name.clone());
        let status = child.attr_ci("Status");
        match child.name.to_ascii_lowercase().as_str() {
            "numericlimit" => {
                let mo = wats::measurement_status(status.or(Some(letter(outcome))));
                let mut m = measurement(&mname, mo);
                set_numeric(&mut m, child.attr_ci("NumericValue"));
                m.units = a(child, "Units");
                m.validators = comparison(
                    child.attr_ci("CompOperator"),
                    finite(child.attr_ci("LowLimit")),
                    finite(child.attr_ci("HighLimit")),
                    mo,
                );
                st.measurements.push(m);
            }
            "passfail" => {
                let mo = wats::measurement_status(status.or(Some(letter(outcome))));
                let mut m = measurement(&mname, mo);
                m.measured_value = match mo {
                    "PASS" => Some(Value::Bool(true)),
                    "FAIL" => Some(Value::Bool(false)),
                    _ => None,
                };
                m.validators = comparison(Some("EQ"), Some(Value::Bool(true)), None, mo);
                st.measurements.push(m);
            }
            "stringvalue" => {
                let mo = wats::measurement_status(status.or(Some(letter(outcome))));
                let mut m = measurement(&mname, mo);
                m.measured_value = child
                    .attr("StringValue")
                    .map(|v| Value::String(v.to_string()));
                m.validators = comparison(
                    child.attr_ci("CompOperator"),
                    child
                        .attr("StringLimit")
                        .map(|v| Value::String(v.to_string())),
                    None,
                    mo,
                );
                st.measurements.push(m);
            }
            "chart" => {
                let series: Vec<&Element> = child
                    .children
                    .iter()
                    .filter(|c| c.name.eq_ignore_ascii_case("Series"))
                    .collect();
                let chart = Chart {
                    label: a(child, "Label").unwrap_or_else(|| name.clone()),
                    x_unit: a(child, "XUnit"),
                    y_unit: a(child, "YUnit"),
                    x_label: a(child, "XLabel"),
                    series: series
                        .iter()
                        .map(|se| {
                            (
                                a(se, "Name"),
                                se.child_ci("xdata").map(|x| x.text.as_str()),
                                se.child_ci("ydata").map(|y| y.text.as_str()),
                            )
                        })
                        .collect(),
                };
                st.measurements
                    .push(chart.to_measurement(wats::chart_outcome(outcome)));
            }
            "attachment" => match EmbeddedFile::decode(
                a(child, "Name"),
                a(child, "ContentType"),
                &child.text,
                &name,
            ) {
                Ok(f) => st.files.push(f),
                Err(w) => warnings.push(w),
            },
            _ => {}
        }
    }
    out.push(st);
}

fn letter(outcome: &str) -> &'static str {
    match outcome {
        "PASS" => "P",
        "FAIL" => "F",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let e = parse(b"<Other/>").unwrap_err();
        assert!(e.0.starts_with("Not a WSXF file"), "{e}");
        let e = parse(b"<Reports><Report><Prop Name='x'/></Report></Reports>").unwrap_err();
        assert!(e.0.contains("TESTSTAND"), "{e}");
        let e = parse(
            b"<Reports xmlns='http://wats.virinco.com/schemas/WATS/Report/wsxf'>\n<Report SN='1'>",
        )
        .unwrap_err();
        assert!(
            e.0.starts_with("Invalid WSXF file") && e.0.contains("line 2"),
            "{e}"
        );
    }
}
