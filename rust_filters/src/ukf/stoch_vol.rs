//! The two stochastic-volatility models of `benchmarks/spec/WORKLOADS.md` (ukf2-sv, ukf3-svp).
//!
//! Log-variance `h` of the daily return in percent follows a Gaussian AR(1)
//! (Pitt & Shephard 1999), written in continuous time as an Ornstein-Uhlenbeck process so
//! that any `dt >= 0` (in days) is exact and `dt = 1` is the workload:
//!
//! ```text
//! h_{t+dt} = mu + phi^dt (h_t - mu) + w,   Var w = sigma^2 (1 - phi^{2 dt}) / (1 - phi^2)
//! ```
//!
//! (`phi = 1` is a random walk with `Var w = sigma^2 dt`). Random-walk components
//! (drift, price noise) get variance proportional to `dt`. Measurements are per unit time
//! (one day): to feed a return over `dt` days, scale it by `1 / sqrt(dt)` first.

use serde::{Deserialize, Serialize};

use super::{check_param, UkfError, UkfModel};
// Branch-free and inlined (< 1 ulp): libm's scalar exp call was a large share of a step.
use crate::particle::fastmath::exp as fast_exp;
use std::f64::consts::PI;

/// Sigma points per block of [`exp_of_column`]: at least the `2n + 1 = 7` of ukf3-svp.
const BLOCK: usize = 8;

/// `exp(scale * row[col])` for each row (of `stride` values) of a block of at most
/// [`BLOCK`] rows, padded with `exp(0)`. A separate loop over a fixed-size array, so that
/// the `exp`s run side by side in vector registers: interleaved with the per-row
/// arithmetic they stayed scalar, and were over a third of a step.
#[inline(always)]
fn exp_of_column(block: &[f64], stride: usize, col: usize, scale: f64) -> [f64; BLOCK] {
    let mut v = [0.0; BLOCK];
    for (vi, row) in v.iter_mut().zip(block.chunks_exact(stride)) {
        *vi = scale * row[col];
    }
    for vi in v.iter_mut() {
        *vi = fast_exp(*vi);
    }
    v
}

/// `E|eps| = sqrt(2/pi)` for `eps ~ N(0,1)`.
fn mean_abs_normal() -> f64 {
    (2.0 / PI).sqrt()
}

fn check_sv(mu: f64, phi: f64, sigma: f64, drift_sd: f64) -> Result<(), UkfError> {
    check_param("mu", mu, true, "finite")?;
    check_param("phi", phi, phi > 0.0 && phi <= 1.0, "in (0, 1]")?;
    check_param("sigma", sigma, sigma > 0.0, "finite and > 0")?;
    check_param("drift_sd", drift_sd, drift_sd >= 0.0, "finite and >= 0")
}

/// `(phi^dt, Var of the OU innovation over dt)`, exactly `(phi, sigma^2)` at `dt = 1`.
#[inline]
fn ou_step(phi: f64, sigma: f64, dt: f64) -> (f64, f64) {
    if dt == 1.0 {
        (phi, sigma * sigma)
    } else if phi == 1.0 {
        (1.0, sigma * sigma * dt)
    } else {
        let a = phi.powf(dt);
        (a, sigma * sigma * (1.0 - a * a) / (1.0 - phi * phi))
    }
}

/// ukf2-sv: state `x = [h, m]` (log-variance, drift of the return in % per day).
///
/// ```text
/// f(x, dt) = [mu + phi^dt (h - mu), m]
/// h(x)     = [m, sqrt(2/pi) exp(h/2)]              z_t = [r_t, |r_t|]
/// Q(dt)    = diag(OU variance, drift_sd^2 dt)      R = diag(e^mu, (1 - 2/pi) e^mu)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StochVol {
    pub mu: f64,
    pub phi: f64,
    pub sigma: f64,
    pub drift_sd: f64,
}

impl StochVol {
    pub fn new(mu: f64, phi: f64, sigma: f64, drift_sd: f64) -> Result<Self, UkfError> {
        check_sv(mu, phi, sigma, drift_sd)?;
        Ok(StochVol {
            mu,
            phi,
            sigma,
            drift_sd,
        })
    }

    /// The workload's parameters: Pitt & Shephard's `mu = -1.02, phi = 0.9702, sigma = 0.178`.
    pub fn workload() -> Self {
        StochVol {
            mu: -1.02,
            phi: 0.9702,
            sigma: 0.178,
            drift_sd: 0.01,
        }
    }

    /// Stationary variance of `h`, `sigma^2 / (1 - phi^2)`.
    pub fn stationary_var(&self) -> f64 {
        self.sigma * self.sigma / (1.0 - self.phi * self.phi)
    }

    /// The workload's prior: `x0 = [mu, 0]`, `P0 = diag(V0, 0.1^2)`.
    pub fn workload_prior(&self) -> (Vec<f64>, Vec<f64>) {
        (
            vec![self.mu, 0.0],
            vec![self.stationary_var(), 0.0, 0.0, 0.1 * 0.1],
        )
    }
}

impl UkfModel for StochVol {
    type Design = ();
    const NAME: &'static str = "StochVol";

    fn validate(&self) -> Result<(), UkfError> {
        StochVol::new(self.mu, self.phi, self.sigma, self.drift_sd).map(drop)
    }
    const CONSTANT_MEASUREMENT_NOISE: bool = true;

