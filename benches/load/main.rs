//! The load benchmark: starts the release `tofulab` binary, drives it over HTTP with
//! concurrent clients on SQLite and on Postgres, and writes `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench --bench load                      # both backends, 1 000 000 runs
//! cargo bench --bench load -- --quick           # smoke run: small sizes, a minute
//! cargo bench --bench load -- --backend sqlite --runs 200000 --out /tmp/b.md
//! ```
//!
//! Postgres databases are created (and dropped) on `TOFULAB_BENCH_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). The server runs with `--rate-limit off`: the
//! figures are about the server's own cost, not the per-key limiter.
//!
//! The machines this runs on are shared and noisy, so every figure is reported as a
//! ratio against a baseline measured in the same run, next to the absolute numbers:
//! - ingest (`ingest`): HTTP runs/s ÷ the same runs through the storage layer, no HTTP;
//! - reads at scale (`read`): list and get latencies ÷ the latency of `whoami`;
//! - fixture start (`start`): process start → ready ÷ process start → exit (`--version`);
//! - memory: the server's peak resident memory during each of the above ÷ its resident
//!   memory when idle.
//!
//! Each module says what its figure measures and why that baseline.

mod analytics;
mod backend;
mod drive;
mod fixture;
mod ingest;
mod pages;
mod read;
mod semi;
mod server;
mod stall;
mod start;
mod stats;

use std::fmt::Write as _;
use std::time::Duration;

use backend::{Backend, Database};
use server::Server;
use stats::{mib, ms, percent, ratio};

/// Sizes of one benchmark run.
#[derive(Debug, Clone)]
struct Options {
    backends: Vec<Backend>,
    quick: bool,
    /// Runs in the database for the read figures.
    runs: i64,
    /// Runs posted for the ingest figure (and written for its baseline).
    ingest_runs: usize,
    /// Requests per read case and concurrency.
    requests: usize,
    /// Process starts for the fixture-start figure.
    starts: usize,
    /// Parts and size of the STDF file imported (figure 5).
    stdf_parts: usize,
    stdf_mib: usize,
    /// Measure the STDF import only.
    only_stdf: bool,
    /// Measure the reads, analytics and pages only, printed (no file written); with
    /// `--keep`, only seed the database and leave it in place for study.
    only_reads: bool,
    keep: bool,
    out: String,
    command: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench load -- [--backend sqlite|postgres|both] [--quick] \
         [--runs N] [--stdf-parts N] [--stdf-mib M] [--only-stdf] [--only-reads [--keep]] \
         [--out FILE]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut backends = vec![Backend::Sqlite, Backend::Postgres];
    let (mut quick, mut runs, mut out) = (false, None, "BENCHMARKS.md".to_string());
    let (mut stdf_parts, mut stdf_mib, mut only_stdf) = (None, None, false);
    let (mut only_reads, mut keep) = (false, false);
    let mut shown = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            // cargo bench passes --bench to every bench target.
            "--bench" => continue,
            "--backend" => {
                let v = args.next().unwrap_or_else(|| usage());
                backends = match v.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    _ => usage(),
                };
                shown.push(format!("--backend {v}"));
            }
            "--quick" => {
                quick = true;
                shown.push(a);
            }
            "--runs" => {
                let v = args.next().unwrap_or_else(|| usage());
                runs = Some(v.parse().unwrap_or_else(|_| usage()));
                shown.push(format!("--runs {v}"));
            }
            "--stdf-parts" | "--stdf-mib" => {
                let v = args.next().unwrap_or_else(|| usage());
                let n = Some(v.parse().unwrap_or_else(|_| usage()));
                if a == "--stdf-parts" {
                    stdf_parts = n;
                } else {
                    stdf_mib = n;
                }
                shown.push(format!("{a} {v}"));
            }
            "--only-stdf" => {
                only_stdf = true;
                shown.push(a);
            }
            "--only-reads" => only_reads = true,
            "--keep" => keep = true,
            "--out" => {
                out = args.next().unwrap_or_else(|| usage());
                shown.push(format!("--out {out}"));
            }
            _ => usage(),
        }
    }
    let mut command = "cargo bench --bench load".to_string();
    if !shown.is_empty() {
        command = format!("{command} -- {}", shown.join(" "));
    }
    Options {
        backends,
        quick,
        runs: runs.unwrap_or(if quick { 10_000 } else { 1_000_000 }),
        ingest_runs: if quick { 500 } else { 10_000 },
        requests: if quick { 50 } else { 300 },
        starts: if quick { 5 } else { 20 },
        stdf_parts: stdf_parts.unwrap_or(if quick { 200 } else { 10_000 }),
        stdf_mib: stdf_mib.unwrap_or(if quick { 4 } else { 200 }),
        only_stdf,
        only_reads,
        keep,
        out,
        command,
    }
}

