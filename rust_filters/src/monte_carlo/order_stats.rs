//! Linear (numpy default) quantiles of a monotone transform of a large sample.
//!
//! Why not `crate::quantile::quantiles_linear`: the simulation keeps path minima and
//! maxima in log space and numpy's rule interpolates between *prices*, so the transform
//! `s0 * exp(x)` must be applied to the two order statistics around each level before
//! interpolating (an `exp` on 2 numbers per level instead of N per vector); and the
//! quantile step dominates short simulations (1,000,000 × 5), where one partitioning
//! pass beats five full selections. Order statistics are exact whichever path is taken.

use rayon::prelude::*;

/// Below this size the ranks are selected directly.
const DIRECT_MAX: usize = 1 << 15;
/// Sample size used to bracket each rank in the large case.
const SAMPLE: usize = 1 << 14;
/// Elements per parallel piece of the partitioning pass (128 KiB, cache-resident while
/// it is scanned once per window).
const PIECE: usize = 1 << 14;
/// More windows than this (many levels) and the ranks are selected directly.
const MAX_WINDOWS: usize = 8;

/// numpy's `_lerp`: `a + (b - a) t`, computed from `b` for `t >= 0.5` (bit-for-bit
/// what `numpy.quantile(..., method="linear")` returns).
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// Quantiles at `levels` (each in [0, 1]) of `f(data)` with numpy's linear rule, for a
/// non-decreasing `f` applied only to the order statistics used. `data` (non-empty, no
/// NaN) may be reordered.
pub(crate) fn quantiles_of_transform(
    data: &mut [f64],
    levels: &[f64],
    f: impl Fn(f64) -> f64,
) -> Vec<f64> {
    let n = data.len();
    let plan: Vec<(usize, f64)> = levels
        .iter()
        .map(|&q| {
            let pos = (n - 1) as f64 * q;
            let lo = (pos.floor() as usize).min(n - 1);
            (lo, pos - lo as f64)
        })
        .collect();
    let mut ranks: Vec<usize> = plan
        .iter()
        .flat_map(|&(lo, _)| [lo, (lo + 1).min(n - 1)])
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let values = order_statistics(data, &ranks);
    let at = |r: usize| f(values[ranks.binary_search(&r).expect("rank was selected")]);
    plan.iter()
        .map(|&(lo, t)| lerp(at(lo), at((lo + 1).min(n - 1)), t))
        .collect()
}

/// The order statistics of `data` at the sorted, distinct `ranks`.
fn order_statistics(data: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    if data.len() <= DIRECT_MAX {
        select_in_place(data, ranks)
    } else {
        select_by_sample(data, ranks)
    }
}

/// Successive selections, each on the part of the slice right of the previous rank.
fn select_in_place(data: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let mut start = 0;
    ranks
        .iter()
        .map(|&r| {
            let (_, v, _) = data[start..].select_nth_unstable_by(r - start, f64::total_cmp);
            let v = *v;
            start = r + 1;
            v
        })
        .collect()
}

/// A window of values `[lo, hi]` expected (from a sample) to hold some of the ranks.
struct Window {
    lo: f64,
    hi: f64,
}

