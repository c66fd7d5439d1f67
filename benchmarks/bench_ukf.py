"""UKF benchmark (benchmarks/spec/WORKLOADS.md section 1): µs per predict+update step.

Implementations: ``filterpy`` (2.0.0 ``UnscentedKalmanFilter`` + ``MerweScaledSigmaPoints``,
constructed inside the timed call), ``numpy`` (the reference in
``rust_filters.reference.ukf``), ``rust batch`` (one ``UKF.filter`` call for the series)
and ``rust per-step`` (one ``UKF.step`` call per observation from a Python loop, the
streaming pattern, with the observations as float lists prepared outside the timing).

Run: ``python -m benchmarks.bench_ukf [--quick]``.
"""

from __future__ import annotations

import argparse
import os

# Single-threaded BLAS (the protocol), set before NumPy loads: benchmarks.timing does the
# same, but the import order puts NumPy first. Idle OpenBLAS threads otherwise spin on
# this 2-core machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from filterpy.kalman import MerweScaledSigmaPoints, UnscentedKalmanFilter  # noqa: E402

from benchmarks.timing import Row, format_table, measure  # noqa: E402
from rust_filters._core import UKF, StochVolModel, StochVolPriceModel  # noqa: E402
from rust_filters.reference import ukf as ref  # noqa: E402

DATA = Path(__file__).parent / "spec" / "data" / "sv_T1000_seed20240601.csv"
WORKLOADS = {"ukf2-sv": "ukf2-sv T=1000", "ukf3-svp": "ukf3-svp T=1000"}
QUICK_T = 200
BASELINES: dict[str, str] = {
    **dict.fromkeys(WORKLOADS.values(), "filterpy"),
    **{f"{name} T={QUICK_T}": "filterpy" for name in WORKLOADS},
}

Array = np.ndarray
MU, PHI, SIGMA, V0, C_ABS = ref.MU, ref.PHI, ref.SIGMA, ref.V0, ref.C_ABS


def _check(x_T: Array, P_T: Array, sum_h: float) -> str:
    xs = ", ".join(f"{v:.12g}" for v in x_T)
    return f"x_T=[{xs}] tr(P_T)={np.trace(P_T):.11g} sum_h={sum_h:.11g}"


def _filterpy(name: str, zs: Array) -> tuple[Array, Array, float]:
    """The workload with filterpy, filter object built inside (as the protocol says)."""
    if name == "ukf2-sv":
        n, h_index = 2, 0

        def fx(x: Array, dt: float) -> Array:
            return np.array([MU + PHI * (x[0] - MU), x[1]])

        def hx(x: Array) -> Array:
            return np.array([x[1], C_ABS * np.exp(x[0] / 2)])

        x0, P0 = np.array([MU, 0.0]), np.diag([V0, 0.1**2])
        Q = np.diag([SIGMA**2, 0.01**2])
        R = np.diag([np.exp(MU), (1 - 2 / np.pi) * np.exp(MU)])
    else:
        n, h_index = 3, 2

        def fx(x: Array, dt: float) -> Array:
            return np.array([x[0] + x[1] - 0.005 * np.exp(x[2]), x[1], MU + PHI * (x[2] - MU)])

        def hx(x: Array) -> Array:
            return np.array([x[0], C_ABS * np.exp(x[2] / 2)])

        x0, P0 = np.array([100 * np.log(100), 0.0, MU]), np.diag([1.0, 0.1**2, V0])
        Q = np.diag([np.exp(MU), 0.01**2, SIGMA**2])
        R = np.diag([0.05**2, (1 - 2 / np.pi) * np.exp(MU)])
    points = MerweScaledSigmaPoints(n, alpha=0.1, beta=2.0, kappa=3.0 - n)
    f = UnscentedKalmanFilter(n, 2, 1.0, hx, fx, points)
    f.x, f.P, f.Q, f.R = x0, P0, Q, R
    sum_h = 0.0
    for z in zs:
        f.predict()
        f.update(z)
        sum_h += f.x[h_index]
    return f.x, f.P, sum_h


def _rust_filter(name: str) -> UKF:
    model = StochVolModel() if name == "ukf2-sv" else StochVolPriceModel()
    x0, P0 = model.workload_prior()
    return UKF(model, x0, P0)


def _rows_for(name: str, zs: Array, quick: bool) -> list[Row]:
    T = len(zs)
    workload = WORKLOADS[name] if T == 1000 else f"{name} T={T}"
    h_index = 0 if name == "ukf2-sv" else 2
    r = ref.load_workload(DATA)
    min_calls, max_calls, budget_s = (3, 5, 0.1) if quick else (5, 25, 0.5)

    def run_numpy() -> ref.UkfResult:
        if name == "ukf2-sv":
            return ref.ukf2_sv(r["r"][:T])
        return ref.ukf3_svp(r["r"][:T], r["p"][:T])

    def run_batch() -> tuple[Array, Array, Array]:
        return _rust_filter(name).filter(zs)

    z_lists = zs.tolist()

    def run_per_step() -> UKF:
        ukf = _rust_filter(name)
        step = ukf.step
        for z in z_lists:
            step(z)
        return ukf

    # Check values, from untimed runs of each implementation.
    fp = _filterpy(name, zs)
    res = run_numpy()
    means, covs, _ = run_batch()
    streamed = _rust_filter(name)
    sum_h = 0.0
    for z in z_lists:
        streamed.step(z)
        sum_h += float(streamed.x[h_index])
    cases: list[tuple[str, Callable[[], object], str]] = [
        ("filterpy", lambda: _filterpy(name, zs), _check(*fp)),
        (
            "numpy",
            run_numpy,
            _check(res.means[-1], res.covariances[-1], res.means[:, h_index].sum()),
        ),
        ("rust batch", run_batch, _check(means[-1], covs[-1], means[:, h_index].sum())),
        ("rust per-step", run_per_step, _check(streamed.x, streamed.P, sum_h)),
    ]
    return [
        Row(
            workload,
            impl,
            1,
            measure(call, min_calls=min_calls, max_calls=max_calls, budget_s=budget_s),
            "step",
            T,
            check,
        )
        for impl, call, check in cases
    ]


def rows(quick: bool = False) -> list[Row]:
    """Rows for ukf2-sv and ukf3-svp at T = 1000 (T = 200 when ``quick``)."""
    d = ref.load_workload(DATA)
    T = QUICK_T if quick else 1000
    r, p = d["r"][:T], d["p"][:T]
    return _rows_for("ukf2-sv", np.column_stack([r, np.abs(r)]), quick) + _rows_for(
        "ukf3-svp", np.column_stack([p, np.abs(r)]), quick
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 200 and fewer timed calls")
    args = parser.parse_args()
    print(format_table(rows(quick=args.quick), BASELINES))


if __name__ == "__main__":
    main()
