//! Rayon thread pools by thread count, built once and reused: building a pool spawns
//! threads (tens of microseconds or more), as long as a small simulation takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use super::spec::InvalidArgument;

fn pools() -> &'static Mutex<HashMap<usize, Arc<ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `work` on a pool of `threads` threads, or on rayon's global pool for `None`; an
/// error (naming `threads`) if the pool cannot be built (the OS refused the threads).
pub(crate) fn run_on<R: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> R + Send,
) -> Result<R, InvalidArgument> {
    let Some(n) = threads else {
        return Ok(work());
    };
    let pool = {
        let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&n) {
            Some(pool) => Arc::clone(pool),
            None => {
                let pool = ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(move |i| format!("monte-carlo-{n}-{i}"))
                    .build()
                    .map_err(|e| InvalidArgument {
                        argument: "threads".into(),
                        message: format!("= {n}: cannot start the thread pool: {e}"),
                    })?;
                let pool = Arc::new(pool);
                map.insert(n, Arc::clone(&pool));
                pool
            }
        }
    };
    Ok(pool.install(work))
}