/// Floyd–Rivest style: a strided sample brackets each rank with a window of values
/// (±3.5 sampling s.d. of the rank's position in the sample, so a miss is rare); one
/// parallel pass counts the elements below each window and collects those inside it;
/// each rank is then selected inside its (small) window. A rank whose window turns out
/// not to contain it is selected from the whole slice instead: never wrong, only slower.
fn select_by_sample(data: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let n = data.len();
    let stride = n / SAMPLE;
    let mut sample: Vec<f64> = (0..SAMPLE).map(|i| data[i * stride]).collect();
    sample.sort_unstable_by(f64::total_cmp);
    let s = SAMPLE as f64;
    let bracket = |r: usize| {
        let p = r as f64 / (n - 1) as f64;
        let centre = p * (s - 1.0);
        let margin = 3.5 * (s * p * (1.0 - p)).sqrt() + 4.0;
        let (lo_i, hi_i) = (centre - margin, centre + margin);
        let lo = if lo_i < 0.0 {
            f64::NEG_INFINITY
        } else {
            sample[lo_i as usize]
        };
        let hi = if hi_i >= s - 1.0 {
            f64::INFINITY
        } else {
            sample[hi_i.ceil() as usize]
        };
        Window { lo, hi }
    };
    let brackets: Vec<Window> = ranks.iter().map(|&r| bracket(r)).collect();
    // Merge overlapping brackets into disjoint windows, so that "below window j" counts
    // are plain comparisons; each rank is then looked up in the window holding its bracket.
    let mut order: Vec<usize> = (0..brackets.len()).collect();
    order.sort_by(|&a, &b| brackets[a].lo.total_cmp(&brackets[b].lo));
    let mut windows: Vec<Window> = Vec::new();
    for &i in &order {
        let b = &brackets[i];
        match windows.last_mut() {
            Some(w) if b.lo <= w.hi => w.hi = w.hi.max(b.hi),
            _ => windows.push(Window { lo: b.lo, hi: b.hi }),
        }
    }
    let owner: Vec<usize> = brackets
        .iter()
        .map(|b| {
            windows
                .iter()
                .position(|w| w.lo <= b.lo && b.hi <= w.hi)
                .expect("every bracket lies in a merged window")
        })
        .collect();

    if windows.len() > MAX_WINDOWS {
        return select_in_place(data, ranks);
    }
    // The membership test unrolls over a fixed number of windows (padded with empty ones).
    let (below, mut inside) = match windows.len() {
        0..=2 => partition::<2>(data, &windows),
        3..=4 => partition::<4>(data, &windows),
        5..=6 => partition::<6>(data, &windows),
        _ => partition::<MAX_WINDOWS>(data, &windows),
    };

    let mut out = Vec::with_capacity(ranks.len());
    let mut missed = Vec::new();
    for (i, &r) in ranks.iter().enumerate() {
        let j = owner[i];
        let local = r.checked_sub(below[j]).filter(|&k| k < inside[j].len());
        match local {
            Some(k) => {
                let (_, v, _) = inside[j].select_nth_unstable_by(k, f64::total_cmp);
                out.push(*v);
            }
            None => {
                out.push(f64::NAN);
                missed.push(i);
            }
        }
    }
    for i in missed {
        let (_, v, _) = data.select_nth_unstable_by(ranks[i], f64::total_cmp);
        out[i] = *v;
    }
    out
}

/// The partitioning pass, in parallel over pieces: per window, how many values lie below
/// it, and the values inside it (in an order that does not matter: only order statistics
/// are taken from them).
fn partition<const W: usize>(data: &[f64], windows: &[Window]) -> (Vec<usize>, Vec<Vec<f64>>) {
    // Padding windows at +inf: no finite value passes either of their edges.
    let mut bounds = [(f64::INFINITY, f64::INFINITY); W];
    for (b, w) in bounds.iter_mut().zip(windows) {
        *b = (w.lo, w.hi);
    }
    let pieces: Vec<Piece> = data
        .par_chunks(PIECE)
        .map_init(
            || (vec![0u8; PIECE], vec![0.0; PIECE], vec![0u8; PIECE]),
            |(ranks, kept, kept_ranks), piece| {
                partition_piece(piece, &bounds, windows.len(), ranks, kept, kept_ranks)
            },
        )
        .collect();
    let mut below = vec![0usize; windows.len()];
    // One more bucket for values in a padding window (+inf only), dropped below.
    let mut inside: Vec<Vec<f64>> = vec![Vec::new(); W + 1];
    for piece in pieces {
        below.iter_mut().zip(piece.below).for_each(|(t, b)| *t += b);
        for (&x, &r) in piece.kept.iter().zip(&piece.kept_ranks) {
            // Bucketing by address, not by a branch per value.
            inside[usize::from(r >> 1)].push(x);
        }
    }
    inside.truncate(windows.len());
    (below, inside)
}

/// What one piece contributes: its below-counts per window, and the values inside a
/// window with their edge ranks (odd: window `rank / 2`).
struct Piece {
    below: Vec<usize>,
    kept: Vec<f64>,
    kept_ranks: Vec<u8>,
}

