//! STDF V4 (and V4-2007) binary datalogs (IMPORTERS.md §7): a streaming record reader
//! producing `semi::Rec`s; the mapping to runs is `semi`'s.
//!
//! The reader is our own rather than a crate's: it reads from any `std::io::Read` (the
//! upload streamed from storage chunk by chunk, never a file on disk), names the record
//! index and byte offset in every error, treats a record that stops early as "missing
//! trailing fields" the way the format allows, and never panics on hostile bytes — the
//! few record layouts the mapping needs are short.
//!
//! Errors: a file that does not start with a FAR record is `Not an STDF file`; a FAR
//! with another version or CPU type is refused by version; a field that overruns its
//! record (a text length or an array count pointing past the record's end) makes the
//! file `Invalid`; a file ending inside a record is truncated (see `semi`).

use std::io::Read;

use super::semi::{self, Bin, Ftr, Limit, Mir, Mpr, Prr, Ptr, ReadError, Rec, Records};
use super::structured::{Emitter, FileInput, Format, ParseError};

/// Largest STDF file imported (it is streamed, never held in memory).
pub const MAX_FILE: u64 = 4 << 30;

pub const FORMAT: Format = Format {
    name: "STDF",
    parse,
    max_size: MAX_FILE,
};

/// Parses an STDF file into runs (the `ParseFn` of `FORMAT`).
pub fn parse(input: &FileInput, out: &mut Emitter) -> Result<(), ParseError> {
    semi::import(out, || Reader::new(input.open()))
}

/// Reads STDF records from `r`.
pub struct Reader<R: Read> {
    r: R,
    big_endian: bool,
    /// Byte offset of the next record.
    offset: u64,
    /// Records read so far (the next one's 1-based index is `index + 1`).
    index: u64,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    /// Checks the FAR record that must open the file and learns the byte order.
    pub fn new(mut r: R) -> Result<Self, ReadError> {
        let mut head = [0u8; 6];
        let n = fill(&mut r, &mut head)?;
        let head = &head[..n];
        let not = |why: String| ReadError::Invalid(format!("Not an STDF file: {why}"));
        if head.is_empty() {
            return Err(not("the file is empty".into()));
        }
        if head.starts_with(b"FAR:") {
            return Err(not(
                "it looks like ATDF; import it with importer ATDF".into()
            ));
        }
        if head.starts_with(&[0x1f, 0x8b]) {
            return Err(not(
                "it is gzip-compressed; decompress it and upload the .stdf file".into(),
            ));
        }
        let big_endian = match head {
            [0, 2, 0, 10, ..] => true,
            [2, 0, 0, 10, ..] => false,
            _ => {
                let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02X}")).collect();
                return Err(not(format!(
                    "it does not start with a FAR record (expected bytes 00 02 00 0A or \
                     02 00 00 0A, found {})",
                    hex.join(" ")
                )));
            }
        };
        if n < 6 {
            return Err(ReadError::Invalid(
                "Invalid STDF file: the file ends inside its FAR record (record 1 at byte 0)"
                    .into(),
            ));
        }
        let (cpu, version) = (head[4], head[5]);
        if version != 4 {
            return Err(ReadError::Invalid(format!(
                "STDF version {version} is not supported (V4 only)"
            )));
        }
        if cpu == 0 {
            return Err(ReadError::Invalid(
                "STDF files of CPU type 0 (VAX/PDP-11 floating point) are not supported".into(),
            ));
        }
        Ok(Reader {
            r,
            big_endian,
            offset: 6,
            index: 1,
            buf: Vec::new(),
        })
    }

    fn where_(&self, typ: u8, sub: u8) -> String {
        format!(
            "record {} ({} {typ},{sub}) at byte {}",
            self.index + 1,
            record_name(typ, sub),
            self.offset
        )
    }
}

