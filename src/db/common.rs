//! Pieces many resources share: who created a row.

use sqlx::FromRow;

use super::Id;
use crate::caller::Caller;

/// The creator columns of a row, selected with `CREATOR_COLUMNS` / `creator_joins!`.
/// At most one of user and station is set.
#[derive(Debug, Clone, Default, FromRow)]
pub struct CreatorRow {
    pub cu_id: Option<Id>,
    pub cu_name: Option<String>,
    pub cu_email: Option<String>,
    pub cs_id: Option<Id>,
    pub cs_name: Option<String>,
}

/// Select list for `CreatorRow` (joined by `creator_joins!`).
pub const CREATOR_COLUMNS: &str =
    "cu.id AS cu_id, cu.name AS cu_name, cu.email AS cu_email, cs.id AS cs_id, cs.name AS cs_name";

/// Joins for `CREATOR_COLUMNS` on the `created_by_*` columns of table alias `$t`, as a
/// `&'static str`.
macro_rules! creator_joins {
    ($t:literal) => {
        concat!(
            " LEFT JOIN users cu ON cu.id = ",
            $t,
            ".created_by_user_id LEFT JOIN stations cs ON cs.id = ",
            $t,
            ".created_by_station_id "
        )
    };
}
pub(crate) use creator_joins;

/// Who a new row is attributed to: the user or the station behind the request's key
/// (at most one is set).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreatedBy {
    pub user_id: Option<Id>,
    pub station_id: Option<Id>,
}

impl CreatedBy {
    pub fn of(caller: &Caller) -> CreatedBy {
        CreatedBy {
            user_id: caller.user_id(),
            station_id: caller.station_id(),
        }
    }
}
