//! Forecasting the price range by propagating the particle cloud.
//!
//! `n_paths` starting states are drawn from the filtered cloud by systematic resampling
//! (by weight). Each path then takes `steps` steps of length `dt`:
//!
//! ```text
//! h <- transition over dt (the model's)
//! r  = return_scale * (drift dt + sqrt(dt e^h) eps)      (SV y is in percent: scale 0.01)
//! log S <- log S + r
//! ```
//!
//! (no Itô correction: `drift` is the mean log-return per unit time, in the units of y).
//! Each path records its log-price at the horizon and its running minimum and maximum,
//! starting from `log S_0` (included). With `bridge = true` the extremes also cover the
//! moves within a step: given the closes `a, b` and the step variance `v`, the maximum of
//! the Brownian bridge is `(a + b + sqrt((b - a)^2 - 2 v ln U)) / 2` exactly, the minimum
//! `(a + b - sqrt((b - a)^2 - 2 v ln U')) / 2`; `U` and `U'` are drawn independently, which
//! gets each extreme's law right and ignores their (weak) dependence within one step.
//!
//! The result holds quantiles (NumPy's linear rule) of the terminal price, the path
//! minimum and the path maximum at `levels`, and, if asked, the joint path range at a
//! confidence `c`: `lo = Q_min(q)`, `hi = Q_max(1 - q)` with the largest tail `q` (found
//! by bisection) such that the fraction of paths with `min >= lo and max <= hi` is at
//! least `c`.
//!
//! Paths run in chunks of [`CHUNK`]; chunk `k` draws from `rng::stream(seed, k)` and the
//! starting states from `rng::stream(seed, u64::MAX)`, so the result does not depend on
//! the thread count.

use rand::RngExt;
use rand_distr::StandardNormal;

use super::filter::check_levels;
use super::model::{check_finite, check_positive, Transition};
use super::runner::Runner;
use super::{ParticleError, CHUNK, MAX_FORECAST_PATHS};
// The same bound as a Monte Carlo simulation's: a typo such as `steps=10**12` is refused
// instead of running for days in a call that cannot be interrupted (GIL released).
use crate::monte_carlo::MAX_STEPS;
use crate::quantile::quantiles_linear;
use crate::rng;

/// What to forecast.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastSpec {
    /// Steps ahead (>= 1).
    pub steps: usize,
    /// Step length (> 0), in the filter's time unit.
    pub dt: f64,
    /// The current price (> 0).
    pub price: f64,
    /// Quantile levels in [0, 1].
    pub levels: Vec<f64>,
    /// Paths to simulate; `None`: as many as particles.
    pub n_paths: Option<usize>,
    /// Mean log-return per unit time, in the units of y.
    pub drift: f64,
    /// Converts y's units to log-returns (0.01 for returns in percent).
    pub return_scale: f64,
    /// Include the within-step extremes (Brownian bridge).
    pub bridge: bool,
    /// Random seed; `None`: derived from the filter's seed and time index.
    pub seed: Option<u64>,
    /// Also compute the joint path range at this confidence (in (0, 1)).
    pub path_confidence: Option<f64>,
}

impl ForecastSpec {
    /// `steps` ahead of `price` with the defaults: dt 1, levels 5/25/50/75/95 %, no drift,
    /// returns in percent, bridge on.
    pub fn new(steps: usize, price: f64) -> Self {
        Self {
            steps,
            dt: 1.0,
            price,
            levels: vec![0.05, 0.25, 0.5, 0.75, 0.95],
            n_paths: None,
            drift: 0.0,
            return_scale: 0.01,
            bridge: true,
            seed: None,
            path_confidence: None,
        }
    }

    fn validate(&self) -> Result<(), ParticleError> {
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return Err(ParticleError::invalid(format!(
                "steps must be in [1, {MAX_STEPS}] (MAX_STEPS), got {}",
                self.steps
            )));
        }
        if let Some(n) = self
            .n_paths
            .filter(|n| !(1..=MAX_FORECAST_PATHS).contains(n))
        {
            return Err(ParticleError::invalid(format!(
                "n_paths must be in [1, {MAX_FORECAST_PATHS}] (MAX_FORECAST_PATHS), got {n}"
            )));
        }
        check_positive("price", self.price)?;
        check_positive("dt", self.dt)?;
        check_positive("return_scale", self.return_scale)?;
        check_finite("drift", self.drift)?;
        check_levels(&self.levels)?;
        if let Some(c) = self.path_confidence {
            if !(c > 0.0 && c < 1.0) {
                return Err(ParticleError::invalid(format!(
                    "path_confidence must be in (0, 1), got {c}"
                )));
            }
        }
        Ok(())
    }
}

/// Forecast quantiles (prices), one per level.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    pub price: Vec<f64>,
    pub path_min: Vec<f64>,
    pub path_max: Vec<f64>,
    /// `(lo, hi, q)`: the joint path range and its per-side tail probability.
    pub path_range: Option<(f64, f64, f64)>,
}

