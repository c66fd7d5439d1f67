//! Running a closure over fixed-size chunks, serially or on a rayon pool.
//!
//! The chunking never depends on the thread count, so neither do the results; the thread
//! count only decides who runs which chunk.

use std::sync::Arc;

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::ParticleError;

/// Where chunks run: `threads = Some(1)` serially on the caller's thread (no pool
/// overhead), `Some(n)` on a pool of `n` threads built once and cached, `None` on rayon's
/// global pool.
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
        let pool = match threads {
            Some(0) => {
                return Err(ParticleError::invalid(
                    "threads must be >= 1 (or None for rayon's default)",
                ))
            }
            Some(1) | None => None,
            Some(n) => Some(Arc::new(
                ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| ParticleError::invalid(format!("threads={n}: {e}")))?,
            )),
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
