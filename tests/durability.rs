//! Nothing lost (issue 6): runs answered 200 survive a SIGKILL of the server and a
//! graceful shutdown under load, and concurrent find-or-create with deletes never fails,
//! locks up or duplicates. Every test runs on SQLite and on Postgres
//! (`TOFULAB_TEST_DATABASE_URL`); the process tests get a database of their own that
//! outlives restarts (a SQLite file, or a fresh Postgres database dropped at the end).
//!
//! CI runs short budgets. `TOFULAB_LONG_TESTS=1` runs longer: 20 crash rounds instead of
//! 3, more clients, more requests per client.

mod common;
mod process_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use process_support::*;
use rand::Rng;
use serde_json::Value;

/// Runs accepted with 200: (id, body sent).
type Accepted = Arc<Mutex<Vec<(String, Value)>>>;

/// One ingesting client: posts runs until the server stops answering after `killed` is
/// set. New serial numbers, parts and batches keep appearing; each serial keeps its part.
/// Any answer other than 200, or a failed request before the kill, is an error; so is a
/// response cut short when the server was stopped `gracefully`.
async fn ingest(
    url: String,
    client: usize,
    round: usize,
    accepted: Accepted,
    killed: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    graceful: bool,
) -> Result<(), String> {
    let http = http_client();
    let mut serial = String::new();
    let mut part = String::new();
    for i in 0.. {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if i % 3 == 0 {
            serial = format!("SN-{round}-{client}-{n}");
            part = format!("PART-{round}-{client}-{}", n % 3);
        }
        let batch = (i % 4 == 1).then(|| format!("LOT-{round}-{client}-{}", n % 2));
        let (phases, measurements) = if i % 5 == 4 { (10, 10) } else { (3, 4) };
        let body = run_body(&serial, &part, batch.as_deref(), n, phases, measurements);
        let sent = http
            .post(format!("{url}/api/v2/runs"))
            .bearer_auth(USER_KEY)
            .json(&body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
            Err(e) => return Err(format!("request failed before the kill: {e}")),
        };
        let status = r.status().as_u16();
        let text = match r.text().await {
            Ok(t) => t,
            Err(_) if killed.load(Ordering::SeqCst) && !graceful => return Ok(()),
            Err(e) => return Err(format!("response body cut short: {e}")),
        };
        if status != 200 {
            return Err(format!("{status}: {text}"));
        }
        let id = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["id"].as_str().map(String::from))
            .ok_or_else(|| format!("200 without an id: {text}"))?;
        accepted.lock().unwrap().push((id, body));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_answered_200_survive_sigkill() {
    let rounds = budget(3, 20);
    let clients = budget(4, 16);
    let db = ProcessDb::new().await;
    let accepted: Accepted = Arc::default();
    let counter = Arc::new(AtomicU64::new(0));
    let mut srv = Server::start_on(&db);
    for round in 0..rounds {
        let killed = Arc::new(AtomicBool::new(false));
        let before = accepted.lock().unwrap().len();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                tokio::spawn(ingest(
                    srv.url.clone(),
                    c,
                    round,
                    accepted.clone(),
                    killed.clone(),
                    counter.clone(),
                    false,
                ))
            })
            .collect();
        // Let some runs through, then kill at a random moment of the stream.
        // (A client that stops early has failed: its error is reported below.)
        while accepted.lock().unwrap().len() < before + 2 * clients
            && !tasks.iter().any(|t| t.is_finished())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = rand::thread_rng().gen_range(0..400);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        killed.store(true, Ordering::SeqCst);
        srv.kill();
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }

        db.assert_integrity().await;
        let all = accepted.lock().unwrap().clone();
        let runs = db.count("SELECT COUNT(*) FROM runs").await;
        assert!(
            runs >= all.len() as i64,
            "round {round}: {} runs answered 200, {runs} stored",
            all.len()
        );
        srv = Server::start_on(&db);
        assert_runs_present(&srv.url, USER_KEY, &all).await;
    }
    let total = accepted.lock().unwrap().len();
    assert!(total >= rounds * 2 * clients, "{total} runs accepted");
    eprintln!("{rounds} SIGKILL rounds, {clients} clients: {total} runs answered 200, all intact");
    assert_eq!(srv.stop_with("TERM"), 0);
    db.assert_integrity().await;
}

