//! The predict and update steps for small fixed sizes, on stack arrays.
//!
//! The algorithm of the general path in `filter.rs`, with the dimensions as const
//! generics and every intermediate in a local array instead of the workspace's `Vec`s:
//! the compiler then unrolls every loop, keeps the matrices in registers and drops the
//! bounds checks (through `Vec`s it must also reload each data pointer after every store,
//! as it cannot prove they do not alias). Three changes of arithmetic shorten the chain
//! of dependent operations a step is bound by, each equal to the general path's up to
//! rounding: the Cholesky factor is computed in `L D L'` order (no square root between
//! pivots), `Pxz` comes from the factor's columns directly, and the 2 x 2 `S` is inverted
//! explicitly (with the general path's Cholesky and jitter as the fallback). The filter
//! uses `predict` for the state sizes 2 and 3 and `update` for those with a measurement
//! of size 2 (the SV workloads and any other model of those sizes); other sizes take the
//! general path.
//!
//! `N` is the state size and `K = 2N + 1` the number of sigma points (const generic
//! expressions such as `2 * N + 1` are not stable Rust yet).

use super::filter::UkfState;
use super::UkfModel;
use crate::linalg::cholesky_jitter;
use crate::particle::fastmath;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// The sigma-point weights as arrays.
pub(super) struct Weights<const K: usize> {
    pub wm: [f64; K],
    pub wc: [f64; K],
}

impl<const K: usize> Weights<K> {
    #[inline(always)]
    pub fn from_slices(wm: &[f64], wc: &[f64]) -> Self {
        Weights {
            wm: wm[..K].try_into().expect("K weights"),
            wc: wc[..K].try_into().expect("K weights"),
        }
    }
}

#[inline(always)]
fn load_vec<const N: usize>(v: &[f64]) -> [f64; N] {
    v[..N].try_into().expect("N values")
}

#[inline(always)]
fn load_mat<const N: usize>(p: &[f64]) -> [[f64; N]; N] {
    let mut out = [[0.0; N]; N];
    for (row, src) in out.iter_mut().zip(p[..N * N].chunks_exact(N)) {
        row.copy_from_slice(src);
    }
    out
}

#[inline(always)]
fn store<const N: usize>(x: &[f64; N], p: &[[f64; N]; N], state: &mut UkfState) {
    state.x[..N].copy_from_slice(x);
    state.p[..N * N].copy_from_slice(p.as_flattened());
}

/// Lower Cholesky factor `L` of `scale * a` (lower triangle read) and whether jitter was
/// needed. Computed as `L D L'` first (unit lower `U`, pivots `D`), then
/// `L = U diag(sqrt D)`: the only operations in the chain from one pivot to the next are
/// a division and a few products, the square roots all come at the end side by side (the
/// textbook column order puts a square root and a division in the chain per column, which
/// made the factorisation a large share of a step). On a non-positive pivot it falls back
/// to [`crate::linalg::cholesky_jitter`] and its jitter retries.
#[inline(always)]
fn cholesky<const N: usize>(a: &[[f64; N]; N], scale: f64) -> Option<([[f64; N]; N], bool)> {
    // c[i][j] = U_ij D_j (i > j), u[i][j] = U_ij.
    let mut c = [[0.0; N]; N];
    let mut u = [[0.0; N]; N];
    let mut d = [0.0; N];
    for j in 0..N {
        let mut dj = scale * a[j][j];
        for k in 0..j {
            dj -= c[j][k] * u[j][k];
        }
        if dj <= 0.0 || dj.is_nan() {
            return cholesky_slow(a, scale);
        }
        d[j] = dj;
        let inv = 1.0 / dj;
        for i in (j + 1)..N {
            let mut s = scale * a[i][j];
            for k in 0..j {
                s -= c[i][k] * u[j][k];
            }
            c[i][j] = s;
            u[i][j] = s * inv;
        }
    }
    let mut l = [[0.0; N]; N];
    for j in 0..N {
        let root = d[j].sqrt();
        l[j][j] = root;
        for i in (j + 1)..N {
            l[i][j] = u[i][j] * root;
        }
    }
    Some((l, false))
}

