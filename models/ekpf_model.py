"""Stochastic volatility filtered by the Rust EKF-proposal particle filter.

    y_t = μ_y + exp(h_t / 2) ε_t,        h_t = μ + φ (h_{t-1} − μ) + σ η_t,

with ``y_t = 100 ln(C_t / C_{t-1})`` (percent) and ε, η independent N(0, 1) (Taylor 1986;
the filter is van der Merwe, Doucet, de Freitas & Wan 2000, as in the core workloads).

Estimation: quasi-maximum likelihood of Harvey, Ruiz & Shephard (1994, "Multivariate
stochastic variance models", RES 61(2)): ``ln((y − μ_y)² + c)`` is an AR(1) ``h`` plus a
``log χ²₁`` error of mean −1.2704 and variance π²/2, a linear state-space model that
statsmodels' SARIMAX fits exactly by the Kalman filter (measurement-error variance held
at π²/2). The particle filter then filters ``h`` with those parameters, and forecasts
propagate the particles ``h`` days ahead (``forecast`` in Rust: price quantiles and
path-extreme quantiles with within-day Brownian-bridge extremes).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.returns import check_bar, check_forecast_args, checked_history

if TYPE_CHECKING:
    from rust_filters import EKPF

_LOG_CHI2_MEAN = -1.2703628454614782  # E[ln χ²₁]
_LOG_CHI2_VAR = math.pi**2 / 2  # Var[ln χ²₁]
_OFFSET = 1e-4  # keeps ln(y² + c) finite on zero-return days (Fuller 1996's device)
# Below this share of the particles' count, the effective sample size means one or two
# particles carry the weight: the forecast rests on them, and says so.
DEGENERATE_ESS_SHARE = 0.01
# A filter reset (every weight -inf) is reported for this many bars after it, not forever.
RESET_REPORT_BARS = 20


class EKPFModel:
    """The ``ekpf`` member."""

    name = "ekpf"
    min_bars = 300  # the QML estimate needs a year or so of returns; the longest warm-up

    def __init__(
        self,
        *,
        n_particles: int = 2000,
        n_paths: int = 20_000,
        seed: int = 0,
        window: int = 1250,
        burn_in: int = 250,
        threads: int | None = None,
    ) -> None:
        if n_particles < 100:
            raise ValueError(f"n_particles must be >= 100, got {n_particles}")
        self.n_particles = n_particles
        self.n_paths = n_paths
        self.seed = seed
        self.window = window
        self.burn_in = burn_in
        self.threads = threads
        self.params: dict[str, float] = {}
        self._pf: EKPF | None = None
        self._last_close = float("nan")
        self._last_ts: pd.Timestamp | None = None
        self._steps = 0
        self._reset_step: int | None = None  # self._steps at the last filter reset
        self._start: np.ndarray | None = None  # last QML estimate, for warm starts

    def fit(self, history: pd.DataFrame) -> FitResult:
        """Estimate (μ_y, μ, φ, σ) by QML, then filter.

        A refit on a history that extends the one already filtered re-estimates from the
        last estimates (warm start), hands the new parameters to the running filter and
        steps it through the new bars; any other history starts the filter afresh on the
        last ``burn_in`` returns.
        """
        from rust_filters import EKPF

        history = checked_history(history, min_rows=self.min_bars)
        close = history["close"].to_numpy(float)
        y = 100.0 * np.diff(np.log(close))[-self.window :]
        mean = float(y.mean())
        continuing = self._continues(history)
        params, converged, message = _qml_sv(y - mean, self._start if continuing else None)
        self._start = np.array([params["intercept"], params["phi"], params["sigma"] ** 2])
        new = history.loc[history.index > self._last_ts] if continuing else None
        self.params = {"mu_y": mean, "mu": params["mu"], "phi": params["phi"],
                       "sigma": params["sigma"]}  # fmt: skip
        if continuing and new is not None and self._pf is not None:
            pf = self._pf
            pf.set_params(mu=params["mu"], phi=params["phi"], sigma=params["sigma"])
            for ts, c in zip(new.index, new["close"], strict=True):
                self._step(pf, 100.0 * math.log(float(c) / self._last_close) - mean)
                self._last_close, self._last_ts = float(c), pd.Timestamp(ts)
        else:
            pf = EKPF(
                self.n_particles, mu=params["mu"], phi=params["phi"], sigma=params["sigma"],
                seed=self.seed, threads=self.threads,
            )  # fmt: skip
            pf.filter(y[-self.burn_in :] - mean)
            self._pf = pf
            self._steps = 0
            self._reset_step = 0 if pf.n_resets else None
        self._last_close = float(close[-1])
        self._last_ts = pd.Timestamp(history.index[-1])
        return FitResult(
            self.name, dict(self.params), loglik=float(pf.loglik), converged=converged,
            message=message, nobs=len(y),
        )  # fmt: skip

    def _continues(self, history: pd.DataFrame) -> bool:
        if self._pf is None or self._last_ts is None or self._last_ts not in history.index:
            return False
        return bool(history.loc[self._last_ts, "close"] == self._last_close)

    def update(self, bar: Bar) -> None:
        pf = self._require()
        check_bar(bar, self._last_ts)
        self._step(pf, 100.0 * math.log(bar.close / self._last_close) - self.params["mu_y"])
        self._last_close = bar.close
        self._last_ts = bar.ts

    def _step(self, pf: EKPF, y: float) -> None:
        resets = pf.n_resets
        pf.step(y)
        self._steps += 1
        if pf.n_resets > resets:
            self._reset_step = self._steps

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        check_forecast_args(steps, confidence)
        if self._pf is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        pf = self._pf
        alpha = 1.0 - confidence
        levels = [alpha / 2, 0.5, 1 - alpha / 2]
        out = pf.forecast(
            steps, price=self._last_close, levels=levels, n_paths=self.n_paths,
            drift=self.params["mu_y"], return_scale=0.01, bridge=True,
            seed=self.seed + self._steps, path_confidence=confidence,
        )  # fmt: skip
        low, center, high = (float(v) for v in out["price"])
        path_low, path_high = (float(v) for v in out["path_range"])
        if not all(math.isfinite(v) and v > 0 for v in (low, high, path_low, path_high)):
            reason = f"forecast not finite and positive (ESS {pf.ess:.1f} of {self.n_particles})"
            return PriceRange.failure(self.name, steps, confidence, self._last_close, reason)
        status = ModelStatus.ok()
        if self._reset_step is not None and self._steps - self._reset_step < RESET_REPORT_BARS:
            status = ModelStatus.degraded(f"filter reset: {pf.last_reset_reason}")
        elif pf.ess < DEGENERATE_ESS_SHARE * self.n_particles:
            status = ModelStatus.degraded(
                f"particle degeneracy at the last bar: ESS {pf.ess:.1f} of {self.n_particles}"
            )
        return PriceRange(
            self.name, steps, confidence, self._last_close, low, high, center,
            path_low=path_low, path_high=path_high,
            quantiles=dict(zip(levels, (low, center, high), strict=True)), status=status,
        )  # fmt: skip

    def _require(self) -> EKPF:
        if self._pf is None:
            raise RuntimeError("fit() before update() or forecast()")
        return self._pf


def _qml_sv(y: np.ndarray, start: np.ndarray | None = None) -> tuple[dict[str, float], bool, str]:
    """Harvey–Ruiz–Shephard QML estimates of (μ, φ, σ) for demeaned percent returns."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    x = np.log(y**2 + _OFFSET) - _LOG_CHI2_MEAN
    model = SARIMAX(x, order=(1, 0, 0), trend="c", measurement_error=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with model.fix_params({"var.measurement_error": _LOG_CHI2_VAR}):
            res = model.fit(start_params=start, disp=False)
    names = list(res.model.param_names)
    p = dict(zip(names, np.asarray(res.params, dtype=float), strict=True))
    phi = float(np.clip(p["ar.L1"], -0.999, 0.999))
    mu = float(p["intercept"] / (1.0 - phi))
    sigma = float(math.sqrt(max(p["sigma2"], 1e-6)))
    converged = bool(res.mle_retvals.get("converged", True)) if res.mle_retvals else True
    message = "" if converged else "QML fit did not converge"
    out = {"mu": mu, "phi": phi, "sigma": sigma, "intercept": float(p["intercept"])}
    return out, converged, message
