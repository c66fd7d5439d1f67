"""Recorded feeds that ship with the package (data beside the code that reads it).

``BUNDLED_FEED``: ``SPX`` from 2018-01-02 to 2018-03-29 (the February 2018 VIX spike),
in the format of :mod:`connectors.feed_file`: minute ticks, the VIX every 15 minutes
and option-chain snapshots every 30 minutes. The daily OHLC, volume and VIX closes are
real (``arch.data``); the intraday path, intraday VIX and all option chains are
**synthetic** (see :mod:`stream.feeds.generate`, which rebuilds the file byte for byte,
and :mod:`models.smile`). ``BUNDLED_META`` is its JSON sidecar (source, seed, counts,
sha256).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

BUNDLED_FEED = Path(__file__).with_name("spx_2018q1.jsonl.gz")
BUNDLED_META = Path(__file__).with_name("spx_2018q1.meta.json")


def load_bundled_meta() -> dict[str, Any]:
    """The bundled feed's metadata (counts, date range, seed, synthetic note)."""
    meta: dict[str, Any] = orjson.loads(BUNDLED_META.read_bytes())
    return meta
