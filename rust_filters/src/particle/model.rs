//! The state-space models the particle filters run on.
//!
//! Both have a scalar latent state with a Gaussian AR(1) transition, which over a step of
//! length `dt` is the Ornstein–Uhlenbeck transition with the same stationary law:
//!
//! ```text
//! x_t | x_{t-dt} ~ N(m + phi^dt (x_{t-dt} - m), sigma^2 (1 - phi^{2 dt}) / (1 - phi^2))
//! ```
//!
//! where `m` is the stationary mean. At `dt = 1` this is exactly `m + phi (x - m) + sigma eta`.
//! A negative `phi` has no continuous-time embedding, so it only accepts whole-number `dt`.

use serde::{Deserialize, Serialize};

use super::fastmath;
use super::ParticleError;

pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A Gaussian transition over one step: `x' = center + a (x - center) + sd * eta`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub center: f64,
    pub a: f64,
    pub var: f64,
    pub sd: f64,
}

impl Transition {
    /// The AR(1) with persistence `phi` and innovation s.d. `sigma` per unit step, over `dt`.
    fn ar1_over(center: f64, phi: f64, sigma: f64, dt: f64) -> Result<Self, ParticleError> {
        check_dt(dt)?;
        if dt == 1.0 {
            // Exactly the workload's one-step transition, without rounding from powf.
            return Ok(Self {
                center,
                a: phi,
                var: sigma * sigma,
                sd: sigma,
            });
        }
        if phi < 0.0 && dt.fract() != 0.0 {
            return Err(ParticleError::invalid(format!(
                "dt must be a whole number when phi < 0 (phi = {phi}, dt = {dt})"
            )));
        }
        let a = phi.powf(dt);
        // 1 - |phi|^{2 dt} via expm1 so that a small dt keeps its precision.
        let one_minus_a2 = -(2.0 * dt * phi.abs().ln()).exp_m1();
        let var = sigma * sigma * one_minus_a2 / (1.0 - phi * phi);
        Ok(Self {
            center,
            a,
            var,
            sd: var.sqrt(),
        })
    }

    /// The conditional mean of `x'` given `x`.
    #[inline(always)]
    pub fn mean(&self, x: f64) -> f64 {
        self.center + self.a * (x - self.center)
    }
}

/// The EKF linearisation of an observation around a predicted state `mbar`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Linearisation {
    /// `z - h(mbar)`.
    pub innovation: f64,
    /// `H = h'(mbar)`.
    pub jacobian: f64,
    /// The observation-noise variance `R` of `z` at `mbar`.
    pub noise_var: f64,
}

/// One observation `y` (with its `dt`), prepared once per time step and then evaluated at
/// every particle.
pub trait Observation: Sync {
    /// `log p(y | x)`.
    #[inline(always)]
    fn log_density(&self, x: f64) -> f64 {
        self.log_density_with(x, self.density_factor(x))
    }
    /// The transcendental part of [`Observation::log_density`] at `x` (0 when there is
    /// none), computed by the filters for a whole chunk in a loop of its own (see
    /// [`Observation::posterior_factor`]).
    #[inline(always)]
    fn density_factor(&self, _x: f64) -> f64 {
        0.0
    }
    /// [`Observation::log_density`] given `density_factor(x)`.
    fn log_density_with(&self, x: f64, factor: f64) -> f64;
    /// The EKF linearisation at `mbar` (used by the EKPF proposal).
    fn linearise(&self, mbar: f64) -> Linearisation;
    /// `(d/dx, d^2/dx^2) log p(y | x)`: the Newton steps of the Laplace proposal that
    /// replaces the EKF one on a degenerate step (see `filter`). The log-density must be
    /// concave in `x` (it is for both models), so the target has one mode.
    fn log_density_derivatives(&self, x: f64) -> (f64, f64);

    /// The EKF posterior variance `Phat` from the predicted one `Pbar`, when it does not
    /// depend on the linearisation point (`None` when it does). Then particles that share
    /// `Pbar` share `Phat`, and the EKPF computes it, its square root and its log once
    /// per chunk instead of once per particle.
    fn state_free_posterior_var(&self, _pbar: f64) -> Option<f64> {
        None
    }

