//! Runs: one execution of a procedure on one unit, with ordered phases holding
//! measurements, logs, sub-unit links and attachments (BEHAVIOR.md §1).
//!
//! - `model`: what a new run is made of (`NewRun`) and the normalisation rules every
//!   way of creating runs shares; `stored`: the JSON form of validators & co.
//! - `create`: `Db::create_run`, one transaction with implicit creation (`resolve`) and
//!   bulk content inserts (`bulk`).
//! - `read`, `list` (with `filter`), `write`: one run, run lists, updates and deletes.
//! - `phases`, `measurements`, `logs`: content lists across runs.

mod bulk;
mod create;
pub mod filter;
pub mod list;
pub mod logs;
pub mod measurements;
pub mod model;
pub mod phases;
pub mod read;
mod resolve;
pub mod stored;
mod write;

pub(crate) use bulk::insert_rows;
pub use filter::RunFilter;
pub use list::RunSort;
pub use model::{
    ConfigEntry, Metadata, NewAggregation, NewDataSeries, NewLog, NewMeasurement, NewPhase, NewRun,
    NewValidator, SecretEntry, SequenceEntry,
};
pub use read::{LogRow, MeasurementRow, PhaseRow, RunDetail, RunRow, SubUnitRow};
pub use resolve::DEFAULT_REVISION;
