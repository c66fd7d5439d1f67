//! Particle filters for scalar state-space models: the bootstrap filter (Gordon, Salmond
//! & Smith 1993) and the extended-Kalman particle filter, EKPF (van der Merwe, Doucet,
//! de Freitas & Wan 2000), as defined in `benchmarks/spec/WORKLOADS.md` sections 2 and 3.
//!
//! * [`model`]: the state-space-model trait, the stochastic-volatility model and a
//!   linear-Gaussian model (the one with an exact Kalman answer), Δt-aware.
//! * [`filter`]: [`ParticleFilter`], one type for both proposals (they share the cloud,
//!   the weights, the resampling and the state handling; only the per-particle move
//!   differs), streaming (`step`) and batch (`filter`), snapshots.
//! * [`resample`]: systematic resampling over the chunked cloud.
//! * [`forecast`]: propagating the cloud forward to price and path-range quantiles.
//! * [`runner`]: fixed-size chunks run serially or on a rayon pool.
//! * `spare`: chunk buffers kept between filters (no fresh pages per construction).
//! * [`fastmath`]: branch-free `exp` / `ln`, so the per-particle loops vectorise.
//!
//! Determinism: particles live in chunks of [`CHUNK`]; chunk `k` at time index `t` draws
//! from `rng::stream2(seed, t, k)` and every reduction combines per-chunk partial results
//! in chunk order, so the output is bit-identical whatever the number of threads.

pub mod fastmath;
pub mod filter;
pub mod forecast;
pub mod model;
pub mod resample;
pub mod runner;
mod spare;

pub use filter::{FilterConfig, ParticleFilter, Proposal};
pub use forecast::{Forecast, ForecastSpec};
pub use model::{LinearGaussianModel, Model, StateSpaceModel, SvModel};

/// Particles per chunk: the unit of parallel work and of random streams (a power of two,
/// so that a particle's chunk is a shift away; 1024 f64s per buffer stay in L1).
pub const CHUNK: usize = 1024;

/// The most particles a filter takes. A filter holds two clouds (the current one and the
/// buffers of the next step) of 48 bytes a particle, so this is about 1.6 GiB: far beyond
/// any use here (the workloads run 10,000), and a clear error instead of an allocation
/// that aborts the process.
pub const MAX_PARTICLES: usize = 1 << 24;

/// The most paths a particle-filter forecast simulates: about 100 bytes a path (starts,
/// ends, extremes, their price copies and the joint-range sort), 1.6 GiB at this bound.
pub const MAX_FORECAST_PATHS: usize = 1 << 24;

/// Why a particle-filter call was refused. Every refusal leaves the filter unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum ParticleError {
    /// An argument outside its allowed values (the message names it).
    InvalidArgument(String),
    /// A snapshot that cannot be restored.
    Snapshot(String),
}

impl ParticleError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ParticleError::InvalidArgument(message.into())
    }
}

impl std::fmt::Display for ParticleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParticleError::InvalidArgument(m) | ParticleError::Snapshot(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ParticleError {}

#[cfg(test)]
mod tests;
