//! Parallel Monte Carlo of geometric Brownian motion and Merton jump diffusion.
//!
//! N paths × T steps reduced on the fly to each path's terminal, minimum and maximum
//! price (3 N doubles; the N × T path matrix is never stored), then to quantiles of those
//! three vectors and, on request, the joint path range.
//!
//! Determinism: paths are cut into chunks of [`CHUNK_PATHS`] (a constant, not a function
//! of the thread count) and chunk `k` draws from `rng::stream(seed, k)`, so the output is
//! bit-identical whatever the number of threads; the mean is summed chunk by chunk in
//! chunk order for the same reason.
//!
//! Speed: log space throughout; a vectorised `exp` per path for the mean terminal price,
//! and `f64::exp` only at the order statistics the quantiles use (numpy's linear rule on
//! prices, exactly, since `exp` is increasing); normals in blocks (see
//! `crate::normals`), paths simulated 8 at a time so that the step loop vectorises (see
//! `kernel`); Merton jumps drawn sparsely (see `jumps`); quantiles by one partitioning
//! pass and selection (see `order_stats`); output vectors reused across calls (see
//! `buffers`).

mod buffers;
mod jumps;
mod kernel;
mod order_stats;
mod pool;
mod spec;
mod summary;

use rayon::prelude::*;

use jumps::SparseJumps;
use kernel::{run_chunk, ChunkOut, StepTable};
use order_stats::quantiles_of_transform;

pub use spec::{
    InvalidArgument, Jumps, Request, Simulation, Volatility, DEFAULT_LEVELS, MAX_PATHS, MAX_STEPS,
};
pub use summary::{path_range, PathRange, PathSamples, Summary};

/// Paths per chunk (one RNG stream each). 1024 keeps 10,000 paths in 10 chunks, enough
/// to balance two threads, and a chunk's outputs (24 KiB) in L1/L2.
pub const CHUNK_PATHS: usize = 1024;

/// Rejects a thread count outside `1..=MAX_THREADS` (see [`crate::threads`]).
fn validate_threads(threads: Option<usize>) -> Result<(), InvalidArgument> {
    crate::threads::check_threads(threads).map_err(|message| InvalidArgument {
        argument: "threads".into(),
        // The message starts with the argument's name, which `Display` puts first.
        message: message.trim_start_matches("threads ").into(),
    })
}

/// The three per-path vectors as the kernel leaves them.
struct RawPaths {
    log_terminal: Vec<f64>,
    log_low: Vec<f64>,
    log_high: Vec<f64>,
    mean_terminal: f64,
}

impl RawPaths {
    /// Hands the vectors back for reuse by the next simulation.
    fn recycle(self) {
        buffers::give(self.log_terminal);
        buffers::give(self.log_low);
        buffers::give(self.log_high);
    }

    fn to_prices(&self, s0: f64) -> PathSamples {
        let price = |v: &Vec<f64>| v.par_iter().map(|x| s0 * x.exp()).collect();
        PathSamples {
            terminal: price(&self.log_terminal),
            low: price(&self.log_low),
            high: price(&self.log_high),
            mean_terminal: self.mean_terminal,
        }
    }
}

/// Runs the chunks on the current rayon pool.
fn run_paths(sim: &Simulation) -> RawPaths {
    let sigmas = match &sim.volatility {
        Volatility::Constant(s) => vec![*s; sim.n_steps],
        Volatility::PerStep(path) => path.clone(),
    };
    let compensator = sim.jumps.map_or(0.0, |j| j.lam * j.kappa());
    let steps = StepTable::new(sim.mu, &sigmas, compensator, sim.dt);
    let sparse = sim.jumps.as_ref().and_then(|j| SparseJumps::new(j, sim.dt));

    let n = sim.n_paths;
    // Every element is written by its chunk below: reused vectors need no clearing.
    let (mut log_terminal, mut log_low, mut log_high) =
        (buffers::take(n), buffers::take(n), buffers::take(n));
    let chunk_sums: Vec<f64> = log_terminal
        .par_chunks_mut(CHUNK_PATHS)
        .zip(log_low.par_chunks_mut(CHUNK_PATHS))
        .zip(log_high.par_chunks_mut(CHUNK_PATHS))
        .enumerate()
        .map(|(k, ((log_terminal, log_low), log_high))| {
            let rng = crate::rng::stream(sim.seed, k as u64);
            let out = ChunkOut {
                log_terminal,
                log_low,
                log_high,
            };
            let j = sparse.as_ref();
            match (j.is_some(), sim.bridge) {
                (false, false) => run_chunk::<false, false>(sim.s0, &steps, j, rng, out),
                (false, true) => run_chunk::<false, true>(sim.s0, &steps, j, rng, out),
                (true, false) => run_chunk::<true, false>(sim.s0, &steps, j, rng, out),
                (true, true) => run_chunk::<true, true>(sim.s0, &steps, j, rng, out),
            }
        })
        .collect();
    RawPaths {
        log_terminal,
        log_low,
        log_high,
        mean_terminal: chunk_sums.iter().sum::<f64>() / n as f64,
    }
}

/// Simulates the paths and returns the per-path terminal / min / max prices, in path
/// order. `threads = None` uses rayon's global pool.
pub fn simulate_paths(
    sim: &Simulation,
    threads: Option<usize>,
) -> Result<PathSamples, InvalidArgument> {
    sim.validate()?;
    validate_threads(threads)?;
    pool::run_on(threads, || {
        let raw = run_paths(sim);
        let samples = raw.to_prices(sim.s0);
        raw.recycle();
        samples
    })
}

/// Simulates and summarises: quantiles of the terminal, minimum and maximum prices at
/// `request.levels`, the mean terminal price and, if asked, the joint path range.
pub fn simulate(
    sim: &Simulation,
    request: &Request,
    threads: Option<usize>,
) -> Result<Summary, InvalidArgument> {
    sim.validate()?;
    request.validate()?;
    validate_threads(threads)?;
    pool::run_on(threads, || {
        let mut raw = run_paths(sim);
        let price = |x: f64| sim.s0 * x.exp();
        let path_range = request.path_confidence.map(|c| {
            let r = summary::path_range(&raw.log_low, &raw.log_high, c);
            PathRange {
                low: price(r.low),
                high: price(r.high),
                ..r
            }
        });
        let samples = request.keep_samples.then(|| raw.to_prices(sim.s0));
        let levels = &request.levels;
        let RawPaths {
            log_terminal,
            log_low,
            log_high,
            mean_terminal,
        } = &mut raw;
        // The three selections in parallel (each also splits its partitioning pass).
        let (terminal, (path_min, path_max)) = rayon::join(
            || quantiles_of_transform(log_terminal, levels, price),
            || {
                rayon::join(
                    || quantiles_of_transform(log_low, levels, price),
                    || quantiles_of_transform(log_high, levels, price),
                )
            },
        );
        let mean_terminal = *mean_terminal;
        raw.recycle();
        Summary {
            levels: levels.clone(),
            terminal,
            path_min,
            path_max,
            mean_terminal,
            n_paths: sim.n_paths,
            n_steps: sim.n_steps,
            path_range,
            samples,
        }
    })
}

#[cfg(test)]
mod tests;
