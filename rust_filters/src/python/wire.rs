//! `parse_tick_fast`, `parse_chain_fast` and `RangeEncoder`: the stream's per-event wire work in one call each.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::wire::{self, ChainFields, MemberPart, TickFields};

/// The tick in ``raw`` as ``(symbol, ts, price, size, bid, ask)`` if it is a well-formed
/// tick message, else ``None`` (the Python parser then decides and says why).
#[pyfunction]
fn parse_tick_fast(raw: &[u8]) -> Option<TickFields> {
    wire::parse_tick(raw)
}

/// The chain in ``raw`` as ``(symbol, ts, underlying_price, quotes)`` with each quote
/// ``(expiry, strike, right, iv, delta, gamma, vega, bid, ask, volume, open_interest)``, if
/// it is a well-formed option-chain message, else ``None``.
#[pyfunction]
fn parse_chain_fast(raw: &[u8]) -> Option<ChainFields> {
    wire::parse_chain(raw)
}

/// A range made at a bar close, encoded as schema-v1 JSON re-anchored at each tick's price.
///
/// Every message it writes follows schema v1 (`stream.ranges.validate_range`): a range or
/// a tick that would break it is a ValueError naming the field (`wire::RangeEncoder`).
#[pyclass(frozen, name = "RangeEncoder", module = "rust_filters._core")]
pub struct PyRangeEncoder {
    inner: wire::RangeEncoder,
}

#[pymethods]
impl PyRangeEncoder {
    #[new]
    #[pyo3(signature = (
        symbol, horizon, confidence, anchor, low, high, path_low, path_high, center, models,
        regime
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        symbol: String,
        horizon: i64,
        confidence: f64,
        anchor: f64,
        low: f64,
        high: f64,
        path_low: Option<f64>,
        path_high: Option<f64>,
        center: f64,
        models: Vec<MemberPart>,
        regime: String,
    ) -> PyResult<Self> {
        let horizon = u32::try_from(horizon)
            .ok()
            .filter(|&h| h >= 1)
            .ok_or_else(|| {
                PyValueError::new_err(format!("horizon must be in [1, 2**32), got {horizon}"))
            })?;
        let inner = wire::RangeEncoder {
            symbol,
            horizon,
            confidence,
            anchor,
            low,
            high,
            path_low,
            path_high,
            center,
            models,
            regime,
        };
        inner.validate().map_err(PyValueError::new_err)?;
        Ok(PyRangeEncoder { inner })
    }

    /// The message for a tick at ``price`` (finite, > 0), as JSON bytes; ``ts`` and ``seq``
    /// >= 1, ``vix`` and both ``tick_vol`` values finite and > 0 (or None).
    #[pyo3(signature = (ts, seq, price, vix = None, tick_vol = None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        ts: i64,
        seq: u64,
        price: f64,
        vix: Option<f64>,
        tick_vol: Option<(f64, f64)>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self
            .inner
            .encode(ts, seq, price, vix, tick_vol)
            .map_err(PyValueError::new_err)?;
        Ok(PyBytes::new(py, &bytes))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRangeEncoder>()?;
    m.add_function(wrap_pyfunction!(parse_tick_fast, m)?)?;
    m.add_function(wrap_pyfunction!(parse_chain_fast, m)?)?;
    Ok(())
}
