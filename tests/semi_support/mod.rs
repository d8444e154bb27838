//! A small STDF V4 writer (either byte order) and its ATDF twin, to build datalogs
//! inside tests, plus helpers to import them and read the runs back.
#![allow(dead_code)]

use serde_json::{json, Value};

use crate::common::*;

/// One test result of a part.
#[derive(Clone, Debug)]
pub enum Test {
    /// PTR. `limits`: `(OPT_FLAG, LO_LIMIT, HI_LIMIT, UNITS)`; `None` writes a short
    /// record that stops after `TEST_TXT` (statics inherited from the test's first PTR).
    Ptr {
        num: u32,
        test_flg: u8,
        parm_flg: u8,
        result: f32,
        text: Option<String>,
        limits: Option<(u8, f32, f32, String)>,
    },
    /// FTR with its Pass/Fail flags.
    Ftr {
        num: u32,
        test_flg: u8,
        text: String,
    },
    /// MPR: results, `(START_IN, INCR_IN)`, units.
    Mpr {
        num: u32,
        test_flg: u8,
        results: Vec<f32>,
        inputs: Option<(f32, f32)>,
        text: String,
        units: String,
    },
}

pub fn ptr(num: u32, result: f32, text: &str, lo: f32, hi: f32, units: &str) -> Test {
    Test::Ptr {
        num,
        test_flg: 0,
        parm_flg: 0xC0,
        result,
        text: Some(text.into()),
        limits: Some((0x00, lo, hi, units.into())),
    }
}

/// A part: `(site, PART_FLG, HARD_BIN, SOFT_BIN, X, Y, TEST_T, PART_ID, tests)`.
#[derive(Clone, Debug)]
pub struct Part {
    pub site: u8,
    pub flg: u8,
    pub hard_bin: u16,
    pub soft_bin: u16,
    pub x: i16,
    pub y: i16,
    pub test_t: u32,
    pub id: String,
    pub tests: Vec<Test>,
}

impl Part {
    pub fn new(id: &str, flg: u8, tests: Vec<Test>) -> Part {
        Part {
            site: 1,
            flg,
            hard_bin: 1,
            soft_bin: 1,
            x: -32768,
            y: -32768,
            test_t: 1500,
            id: id.into(),
            tests,
        }
    }
}

/// What the MIR says.
#[derive(Clone, Debug)]
pub struct Lot {
    pub lot: String,
    pub part_typ: String,
    pub job: String,
    pub job_rev: String,
    pub node: String,
    pub oper: String,
    pub start_t: u32,
}

impl Lot {
    pub fn new(job: &str) -> Lot {
        Lot {
            lot: "LOT42".into(),
            part_typ: "PN-SEMI".into(),
            job: job.into(),
            job_rev: "1.2".into(),
            node: "tester-7".into(),
            oper: "alice".into(),
            start_t: 1_704_164_645,
        }
    }
}

struct Rec {
    be: bool,
    v: Vec<u8>,
}

impl Rec {
    fn u1(mut self, x: u8) -> Self {
        self.v.push(x);
        self
    }
    fn u2(mut self, x: u16) -> Self {
        self.v.extend(if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        });
        self
    }
    fn i2(self, x: i16) -> Self {
        self.u2(x as u16)
    }
    fn u4(mut self, x: u32) -> Self {
        self.v.extend(if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        });
        self
    }
    fn r4(self, x: f32) -> Self {
        self.u4(x.to_bits())
    }
    fn cn(mut self, s: &str) -> Self {
        self.v.push(s.len() as u8);
        self.v.extend(s.as_bytes());
        self
    }
}

/// An STDF file being written.
pub struct Stdf {
    be: bool,
    pub out: Vec<u8>,
}

impl Stdf {
    pub fn new(big_endian: bool) -> Stdf {
        let mut s = Stdf {
            be: big_endian,
            out: Vec::new(),
        };
        let cpu = if big_endian { 1 } else { 2 };
        s.put(0, 10, |r| r.u1(cpu).u1(4));
        s
    }

    fn put(&mut self, typ: u8, sub: u8, f: impl FnOnce(Rec) -> Rec) {
        let body = f(Rec {
            be: self.be,
            v: Vec::new(),
        })
        .v;
        let len = body.len() as u16;
        self.out.extend(if self.be {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        });
        self.out.push(typ);
        self.out.push(sub);
        self.out.extend(body);
    }