/// One chunk of paths: starting states in, log-price at the horizon and extremes out.
struct Paths {
    start: Vec<f64>,
    end: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

/// Simulate from the cloud `(x, w)`; `transition` is the model's transition over `spec.dt`.
pub(crate) fn simulate(
    x: &[f64],
    w: &[f64],
    transition: &Transition,
    spec: &ForecastSpec,
    n_paths: usize,
    seed: u64,
    runner: &Runner,
) -> Result<Forecast, ParticleError> {
    spec.validate()?;
    let starts = systematic_draw(x, w, n_paths, rng::stream(seed, u64::MAX).random());
    let mut chunks: Vec<Paths> = starts
        .chunks(CHUNK)
        .map(|s| Paths {
            start: s.to_vec(),
            end: vec![0.0; s.len()],
            low: vec![0.0; s.len()],
            high: vec![0.0; s.len()],
        })
        .collect();
    let tr = *transition;
    let var_per_eh = spec.return_scale * spec.return_scale * spec.dt;
    let drift_step = spec.return_scale * spec.drift * spec.dt;
    let (steps, bridge) = (spec.steps, spec.bridge);
    runner.for_each(&mut chunks, |k, paths| {
        let mut rng = rng::stream(seed, k as u64);
        for i in 0..paths.start.len() {
            let mut h = paths.start[i];
            let (mut lp, mut low, mut high) = (0.0_f64, 0.0_f64, 0.0_f64);
            for _ in 0..steps {
                let eta: f64 = rng.sample(StandardNormal);
                h = tr.mean(h) + tr.sd * eta;
                let v = var_per_eh * h.exp();
                let eps: f64 = rng.sample(StandardNormal);
                let next = lp + drift_step + v.sqrt() * eps;
                if bridge {
                    let d2 = (next - lp) * (next - lp);
                    // 1 - U is in (0, 1]: ln never sees 0.
                    let u_hi: f64 = 1.0 - rng.random::<f64>();
                    let u_lo: f64 = 1.0 - rng.random::<f64>();
                    high = high.max(0.5 * (lp + next + (d2 - 2.0 * v * u_hi.ln()).sqrt()));
                    low = low.min(0.5 * (lp + next - (d2 - 2.0 * v * u_lo.ln()).sqrt()));
                } else {
                    high = high.max(next);
                    low = low.min(next);
                }
                lp = next;
            }
            paths.end[i] = lp;
            paths.low[i] = low;
            paths.high[i] = high;
        }
    });
    let gather = |f: fn(&Paths) -> &Vec<f64>| -> Vec<f64> {
        chunks
            .iter()
            .flat_map(|c| f(c).iter().map(|&l| spec.price * l.exp()))
            .collect()
    };
    let (mut end, mut low, mut high) =
        (gather(|p| &p.end), gather(|p| &p.low), gather(|p| &p.high));
    let path_range = spec
        .path_confidence
        .map(|c| joint_range(&mut low.clone(), &mut high.clone(), c));
    Ok(Forecast {
        price: quantiles_linear(&mut end, &spec.levels),
        path_min: quantiles_linear(&mut low, &spec.levels),
        path_max: quantiles_linear(&mut high, &spec.levels),
        path_range,
    })
}

/// `m` draws from the weighted sample `(x, w)` by systematic resampling with uniform `u`.
fn systematic_draw(x: &[f64], w: &[f64], m: usize, u: f64) -> Vec<f64> {
    let total: f64 = w.iter().sum();
    let spacing = total / m as f64;
    let mut out = Vec::with_capacity(m);
    let (mut j, mut cum) = (0usize, w[0]);
    for k in 0..m {
        let target = (u + k as f64) * spacing;
        while cum < target && j + 1 < x.len() {
            j += 1;
            cum += w[j];
        }
        out.push(x[j]);
    }
    out
}

/// The joint range `(lo, hi, q)` at confidence `c` over paths with extremes `low`, `high`
/// (see the module docs). Sorts both slices.
pub(crate) fn joint_range(low: &mut [f64], high: &mut [f64], c: f64) -> (f64, f64, f64) {
    let pairs: Vec<(f64, f64)> = low.iter().copied().zip(high.iter().copied()).collect();
    low.sort_by(f64::total_cmp);
    high.sort_by(f64::total_cmp);
    let bounds = |q: f64| (sorted_quantile(low, q), sorted_quantile(high, 1.0 - q));
    let coverage = |q: f64| {
        let (lo, hi) = bounds(q);
        let inside = pairs.iter().filter(|&&(l, h)| l >= lo && h <= hi).count();
        inside as f64 / pairs.len() as f64
    };
    // coverage(0) = 1 and coverage falls with q; at q = 1 - c it is at most about c.
    let (mut good, mut bad) = (0.0, 1.0 - c);
    if coverage(bad) >= c {
        good = bad;
    } else {
        for _ in 0..50 {
            let mid = 0.5 * (good + bad);
            if coverage(mid) >= c {
                good = mid;
            } else {
                bad = mid;
            }
        }
    }
    let (lo, hi) = bounds(good);
    (lo, hi, good)
}

/// NumPy's linear quantile of a sorted slice.
fn sorted_quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = (pos.floor() as usize).min(sorted.len() - 1);
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systematic_draw_follows_the_weights() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let w = [0.0, 0.5, 0.0, 0.5];
        let d = systematic_draw(&x, &w, 4, 0.3);
        assert_eq!(d, vec![2.0, 2.0, 4.0, 4.0]);
    }

    #[test]
    fn joint_range_covers_the_asked_fraction() {
        // Independent uniform extremes: coverage(q) = (1 - q)^2 exactly in the limit.
        let n = 20_000;
        let mut r = rng::stream(3, 0);
        let low: Vec<f64> = (0..n).map(|_| -r.random::<f64>()).collect();
        let high: Vec<f64> = (0..n).map(|_| r.random::<f64>()).collect();
        let (lo, hi, q) = joint_range(&mut low.clone(), &mut high.clone(), 0.81);
        let inside = low
            .iter()
            .zip(&high)
            .filter(|&(&l, &h)| l >= lo && h <= hi)
            .count() as f64
            / n as f64;
        // Coverage moves in steps of a path or two, so the crossing lands within a few 1/n.
        assert!(inside >= 0.81 && inside < 0.81 + 5.0 / n as f64, "{inside}");
        // q = 0.1 in the limit; the empirical quantiles move it by O(1/sqrt(n)).
        assert!((q - 0.1).abs() < 0.01, "q = {q}");
    }
}
