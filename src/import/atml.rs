//! ATML Test Results (IEEE 1636.1) versions 2.02, 5.00 and 6.01, importer `ATML`: one
//! run per `ResultSet` of each `TestResults` (IEEE IMPORTERS.md §5). Elements are matched
//! on local names once the root's namespace is recognised.
//!
//! Decisions where the spec is silent:
//! - The procedure is the `TestProgram` model name, else the `ResultSet@name` part
//!   before `#`; either one without folders or extension (`C:\Seq\Main.seq` → `Main`).
//! - The version is `TestProgram/Definition@version`, else the identification's
//!   `Version`.
//! - `Test` elements right under a `ResultSet` form a first phase named after the
//!   `ResultSet` name part after `#`, else `Main`; its outcome is derived from them.
//! - Of a `Test`'s several `TestResult`s, those without limits are kept only when they
//!   are flagged log-only, or are its only result carrying data.
//! - NI threshold limits (percentage / ppm / delta) are not converted: such results
//!   keep their value without validators.

use serde_json::Value;

use crate::db::runs::{NewDataSeries, NewMeasurement, NewValidator};

use super::resultmap::{
    build_run, comparison, finite, label, measurement, timestamp, FormatError, Header, ImportRun,
    Meta, Num, ParsedFile, ParsedUnit, Step,
};
use super::xml::{self, Element};

const FORMAT: &str = "ATML";

/// (collection namespace, results namespace) of the supported versions.
const V2_TR: &str = "http://www.ieee.org/ATML/2007/TestResults";
const V5_COLLECTION: &str = "urn:IEEE-1636.1:2011:01:TestResultsCollection";
const V5_TR: &str = "urn:IEEE-1636.1:2011:01:TestResults";
const V6_COLLECTION: &str = "urn:IEEE-1636.1:2013:TestResultsCollection";
const V6_TR: &str = "urn:IEEE-1636.1:2013:TestResults";

/// Parses an ATML document into one unit per result set.
pub fn parse(bytes: &[u8]) -> Result<ParsedFile, FormatError> {
    if let Some(reason) = xml::not_xml(bytes) {
        return Err(FormatError::not_format("ATML TestResults", reason));
    }
    let root = xml::parse(bytes).map_err(|e| FormatError::invalid(FORMAT, e))?;
    let results = detect(&root)?;
    let mut file = ParsedFile::default();
    let mut position = 0;
    for tr in results {
        for rs in tr.children_named("ResultSet") {
            position += 1;
            let serial = tr.at(&["UUT", "SerialNumber"]).and_then(Element::text);
            file.units.push(ParsedUnit {
                label: label("Result set", position, serial),
                run: map_result_set(tr, rs),
            });
        }
    }
    if file.units.is_empty() {
        return Err(FormatError::no_result());
    }
    Ok(file)
}

fn detect(root: &Element) -> Result<Vec<&Element>, FormatError> {
    let ns = root.ns.as_deref().unwrap_or("");
    match (root.name.as_str(), ns) {
        ("TestResultsCollection", V5_COLLECTION | V6_COLLECTION) => {
            Ok(root.children_named("TestResults").collect())
        }
        ("TestResults", V2_TR | V5_TR | V6_TR) => Ok(vec![root]),
        ("Reports" | "Report", "")
            if root.children.iter().any(|c| c.name == "Prop")
                || root
                    .children_named("Report")
                    .any(|r| r.children_named("Prop").next().is_some()) =>
        {
            Err(FormatError::not_format(
                "ATML TestResults",
                "it looks like TESTSTAND; import it with importer TESTSTAND",
            ))
        }
        ("Reports" | "Report", n) if n.contains("wats.virinco.com") => {
            Err(FormatError::not_format(
                "ATML TestResults",
                "it looks like WSXF; import it with importer WSXF",
            ))
        }
        ("TestResultsCollection" | "TestResults", n) if !n.is_empty() => Err(FormatError(format!(
            "ATML namespace {n} is not a supported TestResults version (2.02, 5.00, 6.01)"
        ))),
        (name, _) => Err(FormatError::not_format(
            "ATML TestResults",
            format!(
                "root element <{name}>{} is not an ATML TestResults root",
                if ns.is_empty() {
                    String::new()
                } else {
                    format!(" in namespace {ns}")
                }
            ),
        )),
    }
}

