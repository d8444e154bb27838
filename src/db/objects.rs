//! Attachment bytes in an S3-compatible object store (`--blob-store s3://BUCKET/PREFIX`),
//! through the `object_store` crate.
//!
//! The database stays the source of truth: a blob row says where its bytes are
//! (`blobs.store_key`), and only a `complete` blob linked from its attachment is readable,
//! exactly as with bytes kept in the database (see `db::blobs`). The store only holds
//! bytes, under `PREFIX/blobs/<blob id>`:
//! - small bodies (under one part) are written with one `PUT`; larger ones as a multipart
//!   upload whose id is recorded on the blob before the first part, so an upload cut off
//!   by a crash can still be aborted by the sweep;
//! - objects are deleted through the `object_deletions` queue, which a database trigger
//!   fills whenever a blob row goes (whatever deleted it), and the sweep drains.
//!
//! Settings are read as the AWS tools read them: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`),
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, … and
//! `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` (path-style addressing is the default, which every
//! S3-compatible server accepts). An `http://` endpoint is allowed: local stores (MinIO,
//! Garage) often run without TLS.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload,
};
use sha2::{Digest, Sha256};

use super::Id;
use crate::db::error::{DbResult, StoreError};

/// Size of every part of a multipart upload but the last (S3 needs at least 5 MiB). One
/// part is buffered per upload: this bounds an upload's memory.
pub const PART_SIZE: usize = 8 << 20;

/// An S3-compatible bucket (and key prefix) holding attachment bytes.
#[derive(Clone)]
pub struct ObjectBlobs {
    store: Arc<AmazonS3>,
    bucket: String,
    /// Key prefix without slashes at either end; may be empty.
    prefix: String,
    /// Downloads answer 307 to a presigned store URL instead of streaming the bytes.
    redirect: bool,
}

impl fmt::Debug for ObjectBlobs {
    // Never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectBlobs({})", self.url())
    }
}

/// `--blob-store`: `db` (bytes stay rows: `None`) or `s3://BUCKET/PREFIX`.
pub fn parse_blob_store(spec: &str) -> Result<Option<ObjectBlobs>, String> {
    match spec.trim() {
        "" | "db" => Ok(None),
        url => ObjectBlobs::from_url(url).map(Some),
    }
}

impl ObjectBlobs {
    /// The store named by `s3://BUCKET[/PREFIX]`, configured from the environment.
    pub fn from_url(url: &str) -> Result<ObjectBlobs, String> {
        let vars = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
        ObjectBlobs::from_url_with(url, vars)
    }

