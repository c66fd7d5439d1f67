"""The README's "From Python" example runs as written (on a shorter bundled history)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import connectors.data_sources as data_sources

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    section = README.read_text().split("## From Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README: no python block under 'From Python'"
    return match.group(1)


def test_the_readme_python_example_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    full = data_sources.load_history

    def shorter(ticker: str, days_back: int | None = None, **kw: Any) -> Any:
        # The whole history takes ~25 s to fit; 400 bars (no warm-up walk) show the same API.
        return full(ticker, 400, **kw)

    monkeypatch.setattr(data_sources, "load_history", shorter)
    scope: dict[str, Any] = {}
    exec(compile(_example(), str(README), "exec"), scope)
    fc = scope["fc"]
    assert fc.low_estimate < fc.range.anchor < fc.high_estimate
    assert fc.range.horizon == 5 and fc.range.path_low <= fc.low_estimate
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == list(fc.parts)
    assert {"tgarch", "delta_ukf", "jump_diffusion_vix"} <= set(fc.parts)
    assert sum(p.weight for p in fc.parts.values()) == pytest.approx(1.0)
