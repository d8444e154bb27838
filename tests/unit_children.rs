//! Parent/child links between units (BEHAVIOR.md §2.6).

mod catalog_support;
mod common;

use catalog_support::*;
use common::*;
use reqwest::Method;
use serde_json::json;

async fn add(srv: &TestServer, key: &str, parent: &str, child: &str) -> Resp {
    srv.call(
        Method::PUT,
        &format!("/api/v2/units/{}/children", enc(parent)),
        Some(key),
        Some(json!({ "child_serial_number": child })),
    )
    .await
}

async fn remove(srv: &TestServer, key: &str, parent: &str, child: &str) -> Resp {
    srv.delete(
        &format!(
            "/api/v2/units/{}/children?child_serial_number={}",
            enc(parent),
            enc(child)
        ),
        key,
    )
    .await
}

async fn parent_of(srv: &TestServer, key: &str, serial: &str) -> serde_json::Value {
    let r = srv
        .get(&format!("/api/v2/units/{}", enc(serial)), key)
        .await;
    r.expect(200)["parent"].clone()
}

/// A part with revision `A` and units with these serials.
async fn units(srv: &TestServer, key: &str, serials: &[&str]) -> Vec<String> {
    part(srv, key, "P").await;
    revision(srv, key, "P", "A").await;
    let mut ids = Vec::new();
    for s in serials {
        ids.push(unit(srv, key, s, "P", "A").await);
    }
    ids
}

#[tokio::test]
async fn add_remove_and_readd() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let c = srv.client(&org.user_key);
    let ids = units(&srv, &org.user_key, &["PARENT", "CHILD"]).await;

    let r = c
        .units()
        .add_child()
        .serial_number("parent")
        .child_serial_number("child")
        .send()
        .await
        .unwrap();
    assert_eq!(r.id, ids[1], "answers the child's id");
    assert_eq!(
        parent_of(&srv, &org.user_key, "CHILD").await["id"],
        json!(ids[0])
    );
    // Adding again is harmless.
    add(&srv, &org.user_key, "PARENT", "CHILD")
        .await
        .expect(200);

    for _ in 0..3 {
        let r = c
            .units()
            .remove_child()
            .serial_number("PARENT")
            .child_serial_number("Child")
            .send()
            .await
            .unwrap();
        assert_eq!(r.id, ids[1]);
        assert_eq!(parent_of(&srv, &org.user_key, "CHILD").await, json!(null));
        // Only the link went.
        srv.get("/api/v2/units/CHILD", &org.user_key)
            .await
            .expect(200);
        add(&srv, &org.user_key, "PARENT", "CHILD")
            .await
            .expect(200);
    }
    let r = srv.get("/api/v2/units/PARENT", &org.user_key).await;
    assert_eq!(r.expect(200)["children"][0]["id"], json!(ids[1]));
}

#[tokio::test]
async fn a_child_with_another_parent_moves() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let ids = units(&srv, &org.user_key, &["P1", "P2", "KID"]).await;
    add(&srv, &org.user_key, "P1", "KID").await.expect(200);
    add(&srv, &org.user_key, "P2", "KID").await.expect(200);
    assert_eq!(
        parent_of(&srv, &org.user_key, "KID").await["id"],
        json!(ids[1])
    );
    let r = srv.get("/api/v2/units/P1", &org.user_key).await;
    assert_eq!(r.expect(200)["children"], json!([]));
    // Removing from the old parent is now refused.
    let r = remove(&srv, &org.user_key, "P1", "KID").await;
    r.expect(400);
    assert!(r.message().contains("is not a child of"), "{}", r.text);
}

#[tokio::test]
async fn every_error_row() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    units(&srv, &org.user_key, &["A", "B"]).await;

    // Unknown parent or child: 404, add and remove.
    for (p, ch) in [("NOPE", "B"), ("A", "NOPE")] {
        add(&srv, &org.user_key, p, ch).await.expect(404);
        remove(&srv, &org.user_key, p, ch).await.expect(404);
    }
    // Empty or blank child: 400.
    for ch in ["", "   "] {
        add(&srv, &org.user_key, "A", ch).await.expect(400);
        remove(&srv, &org.user_key, "A", ch).await.expect(400);
    }
    srv.delete("/api/v2/units/A/children", &org.user_key)
        .await
        .expect(400);
    srv.call(
        Method::PUT,
        "/api/v2/units/A/children",
        Some(&org.user_key),
        Some(json!({})),
    )
    .await
    .expect(400);
    // Empty parent segment: a JSON error.
    let r = add(&srv, &org.user_key, "", "B").await;
    assert!(r.status == 404 || r.status == 400, "{}", r.status);
    assert_error_envelope(&r);
    let r = srv.get("/api/v2/units//children", &org.user_key).await;
    r.expect(404);
    // Other methods on the route: a JSON 405 naming what is allowed.
    let r = srv.get("/api/v2/units/A/children", &org.user_key).await;
    r.expect(405);
    assert!(r.headers.get("allow").is_some(), "{:?}", r.headers);
    // Self link: 400.
    let r = add(&srv, &org.user_key, "A", "a").await;
    r.expect(400);
    // Not a child: 400 with the client's wording.
    let r = remove(&srv, &org.user_key, "A", "B").await;
    r.expect(400);
    assert_eq!(r.message(), "Unit B is not a child of unit A");
}

