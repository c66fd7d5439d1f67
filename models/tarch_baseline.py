"""The protocol's plain TARCH-t baseline, entirely by ``arch``.

TARCH(1,1,1) with Student-t errors (Zakoian 1994: the threshold model on the conditional
standard deviation, ``arch_model(..., o=1, power=1.0, dist="t")``) on close-to-close
returns in percent, no VIX and no range. It is the second baseline the issue quotes
(3.357 / 3.878 / 7.698 / 9.258), run by ``markov validate --baselines`` so that the
comparison is measured in the same walk, not quoted.

``fit`` estimates by ``arch`` (warm start from the last estimate, cold start if that does
not converge); ``update`` appends the return and holds the parameters, and ``forecast``
re-filters the variance through the last return with ``arch_model(...).fix(params)``
(the protocol's "conditional variance filtered through t"), then reads the close
interval and the joint path range off ``arch``'s own simulation of ``n_paths`` paths of
returns and variances with the protocol's Brownian-bridge extremes
(:func:`models.path_range.simulate_range`). Seeded per origin, so it is deterministic.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from arch import arch_model
from arch.utility.exceptions import StartingValueWarning

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.path_range import simulate_range, to_price_range
from models.returns import (
    check_bar,
    check_forecast_args,
    checked_history,
    log_returns_pct,
    return_pct,
)


class TarchT:
    """``arch``'s TARCH(1,1,1)-t as a walk-forward model (see the module docstring)."""

    name = "tarch-t (arch)"

    def __init__(self, *, n_paths: int = 5000, seed: int = 0) -> None:
        if n_paths < 100:
            raise ValueError(f"n_paths must be >= 100, got {n_paths}")
        self.n_paths = n_paths
        self.seed = seed
        self._params: np.ndarray | None = None
        self._returns: list[float] = []
        self._close = math.nan
        self._last_ts: pd.Timestamp | None = None
        self._fixed: tuple[int, Any] | None = None  # (returns seen, arch's filtered result)

    def fit(self, history: pd.DataFrame) -> FitResult:
        history = checked_history(history, min_rows=101)
        close = history["close"].to_numpy(dtype=float)
        returns = log_returns_pct(close)
        model = _spec(returns)
        with warnings.catch_warnings():
            # The last estimate can sit outside arch's starting-value constraints; arch
            # then starts from its own values, which is what we want: not worth a warning
            # at every refit (62 of them in a `markov validate --baselines` report).
            warnings.simplefilter("ignore", StartingValueWarning)
            res = model.fit(disp="off", show_warning=False, starting_values=self._params)
        if res.convergence_flag != 0 and self._params is not None:
            res = model.fit(disp="off", show_warning=False)
        self._params = np.asarray(res.params, dtype=float)
        self._fixed = None
        self._returns = returns.tolist()
        self._close = float(close[-1])
        self._last_ts = pd.Timestamp(history.index[-1])
        return FitResult(
            self.name,
            {str(k): float(v) for k, v in res.params.items()},
            std_errors={str(k): float(v) for k, v in res.std_err.items()},
            loglik=float(res.loglikelihood),
            converged=res.convergence_flag == 0,
            nobs=len(returns),
        )

    def update(self, bar: Bar) -> None:
        if self._params is None:
            raise RuntimeError("fit() before update()")
        check_bar(bar, self._last_ts)
        self._returns.append(return_pct(self._close, bar.close))
        self._close = float(bar.close)
        self._last_ts = bar.ts

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        check_forecast_args(steps, confidence)
        if self._params is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        n = len(self._returns)
        if self._fixed is None or self._fixed[0] != n:  # one re-filter per origin
            self._fixed = (n, _spec(np.asarray(self._returns)).fix(self._params))
        fixed = self._fixed[1]
        # arch draws simulation shocks from the rng given (its random_state serves the
        # bootstrap only): the standardised Student-t of the fit, seeded per origin.
        gen = np.random.default_rng(self.seed + n)
        nu = float(self._params[-1])
        fc = fixed.forecast(
            horizon=steps, method="simulation", simulations=self.n_paths, reindex=False,
            rng=lambda size: gen.standard_t(nu, size) * math.sqrt((nu - 2.0) / nu),
        )  # fmt: skip
        sims: Any = fc.simulations
        sim = simulate_range(self._close, sims.values[-1], sims.variances[-1], confidence, gen)
        return to_price_range(self.name, steps, confidence, self._close, sim, ModelStatus.ok())


def _spec(returns: np.ndarray) -> Any:
    return arch_model(returns, mean="Constant", vol="GARCH", p=1, o=1, q=1, power=1.0, dist="t")
