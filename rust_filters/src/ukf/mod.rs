//! Unscented Kalman Filter (additive noise, scaled sigma points) and its models.
//!
//! The filter ([`Ukf`]) is generic over the model ([`UkfModel`]), so the batch loop is
//! monomorphised and the model's transition and measurement inline into it. Models:
//! [`StochVol`] (workload ukf2-sv), [`StochVolPrice`] (ukf3-svp), [`LinearGaussian`] and
//! [`Smile`] (implied-volatility smile of an option chain, variable measurement size).
//!
//! Algorithm: filterpy 2.0.0 `UnscentedKalmanFilter` + `MerweScaledSigmaPoints`, as
//! `benchmarks/spec/WORKLOADS.md` states it, with the time step `dt` passed to the model.

// Index loops mirror the matrix formulas (P_ab, W_ak); iterator chains would hide them.
#![allow(clippy::needless_range_loop)]

mod filter;
mod fixed;
mod linear;
mod normal;
mod smile;
mod stoch_vol;

pub use filter::{check_state_dims, SigmaParams, Ukf, UkfState};
pub use linear::LinearGaussian;
pub use normal::normal_cdf;
pub use smile::{Smile, SmileMeasurement, SmileQuote};
pub use stoch_vol::{StochVol, StochVolPrice};

/// A state-space model with additive Gaussian noise, as the UKF sees it:
///
/// ```text
/// x_t = f(x_{t-1}, dt) + w_t,   w_t ~ N(0, Q(dt))
/// z_t = h(x_t; design)  + v_t,  v_t ~ N(0, R(design))
/// ```
///
/// Sigma points arrive as the rows of a row-major `(2n+1) x n` slice, so that a model can
/// hoist its `dt`-dependent factors (`phi^dt`, ...) out of the per-point loop.
pub trait UkfModel {
    /// What an update needs to know besides the measured values: `()` for models whose
    /// measurement is fixed, the list of quotes for the smile model.
    type Design: ?Sized;
    /// Name used to tag snapshots.
    const NAME: &'static str;

    /// The constructor's checks of the parameters, again (a restored snapshot is checked
    /// as a new model would be).
    fn validate(&self) -> Result<(), UkfError>;
    /// State dimension `n`.
    fn state_dim(&self) -> usize;
    /// Measurement dimension `m` for this design.
    fn meas_dim(&self, design: &Self::Design) -> usize;
    /// Reject a design the model cannot evaluate (the message names the bad field).
    fn check_design(&self, _design: &Self::Design) -> Result<(), UkfError> {
        Ok(())
    }
    /// Move every sigma point (row of `points`) forward by `dt`, in place.
    fn transition(&self, dt: f64, points: &mut [f64]);
    /// Write the `n x n` process noise covariance for a step of `dt` into `q`.
    fn process_noise(&self, dt: f64, q: &mut [f64]);
    /// Measure each sigma point (row of `points`, length `n`) into the rows of `z`
    /// (length `m`).
    fn measure(&self, design: &Self::Design, points: &[f64], z: &mut [f64]);
    /// Write the `m x m` measurement noise covariance into `r`.
    fn measurement_noise(&self, design: &Self::Design, r: &mut [f64]);
    /// True when `measurement_noise` depends neither on the design nor on anything but the
    /// model's (immutable) parameters: the filter then computes `R` once, not per update.
    const CONSTANT_MEASUREMENT_NOISE: bool = false;
}

/// Errors that leave the filter unchanged (invalid arguments); Python sees a `ValueError`.
#[derive(Debug, Clone, PartialEq)]
pub enum UkfError {
    /// An argument was invalid; the message names it and the allowed values.
    InvalidInput(String),
}

impl std::fmt::Display for UkfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UkfError::InvalidInput(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for UkfError {}

pub(crate) fn invalid<T>(msg: String) -> Result<T, UkfError> {
    Err(UkfError::InvalidInput(msg))
}

/// Check that a parameter is finite and satisfies `ok`, naming it in the error.
pub(crate) fn check_param(name: &str, value: f64, ok: bool, allowed: &str) -> Result<(), UkfError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        invalid(format!("{name} must be {allowed}, got {value}"))
    }
}

/// Relative tolerance of the semi-definiteness check of a process noise `Q`: a negative
/// eigenvalue smaller than this times the largest diagonal entry is rounding.
const PSD_TOLERANCE: f64 = 1e-10;

/// Check a model's noise covariance `a` (`k x k`, row-major): symmetric (to 1e-9
/// relative), and positive definite (`definite`, for `R`: the innovation covariance must
/// stay invertible) or positive semi-definite (for `Q`, which may be singular). A
/// covariance that is neither made the filter's `P` indefinite without any reset.
pub(crate) fn check_noise_covariance(
    name: &str,
    a: &[f64],
    k: usize,
    definite: bool,
) -> Result<(), UkfError> {
    for i in 0..k {
        for j in 0..i {
            let (x, y) = (a[i * k + j], a[j * k + i]);
            if (x - y).abs() > 1e-9 * (x.abs() + y.abs()).max(1e-300) {
                return invalid(format!(
                    "{name} must be symmetric, got [{i},{j}]={x} and [{j},{i}]={y}"
                ));
            }
        }
    }
    let mut l = a.to_vec();
    if definite {
        if crate::linalg::cholesky_in_place(&mut l, k).is_err() {
            return invalid(format!("{name} must be positive definite"));
        }
        return Ok(());
    }
    let largest = (0..k).map(|i| a[i * k + i].abs()).fold(0.0, f64::max);
    let eps = (PSD_TOLERANCE * largest).max(f64::MIN_POSITIVE);
    for i in 0..k {
        l[i * k + i] += eps;
    }
    if crate::linalg::cholesky_in_place(&mut l, k).is_err() {
        return invalid(format!(
            "{name} must be positive semi-definite (no eigenvalue below \
             -{PSD_TOLERANCE:e} x its largest diagonal entry)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