/// Everything measured on one backend.
struct BackendResult {
    backend: Backend,
    start: start::StartResult,
    ingest: ingest::IngestResult,
    read: read::ReadResult,
    stdf: semi::SemiResult,
    /// `whoami` while large bodies are parsed (`stall`).
    stall: stall::StallResult,
    /// Dashboard pages on the read database (`pages`).
    pages: Vec<read::Measured>,
}

async fn bench_backend(backend: Backend, o: &Options) -> BackendResult {
    let (_dir, scratch) = server::scratch();
    let name = backend.name();

    eprintln!("[{name}] fixture start ×{}", o.starts);
    let start = start::measure(backend, &scratch, o.starts).await;

    eprintln!(
        "[{name}] ingest baseline: {} runs via Db::create_run",
        o.ingest_runs
    );
    let baseline = ingest::baseline(backend, &scratch, o.ingest_runs).await;
    eprintln!("[{name}]   {:.0} runs/s", baseline.per_second());

    let database = Database::fresh(backend, &scratch, "server").await;
    let seed = fixture::seed_file(&scratch);
    let log = scratch.join("server.log");
    let server = Server::start(
        &[
            "--database-url",
            &database.url,
            "--seed",
            seed.to_str().expect("utf-8 path"),
            "--rate-limit",
            "off",
            "--log-format",
            "json",
        ],
        &log,
    )
    .await;
    eprintln!("[{name}] ingest over HTTP: {} runs", o.ingest_runs);
    let (http, peak_kib, idle_kib) = ingest::http(&server, o.ingest_runs).await;
    eprintln!("[{name}]   {:.0} runs/s", http.per_second());
    let ingest = ingest::IngestResult {
        http,
        baseline,
        peak_kib,
        idle_kib,
    };

    eprintln!(
        "[{name}] whoami while {} MiB bodies are parsed",
        stall::BODY_MIB
    );
    let stall = stall::measure(&server, o.requests).await;
    eprintln!(
        "[{name}]   p99 {} idle, {} during {} bodies",
        ms(stall.idle.p99()),
        ms(stall.during.p99()),
        stall.bodies
    );

    eprintln!("[{name}] STDF import");
    let stdf = semi::measure(&server, o.stdf_parts, o.stdf_mib).await;
    eprintln!(
        "[{name}]   {:.0} runs/s imported, {:.0} runs/s posted, +{} KiB",
        stdf.import_rate(),
        stdf.post_rate(),
        stdf.growth_kib()
    );

    eprintln!("[{name}] reads: seeding to {} runs", o.runs);
    let read = read::run(&server, &database.url, o.runs, o.requests).await;
    eprintln!("[{name}] dashboard pages");
    let pages = pages::run(&server, (o.requests / 5).max(20)).await;
    for m in &read.cases {
        eprintln!(
            "[{name}]   {:40} c={} p50 {} p99 {}",
            m.label,
            m.concurrency,
            ms(m.latency.p50()),
            ms(m.latency.p99())
        );
    }
    for m in &read.analytics {
        eprintln!(
            "[{name}]   {:40} c={} p50 {} p95 {}",
            m.label,
            m.concurrency,
            ms(m.latency.p50()),
            ms(m.latency.pct(95.0))
        );
    }
    server.stop();
    database.drop_now().await;
    BackendResult {
        backend,
        start,
        ingest,
        read,
        stdf,
        stall,
        pages,
    }
}

