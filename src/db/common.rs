//! Pieces many resources share: who created a row.

use sqlx::FromRow;

use super::Id;
use crate::extract::Caller;

/// The creator columns of a row, selected with `creator_columns` / `creator_joins`.
/// At most one of user and station is set.
#[derive(Debug, Clone, Default, FromRow)]
pub struct Creator {
    pub cu_id: Option<Id>,
    pub cu_name: Option<String>,
    pub cu_email: Option<String>,
    pub cs_id: Option<Id>,
    pub cs_name: Option<String>,
}

/// Select list for `Creator`, reading the `created_by_*` columns of table alias `t`.
pub fn creator_columns() -> &'static str {
    "cu.id AS cu_id, cu.name AS cu_name, cu.email AS cu_email, cs.id AS cs_id, cs.name AS cs_name"
}

/// Joins for `creator_columns`, on table alias `t`.
pub fn creator_joins(t: &str) -> String {
    format!(
        " LEFT JOIN users cu ON cu.id = {t}.created_by_user_id \
          LEFT JOIN stations cs ON cs.id = {t}.created_by_station_id "
    )
}

/// The `created_by_user_id` / `created_by_station_id` pair for rows a caller creates.
pub fn created_by(caller: &Caller) -> (Option<Id>, Option<Id>) {
    (caller.user_id(), caller.station_id())
}