    /// The store named by `s3://BUCKET[/PREFIX]`, configured by these `AWS_*` settings
    /// instead of the environment's.
    pub fn from_url_with(
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ObjectBlobs, String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            format!("unsupported blob store `{url}`: use db or s3://BUCKET/PREFIX")
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "blob store `{url}` names no bucket: use s3://BUCKET/PREFIX"
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        // object_store's HTTP client uses rustls on the process-wide provider: ring, the
        // one the HTTPS listener uses too. A second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        let (mut plain_http, mut region) = (false, false);
        for (key, value) in vars {
            let key = key.to_ascii_lowercase();
            if key.starts_with("aws_endpoint") && value.starts_with("http://") {
                plain_http = true;
            }
            region |= key == "aws_region" || key == "aws_default_region";
            if let Ok(config_key) = key.parse() {
                builder = builder.with_config(config_key, value);
            }
        }
        if plain_http {
            builder = builder.with_allow_http(true);
        }
        if !region {
            // What the AWS tools assume; S3-compatible servers accept any region.
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .build()
            .map_err(|e| format!("blob store `{url}`: {e}"))?;
        Ok(ObjectBlobs {
            store: Arc::new(store),
            bucket: bucket.to_string(),
            prefix,
            redirect: false,
        })
    }

    /// Downloads redirect to presigned store URLs (`--blob-redirect`).
    pub fn with_redirect(mut self, redirect: bool) -> ObjectBlobs {
        self.redirect = redirect;
        self
    }

    pub fn redirects(&self) -> bool {
        self.redirect
    }

    /// `s3://BUCKET/PREFIX`, for logs.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The key of a blob's object.
    pub fn key_for(&self, blob_id: Id) -> String {
        if self.prefix.is_empty() {
            format!("blobs/{blob_id}")
        } else {
            format!("{}/blobs/{blob_id}", self.prefix)
        }
    }

    /// Writes a whole (small) object in one request: it appears complete or not at all.
    pub async fn put(&self, key: &str, data: Bytes, content_type: &str) -> DbResult<()> {
        let opts = PutOptions {
            attributes: content_type_attribute(content_type),
            ..Default::default()
        };
        self.store
            .put_opts(&Path::from(key), PutPayload::from(data), opts)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Starts a multipart upload; its id is what `put_part`, `complete` and `abort` take.
    pub async fn start_upload(&self, key: &str, content_type: &str) -> DbResult<String> {
        let opts = PutMultipartOptions {
            attributes: content_type_attribute(content_type),
            ..Default::default()
        };
        self.store
            .create_multipart_opts(&Path::from(key), opts)
            .await
            .map_err(store_error)
    }

    pub async fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        index: usize,
        data: Bytes,
    ) -> DbResult<PartId> {
        self.store
            .put_part(
                &Path::from(key),
                &upload_id.to_string(),
                index,
                PutPayload::from(data),
            )
            .await
            .map_err(store_error)
    }

    /// Makes the uploaded parts the object: it becomes visible only now.
    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<PartId>,
    ) -> DbResult<()> {
        self.store
            .complete_multipart(&Path::from(key), &upload_id.to_string(), parts)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Aborts a multipart upload, dropping its parts; one already gone is fine.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> DbResult<()> {
        match self
            .store
            .abort_multipart(&Path::from(key), &upload_id.to_string())
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Deletes an object; one already gone is fine.
    pub async fn delete(&self, key: &str) -> DbResult<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Bytes `range` of an object, streamed as the store sends them.
    pub fn read(
        &self,
        key: String,
        range: Range<u64>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let store = self.store.clone();
        futures_util::stream::once(async move {
            if range.is_empty() {
                return Ok::<_, std::io::Error>(futures_util::stream::empty().boxed());
            }
            let opts = GetOptions {
                range: Some(GetRange::Bounded(range)),
                ..Default::default()
            };
            let got = store
                .get_opts(&Path::from(key), opts)
                .await
                .map_err(std::io::Error::other)?;
            Ok(got.into_stream().map_err(std::io::Error::other).boxed())
        })
        .try_flatten()
    }

    /// A presigned `GET` URL of an object, valid for `expires_in`.
    pub async fn presigned_get(&self, key: &str, expires_in: Duration) -> DbResult<String> {
        let url = self
            .store
            .signed_url(Method::GET, &Path::from(key), expires_in)
            .await
            .map_err(store_error)?;
        Ok(url.to_string())
    }

    /// Every key under the prefix's `blobs/` (tests use it to find objects no blob
    /// names).
    pub async fn list_keys(&self) -> DbResult<Vec<String>> {
        Ok(self.list().await?.into_iter().map(|(k, _)| k).collect())
    }

    /// Every object under the prefix's `blobs/`, with its size.
    pub async fn list(&self) -> DbResult<Vec<(String, u64)>> {
        let prefix = if self.prefix.is_empty() {
            Path::from("blobs")
        } else {
            Path::from(format!("{}/blobs", self.prefix))
        };
        self.store
            .list(Some(&prefix))
            .map_ok(|meta| (meta.location.to_string(), meta.size))
            .try_collect()
            .await
            .map_err(store_error)
    }
}

impl ObjectBlobs {
    /// Writes `body` as the object `key` (one `PUT` below a part, else a multipart upload
    /// aborted on any failure) and returns its size and SHA-256. For copies of bytes the
    /// database already holds (`tofulab blobs migrate`); live uploads go through
    /// `Db::store_blob`, which records the upload on its blob as it goes.
    pub async fn upload_stream<S>(
        &self,
        key: &str,
        content_type: &str,
        body: S,
    ) -> DbResult<(u64, String)>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>>,
    {
        let mut body = std::pin::pin!(body);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = BytesMut::with_capacity(PART_SIZE);
        let mut upload: Option<(String, Vec<PartId>)> = None;
        let result: DbResult<()> = async {
            while let Some(frame) = body.next().await {
                let frame = frame.map_err(StoreError::other)?;
                size += frame.len() as u64;
                hasher.update(&frame);
                let mut rest = &frame[..];
                while !rest.is_empty() {
                    let take = rest.len().min(PART_SIZE - buf.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() == PART_SIZE {
                        if upload.is_none() {
                            upload =
                                Some((self.start_upload(key, content_type).await?, Vec::new()));
                        }
                        let (id, parts) = upload.as_mut().expect("started above");
                        let part = self
                            .put_part(key, id, parts.len(), buf.split().freeze())
                            .await?;
                        parts.push(part);
                    }
                }
            }
            match upload.as_mut() {
                None => self.put(key, buf.split().freeze(), content_type).await,
                Some((id, parts)) => {
                    if !buf.is_empty() {
                        let part = self
                            .put_part(key, id, parts.len(), buf.split().freeze())
                            .await?;
                        parts.push(part);
                    }
                    self.complete_upload(key, id, std::mem::take(parts)).await
                }
            }
        }
        .await;
        if let Err(e) = result {
            if let Some((id, _)) = &upload {
                let _ = self.abort_upload(key, id).await;
            }
            return Err(e);
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Size and SHA-256 of an object, read back from the store.
    pub async fn digest(&self, key: &str, size: u64) -> DbResult<(u64, String)> {
        let mut bytes = std::pin::pin!(self.read(key.to_string(), 0..size));
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        while let Some(frame) = bytes.next().await {
            let frame = frame.map_err(StoreError::other)?;
            read += frame.len() as u64;
            hasher.update(&frame);
        }
        Ok((read, hex::encode(hasher.finalize())))
    }
}

fn content_type_attribute(content_type: &str) -> Attributes {
    let mut attributes = Attributes::new();
    if !content_type.is_empty() {
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
    }
    attributes
}

/// The store failed or is unreachable: the request may be sent again later.
fn store_error(e: object_store::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}
