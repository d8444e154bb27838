//! Online backups of a SQLite database.

use std::path::Path;

use super::{Db, Sql};
use crate::db::error::{DbResult, StoreError};

impl Db {
    /// Writes a consistent copy of the database to `path` while it keeps serving:
    /// `VACUUM INTO` reads one snapshot (WAL mode lets writers go on meanwhile) and writes
    /// a compact, self-contained file. SQLite only: Postgres has `pg_dump`.
    pub async fn backup_to(&self, path: &Path) -> DbResult<()> {
        match &self.pools {
            super::Pools::Postgres(_) => Err(StoreError::rejected(
                "tofulab backup copies SQLite databases; back up Postgres with pg_dump or \
                 continuous archiving (see the README)",
            )),
            super::Pools::Sqlite { .. } => {
                if path.exists() {
                    return Err(StoreError::rejected(format!(
                        "{} already exists: a backup never overwrites a file",
                        path.display()
                    )));
                }
                let target = path.to_str().ok_or_else(|| {
                    StoreError::rejected(format!("{} is not a UTF-8 path", path.display()))
                })?;
                self.read()
                    .execute(Sql::new("VACUUM INTO $1").bind(target))
                    .await?;
                Ok(())
            }
        }
    }
}
