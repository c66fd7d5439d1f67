"""The ensemble: weighted quantile averaging of the members, then per-tail calibration.

    fc = ModelEnsemble(ConfigLoader.default()).fit(history).forecast(steps=5)
    fc.low_estimate, fc.high_estimate, fc.parts["tgarch"].range

``fit`` returns an :class:`EnsembleFit`, a :class:`~models.base.FitResult` that forecasts
from the origin it was fitted to, as the results of ``arch`` and ``statsmodels`` do. The
ensemble itself keeps the streaming verbs: ``update(bar)``, ``update_chain(chain)`` and
``forecast_detail(steps)`` (the same :class:`EnsembleForecast`) at the latest origin.

Combination. Each usable member ``i`` gives quantiles of the close at ``t+h`` and a path
range; with weights ``w_i`` (:mod:`models.weighting`) the ensemble averages them in log
distance from the anchor ``C``:

    low = C · exp(Σ_i w_i ln(low_i / C)),   and likewise high, path_low, path_high,

i.e. a weighted average of quantiles (Vincentization), which keeps the members' shapes
instead of mixing their densities (a mixture of well-calibrated members over-covers).

Calibration. Every origin's raw combined range is remembered; when its outcome is known
(``h`` bars later) :class:`models.calibration.TailCalibrator` moves each tail's factor,
separately for the close interval and the path range of every tracked horizon. The same
outcomes score the members (interval score) for the skill factor of the weights. Both are
part of the ensemble's state and only ever use outcomes known at the origin.

Cross-feeds. The Delta UKF's smile gives the option factors of the weights and the jump
member's crash size (:meth:`ModelEnsemble.update_chain` recomputes both). The Monte Carlo
member (the one with ``set_consensus_volatility``) is forecast last, on the consensus
daily volatility of the others: the weighted geometric mean of the volatility a normal law
would give each close interval.

Warm-up. The first ``fit`` on a long history fits the members on all but the last
``burn_in`` bars and walks those bars with ``update`` so that calibration and skill start
from out-of-sample evidence, then refits the members on the whole history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import pandas as pd

from config.schema import MarkovConfig, Regime
from models.base import Bar, FitResult, ForecastModel, ModelStatus, PriceRange, Status
from models.calibration import TailCalibrator
from models.history import HistoryError, canonical_history
from models.returns import check_forecast_args
from models.screening import screen_implausible
from models.weighting import OptionSignals, SkillTracker, WeightBreakdown, compute_weights

ALPHA_SCALE = 2.0  # interval score: width + (2/α)·overshoot, α = 1 − confidence


@dataclass(frozen=True)
class MemberPart:
    """One member's contribution at an origin."""

    name: str
    range: PriceRange
    weight: float

    @property
    def status(self) -> ModelStatus:
        return self.range.status


@dataclass(frozen=True)
class EnsembleForecast:
    """The ensemble's range plus every member's part and the weights' reasons."""

    range: PriceRange
    parts: Mapping[str, MemberPart]
    weights: WeightBreakdown
    vix: float | None

    @property
    def low_estimate(self) -> float:
        return self.range.low

    @property
    def high_estimate(self) -> float:
        return self.range.high

    @property
    def regime(self) -> Regime:
        return self.weights.regime


@dataclass(frozen=True)
class EnsembleFit(FitResult):
    """The ensemble's fit result; ``forecast`` gives the ensemble's range at the fitted origin.

    It does not copy the ensemble (its members hold fitted models and simulators), so once
    the ensemble has moved on to a later bar, by ``update`` or another ``fit``, forecasting
    from this result raises instead of silently answering for another origin.
    """

    ensemble: ModelEnsemble | None = field(default=None, repr=False, compare=False)
    origin: tuple[int, Any] = (0, None)  # (bars seen, last bar's time) when fitted

    def forecast(self, steps: int, confidence: float | None = None) -> EnsembleForecast:
        """The ensemble's range ``steps`` bars ahead, with every member's part and weight."""
        ens = self.ensemble
        if ens is None:
            raise RuntimeError("this fit result holds no ensemble to forecast from")
        if ens.origin != self.origin:
            raise RuntimeError(
                f"this fit is of the history up to {self.origin[1]}; the ensemble has since "
                f"moved on to {ens.origin[1]} (update or another fit): forecast from the "
                "ensemble, ensemble.forecast_detail(steps), or from its latest fit result"
            )
        return ens.forecast_detail(steps, confidence)


