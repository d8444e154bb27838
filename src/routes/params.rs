//! Query-string parameter types shared by every list. Each kind of parameter has one type
//! with one parse and one rule, so the same name means the same thing on every resource:
//! `ids=` (blank) is no filter, `include_metadata=1` is true, `sort_order=ASC` is ascending,
//! an unparsable value is a 400 naming the parameter (through `extract::Query`).
//!
//! Every field of these types is declared `#[serde(default)]`: an absent parameter and a
//! blank one mean the same (clients send `key=` for "no filter"). Arrays are repeated keys
//! (`ids=a&ids=b`); a comma is part of a value, never a separator (a serial number may
//! contain one).

use std::fmt::Display;

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::db::{Id, Ts};
use crate::values::{parse_iso_duration, query_ts, upper_bound};

/// One value or several: a parameter given once reaches a flattened struct (`RunScope`)
/// as a plain string, given twice as a sequence.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The values of a repeated parameter, trimmed; blank values are dropped.
fn values<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    };
    Ok(values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

/// A single parameter, trimmed; `None` when blank.
fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = String::deserialize(d)?;
    let v = v.trim();
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// Parses a non-blank single parameter with `parse`, whose error becomes the message.
fn parsed<'de, D: Deserializer<'de>, T, E: Display>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, D::Error> {
    value(d)?
        .map(|v| parse(&v).map_err(D::Error::custom))
        .transpose()
}

/// A repeated text filter (`serial_numbers`, `part_numbers`, …).
#[derive(Debug, Default, Clone)]
pub struct Texts(pub Vec<String>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        values(d).map(Texts)
    }
}

/// A repeated id filter: `None` when absent or blank; a malformed id can match nothing, so
/// it is dropped (`Some(empty)` matches nothing).
#[derive(Debug, Default, Clone)]
pub struct Ids(pub Option<Vec<Id>>);

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let values = values(d)?;
        Ok(Ids((!values.is_empty()).then(|| {
            values.iter().filter_map(|v| Id::parse(v)).collect()
        })))
    }
}

/// A repeated enum filter (`outcomes`, `levels`, …); an unknown value is an error.
#[derive(Debug, Clone)]
pub struct Enums<T>(pub Vec<T>);

impl<T> Default for Enums<T> {
    fn default() -> Self {
        Enums(Vec::new())
    }
}

impl<T: Copy> Enums<T> {
    /// The values as the text stored in the database.
    pub fn texts(&self, text: impl Fn(T) -> &'static str) -> Vec<String> {
        self.0.iter().map(|v| text(*v).to_string()).collect()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Enums<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        values(d)?
            .into_iter()
            .map(|v| {
                serde_json::from_value::<T>(Value::String(v.clone()))
                    .map_err(|e| D::Error::custom(format!("invalid value `{v}`: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(Enums)
    }
}

/// A boolean: `true`/`false` in any case, or `1`/`0`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flag(pub Option<bool>);

impl Flag {
    /// The value, false when absent.
    pub fn on(self) -> bool {
        self.0.unwrap_or(false)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, |s| match s {
            "1" => Ok(true),
            "0" => Ok(false),
            s if s.eq_ignore_ascii_case("true") => Ok(true),
            s if s.eq_ignore_ascii_case("false") => Ok(false),
            s => Err(format!("must be true or false, got `{s}`")),
        })
        .map(Flag)
    }
}

/// An ISO 8601 duration, in microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Duration(pub Option<i64>);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, |s| {
            parse_iso_duration(s).ok_or_else(|| {
                format!("must be an ISO 8601 duration such as PT4M or PT1.5S, got `{s}`")
            })
        })
        .map(Duration)
    }
}

/// A finite number.
#[derive(Debug, Default, Clone, Copy)]
pub struct Number(pub Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, |s| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("must be a number, got `{s}`"))
        })
        .map(Number)
    }
}

/// A non-negative integer (`run_count_min`, …).
#[derive(Debug, Default, Clone, Copy)]
pub struct Count(pub Option<i64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, |s| match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(format!("must be a non-negative integer, got `{s}`")),
        })
        .map(Count)
    }
}

/// An inclusive lower time bound (`created_after`, …): RFC 3339, or a date and time
/// without offset taken as UTC, or a date alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct After(pub Option<Ts>);

impl<'de> Deserialize<'de> for After {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, query_ts).map(After)
    }
}

/// An inclusive upper time bound (`created_before`, …): a value written coarser than
/// microseconds covers the whole of its last unit (see `values::upper_bound`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Before(pub Option<Ts>);

impl<'de> Deserialize<'de> for Before {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, upper_bound).map(Before)
    }
}

/// Free text (`search_query`): `None` when blank, else the text as sent.
#[derive(Debug, Default, Clone)]
pub struct Search(pub Option<String>);

impl<'de> Deserialize<'de> for Search {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        Ok(Search((!v.trim().is_empty()).then_some(v)))
    }
}

/// `sort_by`: one of the resource's sort keys, exactly as the contract spells it; blank is
/// the resource's default.
#[derive(Debug, Clone, Copy)]
pub struct SortBy<T>(pub Option<T>);

impl<T> Default for SortBy<T> {
    fn default() -> Self {
        SortBy(None)
    }
}

impl<T: Default + Copy> SortBy<T> {
    pub fn key(self) -> T {
        self.0.unwrap_or_default()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for SortBy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, |s| {
            serde_json::from_value::<T>(Value::String(s.to_string()))
                .map_err(|e| format!("invalid value `{s}`: {e}"))
        })
        .map(SortBy)
    }
}
