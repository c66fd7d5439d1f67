//! Python wrappers for `crate::monte_carlo`: argument conversion and checks, the GIL
//! released around the simulation, results as NumPy arrays.

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::args::{float_vector, seed as seed_value};
use crate::monte_carlo::{
    simulate, InvalidArgument, Jumps, Request, Simulation, Summary, Volatility, DEFAULT_LEVELS,
    MAX_PATHS, MAX_STEPS,
};

fn value_error(e: InvalidArgument) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn count(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be >= 1, got {value}")))
}

/// Quantiles of a Monte Carlo simulation (see `simulate_gbm`), immutable.
#[pyclass(frozen, name = "SimulationSummary", module = "rust_filters._core")]
pub struct PySimulationSummary {
    inner: Summary,
}

fn array<'py>(py: Python<'py>, v: &[f64]) -> Bound<'py, PyArray1<f64>> {
    PyArray1::from_slice(py, v)
}

#[pymethods]
impl PySimulationSummary {
    /// The quantile levels, in the order given.
    #[getter]
    fn levels<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        array(py, &self.inner.levels)
    }
    /// Quantiles of the terminal price S_T.
    #[getter]
    fn terminal<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        array(py, &self.inner.terminal)
    }
    /// Quantiles of each path's minimum price (S_0 included).
    #[getter]
    fn path_min<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        array(py, &self.inner.path_min)
    }
    /// Quantiles of each path's maximum price (S_0 included).
    #[getter]
    fn path_max<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        array(py, &self.inner.path_max)
    }
    #[getter]
    fn mean_terminal(&self) -> f64 {
        self.inner.mean_terminal
    }
    #[getter]
    fn n_paths(&self) -> usize {
        self.inner.n_paths
    }
    #[getter]
    fn n_steps(&self) -> usize {
        self.inner.n_steps
    }
    /// The requested path confidence, or None.
    #[getter]
    fn path_confidence(&self) -> Option<f64> {
        self.inner.path_range.map(|r| r.confidence)
    }
    /// Lower end of the joint path range (quantile `tail_q` of the path minima), or None.
    #[getter]
    fn path_low(&self) -> Option<f64> {
        self.inner.path_range.map(|r| r.low)
    }
    /// Upper end of the joint path range (quantile `1 - tail_q` of the path maxima), or None.
    #[getter]
    fn path_high(&self) -> Option<f64> {
        self.inner.path_range.map(|r| r.high)
    }
    /// Tail probability used for both ends of the path range, or None.
    #[getter]
    fn tail_q(&self) -> Option<f64> {
        self.inner.path_range.map(|r| r.tail_q)
    }
    /// Share of simulated paths inside [path_low, path_high] (>= path_confidence), or None.
    #[getter]
    fn path_coverage(&self) -> Option<f64> {
        self.inner.path_range.map(|r| r.coverage)
    }
    /// Per-path terminal prices in path order (with keep_samples=True), else None.
    #[getter]
    fn samples_terminal<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.samples.as_ref().map(|s| array(py, &s.terminal))
    }
    /// Per-path minimum prices in path order (with keep_samples=True), else None.
    #[getter]
    fn samples_min<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.samples.as_ref().map(|s| array(py, &s.low))
    }
    /// Per-path maximum prices in path order (with keep_samples=True), else None.
    #[getter]
    fn samples_max<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.samples.as_ref().map(|s| array(py, &s.high))
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        let range = s.path_range.map_or(String::new(), |r| {
            format!(
                ", path_range=({:.6}, {:.6}) at {} (tail_q={:.6})",
                r.low, r.high, r.confidence, r.tail_q
            )
        });
        format!(
            "SimulationSummary(n_paths={}, n_steps={}, levels={:?}, terminal={:?}, \
             mean_terminal={:.6}{range})",
            s.n_paths, s.n_steps, s.levels, s.terminal, s.mean_terminal
        )
    }
}

/// Options shared by both simulations.
struct Common<'py> {
    n_paths: i64,
    n_steps: i64,
    dt: f64,
    levels: Option<Bound<'py, PyAny>>,
    sigma_path: Option<Bound<'py, PyAny>>,
    seed: i128,
    threads: Option<i64>,
    bridge: bool,
    path_confidence: Option<f64>,
    keep_samples: bool,
}

fn run(
    py: Python<'_>,
    s0: f64,
    mu: f64,
    sigma: f64,
    jumps: Option<Jumps>,
    c: Common<'_>,
) -> PyResult<PySimulationSummary> {
    let volatility = match &c.sigma_path {
        Some(path) => Volatility::PerStep(float_vector(path, "sigma_path")?),
        None => Volatility::Constant(sigma),
    };
    let sim = Simulation {
        s0,
        mu,
        volatility,
        jumps,
        n_paths: count("n_paths", c.n_paths)?,
        n_steps: count("n_steps", c.n_steps)?,
        dt: c.dt,
        seed: seed_value(c.seed)?,
        bridge: c.bridge,
    };
    let request = Request {
        levels: match &c.levels {
            Some(l) => float_vector(l, "levels")?,
            None => DEFAULT_LEVELS.to_vec(),
        },
        path_confidence: c.path_confidence,
        keep_samples: c.keep_samples,
    };
    let threads = c.threads.map(|t| count("threads", t)).transpose()?;
    let inner = py
        .detach(|| simulate(&sim, &request, threads))
        .map_err(value_error)?;
    Ok(PySimulationSummary { inner })
}

