//! The filter itself: sigma points, predict, update, batch replay, reset, snapshots.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::fixed::{self, Weights};
use super::{check_param, invalid, UkfError, UkfModel};
use crate::linalg::{cholesky_jitter, forward_substitute_recip, log_det_from_cholesky};
use crate::snapshot::{self, SnapshotError};

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Scaled sigma-point parameters (van der Merwe): `lambda = alpha^2 (n + kappa) - n`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SigmaParams {
    pub alpha: f64,
    pub beta: f64,
    pub kappa: f64,
}

impl SigmaParams {
    /// filterpy's defaults for the workloads: `alpha = 0.1, beta = 2, kappa = 3 - n`.
    pub fn standard(n: usize) -> Self {
        SigmaParams {
            alpha: 0.1,
            beta: 2.0,
            kappa: 3.0 - n as f64,
        }
    }

    fn check(&self, n: usize) -> Result<(), UkfError> {
        check_param("alpha", self.alpha, self.alpha > 0.0, "finite and > 0")?;
        check_param("beta", self.beta, true, "finite")?;
        check_param(
            "kappa",
            self.kappa,
            n as f64 + self.kappa > 0.0,
            &format!("finite with n + kappa > 0 (n = {n})"),
        )
    }
}

/// Everything that defines where the filter is: the part a snapshot must carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UkfState {
    pub params: SigmaParams,
    /// Filtered mean (length n) and covariance (n x n row-major).
    pub x: Vec<f64>,
    pub p: Vec<f64>,
    /// The prior the filter starts from and returns to on a reset.
    pub x0: Vec<f64>,
    pub p0: Vec<f64>,
    /// Automatic resets after a numerical divergence since construction.
    pub n_resets: u64,
    /// True once an automatic reset happened; cleared only by a manual [`Ukf::reset`].
    pub diverged: bool,
    /// Why the latest automatic reset happened.
    pub last_reset_reason: Option<String>,
    /// Cholesky factorisations that needed diagonal jitter.
    pub n_jitter: u64,
}

/// Scratch buffers, allocated once (measurement-sized ones grow only when a larger
/// measurement arrives). They carry no state between calls except the `Q(dt)` cache,
/// which is a pure function of `dt`, so a restored filter continues bit-identically.
#[derive(Debug, Clone, Default)]
struct Workspace {
    sig: Vec<f64>,  // (2n+1) x n sigma points
    chol: Vec<f64>, // n x n
    xm: Vec<f64>,   // n
    pm: Vec<f64>,   // n x n
    q: Vec<f64>,    // n x n
    q_dt: Option<f64>,
    /// `r` holds the model's `R` (only for models with a constant one).
    r_ready: bool,
    m_cap: usize,
    zs: Vec<f64>,       // (2n+1) x m
    zp: Vec<f64>,       // m
    s: Vec<f64>,        // m x m
    s_chol: Vec<f64>,   // m x m Cholesky factor of S
    r: Vec<f64>,        // m x m
    pxz: Vec<f64>,      // n x m, then (L^-1 Pxz')'
    nu: Vec<f64>,       // m
    inv_diag: Vec<f64>, // m reciprocal pivots of chol(S)
}

impl Workspace {
    fn new(n: usize) -> Self {
        let k = 2 * n + 1;
        Workspace {
            sig: vec![0.0; k * n],
            chol: vec![0.0; n * n],
            xm: vec![0.0; n],
            pm: vec![0.0; n * n],
            q: vec![0.0; n * n],
            ..Default::default()
        }
    }

    fn ensure_meas(&mut self, n: usize, m: usize) {
        if m > self.m_cap {
            let k = 2 * n + 1;
            self.zs.resize(k * m, 0.0);
            self.zp.resize(m, 0.0);
            self.s.resize(m * m, 0.0);
            self.s_chol.resize(m * m, 0.0);
            self.r.resize(m * m, 0.0);
            self.pxz.resize(n * m, 0.0);
            self.nu.resize(m, 0.0);
            self.inv_diag.resize(m, 0.0);
            self.m_cap = m;
        }
    }
}

