//! Case-insensitive search, uniqueness and sorting of non-ASCII names behave the same on
//! SQLite and Postgres: names are folded once, by Rust (`ci_key`), and the folded form is
//! what both backends compare (SQLite's `lower()` folds ASCII only).

mod common;

use common::*;
use serde_json::{json, Value};

fn names(list: &Value, field: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn searching_names_folds_all_of_unicode() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let key = &org.user_key;
    for name in ["Écran Test", "ÄRGER Prüfung", "Σήμα Έλεγχος", "測試 程序"] {
        srv.post("/api/v2/procedures", key, json!({"name": name}))
            .await
            .expect(200);
        srv.post("/api/v2/stations", key, json!({"name": name}))
            .await
            .expect(200);
    }
    for (query, expected) in [
        ("écran", "Écran Test"),
        ("ÉCRAN", "Écran Test"),
        ("ärger", "ÄRGER Prüfung"),
        ("PRÜFUNG", "ÄRGER Prüfung"),
        ("σήμα", "Σήμα Έλεγχος"),
        ("ΈΛΕΓΧΟΣ", "Σήμα Έλεγχος"),
        ("測試", "測試 程序"),
    ] {
        let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let found = srv
            .get(&format!("/api/v2/procedures?search_query={q}"), key)
            .await
            .expect(200)
            .clone();
        assert_eq!(names(&found, "name"), vec![expected], "procedures: {query}");
        let found = srv
            .get(&format!("/api/v2/stations?search_query={q}"), key)
            .await
            .expect(200)
            .clone();
        assert_eq!(names(&found, "name"), vec![expected], "stations: {query}");
    }

    // Runs are found by their procedure's name.
    let procedures = srv
        .get("/api/v2/procedures?search_query=%C3%A9cran", key)
        .await;
    let procedure_id = procedures.expect(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = "2026-03-01T10:00:00.000Z";
    srv.post(
        "/api/v2/runs",
        key,
        json!({"serial_number": "SN-1", "procedure_id": procedure_id, "part_number": "P-1",
               "outcome": "PASS", "started_at": t, "ended_at": t}),
    )
    .await
    .expect(200);
    let runs = srv.get("/api/v2/runs?search_query=%C3%89CRAN", key).await;
    assert_eq!(runs.expect(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn names_sort_by_code_point_and_natural_keys_are_unique_ignoring_case() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let key = &org.user_key;
    for (number, name) in [
        ("P-1", "écran"),
        ("P-2", "Zeta"),
        ("P-3", "ÄRGER"),
        ("P-4", "alpha"),
        ("P-5", "Ωmega"),
        ("P-6", "測試"),
    ] {
        srv.post(
            "/api/v2/parts",
            key,
            json!({"number": number, "name": name}),
        )
        .await
        .expect(200);
    }
    // Folded: alpha, zeta, ärger (U+00E4), écran (U+00E9), ωmega (U+03C9), 測試.
    let expected = ["alpha", "Zeta", "ÄRGER", "écran", "Ωmega", "測試"];
    let asc = srv
        .get("/api/v2/parts?sort_by=name&sort_order=asc", key)
        .await;
    assert_eq!(names(&asc.expect(200).clone(), "name"), expected);
    let desc = srv
        .get("/api/v2/parts?sort_by=name&sort_order=desc", key)
        .await;
    let mut reversed = expected.to_vec();
    reversed.reverse();
    assert_eq!(names(&desc.expect(200).clone(), "name"), reversed);

    // Part numbers and serials are unique ignoring case, in every script.
    for (first, second) in [
        ("ÉCRAN-1", "écran-1"),
        ("ΣΉΜΑ-1", "σήμα-1"),
        ("STRAẞE-1", "straße-1"),
    ] {
        srv.post("/api/v2/parts", key, json!({"number": first}))
            .await
            .expect(200);
        srv.post("/api/v2/parts", key, json!({"number": second}))
            .await
            .expect(409);
    }
}

#[tokio::test]
async fn searching_logs_and_metadata_folds_all_of_unicode() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let key = &org.user_key;
    let t = "2026-03-01T10:00:00.000Z";
    let messages = [
        "Écran calibré",
        "ÄRGER mit dem Netzteil",
        "Σήμα χαμηλό",
        "測試 完成 [*?]",
    ];
    for (i, message) in messages.iter().enumerate() {
        srv.post(
            "/api/v2/runs",
            key,
            json!({"serial_number": format!("SN-{i}"), "procedure_id": org.procedure_id,
                   "part_number": "P-1", "outcome": "PASS", "started_at": t, "ended_at": t,
                   "metadata": {"note": message},
                   "logs": [{"level": "INFO", "timestamp": t, "message": message,
                             "source_file": "t.py", "line_number": 1}]}),
        )
        .await
        .expect(200);
    }
    for (query, expected) in [
        ("écran", 0),
        ("ÉCRAN CALIBRÉ", 0),
        ("ärger", 1),
        ("NETZTEIL", 1),
        ("σήμα", 2),
        ("ΧΑΜΗΛΌ", 2),
        ("測試", 3),
        ("[*?]", 3),
    ] {
        let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let logs = srv
            .get(&format!("/api/v2/logs?search_query={q}"), key)
            .await
            .expect(200)
            .clone();
        assert_eq!(
            names(&logs, "message"),
            vec![messages[expected]],
            "logs: {query}"
        );
        let filter = json!({"note": {"contains": query}}).to_string();
        let f: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let runs = srv
            .get(&format!("/api/v2/runs?metadata={f}"), key)
            .await
            .expect(200)
            .clone();
        let serials: Vec<&Value> = runs["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["unit"]["serial_number"])
            .collect();
        assert_eq!(
            serials,
            vec![&json!(format!("SN-{expected}"))],
            "runs by metadata: {query}"
        );
    }
    // Nothing matches where no case of the text occurs.
    let logs = srv.get("/api/v2/logs?search_query=%C3%A9crant", key).await;
    assert_eq!(logs.expect(200)["data"].as_array().unwrap().len(), 0);
}
