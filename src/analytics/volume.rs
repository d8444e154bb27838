//! Volume and duration per day (ANALYTICS.md §3).

use serde::Serialize;

/// The five run outcomes, in display order.
pub const OUTCOMES: [&str; 5] = ["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"];

/// One day's runs by outcome, distinct units and duration sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct VolumeCounts {
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
    pub timeout: u64,
    pub aborted: u64,
    pub units: u64,
    /// Σ (ended_at − started_at) in microseconds over the day's runs.
    #[serde(skip)]
    pub duration_us_sum: i64,
}

impl VolumeCounts {
    pub fn add_runs(&mut self, outcome: &str, runs: u64) {
        match outcome {
            "PASS" => self.pass += runs,
            "FAIL" => self.fail += runs,
            "ERROR" => self.error += runs,
            "TIMEOUT" => self.timeout += runs,
            _ => self.aborted += runs,
        }
    }

    pub fn runs(&self) -> u64 {
        self.pass + self.fail + self.error + self.timeout + self.aborted
    }

    /// `runs − units`.
    pub fn retests(&self) -> u64 {
        self.runs().saturating_sub(self.units)
    }

    /// Mean run duration in seconds (ms precision), `None` without runs.
    pub fn mean_duration_s(&self) -> Option<f64> {
        let runs = self.runs();
        (runs > 0).then(|| (self.duration_us_sum as f64 / runs as f64 / 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_mean() {
        let mut v = VolumeCounts::default();
        assert!(v.mean_duration_s().is_none());
        v.add_runs("PASS", 4);
        v.add_runs("ABORTED", 1);
        v.units = 4;
        v.duration_us_sum = 5_000_000;
        assert_eq!(v.runs(), 5);
        assert_eq!(v.retests(), 1);
        assert_eq!(v.mean_duration_s(), Some(1.0));
    }
}
