//! What to simulate and what to return, and the checks that reject bad input before any work.

use std::fmt;

use rand_distr::Poisson;

/// The most paths one simulation takes: the kernel keeps 3 doubles a path (6 with
/// `keep_samples`), about 0.8 GiB (1.6 GiB) at this bound, far beyond the workloads'
/// million; a clear error instead of an allocation that aborts the process.
pub const MAX_PATHS: usize = 1 << 25;

/// The most time steps one simulation takes: the per-step tables hold a few doubles a
/// step (128 MiB each at this bound).
pub const MAX_STEPS: usize = 1 << 24;

/// Diffusion volatility (annualised): one value, or one value per time step (e.g. the
/// variance path of a volatility model), in which case it overrides the constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Volatility {
    Constant(f64),
    PerStep(Vec<f64>),
}

/// Merton (1976) jumps: Poisson arrivals at rate `lam` per year, log jump sizes
/// `N(mu_j, sigma_j^2)`; the drift is compensated by `lam * kappa`,
/// `kappa = exp(mu_j + sigma_j^2 / 2) - 1`, so `mu` stays the expected return.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jumps {
    pub lam: f64,
    pub mu_j: f64,
    pub sigma_j: f64,
}

impl Jumps {
    /// Mean relative jump size `E[e^Y] - 1`.
    pub fn kappa(&self) -> f64 {
        (self.mu_j + 0.5 * self.sigma_j * self.sigma_j).exp_m1()
    }
}

/// One simulation: GBM when `jumps` is `None`, Merton jump diffusion otherwise.
///
/// `log S_n = log S_{n-1} + (mu - sigma_n^2/2 - lam kappa) dt + sigma_n sqrt(dt) Z_n
///            + mu_j K_n + sigma_j sqrt(K_n) W_n`,  `K_n ~ Poisson(lam dt)`, `n = 1..n_steps`.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    pub s0: f64,
    pub mu: f64,
    pub volatility: Volatility,
    pub jumps: Option<Jumps>,
    pub n_paths: usize,
    pub n_steps: usize,
    /// Step length in years.
    pub dt: f64,
    pub seed: u64,
    /// Add each step's extremes from the exact Brownian-bridge laws (intraday low/high).
    pub bridge: bool,
}

/// What to compute from the simulated paths.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Quantile levels in [0, 1] (numpy's linear rule).
    pub levels: Vec<f64>,
    /// If set, the joint path range holding this share of whole paths, in (0, 1) (as the
    /// particle filters' forecast: 1 would be the simulated extremes, not a quantile).
    pub path_confidence: Option<f64>,
    /// Keep the per-path terminal / min / max prices (3 N doubles) in the summary.
    pub keep_samples: bool,
}

/// The quantile levels used when none are given.
pub const DEFAULT_LEVELS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

impl Default for Request {
    fn default() -> Self {
        Request {
            levels: DEFAULT_LEVELS.to_vec(),
            path_confidence: None,
            keep_samples: false,
        }
    }
}

/// A rejected argument: which one, and what would be right.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidArgument {
    pub argument: String,
    pub message: String,
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.argument, self.message)
    }
}

impl std::error::Error for InvalidArgument {}

fn invalid(argument: impl Into<String>, message: String) -> InvalidArgument {
    InvalidArgument {
        argument: argument.into(),
        message,
    }
}

fn finite(name: &str, value: f64) -> Result<(), InvalidArgument> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(invalid(name, format!("must be finite, got {value}")))
    }
}

fn positive(name: &str, value: f64) -> Result<(), InvalidArgument> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("must be finite and > 0, got {value}"),
        ))
    }
}

fn non_negative(name: &str, value: f64) -> Result<(), InvalidArgument> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("must be finite and >= 0, got {value}"),
        ))
    }
}

