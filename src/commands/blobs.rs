//! `tofulab blobs migrate --to s3://…`: moves attachment bytes from the database to an
//! object store (see `Db::migrate_blobs`).

use crate::db::objects::parse_blob_store;
use crate::db::Db;

pub async fn migrate(to: &str, database_url: &str) -> Result<(), String> {
    let objects = parse_blob_store(to)?
        .ok_or_else(|| "--to must name an object store: s3://BUCKET/PREFIX".to_string())?;
    let db = Db::connect(database_url).await?;
    let result = db
        .migrate_blobs(&objects, |report| {
            if report.moved % 100 == 0 {
                eprintln!("moved {} blobs ({} bytes)", report.moved, report.bytes);
            }
        })
        .await;
    db.close().await;
    let report =
        result.map_err(|e| format!("blob migration stopped: {e} (run it again to resume)"))?;
    eprintln!(
        "moved {} blobs ({} bytes) to {}, each verified by SHA-256; {} deleted meanwhile",
        report.moved,
        report.bytes,
        objects.url(),
        report.gone
    );
    Ok(())
}
