//! `tofulab keys …`: API keys minted offline, straight into the database.

use crate::caller::Principal;
use crate::db::{Db, Id};

/// `tofulab keys create`: a new key for a user (by email) or a station (by id), printed
/// once on stdout.
pub async fn create_key(
    user: Option<String>,
    station: Option<String>,
    organization: Option<String>,
    database_url: &str,
) -> Result<(), String> {
    let db = Db::connect(database_url).await?;
    let (org_id, principal, owner) = match (user, station) {
        (Some(email), None) => {
            let mut found = db.users_by_email(&email).await.map_err(|e| e.to_string())?;
            if let Some(org) = &organization {
                found.retain(|(_, o)| o.slug == *org || o.name == *org);
            }
            match found.len() {
                0 => return Err(format!("no user with email {email}")),
                1 => {
                    let (u, o) = found.remove(0);
                    (
                        o.id,
                        Principal::User(u.id),
                        format!("user {} ({})", u.email, o.name),
                    )
                }
                _ => {
                    let orgs: Vec<String> = found.iter().map(|(_, o)| o.slug.clone()).collect();
                    return Err(format!(
                        "{email} is a member of several organizations ({}); choose one with --organization",
                        orgs.join(", ")
                    ));
                }
            }
        }
        (None, Some(station)) => {
            let id = Id::parse(station.trim())
                .ok_or_else(|| format!("`{station}` is not a station id"))?;
            let org = db
                .station_org(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no station with id {id}"))?;
            (org, Principal::Station(id), format!("station {id}"))
        }
        _ => return Err("give exactly one of --user EMAIL or --station ID".into()),
    };
    let key = db
        .create_api_key(org_id, principal)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("Created an API key for {owner}. It is shown only this once:");
    println!("{key}");
    db.close().await;
    Ok(())
}