impl Simulation {
    /// Rejects NaN/inf, non-positive `s0`/`dt`, negative volatilities or jump parameters,
    /// zero paths or steps, and a per-step volatility of the wrong length.
    pub fn validate(&self) -> Result<(), InvalidArgument> {
        positive("s0", self.s0)?;
        finite("mu", self.mu)?;
        positive("dt", self.dt)?;
        for (name, value, max, max_name) in [
            ("n_paths", self.n_paths, MAX_PATHS, "MAX_PATHS"),
            ("n_steps", self.n_steps, MAX_STEPS, "MAX_STEPS"),
        ] {
            if !(1..=max).contains(&value) {
                return Err(invalid(
                    name,
                    format!("must be in [1, {max}] ({max_name}), got {value}"),
                ));
            }
        }
        // Huge but finite values could still overflow the per-step drift to inf / NaN.
        let step_finite = |name: &str, sigma: f64| {
            if ((self.mu - 0.5 * sigma * sigma) * self.dt).is_finite() {
                Ok(())
            } else {
                Err(invalid(
                    name,
                    format!(
                        "is too large: (mu - sigma^2/2) dt overflows (sigma = {sigma}, mu = {}, dt = {})",
                        self.mu, self.dt
                    ),
                ))
            }
        };
        match &self.volatility {
            Volatility::Constant(sigma) => {
                non_negative("sigma", *sigma)?;
                step_finite("sigma", *sigma)?;
            }
            Volatility::PerStep(path) => {
                if path.len() != self.n_steps {
                    return Err(invalid(
                        "sigma_path",
                        format!(
                            "must have one volatility per step (length n_steps = {}), got length {}",
                            self.n_steps,
                            path.len()
                        ),
                    ));
                }
                for (i, &s) in path.iter().enumerate() {
                    let name = format!("sigma_path[{i}]");
                    non_negative(&name, s)?;
                    step_finite(&name, s)?;
                }
            }
        }
        if let Some(j) = &self.jumps {
            non_negative("lam", j.lam)?;
            // The jump count of a step is Poisson(lam dt): rand_distr's sampler takes means
            // up to `Poisson::MAX_LAMBDA` (about 1.8e19; its construction panicked beyond).
            let max_lam = Poisson::<f64>::MAX_LAMBDA / self.dt;
            if j.lam * self.dt > Poisson::<f64>::MAX_LAMBDA {
                return Err(invalid(
                    "lam",
                    format!(
                        "must be <= {max_lam:e} (Poisson::MAX_LAMBDA / dt: the mean jump count \
                         of a step, lam dt, is at most {:e}), got {}",
                        Poisson::<f64>::MAX_LAMBDA,
                        j.lam
                    ),
                ));
            }
            finite("mu_j", j.mu_j)?;
            non_negative("sigma_j", j.sigma_j)?;
            if !j.kappa().is_finite() || !(j.lam * j.kappa() * self.dt).is_finite() {
                return Err(invalid(
                    "mu_j, sigma_j",
                    format!(
                        "give an infinite jump compensator exp(mu_j + sigma_j^2/2) - 1 \
                         (mu_j = {}, sigma_j = {})",
                        j.mu_j, j.sigma_j
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Request {
    /// Rejects an empty level list, levels outside [0, 1] (or NaN), and a path confidence
    /// outside (0, 1).
    pub fn validate(&self) -> Result<(), InvalidArgument> {
        if self.levels.is_empty() {
            return Err(invalid("levels", "must hold at least one level".into()));
        }
        for (i, &q) in self.levels.iter().enumerate() {
            if !(0.0..=1.0).contains(&q) {
                return Err(invalid(
                    format!("levels[{i}]"),
                    format!("must be in [0, 1], got {q}"),
                ));
            }
        }
        if let Some(c) = self.path_confidence {
            if !(c > 0.0 && c < 1.0) {
                return Err(invalid(
                    "path_confidence",
                    format!("must be in (0, 1), got {c}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn gbm() -> Simulation {
        Simulation {
            s0: 100.0,
            mu: 0.05,
            volatility: Volatility::Constant(0.2),
            jumps: None,
            n_paths: 10,
            n_steps: 5,
            dt: 1.0 / 252.0,
            seed: 0,
            bridge: false,
        }
    }

    fn rejected_argument(sim: Simulation) -> String {
        sim.validate().unwrap_err().argument
    }

    #[test]
    fn valid_spec_passes() {
        assert!(gbm().validate().is_ok());
        assert!(Request::default().validate().is_ok());
    }

    #[test]
    fn names_the_bad_argument() {
        assert_eq!(
            rejected_argument(Simulation {
                s0: f64::NAN,
                ..gbm()
            }),
            "s0"
        );
        assert_eq!(
            rejected_argument(Simulation {
                mu: f64::INFINITY,
                ..gbm()
            }),
            "mu"
        );
        assert_eq!(
            rejected_argument(Simulation {
                volatility: Volatility::Constant(-0.1),
                ..gbm()
            }),
            "sigma"
        );
        assert_eq!(
            rejected_argument(Simulation {
                n_paths: 0,
                ..gbm()
            }),
            "n_paths"
        );
        assert_eq!(
            rejected_argument(Simulation {
                n_steps: 0,
                ..gbm()
            }),
            "n_steps"
        );
        assert_eq!(rejected_argument(Simulation { dt: 0.0, ..gbm() }), "dt");
        for n_paths in [MAX_PATHS + 1, usize::MAX] {
            assert_eq!(
                rejected_argument(Simulation { n_paths, ..gbm() }),
                "n_paths"
            );
        }
        for n_steps in [MAX_STEPS + 1, usize::MAX] {
            assert_eq!(
                rejected_argument(Simulation { n_steps, ..gbm() }),
                "n_steps"
            );
        }
        assert_eq!(
            rejected_argument(Simulation {
                volatility: Volatility::PerStep(vec![0.2; 4]),
                ..gbm()
            }),
            "sigma_path"
        );
        assert_eq!(
            rejected_argument(Simulation {
                volatility: Volatility::PerStep(vec![0.2, 0.2, f64::NAN, 0.2, 0.2]),
                ..gbm()
            }),
            "sigma_path[2]"
        );
        let bad_jumps = Jumps {
            lam: -1.0,
            mu_j: 0.0,
            sigma_j: 0.1,
        };
        assert_eq!(
            rejected_argument(Simulation {
                jumps: Some(bad_jumps),
                ..gbm()
            }),
            "lam"
        );
        // lam dt beyond what the Poisson sampler takes (its construction panicked); with
        // no jump size the compensator stays finite, so only this check catches 1e300.
        for (lam, mu_j, sigma_j) in [(1e22, -0.05, 0.1), (1e300, 0.0, 0.0)] {
            let jumps = Jumps { lam, mu_j, sigma_j };
            assert_eq!(
                rejected_argument(Simulation {
                    jumps: Some(jumps),
                    ..gbm()
                }),
                "lam"
            );
        }
    }

    #[test]
    fn rejects_bad_levels_and_confidence() {
        for levels in [vec![], vec![0.5, 1.5], vec![f64::NAN], vec![-0.01]] {
            let r = Request {
                levels,
                ..Request::default()
            };
            assert!(r.validate().unwrap_err().argument.starts_with("levels"));
        }
        for c in [0.0, 1.0, 1.1, f64::NAN] {
            let r = Request {
                path_confidence: Some(c),
                ..Request::default()
            };
            assert_eq!(r.validate().unwrap_err().argument, "path_confidence");
        }
    }
}
