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
use futures_util::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use object_store::multipart::PartId;

use super::objects::{ObjectBlobs, PART_SIZE};
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
        let store_key = self.objects.as_ref().map(|o| o.key_for(blob_id));
        let mut tx = self.begin().await?;
        let created = tx
            .execute(
                Sql::new(
                    "INSERT INTO blobs (id, attachment_id, state, touched_at, store_key)
                     SELECT $1, id, 'writing', $2, $3 FROM attachments WHERE id = $4",
                )
                .bind(blob_id)
                .bind(Ts::now())
                .bind(store_key.as_deref())
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
            store_key: store_key.clone(),
            armed: true,
        };
        let sink = match (&self.objects, store_key) {
            (Some(objects), Some(key)) => Sink::Object {
                objects: objects.clone(),
                key,
                upload: None,
            },
            _ => Sink::Chunks,
        };
        let result = self
            .write_blob(attachment_id, blob_id, sink, content_type, max_size, body)
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
        mut sink: Sink,
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
        let mut seq: usize = 0;
        let piece = sink.piece_size();
        let mut buf = BytesMut::with_capacity(piece);
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
                let take = rest.len().min(piece - buf.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() == piece {
                    let data = buf.split().freeze();
                    self.append_piece(&mut sink, blob_id, content_type, seq, data)
                        .await?;
                    last_touch = std::time::Instant::now();
                    seq += 1;
                    buf.reserve(piece);
                }
            }
        }
        self.finish_pieces(sink, blob_id, content_type, seq, buf.freeze())
            .await?;
        let stored = StoredBlob {
            blob_id,
            size: size as i64,
            sha256: hex::encode(hasher.finalize()),
        };
        self.complete_blob(attachment_id, &stored, content_type)
            .await?;
        Ok(stored)
    }

    /// Writes one full piece: a chunk row, or a part of the object's multipart upload
    /// (started, and its id recorded on the blob, with the first part). Each piece first
    /// checks the blob is still `writing`.
    async fn append_piece(
        &self,
        sink: &mut Sink,
        blob_id: Id,
        content_type: &str,
        seq: usize,
        data: Bytes,
    ) -> DbResult<()> {
        match sink {
            Sink::Chunks => self.append_chunk(blob_id, seq as i64, data).await,
            Sink::Object {
                objects,
                key,
                upload,
            } => {
                if upload.is_none() {
                    let id = objects.start_upload(key, content_type).await?;
                    let mut tx = self.begin().await?;
                    let recorded = tx
                        .execute(
                            Sql::new(
                                "UPDATE blobs SET upload_id = $1, touched_at = $2
                                 WHERE id = $3 AND state = 'writing'",
                            )
                            .bind(&id)
                            .bind(Ts::now())
                            .bind(blob_id),
                        )
                        .await;
                    let recorded = match recorded {
                        Ok(n) => tx.commit().await.map(|()| n),
                        Err(e) => Err(e),
                    };
                    if !matches!(recorded, Ok(1)) {
                        // Nothing else knows this upload: abort it here.
                        let _ = objects.abort_upload(key, &id).await;
                        return Err(recorded.err().unwrap_or_else(upload_gone));
                    }
                    *upload = Some((id, Vec::new()));
                } else {
                    let mut tx = self.begin().await?;
                    touch_blob(&mut tx, blob_id).await?;
                    tx.commit().await?;
                }
                let (id, parts) = upload.as_mut().expect("started above");
                let part = objects.put_part(key, id, seq, data).await?;
                parts.push(part);
                Ok(())
            }
        }
    }

    /// Writes what is left after the last full piece. An object smaller than one part is
    /// written with a single `PUT`; a multipart upload gets its last part and is completed
    /// (the object appears only now).
    async fn finish_pieces(
        &self,
        sink: Sink,
        blob_id: Id,
        content_type: &str,
        seq: usize,
        rest: Bytes,
    ) -> DbResult<()> {
        match sink {
            Sink::Chunks if rest.is_empty() => Ok(()),
            Sink::Chunks => self.append_chunk(blob_id, seq as i64, rest).await,
            Sink::Object {
                objects,
                key,
                upload: None,
            } => objects.put(&key, rest, content_type).await,
            Sink::Object {
                objects,
                key,
                upload: Some((id, mut parts)),
            } => {
                if !rest.is_empty() {
                    parts.push(objects.put_part(&key, &id, seq, rest).await?);
                }
                objects.complete_upload(&key, &id, parts).await
            }
        }
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
                    "UPDATE blobs SET state = 'complete', size = $1, sha256 = $2, upload_id = NULL
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

    /// Deletes a blob and its chunks (a no-op when it is already gone). Its object, if
    /// any, is queued for deletion by the database trigger.
    pub async fn delete_blob(&self, blob_id: Id) -> DbResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(Sql::new("DELETE FROM blobs WHERE id = $1").bind(blob_id))
            .await?;
        tx.commit().await
    }

    /// Deletes a failed upload's blob. Its object is queued for deletion even when the
    /// row was already gone (deleted with its attachment while the upload ran): the
    /// upload may have written the object after that delete queued it.
    async fn discard_blob(&self, blob_id: Id, store_key: Option<&str>) -> DbResult<()> {
        let mut tx = self.begin().await?;
        let deleted = tx
            .execute(Sql::new("DELETE FROM blobs WHERE id = $1").bind(blob_id))
            .await?;
        if let (0, Some(key)) = (deleted, store_key) {
            tx.execute(Sql::new("INSERT INTO object_deletions (store_key) VALUES ($1)").bind(key))
                .await?;
        }
        tx.commit().await
    }

    /// Bytes `start..end` (end exclusive) of a complete blob, from the database (one
    /// chunk per query) or the object store, wherever the blob's bytes are. The stream
    /// fails if the blob disappears meanwhile (replaced by a re-upload or deleted): the
    /// response is then cut short rather than completed with wrong bytes.
    pub fn blob_bytes(
        &self,
        blob_id: Id,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let db = self.clone();
        futures_util::stream::once(async move {
            let key = db
                .blob_store_key(blob_id)
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(match key {
                None => db.chunk_bytes(blob_id, start, end).boxed(),
                Some(key) => match &db.objects {
                    Some(objects) => objects.read(key, start..end).boxed(),
                    None => {
                        let e = std::io::Error::other(format!(
                            "blob {blob_id} is in an object store; start tofulab with its \
                             --blob-store to read it"
                        ));
                        futures_util::stream::once(async move { Err(e) }).boxed()
                    }
                },
            })
        })
        .try_flatten()
    }

    /// Where a blob's bytes are: `Some(key)` in the object store, `None` in the database.
    async fn blob_store_key(&self, blob_id: Id) -> DbResult<Option<String>> {
        let row: Option<(Option<String>,)> = self
            .read()
            .fetch_optional(Sql::new("SELECT store_key FROM blobs WHERE id = $1").bind(blob_id))
            .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// A presigned store URL for downloading a blob, when downloads redirect
    /// (`--blob-redirect`) and the blob's bytes are in the object store.
    pub async fn blob_redirect(
        &self,
        blob_id: Id,
        expires_in: Duration,
    ) -> DbResult<Option<String>> {
        let Some(objects) = self.objects.as_ref().filter(|o| o.redirects()) else {
            return Ok(None);
        };
        match self.blob_store_key(blob_id).await? {
            Some(key) => Ok(Some(objects.presigned_get(&key, expires_in).await?)),
            None => Ok(None),
        }
    }

    /// Bytes `start..end` of a blob kept in the database, one chunk per query.
    fn chunk_bytes(
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

impl Db {
    /// Drains the object deletion queue (filled by the `blobs` trigger): aborts unfinished
    /// multipart uploads and deletes objects, then their queue rows, in batches. Several
    /// replicas may drain at once: every step is idempotent. Without an object store
    /// there is nothing to do. Returns how many objects were deleted.
    pub async fn sweep_object_deletions(&self) -> DbResult<u64> {
        const BATCH: i64 = 100;
        let Some(objects) = &self.objects else {
            return Ok(0);
        };
        let mut done = 0;
        // A row the store keeps refusing is skipped for this pass (and logged), so that it
        // cannot hold up the rows behind it.
        let mut after = 0i64;
        let (mut failed, mut first_error) = (0u64, None);
        loop {
            let queued: Vec<(i64, String, Option<String>)> = self
                .read()
                .fetch_all(
                    Sql::new(
                        "SELECT id, store_key, upload_id FROM object_deletions
                         WHERE id > $1 ORDER BY id LIMIT $2",
                    )
                    .bind(after)
                    .bind(BATCH),
                )
                .await?;
            if queued.is_empty() {
                if let Some(e) = first_error {
                    tracing::warn!(failed, error = %e, "could not delete some objects; will retry");
                }
                return Ok(done);
            }
            for (id, key, upload_id) in &queued {
                after = *id;
                match self
                    .delete_queued_object(objects, key, upload_id.as_deref())
                    .await
                {
                    Ok(()) => {
                        let mut tx = self.begin().await?;
                        tx.execute(
                            Sql::new("DELETE FROM object_deletions WHERE id = $1").bind(*id),
                        )
                        .await?;
                        tx.commit().await?;
                        done += 1;
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
    }

    /// Aborts the object's unfinished upload, if any, and deletes it unless a blob still
    /// names it (rows re-inserted by an import).
    async fn delete_queued_object(
        &self,
        objects: &ObjectBlobs,
        key: &str,
        upload_id: Option<&str>,
    ) -> DbResult<()> {
        if let Some(upload_id) = upload_id {
            objects.abort_upload(key, upload_id).await?;
        }
        let named: Option<(Id,)> = self
            .read()
            .fetch_optional(Sql::new("SELECT id FROM blobs WHERE store_key = $1 LIMIT 1").bind(key))
            .await?;
        if named.is_none() {
            objects.delete(key).await?;
        }
        Ok(())
    }
}

/// What `Db::migrate_blobs` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlobMigration {
    /// Blobs whose bytes moved to the object store (verified by SHA-256).
    pub moved: u64,
    pub bytes: u64,
    /// Blobs deleted while they were being copied (their copy was deleted too).
    pub gone: u64,
}

impl Db {
    /// Moves the bytes of every complete blob kept in the database to `objects`, one blob
    /// at a time: copy, read the object back and compare its SHA-256 with the recorded
    /// one, then point the blob at the object and delete its chunks in one transaction.
    /// Resumable: an interrupted run leaves every blob either moved or untouched (a copy
    /// not yet recorded is overwritten by the next run), and the next run continues with
    /// the blobs left. The server may keep running meanwhile.
    pub async fn migrate_blobs(
        &self,
        objects: &ObjectBlobs,
        mut progress: impl FnMut(&BlobMigration),
    ) -> DbResult<BlobMigration> {
        let mut report = BlobMigration::default();
        let mut after = Id::NIL;
        loop {
            let next: Option<(Id, i64, String, Option<String>)> = self
                .read()
                .fetch_optional(
                    Sql::new(
                        "SELECT b.id, b.size, b.sha256, a.content_type
                         FROM blobs b JOIN attachments a ON a.id = b.attachment_id
                         WHERE b.state = 'complete' AND b.store_key IS NULL AND b.id > $1
                         ORDER BY b.id LIMIT 1",
                    )
                    .bind(after),
                )
                .await?;
            let Some((blob_id, size, sha256, content_type)) = next else {
                return Ok(report);
            };
            after = blob_id;
            let size = size as u64;
            let key = objects.key_for(blob_id);
            let content_type = content_type.unwrap_or_default();
            let copied = objects
                .upload_stream(&key, &content_type, self.chunk_bytes(blob_id, 0, size))
                .await;
            let copied = match copied {
                Ok(c) => c,
                // Deleted (or replaced) while it was read: nothing to move.
                Err(_) if !self.blob_exists(blob_id).await? => {
                    objects.delete(&key).await?;
                    report.gone += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if copied != (size, sha256.clone()) {
                objects.delete(&key).await?;
                return Err(StoreError::other(format!(
                    "blob {blob_id}: the database's bytes do not match their recorded SHA-256 \
                     ({} bytes, {}; recorded {size} bytes, {sha256}); left in the database",
                    copied.0, copied.1
                )));
            }
            if objects.digest(&key, size).await? != (size, sha256.clone()) {
                objects.delete(&key).await?;
                return Err(StoreError::other(format!(
                    "blob {blob_id}: the object store's copy does not match SHA-256 {sha256}; \
                     left in the database"
                )));
            }
            let mut tx = self.begin().await?;
            let switched = tx
                .execute(
                    Sql::new(
                        "UPDATE blobs SET store_key = $1
                         WHERE id = $2 AND state = 'complete' AND store_key IS NULL",
                    )
                    .bind(&key)
                    .bind(blob_id),
                )
                .await?;
            if switched == 1 {
                tx.execute(Sql::new("DELETE FROM blob_chunks WHERE blob_id = $1").bind(blob_id))
                    .await?;
                tx.commit().await?;
                report.moved += 1;
                report.bytes += size;
            } else {
                tx.commit().await?;
                objects.delete(&key).await?;
                report.gone += 1;
            }
            progress(&report);
        }
    }

    async fn blob_exists(&self, blob_id: Id) -> DbResult<bool> {
        let row: Option<(Id,)> = self
            .read()
            .fetch_optional(Sql::new("SELECT id FROM blobs WHERE id = $1").bind(blob_id))
            .await?;
        Ok(row.is_some())
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
pub fn cutoff(age: Duration) -> Ts {
    let age = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
    Ts::from_micros(Ts::now().micros().saturating_sub(age)).unwrap_or_else(Ts::now)
}

/// Where an upload's bytes go.
enum Sink {
    /// `CHUNK_SIZE` rows of `blob_chunks`.
    Chunks,
    /// An object in the store: one `PUT` if the body is smaller than a part, otherwise a
    /// multipart upload (its id and the parts written so far).
    Object {
        objects: ObjectBlobs,
        key: String,
        upload: Option<(String, Vec<PartId>)>,
    },
}

impl Sink {
    /// Bytes buffered before each write.
    fn piece_size(&self) -> usize {
        match self {
            Sink::Chunks => CHUNK_SIZE,
            Sink::Object { .. } => PART_SIZE,
        }
    }
}

/// Deletes a partial blob however the upload ends: explicitly on errors, from `Drop`
/// when the request future is dropped (the client disconnected mid-upload).
struct PendingBlob {
    db: Db,
    blob_id: Id,
    store_key: Option<String>,
    armed: bool,
}

impl PendingBlob {
    fn disarm(mut self) {
        self.armed = false;
    }

    async fn discard(mut self) {
        self.armed = false;
        let key = self.store_key.take();
        if let Err(e) = self.db.discard_blob(self.blob_id, key.as_deref()).await {
            tracing::warn!(blob = %self.blob_id, error = %e, "could not delete a partial upload; the sweep will");
        }
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (db, blob_id, key) = (self.db.clone(), self.blob_id, self.store_key.take());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = db.discard_blob(blob_id, key.as_deref()).await {
                    tracing::warn!(blob = %blob_id, error = %e, "could not delete a partial upload; the sweep will");
                }
            });
        }
    }
}