#[cold]
#[inline(never)]
fn cholesky_slow<const N: usize>(a: &[[f64; N]; N], scale: f64) -> Option<([[f64; N]; N], bool)> {
    let mut l = [[0.0; N]; N];
    let eps = cholesky_jitter(a.as_flattened(), N, scale, l.as_flattened_mut()).ok()?;
    Some((l, eps > 0.0))
}

/// Sigma points of `(x, L)`: `X_0 = x`, `X_i = x + L[:, i-1]`, `X_{N+i} = x - L[:, i-1]`.
#[inline(always)]
fn sigma_points<const N: usize, const K: usize>(x: &[f64; N], l: &[[f64; N]; N]) -> [[f64; N]; K] {
    let mut sig = [[0.0; N]; K];
    sig[0] = *x;
    for i in 0..N {
        for j in 0..N {
            sig[1 + i][j] = x[j] + l[j][i];
            sig[1 + N + i][j] = x[j] - l[j][i];
        }
    }
    sig
}

#[inline(always)]
fn weighted_mean<const D: usize, const K: usize>(w: &[f64; K], rows: &[[f64; D]; K]) -> [f64; D] {
    let mut out = [0.0; D];
    for s in 0..K {
        for j in 0..D {
            out[j] += w[s] * rows[s][j];
        }
    }
    out
}

#[inline(always)]
fn mirror_lower<const N: usize>(a: &mut [[f64; N]; N]) {
    for i in 0..N {
        for j in 0..i {
            a[j][i] = a[i][j];
        }
    }
}

#[inline(always)]
fn finite<const N: usize>(x: &[f64; N], p: &[[f64; N]; N]) -> bool {
    x.iter().chain(p.as_flattened()).all(|v| v.is_finite())
}

/// `predict(dt)` on the state (committed only on success); `q` is `Q(dt)`. Returns whether
/// the Cholesky factorisation needed jitter, or why the step diverged.
#[inline(always)]
pub(super) fn predict<M: UkfModel, const N: usize, const K: usize>(
    model: &M,
    state: &mut UkfState,
    w: &Weights<K>,
    scale: f64,
    q: &[f64],
    dt: f64,
) -> Result<bool, &'static str> {
    let x = load_vec::<N>(&state.x);
    let p = load_mat::<N>(&state.p);
    let (l, jitter) =
        cholesky(&p, scale).ok_or("predict: P is not positive definite even with jitter")?;
    let mut sig: [[f64; N]; K] = sigma_points(&x, &l);
    model.transition(dt, sig.as_flattened_mut());
    let xm = weighted_mean(&w.wm, &sig);
    let mut pm = load_mat::<N>(q);
    for s in 0..K {
        let row = &sig[s];
        for a in 0..N {
            let da = w.wc[s] * (row[a] - xm[a]);
            for b in 0..=a {
                pm[a][b] += da * (row[b] - xm[b]);
            }
        }
    }
    mirror_lower(&mut pm);
    if !finite(&xm, &pm) {
        return Err("predict: state became non-finite");
    }
    store(&xm, &pm, state);
    Ok(jitter)
}

/// What the Kalman correction needs from `S` and `Pxz`: `K nu`, `K S K'` (lower triangle),
/// the Mahalanobis term `nu' S^-1 nu`, `log det S`, and whether `S` needed jitter.
struct Correction<const N: usize> {
    k_nu: [f64; N],
    k_s_kt: [[f64; N]; N],
    maha: f64,
    log_det: f64,
    jitter: bool,
}

