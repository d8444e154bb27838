-- Attachment bytes in an object store (--blob-store s3://…). A blob whose `store_key` is
-- set keeps its bytes in the object at that key (no `blob_chunks` rows); `upload_id` is
-- the multipart upload still in progress while the blob is `writing`.
ALTER TABLE blobs ADD COLUMN store_key TEXT;
ALTER TABLE blobs ADD COLUMN upload_id TEXT;
-- The sweep keeps an object some blob still names (an organization re-imported from its
-- export names the same objects as the rows it replaced).
CREATE INDEX blobs_store_key ON blobs (store_key) WHERE store_key IS NOT NULL;

-- Objects to delete from the store. Deleting a blob row — directly, or by cascade from its
-- attachment, run, unit, procedure or organization — queues its object here in the same
-- transaction, so no delete path can forget the bytes; the sweep deletes the object (and
-- aborts an unfinished multipart upload), then the row.
CREATE TABLE object_deletions (
    id         BIGSERIAL PRIMARY KEY,
    store_key  TEXT NOT NULL,
    upload_id  TEXT
);

CREATE FUNCTION blobs_queue_object_deletion() RETURNS trigger AS $$
BEGIN
    INSERT INTO object_deletions (store_key, upload_id) VALUES (OLD.store_key, OLD.upload_id);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER blobs_queue_object_deletion AFTER DELETE ON blobs
FOR EACH ROW WHEN (OLD.store_key IS NOT NULL)
EXECUTE FUNCTION blobs_queue_object_deletion();