    /// The EKF posterior mean `mhat = mbar + K (z - h(mbar))` given `Pbar` and the `Phat`
    /// of [`Observation::state_free_posterior_var`].
    #[inline(always)]
    fn posterior_mean(&self, mbar: f64, pbar: f64, phat: f64) -> f64 {
        self.posterior_mean_with(mbar, pbar, phat, self.posterior_factor(mbar))
    }

    /// The transcendental part of [`Observation::posterior_mean`] at `mbar` (0 when there
    /// is none). The EKPF computes it for a whole chunk in a loop of its own, then the
    /// rest with [`Observation::posterior_mean_with`]: the particle loops are bound by the
    /// latency of their dependency chains, and two short loops beat one long one.
    #[inline(always)]
    fn posterior_factor(&self, _mbar: f64) -> f64 {
        0.0
    }

    /// [`Observation::posterior_mean`] given `posterior_factor(mbar)`.
    #[inline(always)]
    fn posterior_mean_with(&self, mbar: f64, pbar: f64, _phat: f64, _factor: f64) -> f64 {
        let lin = self.linearise(mbar);
        let h = lin.jacobian;
        mbar + pbar / (h * h * pbar + lin.noise_var) * h * lin.innovation
    }
}

/// A scalar state-space model with a Gaussian AR(1) transition.
pub trait StateSpaceModel: Copy + Sync {
    type Obs: Observation;
    /// The stationary law of the state, `(mean, variance)`: the prior of `x_0`.
    fn prior(&self) -> (f64, f64);
    /// The transition over a step of length `dt` (validated: `dt > 0`, finite).
    fn transition(&self, dt: f64) -> Result<Transition, ParticleError>;
    /// Prepare the observation `y` made after a step of length `dt`.
    fn observation(&self, y: f64, dt: f64) -> Self::Obs;
}

/// Stochastic volatility (Taylor 1982; the parameterisation of Pitt & Shephard 1999):
///
/// ```text
/// h_0 ~ N(mu, sigma^2 / (1 - phi^2))
/// h_t = mu + phi (h_{t-1} - mu) + sigma eta_t
/// y_t ~ N(0, dt e^{h_t})                      (y: a return in percent; dt = 1 a day)
/// ```
///
/// EKPF linearisation (van der Merwe et al. 2000, as WORKLOADS.md section 3):
/// `z = y^2 / dt`, `h(x) = e^x`, `H = e^{mbar}`, `R = 2 e^{2 mbar}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SvModel {
    pub mu: f64,
    pub phi: f64,
    pub sigma: f64,
}

impl SvModel {
    /// Pitt & Shephard's values, also `particles.state_space_models.StochVol`'s defaults.
    pub const PITT_SHEPHARD: Self = Self {
        mu: -1.02,
        phi: 0.9702,
        sigma: 0.178,
    };

    /// Checked construction: `mu` finite, `|phi| < 1`, `sigma > 0` and finite.
    pub fn new(mu: f64, phi: f64, sigma: f64) -> Result<Self, ParticleError> {
        check_finite("mu", mu)?;
        check_phi(phi)?;
        check_positive("sigma", sigma)?;
        Ok(Self { mu, phi, sigma })
    }
}

/// `log N(y; 0, dt e^x)` with its constant part and `y^2 / dt` computed once.
#[derive(Clone, Copy, Debug)]
pub struct SvObservation {
    log_const: f64,
    z: f64,
}

impl Observation for SvObservation {
    /// `e^-x`.
    #[inline(always)]
    fn density_factor(&self, x: f64) -> f64 {
        fastmath::exp(-x)
    }

    #[inline(always)]
    fn log_density_with(&self, x: f64, factor: f64) -> f64 {
        self.log_const - 0.5 * (x + self.z * factor)
    }

    /// `log p = c - (x + z e^-x) / 2`.
    fn log_density_derivatives(&self, x: f64) -> (f64, f64) {
        let ze = self.z * (-x).exp();
        (0.5 * (ze - 1.0), -0.5 * ze)
    }

