"""Garbage-collector settings while the engine runs.

The warm-up leaves a large heap of long-lived objects (history frames, fitted models, a
preloaded feed) that CPython's cyclic collector keeps re-scanning, and every event
allocates a few container objects (its record, the parsed tick, the acknowledgement list),
so the young generation fills every few hundred events. On the bundled feed the collector
took about a quarter of the engine's CPU time (`python -m benchmarks.stream`, perf).
The hot path makes no reference cycles (what it allocates is freed by reference counting),
so while a service runs: everything alive after the warm-up moves to the permanent
generation (``gc.freeze``, the CPython documentation's remedy for a large long-lived heap)
and the young generation is collected less often. Cycles are still collected, just in
larger batches; the settings are put back when the last running service stops.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)

_users = 0
_saved: tuple[int, int, int] | None = None


def enter_hot_path() -> None:
    """Freeze the warmed-up heap and raise the young-generation threshold."""
    global _users, _saved
    if _users == 0:
        _saved = gc.get_threshold()
        gc.collect()  # don't freeze the warm-up's garbage
        gc.freeze()
        _, older, oldest = _saved
        gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    _users += 1


def leave_hot_path() -> None:
    """Undo :func:`enter_hot_path` once every service that entered it has left."""
    global _users, _saved
    if _users == 0:
        return
    _users -= 1
    if _users == 0 and _saved is not None:
        gc.unfreeze()
        gc.set_threshold(*_saved)
        _saved = None