impl<R: Read> Records for Reader<R> {
    fn next_record(&mut self) -> Result<Option<Rec>, ReadError> {
        let mut header = [0u8; 4];
        let n = fill(&mut self.r, &mut header)?;
        if n == 0 {
            return Ok(None);
        }
        if n < 4 {
            return Err(ReadError::Truncated(format!(
                "record {} at byte {}: the file ends inside the record header",
                self.index + 1,
                self.offset
            )));
        }
        let len = if self.big_endian {
            u16::from_be_bytes([header[0], header[1]])
        } else {
            u16::from_le_bytes([header[0], header[1]])
        } as usize;
        let (typ, sub) = (header[2], header[3]);
        self.buf.resize(len, 0);
        let got = fill(&mut self.r, &mut self.buf)?;
        if got < len {
            return Err(ReadError::Truncated(format!(
                "{}: the file ends after {got} of its {len} bytes",
                self.where_(typ, sub)
            )));
        }
        let mut c = Cursor {
            data: &self.buf,
            pos: 0,
            be: self.big_endian,
        };
        let rec = decode(typ, sub, &mut c).map_err(|field| {
            ReadError::Invalid(format!(
                "Invalid STDF file: {}: field {field} overruns the record ({len} bytes)",
                self.where_(typ, sub)
            ))
        })?;
        self.index += 1;
        self.offset += 4 + len as u64;
        Ok(Some(rec))
    }

    fn position(&self) -> String {
        format!("record {} at byte {}", self.index, self.offset)
    }
}

/// Reads until `buf` is full or the input ends; the count read.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading an upload to import failed");
                return Err(ReadError::Invalid(
                    "The upload changed or was deleted while it was imported: import it again"
                        .into(),
                ));
            }
        }
    }
    Ok(n)
}

pub fn record_name(typ: u8, sub: u8) -> &'static str {
    match (typ, sub) {
        (0, 10) => "FAR",
        (0, 20) => "ATR",
        (0, 30) => "VUR",
        (1, 10) => "MIR",
        (1, 20) => "MRR",
        (1, 30) => "PCR",
        (1, 40) => "HBR",
        (1, 50) => "SBR",
        (1, 60) => "PMR",
        (1, 62) => "PGR",
        (1, 63) => "PLR",
        (1, 70) => "RDR",
        (1, 80) => "SDR",
        (1, 90) => "PSR",
        (1, 91) => "NMR",
        (1, 92) => "CNR",
        (1, 93) => "SSR",
        (1, 94) => "CDR",
        (2, 10) => "WIR",
        (2, 20) => "WRR",
        (2, 30) => "WCR",
        (5, 10) => "PIR",
        (5, 20) => "PRR",
        (10, 30) => "TSR",
        (15, 10) => "PTR",
        (15, 15) => "MPR",
        (15, 20) => "FTR",
        (15, 30) => "STR",
        (20, 10) => "BPS",
        (20, 20) => "EPS",
        (50, 10) => "GDR",
        (50, 30) => "DTR",
        _ => "unknown record",
    }
}

/// A field that does not fit in its record: its name.
type Overrun = &'static str;

