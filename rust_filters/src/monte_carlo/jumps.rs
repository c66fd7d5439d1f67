//! Sparse sampling of the Merton jump term.
//!
//! With `lam dt` around 0.004 almost every step has no jump, so instead of one Poisson
//! draw per step we skip straight to the next step that has one. Within a chunk the
//! path-steps are visited in a fixed order (path by path, step by step) and the events
//! `K_n > 0` are i.i.d. Bernoulli(p), `p = 1 - exp(-lam dt)`, so the number of jump-free
//! path-steps before the next jump is Geometric(p) whatever happened before (memoryless),
//! also across path boundaries. `floor(E / (lam dt))` with `E ~ Exp(1)` has exactly that
//! law: `P(floor(E/m) >= k) = exp(-k m) = (1 - p)^k`. At a jump step `K_n` is drawn from
//! the Poisson law conditioned on `K_n >= 1` and the summed log jump size from
//! `N(K mu_j, K sigma_j^2)`. The result is exact in distribution, and costs one
//! exponential, one count and one normal per jump instead of a Poisson draw per step.

use rand::RngExt;
use rand_distr::{Distribution, Exp1, Poisson, StandardNormal};

use super::spec::Jumps;
use crate::rng::StreamRng;

/// Below this mean the zero-truncated Poisson is drawn by inversion of a small table;
/// above it by rejection of zeros from `rand_distr::Poisson`, which then accepts with
/// probability `1 - exp(-m) >= 0.63`.
const INVERSION_MAX_MEAN: f64 = 1.0;

/// `K ~ Poisson(m)` conditioned on `K >= 1`.
#[derive(Clone, Debug)]
pub(crate) enum TruncatedPoisson {
    /// `cdf[k-1] = P(K <= k | K >= 1)`, the last entry forced to +inf (the tail beyond
    /// is below 1e-17, under the resolution of a 53-bit uniform).
    Inversion {
        cdf: Vec<f64>,
    },
    Rejection {
        poisson: Poisson<f64>,
    },
}

impl TruncatedPoisson {
    /// `m` must be finite and > 0.
    pub(crate) fn new(m: f64) -> Self {
        if m < INVERSION_MAX_MEAN {
            // P(K = k | K >= 1) = e^-m m^k / k! / (1 - e^-m); -expm1(-m) keeps the
            // normaliser accurate for tiny m.
            let norm = -(-m).exp_m1();
            let mut pk = (-m).exp() * m / norm;
            let mut acc = pk;
            let mut cdf = vec![acc];
            let mut k = 1.0;
            while 1.0 - acc > 1e-17 && cdf.len() < 64 {
                k += 1.0;
                pk *= m / k;
                acc += pk;
                cdf.push(acc);
            }
            *cdf.last_mut().expect("cdf has one entry at least") = f64::INFINITY;
            TruncatedPoisson::Inversion { cdf }
        } else {
            TruncatedPoisson::Rejection {
                poisson: Poisson::new(m).expect("Poisson mean validated finite and > 0"),
            }
        }
    }

    pub(crate) fn sample(&self, rng: &mut StreamRng) -> u64 {
        match self {
            TruncatedPoisson::Inversion { cdf } => {
                let u: f64 = rng.random();
                cdf.iter().position(|&c| u < c).expect("last entry is +inf") as u64 + 1
            }
            TruncatedPoisson::Rejection { poisson } => loop {
                let k = poisson.sample(rng);
                if k >= 1.0 {
                    return k as u64;
                }
            },
        }
    }
}

/// The jump term of one step, drawn only where a jump happens.
#[derive(Clone, Debug)]
pub(crate) struct SparseJumps {
    /// `lam dt`, the Poisson mean per step.
    mean_per_step: f64,
    mu_j: f64,
    sigma_j: f64,
    count: TruncatedPoisson,
}

impl SparseJumps {
    /// `None` when `lam dt == 0` (no jumps can happen: plain diffusion).
    pub(crate) fn new(jumps: &Jumps, dt: f64) -> Option<Self> {
        let m = jumps.lam * dt;
        (m > 0.0).then(|| SparseJumps {
            mean_per_step: m,
            mu_j: jumps.mu_j,
            sigma_j: jumps.sigma_j,
            count: TruncatedPoisson::new(m),
        })
    }

    /// Jump-free path-steps before the next jump (saturates at `u64::MAX`).
    #[inline]
    pub(crate) fn gap(&self, rng: &mut StreamRng) -> u64 {
        let e: f64 = Exp1.sample(rng);
        // `as` saturates; floor for non-negative values.
        (e / self.mean_per_step) as u64
    }

    /// Summed log size of the jumps of one step that has at least one.
    #[inline]
    pub(crate) fn log_jump(&self, rng: &mut StreamRng) -> f64 {
        let k = self.count.sample(rng) as f64;
        let w: f64 = StandardNormal.sample(rng);
        self.mu_j * k + self.sigma_j * k.sqrt() * w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn poisson_pmf(m: f64, k: u64) -> f64 {
        let mut p = (-m).exp();
        for j in 1..=k {
            p *= m / j as f64;
        }
        p
    }

    /// Empirical frequencies of K = 1, 2, 3 against the truncated pmf, within 5 binomial
    /// standard errors sqrt(p (1 - p) / n), for both samplers.
    #[test]
    fn truncated_poisson_matches_pmf() {
        for m in [0.004, 0.7, 1.5, 4.0] {
            let sampler = TruncatedPoisson::new(m);
            let mut rng = stream(3, 0);
            let n = 200_000;
            let mut counts = [0u64; 4];
            for _ in 0..n {
                let k = sampler.sample(&mut rng);
                assert!(k >= 1);
                if k <= 3 {
                    counts[k as usize] += 1;
                }
            }
            let norm = 1.0 - (-m).exp();
            for k in 1..=3u64 {
                let p = poisson_pmf(m, k) / norm;
                let got = counts[k as usize] as f64 / n as f64;
                let se = (p * (1.0 - p) / n as f64).sqrt();
                assert!(
                    (got - p).abs() <= 5.0 * se + 1e-12,
                    "m={m} k={k}: {got} vs {p}"
                );
            }
        }
    }

    /// Mean gap against the geometric mean (1 - p) / p, within 5 standard errors
    /// sqrt((1 - p) / p^2 / n).
    #[test]
    fn gaps_are_geometric() {
        let jumps = Jumps {
            lam: 1.0,
            mu_j: -0.05,
            sigma_j: 0.1,
        };
        let sparse = SparseJumps::new(&jumps, 1.0 / 252.0).expect("lam > 0");
        let p = 1.0 - (-1.0f64 / 252.0).exp();
        let mut rng = stream(5, 0);
        let n = 100_000;
        let mean = (0..n).map(|_| sparse.gap(&mut rng) as f64).sum::<f64>() / n as f64;
        let expected = (1.0 - p) / p;
        let se = ((1.0 - p) / (p * p) / n as f64).sqrt();
        assert!((mean - expected).abs() < 5.0 * se, "{mean} vs {expected}");
    }

    #[test]
    fn zero_intensity_means_no_jumps() {
        let jumps = Jumps {
            lam: 0.0,
            mu_j: -0.05,
            sigma_j: 0.1,
        };
        assert!(SparseJumps::new(&jumps, 1.0 / 252.0).is_none());
    }
}
