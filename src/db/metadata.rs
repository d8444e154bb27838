//! Stored metadata of parts, revisions, units and stations (the rules and the parsed list
//! filter are in `crate::metadata`): how it is written, patched, read back and filtered.

use serde_json::Value;
use sqlx::types::Json;

use super::{Dialect, Id, Sql, Tx};
use crate::db::error::{DbResult, StoreError};
use crate::metadata::{merge, Condition, Metadata};
use crate::values::contains_pattern;

/// A table whose rows carry metadata.
#[derive(Debug, Clone, Copy)]
pub enum MetaTable {
    Parts,
    Revisions,
    Units,
    Runs,
    Stations,
}

impl MetaTable {
    fn select_for_patch(self) -> Sql {
        Sql::new(match self {
            MetaTable::Parts => "SELECT metadata FROM parts WHERE id = $1",
            MetaTable::Revisions => "SELECT metadata FROM revisions WHERE id = $1",
            MetaTable::Units => "SELECT metadata FROM units WHERE id = $1",
            MetaTable::Runs => "SELECT metadata FROM runs WHERE id = $1",
            MetaTable::Stations => "SELECT metadata FROM stations WHERE id = $1",
        })
    }

    fn update(self) -> Sql {
        Sql::new(match self {
            MetaTable::Parts => "UPDATE parts SET metadata = $1 WHERE id = $2",
            MetaTable::Revisions => "UPDATE revisions SET metadata = $1 WHERE id = $2",
            MetaTable::Units => "UPDATE units SET metadata = $1 WHERE id = $2",
            MetaTable::Runs => "UPDATE runs SET metadata = $1 WHERE id = $2",
            MetaTable::Stations => "UPDATE stations SET metadata = $1 WHERE id = $2",
        })
    }
}

/// The column value for metadata: NULL when there is none. Every write goes through
/// here, so "no metadata" is stored one way.
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

/// Applies a metadata patch (`null` deletes a key, omitted keys are kept) to row `id` of
/// `table` inside `tx`, locking the row on Postgres so concurrent patches keep each
/// other's keys. Rejected, naming `field`, when the result would break the rules (more
/// than 50 keys). The one merge every entity's metadata goes through.
pub async fn patch(
    tx: &mut Tx,
    table: MetaTable,
    id: Id,
    changes: &Metadata,
    field: &'static str,
) -> DbResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut select = table.select_for_patch();
    select.push(tx.dialect().row_lock());
    let (current,): (Option<Json<Value>>,) = tx.fetch_one(select.bind(id)).await?;
    let current = Some(object(current)).filter(|m| !m.is_empty());
    let merged = merge(current, changes).map_err(|m| StoreError::rejected_at(field, m))?;
    tx.execute(table.update().bind(stored(Some(merged))).bind(id))
        .await?;
    Ok(())
}

/// Appends ` AND …` for every condition, matching on the JSON column `column`
/// (e.g. `s.metadata`).
pub fn push_filter(q: &mut Sql, dialect: Dialect, column: &'static str, conditions: &[Condition]) {
    for c in conditions {
        match dialect {
            // DIALECT: SQLite reads JSON text through json_each (key compared as a value,
            // so any key spelling works without path escaping); `type` is text, integer,
            // real, true or false.
            Dialect::Sqlite => {
                q.push(" AND EXISTS (SELECT 1 FROM json_each(")
                    .push(column)
                    .push(") je WHERE je.key = ")
                    .push_bind(key_of(c));
                match c {
                    Condition::TextIn(_, values) => {
                        q.push(" AND je.type = 'text' AND je.value IN ");
                        push_values(q, values);
                    }
                    Condition::TextContains(_, s) => {
                        q.push(" AND je.type = 'text' AND ");
                        super::push_contains(q, dialect, "je.value", s);
                    }
                    Condition::Number(_, op, n) => {
                        q.push(" AND je.type IN ('integer', 'real') AND je.value ")
                            .push(op)
                            .push(" ")
                            .push_bind(*n);
                    }
                    Condition::Bool(_, b) => {
                        q.push(if *b {
                            " AND je.type = 'true'"
                        } else {
                            " AND je.type = 'false'"
                        });
                    }
                }
                q.push(")");
            }
            // DIALECT: Postgres reads JSONB with -> / ->>; the CASE keeps the numeric cast
            // from running on non-numbers.
            Dialect::Postgres => {
                let key = key_of(c).to_string();
                match c {
                    Condition::TextIn(_, values) => {
                        q.push(" AND jsonb_typeof(")
                            .push(column)
                            .push(" -> ")
                            .push_bind(key.clone())
                            .push(") = 'string' AND (")
                            .push(column)
                            .push(" ->> ")
                            .push_bind(key)
                            .push(") IN ");
                        push_values(q, values);
                    }
                    Condition::TextContains(_, s) => {
                        q.push(" AND jsonb_typeof(")
                            .push(column)
                            .push(" -> ")
                            .push_bind(key.clone())
                            .push(") = 'string' AND lower(")
                            .push(column)
                            .push(" ->> ")
                            .push_bind(key)
                            .push(") LIKE ")
                            .push_bind(contains_pattern(s))
                            .push(" ESCAPE '\\'");
                    }
                    Condition::Number(_, op, n) => {
                        q.push(" AND (CASE WHEN jsonb_typeof(")
                            .push(column)
                            .push(" -> ")
                            .push_bind(key.clone())
                            .push(") = 'number' THEN (")
                            .push(column)
                            .push(" ->> ")
                            .push_bind(key)
                            .push(")::double precision END) ")
                            .push(op)
                            .push(" ")
                            .push_bind(*n);
                    }
                    Condition::Bool(_, b) => {
                        q.push(" AND (")
                            .push(column)
                            .push(" -> ")
                            .push_bind(key)
                            .push(") = ")
                            .push(if *b {
                                "'true'::jsonb"
                            } else {
                                "'false'::jsonb"
                            });
                    }
                }
            }
        }
    }
}

fn key_of(c: &Condition) -> &str {
    match c {
        Condition::TextIn(k, _)
        | Condition::TextContains(k, _)
        | Condition::Number(k, _, _)
        | Condition::Bool(k, _) => k,
    }
}

/// `(v1, v2, …)`; an empty list matches nothing.
fn push_values(q: &mut Sql, values: &[String]) {
    if values.is_empty() {
        q.push("(NULL)");
    } else {
        q.push_tuple(values.iter().map(String::as_str));
    }
}
