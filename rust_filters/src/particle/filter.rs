//! [`ParticleFilter`]: the bootstrap filter and the EKPF over a chunked particle cloud.
//!
//! One time step (WORKLOADS.md sections 2 and 3, generalised to a step of length `dt`):
//!
//! ```text
//! t = 0:  the cloud is the prior (drawn at construction), log W_i = -log N
//! t >= 1: if ESS = 1 / sum W_i^2 < ess_threshold * N: systematic resampling
//!         (x, and for the EKPF the EKF variance P, jointly), log W <- -log N
//!         move every particle (below)
//! every t: lw_i = log W_i + log p(y_t | x_i) [+ EKPF correction];
//!          loglik_t = logsumexp(lw);  log W = lw - loglik_t
//! ```
//!
//! Bootstrap move: `x_i <- m + a (x_i - m) + s eta_i` (the model's transition over `dt`;
//! no move at `t = 0`). EKPF move (van der Merwe et al. 2000): predict
//! `mbar_i = m + a (x_i - m)`, `Pbar_i = a^2 P_i + s^2` (at `t = 0` the prior's mean and
//! variance), EKF-update with the model's linearisation `(z - h(mbar), H, R)`:
//! `S = H^2 Pbar + R`, `K = Pbar H / S`, `mhat = mbar + K (z - h(mbar))`,
//! `Phat = Pbar R / S` (equal to `(1 - K H) Pbar`, written so that it stays positive),
//! draw `x_i = mhat + sqrt(Phat) eta_i`, keep `P_i = Phat`, and correct the weight by
//! `log N(x_i; mbar_i, s^2) - log N(x_i; mhat_i, Phat_i)` (prior over proposal; at `t = 0`
//! the prior variance is the stationary one).
//!
//! Weights are stored unnormalised (`lw`) beside their log normaliser `log_norm`, so one
//! parallel pass per step does the resampling gather, the move, the weighting and the
//! per-chunk logsumexp, ESS and mean; the chunk results are combined in chunk order.
//! Buffers are double-buffered and preallocated: a step allocates nothing. Random
//! streams: chunk `k` at time index `t` uses `rng::stream2(seed, t, k)`, the resampling
//! uniform `stream2(seed, t, u64::MAX)`; the initial cloud and resets have streams of
//! their own. The per-particle loops use [`super::fastmath`] and are compiled for AVX2
//! too (chosen at run time, same bits).
//!
//! Degenerate steps: when the effective sample size after reweighting falls below
//! [`DEGENERATE_ESS_FRACTION`] of `N` (or every weight is zero), the EKPF redoes the move
//! from the same ancestors and normals with a Laplace proposal (`laplace_chunk`: the EKF
//! step, linear in `y^2`, overshoots by tens of log-variance units after a crash-size
//! return). A step not degenerate is untouched, so the workloads' check values stay
//! those of the EKF proposal. A step still degenerate counts in `n_degenerate`.
//!
//! Degeneracy: if every weight is `-inf` or NaN (an observation impossible under every
//! particle, e.g. `y^2` overflowing), the filter cannot normalise. It then redraws the
//! cloud from the prior with uniform weights, counts the reset in `n_resets`, records
//! why in `last_reset_reason`, and returns `-inf` for that step (which the running
//! `loglik` takes in too: the filter gave the data zero likelihood).

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::fastmath;
use super::forecast::{self, Forecast, ForecastSpec};
use super::model::{check_finite, Model, Observation, StateSpaceModel, Transition};
use super::resample::{fill_offsets, Systematic};
use super::runner::Runner;
use super::spare;
use super::{ParticleError, CHUNK, MAX_PARTICLES};
use crate::normals::BlockNormals;
use crate::rng;
use crate::snapshot;

/// Stream ids of `rng::stream2(seed, step, id)` besides the chunk streams `0..chunks`.
const RESAMPLE_STREAM: u64 = u64::MAX;
const FORECAST_SEED_STREAM: u64 = u64::MAX - 1;
const RESET_STREAM_BASE: u64 = 1 << 32;
/// A step whose effective sample size after reweighting is below this fraction of `N` (or
/// whose weights are all zero) is degenerate: the EKPF redoes it with the Laplace
/// proposal, and a step still degenerate counts in `n_degenerate`.
pub const DEGENERATE_ESS_FRACTION: f64 = 0.01;
/// The `step` of the streams that draw the initial cloud (time indices count from 0).
const INIT_STEP: u64 = u64::MAX;

/// How particles move: the transition alone, or the EKF proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    Bootstrap,
    Ekf,
}

impl Proposal {
    /// The name of the Python class, also the snapshot's kind tag.
    pub fn kind(self) -> &'static str {
        match self {
            Proposal::Bootstrap => "BootstrapPF",
            Proposal::Ekf => "EKPF",
        }
    }
}

/// Settings fixed at construction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilterConfig {
    pub n_particles: usize,
    pub seed: u64,
    /// Resample when `ESS < ess_threshold * N` (in `[0, 1]`; 0 never resamples).
    pub ess_threshold: f64,
    /// Worker threads: `None` for rayon's default pool; the results do not depend on it.
    pub threads: Option<usize>,
}

