//! Organization export and import: every row of an organization, attachment bytes
//! included, as JSON Lines — the format is documented in the README ("Export and
//! import"). Version 1:
//!
//! - line 1, the header: `{"format": "tofulab-export", "organization": {"created_at",
//!   "id", "name", "slug"}, "version": 1}`;
//! - one line per row, table by table in `tables::TABLES` order (each referenced row
//!   comes before the rows that reference it), rows in key order:
//!   `{"row": {column: value, …}, "table": NAME}`; ids and timestamps are strings
//!   (RFC 3339, microseconds), bytes base64, JSON columns their JSON;
//! - the references that can form cycles (a unit's parent and the run that created it;
//!   an installation's successor) are written as `null` in the rows and set afterwards by
//!   `{"patch": {"id", column: value, …}, "table": NAME}` lines;
//! - the last line: `{"end": {"rows": N}}` with the number of row and patch lines, so
//!   that an import can tell a complete stream from a cut one.
//!
//! Keys of every object are sorted, and rows come in key order, so exporting the same
//! data twice gives the same bytes. Both directions stream: the export reads pages of
//! `PAGE` rows, the import one line at a time in one transaction.

pub mod tables;

use base64::Engine;
use serde_json::{json, Map, Value};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{FromRow, Row as _};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::identity::OrgRow;
use super::{Arg, Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};
use tables::TABLES;

pub const FORMAT: &str = "tofulab-export";
pub const VERSION: u64 = 1;

/// Rows read per query.
const PAGE: i64 = 500;

/// The longest line an import accepts: a blob chunk (1 MiB) in base64 with room to spare.
const MAX_LINE: usize = 4 << 20;

/// The stored type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Id,
    Ts,
    Text,
    Int,
    Float,
    Bool,
    Bytes,
    Json,
}

/// One exported table: its columns, its order key, and the static SQL that reads it a
/// page at a time (`$1` the organization, `$2` the page size, `$3…` the last key seen)
/// and writes it back.
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub key: &'static [&'static str],
    /// Columns written `null` with the row and set by a later patch line.
    pub deferred: &'static [&'static str],
    pub first_page: &'static str,
    pub next_page: &'static str,
    pub insert: &'static str,
    /// `id` and the deferred columns of the rows that have any (`$3`: the last id seen).
    pub patch_page: &'static str,
    pub patch: &'static str,
}

impl Table {
    fn kind(&self, column: &str) -> Option<Kind> {
        self.columns
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, kind)| *kind)
    }
}

/// A row read for export: column → value, keys sorted. Columns are selected as
/// `<kind letter>_<name>` so one decoder serves every table.
struct Record(Map<String, Value>);

macro_rules! decode_record {
    ($row:expr) => {{
        let row = $row;
        let mut out = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let alias = sqlx::Column::name(column);
            let (kind, name) = alias.split_at(2);
            let value = match kind {
                "u_" => row
                    .try_get::<Option<Id>, _>(i)?
                    .map(|v| json!(v.to_string())),
                "s_" => row
                    .try_get::<Option<Ts>, _>(i)?
                    .map(|v| json!(v.to_string())),
                "t_" => row.try_get::<Option<String>, _>(i)?.map(Value::String),
                "n_" => row.try_get::<Option<i64>, _>(i)?.map(Value::from),
                "f_" => row.try_get::<Option<f64>, _>(i)?.map(Value::from),
                "b_" => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
                "y_" => row
                    .try_get::<Option<Vec<u8>>, _>(i)?
                    .map(|b| json!(base64::engine::general_purpose::STANDARD.encode(b))),
                "j_" => row.try_get::<Option<Json<Value>>, _>(i)?.map(|j| j.0),
                _ => {
                    return Err(sqlx::Error::ColumnDecode {
                        index: alias.to_string(),
                        source: "export columns are aliased <kind>_<name>".into(),
                    })
                }
            };
            out.insert(name.to_string(), value.unwrap_or(Value::Null));
        }
        Ok(Record(out))
    }};
}

impl<'r> FromRow<'r, SqliteRow> for Record {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
        decode_record!(row)
    }
}

impl<'r> FromRow<'r, PgRow> for Record {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        decode_record!(row)
    }
}

/// A value of an export line as the argument for its column.
fn arg(kind: Kind, value: &Value) -> Result<Arg, String> {
    let bad = || format!("not a valid {kind:?} value: {value}");
    if value.is_null() {
        return Ok(match kind {
            Kind::Id => Arg::Id(None),
            Kind::Ts => Arg::Ts(None),
            Kind::Text => Arg::Text(None),
            Kind::Int => Arg::Int(None),
            Kind::Float => Arg::Float(None),
            Kind::Bool => Arg::Bool(None),
            Kind::Bytes => Arg::Bytes(None),
            Kind::Json => Arg::Json(None),
        });
    }
    Ok(match kind {
        Kind::Id => Arg::from(value.as_str().and_then(Id::parse).ok_or_else(bad)?),
        Kind::Ts => Arg::from(value.as_str().and_then(Ts::parse_rfc3339).ok_or_else(bad)?),
        Kind::Text => Arg::from(value.as_str().ok_or_else(bad)?),
        Kind::Int => Arg::from(value.as_i64().ok_or_else(bad)?),
        Kind::Float => Arg::from(value.as_f64().ok_or_else(bad)?),
        Kind::Bool => Arg::from(value.as_bool().ok_or_else(bad)?),
        Kind::Bytes => Arg::from(
            value
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(bad)?,
        ),
        Kind::Json => Arg::from(value.clone()),
    })
}

