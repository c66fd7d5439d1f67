//! Small dense linear algebra on caller-owned, preallocated row-major buffers.
//!
//! Hand-written on purpose: the UKF works with 2..10-dimensional matrices at a rate of
//! millions of steps per second, and nalgebra's dynamically sized types allocate on every
//! operation (its statically sized ones would fix the dimension at compile time, but the
//! measurement size of the smile model changes per option chain). Everything here works
//! in place on slices the filter allocated once, so the hot path never touches the heap.
//!
//! Layout: an `n x n` matrix `a` is `a[i * n + j]` (row `i`, column `j`).

// Index loops mirror the matrix formulas (L_ij, a_ik b_kj); iterator chains would hide them.
#![allow(clippy::needless_range_loop)]

/// Why a matrix could not be factorised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CholeskyError {
    /// A pivot was zero, negative or NaN even after the largest jitter.
    NotPositiveDefinite,
}

/// Make `a` exactly symmetric: `a = (a + a') / 2`.
#[inline]
pub fn symmetrize(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = v;
            a[j * n + i] = v;
        }
    }
}

/// In-place lower Cholesky factor of the symmetric `a` (only its lower triangle is read);
/// on success `a` holds `L` with zeros above the diagonal, `a = L L'`.
// Always inlined: the filter calls it with a dimension that is a constant per model, and
// only an inlined copy lets the compiler unroll the loops for that size.
#[inline(always)]
pub fn cholesky_in_place(a: &mut [f64], n: usize) -> Result<(), CholeskyError> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || d.is_nan() {
            return Err(CholeskyError::NotPositiveDefinite);
        }
        let ljj = d.sqrt();
        a[j * n + j] = ljj;
        let inv = 1.0 / ljj;
        for i in (j + 1)..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s * inv;
        }
        for i in 0..j {
            a[i * n + j] = 0.0;
        }
    }
    Ok(())
}

/// Number of jitter attempts after the plain factorisation fails; the jitter grows tenfold
/// from `1e-10` to `1e-1` times the mean diagonal (or absolute, if that is not positive).
pub const JITTER_TRIES: u32 = 10;

/// Lower Cholesky factor of `scale * a` into `l`, falling back to `scale * a + eps I` with
/// growing `eps` when `a` is not numerically positive definite.
///
/// `a` is left untouched. Returns the jitter that was needed (`0.0` when none).
#[inline(always)]
pub fn cholesky_jitter(
    a: &[f64],
    n: usize,
    scale: f64,
    l: &mut [f64],
) -> Result<f64, CholeskyError> {
    let nn = n * n;
    for (li, ai) in l[..nn].iter_mut().zip(&a[..nn]) {
        *li = scale * ai;
    }
    if cholesky_in_place(l, n).is_ok() {
        return Ok(0.0);
    }
    cholesky_jitter_retry(a, n, scale, l)
}

/// The rare path of [`cholesky_jitter`], out of line so that the common one stays small.
#[cold]
#[inline(never)]
fn cholesky_jitter_retry(
    a: &[f64],
    n: usize,
    scale: f64,
    l: &mut [f64],
) -> Result<f64, CholeskyError> {
    let nn = n * n;
    let mean_diag = (0..n).map(|i| scale * a[i * n + i]).sum::<f64>() / n as f64;
    let base = if mean_diag.is_finite() && mean_diag > 0.0 {
        mean_diag
    } else {
        1.0
    };
    let mut eps = 1e-10 * base;
    for _ in 0..JITTER_TRIES {
        for (li, ai) in l[..nn].iter_mut().zip(&a[..nn]) {
            *li = scale * ai;
        }
        symmetrize(l, n);
        for i in 0..n {
            l[i * n + i] += eps;
        }
        if cholesky_in_place(l, n).is_ok() {
            return Ok(eps);
        }
        eps *= 10.0;
    }
    Err(CholeskyError::NotPositiveDefinite)
}

/// Solve `L y = b` in place (`b` becomes `y`) for the lower-triangular `l` (`n x n`).
#[inline(always)]
pub fn forward_substitute(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// [`forward_substitute`] with the reciprocal pivots `inv_diag[i] = 1 / L_ii` given.
#[inline(always)]
pub fn forward_substitute_recip(l: &[f64], inv_diag: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s * inv_diag[i];
    }
}

/// `log det(L L') = 2 sum log L_ii` for a Cholesky factor `l`.
#[inline]
pub fn log_det_from_cholesky(l: &[f64], n: usize) -> f64 {
    // One logarithm of the product while it stays a normal number (the usual case for a
    // handful of pivots), else the sum of logarithms.
    let prod: f64 = (0..n).map(|i| l[i * n + i]).product();
    if prod.is_normal() {
        2.0 * prod.ln()
    } else {
        2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs_matrix() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let mut l = [0.0; 9];
        assert_eq!(cholesky_jitter(&a, 3, 1.0, &mut l), Ok(0.0));
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((v - a[i * 3 + j]).abs() < 1e-14);
            }
        }
        assert_eq!(l[1], 0.0);
        let mut b = [1.0, 2.0, 3.0];
        forward_substitute(&l, 3, &mut b);
        let back: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|k| l[i * 3 + k] * b[k]).sum())
            .collect();
        assert!((back[0] - 1.0).abs() < 1e-14 && (back[2] - 3.0).abs() < 1e-14);
        let ld = log_det_from_cholesky(&l, 3);
        let det = 4.0 * (5.0 * 3.0 - 1.0) - 2.0 * (2.0 * 3.0 - 0.4) + 0.4 * (2.0 - 5.0 * 0.4);
        assert!((ld - f64::ln(det)).abs() < 1e-13);
    }

    #[test]
    fn jitter_rescues_semidefinite_and_fails_on_nan() {
        // Rank one: plain Cholesky hits a zero pivot, jitter makes it factorisable.
        let a = [1.0, 1.0, 1.0, 1.0];
        let mut l = [0.0; 4];
        let eps = cholesky_jitter(&a, 2, 1.0, &mut l).unwrap();
        assert!(eps > 0.0 && eps < 1e-6);
        let nan = [f64::NAN, 0.0, 0.0, 1.0];
        assert!(cholesky_jitter(&nan, 2, 1.0, &mut l).is_err());
        let neg = [-1.0, 0.0, 0.0, -1.0];
        assert!(cholesky_jitter(&neg, 2, 1.0, &mut l).is_err());
    }

    #[test]
    fn symmetrize_averages() {
        let mut a = [1.0, 2.0, 4.0, 1.0];
        symmetrize(&mut a, 2);
        assert_eq!(a, [1.0, 3.0, 3.0, 1.0]);
    }
}
