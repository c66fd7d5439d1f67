"""NumPy reference implementations of every algorithm in the Rust core.

They follow ``benchmarks/spec/WORKLOADS.md`` literally and favour clarity over speed: the
tests use them as the oracle and the benchmarks as the Python column.
"""
