//! Individuals control chart (ANALYTICS.md §5.1): CL = x̄, UCL/LCL = x̄ ± 3 σ_within.

use serde::Serialize;

use super::capability::Moments;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ControlLimits {
    pub cl: f64,
    pub ucl: f64,
    pub lcl: f64,
}

impl ControlLimits {
    /// From the moments of the plotted values; `None` below 2 values.
    pub fn from_moments(m: &Moments) -> Option<ControlLimits> {
        let sw = m.sigma_within()?;
        Some(ControlLimits {
            cl: m.mean,
            ucl: m.mean + 3.0 * sw,
            lcl: m.mean - 3.0 * sw,
        })
    }

    pub fn of(values: &[f64]) -> Option<ControlLimits> {
        ControlLimits::from_moments(&Moments::of(values))
    }

    /// Outside the control limits.
    pub fn out_of_control(&self, x: f64) -> bool {
        x > self.ucl || x < self.lcl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example() {
        let x = [4.96, 4.98, 4.97, 5.00, 5.01, 5.03, 5.02, 5.05];
        let c = ControlLimits::of(&x).unwrap();
        assert!((c.cl - 5.0025).abs() < 1e-9);
        assert!((c.ucl - 5.0519).abs() < 1e-4);
        assert!((c.lcl - 4.9531).abs() < 1e-4);
        assert!(!c.out_of_control(5.05));
        assert!(c.out_of_control(5.06));
        assert!(ControlLimits::of(&[1.0]).is_none());
    }
}
