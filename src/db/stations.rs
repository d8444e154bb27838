//! Stations: test benches with their own keys, linked to procedures.

use super::{Db, Id, Sql};
use crate::error::{ApiError, ApiResult};

impl Db {
    /// Id and name of a live station of the organization.
    pub async fn station_name(&self, org_id: Id, id: Id) -> ApiResult<(Id, String)> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT id, name FROM stations
                     WHERE org_id = $1 AND id = $2 AND archived_at IS NULL",
                )
                .bind(org_id)
                .bind(id),
            )
            .await?
            .ok_or_else(|| ApiError::not_found("Station not found"))
    }
}
