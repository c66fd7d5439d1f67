"""Threshold GARCH with the VIX and the daily range in the variance (GJR-GARCH-X).

Model, returns ``r_t = 100 ln(C_t / C_{t-1})``::

    r_t   = μ + ε_t,   ε_t = σ_t z_t,   z_t ~ iid standardised Student-t(ν)
    σ²_t  = ω + (α + γ 1{ε_{t-1} < 0}) ε²_{t-1} + β σ²_{t-1} + δ VIX²_{t-1} / 252
            + δ_rv v_{t-1}

``v_t`` is day ``t``'s realised range variance (Garman–Klass plus the squared overnight
return, percent², :func:`models.realized_variance.daily_realized_variance`): the realised
measure of the HEAVY models (Shephard & Sheppard 2010, J. Applied Econometrics 25(2)),
several times more informative about σ² than ε². The close-to-close baselines do not
see the range. Chosen on walk-forwards before 2015: without the VIX it raised the
out-of-sample log-likelihood per day by 0.011 on 2010–2013 and 0.032 on 2014 (fitted on
1999 onwards), and the member's mean interval score (four tables) fell 1.8 % on
2010–2013 and 2.0 % on 2014. A history without a usable range (e.g.
``open = high = low = close``) holds ``δ_rv = 0``; a bar without one enters with its
expectation ``κ σ²`` (``κ`` = mean ``v`` over mean ``σ²`` in the fit sample), as do the
days of a multi-step forecast.

``innovations="bootstrap"`` draws the forecast innovations from the fit's own
standardised residuals instead of the Student-t (filtered historical simulation,
Barone-Adesi, Giannopoulos & Vosper 1999), so the negative skew of the index's
standardised returns (−0.40 on 1999–2014, 5 % quantile −1.75 against the fitted t's
−1.62) widens the lower side; the VIX sample alone (from 2014) is too short for the
tails, so its pool adds the no-VIX model's residuals from before it. Not the default:
it lowered the member's own interval score on 2010–2013 and 2014, but the ensemble's
only on 2010–2013 (on 2014 it was worse at every base weight tried).

The threshold term is the GJR form (Glosten, Jagannathan & Runkle 1993, "On the relation
between the expected value and the volatility of the nominal excess return on stocks",
J. Finance 48(5); Zakoian 1994, "Threshold heteroskedastic models", JEDC 18(5), is the
absolute-value variant). The exogenous term is a GARCH-X (Han & Kristensen 2014,
"Asymptotic theory for the QMLE in GARCH-X models with stationary and nonstationary
covariates", JBES 32(3)); ``VIX²/252`` is the implied daily variance, in percent², known
at the close before ``r_t``. Positivity: ``ω > 0, α ≥ 0, α + γ ≥ 0, β ≥ 0, δ ≥ 0, δ_rv ≥ 0``;
stationarity of the GARCH part: ``α + γ/2 + β < 1``. Estimated by maximum likelihood.

Why not ``arch`` alone: ``arch`` accepts exogenous regressors in the mean only, not in the
variance equation, so the X term, its likelihood and score are written here
(:mod:`models.gjrx_likelihood`, vectorised with ``lfilter``). ``arch`` fits the model
without the VIX and the range (``δ = δ_rv = 0``), which serves as the fallback when the VIX
is missing and there is no range, and as the cross-check of the hand-written likelihood
(same backcast, same log-likelihood); with a range, the fallback is the hand-written
likelihood with ``δ = 0`` held and the range term.

Forecasts hold the VIX at its last value over the horizon (no model for the VIX itself:
with only 2014 available before the test window, one year of VIX cannot pin one down;
on 2014 the daily AR(1) coefficient of VIX² is 0.89, so at h = 5 part of a VIX spike
would revert) and simulate the GJR recursion forward, then read the close interval and
the joint path range off the paths (:mod:`models.path_range`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from arch import arch_model
from scipy.optimize import minimize

from models import gjrx_likelihood as gl
from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.path_range import simulate_range, to_price_range
from models.realized_variance import (
    bar_realized_variance,
    daily_realized_variance,
    has_daily_range,
)
from models.returns import (
    check_bar,
    check_forecast_args,
    checked_history,
    implied_daily_variance,
    log_returns_pct,
    origin_seed,
    return_pct,
    vix_column,
)

_PERSISTENCE_CAP = 1.0 - 1e-6
_RV_FALLBACK = "gjr-garch-t-rv"
INNOVATIONS: tuple[str, ...] = ("t", "bootstrap")


@dataclass
class _Filter:
    """Held parameters and the filtered state of one variance recursion."""

    params: np.ndarray  # in gjrx_likelihood.PARAM_NAMES order (δ = 0 for the fallback)
    backcast: float
    next_variance: float  # σ² of the next, not yet seen, return
    # Standardised residuals of the fit sample (mean 0, variance 1): the bootstrap pool
    # of filtered historical simulation.
    residuals: np.ndarray = field(default_factory=lambda: np.empty(0))
    # E[v_t] = κ σ²_t over the fit sample: the realised range variance of a day not yet
    # seen, in the multi-step forecast and for a bar without a usable range.
    kappa: float = 0.0

    def step(self, ret: float, x: float, rv: float) -> None:
        if not math.isfinite(rv):
            rv = self.kappa * self.next_variance
        eps = ret - self.params[gl.MU]
        self.next_variance = gl.next_variance(self.params, eps, self.next_variance, x, rv)


def _named(values: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(gl.PARAM_NAMES, values, strict=True)}


class TGARCHModel:
    """GJR-GARCH-X(1,1,1)-t with the VIX in the variance (see the module docstring).

    ``fit(history, vix_coefficient=None)`` estimates every parameter (``δ`` too) or holds
    ``δ`` at the given number; refits start from the previous estimate (cold start if
    that does not converge). ``update(bar)`` filters the variance one step with held
    parameters; ``forecast`` simulates ``n_paths`` paths with a fixed ``seed``.
    """

    name = "tgarch-x"

    def __init__(
        self,
        *,
        n_paths: int = 5000,
        seed: int = 0,
        min_vix_obs: int = 200,
        innovations: str = "t",
        range_term: bool = True,
    ) -> None:
        if n_paths < 100:
            raise ValueError(f"n_paths must be >= 100, got {n_paths}")
        if min_vix_obs < 50:
            raise ValueError(f"min_vix_obs must be >= 50, got {min_vix_obs}")
        if innovations not in INNOVATIONS:
            raise ValueError(
                f"innovations must be one of {', '.join(INNOVATIONS)}, got {innovations!r}"
            )
        self.innovations = innovations
        # False: the protocol's GJR-GARCH-t with VIX² baseline (δ_rv = 0 held, as for a
        # history without a range), for `markov validate --baselines`.
        self.range_term = range_term
        self.n_paths = n_paths
        self.seed = seed
        self.min_vix_obs = min_vix_obs
        self.fit_result: FitResult | None = None  # the VIX model's last fit (None: not fitted)
        self.fallback_result: FitResult | None = None  # arch's GJR-GARCH-t fit
        self._x: _Filter | None = None
        self._fallback: _Filter | None = None
        self._last_close = math.nan
        self._last_ts: pd.Timestamp | None = None
        self._last_x = math.nan  # last known implied variance VIX²/252
        self._vix_now = False  # does the last bar carry a VIX?
        self._vix_reason = ""

    # ------------------------------------------------------------------ fit
    def fit(self, history: pd.DataFrame, vix_coefficient: float | None = None) -> FitResult:
        """Fit on a daily history (columns ``close`` and ``vix``; NaN VIX = missing)."""
        if vix_coefficient is not None and not (
            math.isfinite(vix_coefficient) and vix_coefficient >= 0
        ):
            raise ValueError(f"vix_coefficient must be None or >= 0, got {vix_coefficient!r}")
        history = checked_history(history, min_rows=101)
        close = history["close"].to_numpy(dtype=float)
        vix = vix_column(history)
        returns = log_returns_pct(close)
        # Realised range variance of each row (percent²), None without a usable range.
        rv = self._range_variance(history)

        self.fallback_result, self._fallback = self._fit_fallback(returns, rv)

        # The VIX sample starts at the first return whose previous close has a VIX;
        # isolated gaps after that are filled with the last known value (stale VIX).
        known = np.flatnonzero(np.isfinite(vix[:-1]))
        n_vix = returns.size - int(known[0]) if known.size else 0
        if n_vix >= self.min_vix_obs:
            start = int(known[0])
            x_all = np.asarray(implied_daily_variance(pd.Series(vix).ffill().to_numpy()))
            rv_x = None if rv is None else rv[start:]
            self.fit_result, self._x = self._fit_x(
                returns[start:], x_all[start:-1], x_all[-1], rv_x, vix_coefficient, self.fit_result
            )
            # The VIX sample is short (it starts 2014), too short alone for the 5 % tails
            # of a bootstrap: the pool adds the fallback's residuals from before it.
            self._x.residuals = _standardised(
                np.concatenate([self._fallback.residuals[:start], self._x.residuals])
            )
            self._vix_reason = ""
        else:
            self._x = None  # the last VIX estimate stays in fit_result for a warm start
            self._vix_reason = (
                f"no VIX: {n_vix} returns with a known VIX, need {self.min_vix_obs}; "
                "GJR-GARCH-t fallback"
            )
        self._last_close = float(close[-1])
        self._last_ts = pd.Timestamp(history.index[-1])
        finite_vix = vix[np.isfinite(vix)]
        self._last_x = (
            float(implied_daily_variance(finite_vix[-1])) if finite_vix.size else math.nan
        )
        self._vix_now = bool(np.isfinite(vix[-1]))
        if self._x is None:
            return self.fallback_result
        assert self.fit_result is not None
        return self.fit_result

    def _fit_fallback(
        self, returns: np.ndarray, rv: np.ndarray | None
    ) -> tuple[FitResult, _Filter]:
        """The model without the VIX: with the realised range term if the history has a
        range (hand-written likelihood, ``δ = 0`` held), else GJR-GARCH(1,1,1)-t by ``arch``.
        Warm start from the previous estimate if possible."""
        if rv is not None:
            previous = self.fallback_result
            if previous is not None and "delta_rv" not in previous.params:
                previous = None
            return self._fit_x(
                returns, np.zeros_like(returns), 0.0, rv, 0.0, previous, name=_RV_FALLBACK
            )
        bc = gl.backcast(returns - returns.mean())
        model = arch_model(returns, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t")
        start = None
        if self._fallback is not None and self._fallback.params[gl.DELTA_RV] == 0.0:
            start = np.delete(self._fallback.params, [gl.DELTA, gl.DELTA_RV])
        res = model.fit(disp="off", show_warning=False, starting_values=start, backcast=bc)
        if res.convergence_flag != 0 and start is not None:
            res = model.fit(disp="off", show_warning=False, backcast=bc)
        params = np.insert(np.asarray(res.params, dtype=float), gl.DELTA, [0.0, 0.0])
        sigma2 = gl.variance(params, returns, np.zeros_like(returns), bc)
        filt = _Filter(
            params,
            bc,
            gl.next_variance(params, returns[-1] - params[0], sigma2[-1], 0),
            _standardised((returns - params[gl.MU]) / np.sqrt(sigma2)),
        )
        names = [n for n in gl.PARAM_NAMES if n not in ("delta", "delta_rv")]
        result = FitResult(
            model="gjr-garch-t (arch)",
            params=dict(zip(names, map(float, res.params), strict=True)),
            std_errors=dict(zip(names, map(float, res.std_err), strict=True)),
            loglik=float(res.loglikelihood),
            converged=res.convergence_flag == 0,
            message=str(res.optimization_result.message),
            nobs=returns.size,
        )
        return result, filt

    def _fit_x(
        self,
        returns: np.ndarray,
        x_prev: np.ndarray,
        x_last: float,
        rv: np.ndarray | None,
        delta_fixed: float | None,
        previous: FitResult | None,
        name: str | None = None,
    ) -> tuple[FitResult, _Filter]:
        """Maximum likelihood of the GJR-X model; ``rv`` (one value per return and one for
        the last row, percent²) adds the realised range term, None holds ``δ_rv = 0``."""
        bc = gl.backcast(returns - returns.mean())
        free = np.ones(len(gl.PARAM_NAMES), dtype=bool)
        if delta_fixed is not None:
            free[gl.DELTA] = False
        if rv is None:
            free[gl.DELTA_RV] = False
            rv_prev, rv_last = None, 0.0
        else:
            rv_prev, rv_last = rv[:-1], float(rv[-1])
        var = float(returns.var())
        mean = float(returns.mean())
        span = float(np.abs(returns).max())
        lower = np.array([-span, 1e-8 * var, 0.0, -1.0, 0.0, 0.0, 0.0, 2.05])
        upper = np.array([span, 10.0 * var, 1.0, 2.0, _PERSISTENCE_CAP, 5.0, 5.0, 500.0])
        n = returns.size

        def full(theta: np.ndarray, base: np.ndarray) -> np.ndarray:
            p = base.copy()
            p[free] = theta
            return p

        def fit_from(start: np.ndarray) -> tuple[np.ndarray, bool, str]:
            base = start.copy()

            def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
                ll, scores = gl.loglik_and_scores(full(theta, base), returns, x_prev, bc, rv_prev)
                if not math.isfinite(ll):
                    return 1e10, np.zeros(theta.size)
                return -ll / n, -scores.sum(axis=0)[free] / n

            idx = {name: i for i, name in enumerate(np.array(gl.PARAM_NAMES)[free])}
            a, g, b = idx["alpha"], idx["gamma"], idx["beta"]
            constraints = [
                {  # stationarity of the GARCH part: α + γ/2 + β < 1
                    "type": "ineq",
                    "fun": lambda t: _PERSISTENCE_CAP - t[a] - 0.5 * t[g] - t[b],
                    "jac": lambda t: -_unit(t.size, {a: 1.0, g: 0.5, b: 1.0}),
                },
                {  # positivity of the news impact for ε < 0: α + γ ≥ 0
                    "type": "ineq",
                    "fun": lambda t: t[a] + t[g],
                    "jac": lambda t: _unit(t.size, {a: 1.0, g: 1.0}),
                },
            ]
            res = minimize(
                objective,
                start[free],
                jac=True,
                method="SLSQP",
                bounds=list(zip(lower[free], upper[free], strict=True)),
                constraints=constraints,
                options={"maxiter": 300, "ftol": 1e-10},
            )
            return full(res.x, base), bool(res.success), str(res.message)

        params, ok, message = None, False, ""
        if previous is not None:  # warm start from the last estimate
            last = np.array([previous.params.get(k, 0.0) for k in gl.PARAM_NAMES])
            warm = np.clip(last, lower, upper)
            if delta_fixed is not None:
                warm[gl.DELTA] = delta_fixed
            if rv is None:
                warm[gl.DELTA_RV] = 0.0
            params, ok, message = fit_from(warm)
        if not ok:
            params, ok, message = fit_from(
                self._cold_start(returns, x_prev, rv_prev, bc, mean, var, delta_fixed)
            )
        assert params is not None
        loglik, scores = gl.loglik_and_scores(params, returns, x_prev, bc, rv_prev)
        std_errors = _robust_std_errors(params, free, scores, returns, x_prev, bc, rv_prev)
        sigma2 = gl.variance(params, returns, x_prev, bc, rv_prev)
        kappa = 0.0
        if rv is not None:  # each day's realised variance against its σ²: rv[1:]
            kappa = float(np.mean(rv[1:]) / np.mean(sigma2))
        filt = _Filter(
            params,
            bc,
            gl.next_variance(params, returns[-1] - params[gl.MU], sigma2[-1], x_last, rv_last),
            (returns - params[gl.MU]) / np.sqrt(sigma2),
            kappa,
        )
        result = FitResult(
            model=name or self.name,
            params=_named(params),
            std_errors=_named(std_errors),
            loglik=loglik,
            converged=ok,
            message=message,
            nobs=n,
        )
        return result, filt

    @staticmethod
    def _cold_start(
        returns: np.ndarray,
        x_prev: np.ndarray,
        rv_prev: np.ndarray | None,
        bc: float,
        mean: float,
        var: float,
        delta_fixed: float | None,
    ) -> np.ndarray:
        """Best of a small grid of typical equity-index values, by log-likelihood."""
        best, best_ll = None, -math.inf
        x_mean = float(x_prev.mean())
        rv_mean = 0.0 if rv_prev is None else float(rv_prev.mean())
        deltas = (0.0, 0.1, 0.3) if delta_fixed is None else (delta_fixed,)
        for beta in (0.6, 0.8, 0.9):
            for delta in deltas:
                for delta_rv in (0.0, 0.15) if rv_prev is not None else (0.0,):
                    alpha, gamma = 0.02, 0.12
                    persistence = alpha + gamma / 2 + beta
                    omega = max(
                        var * (1 - persistence) - delta * x_mean - delta_rv * rv_mean,
                        0.01 * var * (1 - persistence),
                    )
                    p = np.array([mean, omega, alpha, gamma, beta, delta, delta_rv, 8.0])
                    ll = float(gl.loglik_terms(p, returns, x_prev, bc, rv_prev).sum())
                    if ll > best_ll:
                        best, best_ll = p, ll
        assert best is not None
        return best

    def _range_variance(self, history: pd.DataFrame) -> np.ndarray | None:
        """Each row's realised range variance in percent², None without a usable range
        or with the range term off."""
        if not self.range_term or not has_daily_range(history):
            return None
        return 1.0e4 * daily_realized_variance(history)

    # --------------------------------------------------------------- update
    def update(self, bar: Bar) -> None:
        """Fold in one closed bar: filter both variances one step with held parameters."""
        if self._fallback is None:
            raise RuntimeError("TGARCHModel.update called before fit")
        check_bar(bar, self._last_ts)
        ret = return_pct(self._last_close, bar.close)
        # A bar without a usable range (NaN) enters with its expectation κσ² (_Filter.step).
        rv = 1.0e4 * bar_realized_variance(bar.open, bar.high, bar.low, bar.close, self._last_close)
        if bar.vix is not None:
            self._last_x = float(implied_daily_variance(bar.vix))
        self._fallback.step(ret, 0.0, rv)
        if self._x is not None:
            # A missing VIX keeps the last known value in the recursion (stale); the
            # forecast then uses the fallback and says so.
            self._x.step(ret, self._last_x, rv)
        self._last_close = float(bar.close)
        self._last_ts = bar.ts
        self._vix_now = bar.vix is not None

    # ------------------------------------------------------------- forecast
    @property
    def status(self) -> ModelStatus:
        if self._fallback is None:
            return ModelStatus.failed("not fitted")
        if self._x is None:
            return ModelStatus.degraded(self._vix_reason)
        if not self._vix_now:
            return ModelStatus.degraded("no VIX at the last bar; GJR-GARCH-t fallback")
        return ModelStatus.ok()

    def _active(self) -> _Filter | None:
        if self._x is not None and self._vix_now:
            return self._x
        return self._fallback

    @property
    def next_variance(self) -> float:
        """One-step conditional variance (percent²) of the filter the forecast uses."""
        active = self._active()
        return math.nan if active is None else active.next_variance

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        """Close interval and joint path range ``steps`` days ahead; never changes state."""
        check_forecast_args(steps, confidence)
        active = self._active()
        if active is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        rng = np.random.default_rng(origin_seed(self.seed, self._last_ts))
        x = self._last_x if active is self._x else 0.0
        pool = active.residuals if self.innovations == "bootstrap" else None
        returns, variances = simulate_gjrx(
            active.params, active.next_variance, x, steps, self.n_paths, rng, pool, active.kappa
        )
        sim = simulate_range(self._last_close, returns, variances, confidence, rng)
        return to_price_range(self.name, steps, confidence, self._last_close, sim, self.status)

    def filter_next_variance(self, history: pd.DataFrame) -> float:
        """Refilter ``history`` with the held parameters (no refit): the next σ².

        The history must start where the last fit's did; this is the reference that
        ``update`` must reproduce.
        """
        active = self._active()
        if active is None:
            raise RuntimeError("filter_next_variance called before fit")
        close = history["close"].to_numpy(dtype=float)
        returns = log_returns_pct(close)
        rv = self._range_variance(history)
        if rv is None:
            rv = np.zeros(close.size)
        if active is self._x:
            vix = pd.Series(vix_column(history)).ffill().to_numpy()
            start = int(np.flatnonzero(np.isfinite(vix))[0])
            x = np.asarray(implied_daily_variance(vix))
            returns, x_prev, x_last = returns[start:], x[start:-1], float(x[-1])
            rv = rv[start:]
        else:
            x_prev, x_last = np.zeros_like(returns), 0.0
        sigma2 = gl.variance(active.params, returns, x_prev, active.backcast, rv[:-1])
        eps = returns[-1] - active.params[gl.MU]
        return gl.next_variance(active.params, eps, float(sigma2[-1]), x_last, float(rv[-1]))


def simulate_gjrx(
    params: np.ndarray,
    next_variance: float,
    x: float,
    steps: int,
    n_paths: int,
    rng: np.random.Generator,
    residuals: np.ndarray | None = None,
    kappa: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``(n_paths, steps)`` returns and conditional variances from the filter state.

    The innovations are standardised Student-t(ν) draws, or, given ``residuals`` (the
    fit's standardised residuals), draws with replacement from them: filtered historical
    simulation (Barone-Adesi, Giannopoulos & Vosper 1999, "VaR without correlations for
    portfolios of derivative securities", J. Futures Markets 19(5)), which keeps the
    negative skew of the index's standardised returns that the symmetric t leaves out.

    The realised range variance of a simulated day enters the next day's variance as its
    expectation ``κ σ²`` (``kappa``), so ``δ_rv`` adds ``δ_rv κ`` to the persistence.
    """
    mu, omega, alpha, gamma, beta, delta, delta_rv, nu = params
    beta_eff = beta + delta_rv * kappa
    if residuals is not None and residuals.size > 0:
        z = rng.choice(residuals, size=(n_paths, steps))
    else:
        z = rng.standard_t(nu, size=(n_paths, steps)) * math.sqrt((nu - 2) / nu)
    returns = np.empty((n_paths, steps))
    variances = np.empty((n_paths, steps))
    s2 = np.full(n_paths, next_variance)
    for k in range(steps):
        eps = np.sqrt(s2) * z[:, k]
        returns[:, k] = mu + eps
        variances[:, k] = s2
        s2 = omega + (alpha + gamma * (eps < 0)) * eps * eps + beta_eff * s2 + delta * x
    return returns, variances


