//! The path loop of one chunk: simulate in log space and keep only each path's terminal
//! value, minimum and maximum of `log(S / S_0)` (exponentiated later, and only at the
//! order statistics the quantiles use) and the sum of the terminal prices.

use rand::distr::OpenClosed01;
use rand_distr::Distribution;

use super::jumps::SparseJumps;
use crate::normals::BlockNormals;
use crate::particle::fastmath;
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

/// One chunk's outputs, a window of the three N-vectors: `log(S_T / S_0)` and the
/// minimum and maximum of `log(S_n / S_0)` over `n = 0..T`.
pub(crate) struct ChunkOut<'a> {
    pub log_terminal: &'a mut [f64],
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

/// Paths simulated side by side: the step loop runs over a group's lanes, so it
/// vectorises (one path alone is a chain of dependent additions).
const GROUP: usize = 8;
/// Normals drawn per refill of the buffer (32 KiB: stays in L1/L2).
const BUFFER_NORMALS: usize = 4096;

/// Simulates the chunk's paths from `rng` and returns the sum of their terminal prices.
///
/// Paths go by groups of [`GROUP`] (the last one padded; padding lanes are simulated and
/// dropped). Draw order, fixed so that results are reproducible: the diffusion normals
/// come from [`BlockNormals`] seeded by `rng`, a refill at a time of whole groups, each
/// group step-major (`z[n * GROUP + lane]`); everything else comes from the block
/// generator's scalar stream: with jumps, one gap at the start, then at each refill the
/// jump steps of the refill in buffer order (count, normal, next gap); with the bridge,
/// two uniforms per path-step in group, step, lane order. A jump is placed at the end of
/// its step, after the bridge of the diffusive move.
pub(crate) fn run_chunk<const JUMPS: bool, const BRIDGE: bool>(
    s0: f64,
    steps: &StepTable,
    jumps: Option<&SparseJumps>,
    rng: StreamRng,
    out: ChunkOut<'_>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { run_chunk_avx2::<JUMPS, BRIDGE>(s0, steps, jumps, rng, out) };
    }
    run_chunk_any::<JUMPS, BRIDGE>(s0, steps, jumps, rng, out)
}

/// [`run_chunk`] compiled for AVX2 (same operations, no FMA: the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_chunk_avx2<const JUMPS: bool, const BRIDGE: bool>(
    s0: f64,
    steps: &StepTable,
    jumps: Option<&SparseJumps>,
    rng: StreamRng,
    out: ChunkOut<'_>,
) -> f64 {
    run_chunk_any::<JUMPS, BRIDGE>(s0, steps, jumps, rng, out)
}

#[inline(always)]
fn run_chunk_any<const JUMPS: bool, const BRIDGE: bool>(
    s0: f64,
    steps: &StepTable,
    jumps: Option<&SparseJumps>,
    rng: StreamRng,
    out: ChunkOut<'_>,
) -> f64 {
    let per_group = steps.drift.len() * GROUP;
    let groups_per_fill = (BUFFER_NORMALS / per_group).max(1);
    let mut normals = BlockNormals::new(rng);
    let mut z = vec![0.0; groups_per_fill * per_group];
    let jumps = if JUMPS { jumps } else { None };
    let mut jump_size = if jumps.is_some() {
        vec![0.0; z.len()]
    } else {
        Vec::new()
    };
    // Jump-free path-steps before the next jump, counted from the start of the buffer.
    let mut gap = jumps.map_or(u64::MAX, |j| j.gap(normals.rng()));
    let n_paths = out.log_terminal.len();
    let mut sum = 0.0;
    let mut first = 0;
    while first < n_paths {
        let groups = groups_per_fill.min((n_paths - first).div_ceil(GROUP));
        let z = &mut z[..groups * per_group];
        normals.fill(z);
        if let Some(j) = jumps {
            let sizes = &mut jump_size[..z.len()];
            sizes.fill(0.0);
            let mut at = gap;
            while at < sizes.len() as u64 {
                sizes[at as usize] = j.log_jump(normals.rng());
                at = at.saturating_add(1).saturating_add(j.gap(normals.rng()));
            }
            gap = at - sizes.len() as u64;
        }
        for (k, zg) in z.chunks_exact(per_group).enumerate() {
            let sizes = if JUMPS {
                &jump_size[k * per_group..(k + 1) * per_group]
            } else {
                &[][..]
            };
            let (x, lo, hi) = simulate_group::<JUMPS, BRIDGE>(steps, zg, sizes, normals.rng());
            // The terminal prices only for the mean: one vectorisable exp per lane
            // (fastmath, within 1 ulp of f64::exp). Prices that are returned or ranked are
            // exponentiated later with f64::exp, the same function for all three vectors,
            // so that a path's minimum price never exceeds its terminal price.
            let s_t = x.map(|x| s0 * fastmath::exp(x));
            let start = first + k * GROUP;
            let len = GROUP.min(n_paths - start);
            out.log_terminal[start..start + len].copy_from_slice(&x[..len]);
            out.log_low[start..start + len].copy_from_slice(&lo[..len]);
            out.log_high[start..start + len].copy_from_slice(&hi[..len]);
            sum += s_t[..len].iter().sum::<f64>();
        }
        first += groups * GROUP;
    }
    sum
}