/// The read, analytics and page figures alone (`--only-reads`), printed. With `--keep`
/// the database is only seeded and stays (SQLite under `target/bench-keep/`), its URL
/// printed, so a slow statement can be studied on the data that made it slow.
async fn bench_reads(backend: Backend, o: &Options) {
    let (_dir, mut scratch) = server::scratch();
    if o.keep {
        scratch = std::path::PathBuf::from("target/bench-keep");
        std::fs::create_dir_all(&scratch).expect("create target/bench-keep");
        scratch = scratch.canonicalize().expect("absolute path");
    }
    let name = backend.name();
    let database = Database::fresh(backend, &scratch, "reads").await;
    let seed = fixture::seed_file(&scratch);
    let server = Server::start(
        &[
            "--database-url",
            &database.url,
            "--seed",
            seed.to_str().expect("utf-8 path"),
            "--rate-limit",
            "off",
        ],
        &scratch.join("server.log"),
    )
    .await;
    eprintln!("[{name}] reads: seeding to {} runs", o.runs);
    if o.keep {
        read::seed(&database.url, o.runs).await;
        analytics::seed_content(&database.url).await;
        read::post_detail_run(&server).await;
        server.stop();
        println!("[{name}] kept: {}", database.url);
        return;
    }
    let read = read::run(&server, &database.url, o.runs, o.requests).await;
    let pages = pages::run(&server, (o.requests / 5).max(20)).await;
    for m in read.cases.iter().chain(&read.analytics).chain(&pages) {
        println!(
            "[{name}] {:55} c={} p50 {:>9} p95 {:>9} p99 {:>9} rows {}",
            m.label,
            m.concurrency,
            ms(m.latency.p50()),
            ms(m.latency.pct(95.0)),
            ms(m.latency.p99()),
            m.rows
        );
    }
    server.stop();
    database.drop_now().await;
}

/// Figure 5 alone (`--only-stdf`): a fresh server, the STDF import and its baseline.
async fn bench_stdf(backend: Backend, o: &Options) -> semi::SemiResult {
    let (_dir, scratch) = server::scratch();
    let database = Database::fresh(backend, &scratch, "stdf").await;
    let seed = fixture::seed_file(&scratch);
    let log = scratch.join("server.log");
    let server = Server::start(
        &[
            "--database-url",
            &database.url,
            "--seed",
            seed.to_str().expect("utf-8 path"),
            "--rate-limit",
            "off",
            "--log-format",
            "json",
        ],
        &log,
    )
    .await;
    eprintln!("[{}] STDF import", backend.name());
    let r = semi::measure(&server, o.stdf_parts, o.stdf_mib).await;
    server.stop();
    database.drop_now().await;
    r
}

fn stdf_goal(backend: Backend) -> impl Fn(&str) -> String {
    move |g: &str| {
        if backend == Backend::Sqlite {
            g.to_string()
        } else {
            format!("({g})")
        }
    }
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{cpus} CPUs ({model}), {mem_gib:.0} GiB RAM, shared with other workloads (builds, \
         tests) while measuring"
    )
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn p50_p99(l: &stats::Latencies) -> String {
    format!("{} / {}", ms(l.p50()), ms(l.p99()))
}

fn ratios(a: &stats::Latencies, b: &stats::Latencies) -> String {
    let f = |d: Duration| d.as_secs_f64();
    format!(
        "{} / {}",
        ratio(f(a.p50()), f(b.p50())),
        ratio(f(a.p99()), f(b.p99()))
    )
}

