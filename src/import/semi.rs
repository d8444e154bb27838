//! What STDF and ATDF share (IMPORTERS.md §7, §8): the records they both carry, as one
//! model both readers produce, and the mapping of those records to runs — one run per
//! part (`PIR` … `PRR`, matched by head and site), tests as measurements, the lot as the
//! batch, the part type as the part number.
//!
//! Import in two passes over the file: the first validates every record and collects
//! what only the end of a file says (`TSR` test names, `HBR`/`SBR` bins, `MRR`); the
//! second assembles parts and emits each one as soon as its `PRR` arrives. Memory holds
//! the open parts (one per site) and per-test tables, never the file.
//!
//! Decisions where the spec is silent:
//! - A file that ends inside a record (or before a part's `PRR`) keeps the parts
//!   completed before that point, with a warning naming where the file was cut. A part
//!   is never imported half: only a part closed by its `PRR` becomes a run.
//! - A `PRR` without a `PIR` is a part without tests. A second `PIR` on a site whose part
//!   is still open discards the open part (warning).
//! - Test records of a site with no open part, and `DTR`s outside any part, are ignored.
//! - Text fields are UTF-8 when valid, else Latin-1; NUL becomes U+FFFD.
//! - `OPER_NAM` is kept as metadata `operator`, and is the run's operator when it is the
//!   email address of a member of the organization.
//! - An empty `LOT_ID` reads `LOT` in synthesised serial numbers.

use std::collections::HashMap;

use serde_json::{Number, Value};

use super::structured::{Emitter, FileHeader, ParseError};
use crate::db::runs::{
    Metadata, NewDataSeries, NewLog, NewMeasurement, NewPhase, NewRun, NewValidator,
};
use crate::db::{Id, Ts};

/// A limit as a test record gives it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Limit {
    /// Not in this record (or flagged invalid): the test's first record says.
    #[default]
    Missing,
    /// The test has no such limit.
    None,
    Value(f32),
}

#[derive(Debug, Clone, Default)]
pub struct Mir {
    pub setup_t: Option<u32>,
    pub start_t: Option<u32>,
    pub stat_num: Option<u8>,
    pub mode_cod: String,
    pub rtst_cod: String,
    pub lot_id: String,
    pub part_typ: String,
    pub node_nam: String,
    pub tstr_typ: String,
    pub job_nam: String,
    pub job_rev: String,
    pub sblot_id: String,
    pub oper_nam: String,
    pub exec_typ: String,
    pub exec_ver: String,
    pub test_cod: String,
    pub tst_temp: String,
    pub pkg_typ: String,
    pub famly_id: String,
    pub facil_id: String,
    pub floor_id: String,
    pub proc_id: String,
    pub flow_id: String,
    pub setup_id: String,
    pub dsgn_rev: String,
}

#[derive(Debug, Clone, Default)]
pub struct Prr {
    pub head: u8,
    pub site: u8,
    pub part_flg: u8,
    pub hard_bin: u16,
    pub soft_bin: u16,
    pub x: i16,
    pub y: i16,
    pub test_t: u32,
    pub part_id: String,
    pub part_txt: String,
}