    fn state_dim(&self) -> usize {
        2
    }
    fn meas_dim(&self, _: &()) -> usize {
        2
    }
    #[inline]
    fn transition(&self, dt: f64, points: &mut [f64]) {
        let (a, _) = ou_step(self.phi, self.sigma, dt);
        for pt in points.chunks_exact_mut(2) {
            pt[0] = self.mu + a * (pt[0] - self.mu);
        }
    }
    fn process_noise(&self, dt: f64, q: &mut [f64]) {
        let (_, var_h) = ou_step(self.phi, self.sigma, dt);
        q.copy_from_slice(&[var_h, 0.0, 0.0, self.drift_sd * self.drift_sd * dt]);
    }
    #[inline]
    fn measure(&self, _: &(), points: &[f64], z: &mut [f64]) {
        let c = mean_abs_normal();
        for (block, zb) in points.chunks(2 * BLOCK).zip(z.chunks_mut(2 * BLOCK)) {
            let e = exp_of_column(block, 2, 0, 0.5);
            for ((pt, zi), &ei) in block.chunks_exact(2).zip(zb.chunks_exact_mut(2)).zip(&e) {
                zi[0] = pt[1];
                zi[1] = c * ei;
            }
        }
    }
    fn measurement_noise(&self, _: &(), r: &mut [f64]) {
        let v = self.mu.exp();
        r.copy_from_slice(&[v, 0.0, 0.0, (1.0 - 2.0 / PI) * v]);
    }
}

/// ukf3-svp: state `x = [p, m, h]` (log-price in % units, drift, log-variance).
///
/// ```text
/// f(x, dt) = [p + m dt - 0.005 exp(h) dt, m, mu + phi^dt (h - mu)]
/// h(x)     = [p, sqrt(2/pi) exp(h/2)]                          z_t = [p_t, |r_t|]
/// Q(dt)    = diag(e^mu dt, drift_sd^2 dt, OU variance)        R = diag(price_sd^2, (1 - 2/pi) e^mu)
/// ```
/// (`0.005 e^h` is the Itô correction `sigma^2 / 2` of a log-price in percent.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StochVolPrice {
    pub mu: f64,
    pub phi: f64,
    pub sigma: f64,
    pub drift_sd: f64,
    pub price_sd: f64,
}

impl StochVolPrice {
    pub fn new(
        mu: f64,
        phi: f64,
        sigma: f64,
        drift_sd: f64,
        price_sd: f64,
    ) -> Result<Self, UkfError> {
        check_sv(mu, phi, sigma, drift_sd)?;
        check_param("price_sd", price_sd, price_sd > 0.0, "finite and > 0")?;
        Ok(StochVolPrice {
            mu,
            phi,
            sigma,
            drift_sd,
            price_sd,
        })
    }

    pub fn workload() -> Self {
        StochVolPrice {
            mu: -1.02,
            phi: 0.9702,
            sigma: 0.178,
            drift_sd: 0.01,
            price_sd: 0.05,
        }
    }

    /// The workload's prior: `x0 = [100 ln 100, 0, mu]`, `P0 = diag(1, 0.1^2, V0)`.
    pub fn workload_prior(&self) -> (Vec<f64>, Vec<f64>) {
        let v0 = self.sigma * self.sigma / (1.0 - self.phi * self.phi);
        let mut p0 = vec![0.0; 9];
        p0[0] = 1.0;
        p0[4] = 0.1 * 0.1;
        p0[8] = v0;
        (vec![100.0 * 100f64.ln(), 0.0, self.mu], p0)
    }
}

impl UkfModel for StochVolPrice {
    type Design = ();
    const NAME: &'static str = "StochVolPrice";

    fn validate(&self) -> Result<(), UkfError> {
        let s = self;
        StochVolPrice::new(s.mu, s.phi, s.sigma, s.drift_sd, s.price_sd).map(drop)
    }
    const CONSTANT_MEASUREMENT_NOISE: bool = true;

    fn state_dim(&self) -> usize {
        3
    }
    fn meas_dim(&self, _: &()) -> usize {
        2
    }
    #[inline]
    fn transition(&self, dt: f64, points: &mut [f64]) {
        let (a, _) = ou_step(self.phi, self.sigma, dt);
        for block in points.chunks_mut(3 * BLOCK) {
            let e = exp_of_column(block, 3, 2, 1.0);
            for (pt, &ei) in block.chunks_exact_mut(3).zip(&e) {
                pt[0] = pt[0] + pt[1] * dt - 0.005 * ei * dt;
                pt[2] = self.mu + a * (pt[2] - self.mu);
            }
        }
    }
    fn process_noise(&self, dt: f64, q: &mut [f64]) {
        let (_, var_h) = ou_step(self.phi, self.sigma, dt);
        q.fill(0.0);
        q[0] = self.mu.exp() * dt;
        q[4] = self.drift_sd * self.drift_sd * dt;
        q[8] = var_h;
    }
    #[inline]
    fn measure(&self, _: &(), points: &[f64], z: &mut [f64]) {
        let c = mean_abs_normal();
        for (block, zb) in points.chunks(3 * BLOCK).zip(z.chunks_mut(2 * BLOCK)) {
            let e = exp_of_column(block, 3, 2, 0.5);
            for ((pt, zi), &ei) in block.chunks_exact(3).zip(zb.chunks_exact_mut(2)).zip(&e) {
                zi[0] = pt[0];
                zi[1] = c * ei;
            }
        }
    }
    fn measurement_noise(&self, _: &(), r: &mut [f64]) {
        let v = self.mu.exp();
        r.copy_from_slice(&[
            self.price_sd * self.price_sd,
            0.0,
            0.0,
            (1.0 - 2.0 / PI) * v,
        ]);
    }
}