    #[inline(always)]
    fn linearise(&self, mbar: f64) -> Linearisation {
        let h = fastmath::exp(mbar);
        Linearisation {
            innovation: self.z - h,
            jacobian: h,
            noise_var: 2.0 * h * h,
        }
    }

    /// With `H = e^m` and `R = 2 H^2`: `S = H^2 (Pbar + 2)`, so
    /// `Phat = Pbar R / S = 2 Pbar / (Pbar + 2)` whatever `m`.
    fn state_free_posterior_var(&self, pbar: f64) -> Option<f64> {
        Some(2.0 * pbar / (pbar + 2.0))
    }

    /// `K (z - H) = Pbar H (z - H) / (H^2 (Pbar + 2)) = (Phat / 2) (z e^-m - 1)`: one
    /// `exp` (the factor `e^-m`) and no division per particle.
    #[inline(always)]
    fn posterior_factor(&self, mbar: f64) -> f64 {
        fastmath::exp(-mbar)
    }

    #[inline(always)]
    fn posterior_mean_with(&self, mbar: f64, _pbar: f64, phat: f64, factor: f64) -> f64 {
        mbar + 0.5 * phat * (self.z * factor - 1.0)
    }
}

impl StateSpaceModel for SvModel {
    type Obs = SvObservation;

    fn prior(&self) -> (f64, f64) {
        (
            self.mu,
            self.sigma * self.sigma / (1.0 - self.phi * self.phi),
        )
    }

    fn transition(&self, dt: f64) -> Result<Transition, ParticleError> {
        Transition::ar1_over(self.mu, self.phi, self.sigma, dt)
    }

    fn observation(&self, y: f64, dt: f64) -> SvObservation {
        SvObservation {
            log_const: -0.5 * (LN_2PI + dt.ln()),
            z: y * y / dt,
        }
    }
}

/// A linear-Gaussian AR(1) observed with noise (the model with an exact Kalman answer):
///
/// ```text
/// x_0 ~ N(c / (1 - phi), sigma^2 / (1 - phi^2))
/// x_t = c + phi x_{t-1} + sigma eta_t
/// y_t = x_t + tau eps_t
/// ```
///
/// The observation noise does not scale with `dt`. EKPF linearisation: `z = y`, `H = 1`,
/// `R = tau^2`, so the EKF proposal is the exact conditional `p(x_t | x_{t-1}, y_t)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearGaussianModel {
    pub c: f64,
    pub phi: f64,
    pub sigma: f64,
    pub tau: f64,
}

impl LinearGaussianModel {
    /// Checked construction: `c` finite, `|phi| < 1`, `sigma, tau > 0` and finite.
    pub fn new(c: f64, phi: f64, sigma: f64, tau: f64) -> Result<Self, ParticleError> {
        check_finite("c", c)?;
        check_phi(phi)?;
        check_positive("sigma", sigma)?;
        check_positive("tau", tau)?;
        Ok(Self { c, phi, sigma, tau })
    }

    fn center(&self) -> f64 {
        self.c / (1.0 - self.phi)
    }
}

/// `log N(y; x, tau^2)` with its constant part computed once.
#[derive(Clone, Copy, Debug)]
pub struct LinearObservation {
    y: f64,
    log_const: f64,
    inv_var: f64,
    var: f64,
}

impl Observation for LinearObservation {
    #[inline(always)]
    fn log_density_with(&self, x: f64, _factor: f64) -> f64 {
        let d = self.y - x;
        self.log_const - 0.5 * d * d * self.inv_var
    }

    fn log_density_derivatives(&self, x: f64) -> (f64, f64) {
        ((self.y - x) * self.inv_var, -self.inv_var)
    }

    #[inline(always)]
    fn linearise(&self, mbar: f64) -> Linearisation {
        Linearisation {
            innovation: self.y - mbar,
            jacobian: 1.0,
            noise_var: self.var,
        }
    }

    /// `H = 1`, `R = tau^2`: `Phat = Pbar R / (Pbar + R)`.
    fn state_free_posterior_var(&self, pbar: f64) -> Option<f64> {
        Some(pbar * self.var / (pbar + self.var))
    }