/// `C:\dir\Main.seq` → `Main`.
fn file_stem(s: &str) -> String {
    let base = s.rsplit(['\\', '/']).next().unwrap_or(s);
    match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => base.to_string(),
    }
}

fn text_at(el: Option<&Element>, path: &[&str]) -> Option<String> {
    el?.at(path)?.text().map(str::to_string)
}

/// Outcome value after its qualifier (`UserDefined`/`Aborted` with a qualifier).
fn outcome_word(outcome: Option<&Element>) -> Option<String> {
    let o = outcome?;
    let value = o.attr_ci("value")?;
    match o.attr_ci("qualifier") {
        Some(q)
            if value.eq_ignore_ascii_case("UserDefined")
                || value.eq_ignore_ascii_case("Aborted") =>
        {
            Some(q.to_ascii_lowercase())
        }
        _ => Some(value.to_ascii_lowercase()),
    }
}

fn run_outcome(word: &str) -> &'static str {
    match word {
        "passed" | "done" => "PASS",
        "failed" => "FAIL",
        "terminated" | "aborted" => "ABORTED",
        "timeout" | "timedout" => "TIMEOUT",
        _ => "ERROR",
    }
}

fn phase_outcome(word: &str) -> &'static str {
    match word {
        "passed" | "done" => "PASS",
        "failed" => "FAIL",
        "skipped" | "notstarted" => "SKIP",
        _ => "ERROR",
    }
}

fn measurement_outcome(word: &str) -> &'static str {
    match word {
        "passed" => "PASS",
        "failed" => "FAIL",
        _ => "UNSET",
    }
}