#[tokio::test]
async fn cycles_are_refused_at_any_depth() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let serials: Vec<String> = (0..11).map(|i| format!("U{i:02}")).collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    units(&srv, &org.user_key, &refs).await;
    // A chain U00 → U01 → … → U10.
    for w in serials.windows(2) {
        add(&srv, &org.user_key, &w[0], &w[1]).await.expect(200);
    }
    // Any ancestor of U0d cannot become its child (depth 1, 2, 3, 4 … 10).
    for depth in [1usize, 2, 3, 4, 10] {
        let descendant = &serials[depth];
        let r = add(&srv, &org.user_key, descendant, &serials[0]).await;
        r.expect(400);
        assert!(r.error_text().contains("cycle"), "{}", r.text);
    }
    let r = add(&srv, &org.user_key, &serials[10], &serials[7]).await;
    r.expect(400);
    // Nothing changed: U00 still has no parent, U07's parent is still U06.
    assert_eq!(parent_of(&srv, &org.user_key, "U00").await, json!(null));
    assert_eq!(
        parent_of(&srv, &org.user_key, "U07").await["serial_number"],
        json!("U06")
    );
    // Re-hanging a subtree elsewhere in its own tree is fine when no cycle results.
    add(&srv, &org.user_key, "U00", "U05").await.expect(200);
    assert_eq!(
        parent_of(&srv, &org.user_key, "U05").await["serial_number"],
        json!("U00")
    );
}

#[tokio::test]
async fn long_serials_and_punctuation_and_stations() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let parent = format!("P_{}", "-".repeat(58));
    let child = format!("C-{}", "_".repeat(58));
    assert_eq!(parent.len(), 60);
    units(&srv, &org.user_key, &[&parent, &child]).await;
    let c = srv.client(&org.station_key);
    c.units()
        .add_child()
        .serial_number(&parent)
        .child_serial_number(&child)
        .send()
        .await
        .unwrap();
    let got = c.units().get().serial_number(&child).send().await.unwrap();
    assert_eq!(got.parent.unwrap().serial_number, parent);
    c.units()
        .remove_child()
        .serial_number(&parent)
        .child_serial_number(&child)
        .send()
        .await
        .unwrap();
    let got = c.units().get().serial_number(&parent).send().await.unwrap();
    assert!(got.children.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn links_stay_within_the_organization() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    units(&srv, &a.user_key, &["A-PARENT", "A-CHILD"]).await;
    units(&srv, &b.user_key, &["B-PARENT"]).await;
    add(&srv, &a.user_key, "A-PARENT", "A-CHILD")
        .await
        .expect(200);

    add(&srv, &b.user_key, "B-PARENT", "A-CHILD")
        .await
        .expect(404);
    add(&srv, &b.user_key, "A-PARENT", "A-CHILD")
        .await
        .expect(404);
    remove(&srv, &b.user_key, "A-PARENT", "A-CHILD")
        .await
        .expect(404);
    assert_eq!(
        parent_of(&srv, &a.user_key, "A-CHILD").await["serial_number"],
        json!("A-PARENT")
    );
}

#[tokio::test]
async fn concurrent_opposite_links_never_form_a_cycle() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    for round in 0..5 {
        let a = format!("A{round}");
        let b = format!("B{round}");
        if round == 0 {
            units(&srv, &org.user_key, &[&a, &b]).await;
        } else {
            unit(&srv, &org.user_key, &a, "P", "A").await;
            unit(&srv, &org.user_key, &b, "P", "A").await;
        }
        let (r1, r2) = tokio::join!(
            add(&srv, &org.user_key, &a, &b),
            add(&srv, &org.user_key, &b, &a)
        );
        let mut statuses = [r1.status, r2.status];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "exactly one link wins");
        let pa = parent_of(&srv, &org.user_key, &a).await;
        let pb = parent_of(&srv, &org.user_key, &b).await;
        assert!(pa.is_null() != pb.is_null(), "{pa} {pb}");
    }
}

