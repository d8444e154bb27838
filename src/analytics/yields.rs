//! First-, second-, third-pass and last-pass yield (ANALYTICS.md §2).
//!
//! Per unit-day the only thing that matters is `a(u,d)`, the index of the first passing
//! attempt once ABORTED runs are dropped. The SQL aggregates count, per day (and slice),
//! the unit-days with `a ≤ 1`, `a ≤ 2`, `a ≤ 3` and `a < ∞`: a `YieldCounts`. Ratios and
//! pooled window figures come from those counts only.

use serde::Serialize;

/// Index (1-based) of the first passing attempt in a unit-day's run outcomes in §1.2.5
/// order, ABORTED runs dropped before numbering; `None` when no attempt passed.
pub fn first_pass_attempt<S: AsRef<str>>(outcomes: &[S]) -> Option<usize> {
    outcomes
        .iter()
        .filter(|o| o.as_ref() != "ABORTED")
        .position(|o| o.as_ref() == "PASS")
        .map(|i| i + 1)
}

/// Cumulative counts of unit-days: `units` = N, `first` = #{a ≤ 1}, `second` = #{a ≤ 2},
/// `third` = #{a ≤ 3}, `last` = #{a < ∞}.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct YieldCounts {
    pub units: u64,
    pub first: u64,
    pub second: u64,
    pub third: u64,
    pub last: u64,
}

impl YieldCounts {
    /// Adds one unit-day whose first passing attempt is `a`.
    pub fn add(&mut self, a: Option<usize>) {
        self.units += 1;
        if let Some(a) = a {
            self.first += u64::from(a <= 1);
            self.second += u64::from(a <= 2);
            self.third += u64::from(a <= 3);
            self.last += 1;
        }
    }

    /// Counts of unit-days given each one's run outcomes (ABORTED-only unit-days are
    /// not unit-days and are skipped).
    pub fn from_histories<S: AsRef<str>>(histories: &[Vec<S>]) -> YieldCounts {
        let mut c = YieldCounts::default();
        for h in histories {
            if h.iter().any(|o| o.as_ref() != "ABORTED") {
                c.add(first_pass_attempt(h));
            }
        }
        c
    }

    /// Pools several days (§2.3): sums of numerators over the sum of denominators.
    pub fn pooled<'a>(counts: impl IntoIterator<Item = &'a YieldCounts>) -> YieldCounts {
        counts
            .into_iter()
            .fold(YieldCounts::default(), |a, c| YieldCounts {
                units: a.units + c.units,
                first: a.first + c.first,
                second: a.second + c.second,
                third: a.third + c.third,
                last: a.last + c.last,
            })
    }

    pub fn yields(&self) -> Yields {
        let r = |k: u64| (self.units > 0).then(|| k as f64 / self.units as f64);
        Yields {
            units: self.units,
            fpy: r(self.first),
            spy: r(self.second),
            tpy: r(self.third),
            lpy: r(self.last),
        }
    }
}

/// The four yields of a day or window; `None` (JSON `null`) without unit-days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Yields {
    pub units: u64,
    pub fpy: Option<f64>,
    pub spy: Option<f64>,
    pub tpy: Option<f64>,
    pub lpy: Option<f64>,
}

impl Yields {
    /// `1 − LPY` (a proxy, §2.2).
    pub fn scrap(&self) -> Option<f64> {
        self.lpy.map(|l| 1.0 - l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a ratio");
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// ANALYTICS.md §2.6, production units (E excluded).
    fn worked_example() -> Vec<YieldCounts> {
        let d1 = vec![
            vec!["PASS"],
            vec!["FAIL", "PASS"],
            vec!["ERROR", "ABORTED", "TIMEOUT", "PASS"],
            vec!["FAIL", "FAIL", "FAIL", "PASS"],
        ];
        let d2 = vec![
            vec!["PASS", "FAIL"],
            vec!["ABORTED"],
            vec!["FAIL", "FAIL", "FAIL"],
            vec!["FAIL", "PASS"],
        ];
        let d3 = vec![vec!["PASS"]];
        vec![
            YieldCounts::from_histories(&d1),
            YieldCounts::from_histories(&d2),
            YieldCounts::from_histories(&d3),
        ]
    }

    #[test]
    fn worked_example_days_and_window() {
        let days = worked_example();
        let y: Vec<Yields> = days.iter().map(YieldCounts::yields).collect();
        assert_eq!(y[0].units, 4);
        close(y[0].fpy, 0.25);
        close(y[0].spy, 0.5);
        close(y[0].tpy, 0.75);
        close(y[0].lpy, 1.0);
        assert_eq!(y[1].units, 3);
        close(y[1].fpy, 1.0 / 3.0);
        close(y[1].spy, 2.0 / 3.0);
        close(y[1].tpy, 2.0 / 3.0);
        close(y[1].lpy, 2.0 / 3.0);
        close(y[1].scrap(), 1.0 / 3.0);
        close(y[2].fpy, 1.0);
        let w = YieldCounts::pooled(&days).yields();
        assert_eq!(w.units, 8);
        close(w.fpy, 0.375);
        close(w.spy, 0.625);
        close(w.tpy, 0.75);
        close(w.lpy, 0.875);
        close(w.scrap(), 0.125);
    }

    #[test]
    fn worked_example_with_reference_samples() {
        let mut days = worked_example();
        days[0].add(first_pass_attempt(&["FAIL", "PASS"]));
        days[1].add(first_pass_attempt(&["PASS"]));
        let w = YieldCounts::pooled(&days).yields();
        assert_eq!(w.units, 10);
        close(w.fpy, 0.4);
        close(w.spy, 0.7);
        close(w.tpy, 0.8);
        close(w.lpy, 0.9);
        let d2 = days[1].yields();
        close(d2.fpy, 0.5);
        close(d2.spy, 0.75);
    }

    #[test]
    fn no_units_gives_nulls() {
        let y = YieldCounts::default().yields();
        assert_eq!(y.units, 0);
        assert!(y.fpy.is_none() && y.spy.is_none() && y.tpy.is_none() && y.lpy.is_none());
        assert!(y.scrap().is_none());
    }

    fn outcome() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["PASS", "FAIL", "ERROR", "TIMEOUT", "ABORTED"])
    }

    proptest! {
        #[test]
        fn yields_are_ordered(histories in prop::collection::vec(
            prop::collection::vec(outcome(), 1..8), 0..40)) {
            let c = YieldCounts::from_histories(&histories);
            let y = c.yields();
            if c.units == 0 {
                prop_assert!(y.fpy.is_none());
            } else {
                let (f, s, t, l) = (y.fpy.unwrap(), y.spy.unwrap(), y.tpy.unwrap(), y.lpy.unwrap());
                prop_assert!((0.0..=1.0).contains(&f));
                prop_assert!(f <= s && s <= t && t <= l && l <= 1.0);
            }
        }

        #[test]
        fn aborted_runs_never_change_yield(h in prop::collection::vec(outcome(), 1..8),
                                            at in 0usize..8) {
            let mut with = h.clone();
            with.insert(at.min(h.len()), "ABORTED");
            prop_assert_eq!(first_pass_attempt(&h), first_pass_attempt(&with));
        }

        #[test]
        fn runs_after_a_pass_change_nothing(h in prop::collection::vec(outcome(), 1..8),
                                             o in outcome()) {
            if first_pass_attempt(&h).is_some() {
                let mut more = h.clone();
                more.push(o);
                prop_assert_eq!(first_pass_attempt(&h), first_pass_attempt(&more));
            }
        }
    }
}
