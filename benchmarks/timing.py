"""The timing protocol of ``benchmarks/spec/WORKLOADS.md``, shared by every benchmark.

One untimed warm-up call, then at least ``min_calls`` timed calls, continuing until
``budget_s`` of timed work or ``max_calls``; ``gc.collect()`` before each call, outside
the timing. Reports median / min / max seconds per call and the median cpu/wall ratio.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

# Single-threaded BLAS everywhere, as the protocol asks; set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


@dataclass(frozen=True)
class Timing:
    """Seconds per call over the timed calls."""

    median: float
    min: float
    max: float
    cpu_wall: float
    calls: int


def measure(
    call: Callable[[], object],
    *,
    min_calls: int = 5,
    max_calls: int = 25,
    budget_s: float = 0.5,
) -> Timing:
    """Time ``call`` with the protocol above."""
    call()  # warm-up: JIT, first touch of memory
    walls: list[float] = []
    ratios: list[float] = []
    spent = 0.0
    while len(walls) < min_calls or (spent < budget_s and len(walls) < max_calls):
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        call()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        walls.append(wall)
        ratios.append(cpu / wall if wall > 0 else float("nan"))
        spent += wall
    return Timing(
        median=statistics.median(walls),
        min=min(walls),
        max=max(walls),
        cpu_wall=statistics.median(ratios),
        calls=len(walls),
    )


@dataclass(frozen=True)
class Row:
    """One line of a benchmark table: a workload, an implementation and its timing."""

    workload: str
    implementation: str
    threads: int
    timing: Timing
    unit: str  # what `per_unit` divides by, e.g. "step", "particle-step", "path-step"
    units_per_call: float
    check: str = ""  # check value(s) printed beside the timing, e.g. the log-likelihood

    @property
    def seconds_per_unit(self) -> float:
        return self.timing.median / self.units_per_call


def format_table(rows: list[Row], baseline: dict[str, str]) -> str:
    """A Markdown table; ``ratio`` is the baseline implementation's median over this row's.

    ``baseline`` maps a workload to the implementation its ratio is taken against.
    """
    by_key = {(r.workload, r.implementation): r for r in rows}
    lines = [
        "| workload | implementation | thr | median | min | max | per unit | cpu/wall "
        "| vs baseline | check |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        base = by_key.get((r.workload, baseline.get(r.workload, "")))
        ratio = f"{base.timing.median / r.timing.median:.1f}×" if base else ""
        lines.append(
            f"| {r.workload} | {r.implementation} | {r.threads} | {_fmt(r.timing.median)} "
            f"| {_fmt(r.timing.min)} | {_fmt(r.timing.max)} "
            f"| {_fmt(r.seconds_per_unit)}/{r.unit} | {r.timing.cpu_wall:.2f} | {ratio} "
            f"| {r.check} |"
        )
    return "\n".join(lines)


def _fmt(seconds: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"