#[tokio::test]
async fn sub_units_of_runs_are_children() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    units(&srv, &org.user_key, &["OLD-PARENT", "SUB"]).await;
    add(&srv, &org.user_key, "OLD-PARENT", "SUB")
        .await
        .expect(200);
    create_run(
        &srv,
        &org.user_key,
        &org.procedure_id,
        "2026-06-01T10:00:00Z",
        json!({"serial_number": "ASSY", "part_number": "P", "sub_units": ["sub"]}),
    )
    .await;
    assert_eq!(
        parent_of(&srv, &org.user_key, "SUB").await["serial_number"],
        json!("ASSY")
    );
    let r = srv.get("/api/v2/units/OLD-PARENT", &org.user_key).await;
    assert_eq!(r.expect(200)["children"], json!([]));
    // The assembly cannot become a child of its sub-unit.
    add(&srv, &org.user_key, "SUB", "ASSY").await.expect(400);
    remove(&srv, &org.user_key, "ASSY", "SUB").await.expect(200);
}

/// A guard for the one-off 500 once seen from `units.add_child` under load on Postgres:
/// links and run creates that adopt the same units as sub-units (and lock their parents
/// for a metadata merge), all at once. No request may fail with a 5xx. (The 500 has not
/// reproduced here; `add_child` and `remove_child` now retry a deadlock or serialization
/// failure as a whole transaction, like the other writes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_and_run_creates_on_the_same_units_never_fail() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let t = "2026-03-01T10:00:00.000Z";
    let run = |parent: String, child: String, i: usize| {
        serde_json::json!({
            "serial_number": parent, "procedure_id": org.procedure_id, "part_number": "P",
            "revision_number": "A", "outcome": "PASS", "started_at": t, "ended_at": t,
            "unit_metadata": {"round": i}, "sub_units": [child]
        })
    };
    // Units to link: two parents, four children.
    for s in ["PA", "PB", "C1", "C2", "C3", "C4"] {
        let body = serde_json::json!({"serial_number": s, "procedure_id": org.procedure_id,
            "part_number": "P", "revision_number": "A", "outcome": "PASS",
            "started_at": t, "ended_at": t});
        srv.post("/api/v2/runs", &org.user_key, body)
            .await
            .expect(200);
    }
    let mut failures = Vec::new();
    for round in 0..12 {
        let mut tasks = Vec::new();
        for k in 0..8 {
            let parent = if k % 2 == 0 { "PA" } else { "PB" }.to_string();
            let child = format!("C{}", 1 + (k + round) % 4);
            let (srv_url, key) = (srv.url.clone(), org.user_key.clone());
            let body = run(parent.clone(), child.clone(), round);
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let r = if k % 4 < 2 {
                    http.post(format!("{srv_url}/api/v2/runs"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                } else {
                    http.put(format!("{srv_url}/api/v2/units/{parent}/children"))
                        .bearer_auth(&key)
                        .json(&serde_json::json!({"child_serial_number": child}))
                        .send()
                        .await
                };
                let r = r.expect("answered");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            }));
        }
        for task in tasks {
            let (status, text) = task.await.unwrap();
            // A link that would make a cycle is refused (400); nothing else may fail.
            if status >= 500 || (status != 200 && !text.contains("cycle")) {
                failures.push(format!("round {round}: {status} {text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A link racing the deletion of one of its units answers 404 (or 200 when the link
/// won), never a 500: on Postgres the parent could vanish between the lookup and the
/// update, whose foreign-key check then failed.
#[tokio::test]
async fn links_racing_unit_deletes_answer_404_not_500() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let t = "2026-03-01T10:00:00.000Z";
    let mut failures = Vec::new();
    for round in 0..40 {
        let (parent, child) = (format!("RP{round}"), format!("RC{round}"));
        for s in [&parent, &child] {
            let body = serde_json::json!({"serial_number": s, "procedure_id": org.procedure_id,
                "part_number": "P", "outcome": "PASS", "started_at": t, "ended_at": t});
            srv.post("/api/v2/runs", &org.user_key, body)
                .await
                .expect(200);
        }
        let link = {
            let (url, key, parent, child) = (
                srv.url.clone(),
                org.user_key.clone(),
                parent.clone(),
                child.clone(),
            );
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .put(format!("{url}/api/v2/units/{parent}/children"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"child_serial_number": child}))
                    .send()
                    .await
                    .expect("answered");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            })
        };
        // Delete the parent in one round, the child in the next.
        let doomed = if round % 2 == 0 { &parent } else { &child };
        let delete = srv
            .delete(
                &format!("/api/v2/units?serial_numbers={doomed}"),
                &org.user_key,
            )
            .await;
        if delete.status != 200 {
            failures.push(format!(
                "round {round}: delete {} {}",
                delete.status, delete.text
            ));
        }
        let (status, text) = link.await.unwrap();
        if status != 200 && status != 404 {
            failures.push(format!("round {round}: link {status} {text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
