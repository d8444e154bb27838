//! Parts storage.
