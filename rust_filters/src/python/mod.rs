//! PyO3 wrappers: convert arguments, release the GIL, call the Rust types, convert back.
//! One file per Rust module; each registers its classes and functions here.

use pyo3::prelude::*;

mod args;
mod monte_carlo;
mod particle;
mod tick_vol;
mod ukf;
mod wire;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    ukf::register(m)?;
    particle::register(m)?;
    monte_carlo::register(m)?;
    wire::register(m)?;
    tick_vol::register(m)?;
    Ok(())
}
