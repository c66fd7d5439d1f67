"""The core benchmark: every workload of ``benchmarks/spec/WORKLOADS.md``, one table.

    python benchmarks/core.py            # full sizes (a few minutes)
    python benchmarks/core.py --quick    # smaller, for a smoke run
    python benchmarks/core.py --only ukf,mc --write-readme

Rows come from ``bench_ukf``, ``bench_particle`` and ``bench_monte_carlo``; every column
is measured in the same run. ``--write-readme`` replaces the table between the
``<!-- core-benchmark -->`` markers of README.md with this run's.
"""

from __future__ import annotations

import os

# Single-threaded BLAS, as the protocol asks: set before anything imports numpy.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_monte_carlo, bench_particle, bench_ukf  # noqa: E402
from benchmarks.timing import Row, format_table  # noqa: E402

SUITES = {"ukf": bench_ukf, "pf": bench_particle, "mc": bench_monte_carlo}
README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- core-benchmark -->", "<!-- /core-benchmark -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer calls")
    parser.add_argument(
        "--only", default=",".join(SUITES), help=f"comma-separated subset of {sorted(SUITES)}"
    )
    parser.add_argument("--write-readme", action="store_true", help="update README.md's table")
    args = parser.parse_args(argv)

    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        parser.error(f"--only: unknown suite(s) {unknown}; allowed: {sorted(SUITES)}")

    started = time.perf_counter()
    rows: list[Row] = []
    baselines: dict[str, str] = {}
    for name in chosen:
        suite = SUITES[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(suite.rows(quick=args.quick))
        baselines.update(suite.BASELINES)

    header = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {'quick' if args.quick else 'full'} sizes; "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    table = format_table(rows, baselines)
    print(header)
    print(table)
    if args.write_readme:
        _write_readme(f"{header}\n\n{table}\n")
    return 0


def _write_readme(block: str) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block to replace")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")


if __name__ == "__main__":
    raise SystemExit(main())