impl FilterConfig {
    pub fn new(n_particles: usize, seed: u64) -> Self {
        Self {
            n_particles,
            seed,
            ess_threshold: 0.5,
            threads: None,
        }
    }
}

/// Per-chunk results of a pass: the largest log-weight `max` and, with
/// `e_i = exp(lw_i - max)`, the sums of `e_i`, `e_i^2` and `e_i x_i`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ChunkStats {
    pub max: f64,
    pub sum: f64,
    pub sum_sq: f64,
    pub sum_x: f64,
}

/// Up to [`CHUNK`] particles.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Chunk {
    pub x: Vec<f64>,
    /// EKF variances (EKPF only; empty for the bootstrap filter).
    pub p: Vec<f64>,
    /// Unnormalised log-weights: the normalised ones are `lw - log_norm`.
    pub lw: Vec<f64>,
    /// `exp(lw - stats.max)`: the weights up to this chunk's factor (recomputed on restore).
    #[serde(skip)]
    pub w: Vec<f64>,
    /// Scratch for a step's standard normals.
    #[serde(skip)]
    z: Vec<f64>,
    /// Scratch for the ancestors when resampling.
    #[serde(skip)]
    anc: Vec<usize>,
    #[serde(skip)]
    pub stats: ChunkStats,
}

impl Chunk {
    fn new(len: usize, with_p: bool) -> Self {
        Self {
            x: vec![0.0; len],
            p: vec![0.0; if with_p { len } else { 0 }],
            lw: vec![0.0; len],
            w: vec![0.0; len],
            z: vec![0.0; len],
            anc: vec![0; len],
            stats: ChunkStats::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests(len: usize) -> Self {
        Self::new(len, false)
    }

    #[cfg(test)]
    pub(crate) fn refresh(&mut self) {
        self.summarise();
    }

    /// `exp(max - log_norm)`: turns `w` into normalised weights.
    pub fn scale(&self, log_norm: f64) -> f64 {
        if self.stats.max == f64::NEG_INFINITY {
            0.0
        } else {
            (self.stats.max - log_norm).exp()
        }
    }

    /// Fill `w` and `stats` from `lw` and `x` (while the chunk is in cache). The sums use
    /// interleaved accumulators (see [`lane_sums`]) in a fixed order, so the result still
    /// does not depend on the thread count.
    #[inline(always)]
    fn summarise(&mut self) {
        let max = lane_max(&self.lw);
        if max == f64::NEG_INFINITY {
            self.w.fill(0.0);
            self.stats = ChunkStats {
                max,
                ..ChunkStats::default()
            };
            return;
        }
        // A plain map, so that it vectorises.
        for (w, &lw) in self.w.iter_mut().zip(&self.lw) {
            *w = fastmath::exp(lw - max);
        }
        let [sum, sum_sq, sum_x] = lane_sums(&self.w, &self.x);
        self.stats = ChunkStats {
            max,
            sum,
            sum_sq,
            sum_x,
        };
    }
}

/// Interleaved accumulators: four AVX2 registers per sum, so that the additions of one
/// sum do not wait for each other (one register was bound by the add latency).
const LANES: usize = 16;

/// `(sum w_i, sum w_i^2, sum w_i x_i)` (a zero-weight particle adds nothing to the last,
/// even if its state is not finite), each in [`LANES`] interleaved partial sums (lane `l`
/// adds elements `l, l + LANES, ...` in order) combined pairwise in a fixed order, so the
/// result does not depend on the thread count.
#[inline(always)]
fn lane_sums(w: &[f64], x: &[f64]) -> [f64; 3] {
    let mut acc = [[0.0; LANES]; 3];
    let mut cw = w.chunks_exact(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (cw, cx) in (&mut cw).zip(&mut cx) {
        for l in 0..LANES {
            acc[0][l] += cw[l];
            acc[1][l] += cw[l] * cw[l];
            acc[2][l] += if cw[l] > 0.0 { cw[l] * cx[l] } else { 0.0 };
        }
    }
    for (l, (&w, &x)) in cw.remainder().iter().zip(cx.remainder()).enumerate() {
        acc[0][l] += w;
        acc[1][l] += w * w;
        acc[2][l] += if w > 0.0 { w * x } else { 0.0 };
    }
    acc.map(pairwise_total)
}

/// The lanes added pairwise (a balanced tree, in a fixed order).
#[inline(always)]
fn pairwise_total(mut a: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            a[l] += a[l + width];
        }
    }
    a[0]
}

/// The largest element (of NaN-free data), in interleaved lanes so that it vectorises.
#[inline(always)]
fn lane_max(v: &[f64]) -> f64 {
    let mut m = [f64::NEG_INFINITY; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    for (l, &e) in chunks.remainder().iter().enumerate() {
        m[l] = if e > m[l] { e } else { m[l] };
    }
    m.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b))
}