/// Fields of one record. A field past the record's end is missing (`None`, empty);
/// a length or count pointing past the end is an `Overrun`.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    be: bool,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.data.get(self.pos..self.pos + N)?;
        self.pos += N;
        bytes.try_into().ok()
    }

    fn u1(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    fn u2(&mut self) -> Option<u16> {
        let b = self.take::<2>()?;
        Some(if self.be {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn i2(&mut self) -> Option<i16> {
        self.u2().map(|v| v as i16)
    }

    fn u4(&mut self) -> Option<u32> {
        let b = self.take::<4>()?;
        Some(if self.be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn r4(&mut self) -> Option<f32> {
        self.u4().map(f32::from_bits)
    }

    fn c1(&mut self) -> String {
        match self.u1() {
            Some(b) if b != b' ' && b != 0 => semi::text(&[b]),
            _ => String::new(),
        }
    }

    /// Skips `n` bytes; an overrun when fewer are left.
    fn skip(&mut self, n: usize, field: Overrun) -> Result<(), Overrun> {
        if self.pos >= self.data.len() {
            return Ok(());
        }
        if self.pos + n > self.data.len() {
            return Err(field);
        }
        self.pos += n;
        Ok(())
    }

    /// `C*n`: `None` when the record ended before it.
    fn cn_opt(&mut self, field: Overrun) -> Result<Option<String>, Overrun> {
        let Some(len) = self.u1() else {
            return Ok(None);
        };
        let len = len as usize;
        let bytes = self.data.get(self.pos..self.pos + len).ok_or(field)?;
        self.pos += len;
        Ok(Some(semi::text(bytes)))
    }

    fn cn(&mut self, field: Overrun) -> Result<String, Overrun> {
        Ok(self.cn_opt(field)?.unwrap_or_default())
    }

    /// `D*n` (skipped): a 2-byte bit count, then the bits.
    fn dn(&mut self, field: Overrun) -> Result<(), Overrun> {
        match self.u2() {
            Some(bits) => self.skip((bits as usize).div_ceil(8), field),
            None => Ok(()),
        }
    }

    fn r4s(&mut self, k: usize, field: Overrun) -> Result<Vec<f32>, Overrun> {
        if self.pos >= self.data.len() {
            return Ok(Vec::new());
        }
        if self.pos + 4 * k > self.data.len() {
            return Err(field);
        }
        Ok((0..k).filter_map(|_| self.r4()).collect())
    }

    fn u2s(&mut self, k: usize, field: Overrun) -> Result<Vec<u16>, Overrun> {
        if self.pos >= self.data.len() {
            return Ok(Vec::new());
        }
        if self.pos + 2 * k > self.data.len() {
            return Err(field);
        }
        Ok((0..k).filter_map(|_| self.u2()).collect())
    }
}

fn decode(typ: u8, sub: u8, c: &mut Cursor) -> Result<Rec, Overrun> {
    Ok(match (typ, sub) {
        (1, 10) => Rec::Mir(Box::new(mir(c)?)),
        (1, 20) => {
            c.u4();
            let disp_cod = c.c1();
            c.cn("USR_DESC")?;
            let exc_desc = c.cn("EXC_DESC")?;
            Rec::Mrr { disp_cod, exc_desc }
        }
        (1, 40) | (1, 50) => {
            c.u1();
            c.u1();
            let num = c.u2().unwrap_or(0);
            c.u4();
            let pf = match c.c1().as_str() {
                "P" => Some('P'),
                "F" => Some('F'),
                _ => None,
            };
            let name = c.cn(if sub == 40 { "HBIN_NAM" } else { "SBIN_NAM" })?;
            let bin = Bin { num, pf, name };
            if sub == 40 {
                Rec::Hbr(bin)
            } else {
                Rec::Sbr(bin)
            }
        }
        (1, 80) => {
            c.u1();
            c.u1();
            let count = c.u1().unwrap_or(0);
            c.skip(count as usize, "SITE_NUM")?;
            c.cn("HAND_TYP")?;
            let handler = c.cn("HAND_ID")?;
            c.cn("CARD_TYP")?;
            let card = c.cn("CARD_ID")?;
            c.cn("LOAD_TYP")?;
            let load = c.cn("LOAD_ID")?;
            Rec::Sdr {
                handler,
                card,
                load,
            }
        }
        (2, 10) => {
            let head = c.u1().unwrap_or(1);
            c.u1();
            let start_t = c.u4();
            let wafer_id = c.cn("WAFER_ID")?;
            Rec::Wir {
                head,
                start_t,
                wafer_id,
            }
        }
        (2, 20) => Rec::Wrr {
            head: c.u1().unwrap_or(1),
        },
        (5, 10) => Rec::Pir {
            head: c.u1().unwrap_or(1),
            site: c.u1().unwrap_or(1),
        },
        (5, 20) => Rec::Prr(Prr {
            head: c.u1().unwrap_or(1),
            site: c.u1().unwrap_or(1),
            part_flg: c.u1().unwrap_or(0x10),
            hard_bin: {
                c.u2();
                c.u2().unwrap_or(u16::MAX)
            },
            soft_bin: c.u2().unwrap_or(u16::MAX),
            x: c.i2().unwrap_or(i16::MIN),
            y: c.i2().unwrap_or(i16::MIN),
            test_t: c.u4().unwrap_or(0),
            part_id: c.cn("PART_ID")?,
            part_txt: c.cn("PART_TXT")?,
        }),
        (10, 30) => {
            c.u1();
            c.u1();
            c.u1();
            let test_num = c.u4().unwrap_or(0);
            c.u4();
            c.u4();
            c.u4();
            let name = c.cn("TEST_NAM")?;
            Rec::Tsr { test_num, name }
        }
        (15, 10) => Rec::Ptr(ptr(c)?),
        (15, 15) => Rec::Mpr(mpr(c)?),
        (15, 20) => Rec::Ftr(ftr(c)?),
        (15, 30) => {
            c.u1();
            let test_num = c.u4().unwrap_or(0);
            let head = c.u1().unwrap_or(1);
            let site = c.u1().unwrap_or(1);
            c.u2();
            let test_flg = c.u1().unwrap_or(0x40);
            c.cn("LOG_TYP")?;
            let test_txt = c.cn_opt("TEST_TXT")?;
            Rec::Ftr(Ftr {
                test_num,
                head,
                site,
                test_flg,
                test_txt,
                vect_nam: String::new(),
                num_fail: None,
            })
        }
        (20, 10) => Rec::Bps(c.cn("SEQ_NAME")?),
        (20, 20) => Rec::Eps,
        (50, 30) => Rec::Dtr(c.cn("TEXT_DAT")?),
        _ => Rec::Other,
    })
}

fn mir(c: &mut Cursor) -> Result<Mir, Overrun> {
    let setup_t = c.u4();
    let start_t = c.u4();
    let stat_num = c.u1();
    let mode_cod = c.c1();
    let rtst_cod = c.c1();
    c.c1();
    c.u2();
    c.c1();
    let mut m = Mir {
        setup_t,
        start_t,
        stat_num,
        mode_cod,
        rtst_cod,
        ..Mir::default()
    };
    m.lot_id = c.cn("LOT_ID")?;
    m.part_typ = c.cn("PART_TYP")?;
    m.node_nam = c.cn("NODE_NAM")?;
    m.tstr_typ = c.cn("TSTR_TYP")?;
    m.job_nam = c.cn("JOB_NAM")?;
    m.job_rev = c.cn("JOB_REV")?;
    m.sblot_id = c.cn("SBLOT_ID")?;
    m.oper_nam = c.cn("OPER_NAM")?;
    m.exec_typ = c.cn("EXEC_TYP")?;
    m.exec_ver = c.cn("EXEC_VER")?;
    m.test_cod = c.cn("TEST_COD")?;
    m.tst_temp = c.cn("TST_TEMP")?;
    c.cn("USER_TXT")?;
    c.cn("AUX_FILE")?;
    m.pkg_typ = c.cn("PKG_TYP")?;
    m.famly_id = c.cn("FAMLY_ID")?;
    c.cn("DATE_COD")?;
    m.facil_id = c.cn("FACIL_ID")?;
    m.floor_id = c.cn("FLOOR_ID")?;
    m.proc_id = c.cn("PROC_ID")?;
    c.cn("OPER_FRQ")?;
    c.cn("SPEC_NAM")?;
    c.cn("SPEC_VER")?;
    m.flow_id = c.cn("FLOW_ID")?;
    m.setup_id = c.cn("SETUP_ID")?;
    m.dsgn_rev = c.cn("DSGN_REV")?;
    Ok(m)
}

/// `LO_LIMIT` / `HI_LIMIT` under `OPT_FLAG`: bit 6/7 no limit, bit 4/5 this record's
/// value invalid (use the test's default); no `OPT_FLAG` at all: the default.
fn limits(opt: Option<u8>, lo: Option<f32>, hi: Option<f32>) -> (Limit, Limit) {
    let Some(opt) = opt else {
        return (Limit::Missing, Limit::Missing);
    };
    let one = |none_bit: u8, invalid_bit: u8, v: Option<f32>| {
        if opt & none_bit != 0 {
            Limit::None
        } else if opt & invalid_bit != 0 {
            Limit::Missing
        } else {
            v.map(Limit::Value).unwrap_or(Limit::Missing)
        }
    };
    (one(0x40, 0x10, lo), one(0x80, 0x20, hi))
}

fn ptr(c: &mut Cursor) -> Result<Ptr, Overrun> {
    let test_num = c.u4().unwrap_or(0);
    let head = c.u1().unwrap_or(1);
    let site = c.u1().unwrap_or(1);
    let test_flg = c.u1().unwrap_or(0x40);
    let parm_flg = c.u1().unwrap_or(0);
    let result = c.r4().unwrap_or(f32::NAN);
    let test_txt = c.cn_opt("TEST_TXT")?;
    c.cn("ALARM_ID")?;
    let opt = c.u1();
    c.u1();
    c.u1();
    c.u1();
    let lo = c.r4();
    let hi = c.r4();
    let units = c.cn_opt("UNITS")?;
    let (lo, hi) = limits(opt, lo, hi);
    Ok(Ptr {
        test_num,
        head,
        site,
        test_flg,
        parm_flg,
        // No RESULT at all: not a valid result.
        result,
        test_txt,
        lo,
        hi,
        units,
    })
}

fn mpr(c: &mut Cursor) -> Result<Mpr, Overrun> {
    let test_num = c.u4().unwrap_or(0);
    let head = c.u1().unwrap_or(1);
    let site = c.u1().unwrap_or(1);
    let test_flg = c.u1().unwrap_or(0x40);
    let parm_flg = c.u1().unwrap_or(0);
    let j = c.u2().unwrap_or(0) as usize;
    let k = c.u2().unwrap_or(0) as usize;
    c.skip(j.div_ceil(2), "RTN_STAT")?;
    let results = c.r4s(k, "RTN_RSLT")?;
    let test_txt = c.cn_opt("TEST_TXT")?;
    c.cn("ALARM_ID")?;
    let opt = c.u1();
    c.u1();
    c.u1();
    c.u1();
    let lo = c.r4();
    let hi = c.r4();
    let start_in = c.r4();
    let incr_in = c.r4();
    let indexes = c.u2s(j, "RTN_INDX")?;
    let units = c.cn_opt("UNITS")?;
    let units_in = c.cn_opt("UNITS_IN")?;
    let (lo, hi) = limits(opt, lo, hi);
    // OPT_FLAG bit 1: START_IN and INCR_IN are invalid.
    let inputs_valid = opt.is_some_and(|o| o & 0x02 == 0);
    Ok(Mpr {
        test_num,
        head,
        site,
        test_flg,
        parm_flg,
        results,
        test_txt,
        lo,
        hi,
        start_in: start_in.filter(|_| inputs_valid),
        incr_in: incr_in.filter(|_| inputs_valid),
        indexes,
        units,
        units_in,
    })
}

fn ftr(c: &mut Cursor) -> Result<Ftr, Overrun> {
    let test_num = c.u4().unwrap_or(0);
    let head = c.u1().unwrap_or(1);
    let site = c.u1().unwrap_or(1);
    let test_flg = c.u1().unwrap_or(0x40);
    let opt = c.u1();
    c.u4();
    c.u4();
    c.u4();
    let num_fail = c.u4().filter(|_| opt.is_some_and(|o| o & 0x08 == 0));
    c.u4();
    c.u4();
    c.u2();
    let j = c.u2().unwrap_or(0) as usize;
    let k = c.u2().unwrap_or(0) as usize;
    c.skip(2 * j, "RTN_INDX")?;
    c.skip(j.div_ceil(2), "RTN_STAT")?;
    c.skip(2 * k, "PGM_INDX")?;
    c.skip(k.div_ceil(2), "PGM_STAT")?;
    c.dn("FAIL_PIN")?;
    let vect_nam = c.cn("VECT_NAM")?;
    c.cn("TIME_SET")?;
    c.cn("OP_CODE")?;
    let test_txt = c.cn_opt("TEST_TXT")?;
    Ok(Ftr {
        test_num,
        head,
        site,
        test_flg,
        test_txt,
        vect_nam,
        num_fail,
    })
}
