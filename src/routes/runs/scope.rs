//! The run-level filters that the run, phase, measurement and log lists share, parsed
//! once: each list flattens `RunScope` into its query and adds its own filters.

use serde::Deserialize;
use utoipa::IntoParams;

use super::enums::{Environment, SampleFilter};
use crate::db::runs::RunFilter;
use crate::routes::params::{Enums, Ids, Texts};

/// Which runs' content a list looks at, by the runs' unit, part, batch, procedure version,
/// creator and operator.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct RunScope {
    #[param(inline)]
    procedure_versions: Texts,
    #[param(inline)]
    serial_numbers: Texts,
    #[param(inline)]
    part_numbers: Texts,
    #[param(inline)]
    revision_numbers: Texts,
    #[param(inline)]
    batch_numbers: Texts,
    #[param(inline)]
    created_by_user_ids: Ids,
    #[param(inline)]
    created_by_station_ids: Ids,
    #[param(inline)]
    operated_by_ids: Ids,
    #[param(inline)]
    operated_by_names: Texts,
    #[param(inline)]
    deployment_ids: Texts,
    /// Accepted; tofulab has no deployments, so no run has an environment to match.
    #[allow(dead_code)]
    #[param(value_type = Option<Vec<Environment>>, inline)]
    environments: Texts,
    #[serde(deserialize_with = "samples")]
    #[param(inline)]
    samples: Enums<SampleFilter>,
}

/// `samples`, naming itself in errors: a flattened struct's fields have no path in
/// serde's error (and the other fields here cannot fail).
fn samples<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Enums<SampleFilter>, D::Error> {
    Enums::deserialize(d).map_err(|e| serde::de::Error::custom(format!("samples: {e}")))
}

impl RunScope {
    /// A run filter with these fields set and the rest open.
    pub fn run_filter(self) -> RunFilter {
        RunFilter {
            procedure_versions: self.procedure_versions.0,
            serial_numbers: self.serial_numbers.0,
            part_numbers: self.part_numbers.0,
            revision_numbers: self.revision_numbers.0,
            batch_numbers: self.batch_numbers.0,
            created_by_user_ids: self.created_by_user_ids.0,
            created_by_station_ids: self.created_by_station_ids.0,
            operated_by_ids: self.operated_by_ids.0,
            operated_by_names: self.operated_by_names.0,
            deployment_ids: self.deployment_ids.0,
            samples: self.samples.texts(SampleFilter::as_str),
            ..RunFilter::default()
        }
    }
}