/// What an export or import moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Row and patch lines.
    pub rows: u64,
}

fn write_error(e: std::io::Error) -> StoreError {
    StoreError::other(format!("the export could not be written: {e}"))
}

async fn write_line<W: AsyncWrite + Unpin>(out: &mut W, value: &Value) -> DbResult<()> {
    let mut line = serde_json::to_vec(value).map_err(StoreError::other)?;
    line.push(b'\n');
    out.write_all(&line).await.map_err(write_error)
}

impl Db {
    /// Writes organization `org_id` to `out` as JSON Lines. `NotFound` when there is none.
    pub async fn export_organization<W: AsyncWrite + Unpin>(
        &self,
        org_id: Id,
        out: &mut W,
    ) -> DbResult<Moved> {
        let org: Option<(Id, String, String, Ts)> = self
            .read()
            .fetch_optional(
                Sql::new("SELECT id, name, slug, created_at FROM organizations WHERE id = $1")
                    .bind(org_id),
            )
            .await?;
        let Some((id, name, slug, created_at)) = org else {
            return Err(StoreError::not_found("Organization not found"));
        };
        write_line(
            out,
            &json!({"format": FORMAT, "version": VERSION,
                    "organization": {"id": id, "name": name, "slug": slug, "created_at": created_at}}),
        )
        .await?;
        let mut moved = Moved::default();
        for table in TABLES {
            let mut last: Option<Vec<Arg>> = None;
            loop {
                let sql = match &last {
                    None => Sql::new(table.first_page).bind(org_id).bind(PAGE),
                    Some(key) => key
                        .iter()
                        .cloned()
                        .fold(Sql::new(table.next_page).bind(org_id).bind(PAGE), Sql::bind),
                };
                let page: Vec<Record> = self.read().fetch_all(sql).await?;
                let next = match page.last() {
                    Some(Record(row)) if page.len() as i64 == PAGE => Some(key_args(table, row)?),
                    _ => None,
                };
                for Record(mut row) in page {
                    for column in table.deferred {
                        row.insert(column.to_string(), Value::Null);
                    }
                    write_line(out, &json!({"table": table.name, "row": row})).await?;
                    moved.rows += 1;
                }
                match next {
                    Some(key) => last = Some(key),
                    None => break,
                }
            }
        }
        for table in TABLES.iter().filter(|t| !t.deferred.is_empty()) {
            let mut after = Id(uuid::Uuid::nil());
            loop {
                let page: Vec<Record> = self
                    .read()
                    .fetch_all(
                        Sql::new(table.patch_page)
                            .bind(org_id)
                            .bind(PAGE)
                            .bind(after),
                    )
                    .await?;
                for Record(row) in &page {
                    write_line(out, &json!({"table": table.name, "patch": row})).await?;
                    moved.rows += 1;
                }
                match page
                    .last()
                    .and_then(|r| r.0.get("id")?.as_str().and_then(Id::parse))
                {
                    Some(id) if page.len() as i64 == PAGE => after = id,
                    _ => break,
                }
            }
        }
        write_line(out, &json!({"end": {"rows": moved.rows}})).await?;
        out.flush().await.map_err(write_error)?;
        Ok(moved)
    }

    /// Replaces organization `target` (or, without one, the organization the stream
    /// names, created when missing) with the content of an export stream, in one
    /// transaction: a stream that is malformed or cut short changes nothing.
    pub async fn import_organization<R: AsyncBufRead + Unpin>(
        &self,
        target: Option<Id>,
        mut input: R,
    ) -> DbResult<(OrgRow, Moved)> {
        let mut line_no = 0u64;
        let header = match read_line(&mut input, &mut line_no).await? {
            Some(v) => v,
            None => return Err(at_line(1, "the stream is empty")),
        };
        if header["format"] != FORMAT || header["version"] != VERSION {
            return Err(at_line(
                1,
                format!("not a {FORMAT} stream of version {VERSION}"),
            ));
        }
        let org = &header["organization"];
        let text = |field: &str| -> DbResult<String> {
            org[field]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| at_line(1, format!("organization.{field} is missing")))
        };
        let org_id = match target {
            Some(id) => id,
            None => {
                Id::parse(&text("id")?).ok_or_else(|| at_line(1, "organization.id is not an id"))?
            }
        };
        let (name, slug) = (text("name")?, text("slug")?);
        let created_at = Ts::parse_rfc3339(&text("created_at")?)
            .ok_or_else(|| at_line(1, "organization.created_at is not a timestamp"))?;