fn map_result_set(tr: &Element, rs: &Element) -> Result<ImportRun, String> {
    let uut = tr.child("UUT");
    let ident = uut.and_then(|u| u.at(&["Definition", "Identification"]));
    let part = ident
        .and_then(|i| i.child("IdentificationNumbers"))
        .and_then(|ns| {
            let numbers: Vec<&Element> = ns.children_named("IdentificationNumber").collect();
            numbers
                .iter()
                .find(|n| {
                    n.attr_ci("type")
                        .is_some_and(|t| t.eq_ignore_ascii_case("Part"))
                })
                .or(numbers.first())
                .and_then(|n| n.attr_ci("number"))
                .map(str::to_string)
        })
        .or_else(|| text_at(ident, &["ModelName"]));
    let program = tr.child("TestProgram");
    let program_def = program.and_then(|p| p.child("Definition"));
    let rs_name = rs.attr_ci("name");
    let procedure = text_at(program_def, &["Identification", "ModelName"])
        .or_else(|| rs_name.map(|n| n.split('#').next().unwrap_or(n).to_string()))
        .map(|n| file_stem(&n))
        .filter(|n| !n.trim().is_empty());
    let version = program_def
        .and_then(|d| d.attr_ci("version"))
        .map(str::to_string)
        .or_else(|| text_at(program_def, &["Identification", "Version"]));
    let station = tr.child("TestStation");
    let operator = tr
        .at(&["Personnel", "SystemOperator"])
        .and_then(|o| o.attr_ci("name").or_else(|| o.attr_ci("ID")))
        .map(str::to_string);
    let rs_ext = rs.at(&["Extension", "TSResultSetProperties"]);
    let ts_prop = |name: &str| {
        rs_ext.and_then(|e| e.child(name)).and_then(|p| {
            p.attr_ci("value")
                .map(str::to_string)
                .or_else(|| p.text().map(str::to_string))
        })
    };

    let mut meta = Meta::default();
    meta.put_opt("station", text_at(station, &["SerialNumber"]).as_deref());
    meta.put_opt(
        "station_model",
        text_at(station, &["Definition", "Identification", "ModelName"]).as_deref(),
    );
    meta.put_opt("test_socket", ts_prop("TestSocketIndex").as_deref());
    meta.put_opt("atml_uuid", tr.attr_ci("uuid"));
    if let Some(items) = uut
        .and_then(|u| u.at(&["Extension", "TSCollection"]))
        .map(|c| {
            c.children_named("Item")
                .filter(|i| i.attr_ci("name") == Some("AdditionalData"))
        })
    {
        for item in items {
            flatten(item, "", &mut meta, 0);
        }
    }

    // Phases: loose tests first, then groups depth-first and session actions in order.
    let mut steps = Vec::new();
    let loose: Vec<&Element> = rs.children_named("Test").collect();
    if !loose.is_empty() {
        let name = rs_name
            .and_then(|n| n.split_once('#').map(|(_, b)| b.to_string()))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Main".into());
        let measurements: Vec<NewMeasurement> =
            loose.iter().flat_map(|t| test_measurements(t)).collect();
        let outcome = if measurements.iter().any(|m| m.outcome == "FAIL")
            || loose
                .iter()
                .any(|t| outcome_word(t.child("Outcome")).as_deref() == Some("failed"))
        {
            "FAIL"
        } else {
            "PASS"
        };
        steps.push(Step {
            name,
            outcome,
            measurements,
            ..Step::default()
        });
    }
    for child in &rs.children {
        match child.name.as_str() {
            "TestGroup" | "SessionAction" => group_steps(child, &mut steps, 0),
            _ => {}
        }
    }

    let header = Header {
        serial: text_at(uut, &["SerialNumber"]),
        part,
        revision: text_at(ident, &["Version"]),
        batch: ts_prop("BatchSerialNumber"),
        procedure,
        version,
        outcome: outcome_word(rs.child("Outcome")).map(|w| run_outcome(&w)),
        started_at: rs.attr_ci("startDateTime").and_then(timestamp),
        ended_at: rs.attr_ci("endDateTime").and_then(timestamp),
        duration: None,
        operator,
        docstring: None,
        metadata: meta,
        sub_units: Vec::new(),
        errors: Vec::new(),
    };
    build_run(header, steps, "ATML")
}

/// Flattens an NI `c:Item` tree into metadata `a.b` → text.
fn flatten(item: &Element, prefix: &str, meta: &mut Meta, depth: usize) {
    if depth > 20 {
        return;
    }
    let sub = item.child("Collection");
    for child in sub.into_iter().flat_map(|c| c.children_named("Item")) {
        let Some(name) = child.attr_ci("name") else {
            continue;
        };
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        if let Some(d) = child.child("Datum") {
            if let Some(v) = datum_value(d) {
                meta.put(&key, v);
            }
        } else {
            flatten(child, &key, meta, depth + 1);
        }
    }
}

/// A `c:Datum`'s value: numbers from `@value` (hex allowed; non-finite → none),
/// booleans, strings from the `Value` child (else `@value`).
fn datum_value(d: &Element) -> Option<Value> {
    let kind = d
        .attr("type")
        .map(|t| t.rsplit(':').next().unwrap_or(t).to_ascii_lowercase())
        .unwrap_or_default();
    let raw = d.attr("value");
    match kind.as_str() {
        "boolean" => {
            raw.map(|v| Value::Bool(v.trim().eq_ignore_ascii_case("true") || v.trim() == "1"))
        }
        "string" => d
            .child("Value")
            .map(|v| Value::String(v.text.clone()))
            .or_else(|| raw.map(|v| Value::String(v.to_string()))),
        _ => match raw.and_then(super::resultmap::number) {
            Some(Num::Finite(v)) => Some(v),
            Some(Num::NonFinite(_)) => None,
            None => raw
                .map(|v| Value::String(v.to_string()))
                .or_else(|| d.child("Value").map(|v| Value::String(v.text.clone()))),
        },
    }
}