/// Geometric Brownian motion, n_paths × n_steps, summarised without storing the paths.
///
/// log S_n = log S_{n-1} + (mu - sigma_n^2/2) dt + sigma_n sqrt(dt) Z_n, n = 1..n_steps,
/// with sigma_n = sigma, or sigma_path[n-1] when a per-step volatility path is given.
///
/// Returns quantiles (numpy's linear rule) at `levels` (default 0.05, 0.25, 0.5, 0.75,
/// 0.95) of the terminal price and of each path's minimum and maximum (S_0 included),
/// and the mean terminal price. `path_confidence` adds the joint path range
/// (path_low, path_high, tail_q): equal tail probability for minimum and maximum, the
/// narrowest range that holds at least that share of whole paths. `bridge=True` adds
/// within-step extremes from the exact Brownian-bridge laws (intraday low/high).
/// `keep_samples=True` keeps the per-path terminal/min/max prices. Paths run in
/// fixed chunks of 1024 with their own random streams from `seed`, so the result is
/// identical for any `threads` (None: all cores). The GIL is released while it runs.
/// Invalid input raises ValueError naming the argument.
#[pyfunction]
#[pyo3(signature = (
    s0, mu, sigma, n_paths, n_steps, *, dt = 1.0 / 252.0, levels = None, sigma_path = None,
    seed = 0, threads = None, bridge = false, path_confidence = None, keep_samples = false
))]
#[allow(clippy::too_many_arguments)]
fn simulate_gbm<'py>(
    py: Python<'py>,
    s0: f64,
    mu: f64,
    sigma: f64,
    n_paths: i64,
    n_steps: i64,
    dt: f64,
    levels: Option<Bound<'py, PyAny>>,
    sigma_path: Option<Bound<'py, PyAny>>,
    seed: i128,
    threads: Option<i64>,
    bridge: bool,
    path_confidence: Option<f64>,
    keep_samples: bool,
) -> PyResult<PySimulationSummary> {
    let common = Common {
        n_paths,
        n_steps,
        dt,
        levels,
        sigma_path,
        seed,
        threads,
        bridge,
        path_confidence,
        keep_samples,
    };
    run(py, s0, mu, sigma, None, common)
}

/// Merton jump diffusion, n_paths × n_steps, summarised without storing the paths.
///
/// log S_n = log S_{n-1} + (mu - sigma_n^2/2 - lam kappa) dt + sigma_n sqrt(dt) Z_n
///           + mu_j K_n + sigma_j sqrt(K_n) W_n,   K_n ~ Poisson(lam dt),
/// kappa = exp(mu_j + sigma_j^2/2) - 1 (compensated drift: mu stays the expected return);
/// lam in jumps per year, mu_j and sigma_j the mean and s.d. of the log jump size.
/// Jumps are drawn sparsely (geometric gaps between jump steps), exact in distribution.
/// Other arguments and the result as for `simulate_gbm`; with `bridge=True` a jump is
/// placed at the end of its step.
#[pyfunction]
#[pyo3(signature = (
    s0, mu, sigma, lam, mu_j, sigma_j, n_paths, n_steps, *, dt = 1.0 / 252.0, levels = None,
    sigma_path = None, seed = 0, threads = None, bridge = false, path_confidence = None,
    keep_samples = false
))]
#[allow(clippy::too_many_arguments)]
fn simulate_merton<'py>(
    py: Python<'py>,
    s0: f64,
    mu: f64,
    sigma: f64,
    lam: f64,
    mu_j: f64,
    sigma_j: f64,
    n_paths: i64,
    n_steps: i64,
    dt: f64,
    levels: Option<Bound<'py, PyAny>>,
    sigma_path: Option<Bound<'py, PyAny>>,
    seed: i128,
    threads: Option<i64>,
    bridge: bool,
    path_confidence: Option<f64>,
    keep_samples: bool,
) -> PyResult<PySimulationSummary> {
    let common = Common {
        n_paths,
        n_steps,
        dt,
        levels,
        sigma_path,
        seed,
        threads,
        bridge,
        path_confidence,
        keep_samples,
    };
    let jumps = Jumps { lam, mu_j, sigma_j };
    run(py, s0, mu, sigma, Some(jumps), common)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySimulationSummary>()?;
    m.add("MAX_PATHS", MAX_PATHS)?;
    m.add("MAX_STEPS", MAX_STEPS)?;
    m.add_function(wrap_pyfunction!(simulate_gbm, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_merton, m)?)?;
    Ok(())
}