/// Additive-noise Unscented Kalman Filter over the model `M`.
///
/// Per step (filterpy's algorithm): `predict(dt)` draws sigma points from `(x, P)`, moves
/// them with the model, and takes their weighted mean and covariance plus `Q(dt)`;
/// `update(z)` draws sigma points again from the predicted `(x, P)`, measures them and
/// applies the Kalman correction. Numerics: covariances are symmetric by construction,
/// a Cholesky that fails is retried with diagonal jitter (counted in `n_jitter`), the gain
/// is applied through the Cholesky factor of `S` (`P -= W'W` with `W = L^-1 Pxz'`, which
/// keeps `P` symmetric). Invalid arguments return [`UkfError`] before anything changes. A
/// step whose result is not finite, or whose covariance cannot be factorised even with
/// jitter, resets the filter to its prior `(x0, P0)` and records why (`n_resets`,
/// `diverged`, `last_reset_reason`); an update that diverged returns a NaN likelihood.
#[derive(Debug, Clone)]
pub struct Ukf<M: UkfModel> {
    model: M,
    state: UkfState,
    n: usize,
    wm: Vec<f64>,
    wc: Vec<f64>,
    scale: f64, // n + lambda
    ws: Workspace,
}

fn check_vector(name: &str, v: &[f64], len: usize) -> Result<(), UkfError> {
    if v.len() != len {
        return invalid(format!("{name} must have length {len}, got {}", v.len()));
    }
    if let Some(i) = v.iter().position(|a| !a.is_finite()) {
        return invalid(format!("{name} must be finite, got {} at index {i}", v[i]));
    }
    Ok(())
}

fn check_covariance(name: &str, p: &[f64], n: usize) -> Result<(), UkfError> {
    check_vector(name, p, n * n)?;
    // Symmetric and positive definite: the same check as a measurement noise R.
    super::check_noise_covariance(name, p, n, true)
}

pub(crate) fn check_dt(dt: f64) -> Result<(), UkfError> {
    check_param("dt", dt, dt >= 0.0, "finite and >= 0")
}

impl<M: UkfModel> Ukf<M> {
    /// A filter starting from the prior `N(x0, P0)` (`P0` row-major `n x n`).
    pub fn new(model: M, x0: &[f64], p0: &[f64], params: SigmaParams) -> Result<Self, UkfError> {
        let n = model.state_dim();
        check_vector("x0", x0, n)?;
        check_covariance("P0", p0, n)?;
        params.check(n)?;
        let state = UkfState {
            params,
            x: x0.to_vec(),
            p: symmetric_copy(p0, n),
            x0: x0.to_vec(),
            p0: symmetric_copy(p0, n),
            n_resets: 0,
            diverged: false,
            last_reset_reason: None,
            n_jitter: 0,
        };
        Ok(Self::from_state(model, state))
    }

    /// Rebuild a filter from a model and a state (weights and buffers are derived).
    pub fn from_state(model: M, state: UkfState) -> Self {
        let n = model.state_dim();
        let SigmaParams { alpha, beta, kappa } = state.params;
        let nf = n as f64;
        // Same expressions as filterpy's MerweScaledSigmaPoints, so the weights are the
        // same doubles.
        let lambda = alpha * alpha * (nf + kappa) - nf;
        let c = 0.5 / (nf + lambda);
        let mut wm = vec![c; 2 * n + 1];
        let mut wc = wm.clone();
        wm[0] = lambda / (nf + lambda);
        wc[0] = lambda / (nf + lambda) + (1.0 - alpha * alpha + beta);
        Ukf {
            model,
            state,
            n,
            wm,
            wc,
            scale: lambda + nf,
            ws: Workspace::new(n),
        }
    }

    pub fn model(&self) -> &M {
        &self.model
    }
    pub fn state(&self) -> &UkfState {
        &self.state
    }
    pub fn dim(&self) -> usize {
        self.n
    }
    /// Filtered mean.
    pub fn x(&self) -> &[f64] {
        &self.state.x
    }
    /// Filtered covariance, row-major `n x n`.
    pub fn p(&self) -> &[f64] {
        &self.state.p
    }

