"""Merton jump diffusion with the diffusion set from the VIX, simulated in Rust.

    d ln S = (μ − σ²/2 − λκ) dt + σ dW + J dN,   N ~ Poisson(λ), J ~ N(μ_J, σ_J²),
    κ = exp(μ_J + σ_J²/2) − 1                      (Merton 1976, J. Fin. Econ. 3(1–2))

with time in trading days and ``μ = 0`` (over h ≤ a few weeks the drift is far below
the noise). The total daily variance over the horizon is the VIX corrected for the
variance risk premium (:mod:`models.realized_variance`: a HAR regression of realised on
implied variance, fitted on history; with fewer than 60 days of VIX history, the configured
``vix.coefficient · VIX`` instead); the diffusion gets that variance less the jump
variance ``λ(μ_J² + σ_J²)`` (at least half of it). Jumps are estimated from history:
returns beyond ``jump_threshold`` conditional standard deviations are jumps; ``λ`` is
their frequency and ``μ_J``, ``σ_J`` their mean and standard deviation (with a prior of a
few pseudo-jumps so a quiet history does not give ``λ = 0``). The Delta UKF's put skew,
when given (:meth:`set_skew_z`), shifts ``μ_J`` down by ``skew_shift · σ_J`` per unit of
skew z-score (positive z only), with the drift of the unshifted jumps kept: a richer put
wing prices larger crashes.

Cross-feed from the ensemble (:meth:`set_consensus_volatility`, staged after the other
members): the total daily variance becomes the geometric blend
``v^(1−w) · σ_c^(2w)`` of the HAR-VIX variance ``v`` and the other members' consensus
volatility ``σ_c``, ``w = consensus_weight``. Its effect was within noise on the pre-2015
replays (ensemble interval score over the four tables: w = 0.25 −0.01 % on 2010–2013 and
+0.04 % on 2014; 0.5 −0.02 / +0.07 %; 1.0 −0.04 / +0.23 %), so the default is the
smallest weight tried, 0.25: the simulation follows the consensus a little without
giving up its own VIX reading.

Paths are simulated by ``rust_filters.simulate_merton`` with within-day Brownian-bridge
extremes, which also returns the joint path range at the confidence.

Between bars, option chains move these inputs a little (in the bundled feed the consensus
moved by 0.4 % between successive forecasts of one origin at the median, 1.1 % at the 90th
percentile). Within one origin a new simulation is run only when the inputs moved more
than ``resimulate_tolerance`` (0.5 % in daily volatility, or a crash-size change of 5 % of
``σ_J``) from those of its last simulation; smaller moves are below the simulation's own
noise (for a normal law the sampling error of a 5 % quantile from 20,000 paths is 0.9 %
of its distance from the median) and would cost a full simulation per chain for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.realized_variance import (
    TRADING_DAYS,
    HarFeatures,
    HarFit,
    daily_realized_variance,
    fit_har,
)
from models.returns import check_bar, check_forecast_args, checked_history

_PRIOR_JUMPS = 2.0  # pseudo-jumps at the prior size, so λ > 0 and σ_J is defined
_PRIOR_MU_J = -0.02
_PRIOR_SIGMA_J = 0.02
_MU_J_TOLERANCE = 0.05  # in units of σ_J: a crash-size change below this keeps the memo


@dataclass(frozen=True)
class _Simulated:
    """One origin's simulation and the inputs it was run with (range None: put back by
    :meth:`JumpDiffusionVIX.restore_chain_state`, simulated again when first needed)."""

    variance: float
    mu_j: float
    range: PriceRange | None


class JumpDiffusionVIX:
    """The ``jump_diffusion_vix`` member."""

    name = "jump_diffusion_vix"

    def __init__(
        self,
        *,
        n_paths: int = 20_000,
        seed: int = 0,
        jump_threshold: float = 4.0,
        skew_shift: float = 0.25,
        threads: int | None = None,
        horizons: tuple[int, ...] = (1, 5),
        consensus_weight: float = 0.25,
        vix_coefficient: float = 0.8,
        resimulate_tolerance: float = 0.005,
    ) -> None:
        if not (math.isfinite(vix_coefficient) and vix_coefficient > 0):
            raise ValueError(f"vix_coefficient must be > 0, got {vix_coefficient}")
        self.vix_coefficient = vix_coefficient
        if n_paths < 100:
            raise ValueError(f"n_paths must be >= 100, got {n_paths}")
        if not 0.0 <= consensus_weight <= 1.0:
            raise ValueError(f"consensus_weight must be in [0, 1], got {consensus_weight}")
        self.consensus_weight = consensus_weight
        if not (math.isfinite(resimulate_tolerance) and resimulate_tolerance >= 0):
            raise ValueError(f"resimulate_tolerance must be >= 0, got {resimulate_tolerance}")
        self.resimulate_tolerance = resimulate_tolerance
        # This origin's simulations by (steps, confidence, paths); emptied by fit/update.
        self._memo: dict[tuple[int, float, int], _Simulated] = {}
        self._consensus: float | None = None
        self.n_paths = n_paths
        self.seed = seed
        self.jump_threshold = jump_threshold
        self.skew_shift = skew_shift
        self.threads = threads
        self.horizons = horizons
        self.lam = self.mu_j = self.sigma_j = float("nan")
        self._fits: dict[tuple[int, bool], HarFit] = {}
        self._history: pd.DataFrame | None = None
        self._features: HarFeatures | None = None
        self._skew_z = 0.0
        self._bars = 0

    # -- verbs ------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> FitResult:
        history = checked_history(history, min_rows=120)
        features = HarFeatures.from_history(history)
        fits: dict[tuple[int, bool], HarFit] = {}
        messages = []
        for h in self.horizons:
            fits[(h, False)] = fit_har(history, h, with_vix=False, features=features)
            try:
                fits[(h, True)] = fit_har(history, h, with_vix=True, features=features)
            except ValueError as exc:  # not enough VIX history yet
                messages.append(str(exc))
        self._estimate_jumps(history, features, fits[(1, False)] if 1 in self.horizons else None)
        self._fits = fits
        self._history = history.copy()
        self._features = features
        self._bars = len(history)  # seeds each origin's simulation differently
        self._memo.clear()
        params = {"lambda": self.lam, "mu_j": self.mu_j, "sigma_j": self.sigma_j}
        for (h, v), f in fits.items():
            for name, c in zip(_coef_names(v), f.coef, strict=True):
                params[f"h{h}{'_vix' if v else ''}.{name}"] = float(c)
        return FitResult(self.name, params, nobs=len(history), message="; ".join(messages))

    def update(self, bar: Bar) -> None:
        if self._history is None:
            raise RuntimeError("fit() before update()")
        check_bar(bar, self._history.index[-1])
        # Only the last 22 rows feed the regressors: keep a short tail, not all history.
        self._history = pd.concat([self._history.iloc[-40:], bar.to_frame()])
        self._features = HarFeatures.from_history(self._history)
        self._bars += 1
        self._memo.clear()

    def set_skew_z(self, skew_z: float | None) -> None:
        """Cross-feed from the Delta UKF: the put skew's z-score (None: no chain)."""
        self._skew_z = 0.0 if skew_z is None or not math.isfinite(skew_z) else skew_z

    def set_consensus_volatility(self, sigma_daily: float | None) -> None:
        """Cross-feed from the ensemble: the other members' consensus daily volatility
        (decimal) at the horizon about to be forecast; None: no consensus."""
        ok = sigma_daily is not None and math.isfinite(sigma_daily) and sigma_daily > 0
        self._consensus = sigma_daily if ok else None

    def forecast(
        self, steps: int, confidence: float = 0.9, *, num_simulations: int | None = None
    ) -> PriceRange:
        """The range ``steps`` days ahead from ``num_simulations`` Monte Carlo paths
        (default ``n_paths``); seeded per origin. It changes no model state; within an
        origin it reuses its last simulation while the inputs stay within
        ``resimulate_tolerance`` (module docstring)."""
        check_forecast_args(steps, confidence)
        if self._history is None or self._features is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        n_paths = self.n_paths if num_simulations is None else num_simulations
        if isinstance(n_paths, bool) or not isinstance(n_paths, int) or n_paths < 100:
            raise ValueError(f"num_simulations must be an integer >= 100, got {num_simulations!r}")
        anchor = float(self._history["close"].iloc[-1])
        h_fit = min(self._fits, key=lambda k: (abs(k[0] - steps), not k[1]))[0]
        i = len(self._history) - 1
        vix_now = bool(np.isfinite(self._features.vix[i]))
        has_vix = vix_now and (h_fit, True) in self._fits
        if vix_now and not has_vix:
            # Too little VIX history to estimate the premium: the configured prior,
            # σ = vix.coefficient · VIX (annual), as a daily variance.
            vix = float(self._history["vix"].iloc[-1])
            variance = (self.vix_coefficient * vix / 100.0) ** 2 / TRADING_DAYS
            status = ModelStatus.degraded("VIX premium not estimated yet: vix.coefficient used")
        else:
            fit = self._fits[(h_fit, has_vix)]
            variance = fit.variance(self._features.row(i, has_vix))
            status = ModelStatus.ok() if has_vix else ModelStatus.degraded("no VIX")
        if self._consensus is not None and self.consensus_weight > 0:
            w = self.consensus_weight  # geometric blend of the two daily variances
            variance = math.exp((1 - w) * math.log(variance) + w * 2 * math.log(self._consensus))
        mu_j = self.mu_j - self.skew_shift * max(self._skew_z, 0.0) * self.sigma_j
        key = (steps, confidence, n_paths)
        memo = self._memo.get(key)
        if memo is not None and memo.range is None:  # put back by a restore: run it again
            again = self._simulate(
                anchor, steps, confidence, n_paths, memo.variance, memo.mu_j, status
            )
            memo = self._memo[key] = _Simulated(memo.variance, memo.mu_j, again)
        if (
            memo is not None
            and memo.range is not None
            and self.resimulate_tolerance > 0
            and memo.range.status == status
            # variance, so twice the tolerance on the volatility
            and abs(math.log(variance / memo.variance)) <= 2 * self.resimulate_tolerance
            and abs(mu_j - memo.mu_j) <= _MU_J_TOLERANCE * self.sigma_j
        ):
            return memo.range
        rng = self._simulate(anchor, steps, confidence, n_paths, variance, mu_j, status)
        self._memo[key] = _Simulated(variance, mu_j, rng)
        return rng

    def chain_state(self) -> dict[str, Any]:
        """The inputs of the simulations this origin's forecasts reuse, as plain data.
        Chains move those inputs (the skew, the consensus) within the tolerance without a
        new simulation, so which paths a forecast reuses depends on the forecasts since
        the bar: a restart puts the inputs back and simulates them again when needed."""
        return {"memo": [[*key, m.variance, m.mu_j] for key, m in self._memo.items()]}

    def restore_chain_state(self, state: Mapping[str, Any]) -> None:
        self._memo = {
            (int(s), float(c), int(n)): _Simulated(float(v), float(mu), None)
            for s, c, n, v, mu in state["memo"]
        }

    def _simulate(
        self, anchor: float, steps: int, confidence: float, n_paths: int, variance: float,
        mu_j: float, status: ModelStatus,
    ) -> PriceRange:  # fmt: skip
        """The simulated range for a daily variance and a (skew-shifted) jump mean."""
        from rust_filters import simulate_merton

        jump_var = self.lam * (self.mu_j**2 + self.sigma_j**2)
        diffusion = math.sqrt(max(variance - jump_var, 0.5 * variance))
        # Keep the drift of the unshifted jumps: the skew adds crash risk, it does not
        # buy it back with a higher drift (which the compensator −λκ would do).
        kappa = math.exp(self.mu_j + self.sigma_j**2 / 2) - 1
        kappa_shifted = math.exp(mu_j + self.sigma_j**2 / 2) - 1
        drift = self.lam * (kappa_shifted - kappa)
        alpha = 1.0 - confidence
        sim = simulate_merton(
            anchor, drift, diffusion, self.lam, mu_j, self.sigma_j, n_paths, steps,
            dt=1.0, levels=[alpha / 2, 0.5, 1 - alpha / 2], seed=self.seed + self._bars,
            threads=self.threads, bridge=True, path_confidence=confidence,
        )  # fmt: skip
        low, center, high = (float(v) for v in sim.terminal)
        return PriceRange(
            self.name, steps, confidence, anchor, low, high, center,
            path_low=sim.path_low, path_high=sim.path_high,
            quantiles={alpha / 2: low, 0.5: center, 1 - alpha / 2: high}, status=status,
        )  # fmt: skip

    # -- internals --------------------------------------------------------------------

    def _estimate_jumps(
        self, history: pd.DataFrame, features: HarFeatures, fit: HarFit | None
    ) -> None:
        c = history["close"].to_numpy(float)
        r = np.diff(np.log(c))
        if fit is None:
            sd = np.full(len(r), np.std(r))
        else:
            x = np.column_stack([np.ones(len(r)), features.rv_d[:-1], features.rv_w[:-1],
                                 features.rv_m[:-1]])  # fmt: skip
            sd = np.sqrt(np.exp(x @ fit.coef) * fit.smearing)
        jumps = r[np.abs(r) > self.jump_threshold * sd]
        n = len(jumps)
        self.lam = (n + _PRIOR_JUMPS) / (len(r) + 1)
        total = jumps.sum() + _PRIOR_JUMPS * _PRIOR_MU_J
        self.mu_j = float(total / (n + _PRIOR_JUMPS))
        ss = ((jumps - self.mu_j) ** 2).sum() + _PRIOR_JUMPS * _PRIOR_SIGMA_J**2
        self.sigma_j = float(math.sqrt(ss / (n + _PRIOR_JUMPS)))

    @property
    def realized_variance(self) -> float:
        """Today's range-based realised variance (decimal²), for the ensemble's report."""
        if self._history is None:
            raise RuntimeError("fit() first")
        return float(daily_realized_variance(self._history.iloc[-2:])[-1])


def _coef_names(with_vix: bool) -> list[str]:
    return ["const", "rv_d", "rv_w", "rv_m"] + (["vix"] if with_vix else [])
