//! Several tofulab processes on one database: started at the same moment on a fresh
//! database (with or without a seed file) they all come up; clients ingesting through
//! both see the same data; signed URLs of one work on the other; and a replica killed
//! mid-ingest loses nothing that either replica acknowledged — runs, and attachments
//! kept in a shared object store, which holds no object after their runs are deleted.

mod process_support;
mod s3_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_support::{
    assert_runs_present, run_body, ProcessDb, Server, PROCEDURE_ID, STATION_KEY, USER_KEY,
};
use rand::Rng;
use serde_json::{json, Value};

/// Starts two servers on `db` at the same moment; the reason of any failure.
async fn start_two(args: Vec<String>) -> Result<(Server, Server), String> {
    let spawn = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            std::panic::catch_unwind(|| Server::start(&refs))
        })
    };
    let (a, b) = (spawn(args.clone()), spawn(args));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(format!(
            "a replica did not start: {:?} / {:?}",
            a.err().and_then(|e| e.downcast_ref::<String>().cloned()),
            b.err().and_then(|e| e.downcast_ref::<String>().cloned())
        )),
    }
}

#[tokio::test]
async fn two_replicas_start_together_on_a_fresh_database_twenty_times() {
    let mut failures = Vec::new();
    for round in 0..20 {
        let db = ProcessDb::new().await;
        let mut args = vec![
            "--database-url".to_string(),
            db.url.clone(),
            "--rate-limit".into(),
            "off".into(),
        ];
        let seeded = round % 2 == 0;
        if seeded {
            args.push("--seed".into());
            args.push(db.seed().to_str().unwrap().to_string());
        }
        match start_two(args).await {
            Ok((a, b)) => {
                let orgs = db.count("SELECT COUNT(*) FROM organizations").await;
                if orgs != 1 {
                    failures.push(format!("round {round}: {orgs} organizations"));
                }
                // The first start's key is printed by exactly one of them.
                let printed = [&a, &b]
                    .iter()
                    .filter(|s| s.stdout.text().contains("tp_user_"))
                    .count();
                if !seeded && printed != 1 {
                    failures.push(format!("round {round}: {printed} first-start keys"));
                }
                a.stop_with("TERM");
                b.stop_with("TERM");
            }
            Err(e) => failures.push(format!("round {round} (seed: {seeded}): {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn clients_ingesting_through_two_replicas_see_one_set_of_runs() {
    let db = ProcessDb::new().await;
    let seed = db.seed();
    let args = vec![
        "--database-url".to_string(),
        db.url.clone(),
        "--seed".into(),
        seed.to_str().unwrap().to_string(),
        "--rate-limit".into(),
        "off".into(),
    ];
    let (a, b) = start_two(args).await.unwrap();
    let urls = [a.url.clone(), b.url.clone()];
    let mut tasks = Vec::new();
    for client in 0..8 {
        let url = urls[client % 2].clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut ids = Vec::new();
            for n in 0..15 {
                // Shared serials and parts: both replicas create and find the same rows.
                let r = http
                    .post(format!("{url}/api/v2/runs"))
                    .bearer_auth(STATION_KEY)
                    .json(&json!({"serial_number": format!("SN-{}", n % 5),
                                  "part_number": format!("P-{}", n % 3), "batch_number": "B",
                                  "procedure_id": PROCEDURE_ID, "outcome": "PASS",
                                  "client_run_ref": format!("c{client}_{n}"),
                                  "started_at": "2026-01-01T00:00:00Z",
                                  "ended_at": "2026-01-01T00:00:01Z"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
                ids.push(
                    r.json::<Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 120);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM runs").await,
        120,
        "none lost, none twice"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM units").await, 5);
    assert_eq!(db.count("SELECT COUNT(*) FROM parts").await, 3);
    assert_eq!(db.count("SELECT COUNT(*) FROM batches").await, 1);
    for id in all.iter().step_by(7) {
        for srv in [&a, &b] {
            let (status, _) = srv.get(&format!("/api/v2/runs/{id}"), USER_KEY).await;
            assert_eq!(status, 200);
        }
    }

    // An upload URL from one replica, the download URL of the other.
    let http = reqwest::Client::new();
    let init: Value = http
        .post(format!("{}/api/v2/attachments", a.url))
        .bearer_auth(USER_KEY)
        .json(&json!({"name": "x.bin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let put_url = init["upload_url"].as_str().unwrap().replace(&a.url, &b.url);
    let put = http
        .put(put_url)
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let link = http
        .patch(format!("{}/api/v2/runs/{}", b.url, all[0]))
        .bearer_auth(USER_KEY)
        .json(&json!({"attachments": [init["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), 200);
    let (_, run) = b.get(&format!("/api/v2/runs/{}", all[0]), USER_KEY).await;
    let get_url = run["attachments"][0]["download_url"]
        .as_str()
        .unwrap()
        .replace(&b.url, &a.url);
    let bytes = http
        .get(get_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], &[7u8; 1000][..]);
    a.stop_with("TERM");
    b.stop_with("TERM");
}

/// One client posting runs to `url` until `stop`; a failed request is fine only once
/// `killed` (its replica was killed under it).
async fn ingest(
    url: String,
    client: usize,
    round: usize,
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let http = process_support::http_client();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let serial = format!("R{round}-C{client}-{}", n / 2);
        let body = run_body(&serial, &format!("P-{}", n % 3), Some("LOT"), n, 3, 4);
        let sent = http
            .post(format!("{url}/api/v2/runs"))
            .bearer_auth(USER_KEY)
            .json(&body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
            Err(e) => return Err(format!("client {client}: failed before the kill: {e}")),
        };
        let status = r.status().as_u16();
        let text = match r.text().await {
            Ok(t) => t,
            Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
            Err(e) => return Err(format!("client {client}: answer cut short: {e}")),
        };
        if status != 200 {
            return Err(format!("client {client}: {status} {text}"));
        }
        let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        accepted.lock().unwrap().push((id, body));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_ingest_loses_nothing_the_other_acknowledged() {
    let db = ProcessDb::new().await;
    let seed = db.seed();
    let args = vec![
        "--database-url".to_string(),
        db.url.clone(),
        "--seed".into(),
        seed.to_str().unwrap().to_string(),
        "--rate-limit".into(),
        "off".into(),
    ];
    let (mut a, b) = start_two(args.clone()).await.unwrap();
    let accepted: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    for round in 0..3 {
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let before = accepted.lock().unwrap().len();
        let tasks: Vec<_> = (0..4)
            .map(|c| {
                let url = if c % 2 == 0 {
                    a.url.clone()
                } else {
                    b.url.clone()
                };
                let killed = if c % 2 == 0 {
                    killed.clone()
                } else {
                    Arc::new(AtomicBool::new(false))
                };
                tokio::spawn(ingest(
                    url,
                    c,
                    round,
                    accepted.clone(),
                    killed,
                    stop.clone(),
                ))
            })
            .collect();
        while accepted.lock().unwrap().len() < before + 12 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = rand::thread_rng().gen_range(0..300);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        killed.store(true, Ordering::SeqCst);
        a.kill();
        // The other replica keeps serving its clients a while after.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let all = accepted.lock().unwrap().clone();
        assert_runs_present(&b.url, USER_KEY, &all).await;
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        a = Server::start(&refs);
    }
    assert_eq!(a.stop_with("TERM"), 0);
    assert_eq!(b.stop_with("TERM"), 0);
    db.assert_integrity().await;
}

/// One client posting runs with an attachment each (sizes from a few bytes to several
/// multipart parts) to `url` until `stop`; records `(run, attachment, sha256)` of every
/// upload answered 200. A failed request is fine only once `killed`.
async fn ingest_files(
    url: String,
    client: usize,
    round: usize,
    accepted: Arc<Mutex<Vec<(String, String, String)>>>,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    use sha2::Digest;
    let http = process_support::http_client();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let body = run_body(&format!("F{round}-C{client}-{n}"), "P-F", None, n, 1, 1);
        let step = async {
            let r = http
                .post(format!("{url}/api/v2/runs"))
                .bearer_auth(USER_KEY)
                .json(&body)
                .send()
                .await?;
            let run: Value = r.error_for_status()?.json().await?;
            let run = run["id"].as_str().unwrap_or_default().to_string();
            let r = http
                .post(format!("{url}/api/v2/runs/{run}/attachments"))
                .bearer_auth(USER_KEY)
                .json(&json!({ "name": format!("f{n}.bin") }))
                .send()
                .await?;
            let created: Value = r.error_for_status()?.json().await?;
            let size = match n % 3 {
                0 => 100,
                1 => 300_000,
                _ => 9 << 20,
            };
            let bytes: Vec<u8> = (0..size).map(|i| (i as u64 * 31 + n) as u8).collect();
            let sha = hex::encode(sha2::Sha256::digest(&bytes));
            let upload = created["upload_url"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            http.put(upload)
                .body(bytes)
                .send()
                .await?
                .error_for_status()?;
            Ok::<_, reqwest::Error>((
                run,
                created["id"].as_str().unwrap_or_default().to_string(),
                sha,
            ))
        };
        match step.await {
            Ok(done) => accepted.lock().unwrap().push(done),
            Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
            Err(e) => return Err(format!("client {client}: failed before the kill: {e}")),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_sharing_an_object_store_lose_no_attachment_and_leave_no_objects_behind() {
    let Some((store, endpoint)) = s3_support::fresh_store("replicas").await else {
        return;
    };
    let env = s3_support::vars(&endpoint);
    let db = ProcessDb::new().await;
    let seed = db.seed();
    let args = [
        "--database-url".to_string(),
        db.url.clone(),
        "--seed".into(),
        seed.to_str().unwrap().to_string(),
        "--rate-limit".into(),
        "off".into(),
        "--blob-store".into(),
        store.url(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut a, b) = (
        Server::start_env(&refs, &env),
        Server::start_env(&refs, &env),
    );
    let accepted: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    for round in 0..3 {
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let before = accepted.lock().unwrap().len();
        let tasks: Vec<_> = (0..4)
            .map(|c| {
                let (url, killed) = if c % 2 == 0 {
                    (a.url.clone(), killed.clone())
                } else {
                    (b.url.clone(), Arc::new(AtomicBool::new(false)))
                };
                tokio::spawn(ingest_files(
                    url,
                    c,
                    round,
                    accepted.clone(),
                    killed,
                    stop.clone(),
                ))
            })
            .collect();
        while accepted.lock().unwrap().len() < before + 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = rand::thread_rng().gen_range(0..300);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        killed.store(true, Ordering::SeqCst);
        a.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        a = Server::start_env(&refs, &env);
    }

    // Every acknowledged upload is there, byte for byte, through either replica.
    let all = accepted.lock().unwrap().clone();
    let http = process_support::http_client();
    for (i, (run, attachment, sha)) in all.iter().enumerate() {
        let via = if i % 2 == 0 { &a.url } else { &b.url };
        let got: Value = http
            .get(format!("{via}/api/v2/runs/{run}"))
            .bearer_auth(USER_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let file = got["attachments"]
            .as_array()
            .and_then(|list| list.iter().find(|f| f["id"] == attachment.as_str()))
            .unwrap_or_else(|| panic!("attachment {attachment} of run {run} is gone: {got}"));
        let url = file["download_url"].as_str().expect("bytes uploaded");
        let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
        use sha2::Digest;
        assert_eq!(
            &hex::encode(sha2::Sha256::digest(&bytes)),
            sha,
            "{attachment}"
        );
    }

    // Deleting every run (through one replica) leaves no object in the bucket: the
    // replicas' sweeps drain the queue the deletes filled.
    loop {
        let r: Value = http
            .get(format!("{}/api/v2/runs?limit=100", b.url))
            .bearer_auth(USER_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<String> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("ids={}", r["id"].as_str().unwrap()))
            .collect();
        if ids.is_empty() {
            break;
        }
        let r = http
            .delete(format!("{}/api/v2/runs?{}", b.url, ids.join("&")))
            .bearer_auth(USER_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = store.list_keys().await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "objects left after their runs were deleted: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(a.stop_with("TERM"), 0);
    assert_eq!(b.stop_with("TERM"), 0);
    db.assert_integrity().await;
}
