//! `tofulab seed FILE`: apply a seed file to a database.

use std::path::Path;

use crate::db::seed::{SeedFile, SeedReport};
use crate::db::Db;

/// Reads and applies a seed file; returns it with what applying it did.
pub async fn apply_seed_file(db: &Db, path: &Path) -> Result<(SeedFile, SeedReport), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
    let seed = SeedFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let report = db.apply_seed(&seed).await?;
    Ok((seed, report))
}

pub async fn seed(path: &Path, database_url: &str) -> Result<(), String> {
    let db = Db::connect(database_url).await?;
    let (_, report) = apply_seed_file(&db, path).await?;
    println!(
        "seed applied: {} organization(s), {} user(s), {} procedure(s), {} station(s) created",
        report.organizations, report.users, report.procedures, report.stations
    );
    db.close().await;
    Ok(())
}