/// The correction through the explicit inverse of the 2 x 2 `S`: one division in the
/// chain (a Cholesky factor would put two square roots and divisions there). `None` when
/// `S` is not numerically positive definite (the Cholesky route with jitter takes over).
#[inline(always)]
fn correct_by_inverse<const N: usize>(
    s: &[[f64; 2]; 2],
    pxz: &[[f64; 2]; N],
    nu: &[f64; 2],
) -> Option<Correction<N>> {
    let det = s[0][0] * s[1][1] - s[1][0] * s[1][0];
    if !(s[0][0] > 0.0 && det > 0.0 && det.is_normal()) {
        return None;
    }
    let inv_det = 1.0 / det;
    let si = [
        [s[1][1] * inv_det, -s[1][0] * inv_det],
        [-s[1][0] * inv_det, s[0][0] * inv_det],
    ];
    let mut gain = [[0.0; 2]; N]; // K = Pxz S^-1
    for a in 0..N {
        for b in 0..2 {
            gain[a][b] = pxz[a][0] * si[0][b] + pxz[a][1] * si[1][b];
        }
    }
    let mut k_nu = [0.0; N];
    let mut k_s_kt = [[0.0; N]; N];
    for a in 0..N {
        k_nu[a] = gain[a][0] * nu[0] + gain[a][1] * nu[1];
        for b in 0..=a {
            // K S K' = K Pxz'
            k_s_kt[a][b] = gain[a][0] * pxz[b][0] + gain[a][1] * pxz[b][1];
        }
    }
    let si_nu = [
        si[0][0] * nu[0] + si[0][1] * nu[1],
        si[1][0] * nu[0] + si[1][1] * nu[1],
    ];
    Some(Correction {
        k_nu,
        k_s_kt,
        maha: nu[0] * si_nu[0] + nu[1] * si_nu[1],
        log_det: fastmath::ln(det),
        jitter: false,
    })
}

/// The correction through the Cholesky factor `L` of `S` (with jitter when needed), as
/// the general path does it: `W = L^-1 Pxz'`, `u = L^-1 nu`, `K nu = W'u`, `K S K' = W'W`.
#[cold]
#[inline(never)]
fn correct_by_cholesky<const N: usize, const Z: usize>(
    s: &[[f64; Z]; Z],
    pxz: &[[f64; Z]; N],
    nu: &[f64; Z],
) -> Option<Correction<N>> {
    let (ls, jitter) = cholesky(s, 1.0)?;
    let solve = |b: &mut [f64; Z]| {
        for i in 0..Z {
            let mut acc = b[i];
            for k in 0..i {
                acc -= ls[i][k] * b[k];
            }
            b[i] = acc / ls[i][i];
        }
    };
    let mut u = *nu;
    solve(&mut u);
    let mut w = *pxz;
    for row in w.iter_mut() {
        solve(row);
    }
    let dot = |a: &[f64; Z], b: &[f64; Z]| -> f64 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    let mut k_nu = [0.0; N];
    let mut k_s_kt = [[0.0; N]; N];
    for a in 0..N {
        k_nu[a] = dot(&w[a], &u);
        for b in 0..=a {
            k_s_kt[a][b] = dot(&w[a], &w[b]);
        }
    }
    Some(Correction {
        k_nu,
        k_s_kt,
        maha: dot(&u, &u),
        log_det: crate::linalg::log_det_from_cholesky(ls.as_flattened(), Z),
        jitter,
    })
}

