//! `tofulab backup FILE [--database-url URL]`: a consistent copy of a SQLite database
//! taken while the server keeps serving (see `Db::backup_to`).

use std::path::Path;

use crate::db::Db;

pub async fn backup(file: &Path, database_url: &str) -> Result<(), String> {
    if let Some(path) = crate::db::sqlite_path(database_url) {
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    let db = Db::connect(database_url).await?;
    let result = db.backup_to(file).await;
    db.close().await;
    result.map_err(|e| format!("backup failed: {e}"))?;
    eprintln!("backup written to {}", file.display());
    Ok(())
}
