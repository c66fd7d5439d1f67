"""GJR-GARCH-X(1,1,1) with standardised Student-t errors: variance filter, log-likelihood
and its analytic score, vectorised with ``scipy.signal.lfilter``.

Model (Glosten, Jagannathan & Runkle 1993, J. Finance 48(5); GARCH-X as in Han &
Kristensen 2014, JBES 32(3)), returns ``r_t`` in percent::

    r_t   = μ + ε_t,   ε_t = σ_t z_t,   z_t ~ iid t_ν / sqrt(ν / (ν - 2))
    σ²_t  = ω + (α + γ 1{ε_{t-1} < 0}) ε²_{t-1} + β σ²_{t-1} + δ x_{t-1} + δ_rv v_{t-1}

with ``x_{t-1} = VIX²_{t-1} / 252`` (the implied daily variance known at the close
before ``r_t``) and ``v_{t-1}`` the previous day's realised range variance (Garman–Klass
plus the squared overnight return, percent²; the realised measure of the HEAVY / realised
GARCH family, Shephard & Sheppard 2010, "Realising the future: forecasting with
high-frequency-based volatility (HEAVY) models", J. Applied Econometrics 25(2)).
``δ = δ_rv = 0`` is the plain GJR-GARCH-t that ``arch`` fits; ``v`` defaults to zeros.
The recursion is started as ``arch`` does: ``σ²_0 = ε²_0 = bc`` (the backcast, an
exponentially weighted mean of early squared residuals) with ``1{ε_0 < 0}`` replaced by 1/2.

Given the residuals, ``σ²`` is a first-order linear recursion in ``β``, so the filter and
every column of its parameter derivative are one ``lfilter`` call each: no Python loop.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from scipy.special import digamma, gammaln

PARAM_NAMES: tuple[str, ...] = (
    "mu",
    "omega",
    "alpha",
    "gamma",
    "beta",
    "delta",
    "delta_rv",
    "nu",
)
MU, OMEGA, ALPHA, GAMMA, BETA, DELTA, DELTA_RV, NU = range(8)


def backcast(resids: np.ndarray) -> float:
    """``arch``'s GARCH backcast: weights 0.94^i on the first min(75, n) squared residuals."""
    tau = min(75, resids.size)
    w = 0.94 ** np.arange(tau)
    return float(np.sum(resids[:tau] ** 2 * w) / w.sum())


def _drive(
    params: np.ndarray, eps: np.ndarray, x_prev: np.ndarray, bc: float, rv_prev: np.ndarray | None
) -> np.ndarray:
    """``σ²_t - β σ²_{t-1}``: the input of the linear recursion."""
    _, omega, alpha, gamma, _, delta, delta_rv, _ = params
    lag_sq = np.empty_like(eps)
    lag_neg = np.empty_like(eps)
    lag_sq[0] = bc
    lag_neg[0] = 0.5
    lag_sq[1:] = eps[:-1] ** 2
    lag_neg[1:] = eps[:-1] < 0
    drive = omega + (alpha + gamma * lag_neg) * lag_sq + delta * x_prev
    if rv_prev is not None:
        drive = drive + delta_rv * rv_prev
    return drive


def variance(
    params: np.ndarray,
    returns: np.ndarray,
    x_prev: np.ndarray,
    bc: float,
    rv_prev: np.ndarray | None = None,
) -> np.ndarray:
    """Conditional variances ``σ²_1 .. σ²_n`` for returns ``r_1 .. r_n``."""
    eps = returns - params[MU]
    beta = params[BETA]
    drive = _drive(params, eps, x_prev, bc, rv_prev)
    out, _ = lfilter([1.0], [1.0, -beta], drive, zi=[beta * bc])
    return np.asarray(out)


def next_variance(
    params: np.ndarray, eps: float, sigma2: float, x: float, rv: float = 0.0
) -> float:
    """One step of the recursion: ``σ²_{t+1}`` from ``ε_t``, ``σ²_t``, ``x_t`` and ``v_t``."""
    _, omega, alpha, gamma, beta, delta, delta_rv, _ = params
    asym = gamma if eps < 0 else 0.0
    return float(omega + (alpha + asym) * eps * eps + beta * sigma2 + delta * x + delta_rv * rv)


def _t_consts(nu: float) -> float:
    return float(gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(np.pi * (nu - 2)))


def loglik_terms(
    params: np.ndarray,
    returns: np.ndarray,
    x_prev: np.ndarray,
    bc: float,
    rv_prev: np.ndarray | None = None,
) -> np.ndarray:
    """Per-observation log-likelihood contributions."""
    nu = params[NU]
    sigma2 = variance(params, returns, x_prev, bc, rv_prev)
    eps = returns - params[MU]
    u = eps * eps / ((nu - 2) * sigma2)
    return _t_consts(nu) - 0.5 * np.log(sigma2) - 0.5 * (nu + 1) * np.log1p(u)


def loglik_and_scores(
    params: np.ndarray,
    returns: np.ndarray,
    x_prev: np.ndarray,
    bc: float,
    rv_prev: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Total log-likelihood and the ``(n, 8)`` matrix of per-observation scores."""
    mu, _, alpha, gamma, beta, _, _, nu = params
    n = returns.size
    eps = returns - mu
    sigma2 = variance(params, returns, x_prev, bc, rv_prev)
    u = eps * eps / ((nu - 2) * sigma2)
    terms = _t_consts(nu) - 0.5 * np.log(sigma2) - 0.5 * (nu + 1) * np.log1p(u)

    # d drive / d θ for θ = (μ, ω, α, γ, β, δ, δ_rv); the β column is σ²_{t-1} (σ²_0 = bc).
    lag_sq = np.empty(n)
    lag_neg = np.empty(n)
    lag_eps = np.empty(n)
    lag_sq[0], lag_neg[0], lag_eps[0] = bc, 0.5, 0.0  # the backcast does not move with μ
    lag_sq[1:] = eps[:-1] ** 2
    lag_neg[1:] = eps[:-1] < 0
    lag_eps[1:] = eps[:-1]
    d_drive = np.empty((7, n))
    d_drive[0] = -2.0 * (alpha + gamma * lag_neg) * lag_eps
    d_drive[1] = 1.0
    d_drive[2] = lag_sq
    d_drive[3] = lag_neg * lag_sq
    d_drive[4, 0] = bc
    d_drive[4, 1:] = sigma2[:-1]
    d_drive[5] = x_prev
    d_drive[6] = 0.0 if rv_prev is None else rv_prev
    d_sigma2, _ = lfilter([1.0], [1.0, -beta], d_drive, axis=1, zi=np.zeros((7, 1)))

    dl_dsigma2 = -0.5 / sigma2 + 0.5 * (nu + 1) * (u / sigma2) / (1 + u)
    scores = np.empty((n, 8))
    scores[:, :7] = (d_sigma2 * dl_dsigma2).T
    # μ also enters ε_t directly: dℓ/dε · dε/dμ with dε/dμ = -1.
    scores[:, 0] += (nu + 1) * eps / ((nu - 2) * sigma2) / (1 + u)
    scores[:, NU] = (
        0.5 * digamma((nu + 1) / 2)
        - 0.5 * digamma(nu / 2)
        - 0.5 / (nu - 2)
        - 0.5 * np.log1p(u)
        + 0.5 * (nu + 1) * (u / (nu - 2)) / (1 + u)
    )
    return float(terms.sum()), scores