/// Everything that defines the filter: what a snapshot holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    model: Model,
    proposal: Proposal,
    n: usize,
    seed: u64,
    ess_threshold: f64,
    threads: Option<usize>,
    /// Observations processed so far (the time index of the next one).
    t: u64,
    chunks: Vec<Chunk>,
    log_norm: f64,
    loglik: f64,
    ess: f64,
    mean: f64,
    n_resamples: u64,
    n_resets: u64,
    /// Steps whose weights stayed degenerate (see [`DEGENERATE_ESS_FRACTION`]).
    n_degenerate: u64,
    last_reset_reason: Option<String>,
}

/// Combined chunk results.
struct Totals {
    log_norm: f64,
    ess: f64,
    mean: f64,
}

/// A particle filter (bootstrap or EKPF) for a [`Model`]; see the module docs.
#[derive(Clone, Debug)]
pub struct ParticleFilter {
    state: State,
    /// The buffers the next step writes (swapped with `state.chunks` after it).
    next: Vec<Chunk>,
    runner: Runner,
    offsets: Vec<f64>,
    scales: Vec<f64>,
    /// Use the AVX2 kernels where the CPU has them (off only to test that they agree).
    wide_simd: bool,
}

impl ParticleFilter {
    /// A filter whose cloud is drawn from the model's stationary prior.
    pub fn new(
        model: Model,
        proposal: Proposal,
        config: FilterConfig,
    ) -> Result<Self, ParticleError> {
        model.validate()?;
        if !(1..=MAX_PARTICLES).contains(&config.n_particles) {
            return Err(ParticleError::invalid(format!(
                "n_particles must be in [1, {MAX_PARTICLES}] (MAX_PARTICLES), got {}",
                config.n_particles
            )));
        }
        check_ess_threshold(config.ess_threshold)?;
        let runner = Runner::new(config.threads)?;
        let n = config.n_particles;
        let with_p = proposal == Proposal::Ekf;
        let chunks = new_chunks(n, with_p);
        let state = State {
            model,
            proposal,
            n,
            seed: config.seed,
            ess_threshold: config.ess_threshold,
            threads: config.threads,
            t: 0,
            chunks,
            log_norm: 0.0,
            loglik: 0.0,
            ess: n as f64,
            mean: f64::NAN,
            n_resamples: 0,
            n_resets: 0,
            n_degenerate: 0,
            last_reset_reason: None,
        };
        let mut filter = Self::with_state(state, runner);
        filter.draw_prior(INIT_STEP, 0);
        Ok(filter)
    }

    fn with_state(state: State, runner: Runner) -> Self {
        let with_p = state.proposal == Proposal::Ekf;
        let next = new_chunks(state.n, with_p);
        let n_chunks = state.chunks.len();
        Self {
            state,
            next,
            runner,
            offsets: Vec::with_capacity(n_chunks + 1),
            scales: Vec::with_capacity(n_chunks),
            wide_simd: true,
        }
    }

    /// Process one observation `y` made `dt` after the previous one; returns its
    /// log-likelihood increment `log p(y_t | y_{0..t-1})`. Invalid input changes nothing.
    pub fn step(&mut self, y: f64, dt: f64) -> Result<f64, ParticleError> {
        check_finite("y", y)?;
        let transition = self.state.model.transition(dt)?;
        Ok(self.step_checked(y, dt, transition))
    }

    /// Process a series; `dts` defaults to all ones. Everything is validated first, so an
    /// invalid element changes nothing. Returns the log-likelihood increments.
    pub fn filter(&mut self, ys: &[f64], dts: Option<&[f64]>) -> Result<Vec<f64>, ParticleError> {
        if let Some(d) = dts {
            if d.len() != ys.len() {
                return Err(ParticleError::invalid(format!(
                    "dts must have the length of ys ({}), got {}",
                    ys.len(),
                    d.len()
                )));
            }
        }
        let dt_at = |i: usize| dts.map_or(1.0, |d| d[i]);
        let mut transitions = Vec::with_capacity(ys.len());
        for (i, &y) in ys.iter().enumerate() {
            check_finite(&format!("ys[{i}]"), y)?;
            let tr = self
                .state
                .model
                .transition(dt_at(i))
                .map_err(|e| ParticleError::invalid(format!("at index {i}: {e}")))?;
            transitions.push(tr);
        }
        let runner = self.runner.clone();
        Ok(runner.install(|| {
            ys.iter()
                .zip(transitions)
                .enumerate()
                .map(|(i, (&y, tr))| self.step_checked(y, dt_at(i), tr))
                .collect()
        }))
    }

    fn step_checked(&mut self, y: f64, dt: f64, transition: Transition) -> f64 {
        match self.state.model {
            Model::Sv(m) => self.step_model(&m, y, dt, transition),
            Model::LinearGaussian(m) => self.step_model(&m, y, dt, transition),
        }
    }

