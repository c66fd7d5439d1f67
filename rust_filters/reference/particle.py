"""Vectorised NumPy particle filters for the stochastic-volatility model (the reference).

They follow ``benchmarks/spec/WORKLOADS.md`` sections 2 and 3 literally, with ``dt = 1``:

    h_0 ~ N(mu, V0),  V0 = sigma^2 / (1 - phi^2)
    h_t = mu + phi (h_{t-1} - mu) + sigma eta_t
    y_t = exp(h_t / 2) eps_t

* :func:`bootstrap_pf` — the bootstrap filter (Gordon, Salmond & Smith 1993), identical in
  its algorithm to ``particles`` ``SMC(fk=Bootstrap(...), resampling="systematic",
  ESSrmin=0.5)``.
* :func:`ekpf` — the extended-Kalman particle filter (van der Merwe, Doucet, de Freitas &
  Wan 2000): each particle carries an EKF variance and draws from the EKF update of its
  own prediction, with ``z_t = y_t^2``, ``h(x) = e^x``, ``H = e^{mbar}``,
  ``R = 2 e^{2 mbar}``.

Random stream (PCG64 ``default_rng(seed)``), in this order: at ``t = 0`` the particle
draws (N standard normals); at each ``t >= 1`` one uniform when resampling, then N
standard normals. The Rust filters use their own per-chunk streams, so the two agree
only statistically (within Monte Carlo error), never bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class ParticleResult:
    loglik: Array  # (T,) log-likelihood increment of each observation
    means: Array  # (T,) filtered mean of h_t
    n_resamples: int  # number of time steps at which the filter resampled
    particles: Array  # (N,) particles after the last observation
    weights: Array  # (N,) their normalised weights

    @property
    def total_loglik(self) -> float:
        return float(self.loglik.sum())


def _log_normal(y: Array | float, mean: Array | float, var: Array | float) -> Array:
    """``log N(y; mean, var)``, elementwise."""
    return np.asarray(-0.5 * (LOG_2PI + np.log(var) + (y - mean) ** 2 / var))


def _sv_log_obs(y: float, x: Array) -> Array:
    """``log N(y; 0, e^x)`` written as in the workload: ``-0.5 (log 2pi + x + y^2 e^{-x})``."""
    return -0.5 * (LOG_2PI + x + y * y * np.exp(-x))


def _logsumexp(lw: Array) -> float:
    m = float(lw.max())
    return m + float(np.log(np.exp(lw - m).sum()))


def systematic_resample(W: Array, u: float) -> npt.NDArray[np.intp]:
    """Ancestors ``A_k = min{j : cumsum(W)_j >= (u + k) / N}`` (clipped to the last index)."""
    n = W.size
    idx = np.searchsorted(np.cumsum(W), (u + np.arange(n)) / n, side="left")
    return np.minimum(idx, n - 1)


def _check(y: npt.ArrayLike, n_particles: int, phi: float, sigma: float) -> Array:
    ys = np.asarray(y, dtype=float).reshape(-1)
    if n_particles < 1:
        raise ValueError(f"n_particles must be >= 1, got {n_particles}")
    if not abs(phi) < 1.0:
        raise ValueError(f"phi must satisfy |phi| < 1, got {phi}")
    if not sigma > 0.0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not np.all(np.isfinite(ys)):
        raise ValueError("y must be finite")
    return ys


def bootstrap_pf(
    y: npt.ArrayLike,
    n_particles: int,
    *,
    mu: float = -1.02,
    phi: float = 0.9702,
    sigma: float = 0.178,
    seed: int = 7,
    ess_threshold: float = 0.5,
) -> ParticleResult:
    """The bootstrap particle filter of WORKLOADS.md section 2."""
    ys = _check(y, n_particles, phi, sigma)
    rng = np.random.default_rng(seed)
    n, T = n_particles, ys.size
    v0 = sigma**2 / (1.0 - phi**2)
    x = mu + np.sqrt(v0) * rng.standard_normal(n)
    logW = np.full(n, -np.log(n))
    loglik, means = np.empty(T), np.empty(T)
    n_resamples = 0
    for t in range(T):
        if t > 0:
            W = np.exp(logW)
            if 1.0 / np.sum(W * W) < ess_threshold * n:
                A = systematic_resample(W, rng.uniform())
                x = x[A]
                logW = np.full(n, -np.log(n))
                n_resamples += 1
            x = mu + phi * (x - mu) + sigma * rng.standard_normal(n)
        lw = logW + _sv_log_obs(ys[t], x)
        loglik[t] = _logsumexp(lw)
        logW = lw - loglik[t]
        means[t] = float(np.sum(np.exp(logW) * x))
    return ParticleResult(loglik, means, n_resamples, x, np.exp(logW))


def ekpf(
    y: npt.ArrayLike,
    n_particles: int,
    *,
    mu: float = -1.02,
    phi: float = 0.9702,
    sigma: float = 0.178,
    seed: int = 7,
    ess_threshold: float = 0.5,
) -> ParticleResult:
    """The EKF-proposal particle filter of WORKLOADS.md section 3."""
    ys = _check(y, n_particles, phi, sigma)
    rng = np.random.default_rng(seed)
    n, T = n_particles, ys.size
    v0 = sigma**2 / (1.0 - phi**2)
    x = np.full(n, mu)
    P = np.full(n, v0)
    logW = np.full(n, -np.log(n))
    loglik, means = np.empty(T), np.empty(T)
    n_resamples = 0
    for t in range(T):
        if t == 0:
            mbar, Pbar, prior_var = np.full(n, mu), np.full(n, v0), v0
        else:
            W = np.exp(logW)
            if 1.0 / np.sum(W * W) < ess_threshold * n:
                A = systematic_resample(W, rng.uniform())
                x, P = x[A], P[A]
                logW = np.full(n, -np.log(n))
                n_resamples += 1
            mbar = mu + phi * (x - mu)
            Pbar = phi**2 * P + sigma**2
            prior_var = sigma**2
        H = np.exp(mbar)
        R = 2.0 * H * H
        S = H * H * Pbar + R
        K = Pbar * H / S
        mhat = mbar + K * (ys[t] ** 2 - H)
        Phat = (1.0 - K * H) * Pbar
        x = mhat + np.sqrt(Phat) * rng.standard_normal(n)
        P = Phat
        lw = (
            logW
            + _sv_log_obs(ys[t], x)
            + _log_normal(x, mbar, prior_var)
            - _log_normal(x, mhat, Phat)
        )
        loglik[t] = _logsumexp(lw)
        logW = lw - loglik[t]
        means[t] = float(np.sum(np.exp(logW) * x))
    return ParticleResult(loglik, means, n_resamples, x, np.exp(logW))
