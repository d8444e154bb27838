//! Subcommands of the `tofulab` binary that are more than a line of dispatch, each in a
//! module of its own.

pub mod keys;