    fn step_model<M: StateSpaceModel>(
        &mut self,
        model: &M,
        y: f64,
        dt: f64,
        transition: Transition,
    ) -> f64 {
        let st = &self.state;
        let t = st.t;
        let n = st.n;
        let resample = t > 0 && st.ess < st.ess_threshold * n as f64;
        if resample {
            fill_offsets(&st.chunks, st.log_norm, &mut self.offsets, &mut self.scales);
        }
        let systematic = resample.then(|| {
            let u0: f64 = rng::stream2(st.seed, t, RESAMPLE_STREAM).random();
            Systematic::new(&st.chunks, &self.offsets, &self.scales, u0, n)
        });
        let (prior_mean, prior_var) = model.prior();
        let mv = Move {
            seed: st.seed,
            t,
            first: t == 0,
            obs: model.observation(y, dt),
            transition,
            prior_mean,
            prior_var,
            prev_log_norm: st.log_norm,
            uniform_lw: -(n as f64).ln(),
            src: &st.chunks,
            systematic: systematic.as_ref(),
            laplace: false,
        };
        let wide = self.wide_simd;
        match st.proposal {
            Proposal::Bootstrap => self.runner.for_each(&mut self.next, |k, out| {
                simd::bootstrap_chunk(&mv, k, out, wide)
            }),
            Proposal::Ekf => self
                .runner
                .for_each(&mut self.next, |k, out| simd::ekf_chunk(&mv, k, out, wide)),
        }
        let mut totals = combine(&self.next);
        let degenerate = |totals: &Option<Totals>| {
            totals
                .as_ref()
                // A NaN ESS counts as degenerate.
                .is_none_or(|t| t.ess.is_nan() || t.ess < DEGENERATE_ESS_FRACTION * n as f64)
        };
        if st.proposal == Proposal::Ekf && degenerate(&totals) {
            // The EKF proposal overshot (a linearisation far from where the likelihood
            // puts the state, e.g. a crash-size return): redo the move from the same
            // ancestors and normals with the Laplace proposal (see `laplace_chunk`). Only
            // here, so a step that was not degenerate is bit-identical to before.
            let laplace = Move {
                laplace: true,
                ..mv
            };
            self.runner
                .for_each(&mut self.next, |k, out| laplace.laplace_chunk(k, out));
            totals = combine(&self.next);
        }
        let still_degenerate = degenerate(&totals);
        std::mem::swap(&mut self.state.chunks, &mut self.next);
        let st = &mut self.state;
        st.n_resamples += u64::from(resample);
        st.n_degenerate += u64::from(still_degenerate);
        let increment = match totals {
            Some(totals) => {
                st.log_norm = totals.log_norm;
                st.ess = totals.ess;
                st.mean = totals.mean;
                totals.log_norm
            }
            None => {
                st.n_resets += 1;
                st.last_reset_reason = Some(format!(
                    "at t={t} (y={y}, dt={dt}) every particle weight was -inf or NaN; \
                     the cloud was reset to the prior"
                ));
                self.draw_prior(t, RESET_STREAM_BASE);
                f64::NEG_INFINITY
            }
        };
        self.state.loglik += increment;
        self.state.t += 1;
        increment
    }

    /// Redraw the cloud from the stationary prior with uniform weights.
    fn draw_prior(&mut self, step: u64, stream_base: u64) {
        let st = &mut self.state;
        let (mean, var) = st.model.prior();
        let sd = var.sqrt();
        let seed = st.seed;
        let uniform_lw = -(st.n as f64).ln();
        self.runner.for_each(&mut st.chunks, |k, chunk| {
            // Block normals (vectorised), as the steps draw them.
            let rng = rng::stream2(seed, step, stream_base + k as u64);
            BlockNormals::new(rng).fill(&mut chunk.z);
            for (x, &z) in chunk.x.iter_mut().zip(&chunk.z) {
                *x = mean + sd * z;
            }
            chunk.p.fill(var);
            chunk.lw.fill(uniform_lw);
            chunk.summarise();
        });
        // Uniform by construction: log W = -log N exactly.
        st.log_norm = 0.0;
        st.ess = st.n as f64;
        st.mean = combine(&st.chunks).map_or(mean, |tot| tot.mean);
    }

    /// Replace parameters by name (see [`Model::with_params`]); before the first
    /// observation the prior cloud is redrawn from the new prior.
    pub fn set_params(&mut self, changes: &[(&str, f64)]) -> Result<(), ParticleError> {
        self.state.model = self.state.model.with_params(changes)?;
        if self.state.t == 0 {
            self.draw_prior(INIT_STEP, 0);
        }
        Ok(())
    }

    pub fn model(&self) -> &Model {
        &self.state.model
    }

    pub fn proposal(&self) -> Proposal {
        self.state.proposal
    }

    pub fn n_particles(&self) -> usize {
        self.state.n
    }

    pub fn seed(&self) -> u64 {
        self.state.seed
    }

    pub fn ess_threshold(&self) -> f64 {
        self.state.ess_threshold
    }

    pub fn threads(&self) -> Option<usize> {
        self.runner.threads()
    }

    /// Observations processed so far.
    pub fn t(&self) -> u64 {
        self.state.t
    }

    /// The total log-likelihood of the observations so far.
    pub fn loglik(&self) -> f64 {
        self.state.loglik
    }

    /// The effective sample size `1 / sum W_i^2` of the current weights.
    pub fn ess(&self) -> f64 {
        self.state.ess
    }

