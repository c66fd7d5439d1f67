"""Generates the bundled recorded feed from arch's real daily S&P 500 and VIX data.

Run ``python -m stream.feeds.generate`` to rebuild ``spx_2018q1.jsonl.gz`` and its
``spx_2018q1.meta.json`` sidecar; running it twice gives byte-identical files.

What is real and what is synthetic
----------------------------------
Real: each trading day's S&P 500 Open, High, Low, Close and Volume
(``arch.data.sp500``) and VIX close (``arch.data.vix``). **Synthetic**: everything
intraday — the minute path between those prices, the intraday VIX, and every option
chain (the VIX-driven smile model of :mod:`models.smile`).

Per trading day (event times in America/New_York, stored as UTC epoch ns):

* ``markov.ticks`` (key ``"SPX"``): one tick a minute, 09:30 … 16:00 (391 ticks). The
  path starts exactly at the Open, ends exactly at the Close and touches exactly the High
  and the Low: two distinct interior minutes are drawn for the extremes, the order
  (High first or Low first) is a seeded coin flip, and the path is three Brownian
  bridges O → first extreme → second extreme → C. A bridge may overshoot the day's
  range; it is folded back by reflection at High and Low (a triangle-wave map, which
  keeps the path's roughness, unlike clipping, and leaves the in-range bridge endpoints
  untouched), so ``min = Low`` and ``max = High`` exactly. The noise scale is set so a
  free Brownian motion's expected range over the session (≈ 1.6·σ·√390) matches
  ``High − Low``. Prices are in cents (arch's values rounded to 2 decimals). ``size`` is
  the day's real Volume split over the minutes by a seeded multinomial with a U-shaped
  intraday profile (sums to the day's Volume); ``bid``/``ask`` are ``price ∓ h`` with
  ``h = 0.05·max(1, ⌈VIX/10⌉)``.
* ``markov.vix`` (key ``"VIX"``): every 15 minutes, 09:45 … 16:00 (26 a day). In logs,
  a line from the previous day's close (at 09:30) to the day's close (at 16:00), minus
  ``5 ×`` the SPX path's deviation from its own Open→Close line (the VIX rises when the
  index falls), plus a Brownian bridge; the 16:00 value is exactly arch's close.
* ``markov.options`` (key ``"SPX"``): a chain snapshot every 30 minutes, 10:00 … 16:00
  (13 a day) from :func:`models.smile.generate_chain` at the tick price and VIX of that
  minute (expiries ≈ 7 and 30 days, 15 strikes each, OTM puts below and calls above the
  forward, rate 0).

Events are written in event-time order; at equal times the order is ticks, then VIX,
then options (so a snapshot sees the tick and VIX of its own minute). Each day draws
from its own seed streams, ``SeedSequence([seed, yyyymmdd, stream])``, so any sub-range
regenerates exactly the same lines as the full file.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from connectors.feed_file import FORMAT_VERSION, FeedWriter, meta_path
from models.smile import DEFAULT_MODEL, NEW_YORK, generate_chain
from stream.feeds import BUNDLED_FEED

SYMBOL = "SPX"
VIX_KEY = "VIX"
TOPIC_TICKS = "markov.ticks"
TOPIC_VIX = "markov.vix"
TOPIC_OPTIONS = "markov.options"
TIE_ORDER = (TOPIC_TICKS, TOPIC_VIX, TOPIC_OPTIONS)

DEFAULT_START = date(2018, 1, 2)
DEFAULT_END = date(2018, 3, 29)
DEFAULT_SEED = 20180205


SESSION_MINUTES = 390  # 09:30 → 16:00
VIX_EVERY = 15
CHAIN_EVERY = 30
EXPIRIES_DAYS = (7, 30)
N_STRIKES = 15
VIX_BETA = 5.0  # log-VIX response to the index's log deviation (leverage effect)
VIX_NOISE = 0.012  # log-VIX bridge noise per 15 minutes
RANGE_PER_SIGMA = 1.6  # E[max − min] of a Brownian motion ≈ 1.6·σ·√T
MINUTE_NS = 60_000_000_000
# Seed-stream ids inside a day.
_PATH, _VOLUME, _VIX, _CHAIN = 0, 1, 2, 3

SYNTHETIC_NOTE = (
    "Daily S&P 500 OHLC/Volume and VIX closes are real (arch.data); the intraday ticks, "
    "the intraday VIX and ALL option chains are SYNTHETIC (models.smile, seeded). "
    "Reports built on this feed must say so."
)


@dataclass(frozen=True)
class DailyBar:
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int
    vix: float
    prev_vix: float


def load_daily(start: date, end: date) -> list[DailyBar]:
    """arch's daily S&P 500 bars and VIX closes for ``start..end`` (inclusive), in cents."""
    from arch.data import sp500, vix  # imported here: only the generator needs the data

    spx = sp500.load()
    vix_close = vix.load()["vix"].dropna()
    days = spx.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    if days.empty:
        raise ValueError(f"no S&P 500 trading days between {start} and {end} in arch.data")
    bars = []
    for stamp, row in zip(days.index, days.to_dict("records"), strict=True):
        day = stamp.date()
        before = vix_close.loc[: pd.Timestamp(day) - pd.Timedelta(days=1)]
        if pd.Timestamp(day) not in vix_close.index or before.empty:
            raise ValueError(f"arch.data.vix has no close for {day} or the day before")
        o, h, lo, c = (round(float(row[k]), 2) for k in ("Open", "High", "Low", "Close"))
        if not lo <= min(o, c) <= max(o, c) <= h:
            raise ValueError(f"inconsistent OHLC on {day}: {o=}, {h=}, {lo=}, {c=}")
        bars.append(
            DailyBar(
                day=day,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=int(row["Volume"]),
                vix=round(float(vix_close.loc[pd.Timestamp(day)]), 2),
                prev_vix=round(float(before.iloc[-1]), 2),
            )
        )
    return bars


