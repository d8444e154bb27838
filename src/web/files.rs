//! `GET /attachments/{id}`: an attachment's bytes for a signed-in user of its
//! organization. Images and PDFs are served inline (for the previews); everything else,
//! and any file with `?download=1`, as a download. Content types are whatever the
//! uploader sent, so nothing else is ever rendered inline, and nothing is sniffed.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::{PageError, PageResult, Session};
use crate::db::Id;
use crate::AppState;

/// What the page can preview inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview {
    Image,
    Pdf,
}

/// The preview for a content type, if it is one browsers show safely.
pub fn preview_kind(content_type: Option<&str>) -> Option<Preview> {
    let ct = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    match ct.as_str() {
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" => Some(Preview::Image),
        "application/pdf" => Some(Preview::Pdf),
        _ => None,
    }
}

pub async fn attachment(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let not_found = || PageError::NotFound("Attachment not found".into());
    let id = Id::parse(&id).ok_or_else(not_found)?;
    let file = state
        .db
        .org_file(session.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    let (Some(blob_id), Some(size)) = (file.blob_id, file.size) else {
        return Err(not_found());
    };
    let download = raw.as_deref().is_some_and(|q| q.contains("download=1"));
    let preview = preview_kind(file.content_type.as_deref());
    let content_type = match preview {
        Some(_) => file.content_type.clone().unwrap_or_default(),
        None => "application/octet-stream".to_string(),
    };
    let safe_name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_. ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = if download || preview.is_none() {
        format!("attachment; filename=\"{safe_name}\"")
    } else {
        format!("inline; filename=\"{safe_name}\"")
    };
    let size = size.max(0) as u64;
    let mut resp = Response::new(Body::from_stream(state.db.blob_bytes(blob_id, 0, size)));
    let h = resp.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::CONTENT_TYPE, value(&content_type));
    h.insert(header::CONTENT_LENGTH, value(&size.to_string()));
    h.insert(header::CONTENT_DISPOSITION, value(&disposition));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if preview.is_none() {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'"),
        );
    }
    Ok(resp)
}