    /// The filtered mean `sum W_i x_i`.
    pub fn mean(&self) -> f64 {
        self.state.mean
    }

    pub fn n_resamples(&self) -> u64 {
        self.state.n_resamples
    }

    pub fn n_resets(&self) -> u64 {
        self.state.n_resets
    }

    /// Steps whose weights stayed degenerate: the effective sample size after reweighting
    /// below [`DEGENERATE_ESS_FRACTION`] of `N` (after the EKPF's Laplace redo), or every
    /// weight zero (which also resets the cloud). A forecast from such a cloud rests on
    /// a handful of particles.
    pub fn n_degenerate(&self) -> u64 {
        self.state.n_degenerate
    }

    pub fn last_reset_reason(&self) -> Option<&str> {
        self.state.last_reset_reason.as_deref()
    }

    /// The particles, in order.
    pub fn particles(&self) -> Vec<f64> {
        self.state
            .chunks
            .iter()
            .flat_map(|c| c.x.iter().copied())
            .collect()
    }

    /// The EKF variances (empty for the bootstrap filter).
    pub fn variances(&self) -> Vec<f64> {
        self.state
            .chunks
            .iter()
            .flat_map(|c| c.p.iter().copied())
            .collect()
    }

    /// The normalised weights `W_i = exp(lw_i - log_norm)`, in particle order.
    pub fn weights(&self) -> Vec<f64> {
        let log_norm = self.state.log_norm;
        self.state
            .chunks
            .iter()
            .flat_map(|c| {
                let s = c.scale(log_norm);
                c.w.iter().map(move |&w| w * s)
            })
            .collect()
    }

    /// Quantiles of the filtered distribution at `levels`: the weighted inverse CDF,
    /// `min{ x_(j) : sum_{i<=j} W_(i) / sum W >= q }` over the sorted particles, which is
    /// `numpy.quantile(x, q, weights=W, method="inverted_cdf")`.
    pub fn quantiles(&self, levels: &[f64]) -> Result<Vec<f64>, ParticleError> {
        check_levels(levels)?;
        let mut pairs: Vec<(f64, f64)> = self.particles().into_iter().zip(self.weights()).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut acc = 0.0;
        let cum: Vec<f64> = pairs
            .iter()
            .map(|&(_, w)| {
                acc += w;
                acc
            })
            .collect();
        let total = acc;
        let cdf: Vec<f64> = cum.iter().map(|c| c / total).collect();
        Ok(levels
            .iter()
            .map(|&q| {
                let idx = cdf.partition_point(|&c| c < q).min(pairs.len() - 1);
                pairs[idx].0
            })
            .collect())
    }

    /// Propagate the cloud forward (see [`super::forecast`]). Reads the state, never
    /// changes it. `spec.seed = None` derives the seed from the filter's seed and `t`.
    pub fn forecast(&self, spec: &ForecastSpec) -> Result<Forecast, ParticleError> {
        let transition = self.state.model.transition(spec.dt)?;
        let seed = spec.seed.unwrap_or_else(|| {
            rng::stream2(self.state.seed, self.state.t, FORECAST_SEED_STREAM).next_u64()
        });
        let n_paths = spec.n_paths.unwrap_or(self.state.n);
        forecast::simulate(
            &self.particles(),
            &self.weights(),
            &transition,
            spec,
            n_paths,
            seed,
            &self.runner,
        )
    }

    /// The filter as bytes (see [`crate::snapshot`]); [`ParticleFilter::restore`] gives
    /// back a filter that continues bit-identically.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::to_bytes(self.state.proposal.kind(), &self.state)
    }

    /// A snapshot whose particle count says `n` (the data stays that of this filter): a
    /// corrupt size field, for the restore tests.
    #[cfg(test)]
    pub(crate) fn snapshot_claiming(&self, n: usize) -> Vec<u8> {
        let mut state = self.state.clone();
        state.n = n;
        snapshot::to_bytes(self.state.proposal.kind(), &state)
    }

    /// The same filter restricted to the baseline (SSE2) kernels.
    #[cfg(test)]
    pub(crate) fn baseline_simd_only(mut self) -> Self {
        self.wide_simd = false;
        self
    }

    /// Restore a snapshot of a filter with this `proposal`.
    pub fn restore(bytes: &[u8], proposal: Proposal) -> Result<Self, ParticleError> {
        let mut state: State = snapshot::from_bytes(proposal.kind(), bytes)
            .map_err(|e| ParticleError::Snapshot(e.to_string()))?;
        let corrupt = |what: &str| ParticleError::Snapshot(format!("corrupt snapshot: {what}"));
        state
            .model
            .validate()
            .map_err(|e| corrupt(&e.to_string()))?;
        check_ess_threshold(state.ess_threshold).map_err(|e| corrupt(&e.to_string()))?;
        if state.proposal != proposal || !(1..=MAX_PARTICLES).contains(&state.n) {
            return Err(corrupt("header"));
        }
        let with_p = proposal == Proposal::Ekf;
        // The size fields are checked against the data actually present before anything
        // is allocated from them: a corrupt `n` must not size a buffer (a huge one aborted
        // the process on the allocation).
        if state.n.div_ceil(CHUNK) != state.chunks.len() {
            return Err(corrupt("chunk count does not match n"));
        }
        for (chunk, len) in state.chunks.iter_mut().zip(chunk_lengths(state.n)) {
            let p_len = if with_p { len } else { 0 };
            if chunk.x.len() != len || chunk.lw.len() != len || chunk.p.len() != p_len {
                return Err(corrupt("chunk length"));
            }
            chunk.w = vec![0.0; len];
            chunk.z = vec![0.0; len];
            chunk.anc = vec![0; len];
            chunk.summarise();
        }
        let runner = Runner::new(state.threads).map_err(|e| corrupt(&e.to_string()))?;
        Ok(Self::with_state(state, runner))
    }
}