    pub fn mir(&mut self, l: &Lot) {
        self.put(1, 10, |r| {
            let r = r
                .u4(l.start_t - 60)
                .u4(l.start_t)
                .u1(3)
                .u1(b'P')
                .u1(b' ')
                .u1(b' ')
                .u2(0)
                .u1(b' ')
                .cn(&l.lot)
                .cn(&l.part_typ)
                .cn(&l.node)
                .cn("93K")
                .cn(&l.job)
                .cn(&l.job_rev)
                .cn("S1")
                .cn(&l.oper);
            // EXEC_TYP … SETUP_ID empty, then DSGN_REV.
            let mut r = r;
            for _ in 0..17 {
                r = r.cn("");
            }
            r.cn("REV-B")
        });
    }

    pub fn pir(&mut self, site: u8) {
        self.put(5, 10, |r| r.u1(1).u1(site));
    }

    pub fn test(&mut self, site: u8, t: &Test) {
        match t {
            Test::Ptr {
                num,
                test_flg,
                parm_flg,
                result,
                text,
                limits,
            } => self.put(15, 10, |r| {
                let mut r = r
                    .u4(*num)
                    .u1(1)
                    .u1(site)
                    .u1(*test_flg)
                    .u1(*parm_flg)
                    .r4(*result);
                if let Some(text) = text {
                    r = r.cn(text);
                    if let Some((opt, lo, hi, units)) = limits {
                        r = r
                            .cn("")
                            .u1(*opt)
                            .u1(0)
                            .u1(0)
                            .u1(0)
                            .r4(*lo)
                            .r4(*hi)
                            .cn(units);
                    }
                }
                r
            }),
            Test::Ftr {
                num,
                test_flg,
                text,
            } => self.put(15, 20, |r| {
                r.u4(*num)
                    .u1(1)
                    .u1(site)
                    .u1(*test_flg)
                    .u1(0xFF)
                    .u4(0)
                    .u4(0)
                    .u4(0)
                    .u4(0)
                    .u4(0)
                    .u4(0)
                    .i2(0)
                    .u2(0)
                    .u2(0)
                    .u2(0)
                    .cn("vec1")
                    .cn("")
                    .cn("")
                    .cn(text)
            }),
            Test::Mpr {
                num,
                test_flg,
                results,
                inputs,
                text,
                units,
            } => self.put(15, 15, |r| {
                let mut r = r.u4(*num).u1(1).u1(site).u1(*test_flg).u1(0xC0).u2(0);
                r = r.u2(results.len() as u16);
                for x in results {
                    r = r.r4(*x);
                }
                let (start, incr) = inputs.unwrap_or((0.0, 0.0));
                let opt = if inputs.is_some() { 0x00 } else { 0x02 };
                r.cn(text)
                    .cn("")
                    .u1(opt)
                    .u1(0)
                    .u1(0)
                    .u1(0)
                    .r4(0.0)
                    .r4(10.0)
                    .r4(start)
                    .r4(incr)
                    .cn(units)
                    .cn("V")
            }),
        }
    }

    pub fn prr(&mut self, p: &Part) {
        self.put(5, 20, |r| {
            r.u1(1)
                .u1(p.site)
                .u1(p.flg)
                .u2(p.tests.len() as u16)
                .u2(p.hard_bin)
                .u2(p.soft_bin)
                .i2(p.x)
                .i2(p.y)
                .u4(p.test_t)
                .cn(&p.id)
                .cn("")
        });
    }

    pub fn part(&mut self, p: &Part) {
        self.pir(p.site);
        for t in &p.tests {
            self.test(p.site, t);
        }
        self.prr(p);
    }

    pub fn hbr(&mut self, num: u16, pf: u8, name: &str) {
        self.put(1, 40, |r| r.u1(255).u1(0).u2(num).u4(1).u1(pf).cn(name));
    }

    pub fn tsr(&mut self, num: u32, name: &str) {
        self.put(10, 30, |r| {
            r.u1(255).u1(0).u1(b'P').u4(num).u4(1).u4(0).u4(0).cn(name)
        });
    }

    pub fn mrr(&mut self) {
        self.put(1, 20, |r| r.u4(0).u1(b'A').cn("").cn(""));
    }

    pub fn raw(&mut self, typ: u8, sub: u8, body: &[u8]) {
        self.put(typ, sub, |mut r| {
            r.v.extend_from_slice(body);
            r
        });
    }
}

/// A whole file: MIR, the parts (each on its site, one after another), MRR.
pub fn stdf(big_endian: bool, lot: &Lot, parts: &[Part]) -> Vec<u8> {
    let mut s = Stdf::new(big_endian);
    s.mir(lot);
    for p in parts {
        s.part(p);
    }
    s.mrr();
    s.out
}

fn atdf_time(t: u32) -> String {
    let dt = chrono::DateTime::from_timestamp(t as i64, 0).unwrap();
    dt.format("%H:%M:%S %d-%b-%Y").to_string().to_uppercase()
}

