"""HAR-RV-VIX variance with the empirical quantiles of its own standardised outcomes.

For horizon ``h`` the variance model is the regression of :mod:`models.realized_variance`
(range-based realised variance over 1, 5 and 22 days and, where known, the VIX; the VIX
term absorbs the variance risk premium), giving ``v_t``, the mean daily variance over
``t+1 .. t+h``. Instead of assuming a distribution for the returns, the member reads the
range off the **empirical** distribution of its own standardised past outcomes
(filtered historical simulation, Barone-Adesi, Giannopoulos & Vosper 1999, "VaR without
correlations for portfolios of derivative securities", J. Futures Markets 19(5)):

    z_close = ln(C_{s+h} / C_s) / √(h v_s),
    z_min   = ln(min Low_{s+1..s+h} / C_s) / √(h v_s),   z_max likewise with max High,

over the last ``window`` origins ``s`` whose outcome is known at the fit. The close
interval is ``C · exp(√(h v_t) · Q_z_close(α/2 | 1 − α/2))``; the path range takes the
equal-tail ``q`` whose empirical joint coverage of ``(z_min, z_max)`` is the confidence
(:func:`models.path_range.joint_tail_prob`). So the asymmetry of index returns, their fat
tails and what the realised Low/High actually do relative to the close-to-close variance
(the open session, overnight gaps) are all measured, not assumed: information the
GARCH-type members, which only see closes, do not use.

Leverage. Without the VIX the regression also has the falls of the close over 1, 5 and 22
days (``min(r, 0)`` averaged; the leverage HAR of Corsi & Renò 2012, "Discrete-time
volatility forecasting with persistent leverage effect and the link with continuous-time
volatility modeling", JBES 30(3)): variance rises more after a fall than after a rise of
the same size, which the range regressors, symmetric in the return, cannot say. The VIX
regression has no such terms: the VIX already prices the leverage effect (it jumps when
the index falls), and with only 2014 onwards to fit on, three more coefficients cost more
than they bring. Chosen on walk-forwards before 2015: the ensemble's mean interval score
fell by 0.47 % on 2010–2013 (no VIX) and 0.10 % on 2014 (VIX), averaged over the four
tables; leverage in the VIX regression too was worse on 2014 (+0.20 %).

The window, 2500 origins (about ten years), was chosen on 2009–2014 walk-forwards of the
member alone (mean interval score below 500 and 1000 in all four tables, level with the
whole history). Parameters and the standardised sample are held between fits; ``update``
folds in a bar (the regressors of the new origin). Deterministic: no simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.base import Bar, FitResult, ModelStatus, PriceRange
from models.path_range import joint_tail_prob
from models.realized_variance import HarFeatures, HarFit, fit_har, has_daily_range
from models.returns import check_bar, check_forecast_args, checked_history

_TAIL_ROWS = 40  # regressors need the last 22 rows; keep a little more


@dataclass(frozen=True)
class _Standardised:
    """One horizon's standardised past outcomes (sorted copies for the close quantiles)."""

    close: np.ndarray  # sorted z_close
    path_min: np.ndarray  # z_min, in origin order (paired with path_max)
    path_max: np.ndarray


NO_RANGE = "no intraday range: realised variance from squared close returns"


