//! The dashboard over HTTP: signing in and out, the session cookie, redirects, the
//! pages' content, organization isolation, revoked keys, and that no key is ever
//! rendered. (tests/browser/ drives the same pages in a real browser.)

mod common;

use common::{TestOrg, TestServer};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{redirect, Method};
use serde_json::{json, Value};
use tofulab::Settings;

/// 2026-03-01 10:00:00 UTC plus `secs`.
fn at(secs: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap();
    (base + chrono::Duration::seconds(secs))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A browser-like client that does not follow redirects (the tests look at them).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookie(&self) -> String {
        self.headers
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(req: reqwest::RequestBuilder) -> Page {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Page {
        status,
        headers,
        body,
    }
}

async fn post_login(srv: &TestServer, fields: &[(&str, &str)]) -> Page {
    send(
        http()
            .post(format!("{}/login", srv.url))
            .form(fields)
            .header("origin", srv.url.clone()),
    )
    .await
}

/// Signs in with `key`; returns the `Cookie` header value for later requests.
async fn sign_in(srv: &TestServer, key: &str) -> String {
    let p = post_login(srv, &[("api_key", key)]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let set = p.set_cookie();
    set.split(';').next().unwrap().to_string()
}

async fn get(srv: &TestServer, path: &str, cookie: Option<&str>) -> Page {
    let mut req = http().get(format!("{}{}", srv.url, path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(req).await
}

/// A run with a failing and a passing measurement, logs, and a sub-unit; returns its id.
async fn failing_run(srv: &TestServer, org: &TestOrg, serial: &str) -> String {
    let r = srv
        .post(
            "/api/v2/runs",
            &org.station_key,
            json!({
                "serial_number": serial, "procedure_id": org.procedure_id,
                "part_number": "PCBA-100", "revision_number": "B", "batch_number": "LOT-7",
                "started_at": at(0), "ended_at": at(90), "outcome": "FAIL",
                "phases": [
                    {"name": "power_on", "outcome": "PASS", "started_at": at(0), "ended_at": at(30),
                     "measurements": [{"name": "vcc", "outcome": "PASS", "measured_value": 3.31,
                                       "units": "V", "validators": [{"operator": "range", "expected_value": [3.2, 3.4], "outcome": "PASS"}]}]},
                    {"name": "rf_check", "outcome": "FAIL", "started_at": at(30), "ended_at": at(90),
                     "measurements": [
                        {"name": "tx_power", "outcome": "FAIL", "measured_value": 11.5, "units": "dBm",
                         "validators": [{"operator": ">=", "expected_value": 12.0, "outcome": "FAIL"}]},
                        {"name": "sweep", "outcome": "PASS", "units": "dB",
                         "x_axis": {"data": [1, 2, 3, 4], "units": "GHz"},
                         "y_axis": [{"data": [-1.0, -1.5, -2.5, -4.0], "name": "gain"}]}
                     ]}
                ],
                "logs": [
                    {"level": "INFO", "timestamp": at(1), "message": "booting <b>DUT</b>",
                     "source_file": "boot.py", "line_number": 3},
                    {"level": "ERROR", "timestamp": at(60), "message": "tx power low",
                     "source_file": "rf.py", "line_number": 42}
                ]
            }),
        )
        .await;
    r.expect(200)["id"].as_str().unwrap().to_string()
}

async fn passing_run(srv: &TestServer, org: &TestOrg, serial: &str, offset: i64) -> String {
    let r = srv
        .post(
            "/api/v2/runs",
            &org.user_key,
            json!({
                "serial_number": serial, "procedure_id": org.procedure_id,
                "part_number": "PCBA-200", "started_at": at(offset), "ended_at": at(offset + 10),
                "outcome": "PASS"
            }),
        )
        .await;
    r.expect(200)["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn signing_in_sets_a_strict_session_cookie_and_signing_out_ends_it() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    // Without a session every page sends the browser to the sign-in form.
    let p = get(&srv, "/", None).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location(), "/login");
    let p = get(&srv, "/procedures", None).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location(), "/login?next=%2Fprocedures");

    let p = get(&srv, "/login", None).await;
    assert_eq!(p.status, 200);
    assert!(p.content_type().starts_with("text/html"));
    assert!(p.body.contains(r#"name="api_key""#), "{}", p.body);

    let p = post_login(&srv, &[("api_key", &org.user_key)]).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location(), "/");
    let set = p.set_cookie();
    assert!(set.starts_with("tofulab_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure ({set})");
    let token = set.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(token.len() >= 40);
    assert!(!set.contains(&org.user_key));
    let cookie = set.split(';').next().unwrap().to_string();

    let p = get(&srv, "/", Some(&cookie)).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Lab Admin"), "user shown");
    assert!(p.body.contains(">Lab<"), "organization shown");

    // Signed in, the form sends you on.
    let p = get(&srv, "/login", Some(&cookie)).await;
    assert_eq!(p.status, 303);

    // `next` leads back to the page asked for, but never off the site.
    let p = post_login(&srv, &[("api_key", &org.user_key), ("next", "/procedures")]).await;
    assert_eq!(p.location(), "/procedures");
    let p = post_login(
        &srv,
        &[("api_key", &org.user_key), ("next", "//evil.example/")],
    )
    .await;
    assert_eq!(p.location(), "/");

    let p = send(
        http()
            .post(format!("{}/logout", srv.url))
            .header("cookie", &cookie)
            .header("origin", srv.url.clone()),
    )
    .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location(), "/login");
    assert!(p.set_cookie().contains("Max-Age=0"));
    let p = get(&srv, "/", Some(&cookie)).await;
    assert_eq!(p.status, 303, "the session is gone server-side");
    // A made-up token is no better.
    let p = get(&srv, "/", Some("tofulab_session=madeup")).await;
    assert_eq!(p.status, 303);
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let settings = Settings {
        public_url: Some("https://lab.example".into()),
        ..Settings::default()
    };
    let srv = TestServer::start_with(settings, None).await;
    let org = srv.org("Lab").await;
    let p = send(
        http()
            .post(format!("{}/login", srv.url))
            .form(&[("api_key", org.user_key.as_str())]),
    )
    .await;
    assert_eq!(p.status, 303);
    assert!(p.set_cookie().contains("; Secure"), "{}", p.set_cookie());
}

#[tokio::test]
async fn wrong_and_station_keys_get_the_form_again_with_a_message() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    let p = post_login(&srv, &[("api_key", "tp_user_nosuchkeyatall0000000000")]).await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("not valid"), "{}", p.body);
    assert!(p.body.contains(r#"name="api_key""#));
    assert!(p.set_cookie().is_empty());
    assert!(
        !p.body.contains("tp_user_nosuchkeyatall"),
        "the key is not echoed"
    );

    let p = post_login(&srv, &[("api_key", &org.station_key)]).await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("station key"), "{}", p.body);
    assert!(p.set_cookie().is_empty());

    let p = post_login(&srv, &[("api_key", "  ")]).await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("Enter a user API key"));

    // A form posted from another site is refused, even with a good key.
    let p = send(
        http()
            .post(format!("{}/login", srv.url))
            .form(&[("api_key", org.user_key.as_str())])
            .header("origin", "http://evil.example"),
    )
    .await;
    assert_eq!(p.status, 403);
    assert!(p.set_cookie().is_empty());
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_like_api_authentication() {
    let srv = TestServer::start_with(Settings::default(), Some(1)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let p = post_login(&srv, &[("api_key", "tp_user_wrongwrongwrongwrong00")]).await;
        if p.status == 429 {
            assert!(p.body.contains("Too many sign-in attempts"), "{}", p.body);
            assert!(p.headers.get("retry-after").is_some());
        }
        statuses.push(p.status);
    }
    // A burst of 2 per address, then 429.
    assert_eq!(statuses[..2], [401, 401]);
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn pages_show_runs_units_and_the_failed_measurement() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = failing_run(&srv, &org, "SN-FAIL-1").await;
    passing_run(&srv, &org, "SN-PASS-1", 100).await;
    // Genealogy: SN-FAIL-1 is built into a chassis and holds a radio module.
    passing_run(&srv, &org, "CHASSIS-1", 200).await;
    passing_run(&srv, &org, "RADIO-1", 300).await;
    for (parent, child) in [("CHASSIS-1", "SN-FAIL-1"), ("SN-FAIL-1", "RADIO-1")] {
        srv.call(
            Method::PUT,
            &format!("/api/v2/units/{parent}/children"),
            Some(&org.user_key),
            Some(json!({"child_serial_number": child})),
        )
        .await
        .expect(200);
    }
    let cookie = sign_in(&srv, &org.user_key).await;

    // Runs, newest first, with outcome words besides colours.
    let p = get(&srv, "/", Some(&cookie)).await;
    assert_eq!(p.status, 200);
    let (a, b) = (
        p.body.find("RADIO-1").unwrap(),
        p.body.find("SN-FAIL-1").unwrap(),
    );
    assert!(a < b, "newest first");
    assert!(p.body.contains("✗ FAIL") || p.body.contains("</span> FAIL"));
    assert!(p.body.contains(&format!("/runs/{run}")));

    // Filters.
    let p = get(&srv, "/?outcome=FAIL", Some(&cookie)).await;
    assert!(p.body.contains("SN-FAIL-1") && !p.body.contains("SN-PASS-1"));
    let p = get(&srv, "/?serial=sn-pass-1", Some(&cookie)).await;
    assert!(p.body.contains("SN-PASS-1") && !p.body.contains("SN-FAIL-1"));
    let p = get(
        &srv,
        "/?part=PCBA-100&revision=B&batch=LOT-7",
        Some(&cookie),
    )
    .await;
    assert!(p.body.contains("SN-FAIL-1") && !p.body.contains("SN-PASS-1"));
    let p = get(
        &srv,
        &format!("/?station={}", org.station_id),
        Some(&cookie),
    )
    .await;
    assert!(p.body.contains("SN-FAIL-1") && !p.body.contains("SN-PASS-1"));
    let p = get(&srv, "/?q=pass-1", Some(&cookie)).await;
    assert!(p.body.contains("SN-PASS-1") && !p.body.contains("SN-FAIL-1"));
    let p = get(&srv, "/?from=2026-03-02&to=2026-03-31", Some(&cookie)).await;
    assert!(
        p.body.contains("No run matches"),
        "date range excludes every run"
    );
    let p = get(&srv, "/?from=2026-03-01&to=2026-03-01", Some(&cookie)).await;
    assert!(p.body.contains("SN-FAIL-1"));
    let p = get(
        &srv,
        &format!("/?procedure={}", org.procedure_id),
        Some(&cookie),
    )
    .await;
    assert!(p.body.contains("SN-FAIL-1"));
    // The live refresh gets the rows of the same filter.
    let p = get(&srv, "/runs/rows?outcome=PASS", Some(&cookie)).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("SN-PASS-1") && !p.body.contains("SN-FAIL-1"));
    assert!(p.body.trim_start().starts_with("<tr"));

    // The run: facts, the failed measurement highlighted with its limit, a plot, logs.
    let p = get(&srv, &format!("/runs/{run}"), Some(&cookie)).await;
    assert_eq!(p.status, 200);
    for fact in [
        "PCBA-100",
        "LOT-7",
        "Lab Functional",
        "Lab Bench",
        "1 min 30 s",
    ] {
        assert!(p.body.contains(fact), "{fact} missing");
    }
    let row_start = p.body.find("out-of-limit").expect("a highlighted row");
    let row = &p.body[row_start..row_start + p.body[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains("tx_power") && row.contains("11.5") && row.contains("x &gt;= 12.0"),
        "{row}"
    );
    assert_eq!(
        p.body.matches("out-of-limit").count(),
        1,
        "only the failed one"
    );
    assert!(p.body.contains("<polyline"), "the sweep is plotted");
    assert!(
        p.body.contains(r#"class="phase" data-outcome="FAIL""#),
        "timeline"
    );
    assert!(
        p.body.contains("booting &lt;b&gt;DUT&lt;/b&gt;"),
        "log text escaped"
    );
    let p = get(&srv, &format!("/runs/{run}?log=ERROR"), Some(&cookie)).await;
    assert!(p.body.contains("tx power low") && !p.body.contains("booting"));

    // The unit: genealogy both ways and its runs.
    let p = get(&srv, "/units/SN-FAIL-1", Some(&cookie)).await;
    assert_eq!(p.status, 200);
    let (up, here, down) = (
        p.body.find("/units/CHASSIS-1").unwrap(),
        p.body.find("(this unit)").unwrap(),
        p.body.find("/units/RADIO-1").unwrap(),
    );
    assert!(up < here && here < down, "parent above, child below");
    assert!(p.body.contains(&format!("/runs/{run}")));
    // Serials are matched case-insensitively, as in the API.
    assert_eq!(
        get(&srv, "/units/sn-fail-1", Some(&cookie)).await.status,
        200
    );

    let p = get(&srv, "/procedures", Some(&cookie)).await;
    assert!(p
        .body
        .contains(&format!("/procedures/{}", org.procedure_id)));
}

#[tokio::test]
async fn another_organizations_ids_are_not_found_on_every_page() {
    let srv = TestServer::start().await;
    let lab = srv.org("Lab").await;
    let other = srv.org("Other").await;
    let theirs = failing_run(&srv, &other, "SN-THEIRS").await;
    let cookie = sign_in(&srv, &lab.user_key).await;
    for path in [
        format!("/runs/{theirs}"),
        "/units/SN-THEIRS".to_string(),
        format!("/procedures/{}", other.procedure_id),
        format!("/procedures/{}/csv/yield", other.procedure_id),
        format!("/attachments/{}", tofulab::db::Id::new()),
        "/runs/not-an-id".to_string(),
    ] {
        let p = get(&srv, &path, Some(&cookie)).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(p.content_type().starts_with("text/html"), "{path}");
        assert!(
            !p.body.contains("PCBA-100") && !p.body.contains("Other"),
            "{path}"
        );
    }
    let p = get(&srv, "/", Some(&cookie)).await;
    assert!(!p.body.contains("SN-THEIRS"), "their runs are not listed");
    assert!(!p.body.contains("Other Functional"), "nor their procedures");
    let p = get(&srv, "/?q=THEIRS", Some(&cookie)).await;
    assert!(!p.body.contains("SN-THEIRS"));
}

#[tokio::test]
async fn a_revoked_key_ends_its_sessions() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = failing_run(&srv, &org, "SN-1").await;
    let cookie = sign_in(&srv, &org.user_key).await;
    assert_eq!(get(&srv, "/", Some(&cookie)).await.status, 200);

    let revoked = srv
        .db
        .revoke_api_key(&tofulab::apikey::digest(&org.user_key))
        .await
        .unwrap();
    assert!(revoked);
    for path in [
        "/".to_string(),
        format!("/runs/{run}"),
        "/units/SN-1".into(),
    ] {
        let p = get(&srv, &path, Some(&cookie)).await;
        assert_eq!(p.status, 303, "{path}");
        assert!(p.location().starts_with("/login"));
    }
    assert_eq!(get(&srv, "/runs/rows", Some(&cookie)).await.status, 401);
    // Nor can it sign in again, and the API refuses it too.
    let p = post_login(&srv, &[("api_key", &org.user_key)]).await;
    assert_eq!(p.status, 401);
    assert_eq!(srv.get("/api/v2/runs", &org.user_key).await.status, 401);
}

#[tokio::test]
async fn no_page_ever_shows_a_key() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let run = failing_run(&srv, &org, "SN-1").await;
    let cookie = sign_in(&srv, &org.user_key).await;
    let mut bodies = String::new();
    for path in [
        "/".to_string(),
        "/login".into(),
        format!("/runs/{run}"),
        "/units/SN-1".into(),
        "/procedures".into(),
        format!("/procedures/{}", org.procedure_id),
        format!("/procedures/{}/csv/yield", org.procedure_id),
        "/runs/rows".into(),
    ] {
        let p = get(&srv, &path, Some(&cookie)).await;
        assert!(p.status == 200 || p.status == 303, "{path}: {}", p.status);
        bodies.push_str(&p.body);
    }
    let p = post_login(&srv, &[("api_key", &org.user_key)]).await;
    bodies.push_str(&p.body);
    for secret in [&org.user_key, &org.station_key] {
        assert!(!bodies.contains(secret.as_str()));
        // Not even the random part on its own.
        let tail = &secret[secret.rfind('_').unwrap() + 1..];
        assert!(!bodies.contains(tail));
    }
}

#[tokio::test]
async fn pages_are_html_with_a_strict_content_security_policy() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    let cookie = sign_in(&srv, &org.user_key).await;
    let p = get(&srv, "/", Some(&cookie)).await;
    let csp = p
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    assert_eq!(p.headers.get("cache-control").unwrap(), "no-store");
    // Assets are embedded and served without a session.
    let css = get(&srv, "/assets/app.css", None).await;
    assert_eq!(css.status, 200);
    assert!(css.content_type().starts_with("text/css"));
    let js = get(&srv, "/assets/app.js", None).await;
    assert!(js.body.contains("runs-body"));
    // Nothing on a page comes from another host.
    for needle in ["http://", "https://"] {
        let outside: Vec<&str> = p
            .body
            .match_indices(needle)
            .map(|(i, _)| &p.body[i..(i + 40).min(p.body.len())])
            .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
            .collect();
        assert!(outside.is_empty(), "{outside:?}");
    }
    // The API is untouched: unknown paths are still JSON 404.
    let r = srv.call(Method::GET, "/no/such/thing", None, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["code"], Value::from("NOT_FOUND"));
}

#[tokio::test]
async fn the_analytics_page_agrees_with_the_json_and_downloads_csv() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    failing_run(&srv, &org, "SN-1").await;
    for (i, serial) in ["SN-2", "SN-3", "SN-4"].iter().enumerate() {
        passing_run(&srv, &org, serial, 100 * (i as i64 + 1)).await;
    }
    let cookie = sign_in(&srv, &org.user_key).await;
    let window = "from=2026-03-01&to=2026-03-02";
    let json = srv
        .get(
            &format!(
                "/api/lab/v1/yield?procedure_id={}&{window}",
                org.procedure_id
            ),
            &org.user_key,
        )
        .await;
    let fpy = json.expect(200)["window"]["fpy"].as_f64().unwrap();
    assert_eq!(fpy, 0.75, "3 of 4 units passed first time");

    let p = get(
        &srv,
        &format!("/procedures/{}?{window}", org.procedure_id),
        Some(&cookie),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains(r#"data-metric="fpy">75.0%"#), "{}", p.body);
    assert!(p.body.contains(r#"data-metric="units">4<"#));
    // The failure Pareto names the failed phase; the capability table lists vcc.
    assert!(p.body.contains("rf_check"));
    assert!(p.body.contains(">vcc<"));

    // Without a window: the 30 days up to the latest run.
    let p = get(
        &srv,
        &format!("/procedures/{}", org.procedure_id),
        Some(&cookie),
    )
    .await;
    assert!(
        p.body.contains(r#"value="2026-03-01""#),
        "defaults to the latest run's day"
    );
    assert!(p.body.contains(r#"value="2026-01-31""#));

    // Yield as CSV: a header and one row per day.
    let c = get(
        &srv,
        &format!("/procedures/{}/csv/yield?{window}", org.procedure_id),
        Some(&cookie),
    )
    .await;
    assert_eq!(c.status, 200);
    assert!(c.content_type().starts_with("text/csv"));
    assert!(c
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"Lab_Functional-yield-2026-03-01-2026-03-02.csv\""));
    let lines: Vec<&str> = c.body.lines().collect();
    assert_eq!(lines[0], "date,group,units,fpy,spy,tpy,lpy");
    assert_eq!(lines[1], "2026-03-01,,4,0.75,0.75,0.75,0.75");
    assert_eq!(lines[2], "2026-03-02,,0,,,,");
    assert_eq!(lines.len(), 3);

    let c = get(
        &srv,
        &format!(
            "/procedures/{}/csv/failures-phases?{window}",
            org.procedure_id
        ),
        Some(&cookie),
    )
    .await;
    let lines: Vec<&str> = c.body.lines().collect();
    assert_eq!(
        lines[0],
        "phase,measurement,failed_runs,occurrences,share,cumulative_share"
    );
    assert_eq!(lines[1], "rf_check,,1,1,1,1");

    let c = get(
        &srv,
        &format!(
            "/procedures/{}/csv/series?{window}&phase=power_on&measurement=vcc",
            org.procedure_id
        ),
        Some(&cookie),
    )
    .await;
    let lines: Vec<&str> = c.body.lines().collect();
    assert!(lines[0].starts_with("started_at,value,run_id"));
    assert_eq!(lines.len(), 2, "{}", c.body);
    assert!(lines[1].contains(",3.31,"));

    for table in ["volume", "capability", "histogram", "failures-measurements"] {
        let c = get(
            &srv,
            &format!("/procedures/{}/csv/{table}?{window}", org.procedure_id),
            Some(&cookie),
        )
        .await;
        assert_eq!(c.status, 200, "{table}");
        assert!(c.body.lines().count() >= 2, "{table}: {}", c.body);
    }
    let c = get(
        &srv,
        &format!("/procedures/{}/csv/nonsense?{window}", org.procedure_id),
        Some(&cookie),
    )
    .await;
    assert_eq!(c.status, 404);
    // A bad window is a clear 400, not a crash.
    let p = get(
        &srv,
        &format!(
            "/procedures/{}?from=2026-03-05&to=2026-03-01",
            org.procedure_id
        ),
        Some(&cookie),
    )
    .await;
    assert_eq!(p.status, 400);
}
