//! Python wrappers for `crate::ukf`: the `UKF` class and its model classes.
//!
//! `UKF` holds one monomorphised `Ukf<M>` per built-in model (an enum, dispatched once
//! per call), so the batch loop and the per-step path run without dynamic dispatch.
//! `PythonModel` is the slow path: the filter calls back into Python for every sigma
//! point.

// Python-facing return tuples (arrays, `__reduce__` pairs) are verbose by nature.
#![allow(clippy::type_complexity)]

use std::sync::Mutex;

use numpy::{
    AllowTypeChange, PyArray1, PyArrayDyn, PyArrayLike1, PyArrayLikeDyn, PyArrayMethods,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::snapshot::{self, SnapshotError};
use crate::ukf::{
    check_noise_covariance, LinearGaussian, SigmaParams, Smile, SmileMeasurement, SmileQuote,
    StochVol, StochVolPrice, Ukf, UkfError, UkfModel, UkfState,
};

fn value_error(e: UkfError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn snapshot_error(e: SnapshotError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// Read a 1-D float vector into `buf`: a float64 array, a list/tuple of floats or a single
/// float (for m = 1) without going through NumPy; anything else array-like via NumPy.
fn read_vector_into(obj: &Bound<'_, PyAny>, buf: &mut Vec<f64>, name: &str) -> PyResult<()> {
    buf.clear();
    if let Ok(arr) = obj.cast::<PyArray1<f64>>() {
        // SAFETY: the GIL is held and the data is copied at once, so no Rust code can write
        // to the array meanwhile; this skips rust-numpy's borrow tracking, which costs
        // more than the copy of a few doubles on the per-observation path.
        match unsafe { arr.as_slice() } {
            Ok(s) => buf.extend_from_slice(s),
            Err(_) => buf.extend(arr.to_owned_array().iter().copied()),
        }
    } else if let Ok(list) = obj.cast::<PyList>() {
        for item in list.iter() {
            buf.push(element(&item, name)?);
        }
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        for item in tuple.iter() {
            buf.push(element(&item, name)?);
        }
    } else if let Ok(v) = obj.extract::<f64>() {
        buf.push(v);
    } else {
        let arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = obj.extract().map_err(|_| {
            PyTypeError::new_err(format!("{name} must be a 1-D sequence of floats"))
        })?;
        if arr.ndim() != 1 {
            return Err(PyValueError::new_err(format!(
                "{name} must be 1-D, got shape {:?}",
                arr.shape()
            )));
        }
        buf.extend(arr.as_array().iter().copied());
    }
    Ok(())
}

/// One element of the sequence `name` as a float (else a TypeError naming `name`).
fn element(item: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    item.extract::<f64>().map_err(|e| {
        PyTypeError::new_err(format!(
            "{name} must be a 1-D sequence of floats: {}",
            e.value(item.py())
        ))
    })
}

fn read_vector(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    let mut v = Vec::new();
    read_vector_into(obj, &mut v, name)?;
    Ok(v)
}

/// A square (or `rows x cols`) matrix, row-major; a scalar is accepted for 1 x 1.
fn read_matrix(obj: &Bound<'_, PyAny>, name: &str, rows: usize, cols: usize) -> PyResult<Vec<f64>> {
    let arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = obj
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a float matrix")))?;
    let shape = arr.shape().to_vec();
    let ok = shape == [rows, cols] || (rows * cols == 1 && arr.len() == 1);
    if !ok {
        return Err(PyValueError::new_err(format!(
            "{name} must have shape ({rows}, {cols}), got {shape:?}"
        )));
    }
    Ok(arr.as_array().iter().copied().collect())
}

fn matrix_to_numpy<'py>(
    py: Python<'py>,
    data: &[f64],
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    PyArray1::from_slice(py, data).reshape(vec![rows, cols])
}

// ---------------------------------------------------------------------------------------
// Models

/// ukf2-sv stochastic-volatility model (Pitt & Shephard 1999 parameters by default).
///
/// State `x = [h, m]` (log-variance of the daily % return, drift), observation
/// `z = [r, |r|]` (return in % per unit time):
///
/// ```text
/// h' = mu + phi^dt (h - mu) + w_h,  Var w_h = sigma^2 (1 - phi^(2 dt)) / (1 - phi^2)
/// m' = m + w_m,                     Var w_m = drift_sd^2 dt
/// z  = [m, sqrt(2/pi) exp(h/2)] + v,  R = diag(e^mu, (1 - 2/pi) e^mu)
/// ```
///
/// `dt` is in days; `dt = 1` is the workload of WORKLOADS.md exactly.
#[pyclass(name = "StochVolModel", module = "rust_filters._core", frozen)]
pub struct PyStochVol {
    inner: StochVol,
}

#[pymethods]
impl PyStochVol {
    #[new]
    #[pyo3(signature = (mu=-1.02, phi=0.9702, sigma=0.178, drift_sd=0.01))]
    // PyO3 renders the negative default as `...`: spell the signature out for stubtest.
    #[pyo3(text_signature = "(mu=-1.02, phi=0.9702, sigma=0.178, drift_sd=0.01)")]
    fn new(mu: f64, phi: f64, sigma: f64, drift_sd: f64) -> PyResult<Self> {
        Ok(PyStochVol {
            inner: StochVol::new(mu, phi, sigma, drift_sd).map_err(value_error)?,
        })
    }
    #[getter]
    fn mu(&self) -> f64 {
        self.inner.mu
    }
    #[getter]
    fn phi(&self) -> f64 {
        self.inner.phi
    }
    #[getter]
    fn sigma(&self) -> f64 {
        self.inner.sigma
    }
    #[getter]
    fn drift_sd(&self) -> f64 {
        self.inner.drift_sd
    }
    /// The workload's prior `(x0, P0)`.
    fn workload_prior<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArrayDyn<f64>>)> {
        let (x0, p0) = self.inner.workload_prior();
        Ok((PyArray1::from_vec(py, x0), matrix_to_numpy(py, &p0, 2, 2)?))
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (f64, f64, f64, f64))> {
        let m = slf.get().inner;
        Ok((
            slf.get_type().into_any(),
            (m.mu, m.phi, m.sigma, m.drift_sd),
        ))
    }
    fn __repr__(&self) -> String {
        let m = self.inner;
        format!(
            "StochVolModel(mu={}, phi={}, sigma={}, drift_sd={})",
            m.mu, m.phi, m.sigma, m.drift_sd
        )
    }
}

/// ukf3-svp stochastic volatility with log-price (Pitt & Shephard parameters by default).
///
/// State `x = [p, m, h]` (100 ln price, drift, log-variance), observation `z = [p, |r|]`:
///
/// ```text
/// p' = p + m dt - 0.005 exp(h) dt + w_p,  Var w_p = e^mu dt
/// m' = m + w_m,                            Var w_m = drift_sd^2 dt
/// h' = mu + phi^dt (h - mu) + w_h          (as StochVolModel)
/// z  = [p, sqrt(2/pi) exp(h/2)] + v,  R = diag(price_sd^2, (1 - 2/pi) e^mu)
/// ```
#[pyclass(name = "StochVolPriceModel", module = "rust_filters._core", frozen)]
pub struct PyStochVolPrice {
    inner: StochVolPrice,
}

#[pymethods]
impl PyStochVolPrice {
    #[new]
    #[pyo3(signature = (mu=-1.02, phi=0.9702, sigma=0.178, drift_sd=0.01, price_sd=0.05))]
    #[pyo3(text_signature = "(mu=-1.02, phi=0.9702, sigma=0.178, drift_sd=0.01, price_sd=0.05)")]
    fn new(mu: f64, phi: f64, sigma: f64, drift_sd: f64, price_sd: f64) -> PyResult<Self> {
        Ok(PyStochVolPrice {
            inner: StochVolPrice::new(mu, phi, sigma, drift_sd, price_sd).map_err(value_error)?,
        })
    }
    #[getter]
    fn mu(&self) -> f64 {
        self.inner.mu
    }
    #[getter]
    fn phi(&self) -> f64 {
        self.inner.phi
    }
    #[getter]
    fn sigma(&self) -> f64 {
        self.inner.sigma
    }
    #[getter]
    fn drift_sd(&self) -> f64 {
        self.inner.drift_sd
    }
    #[getter]
    fn price_sd(&self) -> f64 {
        self.inner.price_sd
    }
    /// The workload's prior `(x0, P0)`.
    fn workload_prior<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArrayDyn<f64>>)> {
        let (x0, p0) = self.inner.workload_prior();
        Ok((PyArray1::from_vec(py, x0), matrix_to_numpy(py, &p0, 3, 3)?))
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (f64, f64, f64, f64, f64))> {
        let m = slf.get().inner;
        Ok((
            slf.get_type().into_any(),
            (m.mu, m.phi, m.sigma, m.drift_sd, m.price_sd),
        ))
    }
    fn __repr__(&self) -> String {
        let m = self.inner;
        format!(
            "StochVolPriceModel(mu={}, phi={}, sigma={}, drift_sd={}, price_sd={})",
            m.mu, m.phi, m.sigma, m.drift_sd, m.price_sd
        )
    }
}

