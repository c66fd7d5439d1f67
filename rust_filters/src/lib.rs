//! Fast filters and simulations for markov.
//!
//! The maths lives in plain Rust modules that know nothing of Python and are tested with
//! `cargo test`: `ukf` (Unscented Kalman Filter and its models), `particle` (bootstrap and
//! EKF-proposal particle filters), `monte_carlo` (GBM and Merton jump diffusion), `wire`
//! (the stream's tick parsing and range encoding), `tick_vol` (both filters stepped by
//! every tick). Shared pieces: `rng` (seeded streams), `normals` (standard normals in
//! blocks), `quantile`, `snapshot`, `linalg`, `threads` (the thread-count bound). `python` holds
//! the thin PyO3 wrappers, compiled only with the `python` feature (which maturin turns on).

pub mod linalg;
pub mod monte_carlo;
pub mod normals;
pub mod particle;
pub mod quantile;
pub mod rng;
pub mod snapshot;
pub mod threads;
pub mod tick_vol;
pub mod ukf;
pub mod wire;

#[cfg(feature = "python")]
mod python;
