//! Python wrapper for `crate::tick_vol`: `TickVolatility`.
//!
//! A tick keeps the GIL unless the particle cloud is large: with the default 256 particles
//! it is a few microseconds of work, not worth the hand-off. Construction, snapshots and
//! restores (O(n), not per tick) always release it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};

use super::args::seed as seed_value;
use crate::tick_vol::{TickVolError, TickVolatility, TradingTime};

/// Particles from which a tick's work (~13 ns a particle) releases the GIL.
const DETACH_PARTICLES: usize = 4096;

fn value_error(e: TickVolError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// One symbol's tick filters: the UKF (stochastic-volatility model, drift 0) and a
/// bootstrap particle filter on the same daily SV model `(mu, phi, sigma)`, returns in
/// percent, stepped together by `update(ts_ns, price)` in trading time (`dt =
/// seconds / session_seconds`; a gap over `gap_seconds` counts as `gap_dt` days).
///
/// `update` returns the filtered volatility (annualised %, `(ukf, pf)`) or None before the
/// second tick. A tick the filters refuse, or one older than the last accepted tick,
/// changes nothing: `rejected` counts it and `last_error` says why. `resets` counts
/// divergence resets of either filter, `last_reset_reason` says which reset last and why. `snapshot()` / `TickVolatility.restore()` / pickle continue
/// bit-identically.
#[pyclass(name = "TickVolatility", module = "rust_filters._core")]
pub struct PyTickVolatility {
    inner: TickVolatility,
}

#[pymethods]
impl PyTickVolatility {
    #[new]
    #[pyo3(signature = (
        mu, phi, sigma, *, n_particles=256, seed=0, session_seconds, gap_seconds, gap_dt
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        mu: f64,
        phi: f64,
        sigma: f64,
        n_particles: i64,
        seed: i128,
        session_seconds: f64,
        gap_seconds: f64,
        gap_dt: f64,
    ) -> PyResult<Self> {
        let n = usize::try_from(n_particles)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| {
                PyValueError::new_err(format!("n_particles must be >= 1, got {n_particles}"))
            })?;
        let time = TradingTime {
            session_seconds,
            gap_seconds,
            gap_dt,
        };
        let seed = seed_value(seed)?;
        let inner = py
            .detach(|| TickVolatility::new(mu, phi, sigma, n, seed, time))
            .map_err(value_error)?;
        Ok(Self { inner })
    }

    /// Fold in one tick; returns `volatility()` after it.
    fn update(&mut self, py: Python<'_>, ts_ns: i64, price: f64) -> Option<(f64, f64)> {
        let inner = &mut self.inner;
        if inner.pf().n_particles() >= DETACH_PARTICLES {
            py.detach(|| inner.update(ts_ns, price))
        } else {
            inner.update(ts_ns, price)
        }
    }

    /// Filtered volatility, annualised % `(ukf, pf)`; None before the second tick.
    fn volatility(&self) -> Option<(f64, f64)> {
        self.inner.volatility()
    }

    /// Trading days between two ticks `seconds` apart.
    fn trading_dt(&self, seconds: f64) -> f64 {
        self.inner.trading_time().dt(seconds)
    }

    /// Ticks that stepped both filters.
    #[getter]
    fn ticks(&self) -> u64 {
        self.inner.ticks()
    }

    /// Ticks the filters refused.
    #[getter]
    fn rejected(&self) -> u64 {
        self.inner.rejected()
    }

    #[getter]
    fn last_error(&self) -> Option<String> {
        self.inner.last_error().map(str::to_owned)
    }

    /// Divergence resets of either filter.
    #[getter]
    fn resets(&self) -> u64 {
        self.inner.resets()
    }

    /// Why the filter that reset last did so (`ukf: ...` or `pf: ...`), or None.
    #[getter]
    fn last_reset_reason(&self) -> Option<String> {
        self.inner.last_reset_reason().map(str::to_owned)
    }

    /// The last accepted tick `(ts_ns, price)`.
    #[getter]
    fn last_tick(&self) -> Option<(i64, f64)> {
        self.inner.last_tick()
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let inner = &self.inner;
        PyBytes::new(py, &py.detach(|| inner.snapshot()))
    }

    #[classmethod]
    fn restore(_cls: &Bound<'_, PyType>, py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = py
            .detach(|| TickVolatility::restore(data))
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
        format!(
            "TickVolatility(ticks={}, rejected={}, resets={})",
            self.inner.ticks(),
            self.inner.rejected(),
            self.inner.resets()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTickVolatility>()
}
