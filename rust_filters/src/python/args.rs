//! Argument conversions shared by the wrappers, so that every error names its argument
//! (rust-numpy's own conversion errors, such as "dimensionality mismatch", do not).

use numpy::{AllowTypeChange, PyArrayLikeDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A 1-D sequence of numbers (list, tuple or NumPy array of any real dtype) as a `Vec`.
/// Another shape is a ValueError naming `name`; values that are not numbers keep their
/// error type (ValueError for a string such as "abc", else TypeError), with `name` added.
pub fn float_vector(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    let arr: PyArrayLikeDyn<'_, f64, AllowTypeChange> = obj.extract().map_err(|e: PyErr| {
        let message = format!(
            "{name} must be a 1-D sequence of numbers: {}",
            e.value(obj.py())
        );
        if e.is_instance_of::<PyValueError>(obj.py()) {
            PyValueError::new_err(message)
        } else {
            PyTypeError::new_err(message)
        }
    })?;
    if arr.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a 1-D sequence of numbers, got shape {:?}",
            arr.shape()
        )));
    }
    Ok(arr.as_array().iter().copied().collect())
}

/// A seed: an integer in [0, 2**64) (a ValueError otherwise, instead of an OverflowError).
pub fn seed(value: i128) -> PyResult<u64> {
    u64::try_from(value)
        .map_err(|_| PyValueError::new_err(format!("seed must be in [0, 2**64), got {value}")))
}
