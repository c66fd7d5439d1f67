//! Implied-volatility smile of an option chain, filtered quote by quote.
//!
//! State `x = [level, skew, curvature]`. The implied volatility of a quote of standardised
//! moneyness `k = ln(K / F) / sqrt(tau)` (strike `K`, forward `F`, time to expiry `tau` in
//! years) is the quadratic
//!
//! ```text
//! iv(k) = max(level + skew k + curvature k^2, min_iv)
//! ```
//!
//! (the floor keeps sigma points with a negative volatility meaningful). A chain is
//! measured either by the implied volatility of each quote or by its Black–Scholes forward
//! delta `Phi(d1)` for a call and `Phi(d1) - 1` for a put, with
//! `d1 = -k / iv + iv sqrt(tau) / 2`; the measurement size is the number of quotes, so it
//! changes from one chain to the next. Each quote's noise is `N(0, noise_sd^2)`,
//! independent across quotes.
//!
//! Dynamics, per component `i`, an Ornstein-Uhlenbeck process in the unit of `dt` (the
//! parameters decide: with `dt` in years, `reversion` is per year and `vol` per
//! sqrt(year); with `dt` in trading days, per day):
//!
//! ```text
//! x_i <- mean_i + exp(-reversion_i dt) (x_i - mean_i)
//! Q_ii = vol_i^2 (1 - exp(-2 reversion_i dt)) / (2 reversion_i)     (vol_i^2 dt if reversion_i = 0)
//! ```
//! `reversion_i = 0` makes component `i` a random walk (its `mean_i` is then unused).

use serde::{Deserialize, Serialize};

use super::{check_param, invalid, normal_cdf, UkfError, UkfModel};

/// What the filter sees of each quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmileMeasurement {
    ImpliedVol,
    Delta,
}

/// One quote of a chain: where it sits and how noisy its measured value is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmileQuote {
    /// Standardised moneyness `ln(K / F) / sqrt(tau)`.
    pub moneyness: f64,
    /// Time to expiry in years, > 0.
    pub tau: f64,
    /// Call (true) or put (false); only the delta measurement uses it.
    pub is_call: bool,
    /// Standard deviation of the measured value's noise, > 0.
    pub noise_sd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Smile {
    pub mean: [f64; 3],
    pub reversion: [f64; 3],
    pub vol: [f64; 3],
    pub measurement: SmileMeasurement,
    /// Default noise standard deviation of a quote (used by [`Smile::quote`]).
    pub noise_sd: f64,
    pub min_iv: f64,
}

impl Smile {
    pub fn new(
        mean: [f64; 3],
        reversion: [f64; 3],
        vol: [f64; 3],
        measurement: SmileMeasurement,
        noise_sd: f64,
        min_iv: f64,
    ) -> Result<Self, UkfError> {
        const NAMES: [&str; 3] = ["level", "skew", "curvature"];
        for i in 0..3 {
            check_param(
                &format!("mean[{i}] ({})", NAMES[i]),
                mean[i],
                true,
                "finite",
            )?;
            check_param(
                &format!("reversion[{i}] ({})", NAMES[i]),
                reversion[i],
                reversion[i] >= 0.0,
                "finite and >= 0",
            )?;
            check_param(
                &format!("vol[{i}] ({})", NAMES[i]),
                vol[i],
                vol[i] > 0.0,
                "finite and > 0",
            )?;
        }
        check_param("noise_sd", noise_sd, noise_sd > 0.0, "finite and > 0")?;
        check_param("min_iv", min_iv, min_iv > 0.0, "finite and > 0")?;
        Ok(Smile {
            mean,
            reversion,
            vol,
            measurement,
            noise_sd,
            min_iv,
        })
    }

    /// A quote with the model's default noise.
    pub fn quote(&self, moneyness: f64, tau: f64, is_call: bool) -> SmileQuote {
        SmileQuote {
            moneyness,
            tau,
            is_call,
            noise_sd: self.noise_sd,
        }
    }