    /// Back to a prior: the given one (which also becomes the prior of later automatic
    /// resets) or the stored one. Clears `diverged`; does not count in `n_resets`.
    pub fn reset(&mut self, x0: Option<&[f64]>, p0: Option<&[f64]>) -> Result<(), UkfError> {
        let n = self.n;
        if let Some(x0) = x0 {
            check_vector("x0", x0, n)?;
        }
        if let Some(p0) = p0 {
            check_covariance("P0", p0, n)?;
        }
        if let Some(x0) = x0 {
            self.state.x0.copy_from_slice(x0);
        }
        if let Some(p0) = p0 {
            self.state.p0 = symmetric_copy(p0, n);
        }
        self.state.x.copy_from_slice(&self.state.x0);
        self.state.p.copy_from_slice(&self.state.p0);
        self.state.diverged = false;
        Ok(())
    }

    /// Move the scratch result into the state. Slicing with the model's (constant) `n`
    /// turns these copies into a few moves instead of `memmove` calls.
    #[inline(always)]
    fn commit(&mut self, n: usize) {
        self.state.x[..n].copy_from_slice(&self.ws.xm[..n]);
        self.state.p[..n * n].copy_from_slice(&self.ws.pm[..n * n]);
    }

    fn diverge(&mut self, reason: String) {
        self.state.x.copy_from_slice(&self.state.x0);
        self.state.p.copy_from_slice(&self.state.p0);
        self.state.n_resets += 1;
        self.state.diverged = true;
        self.state.last_reset_reason = Some(reason);
    }

    /// Sigma points of `(x, P)` into `ws.sig`; returns whether jitter was needed.
    #[inline(always)]
    fn sigma_points(&mut self) -> Result<bool, ()> {
        // The model's dimension, not `self.n`: for a concrete model it is a constant after
        // inlining, so the small loops below unroll.
        let n = self.model.state_dim();
        let eps =
            cholesky_jitter(&self.state.p, n, self.scale, &mut self.ws.chol).map_err(|_| ())?;
        let (x, l, sig) = (&self.state.x, &self.ws.chol, &mut self.ws.sig);
        sig[..n].copy_from_slice(&x[..n]);
        for i in 0..n {
            for j in 0..n {
                let lji = l[j * n + i];
                sig[(1 + i) * n + j] = x[j] + lji;
                sig[(1 + n + i) * n + j] = x[j] - lji;
            }
        }
        Ok(eps > 0.0)
    }

    /// Propagate the state by `dt` (any finite `dt >= 0`, in the model's time unit).
    pub fn predict(&mut self, dt: f64) -> Result<(), UkfError> {
        check_dt(dt)?;
        self.predict_unchecked(dt);
        // Within a step the update's sigma points factorise this P at once; alone, the
        // caller sees it, so it is checked here.
        self.check_committed_p("predict");
        Ok(())
    }

    /// A committed `P` with a non-positive diagonal entry, or that has no Cholesky factor
    /// even with jitter, has lost its definiteness (e.g. `P - K S K'` cancelling badly): a
    /// divergence, so reset and say so. Returns whether it reset.
    #[inline(always)]
    fn check_committed_p(&mut self, stage: &str) -> bool {
        let n = self.model.state_dim(); // constant per model: see `sigma_points`
        let p = &self.state.p;
        let diagonal_ok = (0..n).all(|i| p[i * n + i] > 0.0);
        if diagonal_ok && cholesky_jitter(p, n, 1.0, &mut self.ws.chol).is_ok() {
            return false;
        }
        let reason = if diagonal_ok {
            "P is not positive definite even with jitter"
        } else {
            "P has a non-positive diagonal entry"
        };
        self.diverge(format!("{stage}: {reason}"));
        true
    }