/// Linear-Gaussian model `x_t = c + F x_{t-1} + w, w ~ N(0, Q)`;
/// `z_t = d + H x_t + v, v ~ N(0, R)`.
///
/// A discrete-time model: each predict is one step whatever `dt` is. The UKF is exact on
/// it (it equals the Kalman filter).
#[pyclass(name = "LinearGaussianModel", module = "rust_filters._core", frozen)]
pub struct PyLinearGaussian {
    inner: LinearGaussian,
    args: [Py<PyAny>; 6],
}

#[pymethods]
impl PyLinearGaussian {
    #[new]
    #[pyo3(signature = (F, H, Q, R, c=None, d=None))]
    #[allow(non_snake_case)]
    fn new(
        py: Python<'_>,
        F: &Bound<'_, PyAny>,
        H: &Bound<'_, PyAny>,
        Q: &Bound<'_, PyAny>,
        R: &Bound<'_, PyAny>,
        c: Option<&Bound<'_, PyAny>>,
        d: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let f_arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = F
            .extract()
            .map_err(|_| PyTypeError::new_err("F must be a float matrix"))?;
        let h_arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = H
            .extract()
            .map_err(|_| PyTypeError::new_err("H must be a float matrix"))?;
        let n = match f_arr.shape() {
            [a, b] if a == b => *a,
            s => {
                return Err(PyValueError::new_err(format!(
                    "F must be square (n, n), got shape {s:?}"
                )))
            }
        };
        let m = match h_arr.shape() {
            [m, k] if *k == n => *m,
            s => {
                return Err(PyValueError::new_err(format!(
                    "H must have shape (m, {n}), got {s:?}"
                )))
            }
        };
        let f = f_arr.as_array().iter().copied().collect();
        let h = h_arr.as_array().iter().copied().collect();
        let q = read_matrix(Q, "Q", n, n)?;
        let r = read_matrix(R, "R", m, m)?;
        let c_v = c.map(|v| read_vector(v, "c")).transpose()?;
        let d_v = d.map(|v| read_vector(v, "d")).transpose()?;
        let inner = LinearGaussian::new(n, m, f, h, q, r, c_v, d_v).map_err(value_error)?;
        let none = || py.None();
        let args = [
            F.clone().unbind(),
            H.clone().unbind(),
            Q.clone().unbind(),
            R.clone().unbind(),
            c.map_or_else(none, |v| v.clone().unbind()),
            d.map_or_else(none, |v| v.clone().unbind()),
        ];
        Ok(PyLinearGaussian { inner, args })
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let args = PyTuple::new(py, slf.get().args.iter().map(|a| a.bind(py)))?;
        Ok((slf.get_type().into_any(), args))
    }
}

