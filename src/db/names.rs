//! Folded names (`name_key`) of procedures, stations, parts and users: what case-insensitive
//! search and sorting by name compare, the same on both backends. Every write stores
//! `ci_key(name)`; rows from before the column existed are folded here, at start.

use super::{ci_key, Db, DbResult, Id, Sql};

/// Rows folded per transaction.
const BATCH: i64 = 500;

/// One table with a folded name: how to find its unfolded rows and fold one.
struct Folded {
    unfolded: &'static str,
    fold: &'static str,
}

const TABLES: [Folded; 4] = [
    Folded {
        unfolded: "SELECT id, name FROM procedures WHERE name_key IS NULL LIMIT $1",
        fold: "UPDATE procedures SET name_key = $1 WHERE id = $2",
    },
    Folded {
        unfolded: "SELECT id, name FROM stations WHERE name_key IS NULL LIMIT $1",
        fold: "UPDATE stations SET name_key = $1 WHERE id = $2",
    },
    Folded {
        unfolded: "SELECT id, name FROM parts WHERE name_key IS NULL LIMIT $1",
        fold: "UPDATE parts SET name_key = $1 WHERE id = $2",
    },
    Folded {
        unfolded: "SELECT id, name FROM users WHERE name_key IS NULL AND name IS NOT NULL LIMIT $1",
        fold: "UPDATE users SET name_key = $1 WHERE id = $2",
    },
];

impl Db {
    /// Folds the names that have no `name_key` yet (rows written before migration 0008,
    /// or bulk-loaded by SQL). One query per table when there is none.
    pub async fn fold_names(&self) -> DbResult<u64> {
        let mut folded = 0;
        for table in &TABLES {
            loop {
                let rows: Vec<(Id, String)> = self
                    .read()
                    .fetch_all(Sql::new(table.unfolded).bind(BATCH))
                    .await?;
                if rows.is_empty() {
                    break;
                }
                let mut tx = self.begin().await?;
                for (id, name) in &rows {
                    tx.execute(Sql::new(table.fold).bind(ci_key(name)).bind(*id))
                        .await?;
                }
                tx.commit().await?;
                folded += rows.len() as u64;
            }
        }
        Ok(folded)
    }
}
