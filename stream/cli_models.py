"""``markov forecast``, ``markov ensemble`` and ``markov validate``: the batch commands."""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from config.loader import ConfigLoader
from config.schema import MarkovConfig
from connectors.data_sources import load_history
from models.ekpf_model import EKPFModel
from models.report import percent
from models.returns import MAX_STEPS
from stream.cli import UserError, check_output_path

SYNTHETIC_NOTE = (
    "note: option chains are synthetic (generated from the VIX by models/smile.py); "
    "no real historical chains are available offline"
)

DEFAULT_START = "2015-01-01"
DEFAULT_END = "2018-12-31"
# Bars the members need before the first origin: the longest warm-up, the EKPF's.
WARM_UP_BARS = EKPFModel.min_bars


class ForecastFailedError(UserError):
    """The ensemble gave no usable range; ``result`` is the forecast (still printable)."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def register(sub: Any) -> None:
    f = sub.add_parser("forecast", help="ensemble price range for one ticker")
    f.add_argument("--ticker", default=None, help="ticker (default: data.default_ticker)")
    f.add_argument(
        "--days", type=_days, default=None, help=f"horizon in trading days (1..{MAX_STEPS})"
    )
    f.add_argument("--confidence", type=_probability, default=None)
    f.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of a table (printed even when the forecast fails)",
    )
    _data_args(f)
    f.set_defaults(handler=cmd_forecast)

    e = sub.add_parser(
        "ensemble",
        help="ensemble ranges for every ticker of a config",
        description="Ensemble ranges for every ticker of a config. A ticker whose forecast "
        "fails is one line on stderr; the others are still printed, and the exit code is "
        "1 if any ticker failed.",
    )
    e.add_argument("--json", action="store_true", help="JSON list (failed forecasts included)")
    _data_args(e)
    e.set_defaults(handler=cmd_ensemble)

    v = sub.add_parser("validate", help="walk-forward validation (QUALITY-PROTOCOL)")
    v.add_argument("--ticker", default=None)
    # Either the last N days of the history or a date window: _window refuses both (an
    # argparse group cannot hold --backtest-days against the pair --start/--end).
    v.add_argument(
        "--backtest-days",
        type=_positive_int,
        default=None,
        help="origins: the last N trading days of the history (not with --start/--end)",
    )
    v.add_argument("--start", default=None, help=f"first origin date (default {DEFAULT_START})")
    v.add_argument("--end", default=None, help=f"last origin date (default {DEFAULT_END})")
    v.add_argument("--horizons", default="1,5", type=_horizons, help="comma-separated, e.g. 1,5")
    v.add_argument("--confidence", type=_probability, default=0.9)
    v.add_argument(
        "--models",
        default=None,
        help="comma-separated members to score beside the ensemble (default: all)",
    )
    v.add_argument(
        "--baselines",
        action="store_true",
        help="also walk the protocol's baselines (GJR-GARCH-t with VIX², TARCH-t, VIX-implied "
        "normal, EWMA normal) and test the ensemble against them (DM p)",
    )
    v.add_argument("--plot", type=Path, default=None, help="PNG of the ensemble's bands")
    v.add_argument("--csv", type=Path, default=None, help="forecasts CSV (.gz ok)")
    _data_args(v)
    v.set_defaults(handler=cmd_validate)  # fmt: skip


# -- commands --------------------------------------------------------------------------


def cmd_forecast(args: argparse.Namespace) -> int:
    config = _config(args)
    ticker = args.ticker or config.data.default_ticker
    days = args.days or config.forecast.horizon
    confidence = args.confidence or config.forecast.confidence
    try:
        result = forecast_ticker(config, ticker, days, confidence, data=args.data)
    except ForecastFailedError as exc:
        # JSON readers still get the members' reasons; the table would be all NaN.
        if args.json:
            print(_json(exc.result))
        raise
    print(_json(result) if args.json else format_forecast(result))
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    config = _config(args)
    results: list[dict[str, Any]] = []
    failures = 0
    for ticker in config.stream.tickers:
        try:
            results.append(
                forecast_ticker(
                    config,
                    ticker,
                    config.forecast.horizon,
                    config.forecast.confidence,
                    data=args.data,
                )
            )
        except (UserError, ValueError) as exc:
            failures += 1
            if isinstance(exc, ForecastFailedError):  # its message starts with the ticker
                if args.json:
                    results.append(exc.result)
                print(f"markov ensemble: {exc}", file=sys.stderr)
            else:
                print(f"markov ensemble: {ticker}: {exc}", file=sys.stderr)
    if args.json:
        print(_json(results))
    elif results:
        print("\n\n".join(format_forecast(r) for r in results))
    # Any failed ticker fails the command (documented in its help): scripts must notice.
    return 1 if failures else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from models.ensemble import ModelEnsemble
    from models.registry import build_member
    from models.report import format_report, plot_forecasts, write_forecasts_csv
    from models.validation import walk_forward

    # Every argument is checked before the walk, which can take minutes.
    horizons: tuple[int, ...] = args.horizons
    dates = _window_dates(args.backtest_days, args.start, args.end)
    for flag, path in (("--csv", args.csv), ("--plot", args.plot)):
        if path is not None:
            check_output_path(flag, path)
    config = _config(args)
    ticker = args.ticker or config.data.default_ticker
    history = _history(config, ticker, None, args.data)
    start, end = _window(history, args.backtest_days, dates, horizons[0])
    names = list(config.ensemble.enabled_names)
    if args.models is not None:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise UserError(f"--models: unknown {unknown}; configured members: {names}")
        names = wanted
    # One run: the ensemble's members are scored from the same walk (forecast_parts).
    methods: dict[str, Any] = {
        "ensemble": lambda: ModelEnsemble(
            config, {n: build_member(n, config) for n in names}, horizons=horizons
        ),
    }
    if args.baselines:
        methods.update(protocol_baselines(config))
    bar = _ProgressBar(len(methods))
    result = walk_forward(
        methods, history, start=start, end=end, horizons=horizons,
        confidence=args.confidence, progress=bar,
    )  # fmt: skip
    bar.close()
    print(f"{ticker}: {format_report(result)}")
    print(SYNTHETIC_NOTE)
    print(f"walk-forward took {sum(result.elapsed.values()):.0f} s")
    try:
        if args.csv is not None:
            print(f"forecasts written to {write_forecasts_csv(result, args.csv)}")
        if args.plot is not None:
            plot = plot_forecasts(result, "ensemble", horizons[0], args.plot)
            print(f"plot written to {plot}")
    except OSError as exc:  # checked up front, but the disk can still fill up
        raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return 0


def protocol_baselines(config: MarkovConfig) -> dict[str, Any]:
    """QUALITY-PROTOCOL's baselines, as walk-forward factories (rows ``baseline_*``).

    ``baseline_gjr_vix`` is the best calibrated baseline the targets are quoted against:
    the ``tgarch`` member without its range term (GJR-GARCH-t with VIX² in the variance,
    5,000 simulated paths).
    """
    from models.baselines import EwmaNormal, VixImpliedNormal
    from models.tarch_baseline import TarchT
    from models.tgarch_model import TGARCHModel

    return {
        "baseline_gjr_vix": lambda: TGARCHModel(seed=config.seed, range_term=False),
        "baseline_tarch_t": lambda: TarchT(seed=config.seed),
        "baseline_vix_normal": VixImpliedNormal,
        "baseline_ewma": EwmaNormal,
    }


# -- the work behind forecast / ensemble ----------------------------------------------


def forecast_ticker(
    config: MarkovConfig, ticker: str, days: int, confidence: float, *, data: Path | None
) -> dict[str, Any]:
    """Fit the configured ensemble on the ticker's history and forecast ``days`` ahead.

    Raises :class:`ForecastFailedError` (with the result) when no member gave a usable range.
    """
    from models.base import Status
    from models.ensemble import ModelEnsemble

    history = _history(config, ticker, config.data.default_days_back, data)
    # The first fit walks its last year of bars to warm the calibration up (most of the
    # 20 s): a terminal gets a progress bar instead of silence.
    bar = _ProgressBar(1) if sys.stderr.isatty() else None

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar(f"{ticker} warm-up", done, total)

    try:
        fit = ModelEnsemble(config, horizons=(days,)).fit(history, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    fc = fit.forecast(days, confidence)
    r = fc.range
    result = {
        "ticker": ticker,
        "as_of": str(history.index[-1].date()),
        "close": r.anchor,
        "horizon": days,
        "confidence": confidence,
        "low": r.low,
        "high": r.high,
        "path_low": r.path_low,
        "path_high": r.path_high,
        "center": r.center,
        "status": str(r.status),
        "regime": fc.regime,
        "vix": fc.vix,
        "models": {
            name: {
                "low": _finite(p.range.low),
                "high": _finite(p.range.high),
                "path_low": p.range.path_low,
                "path_high": p.range.path_high,
                "weight": p.weight,
                "status": str(p.status),
            }
            for name, p in fc.parts.items()
        },
        # Every report says when the option chains are synthetic, the JSON one too.
        "notes": [SYNTHETIC_NOTE.removeprefix("note: ")]
        if any("synthetic" in p.status.reason for p in fc.parts.values())
        else [],
    }
    if r.status.state is Status.FAILED:
        reasons = [str(p.status) for p in fc.parts.values()]
        message = _failure_message(ticker, r.status.reason, len(history), reasons)
        raise ForecastFailedError(message, result)
    return result


def _failure_message(ticker: str, reason: str, bars: int, member_reasons: list[str]) -> str:
    message = f"{ticker}: forecast failed: {reason}; the history has {bars} bars"
    # The members say how many bars they need (returns.checked_history: "need at least 30
    # bars of history"; or a reason ending "needs at least 101"); the smallest gives a
    # range, the largest all of them.
    needs = [int(n) for r in member_reasons for n in _NEEDS.findall(r)]
    if needs:
        message += f", the members need at least {min(needs)} ({max(needs)} for all of them)"
    return message


_NEEDS = re.compile(r"needs? at least (\d+)(?= bars\b|$)")


def format_forecast(result: dict[str, Any]) -> str:
    pct = percent(result["confidence"])
    vix = "n/a" if result["vix"] is None else f"{result['vix']:.2f}"
    lines = [
        f"{result['ticker']}  close {result['close']:.2f} on {result['as_of']}  "
        f"horizon {result['horizon']} trading days  confidence {pct}%  "
        f"VIX {vix} ({result['regime']} regime)",
        f"ensemble range  {result['low']:.2f} .. {result['high']:.2f}  "
        f"(center {result['center']:.2f})",
    ]
    if result["path_low"] is not None:
        lines.append(
            f"path range      {result['path_low']:.2f} .. {result['path_high']:.2f}  "
            "(the path stays inside with the stated confidence)"
        )
    lines.append(f"status          {result['status']}")
    lines.append("")
    lines.append(f"{'model':<20} {'low':>10} {'high':>10} {'weight':>7}  status")
    for name, m in result["models"].items():
        low = "-" if m["low"] is None else f"{m['low']:.2f}"
        high = "-" if m["high"] is None else f"{m['high']:.2f}"
        lines.append(f"{name:<20} {low:>10} {high:>10} {m['weight']:>7.3f}  {m['status']}")
    lines.append("")
    lines.append(SYNTHETIC_NOTE)
    return "\n".join(lines)


# -- helpers ---------------------------------------------------------------------------


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default=None, help="YAML file, or a shipped config: default, production"
    )
    p.add_argument("--data", type=Path, default=None, help="CSV/Parquet file of daily OHLC")


def _config(args: argparse.Namespace) -> MarkovConfig:
    return ConfigLoader.load_arg(args.config) if args.config is not None else ConfigLoader.default()


def _history(
    config: MarkovConfig, ticker: str, days_back: int | None, data: Path | None
) -> pd.DataFrame:
    if data is not None:
        return load_history(ticker, days_back, source="file", path=data)
    source = config.data.source
    path = config.data.path
    return load_history(ticker, days_back, source=source, path=path)


def _window_dates(
    backtest_days: int | None, start: str | None, end: str | None
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The --start/--end window (None with --backtest-days), checked before any data."""
    if backtest_days is not None:
        if start is not None or end is not None:
            raise UserError(
                "--backtest-days counts back from the end of the history: "
                "give either it or --start/--end, not both"
            )
        return None
    start = DEFAULT_START if start is None else start
    end = DEFAULT_END if end is None else end
    try:
        start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    except ValueError as exc:
        raise UserError(f"--start/--end: not a date: {exc}") from None
    if start_ts > end_ts:
        raise UserError(f"--start {start} is after --end {end}")
    return start_ts, end_ts


