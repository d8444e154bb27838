//! `tofulab migrate-data --from URL --to URL [--force]`: copies every organization (all
//! rows, attachment bytes) and the server settings (the URL signing secret: signed URLs
//! stay valid) from one database to another, typically SQLite to Postgres.
//!
//! Each organization travels as its export stream (`db::export`) through an in-memory
//! pipe: read a page at a time, written in one transaction per organization, so memory
//! stays bounded whatever the size. Then it is verified: the SHA-256 of the
//! organization's export from the source and from the target must be equal, which covers
//! every row, value and byte (the export is a deterministic function of the content).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, BufReader};

use crate::db::{Db, Id};

pub async fn migrate(from: &str, to: &str, force: bool) -> Result<(), String> {
    if let Some(path) = crate::db::sqlite_path(from) {
        if !path.exists() {
            return Err(format!("--from: {} does not exist", path.display()));
        }
    }
    let source = Db::connect(from).await?;
    let target = Db::connect(to).await?;
    let result = copy_all(&source, &target, force).await;
    source.close().await;
    target.close().await;
    result
}

async fn copy_all(source: &Db, target: &Db, force: bool) -> Result<(), String> {
    let existing = target.organizations().await.map_err(|e| e.to_string())?;
    if !existing.is_empty() && !force {
        return Err(format!(
            "--to already holds {} organization(s); pass --force to copy into it anyway \
             (organizations with the same id are replaced)",
            existing.len()
        ));
    }
    let settings = source.settings().await.map_err(|e| e.to_string())?;
    target
        .put_settings(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let organizations = source.organizations().await.map_err(|e| e.to_string())?;
    for org in &organizations {
        let rows = copy_one(source, target, org.id).await?;
        let (from_digest, _) = digest(source, org.id).await?;
        let (to_digest, _) = digest(target, org.id).await?;
        if from_digest != to_digest {
            return Err(format!(
                "organization {} ({}): the copy differs from the source (sha256 {} vs {})",
                org.name, org.id, from_digest, to_digest
            ));
        }
        eprintln!(
            "copied organization {} ({}, {}): {rows} rows, sha256 {from_digest}, verified",
            org.name, org.slug, org.id
        );
    }
    eprintln!(
        "migrated {} organization(s) and {} setting(s)",
        organizations.len(),
        settings.len()
    );
    Ok(())
}

/// Streams one organization from `source` into `target`.
async fn copy_one(source: &Db, target: &Db, org_id: Id) -> Result<u64, String> {
    let (mut writer, reader) = tokio::io::duplex(1 << 20);
    let export = async {
        let moved = source.export_organization(org_id, &mut writer).await;
        // Closing the pipe ends the import's input.
        drop(writer);
        moved
    };
    let import = target.import_organization(None, BufReader::new(reader));
    let (exported, imported) = tokio::join!(export, import);
    let exported = exported.map_err(|e| format!("reading organization {org_id}: {e}"))?;
    let (_, imported) = imported.map_err(|e| format!("writing organization {org_id}: {e}"))?;
    if exported.rows != imported.rows {
        return Err(format!(
            "organization {org_id}: {} rows read, {} written",
            exported.rows, imported.rows
        ));
    }
    Ok(imported.rows)
}

/// The SHA-256 of an organization's export, and its row count.
async fn digest(db: &Db, org_id: Id) -> Result<(String, u64), String> {
    let mut hasher = HashWriter(Sha256::new());
    let moved = db
        .export_organization(org_id, &mut hasher)
        .await
        .map_err(|e| e.to_string())?;
    Ok((hex::encode(hasher.0.finalize()), moved.rows))
}

/// An `AsyncWrite` that only hashes what it is given.
struct HashWriter(Sha256);

impl AsyncWrite for HashWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.update(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