    /// `K = Pbar / (Pbar + R) = Phat / R`.
    #[inline(always)]
    fn posterior_mean_with(&self, mbar: f64, _pbar: f64, phat: f64, _factor: f64) -> f64 {
        mbar + phat * self.inv_var * (self.y - mbar)
    }
}

impl StateSpaceModel for LinearGaussianModel {
    type Obs = LinearObservation;

    fn prior(&self) -> (f64, f64) {
        (
            self.center(),
            self.sigma * self.sigma / (1.0 - self.phi * self.phi),
        )
    }

    fn transition(&self, dt: f64) -> Result<Transition, ParticleError> {
        Transition::ar1_over(self.center(), self.phi, self.sigma, dt)
    }

    fn observation(&self, y: f64, _dt: f64) -> LinearObservation {
        let var = self.tau * self.tau;
        LinearObservation {
            y,
            log_const: -0.5 * (LN_2PI + var.ln()),
            inv_var: 1.0 / var,
            var,
        }
    }
}

/// The models a filter can hold (a closed set, so snapshots can name them).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Model {
    Sv(SvModel),
    LinearGaussian(LinearGaussianModel),
}

impl Model {
    /// The model's name as the Python side shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Model::Sv(_) => "sv",
            Model::LinearGaussian(_) => "linear-gaussian",
        }
    }

    /// The parameters by name, in the order of the model's constructor.
    pub fn params(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Model::Sv(m) => vec![("mu", m.mu), ("phi", m.phi), ("sigma", m.sigma)],
            Model::LinearGaussian(m) => {
                vec![
                    ("c", m.c),
                    ("phi", m.phi),
                    ("sigma", m.sigma),
                    ("tau", m.tau),
                ]
            }
        }
    }

    /// A copy with the named parameters replaced, validated as a whole; names the model
    /// does not have are an error.
    pub fn with_params(&self, changes: &[(&str, f64)]) -> Result<Model, ParticleError> {
        let mut values = self.params();
        for &(name, value) in changes {
            let slot = values.iter_mut().find(|(n, _)| *n == name).ok_or_else(|| {
                let known: Vec<&str> = self.params().iter().map(|(n, _)| *n).collect();
                ParticleError::invalid(format!(
                    "the {} model has no parameter {name:?} (it has {})",
                    self.name(),
                    known.join(", ")
                ))
            })?;
            slot.1 = value;
        }
        let v: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
        match self {
            Model::Sv(_) => SvModel::new(v[0], v[1], v[2]).map(Model::Sv),
            Model::LinearGaussian(_) => {
                LinearGaussianModel::new(v[0], v[1], v[2], v[3]).map(Model::LinearGaussian)
            }
        }
    }

    /// Re-check the parameters (a snapshot from elsewhere is not trusted).
    pub fn validate(&self) -> Result<(), ParticleError> {
        self.with_params(&[]).map(|_| ())
    }

    /// The stationary prior `(mean, variance)`.
    pub fn prior(&self) -> (f64, f64) {
        match self {
            Model::Sv(m) => m.prior(),
            Model::LinearGaussian(m) => m.prior(),
        }
    }

    /// The transition over `dt`.
    pub fn transition(&self, dt: f64) -> Result<Transition, ParticleError> {
        match self {
            Model::Sv(m) => m.transition(dt),
            Model::LinearGaussian(m) => m.transition(dt),
        }
    }
}

pub(crate) fn check_finite(name: &str, value: f64) -> Result<(), ParticleError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ParticleError::invalid(format!(
            "{name} must be finite, got {value}"
        )))
    }
}

pub(crate) fn check_positive(name: &str, value: f64) -> Result<(), ParticleError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ParticleError::invalid(format!(
            "{name} must be > 0 and finite, got {value}"
        )))
    }
}

pub(crate) fn check_dt(dt: f64) -> Result<(), ParticleError> {
    check_positive("dt", dt)
}

