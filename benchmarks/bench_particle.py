"""Particle-filter benchmark (WORKLOADS.md sections 2 and 3): particle-steps per second.

Workloads, on the shared SV data set:

* ``bootstrap-pf N=10000 T=1000``: the ``particles`` library (``SMC`` with ``Bootstrap``
  on ``StochVol``, legacy ``np.random.seed(7)``), the vectorised NumPy reference, and the
  Rust ``BootstrapPF`` on 1 and 2 threads.
* ``ekpf N=10000 T=100``: the NumPy reference and the Rust ``EKPF`` on 1 and 2 threads.

The ratio column is taken against the NumPy reference. Each call builds its filter and
runs the whole series (the filter object is cheap next to the run). Check column: the
total log-likelihood, the filtered mean of h at T-1 and the number of resamplings; they
differ between implementations within Monte Carlo error, since the random streams differ.

Run: ``python -m benchmarks.bench_particle [--quick]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.timing import Row, format_table, measure
from rust_filters import EKPF, BootstrapPF
from rust_filters.reference.particle import ParticleResult, bootstrap_pf, ekpf

DATA = Path(__file__).parent / "spec" / "data" / "sv_T1000_seed20240601.csv"
MU, PHI, SIGMA = -1.02, 0.9702, 0.178
N = 10_000
BOOTSTRAP = f"bootstrap-pf N={N} T=1000"
EKPF_WORKLOAD = f"ekpf N={N} T=100"

BASELINES: dict[str, str] = {BOOTSTRAP: "numpy", EKPF_WORKLOAD: "numpy"}

Check = tuple[float, float, int]  # loglik, filtered mean at T-1, resamplings


def _load_y() -> np.ndarray:
    table = np.genfromtxt(DATA, delimiter=",", names=True)
    return np.asarray(table["y"], dtype=float)


def _fmt(check: Check) -> str:
    loglik, mean, resamples = check
    return f"loglik={loglik:.2f} mean_h={mean:.4f} resamples={resamples}"


def _particles_library(y: np.ndarray) -> Check:
    import particles
    from particles import state_space_models as ssm

    np.random.seed(7)
    model = ssm.StochVol(mu=MU, rho=PHI, sigma=SIGMA)
    # particles 0.3 keeps Bootstrap in state_space_models (0.4 also exports it at the top).
    fk = ssm.Bootstrap(ssm=model, data=y)
    smc = particles.SMC(fk=fk, N=N, resampling="systematic", ESSrmin=0.5)
    smc.run()
    mean = float(np.average(smc.X, weights=smc.W))
    return float(smc.logLt), mean, int(sum(smc.summaries.rs_flags))


def _numpy(run: Callable[..., ParticleResult], y: np.ndarray) -> Callable[[], Check]:
    def call() -> Check:
        r = run(y, N, mu=MU, phi=PHI, sigma=SIGMA, seed=7)
        return r.total_loglik, float(r.means[-1]), r.n_resamples

    return call


def _rust(cls: type[BootstrapPF] | type[EKPF], y: np.ndarray, threads: int) -> Callable[[], Check]:
    def call() -> Check:
        f = cls(N, mu=MU, phi=PHI, sigma=SIGMA, seed=7, threads=threads)
        f.filter(y)
        return f.loglik, f.mean(), f.n_resamples

    return call


def _row(
    workload: str, impl: str, threads: int, call: Callable[[], Check], T: int, quick: bool
) -> Row:
    checks: list[Check] = []

    def recorded() -> None:
        checks.append(call())

    if quick:
        timing = measure(recorded, min_calls=1, max_calls=1, budget_s=0.0)
    else:
        timing = measure(recorded)
    return Row(workload, impl, threads, timing, "particle-step", N * T, _fmt(checks[-1]))


def rows(quick: bool = False) -> list[Row]:
    """All rows; ``quick`` times one call per case instead of the full protocol."""
    y = _load_y()
    y100 = y[:100]
    out = [
        _row(BOOTSTRAP, "particles", 1, lambda: _particles_library(y), 1000, quick),
        _row(BOOTSTRAP, "numpy", 1, _numpy(bootstrap_pf, y), 1000, quick),
        _row(BOOTSTRAP, "rust", 1, _rust(BootstrapPF, y, 1), 1000, quick),
        _row(BOOTSTRAP, "rust-2thr", 2, _rust(BootstrapPF, y, 2), 1000, quick),
        _row(EKPF_WORKLOAD, "numpy", 1, _numpy(ekpf, y100), 100, quick),
        _row(EKPF_WORKLOAD, "rust", 1, _rust(EKPF, y100, 1), 100, quick),
        _row(EKPF_WORKLOAD, "rust-2thr", 2, _rust(EKPF, y100, 2), 100, quick),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one timed call per case")
    args = parser.parse_args()
    print(format_table(rows(args.quick), BASELINES))


if __name__ == "__main__":
    main()