    /// `Q(dt)` into `ws.q`, recomputed only when `dt` changes.
    #[inline(always)]
    fn refresh_q(&mut self, dt: f64) {
        if self.ws.q_dt.map(f64::to_bits) != Some(dt.to_bits()) {
            self.model.process_noise(dt, &mut self.ws.q);
            self.ws.q_dt = Some(dt);
        }
    }

    /// `R` of this design into `ws.r[..m * m]` (sized for `m`), once for a constant `R`.
    #[inline(always)]
    fn refresh_r(&mut self, design: &M::Design, m: usize) {
        let n = self.model.state_dim();
        self.ws.ensure_meas(n, m);
        if !(M::CONSTANT_MEASUREMENT_NOISE && self.ws.r_ready) {
            self.model
                .measurement_noise(design, &mut self.ws.r[..m * m]);
            self.ws.r_ready = M::CONSTANT_MEASUREMENT_NOISE;
        }
    }

    #[inline(always)]
    fn predict_unchecked(&mut self, dt: f64) {
        let n = self.model.state_dim(); // constant per model: see `sigma_points`

        // The small sizes run on stack arrays (see `fixed`); a constant `n` folds the match.
        match n {
            2 => return self.predict_small::<2, 5>(dt),
            3 => return self.predict_small::<3, 7>(dt),
            _ => {}
        }
        let k = 2 * n + 1;
        let jitter = match self.sigma_points() {
            Ok(j) => j,
            Err(()) => {
                return self.diverge("predict: P is not positive definite even with jitter".into())
            }
        };
        self.model.transition(dt, &mut self.ws.sig[..k * n]);
        self.refresh_q(dt);
        let ws = &mut self.ws;
        weighted_mean(&self.wm[..k], &ws.sig[..k * n], n, &mut ws.xm[..n]);
        ws.pm[..n * n].copy_from_slice(&ws.q[..n * n]);
        for (s, &w) in self.wc[..k].iter().enumerate() {
            let row = &ws.sig[s * n..(s + 1) * n];
            for a in 0..n {
                let da = w * (row[a] - ws.xm[a]);
                for b in 0..=a {
                    ws.pm[a * n + b] += da * (row[b] - ws.xm[b]);
                }
            }
        }
        mirror_lower(&mut ws.pm, n);
        if !(all_finite(&ws.xm) && all_finite(&ws.pm)) {
            return self.diverge("predict: state became non-finite".into());
        }
        self.commit(n);
        self.state.n_jitter += jitter as u64;
    }

    #[inline(always)]
    fn predict_small<const N: usize, const K: usize>(&mut self, dt: f64) {
        self.refresh_q(dt);
        let w = Weights::<K>::from_slices(&self.wm, &self.wc);
        let q = &self.ws.q;
        match fixed::predict::<M, N, K>(&self.model, &mut self.state, &w, self.scale, q, dt) {
            Ok(jitter) => self.state.n_jitter += jitter as u64,
            Err(reason) => self.diverge(reason.into()),
        }
    }

    #[inline(always)]
    fn update_small<const N: usize, const K: usize>(
        &mut self,
        z: &[f64],
        design: &M::Design,
    ) -> f64 {
        self.refresh_r(design, 2);
        let w = Weights::<K>::from_slices(&self.wm, &self.wc);
        let (model, state, r) = (&self.model, &mut self.state, &self.ws.r);
        match fixed::update::<M, N, K>(model, design, state, &w, self.scale, r, z) {
            Ok((loglik, jitter)) => {
                self.state.n_jitter += jitter as u64;
                if self.check_committed_p("update") {
                    return f64::NAN;
                }
                loglik
            }
            Err(reason) => {
                self.diverge(reason.into());
                f64::NAN
            }
        }
    }

    /// Correct the state with the measurement `z` of this `design`; returns the innovation
    /// log-likelihood `log N(z; zp, S)` (NaN if the update diverged and reset the filter).
    pub fn update_with(&mut self, z: &[f64], design: &M::Design) -> Result<f64, UkfError> {
        self.model.check_design(design)?;
        let m = self.model.meas_dim(design);
        check_vector("z", z, m)?;
        Ok(self.update_unchecked(z, design))
    }

