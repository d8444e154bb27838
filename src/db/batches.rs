//! Batches storage.
