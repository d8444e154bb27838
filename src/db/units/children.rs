//! Parent/child links between units (BEHAVIOR.md §2.6). A unit has at most one parent;
//! links never form a cycle.

use super::unit_not_found;
use crate::db::error::{DbResult, StoreError};
use crate::db::{ci_key, retry_write, Db, Dialect, Id, Sql, Tx};

/// A unit addressed by serial: `(id, stored serial, parent id)`.
type UnitLink = (Id, String, Option<Id>);

impl Db {
    /// Makes `child` a child of `parent` (moving it from any previous parent); returns the
    /// child's id. 400 when the link would make a unit its own ancestor.
    pub async fn add_child(&self, org_id: Id, parent: &str, child: &str) -> DbResult<Id> {
        retry_write(|| self.add_child_once(org_id, parent, child)).await
    }

    async fn add_child_once(&self, org_id: Id, parent: &str, child: &str) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        lock_unit_tree(&mut tx, org_id).await?;
        let (parent_id, parent_serial, _) = find(&mut tx, org_id, parent).await?;
        let (child_id, child_serial, _) = find(&mut tx, org_id, child).await?;
        if parent_id == child_id {
            return Err(StoreError::rejected(format!(
                "Unit {child_serial} cannot be its own child"
            )));
        }
        // The child must not be the parent's ancestor at any depth. UNION (not UNION ALL)
        // ends the walk even on a corrupt, cyclic chain.
        let cycle: Option<(Id,)> = tx
            .fetch_optional(
                Sql::new(
                    "WITH RECURSIVE ancestors(id, parent_id) AS (
                        SELECT id, parent_id FROM units WHERE id = $1
                        UNION
                        SELECT u.id, u.parent_id FROM units u
                        JOIN ancestors a ON u.id = a.parent_id
                     )
                     SELECT id FROM ancestors WHERE id = $2",
                )
                .bind(parent_id)
                .bind(child_id),
            )
            .await?;
        if cycle.is_some() {
            return Err(StoreError::rejected(format!(
                "Unit {child_serial} cannot become a child of unit {parent_serial}: \
                 it is already its ancestor, the link would create a cycle"
            )));
        }
        tx.execute(
            Sql::new("UPDATE units SET parent_id = $1 WHERE id = $2")
                .bind(parent_id)
                .bind(child_id),
        )
        .await?;
        tx.commit().await?;
        Ok(child_id)
    }

    /// Unlinks `child` from `parent`; returns the child's id. 400 when it is not a child
    /// of that unit.
    pub async fn remove_child(&self, org_id: Id, parent: &str, child: &str) -> DbResult<Id> {
        retry_write(|| self.remove_child_once(org_id, parent, child)).await
    }

    async fn remove_child_once(&self, org_id: Id, parent: &str, child: &str) -> DbResult<Id> {
        let mut tx = self.begin().await?;
        lock_unit_tree(&mut tx, org_id).await?;
        let (parent_id, parent_serial, _) = find(&mut tx, org_id, parent).await?;
        let (child_id, child_serial, child_parent) = find(&mut tx, org_id, child).await?;
        if child_parent != Some(parent_id) {
            return Err(StoreError::rejected(format!(
                "Unit {child_serial} is not a child of unit {parent_serial}"
            )));
        }
        tx.execute(Sql::new("UPDATE units SET parent_id = NULL WHERE id = $1").bind(child_id))
            .await?;
        tx.commit().await?;
        Ok(child_id)
    }
}

/// The unit, locked until the transaction ends: a concurrent delete either happened
/// before (the unit is not found: 404) or waits for the link (on SQLite the write
/// transaction is exclusive anyway). Without the lock, on Postgres, a parent deleted
/// between this lookup and the update failed the update's foreign-key check (a 500).
async fn find(tx: &mut Tx, org_id: Id, serial: &str) -> DbResult<UnitLink> {
    let lock = tx.dialect().row_lock();
    tx.fetch_optional(
        Sql::new(
            "SELECT id, serial_number, parent_id FROM units WHERE org_id = $1 AND serial_key = $2",
        )
        .then(lock)
        .bind(org_id)
        .bind(ci_key(serial)),
    )
    .await?
    .ok_or_else(|| unit_not_found(serial))
}

/// Serializes link changes within an organization, so that two concurrent links cannot
/// together form a cycle that neither sees alone.
async fn lock_unit_tree(tx: &mut Tx, org_id: Id) -> DbResult<()> {
    match tx.dialect() {
        // DIALECT: SQLite write transactions are already exclusive (BEGIN IMMEDIATE).
        Dialect::Sqlite => Ok(()),
        Dialect::Postgres => {
            let b = org_id.0.as_bytes();
            let key = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                ^ 0x756e_6974_7472_6565; // "unittree"
            tx.execute(Sql::new("SELECT pg_advisory_xact_lock($1)").bind(key))
                .await?;
            Ok(())
        }
    }
}
