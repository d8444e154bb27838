//! Runs storage.
