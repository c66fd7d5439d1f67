"""Per-symbol stream state: event-time ordering, the bar being built, ``seq``, throttling.

Bars are built from ticks in event time. With ``bar_seconds = 86400`` a bar is one
exchange day: ticks are grouped by their date in America/New_York (so a session never
straddles two UTC dates); other values cut fixed UTC buckets of ``bar_seconds``. A bar
closes when the first tick of a later bar arrives: nothing waits on the wall clock, so a
replay closes the same bars at the same ticks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from models.base import Bar

EXCHANGE_TZ = ZoneInfo("America/New_York")
NS = 1_000_000_000
DAY_SECONDS = 86_400


class OutOfOrderError(ValueError):
    """An event older than the last one of its stream (the reason names both times)."""


class ImplausibleTickError(ValueError):
    """A tick whose price jumps further from the session's last one than a market moves."""


# Refused ticks in a row that agree with each other are a real move, not bad prints: the
# check must not lock a symbol out of a market that has really gone there.
CONFIRM_TICKS = 3


@dataclass
class _OpenBar:
    start_ns: int  # bounds of the bar's bucket in event time: [start_ns, end_ns)
    end_ns: int
    label: pd.Timestamp
    open: float
    high: float
    low: float
    close: float

    def close_bar(self, vix: float | None) -> Bar:
        return Bar(self.label, self.open, self.high, self.low, self.close, vix)


def bar_bucket(ts_ns: int, bar_seconds: int) -> tuple[int, int, pd.Timestamp]:
    """(start_ns, end_ns, label) of the bar that contains ``ts_ns``.

    Daily bars are labelled with the exchange date (tz-naive midnight, like the history
    index); intraday bars with their UTC start (tz-naive).
    """
    if bar_seconds == DAY_SECONDS:
        local = datetime.fromtimestamp(ts_ns / NS, EXCHANGE_TZ)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = (day + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=EXCHANGE_TZ)
        start = int(day.timestamp()) * NS
        end = int(nxt.timestamp()) * NS
        return start, end, pd.Timestamp(day.date())
    width = bar_seconds * NS
    start = ts_ns - ts_ns % width
    return start, start + width, pd.Timestamp(start, unit="ns")


