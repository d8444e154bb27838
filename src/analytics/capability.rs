//! Process capability (ANALYTICS.md §4): limits from validators, the estimators of a
//! value series in time order, and Cp/Cpk (within σ) and Pp/Ppk (overall σ).

use serde::Serialize;
use serde_json::Value;

/// d2 for moving ranges of 2 (§4.4).
pub const D2: f64 = 1.128;

/// Spec limits of a measurement record (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Limits {
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.lsl.is_none() && self.usl.is_none()
    }

    /// `LSL ≥ USL`.
    pub fn is_invalid(&self) -> bool {
        matches!((self.lsl, self.usl), (Some(l), Some(u)) if l >= u)
    }

    /// A key that compares limit pairs exactly (segments of §4.2).
    pub fn key(&self) -> (Option<u64>, Option<u64>) {
        (self.lsl.map(f64::to_bits), self.usl.map(f64::to_bits))
    }
}

/// LSL/USL from a stored validator list (§4.2): `>=`, `>` and the start of `range` give
/// LSL (the largest wins); `<=`, `<` and the end of `range` give USL (the smallest wins).
/// Validators with `is_decisive: false`, other operators and non-numeric expected
/// values give nothing.
pub fn limits_from_validators(validators: &Value) -> Limits {
    let mut l = Limits::default();
    let Some(list) = validators.as_array() else {
        return l;
    };
    let num = |v: &Value| v.as_f64().filter(|x| x.is_finite());
    for v in list {
        if v.get("is_decisive").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let Some(op) = v.get("operator").and_then(Value::as_str) else {
            continue;
        };
        let expected = v.get("expected_value").unwrap_or(&Value::Null);
        let (lo, hi) = match op {
            ">=" | ">" => (num(expected), None),
            "<=" | "<" => (None, num(expected)),
            "range" => match expected.as_array().map(Vec::as_slice) {
                Some([a, b]) => (num(a), num(b)),
                _ => (None, None),
            },
            _ => (None, None),
        };
        if let Some(x) = lo {
            l.lsl = Some(l.lsl.map_or(x, |c: f64| c.max(x)));
        }
        if let Some(x) = hi {
            l.usl = Some(l.usl.map_or(x, |c: f64| c.min(x)));
        }
    }
    l
}

/// Running estimators over values fed in time order: Welford mean and sum of squared
/// deviations, sum of moving ranges, min and max. Constant memory per series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    m2: f64,
    mr_sum: f64,
    prev: Option<f64>,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        if let Some(p) = self.prev {
            self.mr_sum += (x - p).abs();
        }
        self.prev = Some(x);
        if self.n == 1 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }

    /// From aggregates computed elsewhere (SQL): n, mean, Σ(x − x̄)², Σ|x_i − x_{i−1}|
    /// in time order, min and max.
    pub fn from_sums(
        n: u64,
        mean: f64,
        sum_sq_dev: f64,
        mr_sum: f64,
        min: f64,
        max: f64,
    ) -> Moments {
        Moments {
            n,
            mean: if n > 0 { mean } else { 0.0 },
            m2: sum_sq_dev,
            mr_sum,
            prev: None,
            min,
            max,
        }
    }

    pub fn of(values: &[f64]) -> Moments {
        let mut m = Moments::default();
        for &x in values {
            m.push(x);
        }
        m
    }

    /// Overall sample standard deviation (n − 1); `None` below 2 values.
    pub fn stdev(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2.max(0.0) / (self.n - 1) as f64).sqrt())
    }

    /// Average moving range MR̄; `None` below 2 values.
    pub fn mr_bar(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.mr_sum / (self.n - 1) as f64)
    }

    /// σ_within = MR̄ / d2.
    pub fn sigma_within(&self) -> Option<f64> {
        self.mr_bar().map(|m| m / D2)
    }

    /// Mean, `None` without values.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// All values equal.
    pub fn is_constant(&self) -> bool {
        self.n > 0 && self.min == self.max
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityStatus {
    Ok,
    NoLimits,
    NoData,
    InsufficientData,
    ZeroVariance,
    InvalidLimits,
}

/// `capable` (> 1.33), `marginal` (1.00 ..= 1.33), `not_capable` (< 1.00), §4.7.
pub fn class(index: f64) -> &'static str {
    if index > 1.33 {
        "capable"
    } else if index >= 1.0 {
        "marginal"
    } else {
        "not_capable"
    }
}

