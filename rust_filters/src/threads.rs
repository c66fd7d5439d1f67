//! The bound on the worker-thread count that particle filters and simulations accept.
//!
//! Why a bound: a pool of `threads` threads is spawned on first use, so `threads=10**6`
//! spent seconds spawning before the OS refused (and the Monte Carlo pool then panicked).
//! The results never depend on the thread count (fixed chunks with their own random
//! streams), so a bound costs nothing but a clear error; this one is far above any machine
//! the service runs on and small enough to spawn in milliseconds.

/// The most worker threads a filter or simulation takes.
pub const MAX_THREADS: usize = 256;

/// `Ok` for `None` (rayon's default pool) and `1..=MAX_THREADS`, else the message (which
/// names `threads` and the allowed values).
pub fn check_threads(threads: Option<usize>) -> Result<(), String> {
    match threads {
        Some(n) if !(1..=MAX_THREADS).contains(&n) => Err(format!(
            "threads must be in [1, {MAX_THREADS}] (MAX_THREADS) or None for the default \
             pool, got {n}"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_checked() {
        assert!(check_threads(None).is_ok());
        assert!(check_threads(Some(1)).is_ok());
        assert!(check_threads(Some(MAX_THREADS)).is_ok());
        for n in [0, MAX_THREADS + 1, 1_000_000] {
            assert!(check_threads(Some(n)).unwrap_err().contains("threads"));
        }
    }
}
