"""Monte Carlo GBM and Merton jump diffusion (``benchmarks/spec/WORKLOADS.md`` 4 and 5).

    python -m benchmarks.bench_monte_carlo            # full sizes
    python -m benchmarks.bench_monte_carlo --quick    # smaller sizes, fewer calls

Per call: simulate N paths x T steps and return the quantiles (0.05 .. 0.95, numpy's
linear rule) of the terminal price and of each path's minimum and maximum. Unit:
path-step (N*T). Ratio against the best NumPy reference (``numpy`` for GBM,
``numpy-sparse`` for Merton). Check value: the median terminal price (each
implementation has its own random stream, so these agree only to sampling error).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numba
import numpy as np

import rust_filters
from benchmarks.timing import Row, format_table, measure
from rust_filters.reference import monte_carlo as ref

S0, MU, SIGMA, DT = 100.0, 0.05, 0.20, 1 / 252
LAM, MU_J, SIGMA_J = 1.0, -0.05, 0.10
SEED = 11
LEVELS = np.array(ref.LEVELS)

FULL_SIZES = ((10_000, 5), (10_000, 252), (1_000_000, 5))
QUICK_SIZES = ((10_000, 5), (10_000, 50), (100_000, 5))


def _workload(model: str, n: int, t: int) -> str:
    return f"mc-{model} {n:,}×{t}"


BASELINES: dict[str, str] = {
    _workload(model, n, t): ("numpy" if model == "gbm" else "numpy-sparse")
    for model in ("gbm", "merton")
    for n, t in FULL_SIZES + QUICK_SIZES
}


@numba.njit(nogil=True, cache=False)
def _numba_paths(
    rng: np.random.Generator,
    n_paths: int,
    n_steps: int,
    drift: float,
    sd: float,
    lam_dt: float,
    mu_j: float,
    sigma_j: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step one normal and (lam_dt > 0) one Poisson draw, a jump normal if K > 0."""
    log_terminal = np.empty(n_paths)
    log_low = np.empty(n_paths)
    log_high = np.empty(n_paths)
    for i in range(n_paths):
        x = 0.0
        lo = 0.0
        hi = 0.0
        for _ in range(n_steps):
            x += drift + sd * rng.standard_normal()
            if lam_dt > 0.0:
                k = rng.poisson(lam_dt)
                if k > 0:
                    x += mu_j * k + sigma_j * math.sqrt(k) * rng.standard_normal()
            lo = min(lo, x)
            hi = max(hi, x)
        log_terminal[i] = x
        log_low[i] = lo
        log_high[i] = hi
    return log_terminal, log_low, log_high


def _numba_summary(n: int, t: int, lam: float) -> float:
    drift = (MU - 0.5 * SIGMA**2 - lam * ref.kappa(MU_J, SIGMA_J)) * DT
    rng = np.random.default_rng(SEED)
    x, lo, hi = _numba_paths(rng, n, t, drift, SIGMA * math.sqrt(DT), lam * DT, MU_J, SIGMA_J)
    terminal = np.quantile(S0 * np.exp(x), LEVELS)
    np.quantile(S0 * np.exp(lo), LEVELS)
    np.quantile(S0 * np.exp(hi), LEVELS)
    return float(terminal[2])


def _numpy_call(
    simulate: Callable[..., ref.ReferenceSummary], args: tuple[float, ...]
) -> Callable[[], float]:
    def call() -> float:
        return float(simulate(*args, dt=DT, levels=LEVELS, seed=SEED).terminal[2])

    return call


def _rust_call(model: str, n: int, t: int, threads: int) -> Callable[[], float]:
    def call() -> float:
        if model == "gbm":
            s = rust_filters.simulate_gbm(
                S0, MU, SIGMA, n, t, dt=DT, levels=LEVELS, seed=SEED, threads=threads
            )
        else:
            s = rust_filters.simulate_merton(
                S0, MU, SIGMA, LAM, MU_J, SIGMA_J, n, t,
                dt=DT, levels=LEVELS, seed=SEED, threads=threads,
            )  # fmt: skip
        return float(s.terminal[2])

    return call


def _implementations(model: str, n: int, t: int) -> list[tuple[str, int, Callable[[], float]]]:
    """(name, threads, call returning the median terminal price)."""
    if model == "gbm":
        args: tuple[float, ...] = (S0, MU, SIGMA, n, t)
        numpy_impls: list[tuple[str, Callable[..., ref.ReferenceSummary]]] = [
            ("numpy", ref.gbm_numpy),
            ("numpy-naive", ref.gbm_numpy_naive),
        ]
        lam = 0.0
    else:
        args = (S0, MU, SIGMA, LAM, MU_J, SIGMA_J, n, t)
        numpy_impls = [
            ("numpy", ref.merton_numpy),
            ("numpy-sparse", ref.merton_numpy_sparse),
            ("numpy-naive", ref.merton_numpy_naive),
        ]
        lam = LAM
    impls = [(name, 1, _numpy_call(f, args)) for name, f in numpy_impls]
    impls.append(("numba", 1, lambda: _numba_summary(n, t, lam)))
    impls.append(("rust", 1, _rust_call(model, n, t, 1)))
    impls.append(("rust-2thr", 2, _rust_call(model, n, t, 2)))
    return impls


def rows(quick: bool = False) -> list[Row]:
    """Every implementation on every size, GBM then Merton."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    out: list[Row] = []
    for model in ("gbm", "merton"):
        for n, t in sizes:
            workload = _workload(model, n, t)
            for name, threads, call in _implementations(model, n, t):
                check = call()
                if quick:
                    timing = measure(call, min_calls=3, max_calls=5, budget_s=0.2)
                else:
                    timing = measure(call)
                row = Row(workload, name, threads, timing, "path-step", n * t, f"{check:.4f}")
                out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer calls")
    args = parser.parse_args(argv)
    print(format_table(rows(quick=args.quick), BASELINES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
