//! Small value rules shared by several resources: text normalisation and limits,
//! ISO 8601 durations, list paging parameters, and query-string timestamps.

use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, Issue};
use crate::types::Ts;

/// Deserializes an optional string, trimmed. (`null` stays `None`.)
pub fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| s.trim().to_string()))
}

/// Deserializes a required string, trimmed.
pub fn trimmed_required<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_string())
}

/// Length rule for a trimmed text field. `label` is the human name used in messages
/// ("Serial number"); `min` 1 means "cannot be empty". Counts characters, not bytes.
pub fn check_text(label: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n < min {
        if min == 1 {
            return Err(format!("{label} cannot be empty"));
        }
        return Err(format!("{label} must contain at least {min} character(s)"));
    }
    if n > max {
        return Err(format!(
            "{label} must be at most {max} characters (String must contain at most {max} character(s))"
        ));
    }
    Ok(())
}

/// `check_text` as a `validator` error, for `#[validate(custom(function = …))]`.
pub fn text_rule(
    label: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), validator::ValidationError> {
    check_text(label, value, min, max).map_err(|m| {
        validator::ValidationError::new("length").with_message(std::borrow::Cow::Owned(m))
    })
}

/// Collects field faults and turns them into one validation error.
#[derive(Default)]
pub struct Faults(Vec<Issue>);

impl Faults {
    pub fn new() -> Self {
        Faults(Vec::new())
    }

    pub fn check(&mut self, field: &str, result: Result<(), String>) -> &mut Self {
        if let Err(message) = result {
            self.0.push(Issue::at(message, field));
        }
        self
    }

    pub fn push(&mut self, issue: Issue) {
        self.0.push(issue);
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

/// An ISO 8601 duration for `micros` microseconds: `PT5M`, `PT2M30S`, `PT0.5S`, `P1DT2H`.
pub fn iso_duration(micros: i64) -> String {
    let neg = micros < 0;
    let mut us = micros.unsigned_abs();
    let days = us / 86_400_000_000;
    us %= 86_400_000_000;
    let hours = us / 3_600_000_000;
    us %= 3_600_000_000;
    let minutes = us / 60_000_000;
    us %= 60_000_000;
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;

    let mut out = String::from(if neg { "-P" } else { "P" });
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || secs > 0 || frac > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if secs > 0 || frac > 0 || (hours == 0 && minutes == 0) {
            if frac > 0 {
                let f = format!("{frac:06}");
                out.push_str(&format!("{secs}.{}S", f.trim_end_matches('0')));
            } else {
                out.push_str(&format!("{secs}S"));
            }
        }
    }
    out
}

/// Parses an ISO 8601 duration (`PT4M`, `PT1.5S`, `P1DT2H`, `P2W`) into microseconds.
/// Years and months are not fixed lengths and are refused.
pub fn parse_iso_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let s = s.strip_prefix(['P', 'p'])?;
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        match c {
            'T' | 't' => {
                if in_time || !num.is_empty() {
                    return None;
                }
                in_time = true;
            }
            '0'..='9' | '.' | ',' => num.push(if c == ',' { '.' } else { c }),
            _ => {
                let v: f64 = num.parse().ok()?;
                num.clear();
                let unit = match (in_time, c.to_ascii_uppercase()) {
                    (false, 'W') => 7.0 * 86_400.0,
                    (false, 'D') => 86_400.0,
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return None,
                };
                total += v * unit;
                any = true;
            }
        }
    }
    if !num.is_empty() || !any {
        return None;
    }
    let us = (total * 1_000_000.0).round();
    if !us.is_finite() || us > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(us as i64) } else { us as i64 })
}

/// Default and maximum page sizes (BEHAVIOR.md §19).
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// A validated page request: `limit` items from offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    /// From the raw `limit` and `cursor` query values. `limit` above 100 is clamped;
    /// 0, negative or non-numeric is a 400. The cursor is an offset, accepted as an
    /// integer or a float with a zero fraction (`50.0`, sent by older clients).
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Page, ApiError> {
        let limit = match limit.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(s) => match parse_whole_number(s) {
                Some(n) if n >= 1 => n.min(MAX_LIMIT),
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("limit must be a positive integer (1 to {MAX_LIMIT}), got `{s}`"),
                    ))
                }
            },
        };
        let offset = match cursor.map(str::trim).filter(|s| !s.is_empty()) {
            None => 0,
            Some(s) => match parse_whole_number(s) {
                Some(n) if n >= 0 => n,
                _ => {
                    return Err(ApiError::invalid(
                        "cursor",
                        format!("cursor must be a non-negative integer, got `{s}`"),
                    ))
                }
            },
        };
        Ok(Page { limit, offset })
    }

    /// The SQL `LIMIT` to fetch: one more than the page, to learn whether more exist.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }
}