    #[inline(always)]
    fn update_unchecked(&mut self, z: &[f64], design: &M::Design) -> f64 {
        let n = self.model.state_dim();
        // As in `predict_unchecked`: the fixed-size path for the sizes it covers.
        match (n, z.len()) {
            (2, 2) => return self.update_small::<2, 5>(z, design),
            (3, 2) => return self.update_small::<3, 7>(z, design),
            _ => {}
        }
        self.refresh_r(design, z.len());
        let jitter = match self.sigma_points() {
            Ok(j) => j,
            Err(()) => {
                self.diverge("update: P is not positive definite even with jitter".into());
                return f64::NAN;
            }
        };
        let core = update_core(
            &self.model,
            design,
            &self.state,
            &self.wm,
            &self.wc,
            z,
            &mut self.ws,
        );
        match core {
            Ok((loglik, jitter_s)) => {
                self.commit(n);
                self.state.n_jitter += (jitter || jitter_s) as u64;
                if self.check_committed_p("update") {
                    return f64::NAN;
                }
                loglik
            }
            Err(reason) => {
                self.diverge(reason.into());
                f64::NAN
            }
        }
    }

    /// `predict(dt)` then `update_with(z, design)`: the one streaming call per observation.
    /// Both arguments are checked before anything changes.
    pub fn step_with(&mut self, z: &[f64], dt: f64, design: &M::Design) -> Result<f64, UkfError> {
        check_dt(dt)?;
        self.model.check_design(design)?;
        check_vector("z", z, self.model.meas_dim(design))?;
        self.predict_unchecked(dt);
        Ok(self.update_unchecked(z, design))
    }
}

/// Models whose measurement is fixed (`Design = ()`): plain `update`/`step` and the batch.
impl<M: UkfModel<Design = ()>> Ukf<M> {
    /// Measurement dimension `m`.
    pub fn meas_dim(&self) -> usize {
        self.model.meas_dim(&())
    }

    pub fn update(&mut self, z: &[f64]) -> Result<f64, UkfError> {
        self.update_with(z, &())
    }

    pub fn step(&mut self, z: &[f64], dt: f64) -> Result<f64, UkfError> {
        self.step_with(z, dt, &())
    }

    /// Replay a series: for each `t`, `predict(dts[t])` (1 when `dts` is `None`) then
    /// `update(zs[t])`. `zs` is row-major `T x m`; outputs are `T x n` means, `T x n x n`
    /// covariances and `T` log-likelihoods. All inputs are checked before the first step,
    /// so an invalid one leaves the filter unchanged.
    pub fn filter(
        &mut self,
        zs: &[f64],
        dts: Option<&[f64]>,
        means: &mut [f64],
        covs: &mut [f64],
        loglik: &mut [f64],
    ) -> Result<(), UkfError> {
        let (n, m) = (self.model.state_dim(), self.meas_dim());
        if m == 0 || zs.len() % m != 0 {
            return invalid(format!(
                "zs must have shape (T, {m}), got {} values",
                zs.len()
            ));
        }
        let t_len = zs.len() / m;
        if let Some(i) = zs.iter().position(|v| !v.is_finite()) {
            return invalid(format!("zs must be finite, got {} at row {}", zs[i], i / m));
        }
        if let Some(dts) = dts {
            if dts.len() != t_len {
                return invalid(format!(
                    "dts must have length {t_len} (one per row of zs), got {}",
                    dts.len()
                ));
            }
            if let Some(i) = dts.iter().position(|&d| !(d.is_finite() && d >= 0.0)) {
                return invalid(format!(
                    "dts must be finite and >= 0, got {} at index {i}",
                    dts[i]
                ));
            }
        }
        assert!(means.len() == t_len * n && covs.len() == t_len * n * n && loglik.len() == t_len);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.replay_avx2(zs, dts, means, covs, loglik) };
            return Ok(());
        }
        self.replay(zs, dts, means, covs, loglik);
        Ok(())
    }

    /// [`Ukf::replay`] compiled for AVX2: wider vectors for the sigma-point loops. No FMA
    /// is enabled, so the operations and their bits are those of the baseline build.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn replay_avx2(
        &mut self,
        zs: &[f64],
        dts: Option<&[f64]>,
        means: &mut [f64],
        covs: &mut [f64],
        loglik: &mut [f64],
    ) {
        self.replay(zs, dts, means, covs, loglik)
    }

    /// The batch loop on checked inputs.
    #[inline(always)]
    fn replay(
        &mut self,
        zs: &[f64],
        dts: Option<&[f64]>,
        means: &mut [f64],
        covs: &mut [f64],
        loglik: &mut [f64],
    ) {
        let (n, m) = (self.model.state_dim(), self.meas_dim());
        for t in 0..loglik.len() {
            self.predict_unchecked(dts.map_or(1.0, |d| d[t]));
            loglik[t] = self.update_unchecked(&zs[t * m..(t + 1) * m], &());
            means[t * n..(t + 1) * n].copy_from_slice(&self.state.x[..n]);
            covs[t * n * n..(t + 1) * n * n].copy_from_slice(&self.state.p[..n * n]);
        }
    }
}

