"""What moved a symbol's models besides the bars, so that a restart rebuilds them exactly.

A checkpoint carries the bars closed since the warm-up; replayed into the freshly warmed-up
ensemble they rebuild everything that follows from bars. Two things do not follow from
bars: option chains (the Delta UKF's smile filter, and through it the jump size, the
option factors, the simulation the jump member reuses within a day, and every forecast
scored since) and refits (the slow members fitted
again, off the event loop, on a longer history). The journal records both where they
happened, as positions counted in closed bars, and :func:`replay` puts them back in the
same order, so that a checkpoint plus a replay from its offsets gives the uninterrupted
output (DESIGN "State") with any members.

Position ``p`` is the stretch after ``p`` bars have closed: chains that came during it set
the chain state that bar ``p`` closes on; a refit started or installed at a bar close
happened at the position that close opened.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.base import Bar
from models.ensemble import ModelEnsemble
from stream.refit import RefitScheduler, split_outcome, submit_fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitRecord:
    """A refit whose fits were installed: started at ``start``, installed at ``install``."""

    start: int
    install: int
    members: tuple[str, ...]  # the members installed (a failed fit kept the old one)


@dataclass
class ModelJournal:
    """One symbol's chain states and refits since the warm-up."""

    # position -> the ensemble's chain state when the bar at that position closed
    chains: dict[int, dict[str, Any]] = field(default_factory=dict)
    chains_pending: bool = False  # chains came since the last bar close
    refits: list[RefitRecord] = field(default_factory=list)

    def chain_applied(self) -> None:
        self.chains_pending = True

    def bar_closing(self, position: int, ensemble: ModelEnsemble) -> None:
        """Bar ``position`` closes: keep the chain state it closes on, if chains came."""
        if self.chains_pending:
            self.chains[position] = ensemble.chain_state()
            self.chains_pending = False

    def snapshot(
        self, position: int, ensemble: ModelEnsemble, refit: RefitScheduler
    ) -> dict[str, Any]:
        """Plain data (JSON-able) at a checkpoint, ``position`` bars closed."""
        chains = sorted(self.chains.items())
        if self.chains_pending:  # chains since the last close: the state as it stands
            chains.append((position, ensemble.chain_state()))
        return {
            "chains": [[p, state] for p, state in chains],
            "refits": [[r.start, r.install, list(r.members)] for r in self.refits],
            "refit_timer_ns": refit.timer_ns,
            "refit_in_flight": refit.in_flight_start,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> ModelJournal:
        return cls(
            chains={int(p): state for p, state in data["chains"]},
            refits=[RefitRecord(int(s), int(i), tuple(m)) for s, i, m in data["refits"]],
        )


async def replay(
    ensemble: ModelEnsemble,
    history: pd.DataFrame,
    bars: Sequence[Bar],
    data: dict[str, Any],
    refit: RefitScheduler,
    executor: Executor | None,
) -> ModelJournal:
    """Rebuild ``ensemble`` (warmed up on ``history``) from a checkpoint's ``bars`` and
    journal ``data``: each bar in turn, the chain state it closed on before it, the refits
    fitted again on the history each one saw and installed where each one was. A refit
    in flight at the checkpoint is fitted again and handed to ``refit``, which installs
    it as the live one would have been. Returns the journal, to go on from.

    The fits run in ``executor`` (the one live refits run in; None: a thread), so the
    event loop stays free; they take as long as the refits they repeat.
    """
    journal = ModelJournal.from_snapshot(data)
    in_flight: int | None = data["refit_in_flight"]
    starts = {r.start for r in journal.refits} | ({in_flight} if in_flight is not None else set())
    fitted: dict[int, bytes] = {}  # start position -> the refit's outcome, as a live one
    readers = {n for n, m in ensemble.members.items() if hasattr(m, "restore_chain_state")}
    gone = {n for state in journal.chains.values() for n in state} - readers
    if gone:  # the config changed since the checkpoint: the rest is still put back
        log.warning("chain state of %s not restored: no such member now", ", ".join(sorted(gone)))

    async def at_position(p: int) -> None:
        for record in journal.refits:
            if record.install == p:
                # A fit that fails now, unlike then, keeps the member as it is.
                done, _ = split_outcome(fitted.pop(record.start))
                chosen = {n: m for n, m in done.items() if n in record.members}
                ensemble.install_members(chosen, bars[record.start : p])
        if p in starts:
            seen = history_with(history, bars[:p])
            fitted[p] = await submit_fit(executor, ensemble.slow_members(), seen)
        state = journal.chains.get(p)
        if state is not None:
            ensemble.restore_chain_state({n: s for n, s in state.items() if n in readers})

    await at_position(0)
    for i, bar in enumerate(bars):
        ensemble.update(bar)
        await at_position(i + 1)
        await asyncio.sleep(0)  # a long replay leaves the loop to the consumer's heartbeats
    if journal.chains.pop(len(bars), None) is not None:
        journal.chains_pending = True  # chains since the last close: kept at the next
    outcome = None if in_flight is None else fitted.pop(in_flight)
    refit.resume(data["refit_timer_ns"], in_flight, outcome)
    return journal


def history_with(history: pd.DataFrame, bars: Sequence[Bar]) -> pd.DataFrame:
    """The warm-up history followed by the stream's closed ``bars`` (those after it)."""
    if not bars:
        return history
    frame = pd.DataFrame(
        {
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "vix": [math.nan if b.vix is None else b.vix for b in bars],
        },
        index=pd.DatetimeIndex([b.ts for b in bars], name=history.index.name),
    )
    return pd.concat([history, frame[frame.index > history.index[-1]]])