fn group_steps(el: &Element, out: &mut Vec<Step>, depth: usize) {
    if depth > 100 {
        return;
    }
    let name = el
        .attr_ci("callerName")
        .map(str::to_string)
        .or_else(|| {
            el.attr_ci("name")
                .map(|n| n.split_once('#').map_or(n, |(_, b)| b).to_string())
        })
        .unwrap_or_default();
    let word = outcome_word(el.child("Outcome").or_else(|| el.child("ActionOutcome")));
    let props = el.at(&["Extension", "TSStepProperties"]);
    let duration = props
        .and_then(|p| p.child("TotalTime"))
        .and_then(|t| t.attr_ci("value"))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e10);
    let step_group = props
        .and_then(|p| p.child("StepGroup"))
        .and_then(|g| g.attr_ci("value").or_else(|| g.text()));
    let report_text = el
        .at(&["Data", "Collection"])
        .into_iter()
        .flat_map(|c| c.children_named("Item"))
        .find(|i| i.attr_ci("name") == Some("ReportText"))
        .and_then(|i| i.child("Datum"))
        .and_then(datum_value)
        .and_then(|v| v.as_str().map(str::to_string));
    let docstring = match (step_group, report_text) {
        (Some(g), Some(t)) => Some(format!("{g}: {t}")),
        (Some(g), None) => Some(g.to_string()),
        (None, t) => t,
    };
    let measurements: Vec<NewMeasurement> = el
        .children_named("Test")
        .flat_map(test_measurements)
        .collect();
    out.push(Step {
        name,
        outcome: word.as_deref().map(phase_outcome).unwrap_or("PASS"),
        start: el.attr_ci("startDateTime").and_then(timestamp),
        end: el.attr_ci("endDateTime").and_then(timestamp),
        duration,
        docstring,
        measurements,
        ..Step::default()
    });
    if el.name == "TestGroup" {
        for child in &el.children {
            if matches!(child.name.as_str(), "TestGroup" | "SessionAction") {
                group_steps(child, out, depth + 1);
            }
        }
    }
}

fn test_measurements(test: &Element) -> Vec<NewMeasurement> {
    let results: Vec<&Element> = test
        .children_named("TestResult")
        .filter(|r| r.child("TestData").is_some())
        .collect();
    let single = results.len() == 1;
    let test_word = outcome_word(test.child("Outcome"));
    let mut out = Vec::new();
    for r in &results {
        let limits = r.at(&["TestLimits", "Limits"]);
        let log_only = r
            .at(&["Extension", "TSLimitProperties", "IsComparisonTypeLog"])
            .and_then(|e| e.attr_ci("value").or_else(|| e.text()))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if limits.is_none() && !log_only && !single {
            continue;
        }
        let name = if single {
            test.attr_ci("name").or_else(|| r.attr_ci("name"))
        } else {
            r.attr_ci("name").or_else(|| test.attr_ci("name"))
        }
        .map(|n| n.split_once('#').map_or(n, |(_, b)| b).to_string())
        .unwrap_or_else(|| "measurement".into());
        let word = outcome_word(r.child("Outcome")).or_else(|| test_word.clone());
        let outcome = word.as_deref().map(measurement_outcome).unwrap_or("UNSET");
        let mut m = measurement(&name, outcome);
        let data = r.child("TestData");
        if let Some(d) = data.and_then(|d| d.child("Datum")) {
            m.measured_value = datum_value(d);
            if m.measured_value.is_none() {
                if let Some(raw) = d.attr("value") {
                    m.docstring = Some(format!("measured value: {raw}"));
                }
            }
            m.units = d
                .attr_ci("nonStandardUnit")
                .or_else(|| d.attr_ci("standardUnit"))
                .map(str::to_string);
        } else if let Some(arr) =
            data.and_then(|d| d.child("IndexedArray").or_else(|| d.child("Collection")))
        {
            let ys: Vec<serde_json::Number> = arr
                .children
                .iter()
                .filter_map(|e| {
                    let datum = if e.name == "Item" {
                        e.child("Datum")?
                    } else {
                        e
                    };
                    match datum_value(datum)? {
                        Value::Number(n) => Some(n),
                        _ => None,
                    }
                })
                .collect();
            let xs = (0..ys.len() as u64).map(serde_json::Number::from).collect();
            let units = arr
                .attr_ci("nonStandardUnit")
                .or_else(|| arr.attr_ci("standardUnit"))
                .map(str::to_string);
            m.data_series = Some(vec![
                series(xs, None, Some("index".into())),
                series(ys, units, Some(name.clone())),
            ]);
        }
        m.validators = limits.and_then(|l| limit_validators(l, outcome));
        out.push(m);
    }
    out
}

