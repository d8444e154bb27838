//! File bytes, kept in the database itself: an attachment's bytes are one blob made of
//! `CHUNK_SIZE` rows in `blob_chunks`, so tofulab needs no object store and a backup of
//! the database is a backup of everything.
//!
//! Invariants:
//! - Every chunk but the last of a blob is exactly `CHUNK_SIZE` bytes, so the chunk that
//!   holds byte `n` is `n / CHUNK_SIZE` (ranges start reading there).
//! - Bytes are streamed in and out: an upload is cut into chunks as it arrives, each one
//!   written in its own short transaction (a 1 GiB upload never holds SQLite's single
//!   writer for long); a download reads one chunk per query. Memory stays bounded by a
//!   few chunks whatever the file size.
//! - A blob is `writing` while its chunks arrive and `complete` once its size and SHA-256
//!   are recorded. Only `attachments.blob_id` makes bytes readable, and it is switched to
//!   a blob in the same transaction that completes it (and deletes the blob it replaces),
//!   so a half-written upload is never readable and a re-upload replaces the bytes
//!   atomically.
//! - An upload that fails, is cut off, or whose request is dropped deletes its blob; a
//!   crash leaves a `writing` blob that `sweep_stale_blobs` deletes once it has been idle
//!   for `STALE_WRITING`. While chunks arrive, each chunk (or a heartbeat) refreshes the
//!   blob's `touched_at`: its last activity.
//! - Deleting an attachment (directly, or through its run, unit, procedure or
//!   organization) cascades to its blobs and their chunks.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::{Db, Id, Sql, Ts, Tx};
use crate::db::error::{DbResult, StoreError};

/// Size of every chunk but a blob's last.
pub const CHUNK_SIZE: usize = 1 << 20;

/// A `writing` blob that received nothing for this long belongs to an upload that is
/// gone (a crash, or a client that stalled): the sweep deletes it.
pub const STALE_WRITING: Duration = Duration::from_secs(5 * 60);

/// A live upload refreshes its blob's activity time at least this often, even when it
/// is too slow to fill a chunk within `STALE_WRITING`.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// The stored bytes of a completed upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub blob_id: Id,
    pub size: i64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

/// What a download needs to know about an attachment, whatever its organization (the
/// signed URL is the authorization).
#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: Id,
    pub name: String,
    /// `None` until an upload completed.
    pub blob_id: Option<Id>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub content_type: Option<String>,
}

#[derive(FromRow)]
struct ChunkRow {
    data: Vec<u8>,
}

/// Why an upload stopped, as far as storage is concerned.
fn upload_gone() -> StoreError {
    StoreError::not_found("Upload not found")
}

impl Db {
    /// The attachment behind a signed file URL (any organization), or `None`.
    pub async fn file(&self, id: Id) -> DbResult<Option<FileRow>> {
        self.read()
            .fetch_optional(
                Sql::new(
                    "SELECT id, name, blob_id, size, sha256, content_type
                     FROM attachments WHERE id = $1",
                )
                .bind(id),
            )
            .await
    }

    /// Stores `body` as the new bytes of attachment `attachment_id`, replacing any
    /// previous bytes once (and only if) the whole body arrived. More than `max_size`
    /// bytes: 413 and nothing kept. The attachment deleted meanwhile: 404. A body error
    /// (the client went away, a timeout) is returned as is, after the partial blob was
    /// deleted.
    pub async fn store_blob<S, E>(
        &self,
        attachment_id: Id,
        content_type: &str,
        max_size: u64,
        body: S,
    ) -> Result<StoredBlob, E>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: From<StoreError>,
    {
        let blob_id = Id::new();
        let mut tx = self.begin().await?;
        let created = tx
            .execute(
                Sql::new(
                    "INSERT INTO blobs (id, attachment_id, state, touched_at)
                     SELECT $1, id, 'writing', $2 FROM attachments WHERE id = $3",
                )
                .bind(blob_id)
                .bind(Ts::now())
                .bind(attachment_id),
            )
            .await?;
        if created == 0 {
            return Err(upload_gone().into());
        }
        tx.commit().await?;

        // From here on the partial blob must go on every way out, including this future
        // being dropped mid-upload (the client disconnected).
        let guard = PendingBlob {
            db: self.clone(),
            blob_id,
            armed: true,
        };
        let result = self
            .write_blob(attachment_id, blob_id, content_type, max_size, body)
            .await;
        match result {
            Ok(stored) => {
                guard.disarm();
                Ok(stored)
            }
            Err(e) => {
                guard.discard().await;
                Err(e)
            }
        }
    }

