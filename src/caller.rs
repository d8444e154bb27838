//! Who is calling: the identity behind an API key. Plain data that the request layer sets
//! (the auth middleware) and the storage layer reads (scoping, attribution).

use crate::types::Id;

/// The authenticated identity behind the API key: a user or a station of one
/// organization. Set by the auth middleware; every query is scoped to `org_id`.
#[derive(Clone, Debug)]
pub struct Caller {
    pub org_id: Id,
    pub principal: Principal,
    /// The API key row that authenticated this request.
    pub key_id: Id,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    User(Id),
    Station(Id),
}

impl Caller {
    pub fn user_id(&self) -> Option<Id> {
        match self.principal {
            Principal::User(id) => Some(id),
            Principal::Station(_) => None,
        }
    }

    pub fn station_id(&self) -> Option<Id> {
        match self.principal {
            Principal::Station(id) => Some(id),
            Principal::User(_) => None,
        }
    }

    pub fn is_station(&self) -> bool {
        self.station_id().is_some()
    }
}