fn parse_whole_number(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let f: f64 = s.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// `meta` of every list response.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ListMeta {
    pub has_more: bool,
    #[schema(required = true)]
    pub next_cursor: Option<i64>,
}

/// Trims the extra row fetched by `Page::fetch_limit` and computes `meta`.
pub fn paginate<T>(mut rows: Vec<T>, page: Page) -> (Vec<T>, ListMeta) {
    let has_more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    let meta = ListMeta {
        has_more,
        next_cursor: has_more.then(|| page.offset + page.limit),
    };
    (rows, meta)
}

/// A timestamp from a query string: RFC 3339, or without offset (taken as UTC, as the
/// Python client sends naive datetimes), or a date alone.
pub fn parse_query_ts(field: &str, s: &str) -> Result<Ts, ApiError> {
    query_ts(s).map_err(|e| ApiError::invalid(field, format!("{field} {e}")))
}

/// `parse_query_ts` without the field: the error says what was expected.
pub fn query_ts(s: &str) -> Result<Ts, String> {
    if let Some(ts) = Ts::parse_rfc3339(s) {
        return Ok(ts);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        });
    naive
        .map(|n| Ts::from(n.and_utc()))
        .map_err(|_| format!("must be an RFC 3339 datetime, got `{s}`"))
}

/// An inclusive upper bound (`created_before`, …) from a query string. A value given
/// coarser than microseconds covers the whole of its last unit: `…:05.123Z` admits a row
/// created at `…:05.123456Z`.
// COMPAT: clients bracket "now" with their own clock and send it truncated to milliseconds
// (the Rust client always does), so a row created in the same millisecond as the bracket
// must still match.
pub fn upper_bound(text: &str) -> Result<Ts, String> {
    let ts = query_ts(text)?;
    Ok(Ts::from_micros(ts.micros().saturating_add(upper_slack_micros(text))).unwrap_or(ts))
}

/// Microseconds to add to a timestamp written at `text`'s precision to reach the last
/// microsecond it stands for.
fn upper_slack_micros(text: &str) -> i64 {
    if !text.contains(':') {
        // A date alone: the whole day.
        return 86_400_000_000 - 1;
    }
    let digits = text.split_once('.').map_or(0, |(_, f)| {
        f.chars().take_while(char::is_ascii_digit).count()
    });
    if digits >= 6 {
        0
    } else {
        10i64.pow(6 - digits as u32) - 1
    }
}

/// Sort direction of list endpoints: `asc` or `desc` in any case; blank or absent = `desc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortOrder {
    Asc,
    #[default]
    Desc,
}

impl<'de> Deserialize<'de> for SortOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "" => Ok(SortOrder::Desc),
            s if s.eq_ignore_ascii_case("asc") => Ok(SortOrder::Asc),
            s if s.eq_ignore_ascii_case("desc") => Ok(SortOrder::Desc),
            s => Err(serde::de::Error::custom(format!(
                "must be asc or desc, got `{s}`"
            ))),
        }
    }
}

impl SortOrder {
    pub fn sql(self) -> &'static str {
        match self {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        }
    }
}

/// Escapes `%`, `_` and `\` so user text is matched literally by `LIKE … ESCAPE '\'`.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `%text%` for a case-insensitive substring match on a lower-cased column.
pub fn contains_pattern(s: &str) -> String {
    format!("%{}%", like_escape(&s.to_lowercase()))
}

/// `*text*` as a SQLite `GLOB` pattern that matches `text` in any case of all of Unicode:
/// each letter becomes the class of its lower and upper case (`Écran` →
/// `*[éÉ][cC][rR][aA][nN]*`), the pattern characters are matched literally. SQLite's
/// `lower()` and `LIKE` fold ASCII only; `GLOB` compares code points, so the folding
/// happens here, in Rust, the same way `ci_key` folds names. (Postgres compares
/// `lower(column)` with `contains_pattern`.)
pub fn glob_contains_pattern(s: &str) -> String {
    let mut out = String::from("*");
    for c in s.chars() {
        let mut forms: Vec<char> = vec![c];
        for f in [one(c.to_lowercase()), one(c.to_uppercase())]
            .into_iter()
            .flatten()
        {
            if !forms.contains(&f) {
                forms.push(f);
            }
        }
        if forms.len() == 1 && !matches!(c, '*' | '?' | '[' | ']') {
            out.push(c);
        } else {
            out.push('[');
            // In a class, `]` first is literal; `*`, `?` and `[` are literal anywhere.
            forms.sort_by_key(|f| *f != ']');
            out.extend(forms);
            out.push(']');
        }
    }
    out.push('*');
    out
}