def _rng(seed: int, day: date, stream: int) -> np.random.Generator:
    ymd = day.year * 10_000 + day.month * 100 + day.day
    return np.random.default_rng(np.random.SeedSequence([seed, ymd, stream]))


def brownian_bridge(n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Brownian bridge over ``n_steps`` unit steps: ``n_steps + 1`` points, 0 at both ends."""
    walk = np.concatenate([[0.0], np.cumsum(rng.standard_normal(n_steps))])
    return walk - np.linspace(0.0, 1.0, n_steps + 1) * walk[-1]


def reflect_into(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Folds values into ``[low, high]`` by reflection at the bounds (a triangle wave)."""
    width = high - low
    if width <= 0:
        return np.full_like(x, low)
    u = np.mod(x - low, 2.0 * width)
    return low + width - np.abs(u - width)


def intraday_path(bar: DailyBar, rng: np.random.Generator) -> np.ndarray:
    """Minute prices 09:30 … 16:00: Open first, Close last, touching exactly High and Low."""
    n = SESSION_MINUTES
    if bar.high == bar.low:
        return np.full(n + 1, bar.open)
    high_first = bool(rng.integers(2))
    t1, t2 = np.sort(rng.choice(np.arange(1, n), size=2, replace=False))
    x1, x2 = (bar.high, bar.low) if high_first else (bar.low, bar.high)
    sigma = (bar.high - bar.low) / (RANGE_PER_SIGMA * math.sqrt(n))
    anchors = [(0, bar.open), (int(t1), x1), (int(t2), x2), (n, bar.close)]
    path = np.empty(n + 1)
    for (ta, xa), (tb, xb) in itertools.pairwise(anchors):
        steps = tb - ta
        line = xa + (xb - xa) * np.linspace(0.0, 1.0, steps + 1)
        path[ta : tb + 1] = line + sigma * brownian_bridge(steps, rng)
    path = np.round(reflect_into(path, bar.low, bar.high), 2)
    for t, x in anchors:  # exact anchors, free of float round-off in the line
        path[t] = x
    return path


def minute_volumes(total: int, rng: np.random.Generator) -> np.ndarray:
    """Splits the day's volume over the 391 minute ticks with a U-shaped profile."""
    t = np.arange(SESSION_MINUTES + 1)
    profile = 1.0 + 2.0 * ((t - SESSION_MINUTES / 2) / (SESSION_MINUTES / 2)) ** 2
    return rng.multinomial(total, profile / profile.sum())


def intraday_vix(bar: DailyBar, prices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """VIX at minutes 15, 30, …, 390; the last value is the day's close exactly."""
    minutes = np.arange(VIX_EVERY, SESSION_MINUTES + 1, VIX_EVERY)
    frac = minutes / SESSION_MINUTES
    log_spx = np.log(prices[minutes])
    spx_line = math.log(bar.open) + (math.log(bar.close) - math.log(bar.open)) * frac
    vix_line = math.log(bar.prev_vix) + (math.log(bar.vix) - math.log(bar.prev_vix)) * frac
    noise = VIX_NOISE * brownian_bridge(minutes.size, rng)[1:]
    values = np.round(np.exp(vix_line - VIX_BETA * (log_spx - spx_line) + noise), 2)
    values[-1] = bar.vix
    return values


def _session_open_ns(day: date) -> int:
    return int(pd.Timestamp(datetime(day.year, day.month, day.day, 9, 30), tz=NEW_YORK).value)


Event = tuple[str, str | None, int, dict[str, Any]]


def day_events(bar: DailyBar, seed: int) -> list[Event]:
    """All events of one trading day, in event-time order (ties: ticks, VIX, options)."""
    prices = intraday_path(bar, _rng(seed, bar.day, _PATH))
    sizes = minute_volumes(bar.volume, _rng(seed, bar.day, _VOLUME))
    vix_values = intraday_vix(bar, prices, _rng(seed, bar.day, _VIX))
    open_ns = _session_open_ns(bar.day)

    vix_by_minute = dict(
        zip(range(VIX_EVERY, SESSION_MINUTES + 1, VIX_EVERY), vix_values.tolist(), strict=True)
    )
    keyed: list[tuple[int, int, Event]] = []
    current_vix = bar.prev_vix
    for minute in range(SESSION_MINUTES + 1):
        ts = open_ns + minute * MINUTE_NS
        price = float(prices[minute])
        current_vix = vix_by_minute.get(minute, current_vix)
        half = 0.05 * max(1, math.ceil(current_vix / 10))
        tick = {
            "symbol": SYMBOL,
            "ts": ts,
            "price": price,
            "size": int(sizes[minute]),
            "bid": round(price - half, 2),
            "ask": round(price + half, 2),
        }
        keyed.append((ts, 0, (TOPIC_TICKS, SYMBOL, ts, tick)))
        if minute in vix_by_minute:
            keyed.append((ts, 1, (TOPIC_VIX, VIX_KEY, ts, {"ts": ts, "value": current_vix})))
        if minute > 0 and minute % CHAIN_EVERY == 0:
            chain_seed = int(_rng(seed, bar.day, _CHAIN + minute).integers(2**63))
            chain = generate_chain(
                SYMBOL,
                ts,
                price,
                current_vix,
                expiries_days=EXPIRIES_DAYS,
                n_strikes=N_STRIKES,
                seed=chain_seed,
            )
            keyed.append((ts, 2, (TOPIC_OPTIONS, SYMBOL, ts, chain)))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in keyed]


def iter_events(bars: Sequence[DailyBar], seed: int) -> Iterator[Event]:
    for bar in bars:
        yield from day_events(bar, seed)


def generate_feed(
    out: str | Path = BUNDLED_FEED,
    *,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Writes the feed to ``out`` and its metadata to the sidecar; returns the metadata."""
    out = Path(out)
    bars = load_daily(start, end)
    counts = dict.fromkeys(TIE_ORDER, 0)
    first_ts = last_ts = None
    with FeedWriter(out) as writer:
        for topic, key, ts, payload in iter_events(bars, seed):
            writer.write(topic, key, ts, payload)
            counts[topic] += 1
            first_ts = ts if first_ts is None else first_ts
            last_ts = ts
    meta = build_meta(out, bars, seed, counts, first_ts, last_ts)
    meta_path(out).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return meta


def build_meta(
    out: Path,
    bars: Sequence[DailyBar],
    seed: int,
    counts: dict[str, int],
    first_ts: int | None,
    last_ts: int | None,
) -> dict[str, Any]:
    import arch

    data = out.read_bytes()
    return {
        "format": f"markov recorded feed v{FORMAT_VERSION} (JSON Lines, see connectors.feed_file)",
        "file": out.name,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "source": {
            "sp500": "arch.data.sp500.load(): daily Open, High, Low, Close, Volume",
            "vix": "arch.data.vix.load(): daily close",
            "arch_version": arch.__version__,
        },
        "generator": "python -m stream.feeds.generate",
        "seed": seed,
        "symbol": SYMBOL,
        "start": bars[0].day.isoformat(),
        "end": bars[-1].day.isoformat(),
        "trading_days": len(bars),
        "events": sum(counts.values()),
        "counts": counts,
        "first_ts": first_ts,
        "last_ts": last_ts,
        "keys": {TOPIC_TICKS: SYMBOL, TOPIC_VIX: VIX_KEY, TOPIC_OPTIONS: SYMBOL},
        "tie_order": list(TIE_ORDER),
        "schedule": {
            "timezone": "America/New_York (ts: UTC epoch ns)",
            "ticks": "every minute 09:30-16:00 (391 a day)",
            "vix": f"every {VIX_EVERY} minutes 09:45-16:00",
            "options": f"every {CHAIN_EVERY} minutes 10:00-16:00",
        },
        "options": {
            "model": "models.smile (synthetic)",
            "expiries_days": list(EXPIRIES_DAYS),
            "n_strikes": N_STRIKES,
            "rights": "otm",
            "rate": 0.0,
            "parameters": asdict(DEFAULT_MODEL),
        },
    }


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream.feeds.generate",
        description="Regenerate the bundled recorded feed (synthetic intraday data and "
        "option chains around arch's real daily S&P 500 and VIX).",
    )
    parser.add_argument("--start", type=_parse_date, default=DEFAULT_START)
    parser.add_argument("--end", type=_parse_date, default=DEFAULT_END)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=BUNDLED_FEED, help="feed path (.jsonl[.gz])")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"--end ({args.end}) is before --start ({args.start})")
    began = time.perf_counter()
    try:
        meta = generate_feed(args.out, start=args.start, end=args.end, seed=args.seed)
    except (ValueError, OSError) as exc:  # bad range / unwritable --out: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - began
    counts = ", ".join(f"{topic}={n}" for topic, n in meta["counts"].items())
    print(
        f"wrote {args.out} ({meta['bytes']:,} bytes, {meta['trading_days']} days "
        f"{meta['start']}..{meta['end']}, {meta['events']:,} events: {counts}) "
        f"and {meta_path(args.out).name} in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
