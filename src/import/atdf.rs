//! ATDF, the ASCII form of STDF V4 (IMPORTERS.md §8): a streaming line reader producing
//! the same `semi::Rec`s as the STDF reader (flag letters turned into the STDF bits
//! they stand for), so both formats share one mapping and twin files give equal runs.
//!
//! Decisions where the spec is silent:
//! - Unknown record names and empty lines are skipped; a line that is not a record
//!   (`XXX:` first) or a field that should be a number and is not makes the file
//!   invalid, naming the line, record and field.
//! - A last line without its end of line is complete (ATDF has no record lengths): an
//!   ATDF file cannot be told truncated except by parts left open.
//! - Lines are at most 1 MiB.

use std::io::{BufRead, BufReader, Read};

use chrono::NaiveDate;

use super::semi::{self, Bin, Ftr, Limit, Mir, Mpr, Prr, Ptr, ReadError, Rec, Records};
use super::structured::{Emitter, FileInput, Format, ParseError};

pub const FORMAT: Format = Format {
    name: "ATDF",
    parse,
    max_size: super::stdf::MAX_FILE,
};

/// Longest line read.
const MAX_LINE: usize = 1 << 20;

/// Parses an ATDF file into runs (the `ParseFn` of `FORMAT`).
pub fn parse(input: &FileInput, out: &mut Emitter) -> Result<(), ParseError> {
    semi::import(out, || Reader::new(input.open()))
}

pub struct Reader<R: Read> {
    r: BufReader<R>,
    delimiter: char,
    scaled: bool,
    /// Line number of the last line read.
    line: u64,
    /// A line read ahead (to see whether the next one continues a record).
    ahead: Option<(u64, String)>,
}

impl<R: Read> Reader<R> {
    pub fn new(r: R) -> Result<Self, ReadError> {
        let mut reader = Reader {
            r: BufReader::with_capacity(64 << 10, r),
            delimiter: '|',
            scaled: false,
            line: 0,
            ahead: None,
        };
        let not = |why: &str| ReadError::Invalid(format!("Not an ATDF file: {why}"));
        let start = reader.r.fill_buf().map_err(io_error)?;
        if start.starts_with(&[0, 2, 0, 10]) || start.starts_with(&[2, 0, 0, 10]) {
            return Err(not("it looks like STDF; import it with importer STDF"));
        }
        let first = match reader.read_line()? {
            Some((_, l)) => l,
            None => return Err(not("the file is empty")),
        };
        let first = first.trim_start_matches('\u{feff}');
        let Some(rest) = first.strip_prefix("FAR:A") else {
            return Err(not(
                "the first line must be an ASCII FAR record, such as `FAR:A|4|2|U`",
            ));
        };
        let delimiter = rest.chars().next().unwrap_or('|');
        reader.delimiter = delimiter;
        let fields: Vec<&str> = rest.split(delimiter).skip(1).collect();
        let version = fields.first().map(|v| v.trim()).unwrap_or("");
        if version != "4" {
            return Err(ReadError::Invalid(format!(
                "STDF version {} is not supported (V4 only)",
                if version.is_empty() {
                    "(none)"
                } else {
                    version
                }
            )));
        }
        reader.scaled = fields.get(2).map(|s| s.trim()) == Some("S");
        Ok(reader)
    }