/// What every chunk of one step shares.
struct Move<'a, O: Observation> {
    seed: u64,
    t: u64,
    first: bool,
    obs: O,
    transition: Transition,
    prior_mean: f64,
    prior_var: f64,
    prev_log_norm: f64,
    uniform_lw: f64,
    src: &'a [Chunk],
    systematic: Option<&'a Systematic<'a>>,
    /// Move with the Laplace proposal instead of the EKF one (a degenerate step's redo).
    laplace: bool,
}

impl<O: Observation> Move<'_, O> {
    /// Fill chunk `k` of the output with its source particles (their ancestors when
    /// resampling) and their normalised log-weights.
    #[inline(always)]
    fn gather(&self, k: usize, out: &mut Chunk) {
        match self.systematic {
            Some(sys) => {
                sys.ancestors(k * CHUNK, &mut out.anc);
                // The ancestors are sorted: copy them run by run, one source chunk at a
                // time, so the inner loops index one slice (no division per particle).
                let with_p = !out.p.is_empty();
                let mut i = 0;
                while i < out.anc.len() {
                    let c = out.anc[i] / CHUNK;
                    let base = c * CHUNK;
                    let end = i + out.anc[i..].partition_point(|&a| a < base + CHUNK);
                    let src = &self.src[c];
                    let (anc, xs) = (&out.anc[i..end], &mut out.x[i..end]);
                    for (x, &a) in xs.iter_mut().zip(anc) {
                        *x = src.x[a - base];
                    }
                    if with_p {
                        for (p, &a) in out.p[i..end].iter_mut().zip(anc) {
                            *p = src.p[a - base];
                        }
                    }
                    i = end;
                }
                out.lw.fill(self.uniform_lw);
            }
            None => {
                let src = &self.src[k];
                out.x.copy_from_slice(&src.x);
                out.p.copy_from_slice(&src.p);
                for (lw, &prev) in out.lw.iter_mut().zip(&src.lw) {
                    *lw = prev - self.prev_log_norm;
                }
            }
        }
    }

    /// Standard normals for chunk `k` at this step, into `out.z`.
    fn draw_normals(&self, k: usize, out: &mut Chunk) {
        BlockNormals::new(rng::stream2(self.seed, self.t, k as u64)).fill(&mut out.z);
    }

    /// `lw += log p(y | x)`, with NaN weights made zero weights.
    #[inline(always)]
    fn weigh(&self, out: &mut Chunk) {
        // The transcendental part first, into `w` (scratch until `summarise` fills it):
        // two short loops run faster than one with a long dependency chain.
        for (f, &x) in out.w.iter_mut().zip(&out.x) {
            *f = self.obs.density_factor(x);
        }
        for ((lw, &x), &f) in out.lw.iter_mut().zip(&out.x).zip(&out.w) {
            *lw = finite_or_neg_inf(*lw + self.obs.log_density_with(x, f));
        }
    }

    #[inline(always)]
    fn bootstrap_chunk(&self, k: usize, out: &mut Chunk) {
        self.gather(k, out);
        if !self.first {
            self.draw_normals(k, out);
            let tr = self.transition;
            for (x, &z) in out.x.iter_mut().zip(&out.z) {
                *x = tr.mean(*x) + tr.sd * z;
            }
        }
        self.weigh(out);
        out.summarise();
    }

    /// The EKF moves' transition and prior variance. At t = 0 the prediction is the prior
    /// itself: every particle starts at its mean and variance and the identity predicts.
    #[inline(always)]
    fn ekf_transition(&self, out: &mut Chunk) -> (Transition, f64) {
        if self.first {
            out.x.fill(self.prior_mean);
            out.p.fill(self.prior_var);
            let identity = Transition {
                center: 0.0,
                a: 1.0,
                var: 0.0,
                sd: 0.0,
            };
            (identity, self.prior_var)
        } else {
            (self.transition, self.transition.var)
        }
    }

    #[inline(always)]
    fn ekf_chunk(&self, k: usize, out: &mut Chunk) {
        self.gather(k, out);
        self.draw_normals(k, out);
        let (tr, prior_var) = self.ekf_transition(out);
        let (a2, ln_prior_var, inv_prior_var) = (tr.a * tr.a, prior_var.ln(), 1.0 / prior_var);
        let (xs, ps, lws, zs) = (&mut out.x, &mut out.p, &mut out.lw, &out.z);
        // Every particle of the chunk has the same variance (always so for these models,
        // which start from one prior variance): one Phat, sqrt and log for all.
        let pbar = a2 * ps[0] + tr.var;
        let shared = self
            .obs
            .state_free_posterior_var(pbar)
            .filter(|_| ps.iter().fold(true, |same, &p| same & (p == ps[0])));
        if let Some(phat) = shared {
            let (sd, ln_phat) = (phat.sqrt(), phat.ln());
            // The transcendental part first, in a loop of its own (into `w`, scratch until
            // `summarise` fills it): see `Observation::posterior_factor`.
            let factors = &mut out.w;
            for (f, &x) in factors.iter_mut().zip(&xs[..]) {
                *f = self.obs.posterior_factor(tr.mean(x));
            }
            // Zipped slices (not indexed Vecs), so that the loop vectorises.
            let particles = xs[..].iter_mut().zip(&mut lws[..]).zip(&zs[..]);
            for (((x, lw), &z), &factor) in particles.zip(&factors[..]) {
                let mbar = tr.mean(*x);
                let mhat = self.obs.posterior_mean_with(mbar, pbar, phat, factor);
                let moved = mhat + sd * z;
                let d = moved - mbar;
                // As below, with the chunk's constants.
                let correction = 0.5 * (ln_phat + z * z - ln_prior_var - d * d * inv_prior_var);
                *x = moved;
                *lw += correction;
            }
            ps.fill(phat);
            self.weigh(out);
            out.summarise();
            return;
        }
        for i in 0..xs.len() {
            let mbar = tr.mean(xs[i]);
            let pbar = a2 * ps[i] + tr.var;
            let lin = self.obs.linearise(mbar);
            let h = lin.jacobian;
            let s = h * h * pbar + lin.noise_var;
            let pbar_over_s = pbar / s;
            let mhat = mbar + pbar_over_s * h * lin.innovation;
            let phat = pbar_over_s * lin.noise_var;
            let z = zs[i];
            let x = mhat + phat.sqrt() * z;
            let d = x - mbar;
            // log N(x; mbar, prior_var) - log N(x; mhat, phat), with (x - mhat)^2 / phat = z^2.
            let correction =
                0.5 * (fastmath::ln(phat) + z * z - ln_prior_var - d * d * inv_prior_var);
            xs[i] = x;
            ps[i] = phat;
            lws[i] += correction;
        }
        self.weigh(out);
        out.summarise();
    }
}