fn check_phi(phi: f64) -> Result<(), ParticleError> {
    if phi.abs() < 1.0 {
        Ok(())
    } else {
        Err(ParticleError::invalid(format!(
            "phi must satisfy |phi| < 1 (a stationary state), got {phi}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_step_is_the_workload_transition() {
        let m = SvModel::PITT_SHEPHARD;
        let tr = m.transition(1.0).unwrap();
        assert_eq!(tr.a, 0.9702);
        assert_eq!(tr.sd, 0.178);
        let x = -0.3;
        assert!((tr.mean(x) - (m.mu + m.phi * (x - m.mu))).abs() < 1e-15);
    }

    #[test]
    fn transitions_compose_over_dt() {
        // Two half steps give the one-step law: a^2 = phi and a^2 var_h + var_h = sigma^2.
        let m = SvModel::PITT_SHEPHARD;
        let half = m.transition(0.5).unwrap();
        let one = m.transition(1.0).unwrap();
        assert!((half.a * half.a - one.a).abs() < 1e-14);
        assert!((half.a * half.a * half.var + half.var - one.var).abs() < 1e-14);
    }

    #[test]
    fn sv_observation_matches_the_normal_density() {
        let m = SvModel::PITT_SHEPHARD;
        let (y, x, dt) = (0.7, -0.4, 2.5);
        let var = dt * f64::exp(x);
        let expect = -0.5 * (LN_2PI + var.ln() + y * y / var);
        assert!((m.observation(y, dt).log_density(x) - expect).abs() < 1e-13);
    }

    /// The shared-variance shortcuts equal the EKF update from the linearisation (to
    /// rounding) at any linearisation point.
    #[test]
    fn state_free_updates_match_the_linearised_ekf() {
        fn check<O: Observation>(obs: &O) {
            for (mbar, pbar) in [(-1.0, 0.03), (0.4, 0.5), (-3.0, 1.7)] {
                let lin = obs.linearise(mbar);
                let s = lin.jacobian * lin.jacobian * pbar + lin.noise_var;
                let phat = obs.state_free_posterior_var(pbar).unwrap();
                assert!((phat - pbar * lin.noise_var / s).abs() < 1e-14 * phat);
                let mhat = mbar + pbar * lin.jacobian / s * lin.innovation;
                let got = obs.posterior_mean(mbar, pbar, phat);
                assert!(
                    (got - mhat).abs() < 1e-12 * (1.0 + mhat.abs()),
                    "{got} vs {mhat}"
                );
            }
        }
        check(&SvModel::PITT_SHEPHARD.observation(0.8, 1.0));
        check(&SvModel::PITT_SHEPHARD.observation(-2.5, 0.5));
        let lg = LinearGaussianModel::new(0.1, 0.9, 0.3, 0.2).unwrap();
        check(&lg.observation(0.7, 1.0));
    }

    #[test]
    fn bad_parameters_are_rejected_with_their_name() {
        let e = SvModel::new(-1.0, 1.0, 0.2).unwrap_err();
        assert!(e.to_string().contains("phi"), "{e}");
        let e = SvModel::new(-1.0, 0.9, 0.0).unwrap_err();
        assert!(e.to_string().contains("sigma"), "{e}");
        let e = LinearGaussianModel::new(0.0, 0.5, 1.0, -1.0).unwrap_err();
        assert!(e.to_string().contains("tau"), "{e}");
        let e = SvModel::new(f64::NAN, 0.9, 0.1).unwrap_err();
        assert!(e.to_string().contains("mu"), "{e}");
        let neg = SvModel::new(0.0, -0.5, 0.1).unwrap();
        assert!(neg.transition(0.5).is_err());
        assert!(neg.transition(2.0).is_ok());
        assert!(neg.transition(0.0).is_err());
        assert!(neg.transition(f64::INFINITY).is_err());
    }

    #[test]
    fn with_params_validates_and_names_unknown_parameters() {
        let m = Model::Sv(SvModel::PITT_SHEPHARD);
        let m2 = m.with_params(&[("sigma", 0.3)]).unwrap();
        assert_eq!(m2.params()[2], ("sigma", 0.3));
        assert!(m.with_params(&[("tau", 1.0)]).is_err());
        assert!(m.with_params(&[("phi", -1.5)]).is_err());
    }
}
