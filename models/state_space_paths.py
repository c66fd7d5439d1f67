"""Simulate future observations of a fitted statsmodels state-space model, vectorised.

For a (linear Gaussian) model in statsmodels' form::

    y_t     = d + Z α_t + η_t,          η_t ~ N(0, H)
    α_{t+1} = c + T α_t + R ξ_t,        ξ_t ~ N(0, Q)

the filter leaves ``α_{n+1} | y_1..y_n ~ N(a_{n+1}, P_{n+1})``. Drawing ``α_{n+1}`` from
that and running the two equations forward gives paths of ``y_{n+1} .. y_{n+h}``
from the exact predictive distribution, parameter estimates held. statsmodels'
``simulate(..., anchor="end", repetitions=...)`` does the same but is far slower for
thousands of repetitions; this is a few matrix products per day.

Constant-trend models (ARIMA's ``trend="c"``) store a time-varying ``d`` / ``c``; the last
column is the value for the future, which holds for any time-invariant trend.
"""

from __future__ import annotations

import numpy as np

from models.base import ModelStatus, PriceRange
from models.path_range import simulate_range, to_price_range


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A square root ``L`` with ``L Lᵀ = cov`` for a PSD (possibly singular) matrix."""
    cov = 0.5 * (cov + cov.T)
    values, vectors = np.linalg.eigh(cov)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def simulate_observations(
    results: object, steps: int, n_paths: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paths ``(n_paths, steps, k_endog)`` of future observations and the one-step
    conditional variances ``(steps, k_endog)`` of each observation given its past."""
    ssm = results.model.ssm  # type: ignore[attr-defined]
    design = _matrix(ssm["design"])
    transition = _matrix(ssm["transition"])
    selection = _matrix(ssm["selection"])
    state_cov = _matrix(ssm["state_cov"])
    obs_cov = _matrix(ssm["obs_cov"])
    obs_intercept = _vector(ssm["obs_intercept"])
    state_intercept = _vector(ssm["state_intercept"])
    a = np.asarray(results.predicted_state)[:, -1]  # type: ignore[attr-defined]
    p = np.asarray(results.predicted_state_cov)[:, :, -1]  # type: ignore[attr-defined]

    k_endog = design.shape[0]
    state = a + rng.standard_normal((n_paths, a.size)) @ _psd_sqrt(p).T
    shock_root = selection @ _psd_sqrt(state_cov)
    obs_root = _psd_sqrt(obs_cov)
    out = np.empty((n_paths, steps, k_endog))
    for k in range(steps):
        out[:, k, :] = obs_intercept + state @ design.T
        if obs_cov.any():
            out[:, k, :] += rng.standard_normal((n_paths, k_endog)) @ obs_root.T
        if k + 1 < steps:
            shocks = rng.standard_normal((n_paths, shock_root.shape[1]))
            state = state_intercept + state @ transition.T + shocks @ shock_root.T
    first = np.diag(design @ p @ design.T + obs_cov)
    later = np.diag(design @ selection @ state_cov @ selection.T @ design.T + obs_cov)
    variances = np.vstack([first] + [later] * (steps - 1))
    return out, variances


def _matrix(value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    return arr[..., -1] if arr.ndim == 3 else arr


def _vector(value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    return arr[..., -1] if arr.ndim == 2 else arr


def state_space_range(
    name: str,
    results: object,
    anchor: float,
    steps: int,
    confidence: float,
    *,
    n_paths: int,
    seed: int,
    status: ModelStatus,
) -> PriceRange:
    """Close interval and joint path range of the first observed series (the return),
    simulated ``steps`` days ahead from a fitted statsmodels state-space result."""
    rng = np.random.default_rng(seed)
    paths, variances = simulate_observations(results, steps, n_paths, rng)
    returns = paths[:, :, 0]
    day_var = np.broadcast_to(variances[:, 0], returns.shape)
    sim = simulate_range(anchor, returns, day_var, confidence, rng)
    return to_price_range(name, steps, confidence, anchor, sim, status)