/// The figures of one series (§4.4–4.5). Indices are `None` unless `status` is `Ok`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Capability {
    pub n: u64,
    pub mean: Option<f64>,
    pub stdev: Option<f64>,
    pub sigma_within: Option<f64>,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
    pub cp: Option<f64>,
    pub cpk: Option<f64>,
    pub pp: Option<f64>,
    pub ppk: Option<f64>,
    pub status: CapabilityStatus,
    /// n < 30.
    pub low_sample: bool,
}

impl Capability {
    pub fn of(values: &[f64], limits: Limits) -> Capability {
        Capability::from_moments(&Moments::of(values), limits)
    }

    pub fn from_moments(m: &Moments, limits: Limits) -> Capability {
        let status = if limits.is_empty() {
            CapabilityStatus::NoLimits
        } else if limits.is_invalid() {
            CapabilityStatus::InvalidLimits
        } else if m.n == 0 {
            CapabilityStatus::NoData
        } else if m.n == 1 {
            CapabilityStatus::InsufficientData
        } else if m.is_constant() {
            CapabilityStatus::ZeroVariance
        } else {
            CapabilityStatus::Ok
        };
        let mut c = Capability {
            n: m.n,
            mean: m.mean(),
            stdev: m.stdev(),
            sigma_within: m.sigma_within(),
            lsl: limits.lsl,
            usl: limits.usl,
            cp: None,
            cpk: None,
            pp: None,
            ppk: None,
            status,
            low_sample: m.n < 30,
        };
        if status != CapabilityStatus::Ok {
            return c;
        }
        let mean = m.mean;
        let (Some(sw), Some(so)) = (c.sigma_within, c.stdev) else {
            return c;
        };
        let indices = |sigma: f64| -> (Option<f64>, Option<f64>) {
            let upper = limits.usl.map(|u| (u - mean) / (3.0 * sigma));
            let lower = limits.lsl.map(|l| (mean - l) / (3.0 * sigma));
            let p = match (limits.lsl, limits.usl) {
                (Some(l), Some(u)) => Some((u - l) / (6.0 * sigma)),
                _ => None,
            };
            let k = match (upper, lower) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (p, k)
        };
        (c.cp, c.cpk) = indices(sw);
        (c.pp, c.ppk) = indices(so);
        c
    }
}