impl<O: Observation> Move<'_, O> {
    /// The EKPF move of a degenerate step: each particle draws from the Laplace
    /// approximation of its own target `N(x; mbar, s^2) p(y | x)` (the mode, found by
    /// Newton's method from `mbar`, and the inverse curvature there) instead of the EKF
    /// update. The EKF step `K (z - h(mbar))` is linear in the innovation: after a
    /// crash-size return it moved the log-variance tens of units past where prior and
    /// likelihood meet, and every particle then had a negligible weight. The target is
    /// log-concave, so the mode is unique and Newton from `mbar` converges to it. Same
    /// ancestors and normals as the EKF move; the weight is likelihood x prior / this
    /// proposal, so the filter stays exact. `P_i` keeps the EKF variance, so later steps
    /// run as usual.
    #[cold]
    #[inline(never)]
    fn laplace_chunk(&self, k: usize, out: &mut Chunk) {
        debug_assert!(self.laplace);
        self.gather(k, out);
        self.draw_normals(k, out);
        let (tr, prior_var) = self.ekf_transition(out);
        let (ln_prior_var, inv_prior_var) = (prior_var.ln(), 1.0 / prior_var);
        for i in 0..out.x.len() {
            let mbar = tr.mean(out.x[i]);
            let pbar = tr.a * tr.a * out.p[i] + tr.var;
            // As the EKF move computes it, so particles that shared `P` still do (the
            // chunk kernel's fast path needs that).
            let phat = self.obs.state_free_posterior_var(pbar).unwrap_or_else(|| {
                let lin = self.obs.linearise(mbar);
                let h2 = lin.jacobian * lin.jacobian;
                pbar * lin.noise_var / (h2 * pbar + lin.noise_var)
            });
            let (mode, var) = laplace_mode(&self.obs, mbar, inv_prior_var);
            let z = out.z[i];
            let x = mode + var.sqrt() * z;
            let d = x - mbar;
            out.x[i] = x;
            out.p[i] = phat;
            out.lw[i] += 0.5 * (var.ln() + z * z - ln_prior_var - d * d * inv_prior_var);
        }
        self.weigh(out);
        out.summarise();
    }
}

/// Newton iterations of [`laplace_mode`]: it converges quadratically near the mode, so
/// this bound is reached only by non-finite input (which then weighs nothing).
const NEWTON_MAX_ITERATIONS: usize = 60;