/// `update(z)` for a measurement of size 2 on the state (committed only on success); `r`
/// is `R`. Returns the innovation log-likelihood and whether a factorisation needed
/// jitter, or why the step diverged.
#[inline(always)]
pub(super) fn update<M: UkfModel, const N: usize, const K: usize>(
    model: &M,
    design: &M::Design,
    state: &mut UkfState,
    w: &Weights<K>,
    scale: f64,
    r: &[f64],
    z: &[f64],
) -> Result<(f64, bool), &'static str> {
    const Z: usize = 2;
    let x = load_vec::<N>(&state.x);
    let p = load_mat::<N>(&state.p);
    let (l, jitter) =
        cholesky(&p, scale).ok_or("update: P is not positive definite even with jitter")?;
    let sig: [[f64; N]; K] = sigma_points(&x, &l);
    let mut zs = [[0.0; Z]; K];
    model.measure(design, sig.as_flattened(), zs.as_flattened_mut());
    let zp = weighted_mean(&w.wm, &zs);
    let mut s = load_mat::<Z>(r);
    for si in 0..K {
        let (zrow, wc) = (&zs[si], w.wc[si]);
        for a in 0..Z {
            let da = wc * (zrow[a] - zp[a]);
            for b in 0..=a {
                s[a][b] += da * (zrow[b] - zp[b]);
            }
        }
    }
    // Pxz = sum_s Wc_s (X_s - x)(Z_s - zp)': X_0 - x = 0 and X_{1+i} - x = -(X_{1+N+i} - x)
    // = L[:, i] with one weight c for both, so Pxz = c sum_i L[:, i] (Z_{1+i} - Z_{1+N+i})'
    // (zp cancels): a third of the products, and exact differences instead of rounded ones.
    debug_assert!(w.wc[1..].iter().all(|&v| v == w.wc[1]));
    let mut dz = [[0.0; Z]; N];
    for i in 0..N {
        for b in 0..Z {
            dz[i][b] = w.wc[1] * (zs[1 + i][b] - zs[1 + N + i][b]);
        }
    }
    let mut pxz = [[0.0; Z]; N];
    for a in 0..N {
        for i in 0..=a {
            // L is lower triangular: L[a][i] = 0 for i > a.
            for b in 0..Z {
                pxz[a][b] += l[a][i] * dz[i][b];
            }
        }
    }
    let nu = [z[0] - zp[0], z[1] - zp[1]];
    let c = correct_by_inverse(&s, &pxz, &nu)
        .or_else(|| correct_by_cholesky(&s, &pxz, &nu))
        .ok_or("update: innovation covariance S is not positive definite")?;
    let loglik = -0.5 * (Z as f64 * LN_2PI + c.log_det + c.maha);
    let mut xm = [0.0; N];
    let mut pm = [[0.0; N]; N];
    for a in 0..N {
        xm[a] = x[a] + c.k_nu[a];
        for b in 0..=a {
            pm[a][b] = p[a][b] - c.k_s_kt[a][b];
        }
    }
    mirror_lower(&mut pm);
    if !(loglik.is_finite() && finite(&xm, &pm)) {
        return Err("update: state or likelihood became non-finite");
    }
    store(&xm, &pm, state);
    Ok((loglik, jitter || c.jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two routes of the correction agree on a well-conditioned `S`, and the inverse
    /// refuses a singular one (so the Cholesky route with jitter takes over).
    #[test]
    fn inverse_and_cholesky_corrections_agree() {
        let s = [[2.0, 0.6], [0.6, 0.5]];
        let pxz = [[0.3, -0.1], [0.05, 0.2], [-0.4, 0.7]];
        let nu = [0.8, -1.1];
        let a = correct_by_inverse::<3>(&s, &pxz, &nu).unwrap();
        let b = correct_by_cholesky::<3, 2>(&s, &pxz, &nu).unwrap();
        let close = |u: f64, v: f64| (u - v).abs() <= 1e-13 * (1.0 + v.abs());
        assert!(close(a.maha, b.maha) && close(a.log_det, b.log_det));
        assert!(!a.jitter && !b.jitter);
        for i in 0..3 {
            assert!(close(a.k_nu[i], b.k_nu[i]));
            for j in 0..=i {
                assert!(close(a.k_s_kt[i][j], b.k_s_kt[i][j]));
            }
        }
        let singular = [[1.0, 1.0], [1.0, 1.0]];
        assert!(correct_by_inverse::<3>(&singular, &pxz, &nu).is_none());
        assert!(
            correct_by_cholesky::<3, 2>(&singular, &pxz, &nu)
                .unwrap()
                .jitter
        );
    }

    /// The LDL-ordered factor reproduces the matrix and agrees with the textbook one.
    #[test]
    fn cholesky_matches_the_textbook_factor() {
        let a = [[4.0, 2.0, 0.4], [2.0, 5.0, 1.0], [0.4, 1.0, 3.0]];
        let (l, jitter) = cholesky(&a, 0.5).unwrap();
        assert!(!jitter);
        let mut textbook = [0.0; 9];
        cholesky_jitter(a.as_flattened(), 3, 0.5, &mut textbook).unwrap();
        for (u, v) in l.as_flattened().iter().zip(&textbook) {
            assert!((u - v).abs() < 1e-15, "{l:?} vs {textbook:?}");
        }
        assert!(cholesky(&[[1.0, 2.0], [2.0, 1.0]], 1.0).is_none());
    }
}