fn series(
    data: Vec<serde_json::Number>,
    units: Option<String>,
    name: Option<String>,
) -> NewDataSeries {
    NewDataSeries {
        data,
        units,
        name,
        description: None,
        validators: None,
        aggregations: None,
    }
}

fn limit_value(l: &Element) -> Option<Value> {
    l.child("Datum")
        .and_then(datum_value)
        .and_then(|v| match v {
            Value::String(s) => finite(Some(&s)).or(Some(Value::String(s))),
            v => Some(v),
        })
}

/// Validators of `TestLimits/Limits`: a single limit, a limit pair (inside band with
/// `AND`, outside with `OR`) or an expected value.
fn limit_validators(limits: &Element, outcome: &str) -> Option<Vec<NewValidator>> {
    if let Some(single) = limits.child("SingleLimit") {
        return comparison(
            single.attr_ci("comparator"),
            limit_value(single),
            None,
            outcome,
        );
    }
    if let Some(pair) = limits.child("LimitPair") {
        let mut ls: Vec<(String, Option<Value>)> = pair
            .children_named("Limit")
            .map(|l| {
                (
                    l.attr_ci("comparator").unwrap_or("").to_ascii_uppercase(),
                    limit_value(l),
                )
            })
            .collect();
        if ls.len() != 2 {
            return None;
        }
        let or = pair
            .attr_ci("operator")
            .is_some_and(|o| o.eq_ignore_ascii_case("OR"));
        // The low side first: `GE`/`GT` inside a band, `LE`/`LT` outside.
        let low_first = |c: &str| {
            if or {
                c.starts_with('L')
            } else {
                c.starts_with('G')
            }
        };
        if !low_first(&ls[0].0) && low_first(&ls[1].0) {
            ls.swap(0, 1);
        }
        let code = format!("{}{}", ls[0].0, ls[1].0);
        return comparison(Some(&code), ls[0].1.clone(), ls[1].1.clone(), outcome);
    }
    if let Some(expected) = limits.child("Expected") {
        let code = match expected
            .attr_ci("comparator")
            .unwrap_or("EQ")
            .to_ascii_uppercase()
            .as_str()
        {
            "CIEQ" => "IGNORECASE",
            "NE" => "NE",
            _ => "EQ",
        };
        return comparison(Some(code), limit_value(expected), None, outcome);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let e = parse(b"<TestResults xmlns='urn:IEEE-1636.1:2009:TestResults'/>").unwrap_err();
        assert!(e.0.contains("not a supported TestResults version"), "{e}");
        let e = parse(b"<Reports><Report Type='UUT'><Prop Name='UUT'/></Report></Reports>")
            .unwrap_err();
        assert!(e.0.contains("TESTSTAND"), "{e}");
        let e = parse(b"<x>").unwrap_err();
        assert!(e.0.starts_with("Invalid ATML file"), "{e}");
        assert_eq!(file_stem("C:\\a\\Main.seq"), "Main");
    }
}
