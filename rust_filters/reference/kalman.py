"""The exact Kalman filter for a linear-Gaussian state-space model (the oracle).

    x_t = c + F x_{t-1} + w_t,   w_t ~ N(0, Q)
    z_t = d + H x_t     + v_t,   v_t ~ N(0, R)

with ``x_{-1} ~ N(x0, P0)`` and a predict before every update (as the UKF workload).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class KalmanResult:
    means: Array  # (T, n) filtered means
    covariances: Array  # (T, n, n) filtered covariances
    loglik: Array  # (T,) innovation log-likelihood of each observation


def kalman_filter(
    zs: npt.ArrayLike,
    F: npt.ArrayLike,
    H: npt.ArrayLike,
    Q: npt.ArrayLike,
    R: npt.ArrayLike,
    x0: npt.ArrayLike,
    P0: npt.ArrayLike,
    c: npt.ArrayLike | None = None,
    d: npt.ArrayLike | None = None,
) -> KalmanResult:
    """Filter ``zs`` (shape (T, m), or (T,) for m = 1)."""
    F_, H_, Q_, R_ = (np.atleast_2d(np.asarray(a, dtype=float)) for a in (F, H, Q, R))
    x = np.asarray(x0, dtype=float).reshape(-1).copy()
    P = np.atleast_2d(np.asarray(P0, dtype=float)).copy()
    n, m = x.size, H_.shape[0]
    c_ = np.zeros(n) if c is None else np.asarray(c, dtype=float).reshape(n)
    d_ = np.zeros(m) if d is None else np.asarray(d, dtype=float).reshape(m)
    Z = np.asarray(zs, dtype=float).reshape(-1, m)
    T = Z.shape[0]
    means, covs, ll = np.empty((T, n)), np.empty((T, n, n)), np.empty(T)
    for t in range(T):
        x = c_ + F_ @ x
        P = F_ @ P @ F_.T + Q_
        innovation = Z[t] - (d_ + H_ @ x)
        S = H_ @ P @ H_.T + R_
        K = np.linalg.solve(S, H_ @ P).T  # P H' S^-1, S and P symmetric
        x = x + K @ innovation
        P = P - K @ S @ K.T
        _, logdet = np.linalg.slogdet(S)
        mahalanobis = innovation @ np.linalg.solve(S, innovation)
        ll[t] = -0.5 * (m * np.log(2 * np.pi) + logdet + mahalanobis)
        means[t], covs[t] = x, P
    return KalmanResult(means, covs, ll)