/// One group's paths: `x = log(S_n / S_0)` at `n = T` and its minimum and maximum over
/// `n = 0..T` (S_0 included), per lane. `z` holds the group's normals step-major, `sizes`
/// (with jumps) the log jump of each path-step, zero where there is none.
#[inline(always)]
fn simulate_group<const JUMPS: bool, const BRIDGE: bool>(
    steps: &StepTable,
    z: &[f64],
    sizes: &[f64],
    rng: &mut StreamRng,
) -> ([f64; GROUP], [f64; GROUP], [f64; GROUP]) {
    let (mut x, mut lo, mut hi) = ([0.0f64; GROUP], [0.0f64; GROUP], [0.0f64; GROUP]);
    let per_step = steps.drift.iter().zip(&steps.sd).zip(&steps.var);
    for (n, ((&drift, &sd), &var)) in per_step.enumerate() {
        let zs = &z[n * GROUP..(n + 1) * GROUP];
        for l in 0..GROUP {
            let prev = x[l];
            let mut next = prev + (drift + sd * zs[l]);
            if BRIDGE {
                let (b_lo, b_hi) = bridge_extremes(prev, next, var, rng);
                lo[l] = if b_lo < lo[l] { b_lo } else { lo[l] };
                hi[l] = if b_hi > hi[l] { b_hi } else { hi[l] };
            }
            if JUMPS {
                next += sizes[n * GROUP + l];
            }
            // Plain comparisons (one minpd / maxpd) rather than f64::min / max, whose NaN
            // handling costs more; validated input cannot produce NaN.
            x[l] = next;
            lo[l] = if next < lo[l] { next } else { lo[l] };
            hi[l] = if next > hi[l] { next } else { hi[l] };
        }
    }
    (x, lo, hi)
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

    /// The AVX2 build of the kernel (taken where the CPU has it) and the portable one
    /// give the same bits, with jumps and the bridge, on a chunk that is not a whole
    /// number of groups.
    #[test]
    fn avx2_and_portable_kernels_agree() {
        let jumps = super::super::spec::Jumps {
            lam: 30.0,
            mu_j: -0.05,
            sigma_j: 0.1,
        };
        let sparse = SparseJumps::new(&jumps, 1.0 / 252.0);
        let steps = StepTable::new(0.05, &[0.2; 9], jumps.lam * jumps.kappa(), 1.0 / 252.0);
        let run = |portable: bool| {
            let (mut t, mut l, mut h) = (vec![0.0; 1003], vec![0.0; 1003], vec![0.0; 1003]);
            let out = ChunkOut {
                log_terminal: &mut t,
                log_low: &mut l,
                log_high: &mut h,
            };
            let j = sparse.as_ref();
            let sum = if portable {
                run_chunk_any::<true, true>(100.0, &steps, j, stream(3, 1), out)
            } else {
                run_chunk::<true, true>(100.0, &steps, j, stream(3, 1), out)
            };
            (sum, t, l, h)
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn extremes_include_the_start_and_terminal() {
        let steps = StepTable::new(0.05, &[0.2; 7], 0.0, 1.0 / 252.0);
        let (mut t, mut l, mut h) = (vec![0.0; 50], vec![0.0; 50], vec![0.0; 50]);
        let out = ChunkOut {
            log_terminal: &mut t,
            log_low: &mut l,
            log_high: &mut h,
        };
        let sum = run_chunk::<false, false>(100.0, &steps, None, stream(2, 0), out);
        assert!((sum - t.iter().map(|x| 100.0 * x.exp()).sum::<f64>()).abs() < 1e-9);
        for i in 0..50 {
            assert!(l[i] <= 0.0 && h[i] >= 0.0);
            let x_t = t[i];
            assert!(l[i] <= x_t + 1e-12 && x_t <= h[i] + 1e-12);
        }
    }
}