/// The only char of a case mapping, or `None` when it has several (`ß` → `SS`).
fn one(mut mapped: impl Iterator<Item = char>) -> Option<char> {
    let first = mapped.next()?;
    mapped.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format() {
        assert_eq!(iso_duration(300_000_000), "PT5M");
        assert_eq!(iso_duration(150_000_000), "PT2M30S");
        assert_eq!(iso_duration(500_000), "PT0.5S");
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(93_600_000_000), "P1DT2H");
        assert_eq!(iso_duration(86_400_000_000), "P1D");
        assert_eq!(iso_duration(3_600_000_001), "PT1H0.000001S");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_iso_duration("PT4M"), Some(240_000_000));
        assert_eq!(parse_iso_duration("PT1.5S"), Some(1_500_000));
        assert_eq!(parse_iso_duration("P1DT2H"), Some(93_600_000_000));
        assert_eq!(parse_iso_duration("PT1M2.250000S"), Some(62_250_000));
        assert_eq!(parse_iso_duration("PT0S"), Some(0));
        assert_eq!(parse_iso_duration("P"), None);
        assert_eq!(parse_iso_duration("4M"), None);
        assert_eq!(parse_iso_duration("P1M"), None);
        for us in [0, 1, 500_000, 62_250_000, 93_600_000_000] {
            assert_eq!(parse_iso_duration(&iso_duration(us)), Some(us));
        }
    }

    #[test]
    fn pages() {
        assert_eq!(
            Page::parse(None, None).unwrap(),
            Page {
                limit: 50,
                offset: 0
            }
        );
        assert_eq!(
            Page::parse(Some("500"), Some("50.0")).unwrap(),
            Page {
                limit: 100,
                offset: 50
            }
        );
        assert!(Page::parse(Some("0"), None).is_err());
        assert!(Page::parse(Some("-1"), None).is_err());
        assert!(Page::parse(Some("abc"), None).is_err());
        assert!(Page::parse(None, Some("1.5")).is_err());
        let (rows, meta) = paginate(
            vec![1, 2, 3],
            Page {
                limit: 2,
                offset: 4,
            },
        );
        assert_eq!(rows, vec![1, 2]);
        assert!(meta.has_more);
        assert_eq!(meta.next_cursor, Some(6));
        let (_, meta) = paginate(
            vec![1],
            Page {
                limit: 2,
                offset: 0,
            },
        );
        assert!(!meta.has_more && meta.next_cursor.is_none());
    }

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(contains_pattern("A_b%"), "%a\\_b\\%%");
        assert_eq!(glob_contains_pattern("Éc"), "*[Éé][cC]*");
        assert_eq!(glob_contains_pattern("a*?[]1ß"), "*[aA][*][?][[][]]1ß*");
        assert_eq!(glob_contains_pattern("Σ"), "*[Σσ]*");
    }

    #[test]
    fn query_timestamps() {
        assert!(parse_query_ts("t", "2024-01-02T03:04:05.123456Z").is_ok());
        assert!(parse_query_ts("t", "2024-01-02T03:04:05+02:00").is_ok());
        assert_eq!(
            parse_query_ts("t", "2024-01-02T03:04:05")
                .unwrap()
                .to_string(),
            "2024-01-02T03:04:05.000000Z"
        );
        assert!(parse_query_ts("t", "yesterday").is_err());
    }

    #[test]
    fn upper_bounds_cover_their_precision() {
        let upper = |s: &str| upper_bound(s).unwrap().to_string();
        assert_eq!(
            upper("2024-01-02T03:04:05.123Z"),
            "2024-01-02T03:04:05.123999Z"
        );
        assert_eq!(upper("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05.999999Z");
        assert_eq!(
            upper("2024-01-02T03:04:05.123456Z"),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            upper("2024-01-02T03:04:05.1234567Z"),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(upper("2024-01-02"), "2024-01-02T23:59:59.999999Z");
        assert!(upper_bound("soon").is_err());
    }
}
