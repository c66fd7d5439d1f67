//! Chunk buffers kept between filters.
//!
//! Why: a filter of 10,000 particles owns about a megabyte of chunk buffers. Freed, the C
//! allocator hands that memory back to the kernel, so the next filter's first write to
//! each page is a page fault and the kernel zeroing the page: about 0.4 ms, a few percent
//! of an EKPF workload run, which constructs a filter per call. Kept sets are handed out
//! again without clearing: every buffer is written before it is read (the prior draw
//! fills the cloud, a step writes the whole of each output chunk).

use std::sync::Mutex;

use super::filter::Chunk;

/// Chunk sets kept (a filter owns two: its cloud and the buffers of the next step).
const KEEP: usize = 4;
/// Larger filters are not kept, so an occasional huge one does not pin memory.
const KEEP_MAX_PARTICLES: usize = 1 << 17;

/// One filter's chunk set, with what it fits.
struct Kept {
    n: usize,
    with_p: bool,
    chunks: Vec<Chunk>,
}

static SPARE: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

/// A kept chunk set for `n` particles (with EKF variances if `with_p`), contents
/// unspecified; `None` if there is none.
pub(crate) fn take(n: usize, with_p: bool) -> Option<Vec<Chunk>> {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    let i = spare.iter().position(|k| k.n == n && k.with_p == with_p)?;
    Some(spare.swap_remove(i).chunks)
}

/// Keep a chunk set for a later [`take`].
pub(crate) fn give(n: usize, with_p: bool, chunks: Vec<Chunk>) {
    if n > KEEP_MAX_PARTICLES || chunks.is_empty() {
        return;
    }
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < KEEP {
        spare.push(Kept { n, with_p, chunks });
    }
}
