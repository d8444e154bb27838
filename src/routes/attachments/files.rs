//! The signed file endpoints: `PUT /files/{id}` stores an upload's bytes, `GET` (and
//! `HEAD`) `/files/{id}` serves them. No API key: the URL's signature (HMAC over id,
//! method and expiry) is the authorization, checked before anything is looked up, so a
//! wrong, tampered or expired signature is 403 whether or not the id exists.
//!
//! Bytes stream straight between the socket and the chunk table (`db::blobs`); neither
//! direction holds a whole file in memory.

use std::time::Duration;
use utoipa::ToSchema;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use crate::db::blobs::StoredBlob;
use crate::db::Id;
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::signing::SignatureError;
use crate::AppState;

/// Stored for uploads sent without a (usable) `Content-Type`, e.g. by the legacy client
/// for names without a known extension.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Checks the `expires` and `signature` query parameters for `method` on `id`.
fn verify(state: &AppState, id: Id, method: &str, query: Option<&str>) -> ApiResult<()> {
    let (mut expires, mut signature) = (None, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "expires" if expires.is_none() => expires = Some(v.into_owned()),
            "signature" if signature.is_none() => signature = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(ApiError::forbidden(
            "Missing URL signature: use the URL exactly as the API returned it",
        ));
    };
    let expires: i64 = expires
        .parse()
        .map_err(|_| ApiError::forbidden("Invalid URL signature"))?;
    let now = chrono::Utc::now().timestamp();
    state
        .signer
        .verify(id, method, expires, &signature, now)
        .map_err(|e| match e {
            SignatureError::Invalid => ApiError::forbidden("Invalid URL signature"),
            SignatureError::Expired => {
                ApiError::forbidden("This URL has expired: ask the API for a new one")
            }
        })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileUploadResponse {
    id: Id,
    size: i64,
    sha256: String,
}

/// Upload — `PUT {upload_url}` with the raw bytes as the body (no Authorization). Answers
/// exactly 200 (clients require it). The `Content-Type` sent is stored, default
/// `application/octet-stream`. Uploading again replaces the bytes atomically. Over
/// `--max-upload-size`: 413 (up front when `Content-Length` says so), nothing kept.
// BEHAVIOR: the CLI's offline queue sorts a failed PUT by the words of the message:
// `expired`/`signature`/`invalid`/`not found` park it (403 signature, 404), and so does
// 413; a stall is 408 whose message says `timeout` so that the upload is retried, and
// a busy database is 503 "temporarily unavailable" with Retry-After.
pub(super) async fn upload(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    verify(&state, id, "PUT", query.as_deref())?;
    let max = state.settings.max_upload_size;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::payload_too_large(max));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|ct| !ct.is_empty() && ct.len() <= 255)
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_string();
    let mut body = Box::pin(body_frames(body));
    let stored = state
        .db
        .store_blob(id, &content_type, max, body.as_mut())
        .await;
    let StoredBlob { size, sha256, .. } = match stored {
        Ok(stored) => stored,
        Err(e) => {
            drain(body.as_mut()).await;
            return Err(e);
        }
    };
    crate::monitoring::upload_bytes(size.max(0) as u64);
    let mut resp = axum::Json(FileUploadResponse {
        id,
        size,
        sha256: sha256.clone(),
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// The request body as a stream of byte frames; a broken connection, or a client that
/// sends nothing for the request timeout (`--request-timeout`), ends it with an error.
fn body_frames(body: Body) -> impl futures_util::Stream<Item = ApiResult<bytes::Bytes>> {
    body.into_data_stream()
        .map(|frame| frame.map_err(|e| crate::extract::body_error(&e)))
}

/// Reads and discards what remains of a refused upload (413, or 404 when the attachment
/// was deleted meanwhile), within bounds, so that the client is reading the error when
/// the connection closes instead of getting a reset while it still sends. A body that
/// already failed (the client went away) ends the drain at once.
async fn drain<S: futures_util::Stream<Item = ApiResult<bytes::Bytes>> + Unpin>(mut body: S) {
    const DRAIN_LIMIT: usize = 8 << 20;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(frame))) => drained += frame.len(),
            _ => return,
        }
    }
}