fn parse_measurement(s: &str) -> PyResult<SmileMeasurement> {
    match s {
        "iv" => Ok(SmileMeasurement::ImpliedVol),
        "delta" => Ok(SmileMeasurement::Delta),
        other => Err(PyValueError::new_err(format!(
            "measurement must be 'iv' or 'delta', got {other:?}"
        ))),
    }
}

fn measurement_name(m: SmileMeasurement) -> &'static str {
    match m {
        SmileMeasurement::ImpliedVol => "iv",
        SmileMeasurement::Delta => "delta",
    }
}

fn triple(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<[f64; 3]> {
    let v = read_vector(obj, name)?;
    match v.len() {
        1 => Ok([v[0]; 3]),
        3 => Ok([v[0], v[1], v[2]]),
        k => Err(PyValueError::new_err(format!(
            "{name} must be a float or 3 floats (level, skew, curvature), got {k} values"
        ))),
    }
}

/// Implied-volatility smile of an option chain, state `x = [level, skew, curvature]`.
///
/// ```text
/// iv(k) = max(level + skew k + curvature k^2, min_iv),   k = ln(K / F) / sqrt(tau)
/// ```
///
/// Each quote is measured as its implied volatility (`measurement="iv"`) or its
/// Black–Scholes forward delta (`"delta"`: `Phi(d1)` for a call, `Phi(d1) - 1` for a put,
/// `d1 = -k / iv + iv sqrt(tau) / 2`), with independent `N(0, noise_sd^2)` noise; the
/// number of quotes may change from chain to chain (`UKF.update_quotes` / `step_quotes`).
/// Dynamics per component `i` (Ornstein-Uhlenbeck in the unit of `dt`; `reversion = 0`
/// is a random walk):
///
/// ```text
/// x_i' = mean_i + exp(-reversion_i dt) (x_i - mean_i) + w_i
/// Var w_i = vol_i^2 (1 - exp(-2 reversion_i dt)) / (2 reversion_i)   (vol_i^2 dt if 0)
/// ```
///
/// `mean`, `reversion`, `vol` take one value for all three components or three values.
/// With `dt` in years, `reversion` is per year and `vol` per sqrt(year).
#[pyclass(name = "SmileModel", module = "rust_filters._core", frozen)]
pub struct PySmile {
    inner: Smile,
}

#[pymethods]
impl PySmile {
    #[new]
    #[pyo3(signature = (mean=None, reversion=None, vol=None, *, measurement="iv", noise_sd=0.01, min_iv=1e-4))]
    fn new(
        mean: Option<&Bound<'_, PyAny>>,
        reversion: Option<&Bound<'_, PyAny>>,
        vol: Option<&Bound<'_, PyAny>>,
        measurement: &str,
        noise_sd: f64,
        min_iv: f64,
    ) -> PyResult<Self> {
        let mean = mean
            .map(|v| triple(v, "mean"))
            .transpose()?
            .unwrap_or([0.2, 0.0, 0.0]);
        let reversion = reversion
            .map(|v| triple(v, "reversion"))
            .transpose()?
            .unwrap_or([0.0; 3]);
        let vol = vol
            .map(|v| triple(v, "vol"))
            .transpose()?
            .unwrap_or([0.5, 0.5, 0.5]);
        let kind = parse_measurement(measurement)?;
        Ok(PySmile {
            inner: Smile::new(mean, reversion, vol, kind, noise_sd, min_iv).map_err(value_error)?,
        })
    }
    #[getter]
    fn mean(&self) -> [f64; 3] {
        self.inner.mean
    }
    #[getter]
    fn reversion(&self) -> [f64; 3] {
        self.inner.reversion
    }
    #[getter]
    fn vol(&self) -> [f64; 3] {
        self.inner.vol
    }
    #[getter]
    fn measurement(&self) -> &'static str {
        measurement_name(self.inner.measurement)
    }
    #[getter]
    fn noise_sd(&self) -> f64 {
        self.inner.noise_sd
    }
    #[getter]
    fn min_iv(&self) -> f64 {
        self.inner.min_iv
    }
    /// Standardised moneyness `ln(K / F) / sqrt(tau)` of each strike.
    #[staticmethod]
    fn moneyness<'py>(
        py: Python<'py>,
        strike: &Bound<'py, PyAny>,
        forward: f64,
        tau: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (k, t) = (read_vector(strike, "strike")?, read_vector(tau, "tau")?);
        let out: Vec<f64> = if t.len() == 1 {
            k.iter()
                .map(|&s| Smile::moneyness(s, forward, t[0]))
                .collect()
        } else if t.len() == k.len() {
            k.iter()
                .zip(t.iter())
                .map(|(&s, &tt)| Smile::moneyness(s, forward, tt))
                .collect()
        } else {
            return Err(PyValueError::new_err(format!(
                "tau must be one value or one per strike ({}), got {}",
                k.len(),
                t.len()
            )));
        };
        Ok(PyArray1::from_vec(py, out))
    }
    /// Implied volatility of the smile state `x` at each standardised moneyness.
    fn implied_vol<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        moneyness: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = smile_state(x)?;
        let out = read_vector(moneyness, "moneyness")?
            .iter()
            .map(|&k| self.inner.implied_vol(&x, k))
            .collect();
        Ok(PyArray1::from_vec(py, out))
    }
    /// Black–Scholes forward delta of each quote under the smile state `x`.
    #[pyo3(signature = (x, moneyness, tau, is_call))]
    fn delta<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        moneyness: &Bound<'py, PyAny>,
        tau: &Bound<'py, PyAny>,
        is_call: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = smile_state(x)?;
        let mut quotes = Vec::new();
        let mut buf = Vec::new();
        build_quotes(
            &self.inner,
            moneyness,
            tau,
            Some(is_call),
            None,
            &mut quotes,
            &mut buf,
        )?;
        let out = quotes.iter().map(|q| self.inner.delta(&x, q)).collect();
        Ok(PyArray1::from_vec(py, out))
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>, Bound<'py, PyAny>)> {
        let py = slf.py();
        let m = &slf.get().inner;
        let args = (m.mean, m.reversion, m.vol).into_pyobject(py)?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("measurement", measurement_name(m.measurement))?;
        kwargs.set_item("noise_sd", m.noise_sd)?;
        kwargs.set_item("min_iv", m.min_iv)?;
        // functools.partial(SmileModel, **kwargs)(mean, reversion, vol)
        let partial = py.import("functools")?.getattr("partial")?;
        let ctor = partial.call((slf.get_type(),), Some(&kwargs))?;
        Ok((ctor, args, py.None().into_bound(py)))
    }
}