/// The table and notes of one backend.
fn backend_section(r: &BackendResult, o: &Options, out: &mut String) {
    let sqlite = r.backend == Backend::Sqlite;
    let goal = |g: &str| {
        if sqlite {
            g.to_string()
        } else {
            format!("({g})")
        }
    };
    let i = &r.ingest;
    let ingest_ratio = i.http.per_second() / i.baseline.per_second();
    let start_median = r.start.ready.p50();
    let _ = writeln!(out, "## {}\n", r.backend.name());
    let _ = writeln!(
        out,
        "| Figure | Value | Baseline | Ratio | Goal | Met |\n|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| Ingest, {} clients, {} runs of {}×{} | {:.0} runs/s | {:.0} runs/s (storage layer, no HTTP) | {} | {} | {} |",
        ingest::CONCURRENCY,
        i.http.runs,
        ingest::PHASES,
        ingest::MEASUREMENTS,
        i.http.per_second(),
        i.baseline.per_second(),
        percent(i.http.per_second(), i.baseline.per_second()),
        goal("≥ 70%"),
        yes_no(ingest_ratio >= 0.7),
    );
    let _ = writeln!(
        out,
        "| Ingest latency p50 / p99 | {} | {} | {} | | |",
        p50_p99(&i.http.latency),
        p50_p99(&i.baseline.latency),
        ratios(&i.http.latency, &i.baseline.latency),
    );
    let peak_ok = i.peak_kib < 100 * 1024;
    let _ = writeln!(
        out,
        "| Peak resident memory while ingesting | {} | {} (idle, after start) | {} | {} | {} |",
        mib(i.peak_kib),
        mib(i.idle_kib),
        ratio(i.peak_kib as f64, i.idle_kib as f64),
        goal("< 100 MiB"),
        yes_no(peak_ok),
    );
    let st = &r.stall;
    let _ = writeln!(
        out,
        "| whoami while another client sends {} MiB run bodies ({} parsed), p50 / p99 | {} | {} (whoami, nothing else running) | {} | {} | {} |",
        stall::BODY_MIB,
        st.bodies,
        p50_p99(&st.during),
        p50_p99(&st.idle),
        ratios(&st.during, &st.idle),
        goal("p99 ≤ 3× idle"),
        yes_no(st.during.p99().as_secs_f64() <= 3.0 * st.idle.p99().as_secs_f64()),
    );
    let rd = &r.read;
    for c in [1, 4] {
        let Some(base) = rd.baseline.iter().find(|b| b.concurrency == c) else {
            continue;
        };
        for m in rd.cases.iter().filter(|m| m.concurrency == c) {
            let list = m.label.starts_with("list");
            // The latency goal is for one client; 4 clients on 2 shared cores queue.
            let (g, met) = if list && c == 1 {
                (
                    goal("p99 < 20 ms"),
                    yes_no(m.latency.p99() < Duration::from_millis(20)),
                )
            } else {
                (String::new(), "")
            };
            let rows = if list {
                format!(", {} rows", m.rows)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {}{rows}, concurrency {c}, p50 / p99 | {} | {} (whoami) | {} | {g} | {met} |",
                m.label,
                p50_p99(&m.latency),
                p50_p99(&base.latency),
                ratios(&m.latency, &base.latency),
            );
        }
    }
    pages::rows(
        &r.pages,
        rd.baseline
            .iter()
            .find(|b| b.concurrency == 1)
            .map(|b| &b.latency),
        out,
    );
    let _ = writeln!(
        out,
        "| Peak resident memory during the reads | {} | {} (idle, after start) | {} | | |",
        mib(rd.peak_kib),
        mib(i.idle_kib),
        ratio(rd.peak_kib as f64, i.idle_kib as f64),
    );
    let whoami = rd.baseline.iter().find(|b| b.concurrency == 1);
    for m in &rd.analytics {
        let p95 = m.latency.pct(95.0);
        let _ = writeln!(
            out,
            "| {}, {} rows, concurrency 1, p50 / p95 | {} / {} | {} (whoami) | {} | p95 < 500 ms | {} |",
            m.label,
            m.rows,
            ms(m.latency.p50()),
            ms(p95),
            whoami.map_or("-".into(), |b| format!("{} / {}", ms(b.latency.p50()), ms(b.latency.pct(95.0)))),
            whoami.map_or("-".into(), |b| ratio(p95.as_secs_f64(), b.latency.pct(95.0).as_secs_f64())),
            yes_no(p95 < Duration::from_millis(500)),
        );
    }
    let _ = writeln!(
        out,
        "| Peak resident memory during the analytics calls | {} | {} (idle, after start) | {} | | |",
        mib(rd.analytics_peak_kib),
        mib(i.idle_kib),
        ratio(rd.analytics_peak_kib as f64, i.idle_kib as f64),
    );
    let _ = writeln!(
        out,
        "| Fixture start to ready, median / p90 of {} | {} / {} | {} (`tofulab --version`, median) | {} | {} | {} |",
        r.start.ready.len(),
        ms(start_median),
        ms(r.start.ready.p90()),
        ms(r.start.version.p50()),
        ratio(start_median.as_secs_f64(), r.start.version.p50().as_secs_f64()),
        goal("< 150 ms"),
        yes_no(start_median < Duration::from_millis(150)),
    );
    let _ = writeln!(
        out,
        "| Resident memory at ready (fixture start, largest) | {} | | | | |",
        mib(r.start.rss_kib),
    );
    let _ = writeln!(out, "{}", semi::rows(&r.stdf, stdf_goal(r.backend), yes_no));
    let _ = writeln!(
        out,
        "Read database: {} runs ({} bulk-loaded in {:.0} s, the rest posted over HTTP, before the bulk load); \
         {} requests per case and concurrency. Analytics: 30 days ({} to {}) of the busiest \
         procedure, whose runs there carry {} measurements in 2 phases; {} requests per case.\n",
        rd.total_runs,
        rd.bulk_runs,
        rd.seed_time.as_secs_f64(),
        o.requests,
        analytics::FROM,
        analytics::TO,
        rd.analytics_measurements,
        rd.analytics.first().map_or(0, |m| m.latency.len()),
    );
}

