//! Users and whoami (BEHAVIOR.md §9): who a key belongs to, for user and station keys.

mod common;

use common::*;
use serde_json::{json, Value};
use tofulab::db::seed::{SeedFile, SeedOrganization, SeedUser};
use tofupilot::types::IdentityWhoamiType;

/// Adds a second member to the organization seeded as `org`.
async fn add_member(srv: &TestServer, org: &str, email: &str, name: Option<&str>) {
    let seed = SeedFile {
        organizations: vec![SeedOrganization {
            name: org.to_string(),
            slug: Some(org.to_lowercase()),
            users: vec![SeedUser {
                email: email.to_string(),
                name: name.map(String::from),
                api_key: None,
            }],
            teams: vec![],
            procedures: vec![],
            stations: vec![],
        }],
    };
    srv.db.apply_seed(&seed).await.unwrap();
}

fn emails(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn users_list_for_both_key_types() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;
    add_member(&srv, "Lab", "second@lab.test", None).await;

    // The official client reads it.
    let users = srv
        .client(&org.user_key)
        .users()
        .list()
        .send()
        .await
        .unwrap();
    assert_eq!(users.len(), 2);

    for key in [&org.user_key, &org.station_key] {
        let r = srv.get("/api/v2/users", key).await;
        let body = r.expect(200);
        assert_eq!(
            emails(body),
            vec!["admin@lab.test".to_string(), "second@lab.test".to_string()]
        );
        for u in body.as_array().unwrap() {
            for k in ["id", "email", "name", "image", "banned"] {
                assert!(u.get(k).is_some(), "{k} missing in {u}");
            }
            assert_eq!(u["banned"], json!(false));
            assert_eq!(u["image"], Value::Null);
        }
        let unnamed = body
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == "second@lab.test")
            .unwrap();
        assert_eq!(
            unnamed["name"],
            Value::Null,
            "nullable keys are present as null"
        );
    }

    // current=true: the caller for a user key, nothing for a station key.
    let all = srv.get("/api/v2/users", &org.user_key).await;
    let r = srv.get("/api/v2/users?current=true", &org.user_key).await;
    let me = r.expect(200).as_array().unwrap().clone();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0]["email"], json!("admin@lab.test"));
    assert!(all.json.as_array().unwrap().contains(&me[0]));
    let r = srv
        .get("/api/v2/users?current=true", &org.station_key)
        .await;
    assert_eq!(r.expect(200), &json!([]));
    let r = srv.get("/api/v2/users?current=false", &org.user_key).await;
    assert_eq!(r.expect(200).as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn current_user_is_for_user_keys() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    let me = srv
        .client(&org.user_key)
        .users()
        .get_current()
        .send()
        .await
        .unwrap();
    assert_eq!(me.email, "admin@lab.test");
    assert_eq!(me.name.as_deref(), Some("Lab Admin"));
    assert!(!me.banned);
    let r = srv.get("/api/v2/users/current", &org.user_key).await;
    assert_eq!(r.expect(200)["id"], json!(me.id));
    assert_eq!(r.json["image"], Value::Null);

    let refused = srv
        .client(&org.station_key)
        .users()
        .get_current()
        .send()
        .await;
    assert!(
        matches!(refused, Err(tofupilot::Error::Forbidden(_))),
        "{refused:?}"
    );
    let r = srv.get("/api/v2/users/current", &org.station_key).await;
    r.expect(403);
    assert!(r.error_text().contains("stations cannot"), "{}", r.text);
}

#[tokio::test]
async fn whoami_names_the_key_owner_and_organization() {
    let srv = TestServer::start().await;
    let org = srv.org("Lab").await;

    let me = srv
        .client(&org.user_key)
        .identity()
        .whoami()
        .send()
        .await
        .unwrap();
    assert_eq!(me.r#type, IdentityWhoamiType::User);
    let user = me.user.unwrap();
    assert_eq!(user.email, "admin@lab.test");
    assert!(me.station.is_none());
    assert_eq!(me.organization.slug, "lab");
    assert_eq!(me.organization.name, "Lab");
    let r = srv.get("/api/v2/whoami", &org.user_key).await;
    let body = r.expect(200);
    assert_eq!(body["type"], json!("user"));
    assert_eq!(body["station"], Value::Null);

    let me = srv
        .client(&org.station_key)
        .identity()
        .whoami()
        .send()
        .await
        .unwrap();
    assert_eq!(me.r#type, IdentityWhoamiType::Station);
    let station = me.station.unwrap();
    assert_eq!(station.id, org.station_id);
    assert_eq!(station.name, "Lab Bench");
    assert!(me.user.is_none());
    let r = srv.get("/api/v2/whoami", &org.station_key).await;
    let body = r.expect(200);
    assert_eq!(body["user"], Value::Null);
    assert_eq!(body["organization"]["slug"], json!("lab"));

    // The user's id in whoami is the one users/current and the users list show.
    let current = srv.get("/api/v2/users/current", &org.user_key).await;
    assert_eq!(current.expect(200)["id"], json!(user.id));
}

#[tokio::test]
async fn organizations_never_see_each_others_members() {
    let srv = TestServer::start().await;
    let a = srv.org("Alpha").await;
    let b = srv.org("Beta").await;
    add_member(&srv, "Alpha", "only-alpha@alpha.test", Some("A2")).await;

    for key in [&b.user_key, &b.station_key] {
        let r = srv.get("/api/v2/users", key).await;
        assert_eq!(emails(r.expect(200)), vec!["admin@beta.test".to_string()]);
    }
    let r = srv.get("/api/v2/users", &a.user_key).await;
    assert_eq!(
        emails(r.expect(200)),
        vec![
            "admin@alpha.test".to_string(),
            "only-alpha@alpha.test".to_string()
        ]
    );
    let r = srv.get("/api/v2/users?current=true", &b.user_key).await;
    assert_eq!(emails(r.expect(200)), vec!["admin@beta.test".to_string()]);
    let wa = srv.get("/api/v2/whoami", &a.user_key).await;
    let wb = srv.get("/api/v2/whoami", &b.station_key).await;
    assert_ne!(
        wa.expect(200)["organization"]["id"],
        wb.expect(200)["organization"]["id"]
    );
    assert_eq!(wb.json["organization"]["slug"], json!("beta"));
}
