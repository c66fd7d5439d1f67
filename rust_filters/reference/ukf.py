"""NumPy reference Unscented Kalman Filter (the oracle of the Rust ``UKF``).

Additive-noise UKF with filterpy's algorithm (``UnscentedKalmanFilter`` +
``MerweScaledSigmaPoints``), as ``benchmarks/spec/WORKLOADS.md`` section 1 states it,
vectorised over the sigma points::

    lambda = alpha^2 (n + kappa) - n
    Wm_0 = lambda / (n + lambda),  Wc_0 = Wm_0 + 1 - alpha^2 + beta
    Wm_i = Wc_i = 1 / (2 (n + lambda))
    X = [x, x + L_i, x - L_i],  L = chol_lower((n + lambda) P)

    predict: Xf = f(X, dt); x = Wm Xf; P = sum Wc (Xf - x)(Xf - x)' + Q(dt)
    update:  X = sigma(x, P); Z = h(X); zp = Wm Z; S = sum Wc (Z - zp)(Z - zp)' + R
             Pxz = sum Wc (X - x)(Z - zp)'; K = Pxz S^-1; x += K (z - zp); P -= K S K'

with the two stochastic-volatility models of the workloads (ukf2-sv, ukf3-svp).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
# f(X, dt) and h(X) act on all sigma points at once: X has shape (2n+1, n).
Transition = Callable[[Array, float], Array]
Measurement = Callable[[Array], Array]

MU, PHI, SIGMA = -1.02, 0.9702, 0.178
V0 = SIGMA**2 / (1 - PHI**2)
C_ABS = np.sqrt(2 / np.pi)  # E|eps| for eps ~ N(0, 1)


@dataclass(frozen=True)
class UkfResult:
    means: Array  # (T, n) filtered means
    covariances: Array  # (T, n, n) filtered covariances
    loglik: Array  # (T,) innovation log-likelihood of each observation


def sigma_weights(
    n: int, alpha: float = 0.1, beta: float = 2.0, kappa: float | None = None
) -> tuple[Array, Array, float]:
    """``(Wm, Wc, lambda)`` of the scaled sigma points; ``kappa=None`` is ``3 - n``."""
    k = 3.0 - n if kappa is None else kappa
    lam = alpha**2 * (n + k) - n
    c = 0.5 / (n + lam)
    Wm = np.full(2 * n + 1, c)
    Wc = np.full(2 * n + 1, c)
    Wm[0] = lam / (n + lam)
    Wc[0] = lam / (n + lam) + (1 - alpha**2 + beta)
    return Wm, Wc, lam


def sigma_points(x: Array, P: Array, lam: float) -> Array:
    """The ``2n+1`` sigma points as rows."""
    L = np.linalg.cholesky((lam + x.size) * P)
    return np.vstack([x, x + L.T, x - L.T])


def ukf_filter(
    zs: npt.ArrayLike,
    fx: Transition,
    hx: Measurement,
    Q: Array | Callable[[float], Array],
    R: Array,
    x0: npt.ArrayLike,
    P0: npt.ArrayLike,
    *,
    alpha: float = 0.1,
    beta: float = 2.0,
    kappa: float | None = None,
    dts: npt.ArrayLike | None = None,
) -> UkfResult:
    """Filter ``zs`` (shape (T, m)): a predict then an update per row."""
    x = np.asarray(x0, dtype=float).copy()
    P = np.asarray(P0, dtype=float).copy()
    n = x.size
    Z = np.atleast_2d(np.asarray(zs, dtype=float))
    T, m = Z.shape
    steps = np.ones(T) if dts is None else np.asarray(dts, dtype=float)
    Wm, Wc, lam = sigma_weights(n, alpha, beta, kappa)
    means, covs, ll = np.empty((T, n)), np.empty((T, n, n)), np.empty(T)
    for t in range(T):
        dt = float(steps[t])
        Xf = fx(sigma_points(x, P, lam), dt)
        x = Wm @ Xf
        dX = Xf - x
        P = (dX.T * Wc) @ dX + (Q(dt) if callable(Q) else Q)
        X = sigma_points(x, P, lam)
        Zs = hx(X)
        zp = Wm @ Zs
        dZ = Zs - zp
        S = (dZ.T * Wc) @ dZ + R
        Pxz = ((X - x).T * Wc) @ dZ
        K = np.linalg.solve(S, Pxz.T).T  # Pxz S^-1 (S symmetric)
        innovation = Z[t] - zp
        x = x + K @ innovation
        P = P - K @ S @ K.T
        _, logdet = np.linalg.slogdet(S)
        ll[t] = -0.5 * (
            m * np.log(2 * np.pi) + logdet + innovation @ np.linalg.solve(S, innovation)
        )
        means[t], covs[t] = x, P
    return UkfResult(means, covs, ll)


# ---- the workloads ----------------------------------------------------------------------


def load_workload(path: str | Path) -> dict[str, Array]:
    """Columns ``t, h, y, r, p`` of ``sv_T1000_seed20240601.csv``."""
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return {name: data[:, i] for i, name in enumerate(("t", "h", "y", "r", "p"))}


def ukf2_sv(r: npt.ArrayLike) -> UkfResult:
    """ukf2-sv: state ``[h, m]``, observations ``z_t = [r_t, |r_t|]``."""
    r_ = np.asarray(r, dtype=float)

    def fx(X: Array, dt: float) -> Array:
        return np.column_stack([MU + PHI * (X[:, 0] - MU), X[:, 1]])

    def hx(X: Array) -> Array:
        return np.column_stack([X[:, 1], C_ABS * np.exp(X[:, 0] / 2)])

    Q = np.diag([SIGMA**2, 0.01**2])
    R = np.diag([np.exp(MU), (1 - 2 / np.pi) * np.exp(MU)])
    zs = np.column_stack([r_, np.abs(r_)])
    return ukf_filter(zs, fx, hx, Q, R, [MU, 0.0], np.diag([V0, 0.1**2]))


def ukf3_svp(r: npt.ArrayLike, p: npt.ArrayLike) -> UkfResult:
    """ukf3-svp: state ``[p, m, h]``, observations ``z_t = [p_t, |r_t|]``."""
    r_, p_ = np.asarray(r, dtype=float), np.asarray(p, dtype=float)

    def fx(X: Array, dt: float) -> Array:
        return np.column_stack(
            [X[:, 0] + X[:, 1] - 0.005 * np.exp(X[:, 2]), X[:, 1], MU + PHI * (X[:, 2] - MU)]
        )

    def hx(X: Array) -> Array:
        return np.column_stack([X[:, 0], C_ABS * np.exp(X[:, 2] / 2)])

    Q = np.diag([np.exp(MU), 0.01**2, SIGMA**2])
    R = np.diag([0.05**2, (1 - 2 / np.pi) * np.exp(MU)])
    zs = np.column_stack([p_, np.abs(r_)])
    x0 = [100 * np.log(100), 0.0, MU]
    return ukf_filter(zs, fx, hx, Q, R, x0, np.diag([1.0, 0.1**2, V0]))