fn smile_state(x: &Bound<'_, PyAny>) -> PyResult<[f64; 3]> {
    let v = read_vector(x, "x")?;
    if v.len() != 3 || v.iter().any(|a| !a.is_finite()) {
        return Err(PyValueError::new_err(
            "x must be 3 finite floats (level, skew, curvature)",
        ));
    }
    Ok([v[0], v[1], v[2]])
}

/// Fill `quotes` from per-quote arrays; `tau`, `is_call` and `noise_sd` may be scalars.
fn build_quotes(
    model: &Smile,
    moneyness: &Bound<'_, PyAny>,
    tau: &Bound<'_, PyAny>,
    is_call: Option<&Bound<'_, PyAny>>,
    noise_sd: Option<&Bound<'_, PyAny>>,
    quotes: &mut Vec<SmileQuote>,
    buf: &mut Vec<f64>,
) -> PyResult<()> {
    read_vector_into(moneyness, buf, "moneyness")?;
    let m = buf.len();
    quotes.clear();
    quotes.extend(buf.iter().map(|&k| model.quote(k, f64::NAN, true)));
    let broadcast = |buf: &Vec<f64>, name: &str| -> PyResult<()> {
        if buf.len() == 1 || buf.len() == m {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "{name} must be one value or {m} (one per quote), got {}",
                buf.len()
            )))
        }
    };
    read_vector_into(tau, buf, "tau")?;
    broadcast(buf, "tau")?;
    for (i, q) in quotes.iter_mut().enumerate() {
        q.tau = buf[if buf.len() == 1 { 0 } else { i }];
    }
    if let Some(ns) = noise_sd {
        read_vector_into(ns, buf, "noise_sd")?;
        broadcast(buf, "noise_sd")?;
        for (i, q) in quotes.iter_mut().enumerate() {
            q.noise_sd = buf[if buf.len() == 1 { 0 } else { i }];
        }
    }
    match is_call {
        Some(obj) => {
            let calls: Vec<bool> = if let Ok(b) = obj.extract::<bool>() {
                vec![b]
            } else {
                let arr: PyArrayLike1<'_, bool, AllowTypeChange> = obj.extract().map_err(|_| {
                    PyTypeError::new_err("is_call must be a bool or a sequence of bools")
                })?;
                arr.as_array().to_vec()
            };
            if calls.len() != 1 && calls.len() != m {
                return Err(PyValueError::new_err(format!(
                    "is_call must be one bool or {m} (one per quote), got {}",
                    calls.len()
                )));
            }
            for (i, q) in quotes.iter_mut().enumerate() {
                q.is_call = calls[if calls.len() == 1 { 0 } else { i }];
            }
        }
        None if model.measurement == SmileMeasurement::Delta => {
            return Err(PyValueError::new_err(
                "is_call is required when the SmileModel measures deltas (True = call, False = put)",
            ));
        }
        None => {}
    }
    Ok(())
}

/// A model written in Python: the slow path (one Python call per sigma point).
///
/// `fx(x, dt) -> x'` and `hx(x) -> z` take and return 1-D float arrays; `Q` is the process
/// noise of a unit step and is scaled by `dt` (random-walk convention); `R` is fixed.
#[pyclass(name = "PythonModel", module = "rust_filters._core", frozen)]
pub struct PyPythonModel {
    fx: Py<PyAny>,
    hx: Py<PyAny>,
    q: Vec<f64>,
    r: Vec<f64>,
    n: usize,
    m: usize,
    args: (Py<PyAny>, Py<PyAny>),
}

#[pymethods]
impl PyPythonModel {
    #[new]
    #[allow(non_snake_case)]
    fn new(
        fx: &Bound<'_, PyAny>,
        hx: &Bound<'_, PyAny>,
        Q: &Bound<'_, PyAny>,
        R: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if !fx.is_callable() || !hx.is_callable() {
            return Err(PyTypeError::new_err(
                "fx and hx must be callables: fx(x, dt) -> x', hx(x) -> z",
            ));
        }
        let q_arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = Q
            .extract()
            .map_err(|_| PyTypeError::new_err("Q must be a float matrix"))?;
        let r_arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = R
            .extract()
            .map_err(|_| PyTypeError::new_err("R must be a float matrix"))?;
        let n = match q_arr.shape() {
            [a, b] if a == b && *a > 0 => *a,
            s => {
                return Err(PyValueError::new_err(format!(
                    "Q must be square (n, n), got shape {s:?}"
                )))
            }
        };
        let m = match r_arr.shape() {
            [a, b] if a == b && *a > 0 => *a,
            s => {
                return Err(PyValueError::new_err(format!(
                    "R must be square (m, m), got shape {s:?}"
                )))
            }
        };
        let q: Vec<f64> = q_arr.as_array().iter().copied().collect();
        let r: Vec<f64> = r_arr.as_array().iter().copied().collect();
        if q.iter().chain(&r).any(|v| !v.is_finite()) {
            return Err(PyValueError::new_err("Q and R must be finite"));
        }
        check_noise_covariance("Q", &q, n, false).map_err(value_error)?;
        check_noise_covariance("R", &r, m, true).map_err(value_error)?;
        Ok(PyPythonModel {
            fx: fx.clone().unbind(),
            hx: hx.clone().unbind(),
            q,
            r,
            n,
            m,
            args: (Q.clone().unbind(), R.clone().unbind()),
        })
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let s = slf.get();
        let args = PyTuple::new(
            py,
            [
                s.fx.bind(py),
                s.hx.bind(py),
                s.args.0.bind(py),
                s.args.1.bind(py),
            ],
        )?;
        Ok((slf.get_type().into_any(), args))
    }
}