class HARQuantileModel:
    """The ``har_quantile`` member (see the module docstring)."""

    name = "har_quantile"

    def __init__(
        self,
        *,
        horizons: tuple[int, ...] = (1, 5),
        window: int = 2500,
        min_sample: int = 250,
        leverage: bool = True,
    ) -> None:
        if not horizons or min(horizons) < 1:
            raise ValueError(f"horizons must be positive trading-day counts, got {horizons!r}")
        if min_sample < 50:
            raise ValueError(f"min_sample must be >= 50, got {min_sample}")
        if window < min_sample:
            raise ValueError(f"window must be >= min_sample ({min_sample}), got {window}")
        self.horizons = tuple(sorted(set(horizons)))
        self.window = window
        self.min_sample = min_sample
        self.leverage = leverage
        self._fits: dict[tuple[int, bool], HarFit] = {}
        self._samples: dict[int, _Standardised] = {}
        self._tail: pd.DataFrame | None = None
        self._features: HarFeatures | None = None
        self._last_ts: pd.Timestamp | None = None
        self._has_range = True

    # -- verbs ------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> FitResult:
        history = checked_history(history, min_rows=self.min_sample + max(self.horizons) + 23)
        # Without open/high/low the realised variance is the squared close return: the
        # member still works, on a noisier measure, and its status says so.
        self._has_range = has_daily_range(history)
        features = HarFeatures.from_history(history)
        fits: dict[tuple[int, bool], HarFit] = {}
        samples: dict[int, _Standardised] = {}
        messages: list[str] = []
        for h in self.horizons:
            fits[(h, False)] = fit_har(
                history, h, with_vix=False, features=features, leverage=self.leverage
            )
            try:
                fits[(h, True)] = fit_har(history, h, with_vix=True, features=features)
            except ValueError as exc:  # not enough VIX history yet
                messages.append(str(exc))
            samples[h] = self._standardise(history, features, h, fits)
        self._fits, self._samples = fits, samples
        self._tail = history.iloc[-_TAIL_ROWS:][["open", "high", "low", "close", "vix"]].copy()
        self._features = HarFeatures.from_history(self._tail)
        self._last_ts = pd.Timestamp(history.index[-1])
        params: dict[str, float] = {}
        for (h, v), f in fits.items():
            for name, c in zip(_coef_names(v, self._lev(v)), f.coef, strict=True):
                params[f"h{h}{'_vix' if v else ''}.{name}"] = float(c)
        for h, s in samples.items():
            params[f"h{h}.n_sample"] = float(s.close.size)
        return FitResult(self.name, params, nobs=len(history), message="; ".join(messages))

    def update(self, bar: Bar) -> None:
        if self._tail is None:
            raise RuntimeError("fit() before update()")
        check_bar(bar, self._last_ts)
        self._tail = pd.concat([self._tail.iloc[-(_TAIL_ROWS - 1) :], bar.to_frame()])
        self._features = HarFeatures.from_history(self._tail)
        self._last_ts = bar.ts

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        """Close interval and joint path range ``steps`` days ahead; never changes state."""
        check_forecast_args(steps, confidence)
        if self._tail is None or self._features is None:
            return PriceRange.failure(self.name, steps, confidence, math.nan, "not fitted")
        anchor = float(self._tail["close"].iloc[-1])
        h = min(self.horizons, key=lambda k: abs(k - steps))
        i = len(self._tail) - 1
        has_vix = bool(np.isfinite(self._features.vix[i])) and (h, True) in self._fits
        variance = self._fits[(h, has_vix)].variance(
            self._features.row(i, has_vix, self._lev(has_vix))
        )
        scale = math.sqrt(steps * variance)
        sample = self._samples[h]
        alpha = 1.0 - confidence
        z_lo, z_mid, z_hi = np.quantile(sample.close, [alpha / 2, 0.5, 1 - alpha / 2])
        _, p_lo, p_hi, _ = joint_tail_prob(sample.path_min, sample.path_max, confidence)
        low, center, high = (anchor * math.exp(scale * z) for z in (z_lo, z_mid, z_hi))
        missing = [] if has_vix else ["no VIX"]
        if not self._has_range:
            missing.append(NO_RANGE)
        status = ModelStatus.degraded("; ".join(missing)) if missing else ModelStatus.ok()
        return PriceRange(
            self.name, steps, confidence, anchor, low, high, center,
            path_low=min(anchor * math.exp(scale * p_lo), low),
            path_high=max(anchor * math.exp(scale * p_hi), high),
            quantiles={alpha / 2: low, 0.5: center, 1 - alpha / 2: high}, status=status,
        )  # fmt: skip

    # -- internals --------------------------------------------------------------------

    def _lev(self, with_vix: bool) -> bool:
        """Leverage terms in this regression? Only without the VIX, which prices them."""
        return self.leverage and not with_vix

    def _standardise(
        self,
        history: pd.DataFrame,
        features: HarFeatures,
        h: int,
        fits: dict[tuple[int, bool], HarFit],
    ) -> _Standardised:
        """Standardised outcomes of the last ``window`` origins resolved inside ``history``.

        Each origin is scaled by the variance the member would have forecast there with
        the current coefficients (the VIX model where the VIX was known and fitted).
        """
        close = history["close"].to_numpy(float)
        low = history["low"].to_numpy(float)
        high = history["high"].to_numpy(float)
        n = len(close)
        origins = np.arange(max(22, n - h - self.window), n - h)
        rows = features.columns(origins, False, self.leverage)
        log_var = rows @ fits[(h, False)].coef + math.log(fits[(h, False)].smearing)
        vix_fit = fits.get((h, True))
        if vix_fit is not None:
            known = np.isfinite(features.vix[origins])
            with_vix = features.columns(origins[known], True)
            log_var[known] = with_vix @ vix_fit.coef + math.log(vix_fit.smearing)
        scale = np.sqrt(h * np.exp(log_var))
        ahead = origins[:, None] + np.arange(1, h + 1)[None, :]
        base = close[origins]
        z_close = np.log(close[origins + h] / base) / scale
        z_min = np.log(low[ahead].min(axis=1) / base) / scale
        z_max = np.log(high[ahead].max(axis=1) / base) / scale
        ok = np.isfinite(z_close) & np.isfinite(z_min) & np.isfinite(z_max)
        if ok.sum() < self.min_sample:
            raise ValueError(
                f"{int(ok.sum())} standardised h={h} outcomes; need at least {self.min_sample}"
            )
        return _Standardised(np.sort(z_close[ok]), z_min[ok], z_max[ok])


def _coef_names(with_vix: bool, leverage: bool = False) -> list[str]:
    lev = ["neg_d", "neg_w", "neg_m"] if leverage else []
    return ["const", "rv_d", "rv_w", "rv_m", *lev] + (["vix"] if with_vix else [])
