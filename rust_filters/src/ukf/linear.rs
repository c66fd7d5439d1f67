//! Linear-Gaussian model: the case where the UKF must equal the exact Kalman filter.

use serde::{Deserialize, Serialize};

use super::{check_noise_covariance, invalid, UkfError, UkfModel};

/// ```text
/// x_t = c + F x_{t-1} + w_t,  w_t ~ N(0, Q)
/// z_t = d + H x_t     + v_t,  v_t ~ N(0, R)
/// ```
/// A discrete-time model: every predict is one step of it whatever `dt` is (`dt` is
/// validated but otherwise ignored). Matrices are row-major: `F` and `Q` are `n x n`,
/// `H` is `m x n`, `R` is `m x m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearGaussian {
    n: usize,
    m: usize,
    f: Vec<f64>,
    h: Vec<f64>,
    q: Vec<f64>,
    r: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
}

fn check_len(name: &str, v: &[f64], len: usize, shape: &str) -> Result<(), UkfError> {
    if v.len() != len {
        return invalid(format!(
            "{name} must have shape {shape}, got {} values",
            v.len()
        ));
    }
    if v.iter().any(|a| !a.is_finite()) {
        return invalid(format!("{name} must be finite"));
    }
    Ok(())
}

impl LinearGaussian {
    /// `c`/`d` default to zero. `Q` and `R` must be symmetric (Q may be singular).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        m: usize,
        f: Vec<f64>,
        h: Vec<f64>,
        q: Vec<f64>,
        r: Vec<f64>,
        c: Option<Vec<f64>>,
        d: Option<Vec<f64>>,
    ) -> Result<Self, UkfError> {
        if n == 0 || m == 0 {
            return invalid(format!(
                "state and measurement sizes must be >= 1, got n = {n}, m = {m}"
            ));
        }
        check_len("F", &f, n * n, &format!("({n}, {n})"))?;
        check_len("H", &h, m * n, &format!("({m}, {n})"))?;
        check_len("Q", &q, n * n, &format!("({n}, {n})"))?;
        check_len("R", &r, m * m, &format!("({m}, {m})"))?;
        let c = c.unwrap_or_else(|| vec![0.0; n]);
        let d = d.unwrap_or_else(|| vec![0.0; m]);
        check_len("c", &c, n, &format!("({n},)"))?;
        check_len("d", &d, m, &format!("({m},)"))?;
        for (name, a, k) in [("Q", &q, n), ("R", &r, m)] {
            for i in 0..k {
                for j in 0..i {
                    if a[i * k + j] != a[j * k + i] {
                        return invalid(format!("{name} must be symmetric"));
                    }
                }
            }
        }
        check_noise_covariance("Q", &q, n, false)?;
        check_noise_covariance("R", &r, m, true)?;
        Ok(LinearGaussian {
            n,
            m,
            f,
            h,
            q,
            r,
            c,
            d,
        })
    }
}

impl LinearGaussian {
    /// `(F, H, Q, R, c, d)`, row-major.
    #[allow(clippy::type_complexity)]
    pub fn parts(&self) -> (&[f64], &[f64], &[f64], &[f64], &[f64], &[f64]) {
        (&self.f, &self.h, &self.q, &self.r, &self.c, &self.d)
    }
}

impl UkfModel for LinearGaussian {
    type Design = ();
    const NAME: &'static str = "LinearGaussian";
    const CONSTANT_MEASUREMENT_NOISE: bool = true;

    fn validate(&self) -> Result<(), UkfError> {
        let (f, h, q, r) = (
            self.f.clone(),
            self.h.clone(),
            self.q.clone(),
            self.r.clone(),
        );
        let (c, d) = (Some(self.c.clone()), Some(self.d.clone()));
        LinearGaussian::new(self.n, self.m, f, h, q, r, c, d).map(drop)
    }

    fn state_dim(&self) -> usize {
        self.n
    }
    fn meas_dim(&self, _: &()) -> usize {
        self.m
    }
    fn transition(&self, _dt: f64, points: &mut [f64]) {
        let n = self.n;
        // One point at a time through a small stack copy (n is small for a UKF).
        let mut tmp = [0.0f64; 64];
        let mut heap;
        let buf: &mut [f64] = if n <= 64 {
            &mut tmp[..n]
        } else {
            heap = vec![0.0; n];
            &mut heap
        };
        for pt in points.chunks_exact_mut(n) {
            buf.copy_from_slice(pt);
            for i in 0..n {
                let row = &self.f[i * n..(i + 1) * n];
                pt[i] = self.c[i] + row.iter().zip(buf.iter()).map(|(a, b)| a * b).sum::<f64>();
            }
        }
    }
    fn process_noise(&self, _dt: f64, q: &mut [f64]) {
        q.copy_from_slice(&self.q);
    }
    fn measure(&self, _: &(), points: &[f64], z: &mut [f64]) {
        let (n, m) = (self.n, self.m);
        for (pt, zi) in points.chunks_exact(n).zip(z.chunks_exact_mut(m)) {
            for i in 0..m {
                let row = &self.h[i * n..(i + 1) * n];
                zi[i] = self.d[i] + row.iter().zip(pt).map(|(a, b)| a * b).sum::<f64>();
            }
        }
    }
    fn measurement_noise(&self, _: &(), r: &mut [f64]) {
        r.copy_from_slice(&self.r);
    }
}