/// `UkfModel` over a `PythonModel`: a callback error is kept and the outputs become NaN,
/// so the filter rejects the step; the wrapper then raises the kept error instead.
struct CallbackModel {
    model: Py<PyPythonModel>,
    n: usize,
    m: usize,
    error: Mutex<Option<PyErr>>,
}

impl CallbackModel {
    fn new(py: Python<'_>, model: Py<PyPythonModel>) -> Self {
        let (n, m) = {
            let b = model.bind(py).get();
            (b.n, b.m)
        };
        CallbackModel {
            model,
            n,
            m,
            error: Mutex::new(None),
        }
    }

    fn call_rows(
        &self,
        f: &Py<PyAny>,
        dt: Option<f64>,
        input: &[f64],
        out: &mut [f64],
        d_in: usize,
        d_out: usize,
    ) {
        Python::attach(|py| {
            let f = f.bind(py);
            let result = (|| -> PyResult<()> {
                for (row, out_row) in input.chunks_exact(d_in).zip(out.chunks_exact_mut(d_out)) {
                    let x = PyArray1::from_slice(py, row);
                    let y = match dt {
                        Some(dt) => f.call1((x, dt))?,
                        None => f.call1((x,))?,
                    };
                    let v = read_vector(&y, "model output")?;
                    if v.len() != d_out {
                        return Err(PyValueError::new_err(format!(
                            "PythonModel callback returned {} values, expected {d_out}",
                            v.len()
                        )));
                    }
                    out_row.copy_from_slice(&v);
                }
                Ok(())
            })();
            if let Err(e) = result {
                out.fill(f64::NAN);
                let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(e);
            }
        });
    }

    fn take_error(&self) -> Option<PyErr> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl UkfModel for CallbackModel {
    type Design = ();
    const NAME: &'static str = "PythonModel";

    /// Q and R were checked when the PythonModel was built; the callbacks cannot be.
    fn validate(&self) -> Result<(), UkfError> {
        Ok(())
    }

    fn state_dim(&self) -> usize {
        self.n
    }
    fn meas_dim(&self, _: &()) -> usize {
        self.m
    }
    fn transition(&self, dt: f64, points: &mut [f64]) {
        let input = points.to_vec();
        let fx = Python::attach(|py| self.model.bind(py).get().fx.clone_ref(py));
        self.call_rows(&fx, Some(dt), &input, points, self.n, self.n);
    }
    fn process_noise(&self, dt: f64, q: &mut [f64]) {
        Python::attach(|py| {
            for (qi, &v) in q.iter_mut().zip(&self.model.bind(py).get().q) {
                *qi = v * dt;
            }
        });
    }
    fn measure(&self, _: &(), points: &[f64], z: &mut [f64]) {
        let hx = Python::attach(|py| self.model.bind(py).get().hx.clone_ref(py));
        self.call_rows(&hx, None, points, z, self.n, self.m);
    }
    fn measurement_noise(&self, _: &(), r: &mut [f64]) {
        Python::attach(|py| r.copy_from_slice(&self.model.bind(py).get().r));
    }
}

// ---------------------------------------------------------------------------------------
// The filter

enum AnyUkf {
    Sv(Ukf<StochVol>),
    Svp(Ukf<StochVolPrice>),
    Linear(Ukf<LinearGaussian>),
    Smile(Ukf<Smile>),
    Python(Ukf<CallbackModel>),
}

/// Run `$body` with `$u` bound to the concrete `Ukf<M>` (monomorphised per model).
macro_rules! with_ukf {
    ($inner:expr, $u:ident => $body:expr) => {
        match $inner {
            AnyUkf::Sv($u) => $body,
            AnyUkf::Svp($u) => $body,
            AnyUkf::Linear($u) => $body,
            AnyUkf::Smile($u) => $body,
            AnyUkf::Python($u) => $body,
        }
    };
}

/// The same for models with a fixed measurement; the smile model gets a clear error.
macro_rules! with_fixed_ukf {
    ($inner:expr, $what:expr, $u:ident => $body:expr) => {
        match $inner {
            AnyUkf::Sv($u) => $body,
            AnyUkf::Svp($u) => $body,
            AnyUkf::Linear($u) => $body,
            AnyUkf::Python($u) => $body,
            AnyUkf::Smile(_) => Err(PyTypeError::new_err(format!(
                "{} needs a fixed-size measurement; a SmileModel filter takes update_quotes / step_quotes",
                $what
            ))),
        }
    };
}

/// Unscented Kalman Filter with additive noise and scaled sigma points (filterpy's
/// algorithm: `lambda = alpha^2 (n + kappa) - n`, `kappa=None` meaning `3 - n`).
///
/// Streaming: `step(z, dt)` (= `predict(dt)` + `update(z)`) returns the innovation
/// log-likelihood `log N(z; z_pred, S)`. Replay: `filter(zs, dts)` runs the whole series
/// without the GIL. `x` and `P` are copies.
///
/// Invalid input (NaN/inf, wrong length, negative `dt`) raises `ValueError` and leaves the
/// filter unchanged. If a step turns the state non-finite, or its covariance cannot be
/// factorised even with diagonal jitter, the filter resets itself to its prior: `n_resets`
/// counts this, `diverged` stays True until `reset()` is called, `last_reset_reason` says
/// why, and an update that diverged returns NaN. `snapshot()` / `UKF.restore()` / pickle
/// continue bit-identically.
#[pyclass(name = "UKF", module = "rust_filters._core")]
pub struct PyUkf {
    inner: AnyUkf,
    zbuf: Vec<f64>,
    quotes: Vec<SmileQuote>,
}

impl PyUkf {
    fn wrap(inner: AnyUkf) -> Self {
        PyUkf {
            inner,
            zbuf: Vec::with_capacity(8),
            quotes: Vec::new(),
        }
    }

