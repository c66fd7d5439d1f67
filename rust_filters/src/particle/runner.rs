//! Running a closure over fixed-size chunks, serially or on a rayon pool.
//!
//! The chunking never depends on the thread count, so neither do the results; the thread
//! count only decides who runs which chunk.

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::ParticleError;

/// The process-wide pool of `n` threads, built on first use. Filters with the same thread
/// count share it: building a pool (spawning its threads) on every construction was a
/// measurable part of a short run, and on a small machine one pool per size also avoids
/// oversubscribing the cores when several filters run at once.
fn shared_pool(n: usize) -> Result<Arc<ThreadPool>, ParticleError> {
    /// The pools built so far, by thread count.
    type Pools = Vec<(usize, Arc<ThreadPool>)>;
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, pool)) = pools.iter().find(|(size, _)| *size == n) {
        return Ok(Arc::clone(pool));
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| ParticleError::invalid(format!("threads={n}: {e}")))?,
    );
    pools.push((n, Arc::clone(&pool)));
    Ok(pool)
}

/// Where chunks run: `threads = Some(1)` serially on the caller's thread (no pool
/// overhead), `Some(n)` on the shared pool of `n` threads (see [`shared_pool`]), `None` on
/// rayon's global pool.
#[derive(Clone)]
pub struct Runner {
    threads: Option<usize>,
    pool: Option<Arc<ThreadPool>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("threads", &self.threads)
            .finish()
    }
}

impl Runner {
    pub fn new(threads: Option<usize>) -> Result<Self, ParticleError> {
        crate::threads::check_threads(threads).map_err(ParticleError::invalid)?;
        let pool = match threads {
            Some(1) | None => None,
            Some(n) => Some(shared_pool(n)?),
        };
        Ok(Self { threads, pool })
    }

    /// The thread count asked for (`None`: rayon's default).
    pub fn threads(&self) -> Option<usize> {
        self.threads
    }

    /// Run `f` on one of the pool's threads (or here, without a pool of our own). A batch
    /// of steps runs inside one `install`, so its per-step parallel passes are plain
    /// rayon splits within the pool instead of a hand-off to the pool and back each step.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// Call `f(k, &mut items[k])` for every `k`.
    pub fn for_each<T, F>(&self, items: &mut [T], f: F)
    where
        T: Send,
        F: Fn(usize, &mut T) + Sync + Send,
    {
        if self.threads == Some(1) {
            items.iter_mut().enumerate().for_each(|(k, c)| f(k, c));
            return;
        }
        let mut run = || items.par_iter_mut().enumerate().for_each(|(k, c)| f(k, c));
        match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }
}
