//! Per-path output vectors reused across simulations.
//!
//! Why: a fresh vector of a million doubles is 8 MB of new pages, and the kernel's first
//! write to each page is a page fault plus the kernel zeroing the page: about a tenth of a
//! 1,000,000 × 5 simulation for the three vectors. Kept vectors are handed out again
//! without clearing: the kernel writes every element before anything reads it.

use std::sync::Mutex;

/// Vectors kept between calls (one simulation's three).
const KEEP: usize = 3;
/// Larger vectors are not kept (64 MiB each), so an occasional huge run does not pin memory.
const KEEP_MAX_LEN: usize = 1 << 23;

static SPARE: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());

/// A vector of length `n` whose contents are unspecified (zeros or an earlier run's).
pub(crate) fn take(n: usize) -> Vec<f64> {
    let kept = SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    match kept {
        Some(mut v) => {
            if v.len() >= n {
                v.truncate(n);
            } else {
                v.resize(n, 0.0);
            }
            v
        }
        None => vec![0.0; n],
    }
}

/// Returns a vector for a later [`take`].
pub(crate) fn give(v: Vec<f64>) {
    if v.capacity() > KEEP_MAX_LEN {
        return;
    }
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < KEEP {
        spare.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_vectors_have_the_asked_length() {
        give(vec![1.0; 10]);
        assert_eq!(take(4).len(), 4);
        give(vec![1.0; 3]);
        assert_eq!(take(7).len(), 7);
        assert_eq!(take(5).len(), 5);
        give(vec![0.0; KEEP_MAX_LEN + 1]);
        assert!(SPARE
            .lock()
            .unwrap()
            .iter()
            .all(|v| v.capacity() <= KEEP_MAX_LEN));
    }
}
