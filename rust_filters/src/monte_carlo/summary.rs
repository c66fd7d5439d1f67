//! From the per-path terminal / min / max prices to quantiles and the joint path range.

use rayon::prelude::*;

/// Per-path results in path order: terminal, minimum and maximum price (S_0 included
/// in the extremes), and the mean terminal price.
#[derive(Clone, Debug, PartialEq)]
pub struct PathSamples {
    pub terminal: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    pub mean_terminal: f64,
}

/// The narrowest equal-tail range `[low, high]` holding at least `confidence` of the
/// whole paths (`min >= low` and `max <= high`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathRange {
    pub confidence: f64,
    pub low: f64,
    pub high: f64,
    /// `low` is the `tail_q` quantile of the path minima, `high` the `1 - tail_q`
    /// quantile of the path maxima.
    pub tail_q: f64,
    /// Share of paths inside the range (`>= confidence`, the step just above it).
    pub coverage: f64,
}

/// What a simulation returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub levels: Vec<f64>,
    pub terminal: Vec<f64>,
    pub path_min: Vec<f64>,
    pub path_max: Vec<f64>,
    pub mean_terminal: f64,
    pub n_paths: usize,
    pub n_steps: usize,
    pub path_range: Option<PathRange>,
    /// The per-path prices, when asked for.
    pub samples: Option<PathSamples>,
}

/// Share of paths whose minimum is `>= low` and maximum `<= high`.
fn coverage(path_min: &[f64], path_max: &[f64], low: f64, high: f64) -> f64 {
    let inside = path_min
        .par_iter()
        .zip(path_max.par_iter())
        .filter(|(&l, &h)| l >= low && h <= high)
        .count();
    inside as f64 / path_min.len() as f64
}

/// Joint path range at `confidence` from the per-path minima and maxima (paired by
/// index; prices, or any increasing transform of them such as log prices), by bisection
/// on the tail count.
///
/// With equal tail probability `q` for the minimum and the maximum, `low(q)` and
/// `high(q)` are linear quantiles and the coverage only changes when one of them crosses
/// a sample, so it is enough to search `q = k / (N - 1)`, where the quantiles are the
/// order statistics `min_(k)` and `max_(N-1-k)`: the largest `k` whose coverage is still
/// `>= confidence` (coverage falls as `k` grows) gives the narrowest such range.
pub fn path_range(path_min: &[f64], path_max: &[f64], confidence: f64) -> PathRange {
    assert_eq!(
        path_min.len(),
        path_max.len(),
        "one minimum and one maximum per path"
    );
    let n = path_min.len();
    let mut lows = path_min.to_vec();
    let mut highs = path_max.to_vec();
    rayon::join(
        || lows.par_sort_unstable_by(f64::total_cmp),
        || highs.par_sort_unstable_by(f64::total_cmp),
    );
    let at = |k: usize| (lows[k], highs[n - 1 - k]);
    // Invariant: coverage(k_ok) >= confidence (k = 0 covers every path); k_bad fails
    // or is past the middle, where low and high would cross.
    let (mut k_ok, mut k_bad) = (0usize, n / 2 + n % 2);
    let (l0, h0) = at(0);
    let mut cov_ok = coverage(path_min, path_max, l0, h0);
    while k_bad - k_ok > 1 {
        let mid = k_ok + (k_bad - k_ok) / 2;
        let (l, h) = at(mid);
        let c = coverage(path_min, path_max, l, h);
        if c >= confidence {
            (k_ok, cov_ok) = (mid, c);
        } else {
            k_bad = mid;
        }
    }
    let (low, high) = at(k_ok);
    PathRange {
        confidence,
        low,
        high,
        tail_q: if n > 1 {
            k_ok as f64 / (n - 1) as f64
        } else {
            0.0
        },
        coverage: cov_ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_range_is_the_narrowest_that_covers() {
        // Ten paths, minima 90..99 and maxima 101..110, paired so that the path with the
        // lowest minimum also has the highest maximum: trimming k from each tail removes
        // exactly k paths.
        let low: Vec<f64> = (0..10).map(|i| 90.0 + i as f64).collect();
        let high: Vec<f64> = (0..10).map(|i| 110.0 - i as f64).collect();
        let r = path_range(&low, &high, 0.8);
        assert_eq!((r.low, r.high, r.coverage), (92.0, 108.0, 0.8));
        assert!((r.tail_q - 2.0 / 9.0).abs() < 1e-15);
        // 0.75 needs no more than 0.8 does: it is not reachable exactly.
        assert_eq!(path_range(&low, &high, 0.75).coverage, 0.8);
        assert_eq!(path_range(&low, &high, 1.0).coverage, 1.0);
    }

    #[test]
    fn path_range_with_independent_tails() {
        // The paths with the lowest minima have the lowest maxima: trimming k from each
        // tail removes 2k paths.
        let low: Vec<f64> = (0..10).map(|i| 90.0 + i as f64).collect();
        let high: Vec<f64> = (0..10).map(|i| 101.0 + i as f64).collect();
        let r = path_range(&low, &high, 0.6);
        assert_eq!((r.low, r.high, r.coverage), (92.0, 108.0, 0.6));
    }
}
