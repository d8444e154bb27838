//! Failure Pareto (ANALYTICS.md §6.1): categories ranked by failed runs, shares of all
//! failures from integer prefix sums so the last cumulative share is exactly 1.

use serde::Serialize;

/// One category as counted in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParetoInput {
    pub phase: String,
    pub measurement: Option<String>,
    pub failed_runs: u64,
    pub occurrences: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParetoRow {
    pub phase: String,
    pub measurement: Option<String>,
    pub failed_runs: u64,
    pub occurrences: u64,
    pub share: f64,
    pub cumulative_share: f64,
}

/// Ranks categories (`failed_runs` desc, `occurrences` desc, key asc) and adds shares
/// of F = Σ failed_runs. Categories without failures are dropped; F = 0 → empty.
pub fn pareto(mut items: Vec<ParetoInput>) -> Vec<ParetoRow> {
    items.retain(|i| i.failed_runs > 0);
    items.sort_by(|a, b| {
        b.failed_runs
            .cmp(&a.failed_runs)
            .then(b.occurrences.cmp(&a.occurrences))
            .then_with(|| a.phase.cmp(&b.phase))
            .then_with(|| a.measurement.cmp(&b.measurement))
    });
    let total: u64 = items.iter().map(|i| i.failed_runs).sum();
    let mut prefix = 0u64;
    items
        .into_iter()
        .map(|i| {
            prefix += i.failed_runs;
            ParetoRow {
                share: i.failed_runs as f64 / total as f64,
                cumulative_share: prefix as f64 / total as f64,
                phase: i.phase,
                measurement: i.measurement,
                failed_runs: i.failed_runs,
                occurrences: i.occurrences,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(phase: &str, f: u64, o: u64) -> ParetoInput {
        ParetoInput {
            phase: phase.into(),
            measurement: None,
            failed_runs: f,
            occurrences: o,
        }
    }

    #[test]
    fn ranks_and_shares() {
        let rows = pareto(vec![
            item("b", 1, 1),
            item("a", 3, 3),
            item("c", 1, 2),
            item("z", 0, 0),
        ]);
        let names: Vec<&str> = rows.iter().map(|r| r.phase.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
        assert!((rows[0].share - 0.6).abs() < 1e-12);
        assert!((rows[1].cumulative_share - 0.8).abs() < 1e-12);
        assert_eq!(rows[2].cumulative_share, 1.0);
        assert!(pareto(vec![]).is_empty());
    }

    proptest! {
        #[test]
        fn shares_sum_to_one(counts in prop::collection::vec((0u64..50, 0u64..5), 0..30)) {
            let items: Vec<ParetoInput> = counts.iter().enumerate()
                .map(|(i, (f, extra))| item(&format!("p{i}"), *f, f + extra)).collect();
            let rows = pareto(items);
            if rows.is_empty() {
                prop_assert!(counts.iter().all(|(f, _)| *f == 0));
            } else {
                let sum: f64 = rows.iter().map(|r| r.share).sum();
                prop_assert!((sum - 1.0).abs() < 1e-9);
                prop_assert_eq!(rows.last().unwrap().cumulative_share, 1.0);
                prop_assert!(rows.windows(2).all(|w| w[0].failed_runs >= w[1].failed_runs));
            }
        }
    }
}