/// §4.7 table order: Cpk ascending, `null` last (`None` sorts after numbers), then
/// phase and measurement name.
pub fn table_order(
    a: (Option<f64>, &str, &str),
    b: (Option<f64>, &str, &str),
) -> std::cmp::Ordering {
    let key = |c: Option<f64>| (c.is_none(), c.unwrap_or(0.0));
    key(a.0)
        .0
        .cmp(&key(b.0).0)
        .then(key(a.0).1.total_cmp(&key(b.0).1))
        .then_with(|| a.1.cmp(b.1))
        .then_with(|| a.2.cmp(b.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const X: [f64; 8] = [4.96, 4.98, 4.97, 5.00, 5.01, 5.03, 5.02, 5.05];

    fn close(a: Option<f64>, b: f64, tol: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < tol, "{a} != {b}");
    }

    #[test]
    fn worked_example_both_limits() {
        let c = Capability::of(
            &X,
            Limits {
                lsl: Some(4.80),
                usl: Some(5.20),
            },
        );
        assert_eq!(c.status, CapabilityStatus::Ok);
        assert_eq!(c.n, 8);
        assert!(c.low_sample);
        close(c.mean, 5.0025, 1e-9);
        close(c.stdev, 0.031053, 1e-6);
        close(c.sigma_within, 0.13 / 7.0 / 1.128, 1e-9);
        close(c.sigma_within, 0.016464, 1e-6);
        close(c.cp, 4.0492, 1e-4);
        close(c.cpk, 3.9986, 1e-4);
        close(c.pp, 2.1469, 1e-4);
        close(c.ppk, 2.1200, 1e-4);
    }

    #[test]
    fn worked_example_one_sided() {
        let c = Capability::of(
            &X,
            Limits {
                lsl: Some(4.80),
                usl: None,
            },
        );
        close(c.cpk, 4.0998, 1e-4);
        close(c.ppk, 2.1737, 1e-4);
        assert!(c.cp.is_none() && c.pp.is_none());
        let c = Capability::of(
            &X,
            Limits {
                lsl: None,
                usl: Some(5.20),
            },
        );
        close(c.cpk, 3.9986, 1e-4);
        close(c.ppk, 2.1200, 1e-4);
    }

    #[test]
    fn statuses() {
        let both = Limits {
            lsl: Some(0.0),
            usl: Some(1.0),
        };
        assert_eq!(Capability::of(&[], both).status, CapabilityStatus::NoData);
        assert_eq!(
            Capability::of(&[0.5], both).status,
            CapabilityStatus::InsufficientData
        );
        let z = Capability::of(&[0.5, 0.5, 0.5], both);
        assert_eq!(z.status, CapabilityStatus::ZeroVariance);
        assert!(z.cpk.is_none());
        assert_eq!(
            Capability::of(&X, Limits::default()).status,
            CapabilityStatus::NoLimits
        );
        let inv = Limits {
            lsl: Some(2.0),
            usl: Some(1.0),
        };
        assert_eq!(
            Capability::of(&X, inv).status,
            CapabilityStatus::InvalidLimits
        );
        // A mean outside the limits gives negative indices, never clamped.
        let c = Capability::of(&[3.0, 3.1, 2.9], both);
        assert!(c.cpk.unwrap() < 0.0);
    }

    #[test]
    fn limits_from_stored_validators() {
        let v = json!([
            {"operator": ">=", "expected_value": 4.8, "is_decisive": null},
            {"operator": ">", "expected_value": 4.9},
            {"operator": "<=", "expected_value": 5.2, "is_decisive": true},
            {"operator": "<", "expected_value": 9.0, "is_decisive": false},
            {"operator": "==", "expected_value": 5.0},
            {"operator": "<=", "expected_value": "5.1"},
        ]);
        assert_eq!(
            limits_from_validators(&v),
            Limits {
                lsl: Some(4.9),
                usl: Some(5.2)
            }
        );
        let r = json!([{"operator": "range", "expected_value": [1, 2]}]);
        assert_eq!(
            limits_from_validators(&r),
            Limits {
                lsl: Some(1.0),
                usl: Some(2.0)
            }
        );
        assert!(limits_from_validators(&json!(null)).is_empty());
    }

    #[test]
    fn classes() {
        assert_eq!(class(1.5), "capable");
        assert_eq!(class(1.33), "marginal");
        assert_eq!(class(1.0), "marginal");
        assert_eq!(class(0.99), "not_capable");
    }

    /// The textbook two-pass computation, independent of `Moments`.
    fn reference(x: &[f64], lsl: f64, usl: f64) -> (f64, f64, f64, f64) {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let s = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let mr = x.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (n - 1.0);
        let sw = mr / 1.128;
        let cp = (usl - lsl) / (6.0 * sw);
        let cpk = ((usl - mean) / (3.0 * sw)).min((mean - lsl) / (3.0 * sw));
        let pp = (usl - lsl) / (6.0 * s);
        let ppk = ((usl - mean) / (3.0 * s)).min((mean - lsl) / (3.0 * s));
        (cp, cpk, pp, ppk)
    }

    proptest! {
        #[test]
        fn matches_an_independent_computation(
            x in prop::collection::vec(-1000.0f64..1000.0, 2..200),
            lsl in -2000.0f64..0.0, width in 1.0f64..4000.0) {
            let usl = lsl + width;
            let c = Capability::of(&x, Limits { lsl: Some(lsl), usl: Some(usl) });
            if x.iter().all(|v| *v == x[0]) {
                prop_assert_eq!(c.status, CapabilityStatus::ZeroVariance);
            } else {
                let (cp, cpk, pp, ppk) = reference(&x, lsl, usl);
                let rel = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0);
                prop_assert!(rel(c.cp, cp) && rel(c.cpk, cpk) && rel(c.pp, pp) && rel(c.ppk, ppk));
                prop_assert!(c.cpk.unwrap() <= c.cp.unwrap() + 1e-12);
                prop_assert!(c.ppk.unwrap() <= c.pp.unwrap() + 1e-12);
            }
        }
    }
}
