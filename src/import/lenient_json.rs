//! JSON as Python writes it with `allow_nan=True`: the non-standard tokens `NaN`,
//! `Infinity` and `-Infinity` may stand where a number goes (BEHAVIOR.md §11.4). They are
//! read as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`: JSON has no such numbers,
//! and a string keeps what the station measured visible instead of dropping it.

use serde::de::DeserializeOwned;

/// The three tokens and the string each one becomes.
const TOKENS: [(&[u8], &[u8]); 3] = [
    (b"-Infinity", b"\"-Infinity\""),
    (b"Infinity", b"\"Infinity\""),
    (b"NaN", b"\"NaN\""),
];

/// A document that could not be read: where (`path`, empty at the top level) and why.
#[derive(Debug)]
pub struct Error {
    pub path: String,
    pub inner: serde_json::Error,
}

/// Deserializes `bytes`, accepting the Python tokens. Standard JSON takes the fast path;
/// only a document that fails to parse is scanned and rewritten. A UTF-8 byte order mark
/// is skipped.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match parse(bytes) {
        Ok(v) => Ok(v),
        Err(first) => match rewrite_tokens(bytes) {
            Some(rewritten) => parse(&rewritten),
            None => Err(first),
        },
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| Error {
        path: e.path().to_string(),
        inner: e.into_inner(),
    })?;
    // Trailing garbage after the document is an error too.
    de.end().map_err(|inner| Error {
        path: String::new(),
        inner,
    })?;
    Ok(value)
}

/// The document with every `NaN` / `Infinity` / `-Infinity` token outside string
/// literals replaced by its string form; `None` when there is none.
pub fn rewrite_tokens(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let token = TOKENS
            .iter()
            .find(|(t, _)| bytes[i..].starts_with(t) && !continues_word(bytes, i + t.len()));
        match token {
            Some((t, replacement)) if !continues_word(bytes, i.wrapping_sub(1)) => {
                let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len() + 16));
                buf.extend_from_slice(&bytes[copied..i]);
                buf.extend_from_slice(replacement);
                i += t.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    let mut buf = out?;
    buf.extend_from_slice(&bytes[copied..]);
    Some(buf)
}

/// True when the byte at `i` (if any) would make a token part of a longer word.
fn continues_word(bytes: &[u8], i: usize) -> bool {
    bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn standard_json_is_untouched() {
        let v: Value = from_slice(br#"{"a": [1, 2.5, "NaN"]}"#).unwrap();
        assert_eq!(v, json!({"a": [1, 2.5, "NaN"]}));
    }

    #[test]
    fn python_tokens_become_strings() {
        let v: Value =
            from_slice(b"{\"v\": NaN, \"w\": [Infinity, -Infinity, 1], \"s\": \"x NaN y\"}")
                .unwrap();
        assert_eq!(
            v,
            json!({"v": "NaN", "w": ["Infinity", "-Infinity", 1], "s": "x NaN y"})
        );
    }

    #[test]
    fn tokens_inside_strings_and_escapes_stay() {
        let src = br#"{"m": "say \"NaN\" Infinity", "n": NaN}"#;
        let v: Value = from_slice(src).unwrap();
        assert_eq!(v["m"], json!("say \"NaN\" Infinity"));
        assert_eq!(v["n"], json!("NaN"));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let v: Value = from_slice(b"\xEF\xBB\xBF{\"a\": 1}").unwrap();
        assert_eq!(v, json!({"a": 1}));
    }

    #[test]
    fn garbage_still_fails() {
        assert!(from_slice::<Value>(b"{\"a\": NaNa}").is_err());
        assert!(from_slice::<Value>(b"{\"a\": 1} trailing").is_err());
        assert!(from_slice::<Value>(b"not json").is_err());
    }
}
