//! Units storage.
