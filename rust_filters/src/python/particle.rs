//! Python wrappers for `crate::particle`: `BootstrapPF` and `EKPF`.
//!
//! Both wrap one [`ParticleFilter`] (they differ only in the proposal), so one macro
//! writes both classes. Each method converts its arguments, releases the GIL for the
//! numerical work (anything O(n): construction, steps, quantiles, forecasts, snapshots,
//! restores, a prior redraw) and converts the result; every error is a `ValueError`.

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use super::args::{float_vector, seed as seed_value};
use crate::particle::{
    FilterConfig, ForecastSpec, LinearGaussianModel, Model, ParticleError, ParticleFilter,
    Proposal, SvModel, MAX_FORECAST_PATHS, MAX_PARTICLES,
};

/// `forecast`'s quantile levels when none are given.
const DEFAULT_LEVELS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

fn value_error(e: ParticleError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn at_least_one(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be >= 1, got {value}")))
}

/// A filter from the checked arguments; drawing the initial cloud is O(n), so it runs
/// with the GIL released.
fn build(
    py: Python<'_>,
    model: Model,
    proposal: Proposal,
    n_particles: i64,
    seed: i128,
    ess_threshold: f64,
    threads: Option<i64>,
) -> PyResult<ParticleFilter> {
    let config = FilterConfig {
        n_particles: at_least_one("n_particles", n_particles)?,
        seed: seed_value(seed)?,
        ess_threshold,
        threads: threads.map(|t| at_least_one("threads", t)).transpose()?,
    };
    py.detach(|| ParticleFilter::new(model, proposal, config))
        .map_err(value_error)
}

macro_rules! particle_filter_class {
    ($rust_name:ident, $py_name:literal, $proposal:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(module = "rust_filters._core", name = $py_name)]
        pub struct $rust_name {
            inner: ParticleFilter,
        }

        #[pymethods]
        impl $rust_name {
            /// A filter for the stochastic-volatility model (defaults: Pitt & Shephard).
            #[new]
            #[pyo3(signature = (
                        n_particles, *, mu=-1.02, phi=0.9702, sigma=0.178, seed=0,
                        ess_threshold=0.5, threads=None
                    ))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                py: Python<'_>,
                n_particles: i64,
                mu: f64,
                phi: f64,
                sigma: f64,
                seed: i128,
                ess_threshold: f64,
                threads: Option<i64>,
            ) -> PyResult<Self> {
                let model = Model::Sv(SvModel::new(mu, phi, sigma).map_err(value_error)?);
                let inner = build(py, model, $proposal, n_particles, seed, ess_threshold, threads)?;
                Ok(Self { inner })
            }

            /// A filter for the linear-Gaussian model x_t = c + phi x_{t-1} + sigma eta,
            /// y_t = x_t + tau eps (the one with an exact Kalman answer).
            #[classmethod]
            #[pyo3(signature = (
                        n_particles, *, c, phi, sigma, tau, seed=0, ess_threshold=0.5, threads=None
                    ))]
            #[allow(clippy::too_many_arguments)]
            fn linear_gaussian(
                _cls: &Bound<'_, pyo3::types::PyType>,
                py: Python<'_>,
                n_particles: i64,
                c: f64,
                phi: f64,
                sigma: f64,
                tau: f64,
                seed: i128,
                ess_threshold: f64,
                threads: Option<i64>,
            ) -> PyResult<Self> {
                let model = Model::LinearGaussian(
                    LinearGaussianModel::new(c, phi, sigma, tau).map_err(value_error)?,
                );
                let inner = build(py, model, $proposal, n_particles, seed, ess_threshold, threads)?;
                Ok(Self { inner })
            }

            /// Process one observation; returns its log-likelihood increment.
            #[pyo3(signature = (y, dt=1.0))]
            fn step(&mut self, py: Python<'_>, y: f64, dt: f64) -> PyResult<f64> {
                let inner = &mut self.inner;
                py.detach(|| inner.step(y, dt)).map_err(value_error)
            }

            /// Process a series (GIL released); returns the log-likelihood increments.
            #[pyo3(signature = (ys, dts=None))]
            fn filter<'py>(
                &mut self,
                py: Python<'py>,
                ys: &Bound<'py, PyAny>,
                dts: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyArray1<f64>>> {
                let ys = float_vector(ys, "ys")?;
                let dts = dts.map(|d| float_vector(d, "dts")).transpose()?;
                let inner = &mut self.inner;
                let out = py
                    .detach(|| inner.filter(&ys, dts.as_deref()))
                    .map_err(value_error)?;
                Ok(PyArray1::from_vec(py, out))
            }

            /// Total log-likelihood of the observations so far.
            #[getter]
            fn loglik(&self) -> f64 {
                self.inner.loglik()
            }

            /// The filtered mean of the state.
            fn mean(&self) -> f64 {
                self.inner.mean()
            }

            /// Filtered quantiles (weighted inverse CDF, as
            /// `numpy.quantile(x, q, weights=W, method="inverted_cdf")`).
            fn quantiles<'py>(
                &self,
                py: Python<'py>,
                levels: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyArray1<f64>>> {
                let levels = float_vector(levels, "levels")?;
                let inner = &self.inner;
                let q = py
                    .detach(|| inner.quantiles(&levels))
                    .map_err(value_error)?;
                Ok(PyArray1::from_vec(py, q))
            }

            /// `(particles, normalised weights)`, copies.
            fn particles<'py>(
                &self,
                py: Python<'py>,
            ) -> (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>) {
                let inner = &self.inner;
                let (particles, weights) = py.detach(|| (inner.particles(), inner.weights()));
                (
                    PyArray1::from_vec(py, particles),
                    PyArray1::from_vec(py, weights),
                )
            }

            /// Effective sample size 1 / sum W^2 of the current weights.
            #[getter]
            fn ess(&self) -> f64 {
                self.inner.ess()
            }

            #[getter]
            fn n_resamples(&self) -> u64 {
                self.inner.n_resamples()
            }

            /// How often the weights degenerated (all -inf/NaN) and the cloud was reset.
            #[getter]
            fn n_resets(&self) -> u64 {
                self.inner.n_resets()
            }

            /// Steps whose weights stayed degenerate (effective sample size after
            /// reweighting below 1 % of the particles, after the EKPF's Laplace redo, or all
            /// weights zero): a forecast then rests on a handful of particles.
            #[getter]
            fn n_degenerate(&self) -> u64 {
                self.inner.n_degenerate()
            }

            #[getter]
            fn last_reset_reason(&self) -> Option<String> {
                self.inner.last_reset_reason().map(str::to_owned)
            }

            /// Observations processed so far.
            #[getter]
            fn n_observations(&self) -> u64 {
                self.inner.t()
            }

            #[getter]
            fn n_particles(&self) -> usize {
                self.inner.n_particles()
            }

            #[getter]
            fn seed(&self) -> u64 {
                self.inner.seed()
            }

            #[getter]
            fn threads(&self) -> Option<usize> {
                self.inner.threads()
            }

            #[getter]
            fn ess_threshold(&self) -> f64 {
                self.inner.ess_threshold()
            }

            /// "sv" or "linear-gaussian".
            #[getter]
            fn model(&self) -> &'static str {
                self.inner.model().name()
            }

            /// The model's parameters by name.
            #[getter]
            fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                for (name, value) in self.inner.model().params() {
                    d.set_item(name, value)?;
                }
                Ok(d)
            }

            /// Replace parameters (None keeps one); names the model lacks are an error.
            /// Before the first observation the cloud is redrawn from the new prior (O(n),
            /// GIL released).
            #[pyo3(signature = (mu=None, phi=None, sigma=None, *, c=None, tau=None))]
            fn set_params(
                &mut self,
                py: Python<'_>,
                mu: Option<f64>,
                phi: Option<f64>,
                sigma: Option<f64>,
                c: Option<f64>,
                tau: Option<f64>,
            ) -> PyResult<()> {
                let changes: Vec<(&str, f64)> = [
                    ("mu", mu),
                    ("phi", phi),
                    ("sigma", sigma),
                    ("c", c),
                    ("tau", tau),
                ]
                .into_iter()
                .filter_map(|(n, v)| v.map(|v| (n, v)))
                .collect();
                let inner = &mut self.inner;
                py.detach(|| inner.set_params(&changes))
                    .map_err(value_error)
            }

            /// Propagate the cloud `steps` ahead; a dict of arrays `price`, `path_min`,
            /// `path_max` (quantiles at `levels`), `levels`, and `path_range` = [lo, hi]
            /// when `path_confidence` is given. Never changes the filter.
            #[pyo3(signature = (
                        steps, *, price, levels=None, n_paths=None,
                        drift=0.0, return_scale=0.01, dt=1.0, bridge=true, seed=None,
                        path_confidence=None
                    ))]
            #[allow(clippy::too_many_arguments)]
            fn forecast<'py>(
                &self,
                py: Python<'py>,
                steps: i64,
                price: f64,
                levels: Option<&Bound<'py, PyAny>>,
                n_paths: Option<i64>,
                drift: f64,
                return_scale: f64,
                dt: f64,
                bridge: bool,
                seed: Option<i128>,
                path_confidence: Option<f64>,
            ) -> PyResult<Bound<'py, PyDict>> {
                let levels = match levels {
                    Some(l) => float_vector(l, "levels")?,
                    None => DEFAULT_LEVELS.to_vec(),
                };
                let spec = ForecastSpec {
                    steps: at_least_one("steps", steps)?,
                    dt,
                    price,
                    levels: levels.clone(),
                    n_paths: n_paths.map(|n| at_least_one("n_paths", n)).transpose()?,
                    drift,
                    return_scale,
                    bridge,
                    seed: seed.map(seed_value).transpose()?,
                    path_confidence,
                };
                let inner = &self.inner;
                let fc = py.detach(|| inner.forecast(&spec)).map_err(value_error)?;
                let d = PyDict::new(py);
                d.set_item("levels", PyArray1::from_vec(py, levels))?;
                d.set_item("price", PyArray1::from_vec(py, fc.price))?;
                d.set_item("path_min", PyArray1::from_vec(py, fc.path_min))?;
                d.set_item("path_max", PyArray1::from_vec(py, fc.path_max))?;
                if let Some((lo, hi, _)) = fc.path_range {
                    d.set_item("path_range", PyArray1::from_vec(py, vec![lo, hi]))?;
                }
                Ok(d)
            }

            /// The whole filter as bytes; `restore` continues bit-identically.
            fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                let inner = &self.inner;
                PyBytes::new(py, &py.detach(|| inner.snapshot()))
            }

            #[classmethod]
            fn restore(
                _cls: &Bound<'_, pyo3::types::PyType>,
                py: Python<'_>,
                data: &[u8],
            ) -> PyResult<Self> {
                let inner = py
                    .detach(|| ParticleFilter::restore(data, $proposal))
                    .map_err(value_error)?;
                Ok(Self { inner })
            }

            fn __reduce__<'py>(
                slf: &Bound<'py, Self>,
                py: Python<'py>,
            ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
                let restore = slf.get_type().getattr("restore")?;
                let bytes = slf.borrow().snapshot(py);
                Ok((restore, PyTuple::new(py, [bytes])?))
            }

            fn __repr__(&self) -> String {
                let params: Vec<String> = self
                    .inner
                    .model()
                    .params()
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                format!(
                    "{}({}, model={}, {}, n_observations={})",
                    $py_name,
                    self.inner.n_particles(),
                    self.inner.model().name(),
                    params.join(", "),
                    self.inner.t()
                )
            }
        }
    };
}

particle_filter_class!(
    PyBootstrapPf,
    "BootstrapPF",
    Proposal::Bootstrap,
    "Bootstrap particle filter (Gordon, Salmond & Smith 1993) with systematic resampling \
     at an ESS threshold; Δt-aware; results independent of the thread count."
);
particle_filter_class!(
    PyEkpf,
    "EKPF",
    Proposal::Ekf,
    "Extended-Kalman particle filter (van der Merwe, Doucet, de Freitas & Wan 2000): each \
     particle draws from the EKF update of its own prediction; Δt-aware; results \
     independent of the thread count."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBootstrapPf>()?;
    m.add_class::<PyEkpf>()?;
    m.add("MAX_PARTICLES", MAX_PARTICLES)?;
    m.add("MAX_FORECAST_PATHS", MAX_FORECAST_PATHS)?;
    m.add("MAX_THREADS", crate::threads::MAX_THREADS)?;
    Ok(())
}