/// Download — `GET {download_url}` (no Authorization): the stored bytes with their
/// `Content-Type`, `Content-Length` and an `ETag` (the SHA-256). A single `Range:
/// bytes=…` gets 206 with `Content-Range` (416 when unsatisfiable); several ranges are
/// answered with the whole file. `If-None-Match` gets 304. `HEAD` answers the same
/// headers without the body (it accepts the GET signature).
pub(super) async fn download(
    State(state): State<AppState>,
    Path(id): Path<Id>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    verify(&state, id, "GET", query.as_deref())?;
    let file = state
        .db
        .file(id)
        .await?
        .ok_or_else(|| ApiError::not_found("File not found"))?;
    let (Some(blob_id), Some(size), Some(sha256)) = (file.blob_id, file.size, file.sha256) else {
        return Err(ApiError::not_found(
            "File not found: nothing was uploaded yet",
        ));
    };
    let size = size as u64;
    let etag = format!("\"{sha256}\"");

    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    h.insert(header::ETAG, header_value(&etag));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag))
    {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(resp);
    }

    // --blob-redirect: the store serves the bytes (and the Range) itself.
    if method == Method::GET {
        if let Some(url) = state
            .db
            .blob_redirect(blob_id, state.settings.signed_url_ttl)
            .await?
        {
            *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            resp.headers_mut()
                .insert(header::LOCATION, header_value(&url));
            return Ok(resp);
        }
    }

    let (start, end) = match ByteRange::requested(&headers, &etag, size) {
        ByteRange::Full => (0, size),
        ByteRange::Partial(first, last) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let cr = format!("bytes {first}-{last}/{size}");
            resp.headers_mut()
                .insert(header::CONTENT_RANGE, header_value(&cr));
            (first, last + 1)
        }
        ByteRange::Unsatisfiable => {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("Range not satisfiable: the file has {size} bytes"),
            )
            .into_response();
            let cr = format!("bytes */{size}");
            e.headers_mut()
                .insert(header::CONTENT_RANGE, header_value(&cr));
            return Ok(e);
        }
    };
    let content_type = file.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE);
    representation_headers(resp.headers_mut(), content_type, &file.name, end - start);
    if method != Method::HEAD && end > start {
        *resp.body_mut() = Body::from_stream(state.db.blob_bytes(blob_id, start, end));
    }
    Ok(resp)
}

/// `Content-Type`, `Content-Length` (of what is sent), `Content-Disposition` and
/// `nosniff` (content types are whatever the uploader sent: never let a browser sniff).
fn representation_headers(h: &mut HeaderMap, content_type: &str, name: &str, length: u64) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&content_disposition(name)),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A header value from text we built (ASCII by construction).
fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

/// `If-None-Match: "a", "b"` or `*` against our strong ETag (weak forms compare too).
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// `attachment; filename="…"; filename*=UTF-8''…` — the original name, safely quoted.
fn content_disposition(name: &str) -> String {
    // A file name, never a path: whatever the uploader named it (`../../etc/passwd`,
    // `..\\x`), a client that saves the download must not be led out of its folder.
    let name = &name.replace(['/', '\\'], "_");
    const ATTR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR)
    )
}

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// No usable range (absent, malformed, another unit, or several ranges): send all.
    Full,
    /// Bytes `first..=last`, within the file.
    Partial(u64, u64),
    /// A well-formed single range that lies outside the file: 416.
    Unsatisfiable,
}

impl ByteRange {
    /// The range the request asks for: its `Range` header, unless an `If-Range` names
    /// another validator (the file changed since: send all of it).
    fn requested(headers: &HeaderMap, etag: &str, size: u64) -> ByteRange {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        match text(header::RANGE) {
            Some(range) if text(header::IF_RANGE).is_none_or(|v| v.trim() == etag) => {
                ByteRange::parse(range, size)
            }
            _ => ByteRange::Full,
        }
    }

    fn parse(header: &str, size: u64) -> ByteRange {
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return ByteRange::Full;
        };
        if spec.contains(',') {
            return ByteRange::Full;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return ByteRange::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match (number(first), number(last)) {
            // bytes=-N: the last N bytes.
            (None, Some(n)) if first.is_empty() => {
                if n == 0 || size == 0 {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial(size - n.min(size), size - 1)
                }
            }
            // bytes=A-
            (Some(a), None) if last.is_empty() => {
                if a >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial(a, size - 1)
                }
            }
            // bytes=A-B
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial(a, b.min(size - 1))
                }
            }
            _ => ByteRange::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(ByteRange::parse("bytes=0-9", 100), Partial(0, 9));
        assert_eq!(ByteRange::parse("bytes=90-200", 100), Partial(90, 99));
        assert_eq!(ByteRange::parse("bytes=10-", 100), Partial(10, 99));
        assert_eq!(ByteRange::parse("bytes=-10", 100), Partial(90, 99));
        assert_eq!(ByteRange::parse("bytes=-500", 100), Partial(0, 99));
        assert_eq!(ByteRange::parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=5-2", 100), Full);
        assert_eq!(ByteRange::parse("bytes=0-1,5-6", 100), Full);
        assert_eq!(ByteRange::parse("items=0-1", 100), Full);
        assert_eq!(ByteRange::parse("bytes=a-b", 100), Full);
        assert_eq!(ByteRange::parse("bytes=-", 100), Full);
    }

    #[test]
    fn dispositions_are_quoted_safely() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("a \"b\"\né.txt"),
            "attachment; filename=\"a _b___.txt\"; filename*=UTF-8''a%20%22b%22%0A%C3%A9.txt"
        );
    }

    #[test]
    fn etags_match_lists_and_weak_forms() {
        assert!(etag_matches("\"x\"", "\"x\""));
        assert!(etag_matches("\"y\", W/\"x\"", "\"x\""));
        assert!(etag_matches("*", "\"x\""));
        assert!(!etag_matches("\"y\"", "\"x\""));
    }
}
