//! Rayon thread pools by thread count, built once and reused: building a pool spawns
//! threads (tens of microseconds or more), as long as a small simulation takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

fn pools() -> &'static Mutex<HashMap<usize, Arc<ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `work` on a pool of `threads` threads, or on rayon's global pool for `None`.
pub(crate) fn run_on<R: Send>(threads: Option<usize>, work: impl FnOnce() -> R + Send) -> R {
    match threads {
        None => work(),
        Some(n) => {
            let pool = {
                let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
                map.entry(n)
                    .or_insert_with(|| {
                        Arc::new(
                            ThreadPoolBuilder::new()
                                .num_threads(n)
                                .thread_name(move |i| format!("monte-carlo-{n}-{i}"))
                                .build()
                                .expect("building a rayon thread pool"),
                        )
                    })
                    .clone()
            };
            pool.install(work)
        }
    }
}
