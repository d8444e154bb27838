//! The text rules of BEHAVIOR.md §17.2 for what an imported run names, as plain checks
//! returning the message of the fault (the same wording as the v2 run create).

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
            "Batch number may only contain letters, digits, `_` and `-` (found `{c}`)"
        )),
        None => Ok(()),
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
