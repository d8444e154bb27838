//! Stored metadata of parts, revisions and units (rules and list filters in
//! `crate::metadata`): how it is written, patched and read back.

use serde_json::Value;
use sqlx::types::Json;

use super::{Dialect, Id, Sql, Tx};
use crate::error::ApiResult;
use crate::metadata::{merge, Metadata};

/// A table whose rows carry metadata.
#[derive(Debug, Clone, Copy)]
pub enum MetaTable {
    Parts,
    Revisions,
    Units,
}

impl MetaTable {
    fn name(self) -> &'static str {
        match self {
            MetaTable::Parts => "parts",
            MetaTable::Revisions => "revisions",
            MetaTable::Units => "units",
        }
    }
}

/// The column value for metadata given on a create: NULL when nothing was given.
pub fn stored(m: Option<Metadata>) -> Option<Value> {
    m.filter(|m| !m.is_empty()).map(Value::Object)
}

/// Stored metadata as responses show it: always an object.
pub fn object(stored: Option<Json<Value>>) -> Metadata {
    match stored {
        Some(Json(Value::Object(m))) => m,
        _ => Metadata::new(),
    }
}

/// Applies a metadata PATCH (`null` deletes a key) to row `id` of `table`, inside `tx`;
/// 400 when the result would break the rules (more than 50 keys).
pub async fn patch(tx: &mut Tx, table: MetaTable, id: Id, changes: &Metadata) -> ApiResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let lock = match tx.dialect() {
        // DIALECT: SQLite write transactions are already exclusive (BEGIN IMMEDIATE).
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let (current,): (Option<Json<Value>>,) = tx
        .fetch_one(
            Sql::new(format!(
                "SELECT metadata FROM {} WHERE id = $1{lock}",
                table.name()
            ))
            .bind(id),
        )
        .await?;
    let current = Some(object(current)).filter(|m| !m.is_empty());
    let merged = stored(Some(merge(current, changes)?));
    tx.execute(
        Sql::new(format!(
            "UPDATE {} SET metadata = $1 WHERE id = $2",
            table.name()
        ))
        .bind(merged)
        .bind(id),
    )
    .await?;
    Ok(())
}
