//! Quantiles with NumPy's default rule (linear interpolation between order statistics,
//! `numpy.quantile(..., method="linear")`), by selection instead of a full sort.

/// Quantiles of `data` at levels `qs` (each in [0, 1]); `data` is reordered in place.
///
/// Panics if `data` is empty or a level is outside [0, 1]: callers validate first.
pub fn quantiles_linear(data: &mut [f64], qs: &[f64]) -> Vec<f64> {
    assert!(!data.is_empty(), "quantiles of an empty sample");
    let n = data.len();
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    // Visit the levels in increasing order so that each selection works on the part of
    // the slice to the right of the previous one.
    let mut order: Vec<usize> = (0..qs.len()).collect();
    order.sort_by(|&i, &j| qs[i].total_cmp(&qs[j]));
    let mut out = vec![f64::NAN; qs.len()];
    let mut start = 0usize;
    for &i in &order {
        let q = qs[i];
        assert!(
            (0.0..=1.0).contains(&q),
            "quantile level {q} outside [0, 1]"
        );
        let pos = q * (n - 1) as f64;
        let lo = (pos.floor() as usize).min(n - 1);
        let frac = pos - lo as f64;
        if lo >= start {
            data[start..].select_nth_unstable_by(lo - start, cmp);
            start = lo;
        }
        let a = data[lo];
        let value = if frac > 0.0 && lo + 1 < n {
            // The next order statistic is the minimum of what lies to the right.
            let b = data[lo + 1..].iter().copied().fold(f64::INFINITY, f64::min);
            a + (b - a) * frac
        } else {
            a
        };
        out[i] = value;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_reference(data: &[f64], q: f64) -> f64 {
        let mut s = data.to_vec();
        s.sort_by(f64::total_cmp);
        let pos = q * (s.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = (lo + 1).min(s.len() - 1);
        s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
    }

    #[test]
    fn matches_sorted_linear_interpolation() {
        let data: Vec<f64> = (0..1001)
            .map(|i| ((i * 7919) % 1009) as f64 * 0.37 - 50.0)
            .collect();
        let qs = [0.95, 0.05, 0.5, 0.25, 0.75, 0.0, 1.0, 0.333];
        let got = quantiles_linear(&mut data.clone(), &qs);
        for (q, g) in qs.iter().zip(got) {
            assert!((g - sorted_reference(&data, *q)).abs() < 1e-12, "q={q}");
        }
    }

    #[test]
    fn single_element() {
        assert_eq!(quantiles_linear(&mut [3.0], &[0.1, 0.9]), vec![3.0, 3.0]);
    }
}