/// `s` with each letter randomly upper- or lower-cased.
fn mixed_case(s: &str, rng: &mut impl Rng) -> String {
    s.chars()
        .map(|c| {
            if rng.gen_bool(0.5) {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// Every item of a v2 list, following the cursor.
async fn list_all(srv: &common::TestServer, key: &str, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let mut q = format!("{path}?limit=100");
        if let Some(c) = cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = srv.get(&q, key).await;
        let body = page.expect(200);
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        if !body["meta"]["has_more"].as_bool().unwrap() {
            return out;
        }
        cursor = body["meta"]["next_cursor"].as_i64();
    }
}

/// Asserts that no two values of `field` in `items` are equal ignoring case, and returns
/// them lower-cased.
#[track_caller]
fn unique_ci(items: &[Value], field: &str) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        let v = item[field].as_str().unwrap().to_lowercase();
        assert!(seen.insert(v.clone()), "{field} {v} exists twice");
    }
    seen
}

/// What the concurrency clients did.
#[derive(Default)]
struct Outcome {
    /// (run id, serial number as sent, whether its unit may be deleted)
    created: Vec<(String, String, bool)>,
    deleted_runs: Vec<String>,
    parts: Vec<String>,
    batches: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_share_new_names_while_deleting() {
    use rand::SeedableRng;

    let clients = 64;
    let per_client = budget(6, 40);
    let srv = common::TestServer::start().await;
    let org = srv.org("Lab").await;
    // Kept serials and batches are only ever created; doomed ones are also deleted
    // (a unit's runs go with it; a batch's units and runs stay without it).
    let kept: Vec<String> = (0..12).map(|i| format!("SN-{i:02}")).collect();
    let doomed: Vec<String> = (0..6).map(|i| format!("DOOMED-{i:02}")).collect();
    let parts = ["PART-A", "PART-B", "PART-C"];
    let batches = ["LOT-A", "LOT-B", "LOT-C", "LOT-D"];
    let doomed_batches = ["DOOMED-LOT-A", "DOOMED-LOT-B"];
    let revisions = ["REV-1", "REV-2"];
    let outcome = Arc::new(Mutex::new(Outcome::default()));

    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (srv_url, org, kept, doomed, outcome) = (
                srv.url.clone(),
                org.clone(),
                kept.clone(),
                doomed.clone(),
                outcome.clone(),
            );
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
                let http = http_client();
                let mut mine: Vec<String> = Vec::new();
                for i in 0..per_client {
                    let action = rng.gen_range(0..10);
                    let deleting = action >= 7 && !mine.is_empty();
                    let r = if !deleting {
                        let doom = rng.gen_bool(0.25);
                        let pool = if doom { &doomed } else { &kept };
                        let serial = mixed_case(&pool[rng.gen_range(0..pool.len())], &mut rng);
                        let part = mixed_case(parts[rng.gen_range(0..parts.len())], &mut rng);
                        let doomed_batch = rng.gen_bool(0.2);
                        let pool: &[&str] = if doomed_batch {
                            &doomed_batches
                        } else {
                            &batches
                        };
                        let batch = mixed_case(pool[rng.gen_range(0..pool.len())], &mut rng);
                        let rev =
                            mixed_case(revisions[rng.gen_range(0..revisions.len())], &mut rng);
                        let n = (c * 1000 + i) as u64;
                        let mut body = run_body(&serial, &part, Some(&batch), n, 2, 2);
                        body["procedure_id"] = Value::from(org.procedure_id.clone());
                        body["revision_number"] = Value::from(rev);
                        let r = http
                            .post(format!("{srv_url}/api/v2/runs"))
                            .bearer_auth(&org.user_key)
                            .json(&body)
                            .send()
                            .await;
                        let r = common::Resp::from(r.expect("request")).await;
                        if r.status == 200 {
                            let id = r.json["id"].as_str().expect("id").to_string();
                            mine.push(id.clone());
                            let mut o = outcome.lock().unwrap();
                            o.created.push((id, serial, doom));
                            o.parts.push(part);
                            if !doomed_batch {
                                o.batches.push(batch);
                            }
                        }
                        r
                    } else if action < 9 {
                        // Delete one or two of this client's runs.
                        let k = rng.gen_range(1..=2.min(mine.len()));
                        let ids: Vec<String> = (0..k)
                            .map(|_| mine.remove(rng.gen_range(0..mine.len())))
                            .collect();
                        let q: Vec<String> = ids.iter().map(|id| format!("ids={id}")).collect();
                        let r = http
                            .delete(format!("{srv_url}/api/v2/runs?{}", q.join("&")))
                            .bearer_auth(&org.user_key)
                            .send()
                            .await;
                        let r = common::Resp::from(r.expect("request")).await;
                        if r.status == 200 {
                            let gone = r.json["id"].as_array().expect("id array");
                            let mut o = outcome.lock().unwrap();
                            for id in gone {
                                o.deleted_runs.push(id.as_str().unwrap().to_string());
                            }
                        }
                        r
                    } else if rng.gen_bool(0.5) {
                        let serial = mixed_case(&doomed[rng.gen_range(0..doomed.len())], &mut rng);
                        let r = http
                            .delete(format!("{srv_url}/api/v2/units?serial_numbers={serial}"))
                            .bearer_auth(&org.user_key)
                            .send()
                            .await;
                        common::Resp::from(r.expect("request")).await
                    } else {
                        let number = doomed_batches[rng.gen_range(0..doomed_batches.len())];
                        let number = mixed_case(number, &mut rng);
                        let r = http
                            .delete(format!("{srv_url}/api/v2/batches/{number}"))
                            .bearer_auth(&org.user_key)
                            .send()
                            .await;
                        common::Resp::from(r.expect("request")).await
                    };
                    // Deletes may find nothing (a unit delete took the runs, or another
                    // client the unit or batch); anything else must succeed.
                    let ok = r.status == 200 || (deleting && r.status == 404);
                    assert!(
                        ok && !r.text.to_lowercase().contains("locked"),
                        "client {c} request {i} (action {action}): {} {}",
                        r.status,
                        r.text
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }

    let o = std::mem::take(&mut *outcome.lock().unwrap());
    // Runs: every run of a kept serial is there unless deleted; a run of a doomed serial
    // may have gone with its unit; nothing else exists.
    let runs = list_all(&srv, &org.user_key, "/api/v2/runs").await;
    let present: std::collections::HashSet<String> = runs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(present.len(), runs.len(), "runs listed once");
    let deleted: std::collections::HashSet<&String> = o.deleted_runs.iter().collect();
    assert_eq!(deleted.len(), o.deleted_runs.len(), "a run deleted twice");
    let mut expected_kept = 0;
    for (id, serial, doom) in &o.created {
        let is_deleted = deleted.contains(id);
        if is_deleted {
            assert!(!present.contains(id), "deleted run {id} still listed");
        } else if !doom {
            assert!(
                present.contains(id),
                "run {id} ({serial}) answered 200 but is gone"
            );
            expected_kept += 1;
        }
    }
    let created: std::collections::HashSet<&String> = o.created.iter().map(|c| &c.0).collect();
    assert!(
        present.iter().all(|id| created.contains(id)),
        "unknown runs listed"
    );
    let kept_present = runs
        .iter()
        .filter(|r| {
            let s = r["unit"]["serial_number"].as_str().unwrap();
            s.to_lowercase().starts_with("sn-")
        })
        .count();
    assert_eq!(kept_present, expected_kept);
    assert!(
        o.created.len() > clients * per_client / 2,
        "{} runs",
        o.created.len()
    );
    eprintln!(
        "{clients} clients: {} runs created, {} deleted by id, {} left",
        o.created.len(),
        o.deleted_runs.len(),
        present.len()
    );

    // Units, parts, batches: each name exists exactly once, whatever its spelling.
    let units = unique_ci(
        &list_all(&srv, &org.user_key, "/api/v2/units").await,
        "serial_number",
    );
    for (_, serial, doom) in &o.created {
        if !doom {
            assert!(
                units.contains(&serial.to_lowercase()),
                "unit {serial} missing"
            );
        }
    }
    let part_items = list_all(&srv, &org.user_key, "/api/v2/parts").await;
    let part_numbers = unique_ci(&part_items, "number");
    let batch_numbers = unique_ci(
        &list_all(&srv, &org.user_key, "/api/v2/batches").await,
        "number",
    );
    for p in &o.parts {
        assert!(part_numbers.contains(&p.to_lowercase()), "part {p} missing");
    }
    for b in &o.batches {
        assert!(
            batch_numbers.contains(&b.to_lowercase()),
            "batch {b} missing"
        );
    }
    assert_eq!(part_numbers.len(), parts.len());
    let doomed_left = doomed_batches
        .iter()
        .filter(|b| batch_numbers.contains(&b.to_lowercase()))
        .count();
    assert_eq!(batch_numbers.len(), batches.len() + doomed_left);
    for p in &part_items {
        let revs = unique_ci(p["revisions"].as_array().unwrap(), "number");
        assert!(revs.len() <= revisions.len(), "{p}");
    }
}

/// Posts `body` as a run in `pieces` chunks with a pause between them, so that the
/// request is still being received when the server is told to stop. `sent` counts the
/// chunks handed to the connection.
async fn slow_post(url: String, body: Value, pieces: usize, sent: Arc<AtomicU64>) -> (u16, String) {
    let bytes = serde_json::to_vec(&body).unwrap();
    let size = bytes.len().div_ceil(pieces);
    let chunks: Vec<Vec<u8>> = bytes.chunks(size).map(<[u8]>::to_vec).collect();
    let stream =
        futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(i, chunk)| {
            let sent = sent.clone();
            async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(chunk)
            }
        });
    let r = http_client()
        .post(format!("{url}/api/v2/runs"))
        .bearer_auth(USER_KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("the in-flight request gets an answer");
    let status = r.status().as_u16();
    (status, r.text().await.expect("the whole answer"))
}

/// Lists runs until stopped; every answer must be a complete 200.
async fn read_runs(url: String, stopping: Arc<AtomicBool>) -> Result<u64, String> {
    let http = http_client();
    let mut reads = 0;
    loop {
        let r = match http
            .get(format!("{url}/api/v2/runs?limit=50"))
            .bearer_auth(USER_KEY)
            .send()
            .await
        {
            Ok(r) => r,
            Err(_) if stopping.load(Ordering::SeqCst) => return Ok(reads),
            Err(e) => return Err(format!("list failed before the signal: {e}")),
        };
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| format!("list cut short: {e}"))?;
        let body: Value = serde_json::from_str(&text).map_err(|_| format!("{status}: {text}"))?;
        if status != 200 || !body["data"].is_array() {
            return Err(format!("{status}: {text}"));
        }
        reads += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_in_flight_requests() {
    let clients = budget(4, 16);
    let slow = budget(3, 8);
    let pieces = 8;
    let db = ProcessDb::new().await;
    let srv = Server::start_on(&db);
    let accepted: Accepted = Arc::default();
    let stopping = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));

    let writers: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(ingest(
                srv.url.clone(),
                c,
                0,
                accepted.clone(),
                stopping.clone(),
                counter.clone(),
                true,
            ))
        })
        .collect();
    let reader = tokio::spawn(read_runs(srv.url.clone(), stopping.clone()));
    while accepted.lock().unwrap().len() < 2 * clients && !writers.iter().any(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Large runs sent slowly: in flight when SIGTERM arrives.
    let sent: Vec<Arc<AtomicU64>> = (0..slow).map(|_| Arc::default()).collect();
    let large: Vec<(Value, _)> = (0..slow)
        .map(|i| {
            let n = 1_000_000 + i as u64;
            let body = run_body(&format!("SLOW-{i}"), "PART-SLOW", None, n, 30, 20);
            let task = tokio::spawn(slow_post(
                srv.url.clone(),
                body.clone(),
                pieces,
                sent[i].clone(),
            ));
            (body, task)
        })
        .collect();
    while sent.iter().any(|s| s.load(Ordering::SeqCst) < 2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stopping.store(true, Ordering::SeqCst);
    srv.signal("TERM");

    for (body, task) in large {
        let (status, text) = task.await.unwrap();
        assert_eq!(status, 200, "in-flight request: {text}");
        let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        accepted.lock().unwrap().push((id, body));
    }
    for t in writers {
        t.await.unwrap().unwrap();
    }
    let reads = reader.await.unwrap().unwrap();
    assert!(reads > 0);
    assert_eq!(srv.wait_exit("SIGTERM"), 0, "exit status after SIGTERM");

    db.assert_integrity().await;
    let all = accepted.lock().unwrap().clone();
    eprintln!(
        "SIGTERM with {slow} uploads in flight: {} runs answered 200, {reads} lists",
        all.len()
    );
    let srv = Server::start_on(&db);
    assert_runs_present(&srv.url, USER_KEY, &all).await;
    assert_eq!(srv.stop_with("TERM"), 0);
}