    /// Standardised moneyness `ln(K / F) / sqrt(tau)`.
    pub fn moneyness(strike: f64, forward: f64, tau: f64) -> f64 {
        (strike / forward).ln() / tau.sqrt()
    }

    /// Implied volatility at standardised moneyness `k` for the smile state `x`.
    #[inline]
    pub fn implied_vol(&self, x: &[f64], k: f64) -> f64 {
        (x[0] + x[1] * k + x[2] * k * k).max(self.min_iv)
    }

    /// Black–Scholes forward delta of `quote` under the smile state `x`.
    #[inline]
    pub fn delta(&self, x: &[f64], quote: &SmileQuote) -> f64 {
        let iv = self.implied_vol(x, quote.moneyness);
        let d1 = -quote.moneyness / iv + 0.5 * iv * quote.tau.sqrt();
        let call = normal_cdf(d1);
        if quote.is_call {
            call
        } else {
            call - 1.0
        }
    }

    #[inline]
    fn decay(&self, i: usize, dt: f64) -> f64 {
        (-self.reversion[i] * dt).exp()
    }
}

impl UkfModel for Smile {
    type Design = [SmileQuote];
    const NAME: &'static str = "Smile";

    fn validate(&self) -> Result<(), UkfError> {
        let s = self;
        Smile::new(
            s.mean,
            s.reversion,
            s.vol,
            s.measurement,
            s.noise_sd,
            s.min_iv,
        )
        .map(drop)
    }

    fn state_dim(&self) -> usize {
        3
    }
    fn meas_dim(&self, quotes: &[SmileQuote]) -> usize {
        quotes.len()
    }
    fn check_design(&self, quotes: &[SmileQuote]) -> Result<(), UkfError> {
        if quotes.is_empty() {
            return invalid("quotes must not be empty (a chain needs at least one quote)".into());
        }
        for (i, q) in quotes.iter().enumerate() {
            check_param(&format!("moneyness[{i}]"), q.moneyness, true, "finite")?;
            check_param(
                &format!("tau[{i}]"),
                q.tau,
                q.tau > 0.0,
                "finite and > 0 (years)",
            )?;
            check_param(
                &format!("noise_sd[{i}]"),
                q.noise_sd,
                q.noise_sd > 0.0,
                "finite and > 0",
            )?;
        }
        Ok(())
    }
    fn transition(&self, dt: f64, points: &mut [f64]) {
        let a = [self.decay(0, dt), self.decay(1, dt), self.decay(2, dt)];
        for pt in points.chunks_exact_mut(3) {
            for i in 0..3 {
                pt[i] = self.mean[i] + a[i] * (pt[i] - self.mean[i]);
            }
        }
    }
    fn process_noise(&self, dt: f64, q: &mut [f64]) {
        q.fill(0.0);
        for i in 0..3 {
            let k = self.reversion[i];
            let v = self.vol[i] * self.vol[i];
            q[i * 4] = if k == 0.0 {
                v * dt
            } else {
                v * -(-2.0 * k * dt).exp_m1() / (2.0 * k)
            };
        }
    }
    fn measure(&self, quotes: &[SmileQuote], points: &[f64], z: &mut [f64]) {
        let m = quotes.len();
        for (pt, zi) in points.chunks_exact(3).zip(z.chunks_exact_mut(m)) {
            for (zq, q) in zi.iter_mut().zip(quotes) {
                *zq = match self.measurement {
                    SmileMeasurement::ImpliedVol => self.implied_vol(pt, q.moneyness),
                    SmileMeasurement::Delta => self.delta(pt, q),
                };
            }
        }
    }
    fn measurement_noise(&self, quotes: &[SmileQuote], r: &mut [f64]) {
        let m = quotes.len();
        r.fill(0.0);
        for (i, q) in quotes.iter().enumerate() {
            r[i * m + i] = q.noise_sd * q.noise_sd;
        }
    }
}