fn report(results: &[BackendResult], o: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by the load benchmark (`benches/load/main.rs`); regenerate with:\n\n```\n{}\n```\n",
        o.command
    );
    let _ = writeln!(
        out,
        "- Date: {} (commit {})\n- Machine: {}\n- Release build; server started as \
         `tofulab serve --rate-limit off --log-format json` (logs to a file).{}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        git_commit(),
        machine(),
        if o.quick {
            "\n- **Quick run** (`--quick`): small sizes, for a smoke test only."
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "Every figure is a ratio against a baseline measured in the same run, because \
         absolute numbers on a shared machine drift from one minute to the next:\n\n\
         - **Ingest**: `POST /api/v2/runs` (5 phases × 10 measurements with limits) from {} \
         concurrent clients, against the same runs written by the same storage code \
         (`Db::create_run`, one transaction per run, same concurrency) with no HTTP. The \
         ratio is the share of the storage layer's rate that survives HTTP, JSON, \
         validation, authentication and the client on the same cores.\n\
         - **Reads**: `GET /api/v2/runs?limit=50` and `GET /api/v2/runs/{{id}}` at the \
         database size shown, against `GET /api/v2/whoami` (the fixed cost of an \
         authenticated request). Latencies are measured by the client, HTTP included.\n\
         - **Fixture start**: spawn → first `GET /readyz` 200 on a database that did not \
         exist (migrations included: `--ephemeral` on SQLite, a new database on \
         Postgres), against spawning `tofulab --version` to exit.\n\
         - **Memory**: the server's peak resident memory (VmHWM, reset between phases) \
         against its resident memory when idle.\n\n\
         Goals are set for SQLite; on Postgres they are shown in parentheses, for \
         reference.\n",
        ingest::CONCURRENCY
    );
    for r in results {
        backend_section(r, o, &mut out);
    }
    let _ = writeln!(out, "## Interpretation\n");
    for r in results {
        let i = &r.ingest;
        let worst_list = r
            .read
            .cases
            .iter()
            .filter(|m| m.label.starts_with("list") && m.concurrency == 1)
            .max_by_key(|m| m.latency.p99());
        let _ = writeln!(
            out,
            "- {}: HTTP ingest runs at {} of the storage layer's rate ({:.0} vs {:.0} runs/s). \
             The slowest list at {} runs with one client is “{}” (p99 {}). A fresh server \
             is ready in {} (median), {} process starts.",
            r.backend.name(),
            percent(i.http.per_second(), i.baseline.per_second()),
            i.http.per_second(),
            i.baseline.per_second(),
            r.read.total_runs,
            worst_list.map_or("-", |m| m.label),
            worst_list.map_or("-".into(), |m| ms(m.latency.p99())),
            ms(r.start.ready.p50()),
            ratio(
                r.start.ready.p50().as_secs_f64(),
                r.start.version.p50().as_secs_f64()
            ),
        );
    }
    out
}

#[tokio::main]
async fn main() {
    let o = parse_options();
    eprintln!("load benchmark: {o:?}");
    if o.only_stdf {
        let mut text = format!(
            "STDF import (`{}`, {}, commit {}):\n\n| Figure | Value | Baseline | Ratio | Goal | Met |\n|---|---|---|---|---|---|\n",
            o.command,
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            git_commit()
        );
        for &b in &o.backends {
            let r = bench_stdf(b, &o).await;
            text += &format!("| **{}** | | | | | |\n", b.name());
            text += &semi::rows(&r, stdf_goal(b), yes_no);
        }
        std::fs::write(&o.out, &text).unwrap_or_else(|e| panic!("write {}: {e}", o.out));
        println!("{text}");
        return;
    }
    if o.only_reads {
        for &b in &o.backends {
            bench_reads(b, &o).await;
        }
        return;
    }
    let mut results = Vec::new();
    for &b in &o.backends {
        results.push(bench_backend(b, &o).await);
    }
    let text = report(&results, &o);
    std::fs::write(&o.out, &text).unwrap_or_else(|e| panic!("write {}: {e}", o.out));
    println!("{text}");
    eprintln!("written to {}", o.out);
}