    /// The next physical line, without its end of line.
    fn read_line(&mut self) -> Result<Option<(u64, String)>, ReadError> {
        let mut bytes = Vec::new();
        loop {
            let buf = self.r.fill_buf().map_err(io_error)?;
            if buf.is_empty() {
                break;
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if bytes.len() + take > MAX_LINE + 2 {
                return Err(ReadError::Invalid(format!(
                    "Invalid ATDF file: line {} is longer than 1 MiB",
                    self.line + 1
                )));
            }
            bytes.extend_from_slice(&buf[..take]);
            self.r.consume(take);
            if done {
                break;
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        self.line += 1;
        Ok(Some((self.line, semi::text(&bytes))))
    }

    fn next_line(&mut self) -> Result<Option<(u64, String)>, ReadError> {
        match self.ahead.take() {
            Some(l) => Ok(Some(l)),
            None => self.read_line(),
        }
    }
}

fn io_error(e: std::io::Error) -> ReadError {
    tracing::warn!(error = %e, "reading an upload to import failed");
    ReadError::Invalid(
        "The upload changed or was deleted while it was imported: import it again".into(),
    )
}

impl<R: Read> Records for Reader<R> {
    fn next_record(&mut self) -> Result<Option<Rec>, ReadError> {
        let (line_no, mut line) = loop {
            match self.next_line()? {
                None => return Ok(None),
                Some((_, l)) if l.trim().is_empty() => continue,
                Some(l) => break l,
            }
        };
        // Continuation lines start with a space.
        loop {
            match self.read_line()? {
                Some((_, next)) if next.starts_with(' ') => line.push_str(&next[1..]),
                other => {
                    self.ahead = other;
                    break;
                }
            }
        }
        let bad =
            |why: String| ReadError::Invalid(format!("Invalid ATDF file: line {line_no}: {why}"));
        let name = match line.get(..4) {
            Some(n) if n.ends_with(':') && n[..3].chars().all(|c| c.is_ascii_alphabetic()) => {
                n[..3].to_ascii_uppercase()
            }
            _ => {
                let start: String = line.chars().take(20).collect();
                return Err(bad(format!(
                    "expected a record such as `PTR:…`, found `{start}`"
                )));
            }
        };
        let fields: Vec<&str> = line[4..].split(self.delimiter).collect();
        let f = Fields {
            fields,
            name: &name,
            line: line_no,
            scaled: self.scaled,
        };
        f.record().map(Some)
    }

    fn position(&self) -> String {
        format!("line {}", self.line)
    }
}

struct Fields<'a> {
    fields: Vec<&'a str>,
    name: &'a str,
    line: u64,
    scaled: bool,
}

impl Fields<'_> {
    fn s(&self, i: usize) -> String {
        self.fields
            .get(i)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    fn opt(&self, i: usize) -> Option<String> {
        let s = self.s(i);
        (!s.is_empty()).then_some(s)
    }

    fn bad(&self, field: &str, value: &str, what: &str) -> ReadError {
        ReadError::Invalid(format!(
            "Invalid ATDF file: line {} ({}): field {field} is not {what}: `{value}`",
            self.line, self.name
        ))
    }

    fn num<T: std::str::FromStr>(&self, i: usize, field: &str) -> Result<Option<T>, ReadError> {
        match self.opt(i) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| self.bad(field, &v, "a number")),
        }
    }

    fn float(&self, i: usize, field: &str) -> Result<Option<f32>, ReadError> {
        self.num::<f32>(i, field)
    }

    fn floats(&self, i: usize, field: &str) -> Result<Vec<f32>, ReadError> {
        let Some(list) = self.opt(i) else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(|v| {
                v.trim()
                    .parse::<f32>()
                    .map_err(|_| self.bad(field, v, "a list of numbers"))
            })
            .collect()
    }

    fn time(&self, i: usize, field: &str) -> Result<Option<u32>, ReadError> {
        let Some(v) = self.opt(i) else {
            return Ok(None);
        };
        parse_time(&v)
            .map(Some)
            .ok_or_else(|| self.bad(field, &v, "a time (hh:mm:ss dd-MON-yyyy)"))
    }

    /// A value divided by `10^scale` when the file is scaled (`FAR` flag `S`).
    fn unscale(&self, v: f32, scale: Option<i32>) -> f32 {
        match scale {
            Some(s) if self.scaled && s != 0 => (v as f64 / 10f64.powi(s)) as f32,
            _ => v,
        }
    }