def _window(
    history: pd.DataFrame,
    backtest_days: int | None,
    dates: tuple[pd.Timestamp, pd.Timestamp] | None,
    horizon: int,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last origin; refuses a window without one origin (``horizon``: the
    shortest, an origin needs the close ``horizon`` days later)."""
    from models.validation import origin_positions

    bars = len(history)
    if backtest_days is not None:
        most = bars - WARM_UP_BARS
        if most <= horizon:
            raise UserError(
                f"--backtest-days {backtest_days}: the history has {bars} bars, too short for "
                f"a backtest: the models need about {WARM_UP_BARS} bars before the first "
                f"origin and {horizon} after it ({WARM_UP_BARS + horizon + 1} in all)"
            )
        if backtest_days > most:
            raise UserError(
                f"--backtest-days {backtest_days}: at most {most} with this history "
                f"({bars} bars; the models need about {WARM_UP_BARS} before the first origin)"
            )
        if backtest_days <= horizon:
            raise UserError(
                f"--backtest-days {backtest_days}: must be more than the shortest horizon "
                f"({horizon}): the last {horizon} day(s) have no outcome yet"
            )
        return history.index[-backtest_days], history.index[-1]
    assert dates is not None  # _window_dates gives dates unless --backtest-days
    start, end = dates
    if origin_positions(history, start, end, horizon).size == 0:
        covers = (
            f"the history covers {history.index[0].date()} .. {history.index[-1].date()}"
            if bars
            else "the history is empty"
        )
        window = f"{start.date()} .. {end.date()}"
        index = pd.DatetimeIndex(history.index)
        if not ((index >= start) & (index <= end)).any():
            raise UserError(f"no trading days with data in {window}: {covers}")
        raise UserError(
            f"no origin in {window} has a close {horizon} trading day(s) later: {covers}"
        )
    return start, end


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _days(text: str) -> int:
    # The models refuse more steps (their path arrays would not fit in memory).
    value = _positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_STEPS} trading days, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _horizons(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,5, got {text!r}") from None
    if not values or any(v < 1 for v in values) or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"expected ascending positive integers, got {text!r}")
    if values[-1] > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"expected horizons of at most {MAX_STEPS}, got {text!r}")
    return values


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()


class _ProgressBar:
    """A one-line progress bar on stderr (the walk-forward's progress callback)."""

    def __init__(self, n_methods: int) -> None:
        self._n_methods = n_methods
        self._done: dict[str, int] = {}
        self._started = time.monotonic()
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, method: str, done: int, total: int) -> None:
        self._done[method] = done
        now = time.monotonic()
        if now - self._last < (0.2 if self._tty else 10.0) and done < total:
            return
        self._last = now
        # walk_forward counts origins across all methods: done/total is the whole run.
        frac = done / max(total, 1)
        filled = int(30 * frac)
        line = (
            f"[{'#' * filled}{'.' * (30 - filled)}] {100 * frac:5.1f}%  {method} "
            f"{done}/{total}  {now - self._started:.0f} s"
        )
        print(f"\r{line}" if self._tty else line, end="" if self._tty else "\n",
              file=sys.stderr, flush=True)  # fmt: skip

    def close(self) -> None:
        if self._tty and self._done:  # end the bar's line, if it drew one
            print(file=sys.stderr)
