"""Screening the members' ranges for ones no other member comes near.

A member can go wild and still hand back a finite, ordered range: a particle filter whose
weights collapse on a crash-sized return once gave a five-day range of 1e-52 .. 1e58 with
status ok. Log-averaged with weight 0.1, that one part drags the ensemble's low to a
fraction of the price. A range whose log-width is :data:`IMPLAUSIBLE_WIDTH_RATIO` times
wider (or narrower) than the median of the usable members' is marked failed, with the
reason, so its weight is zero and the output says why.

The ratio is far outside anything real data gave: over the walk-forward on 2015–2018, the
widest member was 2.8 times the median width (``har_quantile`` on 2018-02-05) and the
narrowest 0.34 times (``varmax`` on 2015-08-25), so the screen never changes a forecast
there. With fewer than :data:`MIN_MEMBERS` usable ranges there is no majority to judge by,
and nothing is screened.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from models.base import PriceRange

IMPLAUSIBLE_WIDTH_RATIO = 10.0
MIN_MEMBERS = 3


def screen_implausible(parts: Mapping[str, PriceRange]) -> dict[str, PriceRange]:
    """``parts`` with every implausibly wide or narrow usable range replaced by a failure."""
    widths = {n: math.log(r.high / r.low) for n, r in parts.items() if r.usable}
    if len(widths) < MIN_MEMBERS:
        return dict(parts)
    median = statistics.median(widths.values())
    out = dict(parts)
    for name, width in widths.items():
        ratio = width / median if median > 0 else math.inf
        if ratio > IMPLAUSIBLE_WIDTH_RATIO or ratio < 1 / IMPLAUSIBLE_WIDTH_RATIO:
            r = parts[name]
            out[name] = PriceRange.failure(
                name, r.horizon, r.confidence, r.anchor,
                f"excluded: its range {r.low:.6g} .. {r.high:.6g} is {ratio:.3g} times as "
                f"wide as the members' median (allowed 1/{IMPLAUSIBLE_WIDTH_RATIO:g} .. "
                f"{IMPLAUSIBLE_WIDTH_RATIO:g})",
            )  # fmt: skip
    return out
