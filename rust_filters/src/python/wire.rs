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

fn positive_price(name: &str, value: f64) -> PyResult<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be finite and > 0, got {value}"
        )))
    }
}

/// A range made at a bar close, encoded as schema-v1 JSON re-anchored at each tick's price.
///
/// `horizon >= 1`, `confidence` in (0, 1), `anchor` finite and > 0, `low <= high` (NaN
/// ends pass: the stream skips unusable templates); else a ValueError naming it.
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
        positive_price("anchor", anchor)?;
        if !(confidence > 0.0 && confidence < 1.0) {
            return Err(PyValueError::new_err(format!(
                "confidence must be in (0, 1), got {confidence}"
            )));
        }
        // NaN ends pass: the stream builds a template for every forecast and skips the
        // unusable ones (`RangeTemplate.usable`).
        if low > high {
            return Err(PyValueError::new_err(format!(
                "low must be <= high, got low={low}, high={high}"
            )));
        }
        Ok(PyRangeEncoder {
            inner: wire::RangeEncoder {
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
            },
        })
    }

    /// The message for a tick at ``price`` (finite, > 0), as JSON bytes.
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
        positive_price("price", price)?;
        Ok(PyBytes::new(
            py,
            &self.inner.encode(ts, seq, price, vix, tick_vol),
        ))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRangeEncoder>()?;
    m.add_function(wrap_pyfunction!(parse_tick_fast, m)?)?;
    m.add_function(wrap_pyfunction!(parse_chain_fast, m)?)?;
    Ok(())
}