/// Snapshots of filters whose model is plain data.
impl<M: UkfModel + Serialize + DeserializeOwned> Ukf<M> {
    pub fn kind() -> String {
        format!("UKF/{}", M::NAME)
    }

    /// The model and state as bytes (see [`crate::snapshot`]).
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::to_bytes(&Self::kind(), &(&self.model, &self.state))
    }

    /// A filter from [`Ukf::snapshot`] bytes; it continues bit-identically.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (model, state): (M, UkfState) = snapshot::from_bytes(&Self::kind(), bytes)?;
        Self::from_restored(model, state)
    }
}

impl<M: UkfModel> Ukf<M> {
    /// A filter from a restored model and state, after the constructor's checks: sizes,
    /// model parameters, sigma-point parameters, a finite `x` and `x0`, a finite symmetric
    /// `P` with a Cholesky factor (with the filter's jitter, as every committed `P` has)
    /// and a positive definite `P0`. A corrupt snapshot is an error, not a filter that
    /// runs on NaN or an indefinite covariance.
    pub fn from_restored(model: M, state: UkfState) -> Result<Self, SnapshotError> {
        let n = model.state_dim();
        check_state_dims(&state, n)?;
        let corrupt = |e: UkfError| SnapshotError(format!("corrupt UKF snapshot: {e}"));
        model.validate().map_err(corrupt)?;
        state.params.check(n).map_err(corrupt)?;
        check_vector("x", &state.x, n).map_err(corrupt)?;
        check_vector("x0", &state.x0, n).map_err(corrupt)?;
        check_covariance("P0", &state.p0, n).map_err(corrupt)?;
        check_vector("P", &state.p, n * n).map_err(corrupt)?;
        let mut p = state.p.clone();
        crate::linalg::symmetrize(&mut p, n);
        let mut l = vec![0.0; n * n];
        if p != state.p || cholesky_jitter(&p, n, 1.0, &mut l).is_err() {
            return Err(corrupt(UkfError::InvalidInput(
                "P must be symmetric and positive definite".into(),
            )));
        }
        Ok(Self::from_state(model, state))
    }
}

/// A restored state must fit its model.
pub fn check_state_dims(state: &UkfState, n: usize) -> Result<(), SnapshotError> {
    let ok = state.x.len() == n
        && state.x0.len() == n
        && state.p.len() == n * n
        && state.p0.len() == n * n;
    if ok {
        Ok(())
    } else {
        Err(SnapshotError(format!(
            "corrupt UKF snapshot: state sizes do not match n = {n}"
        )))
    }
}