    fn record(&self) -> Result<Rec, ReadError> {
        Ok(match self.name {
            "MIR" => Rec::Mir(Box::new(Mir {
                lot_id: self.s(0),
                part_typ: self.s(1),
                job_nam: self.s(2),
                node_nam: self.s(3),
                tstr_typ: self.s(4),
                setup_t: self.time(5, "SETUP_T")?,
                start_t: self.time(6, "START_T")?,
                oper_nam: self.s(7),
                mode_cod: self.s(8),
                stat_num: self.num(9, "STAT_NUM")?,
                sblot_id: self.s(10),
                test_cod: self.s(11),
                rtst_cod: self.s(12),
                job_rev: self.s(13),
                exec_typ: self.s(14),
                exec_ver: self.s(15),
                tst_temp: self.s(19),
                pkg_typ: self.s(22),
                famly_id: self.s(23),
                facil_id: self.s(25),
                floor_id: self.s(26),
                proc_id: self.s(27),
                flow_id: self.s(31),
                setup_id: self.s(32),
                dsgn_rev: self.s(33),
            })),
            "MRR" => Rec::Mrr {
                disp_cod: self.s(1),
                exc_desc: self.s(3),
            },
            "HBR" | "SBR" => {
                let bin = Bin {
                    num: self.num(2, "BIN_NUM")?.unwrap_or(0),
                    pf: match self.s(4).as_str() {
                        "P" => Some('P'),
                        "F" => Some('F'),
                        _ => None,
                    },
                    name: self.s(5),
                };
                if self.name == "HBR" {
                    Rec::Hbr(bin)
                } else {
                    Rec::Sbr(bin)
                }
            }
            "SDR" => Rec::Sdr {
                handler: self.s(4),
                card: self.s(6),
                load: self.s(8),
            },
            "WIR" => Rec::Wir {
                head: self.num(0, "HEAD_NUM")?.unwrap_or(1),
                start_t: self.time(1, "START_T")?,
                wafer_id: self.s(3),
            },
            "WRR" => Rec::Wrr {
                head: self.num(0, "HEAD_NUM")?.unwrap_or(1),
            },
            "PIR" => Rec::Pir {
                head: self.num(0, "HEAD_NUM")?.unwrap_or(1),
                site: self.num(1, "SITE_NUM")?.unwrap_or(1),
            },
            "PRR" => {
                let mut part_flg = match self.s(4).as_str() {
                    "P" => 0,
                    "F" => 0x08,
                    _ => 0x10,
                };
                match self.s(9).as_str() {
                    "I" => part_flg |= 0x01,
                    "C" => part_flg |= 0x02,
                    _ => {}
                }
                if self.s(10) == "Y" {
                    part_flg |= 0x04;
                }
                Rec::Prr(Prr {
                    head: self.num(0, "HEAD_NUM")?.unwrap_or(1),
                    site: self.num(1, "SITE_NUM")?.unwrap_or(1),
                    part_id: self.s(2),
                    part_flg,
                    hard_bin: self.num(5, "HARD_BIN")?.unwrap_or(u16::MAX),
                    soft_bin: self.num(6, "SOFT_BIN")?.unwrap_or(u16::MAX),
                    x: self.num(7, "X_COORD")?.unwrap_or(i16::MIN),
                    y: self.num(8, "Y_COORD")?.unwrap_or(i16::MIN),
                    test_t: self.num(11, "TEST_T")?.unwrap_or(0),
                    part_txt: self.s(12),
                })
            }
            "TSR" => Rec::Tsr {
                test_num: self.num(2, "TEST_NUM")?.unwrap_or(0),
                name: self.s(3),
            },
            "PTR" => {
                let (test_flg, mut parm_flg) = self.flags(4, 5);
                parm_flg |= self.compare(8);
                let res_scal = self.num(17, "RES_SCAL")?;
                let llm_scal = self.num(18, "LLM_SCAL")?;
                let hlm_scal = self.num(19, "HLM_SCAL")?;
                let result = self.float(3, "RESULT")?;
                let lo = self.float(10, "LO_LIMIT")?;
                let hi = self.float(11, "HI_LIMIT")?;
                Rec::Ptr(Ptr {
                    test_num: self.num(0, "TEST_NUM")?.unwrap_or(0),
                    head: self.num(1, "HEAD_NUM")?.unwrap_or(1),
                    site: self.num(2, "SITE_NUM")?.unwrap_or(1),
                    // No result: not a valid result.
                    test_flg: if result.is_none() {
                        test_flg | 0x02
                    } else {
                        test_flg
                    },
                    parm_flg,
                    result: result.map_or(f32::NAN, |r| self.unscale(r, res_scal)),
                    test_txt: self.opt(6),
                    lo: lo.map_or(Limit::Missing, |v| Limit::Value(self.unscale(v, llm_scal))),
                    hi: hi.map_or(Limit::Missing, |v| Limit::Value(self.unscale(v, hlm_scal))),
                    units: self.opt(9),
                })
            }
            "MPR" => {
                let (test_flg, mut parm_flg) = self.flags(5, 6);
                parm_flg |= self.compare(9);
                let res_scal = self.num(24, "RES_SCAL")?;
                let llm_scal = self.num(25, "LLM_SCAL")?;
                let hlm_scal = self.num(26, "HLM_SCAL")?;
                let lo = self.float(11, "LO_LIMIT")?;
                let hi = self.float(12, "HI_LIMIT")?;
                let indexes = match self.opt(16) {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(|v| {
                            v.trim()
                                .parse::<u16>()
                                .map_err(|_| self.bad("RTN_INDX", v, "a list of numbers"))
                        })
                        .collect::<Result<_, _>>()?,
                };
                Rec::Mpr(Mpr {
                    test_num: self.num(0, "TEST_NUM")?.unwrap_or(0),
                    head: self.num(1, "HEAD_NUM")?.unwrap_or(1),
                    site: self.num(2, "SITE_NUM")?.unwrap_or(1),
                    test_flg,
                    parm_flg,
                    results: self
                        .floats(4, "RTN_RSLT")?
                        .into_iter()
                        .map(|r| self.unscale(r, res_scal))
                        .collect(),
                    test_txt: self.opt(7),
                    lo: lo.map_or(Limit::Missing, |v| Limit::Value(self.unscale(v, llm_scal))),
                    hi: hi.map_or(Limit::Missing, |v| Limit::Value(self.unscale(v, hlm_scal))),
                    start_in: self.float(13, "START_IN")?,
                    incr_in: self.float(14, "INCR_IN")?,
                    indexes,
                    units: self.opt(10),
                    units_in: self.opt(15),
                })
            }
            "FTR" => {
                let (test_flg, _) = self.flags(3, 4);
                Rec::Ftr(Ftr {
                    test_num: self.num(0, "TEST_NUM")?.unwrap_or(0),
                    head: self.num(1, "HEAD_NUM")?.unwrap_or(1),
                    site: self.num(2, "SITE_NUM")?.unwrap_or(1),
                    test_flg,
                    vect_nam: self.s(5),
                    num_fail: self.num(10, "NUM_FAIL")?,
                    test_txt: self.opt(20),
                })
            }
            "BPS" => Rec::Bps(self.s(0)),
            "EPS" => Rec::Eps,
            "DTR" => Rec::Dtr(self.fields.join("|").trim().to_string()),
            _ => Rec::Other,
        })
    }

