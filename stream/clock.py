"""One clock abstraction, injected: event time in replay, wall time live.

The engine reads ``now_ns()`` for the refit timer. With an :class:`EventClock` time only
moves when an event is processed (``advance``), so a replay schedules the same refits at
the same points on every run; with a :class:`WallClock` it is the machine's time.
Bars and publication throttling always use the events' own timestamps, not a clock.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    #: True when the clock follows the events (replay): refits are then applied at
    #: deterministic points instead of as soon as they finish.
    deterministic: bool

    def now_ns(self) -> int: ...

    def advance(self, event_ts: int) -> None:
        """Tell the clock an event with this time was processed."""
        ...


class EventClock:
    """Time is the latest event time processed (never goes back)."""

    deterministic = True

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, event_ts: int) -> None:
        if event_ts > self._now:
            self._now = event_ts


class WallClock:
    """The machine's UTC time; events do not move it."""

    deterministic = False

    def now_ns(self) -> int:
        return time.time_ns()

    def advance(self, event_ts: int) -> None:
        return None
