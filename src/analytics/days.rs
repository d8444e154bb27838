//! The date range of an analytics request: whole UTC days, both ends inclusive (§1.2).

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::db::Ts;

/// The longest range one request may cover: a bit more than a year, so a daily series
/// stays a few hundred points and every aggregate reads a bounded slice of the runs.
pub const MAX_RANGE_DAYS: i64 = 400;

/// `from..=to`, whole UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Why a range is refused; names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRangeError {
    pub field: &'static str,
    pub message: String,
}

impl DateRange {
    /// Parses `YYYY-MM-DD` dates; `to` before `from` or a range longer than
    /// `MAX_RANGE_DAYS` is an error naming `to`.
    pub fn parse(from: &str, to: &str) -> Result<DateRange, DateRangeError> {
        let date = |field: &'static str, s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|_| s.len() == 10)
                .ok_or_else(|| DateRangeError {
                    field,
                    message: format!("`{field}` must be a date YYYY-MM-DD"),
                })
        };
        let from = date("from", from)?;
        let to = date("to", to)?;
        DateRange::new(from, to)
    }

    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<DateRange, DateRangeError> {
        if to < from {
            return Err(DateRangeError {
                field: "to",
                message: "`to` must not be before `from`".into(),
            });
        }
        let r = DateRange { from, to };
        if r.len() > MAX_RANGE_DAYS as usize {
            return Err(DateRangeError {
                field: "to",
                message: format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            });
        }
        Ok(r)
    }

    /// Number of days in the range.
    pub fn len(&self) -> usize {
        ((self.to - self.from).num_days() + 1) as usize
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        (0..self.len() as i64)
            .map(|i| self.from + Duration::days(i))
            .collect()
    }

    /// Index of `day` in `days()`, if inside.
    pub fn index(&self, day: NaiveDate) -> Option<usize> {
        (day >= self.from && day <= self.to).then(|| (day - self.from).num_days() as usize)
    }

    /// First instant of the range.
    pub fn start(&self) -> Ts {
        Ts::from(Utc.from_utc_datetime(&self.from.and_time(NaiveTime::MIN)))
    }

    /// First instant after the range (exclusive end).
    pub fn end(&self) -> Ts {
        Ts::from(Utc.from_utc_datetime(&(self.to + Duration::days(1)).and_time(NaiveTime::MIN)))
    }
}

/// `YYYY-MM-DD` of a day.
pub fn format_day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inclusive_ranges() {
        let r = DateRange::parse("2026-03-02", "2026-03-04").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(format_day(r.days()[2]), "2026-03-04");
        assert_eq!(r.start().to_db_text(), "2026-03-02T00:00:00.000000Z");
        assert_eq!(r.end().to_db_text(), "2026-03-05T00:00:00.000000Z");
        assert_eq!(
            DateRange::parse("2026-03-02", "2026-03-02").unwrap().len(),
            1
        );
    }

    #[test]
    fn refuses_bad_ranges_naming_the_field() {
        assert_eq!(
            DateRange::parse("2026-3-2", "2026-03-04")
                .unwrap_err()
                .field,
            "from"
        );
        assert_eq!(DateRange::parse("2026-03-02", "x").unwrap_err().field, "to");
        assert_eq!(
            DateRange::parse("2026-03-04", "2026-03-02")
                .unwrap_err()
                .field,
            "to"
        );
        assert_eq!(
            DateRange::parse("2024-01-01", "2026-01-01")
                .unwrap_err()
                .field,
            "to"
        );
        assert!(DateRange::parse("2026-02-30", "2026-03-01").is_err());
    }
}