/// The Kalman correction on the sigma points already in `ws.sig` and `R` in `ws.r`: writes the new mean
/// and covariance to `ws.xm`, `ws.pm` (the filter commits them only on success) and
/// returns the innovation log-likelihood and whether `S` needed jitter.
#[inline]
fn update_core<M: UkfModel>(
    model: &M,
    design: &M::Design,
    state: &UkfState,
    wm: &[f64],
    wc: &[f64],
    z: &[f64],
    ws: &mut Workspace,
) -> Result<(f64, bool), &'static str> {
    let n = model.state_dim(); // constants for a concrete model, so the loops unroll
    let k = 2 * n + 1;
    let m = model.meas_dim(design);
    debug_assert_eq!(m, z.len());
    let (x, p) = (&state.x, &state.p);
    let zs = &mut ws.zs[..k * m];
    let zp = &mut ws.zp[..m];
    let s = &mut ws.s[..m * m];
    let pxz = &mut ws.pxz[..n * m];
    let sig = &ws.sig[..k * n];
    model.measure(design, sig, zs);
    let (wm, wc) = (&wm[..k], &wc[..k]);
    weighted_mean(wm, zs, m, zp);
    s.copy_from_slice(&ws.r[..m * m]);
    pxz.fill(0.0);
    for (si, &w) in wc.iter().enumerate() {
        let zrow = &zs[si * m..(si + 1) * m];
        let xrow = &sig[si * n..(si + 1) * n];
        for a in 0..m {
            let da = w * (zrow[a] - zp[a]);
            for b in 0..=a {
                s[a * m + b] += da * (zrow[b] - zp[b]);
            }
        }
        for a in 0..n {
            let dx = w * (xrow[a] - x[a]);
            for b in 0..m {
                pxz[a * m + b] += dx * (zrow[b] - zp[b]);
            }
        }
    }
    let l = &mut ws.s_chol[..m * m];
    let eps = cholesky_jitter(s, m, 1.0, l)
        .map_err(|_| "update: innovation covariance S is not positive definite")?;
    let l = &*l;
    let nu = &mut ws.nu[..m];
    for i in 0..m {
        nu[i] = z[i] - zp[i];
    }
    // Reciprocal pivots once, so the n + 1 triangular solves multiply instead of divide
    // (a division is the longest step in their dependency chain).
    let inv_diag = &mut ws.inv_diag[..m];
    for i in 0..m {
        inv_diag[i] = 1.0 / l[i * m + i];
    }
    forward_substitute_recip(l, inv_diag, m, nu); // u = L^-1 (z - zp)
    for a in 0..n {
        // row a of W' = (L^-1 Pxz')'
        forward_substitute_recip(l, inv_diag, m, &mut pxz[a * m..(a + 1) * m]);
    }
    let maha = dot(nu, nu);
    let loglik = -0.5 * (m as f64 * LN_2PI + log_det_from_cholesky(l, m) + maha);
    // K (z - zp) = Pxz S^-1 (z - zp) = W'u and K S K' = W'W.
    for a in 0..n {
        let wa = &pxz[a * m..(a + 1) * m];
        ws.xm[a] = x[a] + dot(wa, nu);
        for b in 0..=a {
            ws.pm[a * n + b] = p[a * n + b] - dot(wa, &pxz[b * m..(b + 1) * m]);
        }
    }
    mirror_lower(&mut ws.pm, n);
    if loglik.is_finite() && all_finite(&ws.xm) && all_finite(&ws.pm) {
        Ok((loglik, eps > 0.0))
    } else {
        Err("update: state or likelihood became non-finite")
    }
}

/// `P0` is accepted when symmetric to 1e-9 relative; it is stored exactly symmetric.
fn symmetric_copy(p: &[f64], n: usize) -> Vec<f64> {
    let mut out = p.to_vec();
    crate::linalg::symmetrize(&mut out, n);
    out
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[inline]
fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|a| a.is_finite())
}

#[inline]
fn weighted_mean(w: &[f64], rows: &[f64], d: usize, out: &mut [f64]) {
    out[..d].fill(0.0);
    for (s, &ws) in w.iter().enumerate() {
        for j in 0..d {
            out[j] += ws * rows[s * d + j];
        }
    }
}

#[inline]
fn mirror_lower(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            a[j * n + i] = a[i * n + j];
        }
    }
}
