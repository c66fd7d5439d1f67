//! The path loop of one chunk: simulate in log space and keep only each path's terminal
//! price and its minimum and maximum of `log(S / S_0)` (exponentiated later, and only at
//! the order statistics the quantiles use).

use rand::distr::OpenClosed01;
use rand_distr::{Distribution, StandardNormal};

use super::jumps::SparseJumps;
use crate::rng::StreamRng;

/// Per-step constants, computed once per simulation (a constant volatility fills them
/// with one value, so it and an equal per-step path give bit-identical results).
#[derive(Clone, Debug)]
pub(crate) struct StepTable {
    /// `(mu - sigma_n^2 / 2 - lam kappa) dt`
    pub drift: Vec<f64>,
    /// `sigma_n sqrt(dt)`
    pub sd: Vec<f64>,
    /// `sigma_n^2 dt`, the Brownian-bridge variance of the step
    pub var: Vec<f64>,
}

impl StepTable {
    pub(crate) fn new(mu: f64, sigmas: &[f64], compensator: f64, dt: f64) -> Self {
        let drift = sigmas
            .iter()
            .map(|s| (mu - 0.5 * s * s - compensator) * dt)
            .collect();
        let sd = sigmas.iter().map(|s| s * dt.sqrt()).collect();
        let var = sigmas.iter().map(|s| s * s * dt).collect();
        StepTable { drift, sd, var }
    }
}

/// One chunk's outputs, a window of the three N-vectors: terminal price, minimum and
/// maximum of `log(S_n / S_0)` over `n = 0..T`.
pub(crate) struct ChunkOut<'a> {
    pub terminal: &'a mut [f64],
    pub log_low: &'a mut [f64],
    pub log_high: &'a mut [f64],
}

/// Extremes of a Brownian bridge from `a` to `b` with variance `v` over the step:
/// `max = (a + b + sqrt((b - a)^2 - 2 v ln U)) / 2` (the exact law of the maximum given
/// the end points) and the mirror image for the minimum, from independent uniforms. Each
/// marginal is exact; drawing them independently ignores their (weak, same-step)
/// dependence, which matters only when one step holds both the path's low and high.
#[inline]
fn bridge_extremes(a: f64, b: f64, v: f64, rng: &mut StreamRng) -> (f64, f64) {
    let d2 = (b - a) * (b - a);
    let u_max: f64 = OpenClosed01.sample(rng);
    let u_min: f64 = OpenClosed01.sample(rng);
    let hi = 0.5 * (a + b + (d2 - 2.0 * v * u_max.ln()).sqrt());
    let lo = 0.5 * (a + b - (d2 - 2.0 * v * u_min.ln()).sqrt());
    (lo, hi)
}

/// Simulates the chunk's paths from `rng` and returns the sum of their terminal prices.
///
/// Draw order, fixed so that results are reproducible: per chunk one jump gap first (with
/// jumps); per step the diffusion normal, then (bridge) two uniforms, then (at a jump
/// step) the jump count, its normal and the next gap. A jump is placed at the end of
/// its step, after the bridge of the diffusive move.
pub(crate) fn run_chunk<const JUMPS: bool, const BRIDGE: bool>(
    s0: f64,
    steps: &StepTable,
    jumps: Option<&SparseJumps>,
    rng: &mut StreamRng,
    out: ChunkOut<'_>,
) -> f64 {
    let n_steps = steps.drift.len();
    let drift = &steps.drift[..n_steps];
    let sd = &steps.sd[..n_steps];
    let var = &steps.var[..n_steps];
    let jumps = if JUMPS { jumps } else { None };
    let mut gap = jumps.map_or(u64::MAX, |j| j.gap(rng));
    let mut sum = 0.0;
    let paths = out
        .terminal
        .iter_mut()
        .zip(out.log_low.iter_mut())
        .zip(out.log_high.iter_mut());
    for ((terminal, low), high) in paths {
        // x = log(S_n / S_0); the extremes start at S_0 (n = 0 is included). Plain
        // comparisons (one minsd / maxsd) rather than f64::min / max, whose NaN handling
        // costs four instructions here; validated input cannot produce NaN.
        let (mut x, mut lo, mut hi) = (0.0f64, 0.0f64, 0.0f64);
        for n in 0..n_steps {
            let z: f64 = StandardNormal.sample(rng);
            let prev = x;
            x += drift[n] + sd[n] * z;
            if BRIDGE {
                let (b_lo, b_hi) = bridge_extremes(prev, x, var[n], rng);
                lo = if b_lo < lo { b_lo } else { lo };
                hi = if b_hi > hi { b_hi } else { hi };
            }
            if let Some(j) = jumps {
                if gap == 0 {
                    x += j.log_jump(rng);
                    gap = j.gap(rng);
                } else {
                    gap -= 1;
                }
            }
            lo = if x < lo { x } else { lo };
            hi = if x > hi { x } else { hi };
        }
        let s_t = s0 * x.exp();
        *terminal = s_t;
        *low = lo;
        *high = hi;
        sum += s_t;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn bridge_extremes_bracket_the_end_points() {
        let mut rng = stream(1, 0);
        for i in 0..1000 {
            let (a, b) = (0.01 * (i % 7) as f64, -0.02 * (i % 5) as f64);
            let (lo, hi) = bridge_extremes(a, b, 1e-4, &mut rng);
            // Up to rounding: the kernel also folds in the end points themselves.
            assert!(lo <= a.min(b) + 1e-15 && hi >= a.max(b) - 1e-15);
        }
        // No variance: the bridge is the straight line.
        let (lo, hi) = bridge_extremes(0.3, -0.1, 0.0, &mut rng);
        assert!((lo + 0.1).abs() < 1e-15 && (hi - 0.3).abs() < 1e-15);
    }

    #[test]
    fn extremes_include_the_start_and_terminal() {
        let steps = StepTable::new(0.05, &[0.2; 7], 0.0, 1.0 / 252.0);
        let (mut t, mut l, mut h) = (vec![0.0; 50], vec![0.0; 50], vec![0.0; 50]);
        let out = ChunkOut {
            terminal: &mut t,
            log_low: &mut l,
            log_high: &mut h,
        };
        let sum = run_chunk::<false, false>(100.0, &steps, None, &mut stream(2, 0), out);
        assert!((sum - t.iter().sum::<f64>()).abs() < 1e-9);
        for i in 0..50 {
            assert!(l[i] <= 0.0 && h[i] >= 0.0);
            let x_t = (t[i] / 100.0).ln();
            assert!(l[i] <= x_t + 1e-12 && x_t <= h[i] + 1e-12);
        }
    }
}