/// The mode of `log N(x; mbar, 1 / inv_prior_var) + log p(y | x)` and the inverse of the
/// negated second derivative there (the Laplace variance).
fn laplace_mode<O: Observation>(obs: &O, mbar: f64, inv_prior_var: f64) -> (f64, f64) {
    let mut x = mbar;
    let mut curvature = inv_prior_var;
    for _ in 0..NEWTON_MAX_ITERATIONS {
        let (g, h) = obs.log_density_derivatives(x);
        let gradient = g - (x - mbar) * inv_prior_var;
        curvature = inv_prior_var - h;
        let dx = gradient / curvature;
        x += dx;
        if dx.is_nan() || dx.abs() <= 1e-12 * (1.0 + x.abs()) {
            break;
        }
    }
    (x, 1.0 / curvature)
}

#[cfg(test)]
pub(crate) fn laplace_mode_for_tests<O: Observation>(
    obs: &O,
    mbar: f64,
    inv_prior_var: f64,
) -> (f64, f64) {
    laplace_mode(obs, mbar, inv_prior_var)
}

/// The chunk kernels compiled twice: for the baseline x86-64 (SSE2) and, chosen at run
/// time, for AVX2 (twice as many lanes for the vectorised loops). No FMA is enabled, so
/// both perform the same IEEE operations in the same order and give identical bits.
mod simd {
    use super::{Chunk, Move, Observation};

    pub(super) fn bootstrap_chunk<O: Observation>(
        mv: &Move<'_, O>,
        k: usize,
        out: &mut Chunk,
        wide: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if wide && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { bootstrap_chunk_avx2(mv, k, out) };
        }
        mv.bootstrap_chunk(k, out)
    }

    pub(super) fn ekf_chunk<O: Observation>(
        mv: &Move<'_, O>,
        k: usize,
        out: &mut Chunk,
        wide: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if wide && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { ekf_chunk_avx2(mv, k, out) };
        }
        mv.ekf_chunk(k, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) fn bootstrap_chunk_avx2<O: Observation>(
        mv: &Move<'_, O>,
        k: usize,
        out: &mut Chunk,
    ) {
        mv.bootstrap_chunk(k, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) fn ekf_chunk_avx2<O: Observation>(mv: &Move<'_, O>, k: usize, out: &mut Chunk) {
        mv.ekf_chunk(k, out)
    }
}

/// NaN weights count as zero weights (`-inf`); `+inf` cannot arise from valid models.
#[inline(always)]
fn finite_or_neg_inf(lw: f64) -> f64 {
    if lw.is_nan() {
        f64::NEG_INFINITY
    } else {
        lw
    }
}

/// Combine chunk results in chunk order; `None` if every weight is zero.
fn combine(chunks: &[Chunk]) -> Option<Totals> {
    let max = chunks
        .iter()
        .map(|c| c.stats.max)
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    let (mut sum, mut sum_sq, mut sum_x) = (0.0, 0.0, 0.0);
    for c in chunks {
        if c.stats.max == f64::NEG_INFINITY {
            continue;
        }
        let f = (c.stats.max - max).exp();
        sum += c.stats.sum * f;
        sum_sq += c.stats.sum_sq * f * f;
        sum_x += c.stats.sum_x * f;
    }
    Some(Totals {
        log_norm: max + sum.ln(),
        ess: sum * sum / sum_sq,
        mean: sum_x / sum,
    })
}

#[cfg(test)]
pub(crate) fn log_norm_for_tests(chunks: &[Chunk]) -> f64 {
    combine(chunks).map_or(f64::NAN, |t| t.log_norm)
}

/// The chunks of `n` particles, kept ones if there are (their contents are unspecified:
/// see [`spare`]).
fn new_chunks(n: usize, with_p: bool) -> Vec<Chunk> {
    spare::take(n, with_p).unwrap_or_else(|| {
        chunk_lengths(n)
            .map(|len| Chunk::new(len, with_p))
            .collect()
    })
}

impl Drop for ParticleFilter {
    /// The chunk buffers go back to [`spare`] for the next filter of this size.
    fn drop(&mut self) {
        let (n, with_p) = (self.state.n, self.state.proposal == Proposal::Ekf);
        spare::give(n, with_p, std::mem::take(&mut self.state.chunks));
        spare::give(n, with_p, std::mem::take(&mut self.next));
    }
}

/// The lengths of the chunks of `n` particles: full chunks, then the remainder.
fn chunk_lengths(n: usize) -> impl Iterator<Item = usize> {
    (0..n.div_ceil(CHUNK)).map(move |k| CHUNK.min(n - k * CHUNK))
}

fn check_ess_threshold(value: f64) -> Result<(), ParticleError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ParticleError::invalid(format!(
            "ess_threshold must be in [0, 1], got {value}"
        )))
    }
}

/// At least one level, each in [0, 1] (the Monte Carlo simulations' rule).
pub(crate) fn check_levels(levels: &[f64]) -> Result<(), ParticleError> {
    if levels.is_empty() {
        return Err(ParticleError::invalid(
            "levels must hold at least one level",
        ));
    }
    match levels.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        Some(q) => Err(ParticleError::invalid(format!(
            "quantile levels must be in [0, 1], got {q}"
        ))),
        None => Ok(()),
    }
}