#[derive(Debug, Clone, Default)]
pub struct Ptr {
    pub test_num: u32,
    pub head: u8,
    pub site: u8,
    pub test_flg: u8,
    pub parm_flg: u8,
    pub result: f32,
    pub test_txt: Option<String>,
    pub lo: Limit,
    pub hi: Limit,
    pub units: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Mpr {
    pub test_num: u32,
    pub head: u8,
    pub site: u8,
    pub test_flg: u8,
    pub parm_flg: u8,
    pub results: Vec<f32>,
    pub test_txt: Option<String>,
    pub lo: Limit,
    pub hi: Limit,
    pub start_in: Option<f32>,
    pub incr_in: Option<f32>,
    pub indexes: Vec<u16>,
    pub units: Option<String>,
    pub units_in: Option<String>,
}

/// FTR, and STR of V4-2007.
#[derive(Debug, Clone, Default)]
pub struct Ftr {
    pub test_num: u32,
    pub head: u8,
    pub site: u8,
    pub test_flg: u8,
    pub test_txt: Option<String>,
    pub vect_nam: String,
    pub num_fail: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Bin {
    pub num: u16,
    /// `P` or `F`; anything else is no indication.
    pub pf: Option<char>,
    pub name: String,
}

/// A record, as far as the mapping needs it.
#[derive(Debug, Clone)]
pub enum Rec {
    Mir(Box<Mir>),
    Mrr {
        disp_cod: String,
        exc_desc: String,
    },
    Wir {
        head: u8,
        start_t: Option<u32>,
        wafer_id: String,
    },
    Wrr {
        head: u8,
    },
    Sdr {
        handler: String,
        card: String,
        load: String,
    },
    Pir {
        head: u8,
        site: u8,
    },
    Prr(Prr),
    Ptr(Ptr),
    Mpr(Mpr),
    Ftr(Ftr),
    Bps(String),
    Eps,
    Dtr(String),
    Hbr(Bin),
    Sbr(Bin),
    Tsr {
        test_num: u32,
        name: String,
    },
    /// Any other record (read, not used).
    Other,
}

/// Why a reader stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The file ends inside a record: where, e.g. `record 12 (PTR) at byte 345`.
    Truncated(String),
    /// The item's error text (`Invalid STDF file: …`, `Not an STDF file: …`).
    Invalid(String),
}

/// A reader of one format's records, in file order.
pub trait Records {
    fn next_record(&mut self) -> Result<Option<Rec>, ReadError>;
    /// Where the reader is, for warnings: `record 12 at byte 345`, `line 7`.
    fn position(&self) -> String;
}

/// Text from a file: UTF-8 when valid, else Latin-1; NUL (which Postgres text cannot
/// hold) becomes U+FFFD.
pub fn text(bytes: &[u8]) -> String {
    let s = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    };
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// What the whole file says, gathered by the first pass.
#[derive(Debug, Default)]
struct Facts {
    mir: Mir,
    disp_cod: String,
    exc_desc: String,
    handler: String,
    card: String,
    load: String,
    hard_bins: HashMap<u16, Bin>,
    soft_bins: HashMap<u16, Bin>,
    test_names: HashMap<u32, String>,
    truncated: Option<String>,
    /// PRRs in the file.
    parts: u64,
}

impl Facts {
    fn see(&mut self, rec: Rec) {
        match rec {
            Rec::Mir(m) => self.mir = *m,
            Rec::Mrr { disp_cod, exc_desc } => {
                self.disp_cod = disp_cod;
                self.exc_desc = exc_desc;
            }
            Rec::Sdr {
                handler,
                card,
                load,
            } => {
                if self.handler.is_empty() {
                    self.handler = handler;
                }
                if self.card.is_empty() {
                    self.card = card;
                }
                if self.load.is_empty() {
                    self.load = load;
                }
            }
            Rec::Prr(_) => self.parts += 1,
            Rec::Hbr(b) => merge_bin(&mut self.hard_bins, b),
            Rec::Sbr(b) => merge_bin(&mut self.soft_bins, b),
            Rec::Tsr { test_num, name }
                if !name.trim().is_empty() && self.test_names.len() < MAX_TESTS =>
            {
                self.test_names.entry(test_num).or_insert(name);
            }
            _ => {}
        }
    }
}

/// Bins come per site and as summaries: the first with a pass/fail indication wins.
fn merge_bin(bins: &mut HashMap<u16, Bin>, b: Bin) {
    match bins.get_mut(&b.num) {
        None => {
            bins.insert(b.num, b);
        }
        Some(known) => {
            if known.pf.is_none() {
                known.pf = b.pf;
            }
            if known.name.is_empty() {
                known.name = b.name;
            }
        }
    }
}

/// Imports a file of `format` (its name in messages) whose records `open` reads,
/// opening it once per pass.
pub fn import<R: Records>(
    out: &mut Emitter,
    mut open: impl FnMut() -> Result<R, ReadError>,
) -> Result<(), ParseError> {
    // Pass 1: validate every record, collect the file-wide facts.
    let mut facts = Facts::default();
    let mut records = open().map_err(read_error)?;
    let mut complete_records = 0u64;
    loop {
        match records.next_record() {
            Ok(Some(rec)) => {
                complete_records += 1;
                facts.see(rec);
            }
            Ok(None) => break,
            Err(ReadError::Truncated(at)) => {
                facts.truncated = Some(at);
                break;
            }
            Err(ReadError::Invalid(message)) => return Err(ParseError::File(message)),
        }
    }
    drop(records);
    if let (Some(at), 0) = (&facts.truncated, facts.parts) {
        return Err(ParseError::File(format!(
            "The file is truncated ({at}): no part is complete"
        )));
    }

    let mir = &facts.mir;
    out.header(FileHeader {
        procedure_name: non_empty(&mir.job_nam).unwrap_or("STDF").to_string(),
        procedure_version: non_empty(&mir.job_rev).map(str::to_string),
    })?;
    if let Some(at) = &facts.truncated {
        out.warn(format!(
            "The file is truncated ({at}): the parts completed before that point were imported"
        ))?;
    }
    let batch = batch_number(&mir.lot_id);
    if let Some(b) = &batch {
        if b != mir.lot_id.trim() {
            out.warn(format!(
                "Lot id \"{}\" is not a valid batch number: imported as batch \"{b}\" (the \
                 original is kept in metadata lot_id)",
                mir.lot_id
            ))?;
        }
    }

    // Pass 2: assemble parts; each is emitted when its PRR arrives.
    let mut asm = Assembler::new(&facts, batch);
    let mut records = open().map_err(read_error)?;
    for _ in 0..complete_records {
        match records.next_record() {
            Ok(Some(rec)) => asm.take(rec, out, &records)?,
            Ok(None) => break,
            Err(ReadError::Truncated(at)) | Err(ReadError::Invalid(at)) => {
                return Err(ParseError::File(format!(
                    "The file changed while it was imported ({at}): import it again"
                )))
            }
        }
    }
    let mut open_parts: Vec<_> = asm.open.into_iter().collect();
    open_parts.sort_by_key(|((h, s), _)| (*h, *s));
    for ((head, site), _) in open_parts {
        out.warn(format!(
            "A part at head {head}, site {site} was not imported: the file ends before its PRR"
        ))?;
    }
    if asm.orphans > 0 {
        out.warn(format!(
            "{} test records outside any part (no PIR on their head and site) were ignored",
            asm.orphans
        ))?;
    }
    Ok(())
}

fn read_error(e: ReadError) -> ParseError {
    match e {
        ReadError::Truncated(at) => {
            ParseError::File(format!("The file is truncated ({at}): no part is complete"))
        }
        ReadError::Invalid(m) => ParseError::File(m),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// The batch number a lot id becomes: characters other than `A-Z a-z 0-9 _ -` replaced by
/// `_`, at most 100 characters. `None` for an empty lot id.
pub fn batch_number(lot: &str) -> Option<String> {
    let lot = non_empty(lot)?;
    Some(
        lot.chars()
            .take(100)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// The first record of a test carries its static fields; later ones may omit them.
#[derive(Debug, Default)]
struct TestDefaults {
    text: Option<String>,
    lo: Limit,
    hi: Limit,
    units: Option<String>,
}

#[derive(Debug, Default)]
struct OpenPart {
    phases: Vec<PhaseAcc>,
    logs: Vec<(&'static str, String)>,
    /// Measurements held.
    held: usize,
    /// More test results than a run may hold (or than memory allows): the part is
    /// skipped, its results dropped as they come.
    overflow: bool,
}

/// Test results one part may hold.
const MAX_PART_RESULTS: usize = 100_000;
/// Test results held across all open parts (sites tested in parallel), at most: bounds
/// memory whatever the file.
const MAX_HELD_RESULTS: usize = 250_000;
/// Log lines one part may hold; more are dropped.
const MAX_PART_LOGS: usize = 1_000;
/// Tests whose first record's static fields (and TSR names) are remembered.
const MAX_TESTS: usize = 100_000;

#[derive(Debug)]
struct PhaseAcc {
    section: u32,
    name: String,
    measurements: Vec<NewMeasurement>,
    names: HashMap<String, u32>,
    fail: bool,
    error: bool,
}

struct Assembler<'a> {
    facts: &'a Facts,
    batch: Option<String>,
    /// Current wafer per head: id and start time.
    wafers: HashMap<u8, (String, Option<u32>)>,
    /// BPS sections: 0 outside any, else the section's number.
    section: u32,
    sections: u32,
    section_name: String,
    open: HashMap<(u8, u8), OpenPart>,
    defaults: HashMap<u32, TestDefaults>,
    parts: usize,
    orphans: u64,
    /// Measurements held by all open parts.
    held: usize,
}

impl<'a> Assembler<'a> {
    fn new(facts: &'a Facts, batch: Option<String>) -> Self {
        Assembler {
            facts,
            batch,
            wafers: HashMap::new(),
            section: 0,
            sections: 0,
            section_name: String::new(),
            open: HashMap::new(),
            defaults: HashMap::new(),
            parts: 0,
            orphans: 0,
            held: 0,
        }
    }

    fn take<R: Records>(&mut self, rec: Rec, out: &mut Emitter, at: &R) -> Result<(), ParseError> {
        match rec {
            Rec::Wir {
                head,
                start_t,
                wafer_id,
            } => {
                self.wafers.insert(head, (wafer_id, start_t));
            }
            Rec::Wrr { head } => {
                self.wafers.remove(&head);
            }
            Rec::Bps(name) => {
                self.sections += 1;
                self.section = self.sections;
                self.section_name = non_empty(&name)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("Section {}", self.sections));
            }
            Rec::Eps => self.section = 0,
            Rec::Pir { head, site } => {
                let replaced = self.open.insert((head, site), OpenPart::default());
                if let Some(old) = &replaced {
                    self.held -= old.held;
                }
                if replaced.is_some() {
                    out.warn(format!(
                        "A part at head {head}, site {site} was not imported: a new PIR \
                         ({}) opened the site before its PRR",
                        at.position()
                    ))?;
                }
            }
            Rec::Dtr(text) => {
                for part in self.open.values_mut() {
                    if part.logs.len() < MAX_PART_LOGS {
                        part.logs.push(("INFO", text.clone()));
                    }
                }
            }
            Rec::Ptr(p) => self.ptr(p),
            Rec::Mpr(m) => self.mpr(m),
            Rec::Ftr(f) => self.ftr(f),
            Rec::Prr(prr) => {
                let part = self.open.remove(&(prr.head, prr.site)).unwrap_or_default();
                self.held -= part.held;
                self.parts += 1;
                let (label, run) = if part.overflow {
                    let (label, _) = self.run(&prr, OpenPart::default());
                    let why = format!(
                        "it holds more test results than an import keeps in memory \
                         ({MAX_PART_RESULTS} per part, {MAX_HELD_RESULTS} across parts tested \
                         at once)"
                    );
                    (label, Err(why))
                } else {
                    self.run(&prr, part)
                };
                out.unit(label, run)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The test's static fields: this record's when it has them (the first record of a
    /// test sets the defaults), else the defaults.
    fn statics(
        &mut self,
        test_num: u32,
        text: Option<String>,
        lo: Limit,
        hi: Limit,
        units: Option<String>,
    ) -> (String, Limit, Limit, Option<String>) {
        if self.defaults.len() >= MAX_TESTS && !self.defaults.contains_key(&test_num) {
            // Too many distinct tests to remember: this record stands alone.
            let name = text
                .filter(|t| !t.trim().is_empty())
                .or_else(|| self.facts.test_names.get(&test_num).cloned())
                .unwrap_or_else(|| format!("Test {test_num}"));
            return (name, lo, hi, units.filter(|u| !u.trim().is_empty()));
        }
        let d = self.defaults.entry(test_num).or_default();
        if d.text.is_none() {
            d.text = text.clone().filter(|t| !t.trim().is_empty());
        }
        if d.lo == Limit::Missing {
            d.lo = lo;
        }
        if d.hi == Limit::Missing {
            d.hi = hi;
        }
        if d.units.is_none() {
            d.units = units.clone();
        }
        let name = text
            .filter(|t| !t.trim().is_empty())
            .or_else(|| d.text.clone())
            .or_else(|| self.facts.test_names.get(&test_num).cloned())
            .unwrap_or_else(|| format!("Test {test_num}"));
        let lo = if lo == Limit::Missing { d.lo } else { lo };
        let hi = if hi == Limit::Missing { d.hi } else { hi };
        let units = units
            .or_else(|| d.units.clone())
            .filter(|u| !u.trim().is_empty());
        (name, lo, hi, units)
    }

    fn ptr(&mut self, p: Ptr) {
        let (name, lo, hi, units) = self.statics(p.test_num, p.test_txt, p.lo, p.hi, p.units);
        let outcome = test_outcome(p.test_flg, p.parm_flg);
        let valid = p.test_flg & 0x12 == 0;
        let mut docstring = format!("test_num={}", p.test_num);
        let value = if valid {
            match number(p.result) {
                Some(n) => Some(Value::Number(n)),
                None => {
                    docstring.push_str(&format!(" result={}", p.result));
                    None
                }
            }
        } else {
            None
        };
        let measurement = NewMeasurement {
            name: name.clone(),
            outcome: outcome.to_string(),
            measured_value: value,
            units,
            docstring: Some(docstring),
            validators: limit_validators(lo, hi, p.parm_flg, outcome),
            aggregations: None,
            data_series: None,
        };
        self.add(
            p.head,
            p.site,
            p.test_num,
            &name,
            p.test_flg,
            p.parm_flg,
            measurement,
        );
    }

    fn mpr(&mut self, m: Mpr) {
        let (name, lo, hi, units) = self.statics(m.test_num, m.test_txt, m.lo, m.hi, m.units);
        let outcome = test_outcome(m.test_flg, m.parm_flg);
        let k = m.results.len();
        let (x, x_name): (Vec<Number>, &str) = match (m.start_in, m.incr_in) {
            (Some(start), Some(incr)) => (
                (0..k)
                    .map(|i| number(start + incr * i as f32).unwrap_or_else(|| Number::from(i)))
                    .collect(),
                "input",
            ),
            _ if m.indexes.len() == k && k > 0 => (
                m.indexes.iter().map(|&i| Number::from(i)).collect(),
                "pin_index",
            ),
            _ => ((0..k).map(Number::from).collect(), "index"),
        };
        let y: Vec<Number> = m
            .results
            .iter()
            .map(|&r| number(r).unwrap_or_else(|| Number::from(0)))
            .collect();
        let measurement = NewMeasurement {
            name: name.clone(),
            outcome: outcome.to_string(),
            measured_value: None,
            units: units.clone(),
            docstring: Some(format!("test_num={}", m.test_num)),
            validators: None,
            aggregations: None,
            data_series: Some(vec![
                NewDataSeries {
                    data: x,
                    units: m.units_in.filter(|u| !u.trim().is_empty()),
                    name: Some(x_name.to_string()),
                    description: None,
                    validators: None,
                    aggregations: None,
                },
                NewDataSeries {
                    data: y,
                    units,
                    name: Some(name.clone()),
                    description: None,
                    validators: limit_validators(lo, hi, m.parm_flg, outcome),
                    aggregations: None,
                },
            ]),
        };
        self.add(
            m.head,
            m.site,
            m.test_num,
            &name,
            m.test_flg,
            m.parm_flg,
            measurement,
        );
    }

    fn ftr(&mut self, f: Ftr) {
        let (name, ..) = self.statics(f.test_num, f.test_txt, Limit::None, Limit::None, None);
        let outcome = test_outcome(f.test_flg, 0);
        let value = (f.test_flg & 0x40 == 0).then_some(Value::Bool(f.test_flg & 0x80 == 0));
        let mut docstring = format!("test_num={}", f.test_num);
        if !f.vect_nam.trim().is_empty() {
            docstring.push_str(&format!(" vector={}", f.vect_nam));
        }
        if let Some(n) = f.num_fail {
            docstring.push_str(&format!(" fails={n}"));
        }
        let measurement = NewMeasurement {
            name: name.clone(),
            outcome: outcome.to_string(),
            measured_value: value,
            units: None,
            docstring: Some(docstring),
            validators: Some(vec![NewValidator {
                operator: Some("==".into()),
                expected_value: Some(Value::Bool(true)),
                expression: Some("x == True".into()),
                outcome: Some(outcome.to_string()),
                is_decisive: None,
            }]),
            aggregations: None,
            data_series: None,
        };
        self.add(
            f.head,
            f.site,
            f.test_num,
            &name,
            f.test_flg,
            0,
            measurement,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        head: u8,
        site: u8,
        test_num: u32,
        name: &str,
        test_flg: u8,
        parm_flg: u8,
        mut m: NewMeasurement,
    ) {
        let Some(part) = self.open.get_mut(&(head, site)) else {
            self.orphans += 1;
            return;
        };
        if part.overflow {
            return;
        }
        if part.held >= MAX_PART_RESULTS || self.held >= MAX_HELD_RESULTS {
            // Give the memory back now; the part is skipped at its PRR.
            self.held -= part.held;
            *part = OpenPart {
                overflow: true,
                ..OpenPart::default()
            };
            return;
        }
        part.held += 1;
        self.held += 1;
        let alarms = alarms(test_flg, parm_flg);
        if !alarms.is_empty() && part.logs.len() < MAX_PART_LOGS {
            part.logs.push((
                "WARNING",
                format!("Test {test_num} {name}: {}", alarms.join(", ")),
            ));
        }
        let section = self.section;
        if part.phases.last().map(|p| p.section) != Some(section) {
            let name = if section == 0 {
                non_empty(&self.facts.mir.job_nam)
                    .unwrap_or("Tests")
                    .to_string()
            } else {
                self.section_name.clone()
            };
            part.phases.push(PhaseAcc {
                section,
                name,
                measurements: Vec::new(),
                names: HashMap::new(),
                fail: false,
                error: false,
            });
        }
        let phase = part.phases.last_mut().expect("a phase was just pushed");
        let n = phase.names.entry(m.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            m.name = format!("{} #{n}", m.name);
        }
        phase.fail |= m.outcome == "FAIL";
        phase.error |= test_flg & 0x20 != 0;
        phase.measurements.push(m);
    }

    /// The run of a closed part (IMPORTERS.md §7), or why it cannot be one.
    fn run(&self, prr: &Prr, part: OpenPart) -> (String, Result<NewRun, String>) {
        let facts = self.facts;
        let mir = &facts.mir;
        let wafer = self.wafers.get(&prr.head);
        let has_xy = prr.x != i16::MIN && prr.y != i16::MIN;
        let lot = non_empty(&mir.lot_id).unwrap_or("LOT");
        let serial = match non_empty(&prr.part_id) {
            Some(_) => prr.part_id.clone(),
            None if has_xy => format!(
                "{lot}-{}-X{}Y{}",
                wafer.and_then(|w| non_empty(&w.0)).unwrap_or("W"),
                prr.x,
                prr.y
            ),
            None => format!("{lot}-{}", self.parts),
        };
        let label = format!("Part {} (serial \"{serial}\")", self.parts);

        let start_s = wafer
            .and_then(|w| w.1)
            .or(mir.start_t)
            .or(mir.setup_t)
            .filter(|&s| s > 0);
        let started_at = start_s
            .and_then(|s| Ts::from_micros(s as i64 * 1_000_000))
            .unwrap_or_else(Ts::now);
        let ended_at =
            Ts::from_micros(started_at.micros() + prr.test_t as i64 * 1000).unwrap_or(started_at);

        let phases: Vec<NewPhase> = part
            .phases
            .into_iter()
            .map(|p| NewPhase {
                name: p.name,
                outcome: if p.error {
                    "ERROR"
                } else if p.fail {
                    "FAIL"
                } else {
                    "PASS"
                }
                .into(),
                started_at,
                ended_at,
                retry_count: 0,
                docstring: None,
                sequence_path: None,
                measurements: p.measurements,
            })
            .collect();

        let outcome = if prr.part_flg & 0x04 != 0 {
            "ABORTED"
        } else if prr.part_flg & 0x10 == 0 {
            if prr.part_flg & 0x08 == 0 {
                "PASS"
            } else {
                "FAIL"
            }
        } else {
            let bin_pf = |bins: &HashMap<u16, Bin>, n: u16| match bins.get(&n).and_then(|b| b.pf) {
                Some('P') => Some("PASS"),
                Some('F') => Some("FAIL"),
                _ => None,
            };
            bin_pf(&facts.hard_bins, prr.hard_bin)
                .or_else(|| bin_pf(&facts.soft_bins, prr.soft_bin))
                .unwrap_or_else(|| {
                    if phases.iter().any(|p| p.outcome == "FAIL") {
                        "FAIL"
                    } else if phases.iter().any(|p| p.outcome == "ERROR") {
                        "ERROR"
                    } else {
                        "PASS"
                    }
                })
        };

        let mut logs: Vec<NewLog> = part
            .logs
            .into_iter()
            .map(|(level, message)| NewLog::new(level, started_at, &message, "", 0))
            .collect();
        if let Some(exc) = non_empty(&facts.exc_desc) {
            logs.push(NewLog::new("WARNING", started_at, exc, "", 0));
        }

        let mut run = NewRun::new(Id(uuid::Uuid::nil()), serial, outcome, started_at, ended_at);
        run.part_number = non_empty(&mir.part_typ).map(str::to_string);
        run.revision_number = non_empty(&mir.dsgn_rev).map(str::to_string);
        run.batch_number = self.batch.clone();
        run.operated_by = non_empty(&mir.oper_nam).map(str::to_string);
        run.phases = phases;
        run.logs = logs;
        run.metadata = Some(self.metadata(prr, wafer.map(|w| w.0.as_str())));
        (label, Ok(run))
    }

    fn metadata(&self, prr: &Prr, wafer_id: Option<&str>) -> Metadata {
        let f = self.facts;
        let mir = &f.mir;
        let mut m = Metadata::new();
        let put_text = |m: &mut Metadata, k: &str, v: &str| {
            if let Some(v) = non_empty(v) {
                m.insert(k.into(), Value::String(v.to_string()));
            }
        };
        put_text(&mut m, "lot_id", &mir.lot_id);
        put_text(&mut m, "sublot_id", &mir.sblot_id);
        put_text(&mut m, "wafer_id", wafer_id.unwrap_or(""));
        if prr.x != i16::MIN && prr.y != i16::MIN {
            m.insert("x".into(), prr.x.into());
            m.insert("y".into(), prr.y.into());
        }
        if prr.hard_bin != u16::MAX {
            m.insert("hard_bin".into(), prr.hard_bin.into());
        }
        if prr.soft_bin != u16::MAX {
            m.insert("soft_bin".into(), prr.soft_bin.into());
        }
        let bin_name = |bins: &HashMap<u16, Bin>, n: u16| {
            bins.get(&n).map(|b| b.name.clone()).unwrap_or_default()
        };
        put_text(
            &mut m,
            "hard_bin_name",
            &bin_name(&f.hard_bins, prr.hard_bin),
        );
        put_text(
            &mut m,
            "soft_bin_name",
            &bin_name(&f.soft_bins, prr.soft_bin),
        );
        m.insert("head".into(), prr.head.into());
        m.insert("site".into(), prr.site.into());
        put_text(&mut m, "station", &mir.node_nam);
        put_text(&mut m, "tester_type", &mir.tstr_typ);
        put_text(&mut m, "test_code", &mir.test_cod);
        put_text(&mut m, "test_temp", &mir.tst_temp);
        put_text(&mut m, "mode_code", &mir.mode_cod);
        put_text(&mut m, "retest_code", &mir.rtst_cod);
        put_text(&mut m, "facility", &mir.facil_id);
        put_text(&mut m, "floor", &mir.floor_id);
        put_text(&mut m, "process_id", &mir.proc_id);
        put_text(&mut m, "flow_id", &mir.flow_id);
        put_text(&mut m, "setup_id", &mir.setup_id);
        put_text(&mut m, "exec_type", &mir.exec_typ);
        put_text(&mut m, "exec_version", &mir.exec_ver);
        put_text(&mut m, "package", &mir.pkg_typ);
        put_text(&mut m, "family", &mir.famly_id);
        put_text(&mut m, "handler_id", &f.handler);
        put_text(&mut m, "probe_card_id", &f.card);
        put_text(&mut m, "load_board_id", &f.load);
        put_text(&mut m, "part_text", &prr.part_txt);
        if prr.part_flg & 0x03 != 0 {
            m.insert("retest".into(), Value::Bool(true));
        }
        put_text(&mut m, "lot_disposition", &f.disp_cod);
        put_text(&mut m, "operator", &mir.oper_nam);
        if let Some(n) = mir.stat_num {
            m.insert("station_number".into(), n.into());
        }
        m
    }
}

/// A measurement outcome from `TEST_FLG` / `PARM_FLG` (IMPORTERS.md §7).
fn test_outcome(test_flg: u8, parm_flg: u8) -> &'static str {
    if test_flg & 0x40 != 0 {
        "UNSET"
    } else if parm_flg & 0x20 != 0 || test_flg & 0x80 == 0 {
        "PASS"
    } else {
        "FAIL"
    }
}

fn alarms(test_flg: u8, parm_flg: u8) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (flags, bit, name) in [
        (test_flg, 0x01, "alarm"),
        (test_flg, 0x04, "unreliable result"),
        (test_flg, 0x08, "timeout"),
        (test_flg, 0x20, "aborted"),
        (parm_flg, 0x01, "scale error"),
        (parm_flg, 0x02, "drift error"),
        (parm_flg, 0x04, "oscillation"),
        (parm_flg, 0x08, "above high limit"),
        (parm_flg, 0x10, "below low limit"),
    ] {
        if flags & bit != 0 {
            out.push(name);
        }
    }
    out
}

/// An `R*4` as the decimal it was written from (`3.3`, not `3.299999952316284`);
/// `None` when not finite.
pub fn number(f: f32) -> Option<Number> {
    if !f.is_finite() {
        return None;
    }
    let shortest: f64 = f.to_string().parse().ok()?;
    Number::from_f64(shortest)
}

/// Validators from limits: low `>=` (`PARM_FLG` bit 6) or `>`, high `<=` (bit 7) or `<`;
/// both inclusive → one `range`. Non-finite limits are dropped.
fn limit_validators(
    lo: Limit,
    hi: Limit,
    parm_flg: u8,
    outcome: &str,
) -> Option<Vec<NewValidator>> {
    let value = |l: Limit| match l {
        Limit::Value(v) => number(v),
        _ => None,
    };
    let (lo, hi) = (value(lo), value(hi));
    let lo_inclusive = parm_flg & 0x40 != 0;
    let hi_inclusive = parm_flg & 0x80 != 0;
    let validator = |op: &str, expected: Value, expression: String| NewValidator {
        operator: Some(op.to_string()),
        expected_value: Some(expected),
        expression: Some(expression),
        outcome: Some(outcome.to_string()),
        is_decisive: None,
    };
    let mut out = Vec::new();
    match (lo, hi) {
        (Some(l), Some(h)) if lo_inclusive && hi_inclusive => out.push(validator(
            "range",
            Value::Array(vec![Value::Number(l.clone()), Value::Number(h.clone())]),
            format!("{l} <= x <= {h}"),
        )),
        (lo, hi) => {
            if let Some(l) = lo {
                let op = if lo_inclusive { ">=" } else { ">" };
                out.push(validator(
                    op,
                    Value::Number(l.clone()),
                    format!("x {op} {l}"),
                ));
            }
            if let Some(h) = hi {
                let op = if hi_inclusive { "<=" } else { "<" };
                out.push(validator(
                    op,
                    Value::Number(h.clone()),
                    format!("x {op} {h}"),
                ));
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_written() {
        assert_eq!(number(3.3).unwrap().to_string(), "3.3");
        assert_eq!(number(f32::NAN), None);
        assert_eq!(number(-1.5e-6).unwrap().as_f64(), Some(-1.5e-6));
    }

    #[test]
    fn lot_ids_become_batch_numbers() {
        assert_eq!(batch_number("LOT 7/a").as_deref(), Some("LOT_7_a"));
        assert_eq!(batch_number("  "), None);
        assert_eq!(batch_number(&"x".repeat(120)).unwrap().len(), 100);
    }

    #[test]
    fn outcomes_from_flags() {
        assert_eq!(test_outcome(0, 0), "PASS");
        assert_eq!(test_outcome(0x80, 0), "FAIL");
        assert_eq!(test_outcome(0x80, 0x20), "PASS");
        assert_eq!(test_outcome(0xC0, 0), "UNSET");
    }

    #[test]
    fn limits_become_validators() {
        let v = limit_validators(Limit::Value(1.0), Limit::Value(2.5), 0xC0, "PASS").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].operator.as_deref(), Some("range"));
        assert_eq!(v[0].expression.as_deref(), Some("1.0 <= x <= 2.5"));
        let v = limit_validators(Limit::Value(1.0), Limit::None, 0x00, "FAIL").unwrap();
        assert_eq!(v[0].operator.as_deref(), Some(">"));
        let v = limit_validators(Limit::Value(1.0), Limit::Value(2.0), 0x40, "PASS").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].operator.as_deref(), Some("<"));
        assert!(limit_validators(Limit::None, Limit::Missing, 0xC0, "PASS").is_none());
        assert!(limit_validators(Limit::Value(f32::INFINITY), Limit::None, 0, "PASS").is_none());
    }
}