/// One piece, compiled for AVX2 where the CPU has it (integer counts and comparisons
/// only: the same result either way).
fn partition_piece<const W: usize>(
    piece: &[f64],
    bounds: &[(f64, f64); W],
    used: usize,
    ranks: &mut [u8],
    kept: &mut [f64],
    kept_ranks: &mut [u8],
) -> Piece {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { partition_piece_avx2(piece, bounds, used, ranks, kept, kept_ranks) };
    }
    partition_piece_any(piece, bounds, used, ranks, kept, kept_ranks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn partition_piece_avx2<const W: usize>(
    piece: &[f64],
    bounds: &[(f64, f64); W],
    used: usize,
    ranks: &mut [u8],
    kept: &mut [f64],
    kept_ranks: &mut [u8],
) -> Piece {
    partition_piece_any(piece, bounds, used, ranks, kept, kept_ranks)
}

/// The windows are sorted and disjoint, so a value's rank among their edges,
/// `#{j : x >= lo_j} + #{j : x > hi_j}`, says everything: odd means inside window
/// `rank / 2`, and the value is below window `j` iff `rank <= 2 j`. The ranks are a
/// branch-free pass the compiler vectorises; the values inside a window are then gathered
/// by branch-free compaction (a branch per value would mispredict on the ~10 % inside).
/// The scratch slices (at least `piece.len()` long) are reused across pieces.
#[inline(always)]
fn partition_piece_any<const W: usize>(
    piece: &[f64],
    bounds: &[(f64, f64); W],
    used: usize,
    ranks: &mut [u8],
    kept: &mut [f64],
    kept_ranks: &mut [u8],
) -> Piece {
    let ranks = &mut ranks[..piece.len()];
    for (r, &x) in ranks.iter_mut().zip(piece) {
        *r = bounds
            .iter()
            .map(|&(lo, hi)| u8::from(x >= lo) + u8::from(x > hi))
            .sum();
    }
    let below = (0..used)
        .map(|j| {
            let edge = (2 * j) as u8;
            ranks.iter().map(|&r| usize::from(r <= edge)).sum()
        })
        .collect();
    let (kept, kept_ranks) = (&mut kept[..piece.len()], &mut kept_ranks[..piece.len()]);
    let mut k = 0;
    for (&x, &r) in piece.iter().zip(ranks.iter()) {
        // k <= index of x < piece.len(): in bounds.
        kept[k] = x;
        kept_ranks[k] = r;
        k += usize::from(r & 1);
    }
    Piece {
        below,
        kept: kept[..k].to_vec(),
        kept_ranks: kept_ranks[..k].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// numpy's linear rule on a sorted copy: the oracle.
    fn reference(data: &[f64], q: f64) -> f64 {
        let mut s = data.to_vec();
        s.sort_by(f64::total_cmp);
        let pos = (s.len() - 1) as f64 * q;
        let lo = (pos.floor() as usize).min(s.len() - 1);
        lerp(s[lo], s[(lo + 1).min(s.len() - 1)], pos - lo as f64)
    }

    fn check(data: Vec<f64>, levels: &[f64]) {
        let got = quantiles_of_transform(&mut data.clone(), levels, |x| x);
        for (&q, g) in levels.iter().zip(got) {
            assert_eq!(g, reference(&data, q), "q={q} n={}", data.len());
        }
    }

    #[test]
    fn matches_sorting_small_and_large() {
        let mut rng = crate::rng::stream(9, 0);
        let levels = [0.05, 0.25, 0.5, 0.75, 0.95, 0.0, 1.0, 0.5, 1e-6, 0.999_999];
        for n in [1, 2, 3, 10, 1001, DIRECT_MAX + 1, 200_003] {
            let data: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
            check(data, &levels);
        }
    }

    #[test]
    fn survives_ties_and_a_misleading_sample() {
        // Many ties (as path minima equal to S_0), and a sorted input whose strided sample
        // is fine but whose values sit in blocks: both must still give exact results.
        let n = 100_000;
        let ties: Vec<f64> = (0..n)
            .map(|i| if i % 3 == 0 { 0.0 } else { -(i as f64) })
            .collect();
        check(ties, &[0.05, 0.5, 0.66, 0.67, 0.95]);
        let blocks: Vec<f64> = (0..n).map(|i| ((i * 7) % 13) as f64).collect();
        check(blocks, &[0.05, 0.25, 0.5, 0.75, 0.95]);
        // Sample points all equal to one value while the rest differ.
        let spiky: Vec<f64> = (0..n)
            .map(|i| if i % (n / SAMPLE) == 0 { 1.0 } else { i as f64 })
            .collect();
        check(spiky, &[0.05, 0.5, 0.95]);
    }

    #[test]
    fn applies_the_transform_before_interpolating() {
        let data: Vec<f64> = (0..11).map(|i| i as f64 / 10.0).collect();
        let got = quantiles_of_transform(&mut data.clone(), &[0.55], f64::exp);
        let expected = lerp(0.5f64.exp(), 0.6f64.exp(), (10.0 * 0.55) - 5.0);
        assert_eq!(got, vec![expected]);
    }
}
