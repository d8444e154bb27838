//! Attachment and blob storage.