    fn state(&self) -> &UkfState {
        with_ukf!(&self.inner, u => u.state())
    }

    /// For the Python model, run on a copy so that a callback error leaves the state as it
    /// was (a NaN output would otherwise count as a divergence and reset the filter).
    fn guarded<T>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut Self) -> PyResult<T>,
    ) -> PyResult<T> {
        let saved = match &self.inner {
            AnyUkf::Python(u) => Some(u.state().clone()),
            _ => None,
        };
        let out = f(self);
        if let Some(saved) = saved {
            let err = if let AnyUkf::Python(u) = &self.inner {
                u.model().take_error()
            } else {
                None
            };
            if let Some(e) = err {
                if let AnyUkf::Python(u) = &mut self.inner {
                    let model = CallbackModel::new(py, u.model().model.clone_ref(py));
                    *u = Ukf::from_state(model, saved);
                }
                return Err(e);
            }
        }
        out
    }

    fn py_model_type_error(model: &Bound<'_, PyAny>) -> PyErr {
        PyTypeError::new_err(format!(
            "model must be a StochVolModel, StochVolPriceModel, LinearGaussianModel, SmileModel or PythonModel, got {}",
            model.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    }
}

#[pymethods]
impl PyUkf {
    /// `UKF(model, x0, P0, *, alpha=0.1, beta=2.0, kappa=None)`; `kappa=None` is `3 - n`.
    #[new]
    #[pyo3(signature = (model, x0, P0, *, alpha=0.1, beta=2.0, kappa=None))]
    #[allow(non_snake_case)]
    fn new(
        model: &Bound<'_, PyAny>,
        x0: &Bound<'_, PyAny>,
        P0: &Bound<'_, PyAny>,
        alpha: f64,
        beta: f64,
        kappa: Option<f64>,
    ) -> PyResult<Self> {
        let py = model.py();
        let n = if let Ok(m) = model.cast::<PyStochVol>() {
            m.get().inner.state_dim()
        } else if let Ok(m) = model.cast::<PyStochVolPrice>() {
            m.get().inner.state_dim()
        } else if let Ok(m) = model.cast::<PyLinearGaussian>() {
            m.get().inner.state_dim()
        } else if let Ok(m) = model.cast::<PySmile>() {
            m.get().inner.state_dim()
        } else if let Ok(m) = model.cast::<PyPythonModel>() {
            m.get().n
        } else {
            return Err(Self::py_model_type_error(model));
        };
        let x0 = read_vector(x0, "x0")?;
        let p0 = read_matrix(P0, "P0", n, n)?;
        let params = SigmaParams {
            alpha,
            beta,
            kappa: kappa.unwrap_or(3.0 - n as f64),
        };
        let inner = if let Ok(m) = model.cast::<PyStochVol>() {
            AnyUkf::Sv(Ukf::new(m.get().inner, &x0, &p0, params).map_err(value_error)?)
        } else if let Ok(m) = model.cast::<PyStochVolPrice>() {
            AnyUkf::Svp(Ukf::new(m.get().inner, &x0, &p0, params).map_err(value_error)?)
        } else if let Ok(m) = model.cast::<PyLinearGaussian>() {
            AnyUkf::Linear(Ukf::new(m.get().inner.clone(), &x0, &p0, params).map_err(value_error)?)
        } else if let Ok(m) = model.cast::<PySmile>() {
            AnyUkf::Smile(Ukf::new(m.get().inner.clone(), &x0, &p0, params).map_err(value_error)?)
        } else {
            let m = model.cast::<PyPythonModel>()?;
            AnyUkf::Python(
                Ukf::new(CallbackModel::new(py, m.clone().unbind()), &x0, &p0, params)
                    .map_err(value_error)?,
            )
        };
        Ok(Self::wrap(inner))
    }

    /// Propagate by `dt` (finite, >= 0, in the model's time unit).
    #[pyo3(signature = (dt=1.0))]
    fn predict(&mut self, py: Python<'_>, dt: f64) -> PyResult<()> {
        self.guarded(
            py,
            |s| with_ukf!(&mut s.inner, u => u.predict(dt).map_err(value_error)),
        )
    }

    /// Correct with the measurement `z`; returns the innovation log-likelihood.
    fn update(&mut self, py: Python<'_>, z: &Bound<'_, PyAny>) -> PyResult<f64> {
        read_vector_into(z, &mut self.zbuf, "z")?;
        self.guarded(py, |s| {
            let z = &s.zbuf;
            with_fixed_ukf!(&mut s.inner, "update", u => u.update(z).map_err(value_error))
        })
    }

    /// `predict(dt)` then `update(z)`: the one streaming call per observation.
    #[pyo3(signature = (z, dt=1.0))]
    fn step(&mut self, py: Python<'_>, z: &Bound<'_, PyAny>, dt: f64) -> PyResult<f64> {
        read_vector_into(z, &mut self.zbuf, "z")?;
        if !matches!(self.inner, AnyUkf::Python(_)) {
            // The streaming hot path: no closure, no state copy.
            let z = &self.zbuf;
            return with_fixed_ukf!(&mut self.inner, "step", u => u.step(z, dt).map_err(value_error));
        }
        self.guarded(py, |s| {
            let z = &s.zbuf;
            with_fixed_ukf!(&mut s.inner, "step", u => u.step(z, dt).map_err(value_error))
        })
    }

    /// Update a `SmileModel` filter with one option chain: per-quote standardised
    /// moneyness, time to expiry (years), measured value (IV or delta, as the model says);
    /// `is_call` (needed for deltas) and `noise_sd` may be scalars or per quote.
    #[pyo3(signature = (moneyness, tau, values, *, is_call=None, noise_sd=None))]
    fn update_quotes(
        &mut self,
        moneyness: &Bound<'_, PyAny>,
        tau: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
        is_call: Option<&Bound<'_, PyAny>>,
        noise_sd: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        self.step_quotes_impl(moneyness, tau, values, None, is_call, noise_sd)
    }

    /// `predict(dt)` then `update_quotes(...)`.
    #[pyo3(signature = (moneyness, tau, values, dt, *, is_call=None, noise_sd=None))]
    fn step_quotes(
        &mut self,
        moneyness: &Bound<'_, PyAny>,
        tau: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
        dt: f64,
        is_call: Option<&Bound<'_, PyAny>>,
        noise_sd: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        self.step_quotes_impl(moneyness, tau, values, Some(dt), is_call, noise_sd)
    }

    /// Replay a series: `zs` of shape `(T, m)` (or `(T,)` when m = 1), `dts` of shape
    /// `(T,)` (default all 1). Returns `(means (T, n), covariances (T, n, n), loglik (T,))`.
    /// Runs without the GIL (except for a PythonModel).
    #[pyo3(signature = (zs, dts=None))]
    fn filter<'py>(
        &mut self,
        py: Python<'py>,
        zs: PyArrayLikeDyn<'py, f64, AllowTypeChange>,
        dts: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(
        Bound<'py, PyArrayDyn<f64>>,
        Bound<'py, PyArrayDyn<f64>>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let n = with_ukf!(&self.inner, u => u.dim());
        let m = with_fixed_ukf!(&self.inner, "filter", u => Ok(u.meas_dim()))?;
        let t_len = match (zs.shape(), m) {
            ([t, k], _) if *k == m => *t,
            ([t], 1) => *t,
            (s, _) => {
                return Err(PyValueError::new_err(format!(
                    "zs must have shape (T, {m}), got {s:?}"
                )))
            }
        };
        // `as_slice` also accepts Fortran-ordered data; the filter needs rows in order.
        let zs_cow = match zs.as_slice() {
            Ok(s) if zs.is_c_contiguous() => std::borrow::Cow::Borrowed(s),
            _ => std::borrow::Cow::Owned(zs.as_array().iter().copied().collect()),
        };
        let dts_vec = dts
            .map(|d| super::args::float_vector(&d, "dts"))
            .transpose()?;
        let mut means = vec![0.0; t_len * n];
        let mut covs = vec![0.0; t_len * n * n];
        let mut ll = vec![0.0; t_len];
        let (zs_s, dts_s) = (&*zs_cow, dts_vec.as_deref());
        let (mu, cu, lu) = (&mut means, &mut covs, &mut ll);
        if matches!(self.inner, AnyUkf::Python(_)) {
            self.guarded(py, |s| match &mut s.inner {
                AnyUkf::Python(u) => u.filter(zs_s, dts_s, mu, cu, lu).map_err(value_error),
                _ => unreachable!("checked above"),
            })?;
        } else {
            let result = match &mut self.inner {
                AnyUkf::Sv(u) => py.detach(|| u.filter(zs_s, dts_s, mu, cu, lu)),
                AnyUkf::Svp(u) => py.detach(|| u.filter(zs_s, dts_s, mu, cu, lu)),
                AnyUkf::Linear(u) => py.detach(|| u.filter(zs_s, dts_s, mu, cu, lu)),
                AnyUkf::Python(_) | AnyUkf::Smile(_) => unreachable!("handled above"),
            };
            result.map_err(value_error)?;
        }
        Ok((
            PyArray1::from_vec(py, means).reshape(vec![t_len, n])?,
            PyArray1::from_vec(py, covs).reshape(vec![t_len, n, n])?,
            PyArray1::from_vec(py, ll),
        ))
    }

    /// Filtered mean (a copy).
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.state().x)
    }

    /// Filtered covariance (a copy).
    #[getter(P)]
    fn p<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let n = self.state().x.len();
        matrix_to_numpy(py, &self.state().p, n, n)
    }

    #[getter]
    fn dim_x(&self) -> usize {
        self.state().x.len()
    }

    /// Measurement size, `None` for the smile model (it varies per chain).
    #[getter]
    fn dim_z(&self) -> Option<usize> {
        with_fixed_ukf!(&self.inner, "dim_z", u => Ok(u.meas_dim())).ok()
    }

    #[getter]
    fn alpha(&self) -> f64 {
        self.state().params.alpha
    }
    #[getter]
    fn beta(&self) -> f64 {
        self.state().params.beta
    }
    #[getter]
    fn kappa(&self) -> f64 {
        self.state().params.kappa
    }

    /// Automatic resets after a numerical divergence.
    #[getter]
    fn n_resets(&self) -> u64 {
        self.state().n_resets
    }
    /// True once the filter has reset itself; cleared by `reset()`.
    #[getter]
    fn diverged(&self) -> bool {
        self.state().diverged
    }
    #[getter]
    fn last_reset_reason(&self) -> Option<String> {
        self.state().last_reset_reason.clone()
    }
    /// Cholesky factorisations that needed diagonal jitter.
    #[getter]
    fn n_jitter(&self) -> u64 {
        self.state().n_jitter
    }

    /// The filter's model (a new Python object holding a copy of its parameters).
    #[getter]
    fn model(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match &self.inner {
            AnyUkf::Sv(u) => Py::new(py, PyStochVol { inner: *u.model() })?.into_any(),
            AnyUkf::Svp(u) => Py::new(py, PyStochVolPrice { inner: *u.model() })?.into_any(),
            AnyUkf::Linear(u) => {
                let m = u.model();
                let lin = PyLinearGaussian::from_model(py, m)?;
                Py::new(py, lin)?.into_any()
            }
            AnyUkf::Smile(u) => Py::new(
                py,
                PySmile {
                    inner: u.model().clone(),
                },
            )?
            .into_any(),
            AnyUkf::Python(u) => u.model().model.clone_ref(py).into_any(),
        })
    }

    /// Back to the prior: the given `(x0, P0)` (which becomes the prior of later automatic
    /// resets too) or the one given at construction. Clears `diverged`.
    #[pyo3(signature = (x0=None, P0=None))]
    #[allow(non_snake_case)]
    fn reset(
        &mut self,
        x0: Option<&Bound<'_, PyAny>>,
        P0: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let n = self.state().x.len();
        let x0 = x0.map(|v| read_vector(v, "x0")).transpose()?;
        let p0 = P0.map(|v| read_matrix(v, "P0", n, n)).transpose()?;
        with_ukf!(&mut self.inner, u => u.reset(x0.as_deref(), p0.as_deref())).map_err(value_error)
    }

    /// The model and state as bytes; `UKF.restore(data)` continues bit-identically. A
    /// PythonModel filter's bytes hold the state only: pass the model to `restore`.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = match &self.inner {
            AnyUkf::Sv(u) => u.snapshot(),
            AnyUkf::Svp(u) => u.snapshot(),
            AnyUkf::Linear(u) => u.snapshot(),
            AnyUkf::Smile(u) => u.snapshot(),
            AnyUkf::Python(u) => snapshot::to_bytes(PYTHON_KIND, u.state()),
        };
        PyBytes::new(py, &bytes)
    }

    /// A filter from `snapshot()` bytes (`model` is needed for a PythonModel filter only).
    #[staticmethod]
    #[pyo3(signature = (data, model=None))]
    fn restore(py: Python<'_>, data: &[u8], model: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let inner = if let Ok(u) = Ukf::<StochVol>::restore(data) {
            AnyUkf::Sv(u)
        } else if let Ok(u) = Ukf::<StochVolPrice>::restore(data) {
            AnyUkf::Svp(u)
        } else if let Ok(u) = Ukf::<LinearGaussian>::restore(data) {
            AnyUkf::Linear(u)
        } else if let Ok(u) = Ukf::<Smile>::restore(data) {
            AnyUkf::Smile(u)
        } else {
            match snapshot::from_bytes::<UkfState>(PYTHON_KIND, data) {
                Ok(state) => {
                    let m = model
                        .ok_or_else(|| {
                            PyValueError::new_err(
                                "this snapshot is of a PythonModel filter: pass model=",
                            )
                        })?
                        .cast::<PyPythonModel>()
                        .map_err(|_| PyTypeError::new_err("model must be a PythonModel"))?;
                    let cb = CallbackModel::new(py, m.clone().unbind());
                    AnyUkf::Python(Ukf::from_restored(cb, state).map_err(snapshot_error)?)
                }
                // Report why the matching kind failed, or that no kind matched.
                Err(e) => {
                    let specific = [
                        Ukf::<StochVol>::restore(data).err(),
                        Ukf::<StochVolPrice>::restore(data).err(),
                        Ukf::<LinearGaussian>::restore(data).err(),
                        Ukf::<Smile>::restore(data).err(),
                    ]
                    .into_iter()
                    .flatten()
                    .find(|e| {
                        e.0.starts_with("corrupt")
                            || e.0.contains("truncated")
                            || e.0.contains("magic")
                    });
                    return Err(snapshot_error(specific.unwrap_or(e)));
                }
            }
        };
        Ok(Self::wrap(inner))
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let restore = slf.get_type().getattr("restore")?;
        let this = slf.borrow();
        let data = this.snapshot(py);
        let args = match &this.inner {
            AnyUkf::Python(u) => PyTuple::new(
                py,
                [data.into_any(), u.model().model.bind(py).clone().into_any()],
            )?,
            _ => PyTuple::new(py, [data.into_any()])?,
        };
        Ok((restore, args))
    }

    fn __repr__(&self) -> String {
        let s = self.state();
        format!(
            "UKF(dim_x={}, x={:?}, n_resets={})",
            s.x.len(),
            s.x,
            s.n_resets
        )
    }
}