    /// `TEST_FLG` / `PARM_FLG` bits from the Pass/Fail letter (field `pf`) and the alarm
    /// letters (field `alarms`).
    fn flags(&self, pf: usize, alarms: usize) -> (u8, u8) {
        let (mut test, mut parm) = match self.s(pf).as_str() {
            "P" => (0, 0),
            "A" => (0, 0x20),
            "F" => (0x80, 0),
            _ => (0x40, 0),
        };
        for c in self.s(alarms).chars() {
            match c.to_ascii_uppercase() {
                'A' => test |= 0x01,
                'U' => test |= 0x04,
                'T' => test |= 0x08,
                'N' => test |= 0x10,
                'X' => test |= 0x20,
                'S' => parm |= 0x01,
                'D' => parm |= 0x02,
                'O' => parm |= 0x04,
                'H' => parm |= 0x08,
                'L' => parm |= 0x10,
                _ => {}
            }
        }
        (test, parm)
    }

    /// `PARM_FLG` bits 6/7 from the limit-compare letters (`L` low, `H` high inclusive).
    fn compare(&self, i: usize) -> u8 {
        let s = self.s(i).to_ascii_uppercase();
        (if s.contains('L') { 0x40 } else { 0 }) | (if s.contains('H') { 0x80 } else { 0 })
    }
}

/// `hh:mm:ss dd-MON-yyyy` (1- or 2-digit parts, month name in any case) as seconds since
/// 1970, read as UTC.
pub fn parse_time(s: &str) -> Option<u32> {
    let (time, date) = s.trim().split_once(' ')?;
    let mut t = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    let mut d = date.trim().split('-');
    let day: u32 = d.next()?.parse().ok()?;
    let month = d.next()?.to_ascii_uppercase();
    let year: i32 = d.next()?.parse().ok()?;
    let month = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ]
    .iter()
    .position(|m| *m == month)? as u32
        + 1;
    let dt = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, m, sec)?;
    u32::try_from(dt.and_utc().timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1:02:03 4-jan-2024"), Some(1704330123));
        assert_eq!(parse_time("01:02:03 04-JAN-2024"), Some(1704330123));
        assert_eq!(parse_time("25:00:00 04-JAN-2024"), None);
        assert_eq!(parse_time("nonsense"), None);
    }

    #[test]
    fn records_and_continuations() {
        let text = "FAR:A|4|2|U\r\nMIR:LOT1|PN|JOB\n PART|NODE\nPTR:7|1|1|1.5|P||Vdd\n";
        let mut r = Reader::new(text.as_bytes()).unwrap();
        match r.next_record().unwrap() {
            Some(Rec::Mir(m)) => {
                assert_eq!(m.job_nam, "JOBPART");
                assert_eq!(m.node_nam, "NODE");
            }
            other => panic!("{other:?}"),
        }
        match r.next_record().unwrap() {
            Some(Rec::Ptr(p)) => {
                assert_eq!(p.test_num, 7);
                assert_eq!(p.result, 1.5);
                assert_eq!(p.test_txt.as_deref(), Some("Vdd"));
            }
            other => panic!("{other:?}"),
        }
        assert!(r.next_record().unwrap().is_none());
        let e = Reader::new(&b"PTR:1"[..]).err().unwrap();
        assert!(matches!(e, ReadError::Invalid(m) if m.starts_with("Not an ATDF file")));
        let mut r = Reader::new(&b"FAR:A|4|2|U\nPTR:x\n"[..]).unwrap();
        let e = r.next_record().unwrap_err();
        assert!(
            matches!(e, ReadError::Invalid(m) if m.contains("line 2") && m.contains("TEST_NUM"))
        );
    }
}
