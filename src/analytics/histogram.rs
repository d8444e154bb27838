//! Histogram with "auto" bins (ANALYTICS.md §5.2): max(Sturges, Freedman–Diaconis),
//! clamped to 1..=100, equal-width half-open bins with the last one closed.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// k + 1 edges.
    pub edges: Vec<f64>,
    /// k counts, summing to n.
    pub counts: Vec<u64>,
}

/// Quantile `q` by linear interpolation between order statistics (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The "auto" bin count for `sorted` values (non-empty).
pub fn auto_bins(sorted: &[f64]) -> usize {
    let n = sorted.len() as f64;
    let k_s = (n.log2() + 1.0).ceil() as usize;
    let iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25);
    let range = sorted[sorted.len() - 1] - sorted[0];
    let k = if iqr > 0.0 {
        let h = 2.0 * iqr * n.powf(-1.0 / 3.0);
        k_s.max((range / h).ceil() as usize)
    } else {
        k_s
    };
    k.clamp(1, 100)
}

impl Histogram {
    /// `None` without values. All values equal: one bin `[v, v]` holding n.
    pub fn of(values: &[f64]) -> Option<Histogram> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        if min == max {
            return Some(Histogram {
                edges: vec![min, max],
                counts: vec![values.len() as u64],
            });
        }
        let k = auto_bins(&sorted);
        let w = (max - min) / k as f64;
        let edges: Vec<f64> = (0..=k)
            .map(|i| if i == k { max } else { min + i as f64 * w })
            .collect();
        let mut counts = vec![0u64; k];
        for &x in &sorted {
            // The bin whose [e_i, e_{i+1}) holds x, found on the edges themselves so
            // that a value equal to an edge lands in the bin it starts.
            let mut i = (((x - min) / w) as usize).min(k - 1);
            while i > 0 && x < edges[i] {
                i -= 1;
            }
            while i + 1 < k && x >= edges[i + 1] {
                i += 1;
            }
            counts[i] += 1;
        }
        Some(Histogram { edges, counts })
    }

    pub fn bin_width(&self) -> f64 {
        self.edges[1] - self.edges[0]
    }

    /// Height of the Gaussian overlay at `x`: n · w · φ((x − x̄)/s) / s.
    pub fn gaussian(n: u64, bin_width: f64, mean: f64, s: f64, x: f64) -> f64 {
        let z = (x - mean) / s;
        n as f64 * bin_width * (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_example() {
        let x = [4.96, 4.98, 4.97, 5.00, 5.01, 5.03, 5.02, 5.05];
        let h = Histogram::of(&x).unwrap();
        let want = [4.96, 4.9825, 5.005, 5.0275, 5.05];
        assert_eq!(h.edges.len(), 5);
        for (a, b) in h.edges.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{a} != {b}");
        }
        assert_eq!(h.counts, vec![3, 1, 2, 2]);
    }

    #[test]
    fn constant_values_make_one_bin() {
        let h = Histogram::of(&[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(h.edges, vec![2.0, 2.0]);
        assert_eq!(h.counts, vec![3]);
        assert!(Histogram::of(&[]).is_none());
    }

    proptest! {
        #[test]
        fn counts_sum_to_n(x in prop::collection::vec(-1e6f64..1e6, 1..500)) {
            let h = Histogram::of(&x).unwrap();
            prop_assert_eq!(h.counts.iter().sum::<u64>(), x.len() as u64);
            prop_assert!(h.counts.len() <= 100);
            prop_assert_eq!(h.edges.len(), h.counts.len() + 1);
        }
    }
}