const PYTHON_KIND: &str = "UKF/PythonModel";

impl PyUkf {
    fn step_quotes_impl(
        &mut self,
        moneyness: &Bound<'_, PyAny>,
        tau: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
        dt: Option<f64>,
        is_call: Option<&Bound<'_, PyAny>>,
        noise_sd: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let AnyUkf::Smile(u) = &mut self.inner else {
            return Err(PyTypeError::new_err(
                "update_quotes / step_quotes need a SmileModel filter; use update / step",
            ));
        };
        build_quotes(
            u.model(),
            moneyness,
            tau,
            is_call,
            noise_sd,
            &mut self.quotes,
            &mut self.zbuf,
        )?;
        read_vector_into(values, &mut self.zbuf, "values")?;
        if self.zbuf.len() != self.quotes.len() {
            return Err(PyValueError::new_err(format!(
                "values must have one entry per quote ({}), got {}",
                self.quotes.len(),
                self.zbuf.len()
            )));
        }
        match dt {
            Some(dt) => u.step_with(&self.zbuf, dt, &self.quotes),
            None => u.update_with(&self.zbuf, &self.quotes),
        }
        .map_err(value_error)
    }
}

impl PyLinearGaussian {
    fn from_model(py: Python<'_>, m: &LinearGaussian) -> PyResult<Self> {
        let (n, k) = (m.state_dim(), m.meas_dim(&()));
        let (f, h, q, r, c, d) = m.parts();
        Ok(PyLinearGaussian {
            inner: m.clone(),
            args: [
                matrix_to_numpy(py, f, n, n)?.into_any().unbind(),
                matrix_to_numpy(py, h, k, n)?.into_any().unbind(),
                matrix_to_numpy(py, q, n, n)?.into_any().unbind(),
                matrix_to_numpy(py, r, k, k)?.into_any().unbind(),
                PyArray1::from_slice(py, c).into_any().unbind(),
                PyArray1::from_slice(py, d).into_any().unbind(),
            ],
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyUkf>()?;
    m.add_class::<PyStochVol>()?;
    m.add_class::<PyStochVolPrice>()?;
    m.add_class::<PyLinearGaussian>()?;
    m.add_class::<PySmile>()?;
    m.add_class::<PyPythonModel>()?;
    Ok(())
}
