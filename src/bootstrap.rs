//! First start: on an empty database with no seed, create an organization, an admin user
//! and a user API key, and print the key once with ready-to-paste client snippets.

use crate::caller::Principal;
use crate::db::identity::{insert_api_key, insert_organization, upsert_user};
use crate::db::Db;
use crate::error::ApiResult;

pub const DEFAULT_ORGANIZATION: &str = "My Lab";
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@tofulab.local";

/// What the first start created.
pub struct FirstStart {
    pub organization: String,
    pub email: String,
    pub api_key: String,
}

/// Creates the default organization, admin and key if the database has no
/// organization yet. Returns `None` on every later start.
pub async fn first_start(db: &Db) -> ApiResult<Option<FirstStart>> {
    if db.count_organizations().await? > 0 {
        return Ok(None);
    }
    let api_key = crate::apikey::generate(crate::apikey::KeyKind::User);
    let mut tx = db.begin().await?;
    // Re-check inside the write transaction: two processes may start at once.
    let (n,): (i64,) = tx
        .fetch_one(crate::db::Sql::new("SELECT COUNT(*) FROM organizations"))
        .await?;
    if n > 0 {
        return Ok(None);
    }
    let org = insert_organization(&mut tx, DEFAULT_ORGANIZATION, None).await?;
    let user = upsert_user(&mut tx, org.id, DEFAULT_ADMIN_EMAIL, Some("Admin")).await?;
    insert_api_key(&mut tx, org.id, Principal::User(user), &api_key).await?;
    tx.commit().await?;
    Ok(Some(FirstStart {
        organization: org.name,
        email: DEFAULT_ADMIN_EMAIL.to_string(),
        api_key,
    }))
}

/// The message printed once on first start.
pub fn first_start_message(f: &FirstStart, public_url: &str) -> String {
    let key = &f.api_key;
    let url = public_url.trim_end_matches('/');
    [
        String::new(),
        format!(
            "tofulab created organization \"{}\" with admin user {}.",
            f.organization, f.email
        ),
        "Its API key is shown only this once; store it now:".into(),
        String::new(),
        format!("    {key}"),
        String::new(),
        format!("Dashboard: open {url}/ in a browser and sign in with this key."),
        String::new(),
        "Python (pip install tofupilot):".into(),
        "    from tofupilot.v2 import TofuPilot".into(),
        format!("    client = TofuPilot(api_key=\"{key}\", server_url=\"{url}/api\")"),
        String::new(),
        "Rust (cargo add tofupilot):".into(),
        "    let client = tofupilot::TofuPilot::with_config(".into(),
        format!("        tofupilot::config::ClientConfig::new(\"{key}\").base_url(\"{url}/api\"),"),
        "    );".into(),
        String::new(),
        "Environment (official test suites, OpenHTF stations):".into(),
        format!("    export TOFUPILOT_URL={url}"),
        format!("    export TOFUPILOT_API_KEY={key}"),
    ]
    .join("\n")
}
