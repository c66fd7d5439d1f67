//! Systematic resampling over the chunked particle cloud.
//!
//! WORKLOADS.md section 2: one `U ~ U(0, 1)`, `u_k = (U + k) / N`,
//! `A_k = min{ j : cumsum(W)_j >= u_k }`. The cloud is split in chunks, each holding its
//! weights up to a factor (`w_i = exp(lw_i - m_c)`, `m_c` the chunk's largest
//! log-weight), so the global cumulative sum is `offset_c + scale_c * (local cumsum)`
//! with `scale_c = exp(m_c - L)`. Each output chunk finds its first ancestor by binary
//! search over the chunk offsets and then merges forward, so chunks resample in parallel
//! and the ancestors depend only on the weights and `U`, never on the thread count.

use super::filter::Chunk;
use super::CHUNK;

/// The offsets and scales of one resampling, shared (read-only) by all output chunks.
pub(crate) struct Systematic<'a> {
    chunks: &'a [Chunk],
    /// `offsets[c]`: the total weight of chunks `0..c` (`offsets.len() = chunks + 1`).
    offsets: &'a [f64],
    scales: &'a [f64],
    u0: f64,
    /// `total / N`: the spacing of the `u_k` on the (not exactly unit) total weight.
    spacing: f64,
}

impl<'a> Systematic<'a> {
    /// `offsets` and `scales` must have been filled by [`fill_offsets`] for `chunks`.
    pub fn new(
        chunks: &'a [Chunk],
        offsets: &'a [f64],
        scales: &'a [f64],
        u0: f64,
        n: usize,
    ) -> Self {
        let total = offsets[chunks.len()];
        Self {
            chunks,
            offsets,
            scales,
            u0,
            spacing: total / n as f64,
        }
    }

    #[inline(always)]
    fn u(&self, i: usize) -> f64 {
        (self.u0 + i as f64) * self.spacing
    }

    /// A forward scan positioned for output index `first` (the start of an output chunk).
    pub fn scan_from(&self, first: usize) -> Scan<'_, 'a> {
        let u = self.u(first);
        let last = self.chunks.len() - 1;
        let c = self.offsets[1..].partition_point(|&o| o < u).min(last);
        let local = self.chunks[c].w[0];
        Scan {
            sys: self,
            c,
            j: 0,
            local,
            cum: self.offsets[c] + self.scales[c] * local,
        }
    }
}

/// The merge state of one output chunk: the current source particle and the cumulative
/// weight up to and including it.
pub(crate) struct Scan<'s, 'a> {
    sys: &'s Systematic<'a>,
    c: usize,
    j: usize,
    local: f64,
    cum: f64,
}

impl Scan<'_, '_> {
    /// The ancestor of output index `i` (called with increasing `i`).
    #[inline(always)]
    pub fn ancestor(&mut self, i: usize) -> usize {
        let u = self.sys.u(i);
        while self.cum < u {
            if !self.advance() {
                break; // past the last particle: clip, as the NumPy reference does
            }
        }
        self.c * CHUNK + self.j
    }

    #[inline(always)]
    fn advance(&mut self) -> bool {
        let chunks = self.sys.chunks;
        if self.j + 1 < chunks[self.c].w.len() {
            self.j += 1;
        } else if self.c + 1 < chunks.len() {
            self.c += 1;
            self.j = 0;
            self.local = 0.0;
        } else {
            return false;
        }
        self.local += chunks[self.c].w[self.j];
        self.cum = self.sys.offsets[self.c] + self.sys.scales[self.c] * self.local;
        true
    }
}

/// Fill `scales[c] = exp(m_c - log_norm)` and the prefix sums `offsets` of the chunk totals.
pub(crate) fn fill_offsets(
    chunks: &[Chunk],
    log_norm: f64,
    offsets: &mut Vec<f64>,
    scales: &mut Vec<f64>,
) {
    offsets.clear();
    scales.clear();
    offsets.push(0.0);
    let mut acc = 0.0;
    for chunk in chunks {
        let scale = chunk.scale(log_norm);
        scales.push(scale);
        acc += scale * chunk.stats.sum;
        offsets.push(acc);
    }
}