@dataclass
class SymbolState:
    """What the engine knows about one symbol besides its models."""

    symbol: str
    bar_seconds: int = DAY_SECONDS
    throttle_ns: int = NS
    seq: int = 0
    last_tick_ts: int = 0
    last_chain_ts: int = 0
    last_publish_ts: int | None = None
    last_price: float | None = None
    bars: list[Bar] = field(default_factory=list)  # bars closed since the warm-up history
    # The warm-up history's last bar: the models have seen it, so a tick whose bar is not
    # after it would reach them out of order (a feed older than the history).
    history_end: pd.Timestamp | None = None
    max_move: float = 0.0  # |log move| allowed tick to tick within a session; 0: no check
    suspects: list[float] = field(default_factory=list)  # refused prices, in a row
    _open: _OpenBar | None = None
    # Price ratios surely inside max_move (a hair inside exp(±max_move)): the common tick
    # is cleared by two comparisons instead of a log; the rest takes the exact check.
    _safe_ratio: tuple[float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        margin = 1e-9
        self._safe_ratio = (
            math.exp(-self.max_move) * (1 + margin),
            math.exp(self.max_move) * (1 - margin),
        )

    def check_chain(self, ts: int) -> None:
        if ts == self.last_chain_ts:
            raise OutOfOrderError(
                f"option chain for {self.symbol} at ts {ts} is a duplicate: the symbol's "
                "last chain has the same time"
            )
        if ts < self.last_chain_ts:
            raise OutOfOrderError(
                f"option chain for {self.symbol} at ts {ts} is older than the symbol's last "
                f"({self.last_chain_ts})"
            )
        self.last_chain_ts = ts

    def on_tick(self, ts: int, price: float, vix: float | None) -> Bar | None:
        """Fold a tick into the current bar; return the bar it closed, if any.

        ``vix`` is the latest VIX at ``ts``: the closed bar carries the VIX known when it
        closed, i.e. the VIX close of its day. A tick older than the symbol's last raises
        :class:`OutOfOrderError` and changes nothing.
        """
        if ts < self.last_tick_ts:
            raise OutOfOrderError(
                f"tick for {self.symbol} at ts {ts} is older than the symbol's last "
                f"({self.last_tick_ts})"
            )
        bar = self._open
        if bar is not None and bar.start_ns <= ts < bar.end_ns:
            lo, hi = self._safe_ratio
            ratio = price / bar.close
            checked = self.max_move > 0 and (self.suspects or not lo < ratio < hi)
            if checked and self._implausible(price):
                raise ImplausibleTickError(
                    f"tick for {self.symbol} at ts {ts}: price {price:g} is a log move of "
                    f"{abs(math.log(price / bar.close)):.3g} from the session's last "
                    f"{bar.close:g} (allowed {self.max_move:g}: stream.max_tick_move); "
                    f"{CONFIRM_TICKS} such ticks in a row that agree are taken as a real move"
                )
            self.last_tick_ts = ts
            self.last_price = price
            if price > bar.high:
                bar.high = price
            elif price < bar.low:
                bar.low = price
            bar.close = price
            return None
        start, end, label = bar_bucket(ts, self.bar_seconds)
        if self.history_end is not None and label <= self.history_end:
            raise OutOfOrderError(
                f"tick for {self.symbol} at ts {ts} falls in the bar of {label}, not after the "
                f"models' warm-up history (it ends {self.history_end}): the feed is older "
                "than the history the service started from (markov run --history-end DATE "
                "ends the warm-up before the feed)"
            )
        self.last_tick_ts = ts
        self.last_price = price
        closed = None
        if bar is not None:
            closed = bar.close_bar(vix)
            self.bars.append(closed)
        self._open = _OpenBar(start, end, label, price, price, price, price)
        return closed

    def _implausible(self, price: float) -> bool:
        assert self._open is not None
        if abs(math.log(price / self._open.close)) <= self.max_move:
            self.suspects.clear()
            return False
        self.suspects.append(price)
        recent = self.suspects[-CONFIRM_TICKS:]
        if len(recent) == CONFIRM_TICKS and math.log(max(recent) / min(recent)) <= self.max_move:
            self.suspects.clear()
            return False
        return True

    def should_publish(self, ts: int) -> bool:
        """Throttle in event time: at most one publication per ``throttle_ns``."""
        last = self.last_publish_ts
        return last is None or ts - last >= self.throttle_ns

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- checkpoints ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain data (JSON-able) from which :meth:`restore` rebuilds this state."""
        bar = self._open
        return {
            "symbol": self.symbol,
            "seq": self.seq,
            "last_tick_ts": self.last_tick_ts,
            "last_chain_ts": self.last_chain_ts,
            "last_publish_ts": self.last_publish_ts,
            "last_price": self.last_price,
            "bars": [_bar_data(b) for b in self.bars],
            "open_bar": None if bar is None else _open_data(bar),
            "suspects": list(self.suspects),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.seq = int(data["seq"])
        self.last_tick_ts = int(data["last_tick_ts"])
        self.last_chain_ts = int(data["last_chain_ts"])
        self.last_publish_ts = data["last_publish_ts"]
        self.last_price = data["last_price"]
        self.bars = [_bar_from(b) for b in data["bars"]]
        self.suspects = list(data.get("suspects", []))  # absent from older snapshots
        ob = data["open_bar"]
        self._open = (
            None
            if ob is None
            else _OpenBar(ob[0], ob[1], pd.Timestamp(ob[2]), ob[3], ob[4], ob[5], ob[6])
        )


def _open_data(bar: _OpenBar) -> list[Any]:
    return [bar.start_ns, bar.end_ns, bar.label.isoformat(), bar.open, bar.high, bar.low, bar.close]


def _bar_data(bar: Bar) -> list[Any]:
    return [bar.ts.isoformat(), bar.open, bar.high, bar.low, bar.close, bar.vix]


def _bar_from(data: list[Any]) -> Bar:
    return Bar(pd.Timestamp(data[0]), data[1], data[2], data[3], data[4], data[5])