@dataclass
class _Origin:
    """What was forecast at one origin, kept until its outcomes are known."""

    index: int
    anchor: float
    raw: dict[int, tuple[float, float, float | None, float | None]]  # h -> combined raw
    members: dict[int, dict[str, PriceRange]]


@dataclass
class _Tracked:
    calibrators: dict[tuple[int, str], TailCalibrator] = field(default_factory=dict)
    skill: dict[int, SkillTracker] = field(default_factory=dict)


class ModelEnsemble:
    """A :class:`~models.base.ForecastModel` over the configured members."""

    name = "ensemble"

    def __init__(
        self,
        config: MarkovConfig,
        members: Mapping[str, ForecastModel] | None = None,
        *,
        horizons: Sequence[int] | None = None,
        burn_in: int = 250,
        member_factory: Callable[[str, MarkovConfig], ForecastModel] | None = None,
        base_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.config = config
        self.base_weights = dict(base_weights) if base_weights is not None else None
        if members is None:
            from models.registry import build_member

            factory = member_factory or build_member
            members = {n: factory(n, config) for n in config.ensemble.enabled_names}
        if not members:
            raise ValueError("the ensemble needs at least one member")
        self.members: dict[str, ForecastModel] = dict(members)
        self.horizons = tuple(horizons) if horizons is not None else config.forecast.horizons
        self.confidence = config.forecast.confidence
        self.burn_in = burn_in
        self._closes: list[float] = []
        self._lows: list[float] = []
        self._highs: list[float] = []
        self._vix: float | None = None
        self._member_failures: dict[str, str] = {}
        self._pending: list[_Origin] = []
        self._cache: dict[tuple[int, int, float], EnsembleForecast] = {}
        # Members' ranges at the current origin: a chain snapshot only invalidates the
        # members that read chains, so ticks between bars cost a recombination, not six
        # simulations.
        self._part_cache: dict[tuple[int, int, float], dict[str, PriceRange]] = {}
        self._options = OptionSignals()
        self._fitted = False
        self._last_ts: Any = None
        self._tracked = self._new_tracked()

    # -- the ForecastModel verbs ------------------------------------------------------

    def fit(
        self, history: pd.DataFrame, *, progress: Callable[[int, int], None] | None = None
    ) -> EnsembleFit:
        """Fit every member on ``history`` (daily bars; a ``vix`` column is optional) and
        return an :class:`EnsembleFit`. A bad row is one :class:`HistoryError` line.

        A first fit warms the calibration and skill state up by walking the last
        ``burn_in`` bars, calling ``progress(done, total)`` after each. An exception that
        ``progress`` raises (a caller cancelling) stops the fit and leaves the ensemble
        unfitted.
        """
        history = canonical_history(history, vix_optional=True)
        warm = not self._fitted and self.burn_in > 0 and len(history) > 2 * self.burn_in
        if warm:
            try:
                self._warm_up(history, progress)
            except BaseException:
                self._reset_history(history.iloc[:0])
                self._last_ts = None
                self._cache.clear()
                self._part_cache.clear()
                raise
        results = self._fit_members(history)
        if not warm:
            advancing = self._last_ts is not None and history.index[-1] > self._last_ts
            self._reset_history(history)
            if advancing:
                self._resolve()  # a refit on a longer history resolves like an update
            else:
                self._pending.clear()  # a new history: old forecasts cannot be scored
        self._last_ts = history.index[-1]
        self._fitted = True
        self._cache.clear()
        self._part_cache.clear()
        self._pending = [o for o in self._pending if o.index != len(self._closes) - 1]
        self._record_origin()
        failed = {n: r.message for n, r in results.items() if not r.converged}
        return EnsembleFit(
            model=self.name,
            params={f"{n}.{k}": v for n, r in results.items() for k, v in r.params.items()},
            converged=not self._member_failures,
            message="; ".join(f"{n}: {m}" for n, m in {**failed, **self._member_failures}.items()),
            nobs=len(history),
            ensemble=self,
            origin=self.origin,
        )

    def update(self, bar: Bar) -> None:
        """Fold in one closed bar. A bad bar (NaN or non-positive price, high below the
        close, ...) is refused with one :class:`HistoryError` line before any member sees
        it: passed on, it would fail every member until the next fit."""
        canonical_history(bar.to_frame(), "bar")
        if bar.vix is not None and math.isnan(bar.vix):
            bar = replace(bar, vix=None)  # NaN is how a frame says "no VIX": the same here
        last = self._last_ts
        if last is not None and not _naive(bar.ts) > _naive(last):
            raise HistoryError(f"bar: {bar.ts} is not after the last bar {last} (out of order)")
        for name, member in self.members.items():
            if name in self._member_failures:
                continue
            try:
                member.update(bar)
            except Exception as exc:  # a member's failure must not stop the ensemble
                self._member_failures[name] = f"update failed: {exc}"
        self._last_ts = bar.ts
        self._closes.append(bar.close)
        self._lows.append(bar.low)
        self._highs.append(bar.high)
        if bar.vix is not None and math.isfinite(bar.vix):
            self._vix = bar.vix
        self._refresh_option_signals()
        self._cache.clear()
        self._part_cache.clear()
        self._resolve()
        self._record_origin()

    def forecast(self, steps: int, confidence: float = 0.9) -> PriceRange:
        return self.forecast_detail(steps, confidence).range

    @property
    def origin(self) -> tuple[int, Any]:
        """Where the ensemble stands: the number of bars it has seen and the last one's time."""
        return len(self._closes), self._last_ts

    def forecast_detail(self, steps: int, confidence: float | None = None) -> EnsembleForecast:
        """The full forecast: range, member parts, weights. Reads state, never changes it."""
        conf = self.confidence if confidence is None else confidence
        check_forecast_args(steps, conf)
        key = (len(self._closes), steps, conf)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if not self._closes:
            unfitted = {
                n: PriceRange.failure(n, steps, conf, math.nan, "not fitted") for n in self.members
            }
            return self._combine(steps, conf, unfitted, calibrate=False)
        parts = self._member_ranges(steps, conf)
        return self._combine(steps, conf, parts, calibrate=True)

    def forecast_parts(self, steps: int, confidence: float | None = None) -> dict[str, PriceRange]:
        """Each member's range at this origin (as used by the combination)."""
        return {n: p.range for n, p in self.forecast_detail(steps, confidence).parts.items()}

    def set_option_signals(self, signals: OptionSignals) -> None:
        self._options = signals
        self._cache.clear()

    def update_chain(self, chain: Any) -> None:
        """Pass an option-chain snapshot to the members that use chains.

        A chain a member refuses (``ValueError``: a bad quote, an expired chain; the
        member's state is unchanged) is raised to the caller, who dead-letters it, and the
        member carries on with the next chain; any other exception disables the member
        until the next fit, as a failed update does.
        """
        refused: list[str] = []
        for name, member in self.members.items():
            update = getattr(member, "update_chain", None)
            if update is None or name in self._member_failures:
                continue
            try:
                update(chain)
            except ValueError as exc:
                refused.append(f"{name}: {exc}")
                continue
            except Exception as exc:
                self._member_failures[name] = f"chain update failed: {exc}"
            self._drop_parts(name)
        self._after_chains()
        if refused:  # after the bookkeeping: another member may have taken the chain
            raise ValueError("chain refused by " + "; ".join(refused))

    def chain_state(self) -> dict[str, Any]:
        """What option chains have set in the members that read them, as plain data: for
        each, its :meth:`chain_state`, or the reason a chain disabled it. With the bars,
        this is all a restart needs to rebuild the ensemble as it was (the stream engine
        keeps one per bar that had chains)."""
        out: dict[str, Any] = {}
        for name, member in self.members.items():
            state = getattr(member, "chain_state", None)
            if not callable(state):
                continue
            failure = self._member_failures.get(name)
            out[name] = {"failed": failure} if failure is not None else {"state": state()}
        return out

    def restore_chain_state(self, states: Mapping[str, Any]) -> None:
        """Put back a :meth:`chain_state`, as if the same chains had come again."""
        for name, entry in states.items():
            member = self.members.get(name)
            restore = getattr(member, "restore_chain_state", None)
            if not callable(restore):
                raise KeyError(f"no member {name!r} reads chains; members: {sorted(self.members)}")
            if "failed" in entry:
                self._member_failures[name] = entry["failed"]
            else:
                restore(entry["state"])
                self._member_failures.pop(name, None)
            self._drop_parts(name)
        self._after_chains()

    def _drop_parts(self, name: str) -> None:
        for parts in self._part_cache.values():
            parts.pop(name, None)

    def _after_chains(self) -> None:
        """The chain also moves the jump size and the consensus: recompute those members,
        and read the option factors again."""
        for name in [*self._consensus_fed(), "jump_diffusion_vix"]:
            self._drop_parts(name)
        self._refresh_option_signals()
        self._cache.clear()

    def _refresh_option_signals(self) -> None:
        """Cross-feed: the Delta UKF's smile sets the option factors and the jump size."""
        delta = self.members.get("delta_ukf")
        signals = getattr(delta, "option_signals", None)
        if not callable(signals) or "delta_ukf" in self._member_failures:
            self._options = OptionSignals()
            return
        self._options = signals()
        jumps = self.members.get("jump_diffusion_vix")
        set_skew = getattr(jumps, "set_skew_z", None)
        if callable(set_skew):
            set_skew(self._options.skew_z)

    # -- refits off the event loop ----------------------------------------------------

    SLOW_MEMBERS = ("tgarch", "arima", "varmax", "quantile_regression")

    def slow_members(self) -> dict[str, ForecastModel]:
        """The members refitted on a timer (the caller fits copies of them elsewhere)."""
        return {n: m for n, m in self.members.items() if n in self.SLOW_MEMBERS}

    def install_members(self, fitted: Mapping[str, ForecastModel], catch_up: Sequence[Bar]) -> None:
        """Swap in members refitted on an older history, then replay the bars since."""
        for name, member in fitted.items():
            if name not in self.members:
                raise KeyError(f"unknown member {name!r}; members: {sorted(self.members)}")
            try:
                for bar in catch_up:
                    member.update(bar)
            except Exception as exc:  # keep the last good member
                self._member_failures.setdefault(name, f"catch-up after refit failed: {exc}")
                continue
            self.members[name] = member
            self._member_failures.pop(name, None)
        self._cache.clear()
        self._part_cache.clear()
        self._pending = [o for o in self._pending if o.index != len(self._closes) - 1]
        self._record_origin()

    # -- internals --------------------------------------------------------------------

    def _new_tracked(self) -> _Tracked:
        cal = self.config.calibration
        return _Tracked(
            calibrators={
                # Feedback at horizon h arrives h steps late and consecutive outcomes share
                # h-1 days, so each update carries less news than at h = 1: step gamma/√h
                # (chosen over gamma/h and gamma on 2010–2013 data, before the test window).
                (h, kind): TailCalibrator(
                    tail=(1 - self.confidence) / 2, gamma=cal.gamma / math.sqrt(h)
                )
                for h in self.horizons
                for kind in ("close", "path")
            },
            skill={h: SkillTracker(self.config.weighting.skill_window) for h in self.horizons},
        )

    def _fit_members(self, history: pd.DataFrame) -> dict[str, FitResult]:
        results: dict[str, FitResult] = {}
        for name, member in self.members.items():
            try:
                results[name] = member.fit(history)
                self._member_failures.pop(name, None)
            except Exception as exc:
                self._member_failures[name] = f"fit failed: {exc}"
        return results

    def _warm_up(self, history: pd.DataFrame, progress: Callable[[int, int], None] | None) -> None:
        # From fresh state, so that a fit after an interrupted one is a first fit again.
        self._tracked = self._new_tracked()
        self._pending.clear()
        head = history.iloc[: len(history) - self.burn_in]
        self._fit_members(head)
        self._reset_history(head)
        for done, (ts, row) in enumerate(history.iloc[len(head) :].iterrows(), start=1):
            self.update(Bar.from_row(ts, row))
            if progress is not None:
                progress(done, self.burn_in)

    def _reset_history(self, history: pd.DataFrame) -> None:
        self._closes = history["close"].astype(float).tolist()
        self._lows = history["low"].astype(float).tolist()
        self._highs = history["high"].astype(float).tolist()
        vix = history["vix"].dropna()
        self._vix = float(vix.iloc[-1]) if len(vix) else None

    def _member_ranges(self, steps: int, confidence: float) -> dict[str, PriceRange]:
        anchor = self._closes[-1]
        out = self._part_cache.setdefault((len(self._closes), steps, confidence), {})
        # Staged: the Monte Carlo members run last, on the others' consensus volatility.
        staged = self._consensus_fed()
        for name in [n for n in self.members if n not in staged] + staged:
            if name in out:
                continue
            member = self.members[name]
            if name in self._member_failures:
                out[name] = PriceRange.failure(
                    name, steps, confidence, anchor, self._member_failures[name]
                )
                continue
            try:
                if name in staged:
                    others = screen_implausible({n: r for n, r in out.items() if n not in staged})
                    member.set_consensus_volatility(  # type: ignore[attr-defined]
                        self._consensus_volatility(steps, others)
                    )
                out[name] = member.forecast(steps, confidence)
            except Exception as exc:
                out[name] = PriceRange.failure(name, steps, confidence, anchor, str(exc))
        # In the members' order, whatever the cache's.
        return screen_implausible({name: out[name] for name in self.members})

    def _consensus_fed(self) -> list[str]:
        """Members that take the ensemble's consensus volatility (the Monte Carlo ones)."""
        return [
            n
            for n, m in self.members.items()
            if callable(getattr(m, "set_consensus_volatility", None))
        ]

    def _consensus_volatility(self, steps: int, parts: Mapping[str, PriceRange]) -> float | None:
        """Cross-feed: the weighted geometric mean of the members' daily volatilities.

        A member's volatility is the one a normal law would give its close interval,
        ``ln(high / low) / (2 z √steps)`` with ``z`` the interval's normal quantile; the
        weights are the ensemble's own (base × regime × option × skill) over ``parts``.
        None when no member has a usable range.
        """
        usable = {n: r for n, r in parts.items() if r.usable and r.low < r.high}
        if not usable:
            return None
        weights = self._weights(steps, usable).weights
        total = sum(weights[n] for n in usable)
        if total <= 0:
            return None
        log_vol = 0.0
        for name, r in usable.items():
            z = _normal_quantile(0.5 + r.confidence / 2)
            log_vol += weights[name] * math.log(
                math.log(r.high / r.low) / (2 * z * math.sqrt(steps))
            )
        return math.exp(log_vol / total)

    def _weights(self, steps: int, parts: Mapping[str, PriceRange]) -> WeightBreakdown:
        # The shortest horizon's outcomes do not overlap: h times as many independent
        # scores as horizon h has, so a less noisy ranking of the members.
        source = min(self.horizons) if self.config.weighting.skill_horizon == "shortest" else steps
        skill = self._tracked.skill.get(source) or SkillTracker(self.config.weighting.skill_window)
        return compute_weights(
            self.config,
            [n for n, r in parts.items() if r.usable],
            vix=self._vix,
            options=self._options,
            skill=skill,
            members=list(self.members),
            base_weights=self.base_weights,
        )

    def _combine(
        self, steps: int, confidence: float, parts: Mapping[str, PriceRange], *, calibrate: bool
    ) -> EnsembleForecast:
        anchor = self._closes[-1] if self._closes else math.nan
        weights = self._weights(steps, parts)
        raw = _average(anchor, parts, weights.weights)  # None: no usable part (unfitted too)
        members = {n: MemberPart(n, r, weights.weights[n]) for n, r in parts.items()}
        if raw is None:
            why = "no member produced a usable range" if self._closes else "not fitted"
            failed = PriceRange.failure(self.name, steps, confidence, anchor, why)
            return EnsembleForecast(failed, members, weights, self._vix)
        low, high, path_low, path_high, center = raw
        cal_close = self._tracked.calibrators.get((steps, "close"))
        cal_path = self._tracked.calibrators.get((steps, "path"))
        calibrate = calibrate and self.config.calibration.enabled
        if calibrate and cal_close is not None:
            low, high = cal_close.adjust(anchor, low, high)
        if calibrate and cal_path is not None and path_low is not None and path_high is not None:
            path_low, path_high = cal_path.adjust(anchor, path_low, path_high)
        if path_low is not None and path_high is not None:
            # The path range contains the close interval's ends by construction.
            path_low, path_high = min(path_low, low), max(path_high, high)
        degraded = sorted(n for n, r in parts.items() if r.status.state is not Status.OK)
        status = (
            ModelStatus.degraded("members not ok: " + ", ".join(degraded))
            if degraded
            else ModelStatus.ok()
        )
        center = min(max(center, low), high)
        rng = PriceRange(
            self.name, steps, confidence, anchor, low, high, center,
            path_low=path_low, path_high=path_high, status=status,
        )  # fmt: skip
        return EnsembleForecast(rng, members, weights, self._vix)

    def _record_origin(self) -> None:
        """Forecast every tracked horizon at the new origin and remember it for scoring."""
        if not self._closes:
            return
        origin = _Origin(len(self._closes) - 1, self._closes[-1], {}, {})
        for h in self.horizons:
            parts = self._member_ranges(h, self.confidence)
            fc = self._combine(h, self.confidence, parts, calibrate=False)
            origin.members[h] = dict(parts)
            if fc.range.usable:
                r = fc.range
                origin.raw[h] = (r.low, r.high, r.path_low, r.path_high)
            # Cache the calibrated forecast for this origin: forecast() then costs nothing.
            self._cache[(len(self._closes), h, self.confidence)] = self._combine(
                h, self.confidence, parts, calibrate=True
            )
        self._pending.append(origin)

    def _resolve(self) -> None:
        """Score every remembered forecast whose horizon has been reached."""
        now = len(self._closes) - 1
        keep: list[_Origin] = []
        for origin in self._pending:
            for h in list(origin.members):
                end = origin.index + h
                if end > now:
                    continue
                lo_path = min(self._lows[origin.index + 1 : end + 1])
                hi_path = max(self._highs[origin.index + 1 : end + 1])
                close = self._closes[end]
                self._score(origin, h, close, lo_path, hi_path)
                del origin.members[h]
                origin.raw.pop(h, None)
            if origin.members:
                keep.append(origin)
        self._pending = keep

    def _score(self, origin: _Origin, h: int, close: float, m: float, big_m: float) -> None:
        alpha = 1.0 - self.confidence
        skill = self._tracked.skill[h]
        for name, r in origin.members[h].items():
            if r.usable:
                skill.add(
                    name, 100 * _interval_score(r.low, r.high, close, close, alpha) / r.anchor
                )
        raw = origin.raw.get(h)
        if raw is None:
            return
        low, high, path_low, path_high = raw
        cal = self._tracked.calibrators[(h, "close")]
        cal.record(origin.index, origin.anchor, low, high)
        cal.observe(origin.index, close, close)
        if path_low is not None and path_high is not None:
            pcal = self._tracked.calibrators[(h, "path")]
            pcal.record(origin.index, origin.anchor, path_low, path_high)
            pcal.observe(origin.index, m, big_m)

    def calibration_state(self) -> dict[str, Any]:
        return {f"{h}:{k}": c.state() for (h, k), c in self._tracked.calibrators.items()}


def _normal_quantile(p: float) -> float:
    return float(NormalDist().inv_cdf(p))


def _interval_score(low: float, high: float, lower: float, upper: float, alpha: float) -> float:
    return (
        (high - low)
        + ALPHA_SCALE / alpha * max(low - lower, 0.0)
        + ALPHA_SCALE / alpha * max(upper - high, 0.0)
    )


def _naive(ts: Any) -> pd.Timestamp:
    """A bar's time without its zone, as history frames keep it (canonical form)."""
    t = pd.Timestamp(ts)
    return t.tz_localize(None) if t.tzinfo is not None else t


def _average(
    anchor: float, parts: Mapping[str, PriceRange], weights: Mapping[str, float]
) -> tuple[float, float, float | None, float | None, float] | None:
    used = {n: w for n, w in weights.items() if w > 0 and parts[n].usable}
    total = sum(used.values())
    if total <= 0:
        return None
    lg = math.log(anchor)

    def mean_log(values: dict[str, float], ws: dict[str, float]) -> float:
        s = sum(ws.values())
        return anchor * math.exp(sum(ws[n] * (math.log(values[n]) - lg) for n in ws) / s)

    low = mean_log({n: parts[n].low for n in used}, used)
    high = mean_log({n: parts[n].high for n in used}, used)
    center = sum(w * parts[n].center for n, w in used.items()) / total
    with_path = {
        n: w
        for n, w in used.items()
        if parts[n].path_low is not None and parts[n].path_high is not None
    }
    path_low = path_high = None
    if with_path:
        path_low = mean_log({n: float(parts[n].path_low) for n in with_path}, with_path)  # type: ignore[arg-type]
        path_high = mean_log({n: float(parts[n].path_high) for n in with_path}, with_path)  # type: ignore[arg-type]
    return low, high, path_low, path_high, center