    /// Errors of the body stream (the caller's type `E`) come back unchanged; storage
    /// errors become `E`.
    async fn write_blob<S, E>(
        &self,
        attachment_id: Id,
        blob_id: Id,
        content_type: &str,
        max_size: u64,
        body: S,
    ) -> Result<StoredBlob, E>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: From<StoreError>,
    {
        let mut body = std::pin::pin!(body);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut seq: i64 = 0;
        let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
        let mut last_touch = std::time::Instant::now();
        while let Some(frame) = body.next().await {
            let frame = frame?;
            if last_touch.elapsed() >= HEARTBEAT {
                let mut tx = self.begin().await?;
                touch_blob(&mut tx, blob_id).await?;
                tx.commit().await?;
                last_touch = std::time::Instant::now();
            }
            size += frame.len() as u64;
            if size > max_size {
                return Err(StoreError::TooLarge { limit: max_size }.into());
            }
            hasher.update(&frame);
            let mut rest = &frame[..];
            while !rest.is_empty() {
                let take = rest.len().min(CHUNK_SIZE - buf.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() == CHUNK_SIZE {
                    let chunk = buf.split().freeze();
                    self.append_chunk(blob_id, seq, chunk).await?;
                    last_touch = std::time::Instant::now();
                    seq += 1;
                    buf.reserve(CHUNK_SIZE);
                }
            }
        }
        if !buf.is_empty() {
            self.append_chunk(blob_id, seq, buf.freeze()).await?;
        }
        let stored = StoredBlob {
            blob_id,
            size: size as i64,
            sha256: hex::encode(hasher.finalize()),
        };
        self.complete_blob(attachment_id, &stored, content_type)
            .await?;
        Ok(stored)
    }

    /// Appends one chunk in its own short transaction, refreshing the blob's activity
    /// time. A blob that is no longer `writing` (its attachment was deleted, or the sweep
    /// judged it abandoned) stops the upload.
    async fn append_chunk(&self, blob_id: Id, seq: i64, data: Bytes) -> DbResult<()> {
        let mut tx = self.begin().await?;
        touch_blob(&mut tx, blob_id).await?;
        tx.execute(
            Sql::new("INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)")
                .bind(blob_id)
                .bind(seq)
                .bind(Vec::from(data)),
        )
        .await?;
        tx.commit().await
    }

    /// Marks the blob complete, makes it the attachment's bytes and deletes the blob it
    /// replaces, in one transaction: readers see the old bytes or the new, never a mix.
    /// When two uploads to the same attachment race, the last to complete wins.
    async fn complete_blob(
        &self,
        attachment_id: Id,
        stored: &StoredBlob,
        content_type: &str,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE blobs SET state = 'complete', size = $1, sha256 = $2
                     WHERE id = $3 AND state = 'writing'",
                )
                .bind(stored.size)
                .bind(&stored.sha256)
                .bind(stored.blob_id),
            )
            .await?;
        if n == 0 {
            return Err(upload_gone());
        }
        let n = tx
            .execute(
                Sql::new(
                    "UPDATE attachments SET blob_id = $1, size = $2, sha256 = $3,
                        content_type = $4, uploaded_at = $5
                     WHERE id = $6",
                )
                .bind(stored.blob_id)
                .bind(stored.size)
                .bind(&stored.sha256)
                .bind(content_type)
                .bind(Ts::now())
                .bind(attachment_id),
            )
            .await?;
        if n == 0 {
            return Err(upload_gone());
        }
        tx.execute(
            Sql::new(
                "DELETE FROM blobs WHERE attachment_id = $1 AND state = 'complete' AND id <> $2",
            )
            .bind(attachment_id)
            .bind(stored.blob_id),
        )
        .await?;
        tx.commit().await
    }

    /// Deletes a blob and its chunks (a no-op when it is already gone).
    pub async fn delete_blob(&self, blob_id: Id) -> DbResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(Sql::new("DELETE FROM blobs WHERE id = $1").bind(blob_id))
            .await?;
        tx.commit().await
    }

    /// Bytes `start..end` (end exclusive) of a complete blob, read one chunk per query.
    /// The stream fails if the blob disappears meanwhile (replaced by a re-upload or
    /// deleted): the response is then cut short rather than completed with wrong bytes.
    pub fn blob_bytes(
        &self,
        blob_id: Id,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let chunk = CHUNK_SIZE as u64;
        let state = (self.clone(), start, end);
        futures_util::stream::unfold(state, move |(db, pos, end)| async move {
            if pos >= end {
                return None;
            }
            let seq = (pos / chunk) as i64;
            let row: DbResult<Option<ChunkRow>> = db
                .read()
                .fetch_optional(
                    Sql::new("SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2")
                        .bind(blob_id)
                        .bind(seq),
                )
                .await;
            let data = match row {
                Ok(Some(r)) => r.data,
                Ok(None) => {
                    let e = std::io::Error::other(format!("blob {blob_id} lost chunk {seq}"));
                    return Some((Err(e), (db, end, end)));
                }
                Err(e) => return Some((Err(std::io::Error::other(e)), (db, end, end))),
            };
            let from = (pos % chunk) as usize;
            let to = (data.len() as u64).min(end - seq as u64 * chunk) as usize;
            if from >= to {
                let e = std::io::Error::other(format!("blob {blob_id} chunk {seq} is short"));
                return Some((Err(e), (db, end, end)));
            }
            let mut bytes = Bytes::from(data);
            bytes.truncate(to);
            let bytes = bytes.slice(from..);
            let next = pos + bytes.len() as u64;
            Some((Ok(bytes), (db, next, end)))
        })
    }

    /// Deletes `writing` blobs idle for longer than `idle` (uploads cut off by a crash).
    pub async fn sweep_stale_blobs(&self, idle: Duration) -> DbResult<u64> {
        let cutoff = cutoff(idle);
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                Sql::new("DELETE FROM blobs WHERE state = 'writing' AND touched_at < $1")
                    .bind(cutoff),
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Refreshes a `writing` blob's activity time; 404 when it is no longer being written
/// (its attachment was deleted, or the sweep judged it abandoned).
async fn touch_blob(tx: &mut Tx, blob_id: Id) -> DbResult<()> {
    let alive = tx
        .execute(
            Sql::new("UPDATE blobs SET touched_at = $1 WHERE id = $2 AND state = 'writing'")
                .bind(Ts::now())
                .bind(blob_id),
        )
        .await?;
    if alive == 0 {
        return Err(upload_gone());
    }
    Ok(())
}

/// `now - age`, as a timestamp.
pub(crate) fn cutoff(age: Duration) -> Ts {
    let age = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
    Ts::from_micros(Ts::now().micros().saturating_sub(age)).unwrap_or_else(Ts::now)
}

/// Deletes a partial blob however the upload ends: explicitly on errors, from `Drop`
/// when the request future is dropped (the client disconnected mid-upload).
struct PendingBlob {
    db: Db,
    blob_id: Id,
    armed: bool,
}

impl PendingBlob {
    fn disarm(mut self) {
        self.armed = false;
    }

    async fn discard(mut self) {
        self.armed = false;
        if let Err(e) = self.db.delete_blob(self.blob_id).await {
            tracing::warn!(blob = %self.blob_id, error = %e, "could not delete a partial upload; the sweep will");
        }
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (db, blob_id) = (self.db.clone(), self.blob_id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = db.delete_blob(blob_id).await {
                    tracing::warn!(blob = %blob_id, error = %e, "could not delete a partial upload; the sweep will");
                }
            });
        }
    }
}