        let mut tx = self.begin().await?;
        let existing = tx
            .execute(Sql::new("DELETE FROM organizations WHERE id = $1").bind(org_id))
            .await?;
        if target.is_some() && existing == 0 {
            return Err(StoreError::not_found("Organization not found"));
        }
        tx.execute(
            Sql::new(
                "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(org_id)
            .bind(&name)
            .bind(&slug)
            .bind(created_at),
        )
        .await
        .map_err(|e| match e.is_unique_violation() {
            true => StoreError::conflict(format!(
                "Another organization has the slug {slug:?} of the imported one"
            )),
            false => e,
        })?;
        let mut moved = Moved::default();
        let mut ended = false;
        while let Some(line) = read_line(&mut input, &mut line_no).await? {
            if ended {
                return Err(at_line(line_no, "nothing may follow the end line"));
            }
            if let Some(end) = line.get("end") {
                if end["rows"].as_u64() != Some(moved.rows) {
                    return Err(at_line(
                        line_no,
                        format!(
                            "the end line counts {} rows, the stream had {}",
                            end["rows"], moved.rows
                        ),
                    ));
                }
                ended = true;
                continue;
            }
            apply_line(&mut tx, org_id, &line)
                .await
                .map_err(|e| match e {
                    StoreError::Rejected { message, .. } => at_line(line_no, message),
                    StoreError::UniqueViolation(_) => at_line(
                        line_no,
                        "a row with this key already exists (in another organization?)",
                    ),
                    StoreError::ForeignKeyViolation(_) => at_line(
                        line_no,
                        "the row refers to a row the stream has not given before it",
                    ),
                    other => other,
                })?;
            moved.rows += 1;
        }
        if !ended {
            return Err(at_line(
                line_no,
                "the stream ends before its end line: it was cut short",
            ));
        }
        // Points are derived rows, not in the stream: the organization's are rebuilt
        // from its measurements before the import commits.
        crate::db::points::fill_org(&mut tx, org_id).await?;
        tx.commit().await?;
        Ok((
            OrgRow {
                id: org_id,
                name,
                slug,
            },
            moved,
        ))
    }
}

fn at_line(n: u64, message: impl Into<String>) -> StoreError {
    let field = format!("line {n}");
    let message = format!("{field}: {}", message.into());
    StoreError::rejected_at(field.as_str(), message)
}

/// The key columns of `row` as arguments for the next page.
fn key_args(table: &Table, row: &Map<String, Value>) -> DbResult<Vec<Arg>> {
    table
        .key
        .iter()
        .map(|column| {
            let kind = table.kind(column).ok_or_else(|| {
                StoreError::other(format!("{}: no key column {column}", table.name))
            })?;
            arg(kind, &row[*column]).map_err(StoreError::other)
        })
        .collect()
}

/// The next non-empty line as JSON; `None` at the end of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line_no: &mut u64,
) -> DbResult<Option<Value>> {
    loop {
        let mut buf = Vec::new();
        let n = (&mut *input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| StoreError::rejected(format!("the stream could not be read: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        *line_no += 1;
        if buf.len() > MAX_LINE {
            return Err(at_line(*line_no, format!("longer than {MAX_LINE} bytes")));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return serde_json::from_slice(&buf)
            .map(Some)
            .map_err(|e| at_line(*line_no, format!("not JSON: {e}")));
    }
}

/// Writes one row or patch line.
async fn apply_line(tx: &mut Tx, org_id: Id, line: &Value) -> DbResult<()> {
    let name = line["table"].as_str().unwrap_or_default();
    let table = TABLES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| StoreError::rejected(format!("unknown table {name:?}")))?;
    if let Some(row) = line.get("row").and_then(Value::as_object) {
        let mut sql = Sql::new(table.insert);
        for (column, kind) in table.columns {
            let value = match *column {
                "org_id" => json!(org_id.to_string()),
                c if table.deferred.contains(&c) => Value::Null,
                c => row.get(c).cloned().unwrap_or(Value::Null),
            };
            sql = sql.bind(
                arg(*kind, &value)
                    .map_err(|e| StoreError::rejected(format!("{name}.{column}: {e}")))?,
            );
        }
        tx.execute(sql).await?;
        return Ok(());
    }
    if let Some(patch) = line.get("patch").and_then(Value::as_object) {
        if table.deferred.is_empty() {
            return Err(StoreError::rejected(format!("{name} takes no patch lines")));
        }
        let id = arg(Kind::Id, patch.get("id").unwrap_or(&Value::Null))
            .map_err(|e| StoreError::rejected(format!("{name}.id: {e}")))?;
        let mut sql = Sql::new(table.patch).bind(id);
        for column in table.deferred {
            let kind = table.kind(column).unwrap_or(Kind::Id);
            sql = sql.bind(
                arg(kind, patch.get(*column).unwrap_or(&Value::Null))
                    .map_err(|e| StoreError::rejected(format!("{name}.{column}: {e}")))?,
            );
        }
        let n = tx.execute(sql).await?;
        if n != 1 {
            return Err(StoreError::rejected(format!(
                "{name}: the patched row is not in the stream"
            )));
        }
        return Ok(());
    }
    Err(StoreError::rejected(
        "a line needs `row` or `patch` (or is the `end` line)",
    ))
}
