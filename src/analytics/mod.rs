//! Lab analytics: the pure math behind the dashboard and `/api/lab/v1` (definitions in
//! `spec/ANALYTICS.md`). No SQL, no HTTP: `db::analytics` aggregates in SQL and hands
//! small per-day / per-series figures to these functions; the JSON endpoints and the
//! pages both call them, so every view follows one rule set.
//!
//! - `days`: the UTC date range of a request, dense day lists.
//! - `yields`: FPY/SPY/TPY/LPY from first-passing-attempt counts (§2).
//! - `capability`: limits from validators, estimators, Cp/Cpk/Pp/Ppk (§4).
//! - `control`: individuals control chart limits (§5.1).
//! - `histogram`: "auto" bins and the Gaussian overlay (§5.2).
//! - `pareto`: failure ranking and shares (§6.1).
//! - `volume`: runs and units per day by outcome, mean duration (§3).

pub mod capability;
pub mod control;
pub mod days;
pub mod histogram;
pub mod pareto;
pub mod volume;
pub mod yields;

pub use capability::{limits_from_validators, Capability, CapabilityStatus, Limits, Moments};
pub use control::ControlLimits;
pub use days::{DateRange, DateRangeError, MAX_RANGE_DAYS};
pub use histogram::Histogram;
pub use pareto::{pareto, ParetoInput, ParetoRow};
pub use volume::{VolumeCounts, OUTCOMES};
pub use yields::{first_pass_attempt, YieldCounts, Yields};