def _standardised(z: np.ndarray) -> np.ndarray:
    """Shift and scale to mean 0 and variance 1 (the simulation's σ² stays the forecast)."""
    finite = z[np.isfinite(z)]
    if finite.size < 2 or not finite.std() > 0:
        return np.empty(0)  # nothing to bootstrap from: the simulation falls back to t
    return (finite - finite.mean()) / finite.std()


def _unit(size: int, entries: dict[int, float]) -> np.ndarray:
    v = np.zeros(size)
    for i, value in entries.items():
        v[i] = value
    return v


def _robust_std_errors(
    params: np.ndarray,
    free: np.ndarray,
    scores: np.ndarray,
    returns: np.ndarray,
    x_prev: np.ndarray,
    bc: float,
    rv_prev: np.ndarray | None = None,
) -> np.ndarray:
    """Sandwich (Bollerslev–Wooldridge) standard errors ``H⁻¹ J H⁻¹``; NaN for held ones.

    ``H`` is the Hessian by central differences of the analytic score, ``J`` the outer
    product of the per-observation scores.
    """
    idx = np.flatnonzero(free)
    k = idx.size
    hess = np.empty((k, k))
    for j, i in enumerate(idx):
        step = 1e-5 * max(abs(params[i]), 1e-3)
        up, down = params.copy(), params.copy()
        up[i] += step
        down[i] -= step
        g_up = gl.loglik_and_scores(up, returns, x_prev, bc, rv_prev)[1].sum(axis=0)[idx]
        g_down = gl.loglik_and_scores(down, returns, x_prev, bc, rv_prev)[1].sum(axis=0)[idx]
        hess[:, j] = (g_up - g_down) / (2 * step)
    hess = 0.5 * (hess + hess.T)
    opg = scores[:, idx].T @ scores[:, idx]
    out = np.full(params.size, np.nan)
    try:
        h_inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return out
    diag = np.diag(h_inv @ opg @ h_inv)
    out[idx] = np.sqrt(np.where(diag > 0, diag, np.nan))
    return out
