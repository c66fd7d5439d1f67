"""The source distribution: a wheel is built from it (``pip install markov-*.tar.gz``,
``python -m build``), so it must carry the Rust crate as well as the Python packages and
the data they ship; build output and local environments stay out."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_sdist_carries_the_crate_and_the_shipped_data(tmp_path: Path) -> None:
    # Once it had no rust_filters/src, Cargo.toml or Cargo.lock: a wheel built from it
    # failed with "manifest path rust_filters/Cargo.toml does not exist".
    subprocess.run(
        [sys.executable, "-m", "maturin", "sdist", "--out", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    (sdist,) = tmp_path.glob("markov-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    crate = {"rust_filters/Cargo.toml", "rust_filters/Cargo.lock", "rust_filters/src/lib.rs"}
    assert crate <= names
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "rust_filters" / "src").rglob("*.rs")}
    assert expected <= names
    shipped = {
        "pyproject.toml", "README.md", "LICENSE", "rust_filters/_core.pyi",
        "rust_filters/py.typed", "config/default.yaml", "config/production.yaml",
        "models/__init__.py", "stream/__init__.py", "connectors/__init__.py",
    }  # fmt: skip
    assert shipped <= names
    assert any(n.startswith("stream/feeds/") and ".jsonl" in n for n in names)
    assert not [n for n in names if n.startswith(("rust_filters/target/", ".venv/", "tests/"))]
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
