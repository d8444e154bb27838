//! Metadata in SQL: list filters and PATCH merges on the `metadata` column of parts,
//! revisions and units (rules in `crate::metadata`).

use serde_json::{Map, Value};

use super::{Dialect, Id, Sql, Tx};
use crate::error::ApiResult;
use crate::metadata::{merge, Cond, MetadataFilter};
use crate::values::contains_pattern;

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

/// Appends ` AND <condition>` for every condition of `filter` on the JSON column `col`.
pub fn push_filter(q: &mut Sql, dialect: Dialect, col: &str, filter: &MetadataFilter) {
    for (key, cond) in &filter.conds {
        q.push(" AND ");
        match dialect {
            // DIALECT: SQLite reads JSON text through json_each (no path escaping of keys);
            // `type` is 'text', 'integer', 'real', 'true' or 'false' for scalars.
            Dialect::Sqlite => {
                q.push(&format!(
                    "EXISTS (SELECT 1 FROM json_each({col}) j WHERE j.key = "
                ))
                .push_bind(key.as_str());
                match cond {
                    Cond::TextIn(values) => {
                        q.push(" AND j.type = 'text' AND j.value IN ")
                            .push_tuple(values.iter().map(String::as_str));
                    }
                    Cond::TextContains(s) => {
                        q.push(" AND j.type = 'text' AND lower(j.value) LIKE ")
                            .push_bind(contains_pattern(s))
                            .push(" ESCAPE '\\'");
                    }
                    Cond::Number(op, v) => {
                        q.push(" AND j.type IN ('integer', 'real') AND j.value ")
                            .push(op.sql())
                            .push(" ")
                            .push_bind(*v);
                    }
                    Cond::Bool(b) => {
                        q.push(if *b {
                            " AND j.type = 'true'"
                        } else {
                            " AND j.type = 'false'"
                        });
                    }
                }
                q.push(")");
            }
            // DIALECT: Postgres jsonb operators. The CASE guards the numeric cast: AND
            // does not promise evaluation order.
            Dialect::Postgres => match cond {
                Cond::TextIn(values) => {
                    q.push(&format!("(jsonb_typeof({col} -> "))
                        .push_bind(key.as_str())
                        .push(&format!(") = 'string' AND ({col} ->> "))
                        .push_bind(key.as_str())
                        .push(") IN ")
                        .push_tuple(values.iter().map(String::as_str))
                        .push(")");
                }
                Cond::TextContains(s) => {
                    q.push(&format!("(jsonb_typeof({col} -> "))
                        .push_bind(key.as_str())
                        .push(&format!(") = 'string' AND lower({col} ->> "))
                        .push_bind(key.as_str())
                        .push(") LIKE ")
                        .push_bind(contains_pattern(s))
                        .push(" ESCAPE '\\')");
                }
                Cond::Number(op, v) => {
                    q.push(&format!("(CASE WHEN jsonb_typeof({col} -> "))
                        .push_bind(key.as_str())
                        .push(&format!(") = 'number' THEN ({col} ->> "))
                        .push_bind(key.as_str())
                        .push(")::double precision END) ")
                        .push(op.sql())
                        .push(" ")
                        .push_bind(*v);
                }
                Cond::Bool(b) => {
                    q.push(&format!("(jsonb_typeof({col} -> "))
                        .push_bind(key.as_str())
                        .push(&format!(") = 'boolean' AND ({col} ->> "))
                        .push_bind(key.as_str())
                        .push(if *b { ") = 'true')" } else { ") = 'false')" });
                }
            },
        }
    }
}

/// Applies a metadata PATCH (`null` deletes a key) to row `id` of `table`, inside `tx`.
pub async fn patch(
    tx: &mut Tx,
    table: MetaTable,
    id: Id,
    changes: &Map<String, Value>,
) -> ApiResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let lock = match tx.dialect() {
        // DIALECT: SQLite write transactions are already exclusive (BEGIN IMMEDIATE).
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let (current,): (Option<sqlx::types::Json<Value>>,) = tx
        .fetch_one(
            Sql::new(format!(
                "SELECT metadata FROM {} WHERE id = $1{lock}",
                table.name()
            ))
            .bind(id),
        )
        .await?;
    let merged = merge(current.map(|j| j.0), changes)?;
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
