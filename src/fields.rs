//! Paths to a field of a request (`items.1.outcome`): what every validation issue and
//! storage rejection points at. One type, so the path is built and printed one way.

use std::fmt;

use serde::Serialize;

/// A step in the path to a field: an object key or an array index.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Key(k) => f.write_str(k),
            PathSegment::Index(i) => write!(f, "{i}"),
        }
    }
}

/// A whole path; prints dotted (`items.1.outcome`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<PathSegment>);

impl FieldPath {
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(PathSegment::Key(key.into()));
        self
    }

    pub fn index(mut self, i: usize) -> Self {
        self.0.push(PathSegment::Index(i));
        self
    }

    /// Parses a dotted path whose numeric parts are indexes (`rows.3.serial`).
    pub fn parse_dotted(dotted: &str) -> Self {
        FieldPath(
            dotted
                .split('.')
                .map(|seg| match seg.parse::<usize>() {
                    Ok(i) => PathSegment::Index(i),
                    Err(_) => PathSegment::Key(seg.to_string()),
                })
                .collect(),
        )
    }
}

impl From<&str> for FieldPath {
    fn from(field: &str) -> Self {
        FieldPath(vec![PathSegment::Key(field.to_string())])
    }
}

impl From<Vec<PathSegment>> for FieldPath {
    fn from(path: Vec<PathSegment>) -> Self {
        FieldPath(path)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{seg}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_dotted() {
        let p = FieldPath::default().key("items").index(1).key("outcome");
        assert_eq!(p.to_string(), "items.1.outcome");
        assert_eq!(FieldPath::parse_dotted("items.1.outcome"), p);
    }
}
