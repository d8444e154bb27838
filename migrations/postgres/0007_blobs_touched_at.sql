-- A writing blob's timestamp is renewed by every chunk and heartbeat: it is the time of
-- its last activity (what the sweeper of abandoned uploads reads), not of its creation.
ALTER TABLE blobs RENAME COLUMN created_at TO touched_at;
