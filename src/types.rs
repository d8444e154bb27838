//! Portable column types. The same row struct decodes from SQLite and Postgres:
//! ids are `uuid` in Postgres and lowercase hyphenated text in SQLite; timestamps are
//! `timestamptz` in Postgres and fixed-width RFC 3339 text in SQLite.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Postgres, Sqlite, Type};
use uuid::Uuid;

/// A resource id: a UUID, rendered lowercase and hyphenated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub Uuid);

impl Id {
    /// A new time-ordered id (UUID v7): consecutive inserts land next to each other in
    /// every index keyed by id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Id(Uuid::now_v7())
    }

    pub const NIL: Id = Id(Uuid::nil());

    /// Parses the canonical 8-4-4-4-12 form (any case). Other forms `uuid` accepts
    /// (simple, braced, urn) are refused: clients only ever send the canonical one.
    pub fn parse(s: &str) -> Option<Id> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        Uuid::parse_str(s).ok().map(Id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Id {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Id::parse(s).ok_or(())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse(&s).ok_or_else(|| serde::de::Error::custom("Invalid uuid"))
    }
}

impl Type<Sqlite> for Id {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for Id {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Id(Uuid::parse_str(s)?))
    }
}

impl Type<Postgres> for Id {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl<'r> Decode<'r, Postgres> for Id {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Id(<Uuid as Decode<Postgres>>::decode(value)?))
    }
}

/// A point in time, UTC, microsecond precision (both backends store exactly that).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    pub fn now() -> Self {
        Ts::from(Utc::now())
    }

    /// The SQLite storage form: fixed width, so text order is time order.
    pub fn to_db_text(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    pub fn from_micros(us: i64) -> Option<Ts> {
        DateTime::<Utc>::from_timestamp_micros(us).map(Ts)
    }

    /// RFC 3339 with any offset and fractional precision; truncated to microseconds.
    pub fn parse_rfc3339(s: &str) -> Option<Ts> {
        DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|d| Ts::from(d.with_timezone(&Utc)))
    }
}

impl From<DateTime<Utc>> for Ts {
    fn from(d: DateTime<Utc>) -> Self {
        // Truncate to what the databases keep, so a value reads back exactly as written.
        let us = d.timestamp_micros();
        Ts(DateTime::<Utc>::from_timestamp_micros(us).unwrap_or(d))
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ts::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("Invalid datetime `{s}`: expected RFC 3339"))
        })
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<Sqlite>>::decode(value)?;
        Ts::parse_rfc3339(s).ok_or_else(|| format!("bad timestamp in database: {s}").into())
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Ts(<DateTime<Utc> as Decode<Postgres>>::decode(value)?))
    }
}

/// The lower-cased form under which case-insensitive natural keys (serial numbers,
/// part numbers, tags, …) are compared and made unique.
pub fn ci_key(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_accepts_only_canonical_form() {
        assert!(Id::parse("00000000-0000-0000-0000-000000000000").is_some());
        assert!(Id::parse("1B4E28BA-2FA1-11D2-883F-0016D3CCA427").is_some());
        assert!(Id::parse("1b4e28ba2fa111d2883f0016d3cca427").is_none());
        assert!(Id::parse("not-a-uuid").is_none());
        assert_eq!(
            Id::parse("1B4E28BA-2FA1-11D2-883F-0016D3CCA427")
                .unwrap()
                .to_string(),
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        );
    }

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        let t = Ts::parse_rfc3339("2026-10-01T12:00:00.123456789+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-10-01T10:00:00.123456Z");
        assert_eq!(t.to_db_text(), "2026-10-01T10:00:00.123456Z");
        let z = Ts::parse_rfc3339("2026-10-01T12:00:00Z").unwrap();
        assert_eq!(z.to_db_text(), "2026-10-01T12:00:00.000000Z");
    }
}
