//! The text rules of BEHAVIOR.md §17.2 for the natural keys a run names (serial, part,
//! revision, batch numbers, procedure version). One definition each, used by every entry
//! point: the v2 request DTOs through the `validator` adapters below, the legacy v1 run
//! create and the importers through the plain checks (which return the fault's message).

use std::borrow::Cow;

use validator::ValidationError;

use crate::values::check_text;

pub fn serial(s: &str) -> Result<(), String> {
    check_text("Serial number", s, 1, 60)
}

pub fn part(s: &str) -> Result<(), String> {
    check_text("Part number", s, 1, 60)
}

pub fn revision(s: &str) -> Result<(), String> {
    check_text("Revision number", s, 1, 60)
}

pub fn version(s: &str) -> Result<(), String> {
    check_text("Procedure version", s, 1, 60)
}

/// 1..100 characters from `A-Z a-z 0-9 _ -`.
pub fn batch(s: &str) -> Result<(), String> {
    check_text("Batch number", s, 1, 100)?;
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(c) => Err(format!(
            "Batch number may only contain letters A-Z a-z, digits, `_` and `-` (found `{c}`)"
        )),
        None => Ok(()),
    }
}

/// The same rules for `#[validate(custom(function = …))]`.
pub mod validate {
    use super::*;

    fn adapt(r: Result<(), String>) -> Result<(), ValidationError> {
        r.map_err(|m| ValidationError::new("invalid").with_message(Cow::Owned(m)))
    }

    pub fn serial(s: &str) -> Result<(), ValidationError> {
        adapt(super::serial(s))
    }

    pub fn part(s: &str) -> Result<(), ValidationError> {
        adapt(super::part(s))
    }

    pub fn revision(s: &str) -> Result<(), ValidationError> {
        adapt(super::revision(s))
    }

    pub fn version(s: &str) -> Result<(), ValidationError> {
        adapt(super::version(s))
    }

    pub fn batch(s: &str) -> Result<(), ValidationError> {
        adapt(super::batch(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(serial("SN-1").is_ok());
        assert!(serial("").unwrap_err().contains("Serial number"));
        assert!(serial(&"x".repeat(61)).is_err());
        assert!(batch("LOT_1-a").is_ok());
        assert!(batch("LOT 1").unwrap_err().contains("Batch number"));
        assert!(part("").unwrap_err().contains("Part number"));
    }
}
