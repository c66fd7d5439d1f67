//! Systematic resampling over the chunked particle cloud.
//!
//! WORKLOADS.md section 2: one `U ~ U(0, 1)`, `u_k = (U + k) / N`,
//! `A_k = min{ j : cumsum(W)_j >= u_k }`. The cloud is split in chunks, each holding its
//! weights up to a factor (`w_i = exp(lw_i - m_c)`, `m_c` the chunk's largest
//! log-weight), so the global cumulative sum is `offset_c + scale_c * (local cumsum)`
//! with `scale_c = exp(m_c - L)`. Each output chunk finds the source chunk of its first
//! ancestor by binary search over the chunk offsets and then walks forward, so chunks
//! resample in parallel and the ancestors depend only on the weights and `U`, never on
//! the thread count.

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

    /// Write the ancestors of outputs `first .. first + anc.len()` into `anc`.
    ///
    /// Source `j` (global cumulative weight `C_j`) is the ancestor of the outputs `i` with
    /// `C_{j-1} < u_i <= C_j`, the first of which is `#{i : u_i <= C_{j-1}}`. Walking the
    /// sources in order, each marks its first output; a running maximum then fills the
    /// outputs in between. Both loops are free of data-dependent branches, which the
    /// textbook merge (one unpredictable branch per particle) is not.
    pub fn ancestors(&self, first: usize, anc: &mut [usize]) {
        let n_out = anc.len();
        let n_chunks = self.chunks.len();
        anc.fill(0);
        // Start at the chunk holding the first output's ancestor: all its sources up to
        // that ancestor mark output 0, the ancestor last.
        let u_first = (self.u0 + first as f64) * self.spacing;
        let c = self.offsets[1..]
            .partition_point(|&o| o < u_first)
            .min(n_chunks - 1);
        let inv_spacing = 1.0 / self.spacing;
        'sources: for (c, chunk) in self.chunks.iter().enumerate().skip(c) {
            // For the source after a local cumulative weight `cum`:
            // #{i : (u0 + i) spacing <= before} = floor(v) + 1 for v >= 0, else 0, with
            // v = before / spacing - u0 and before = offset_c + scale_c cum; its slot is
            // that count minus `first`. So slot = trunc(a + b cum) clamped at 0, with the
            // chunk's constants a, b: truncating gives the floor and the clamp the 0
            // together, without calling floor.
            let a = self.offsets[c] * inv_spacing - self.u0 + 1.0 - first as f64;
            let b = self.scales[c] * inv_spacing;
            let mut cum = 0.0;
            for (jj, &w) in chunk.w.iter().enumerate() {
                // Clamped to [0, 2^52] (NaN becomes 0), so the truncation can be the plain
                // instruction: a checked `as` cast adds range branches to the hot loop.
                let v = (a + b * cum).clamp_finite();
                // SAFETY: `v` is finite and in [0, 2^52], representable as i64.
                let slot = unsafe { v.to_int_unchecked::<i64>() } as usize;
                if slot >= n_out {
                    break 'sources;
                }
                anc[slot] = c * CHUNK + jj;
                cum += w;
            }
        }
        // Marks are increasing, so the running maximum takes every mark: a select (no
        // branch, which would mispredict at the irregular marks).
        let mut running = 0;
        for a in anc.iter_mut() {
            running = max_branch_free(running, *a);
            *a = running;
        }
    }
}

/// `max(a, b)` as a conditional move. LLVM turns a plain select in this loop into a
/// branch (its cmov-conversion pass judges the loop-carried dependency), and that branch
/// mispredicts at about every other output: it was half of the resampling time.
/// `std::hint::select_unpredictable` did not survive the loop's unrolling.
#[inline(always)]
fn max_branch_free(a: usize, b: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let mut r = a;
        // SAFETY: a compare and a conditional move between registers; no memory, no stack.
        unsafe {
            std::arch::asm!(
                "cmp {r}, {b}",
                "cmovb {r}, {b}",
                r = inout(reg) r,
                b = in(reg) b,
                options(pure, nomem, nostack),
            );
        }
        r
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        a.max(b)
    }
}

/// Clamping into `[0, 2^52]` with NaN sent to 0, as plain min / max selects.
trait ClampFinite {
    fn clamp_finite(self) -> f64;
}

impl ClampFinite for f64 {
    #[inline(always)]
    fn clamp_finite(self) -> f64 {
        const TOP: f64 = 4_503_599_627_370_496.0; // 2^52
        let low = if self > 0.0 { self } else { 0.0 }; // NaN fails the test: 0
        if low < TOP {
            low
        } else {
            TOP
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use rand::RngExt;

    /// Chunks of `n` particles with random weights (some zero), summarised.
    fn chunks(n: usize) -> (Vec<Chunk>, Vec<f64>, Vec<f64>) {
        let mut r = rng::stream(5, 0);
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let len = left.min(CHUNK);
            let mut c = Chunk::for_tests(len);
            for lw in c.lw.iter_mut() {
                let u: f64 = r.random();
                *lw = if u < 0.2 { f64::NEG_INFINITY } else { -8.0 * u };
            }
            c.refresh();
            out.push(c);
            left -= len;
        }
        let log_norm = super::super::filter::log_norm_for_tests(&out);
        let (mut offsets, mut scales) = (Vec::new(), Vec::new());
        fill_offsets(&out, log_norm, &mut offsets, &mut scales);
        (out, offsets, scales)
    }

    #[test]
    fn ancestors_are_the_textbook_systematic_ones() {
        let n = 3000;
        let (chunks, offsets, scales) = chunks(n);
        let u0 = 0.37;
        let sys = Systematic::new(&chunks, &offsets, &scales, u0, n);
        // Textbook: A_i = min{ j : C_j >= u_i } over the same cumulative weights.
        let mut cum = Vec::with_capacity(n);
        for (c, chunk) in chunks.iter().enumerate() {
            let mut local = 0.0;
            for &w in &chunk.w {
                local += w;
                cum.push(offsets[c] + scales[c] * local);
            }
        }
        let spacing = offsets[chunks.len()] / n as f64;
        let expected: Vec<usize> = (0..n)
            .map(|i| {
                cum.partition_point(|&c| c < (u0 + i as f64) * spacing)
                    .min(n - 1)
            })
            .collect();
        let mut got = vec![0; n];
        for (k, part) in got.chunks_mut(CHUNK).enumerate() {
            sys.ancestors(k * CHUNK, part);
        }
        assert_eq!(got, expected);
        // Zero-weight particles never have offspring.
        let weights: Vec<f64> = chunks.iter().flat_map(|c| c.w.iter().copied()).collect();
        assert!(got.iter().all(|&a| weights[a] > 0.0));
    }
}