/// The ATDF twin of `stdf(…)` (same records, text form).
pub fn atdf(lot: &Lot, parts: &[Part]) -> Vec<u8> {
    let mut out = String::from("FAR:A|4|2|U\n");
    out += &format!(
        "MIR:{}|{}|{}|{}|93K|{}|{}|{}|P|3|S1|||{}{}|REV-B\n",
        lot.lot,
        lot.part_typ,
        lot.job,
        lot.node,
        atdf_time(lot.start_t - 60),
        atdf_time(lot.start_t),
        lot.oper,
        lot.job_rev,
        "|".repeat(20),
    );
    for p in parts {
        out += &format!("PIR:1|{}\n", p.site);
        for t in &p.tests {
            match t {
                Test::Ptr {
                    num,
                    test_flg,
                    parm_flg,
                    result,
                    text,
                    limits,
                } => {
                    let pf = pass_fail(*test_flg, *parm_flg);
                    let cmp = format!(
                        "{}{}",
                        if parm_flg & 0x40 != 0 { "L" } else { "" },
                        if parm_flg & 0x80 != 0 { "H" } else { "" }
                    );
                    let (lo, hi, units) = match limits {
                        Some((opt, lo, hi, units)) => (
                            if opt & 0x40 != 0 {
                                String::new()
                            } else {
                                lo.to_string()
                            },
                            if opt & 0x80 != 0 {
                                String::new()
                            } else {
                                hi.to_string()
                            },
                            units.clone(),
                        ),
                        None => (String::new(), String::new(), String::new()),
                    };
                    out += &format!(
                        "PTR:{num}|1|{}|{result}|{pf}||{}||{cmp}|{units}|{lo}|{hi}\n",
                        p.site,
                        text.clone().unwrap_or_default()
                    );
                }
                Test::Ftr {
                    num,
                    test_flg,
                    text,
                } => {
                    out += &format!(
                        "FTR:{num}|1|{}|{}||vec1|||||{}||||||||||{text}\n",
                        p.site,
                        pass_fail(*test_flg, 0),
                        0
                    );
                }
                Test::Mpr { .. } => panic!("no ATDF MPR in these tests"),
            }
        }
        let pf = if p.flg & 0x10 != 0 {
            ""
        } else if p.flg & 0x08 != 0 {
            "F"
        } else {
            "P"
        };
        let abort = if p.flg & 0x04 != 0 { "Y" } else { "" };
        let coord = |c: i16| {
            if c == -32768 {
                String::new()
            } else {
                c.to_string()
            }
        };
        out += &format!(
            "PRR:1|{}|{}|{}|{pf}|{}|{}|{}|{}||{abort}|{}|\n",
            p.site,
            p.id,
            p.tests.len(),
            p.hard_bin,
            p.soft_bin,
            coord(p.x),
            coord(p.y),
            p.test_t
        );
    }
    out += "MRR:00:00:00 01-JAN-2024|A||\n";
    out.into_bytes()
}

fn pass_fail(test_flg: u8, parm_flg: u8) -> &'static str {
    if test_flg & 0x40 != 0 {
        ""
    } else if parm_flg & 0x20 != 0 {
        "A"
    } else if test_flg & 0x80 != 0 {
        "F"
    } else {
        "P"
    }
}

/// Uploads `bytes` as `name` and returns the upload id.
pub async fn upload_file(srv: &TestServer, key: &str, name: &str, bytes: Vec<u8>) -> String {
    crate::legacy_support::upload(srv, key, name, bytes).await
}

pub fn item(upload: &str, importer: &str) -> Value {
    json!({"upload_id": upload, "importer": importer})
}

/// `imports.structured`; returns the results.
pub async fn import(
    srv: &TestServer,
    key: &str,
    items: Value,
    allow_duplicate: bool,
) -> Vec<Value> {
    let r = srv
        .post(
            "/api/v2/imports/structured",
            key,
            json!({"items": items, "allow_duplicate": allow_duplicate}),
        )
        .await;
    r.expect(200)["results"].as_array().unwrap().clone()
}

/// Uploads and imports one file; returns its result.
pub async fn import_one(srv: &TestServer, key: &str, importer: &str, bytes: Vec<u8>) -> Value {
    let name = format!("datalog.{}", importer.to_lowercase());
    let u = upload_file(srv, key, &name, bytes).await;
    import(srv, key, json!([item(&u, importer)]), false)
        .await
        .remove(0)
}

pub fn ids(result: &Value) -> Vec<String> {
    result["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids in {result}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Every run row in the database (all organizations).
pub async fn run_count(srv: &TestServer) -> i64 {
    let (n,): (i64,) = srv
        .db
        .read()
        .fetch_one(tofulab::db::Sql::new("SELECT COUNT(*) FROM runs"))
        .await
        .unwrap();
    n
}
