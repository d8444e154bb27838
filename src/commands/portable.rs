//! `tofulab export` and `tofulab import`: an organization to and from a JSON Lines file,
//! offline (the server may be running: the export reads, the import is one transaction).

use std::path::Path;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

use crate::db::{Db, Id};

pub async fn export(organization: &str, file: &Path, database_url: &str) -> Result<(), String> {
    let org_id = Id::parse(organization.trim())
        .ok_or_else(|| format!("--organization {organization:?} is not an organization id"))?;
    let db = Db::connect(database_url).await?;
    let moved = if file == Path::new("-") {
        let mut out = BufWriter::new(tokio::io::stdout());
        db.export_organization(org_id, &mut out).await
    } else {
        // Written next to the file and renamed when complete: a failed export never
        // leaves a file that looks whole.
        let partial = file.with_extension("partial");
        let written = async {
            let f = tokio::fs::File::create(&partial)
                .await
                .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
            let mut out = BufWriter::new(f);
            let moved = db
                .export_organization(org_id, &mut out)
                .await
                .map_err(|e| e.to_string())?;
            out.shutdown()
                .await
                .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
            tokio::fs::rename(&partial, file)
                .await
                .map_err(|e| format!("cannot rename to {}: {e}", file.display()))?;
            Ok::<_, String>(moved)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written.map_err(crate::db::StoreError::other)
    };
    db.close().await;
    let moved = moved.map_err(|e| format!("export failed: {e}"))?;
    eprintln!("exported organization {org_id}: {} rows", moved.rows);
    Ok(())
}

pub async fn import(
    file: &Path,
    organization: Option<&str>,
    database_url: &str,
) -> Result<(), String> {
    let target = organization
        .map(|o| Id::parse(o.trim()).ok_or_else(|| format!("--organization {o:?} is not an id")))
        .transpose()?;
    let db = Db::connect(database_url).await?;
    let result = if file == Path::new("-") {
        db.import_organization(target, BufReader::new(tokio::io::stdin()))
            .await
    } else {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
        db.import_organization(target, BufReader::new(f)).await
    };
    db.close().await;
    let (org, moved) = result.map_err(|e| format!("import of {} failed: {e}", file.display()))?;
    eprintln!(
        "imported organization {} ({}, {}): {} rows",
        org.name, org.slug, org.id, moved.rows
    );
    Ok(())
}
