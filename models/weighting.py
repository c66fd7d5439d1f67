"""Dynamic ensemble weights: base × VIX regime × option-chain factors × recent skill.

For member ``i`` at an origin,

    w_i ∝ base_i · regime_i(VIX) · option_i · skill_i,

normalised over the members whose range is usable (a failed or missing member gets 0,
and the output says so).

* ``base_i``: the configured weight.
* ``regime_i``: the configured multiplier of the member for the VIX regime (``low`` below
  ``vix.low_threshold``, ``high`` above ``vix.high_threshold``, else ``normal``); with no
  VIX known, the regime is ``normal``.
* ``option_i``: option-chain factors from the Delta UKF's filtered smile. A put skew
  steeper than its trailing average (z-score ``z_skew``, positive = richer puts) says the
  market prices more downside: the members that carry jumps and the chain itself gain,
  ``exp(skew_strength · max(z_skew, 0))``; a fresh chain raises the chain-based member by
  ``1 + implied_range_strength``.
* ``skill_i = (IS_best / IS_i) ** (4 · skill_strength)``: the mean interval score of the
  member's resolved forecasts over the skill window, relative to the best member, so a
  member 10 % worse than the best keeps about two thirds of its weight (at strength 1).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from config.schema import MODEL_NAMES, MarkovConfig, Regime

# Members whose ranges carry jump risk or come from the chain: the skew factor favours them.
SKEW_SENSITIVE = frozenset({"jump_diffusion_vix", "delta_ukf"})
CHAIN_MEMBER = "delta_ukf"
SKILL_EXPONENT = 4.0


@dataclass(frozen=True)
class OptionSignals:
    """What the option chain says at an origin (None: no chain seen yet)."""

    skew_z: float | None = None  # z-score of the put skew against its trailing history
    fresh_chain: bool = False  # a chain arrived since the previous bar


@dataclass(frozen=True)
class WeightBreakdown:
    """Every factor of every member, so the output can say why a weight is what it is."""

    regime: Regime
    base: Mapping[str, float]
    regime_factor: Mapping[str, float]
    option_factor: Mapping[str, float]
    skill_factor: Mapping[str, float]
    weights: Mapping[str, float]  # normalised; 0 for unusable members


# A member's skill counts once it has this many resolved forecasts (or a full window):
# one unlucky first day must not take most of a new member's weight. On the pre-2015
# replays it moved the four tables' mean by −0.28 % on 2014, when the VIX members enter,
# and by −0.01 % on 2010–2013, where every member has years of scores.
MIN_SKILL_SCORES = 20


@dataclass
class SkillTracker:
    """Rolling mean interval score (as % of the anchor) of each member's resolved forecasts."""

    window: int
    scores: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, member: str, interval_score_pct: float) -> None:
        if math.isfinite(interval_score_pct):
            self.scores.setdefault(member, deque(maxlen=self.window)).append(interval_score_pct)

    def mean(self, member: str) -> float | None:
        """The mean score, or None while fewer than ``MIN_SKILL_SCORES`` are known."""
        s = self.scores.get(member)
        if not s or len(s) < min(MIN_SKILL_SCORES, self.window):
            return None
        return sum(s) / len(s)


def regime_of(config: MarkovConfig, vix: float | None) -> Regime:
    if vix is None or not math.isfinite(vix):
        return "normal"
    return config.vix.regime(vix)


def compute_weights(
    config: MarkovConfig,
    usable: Iterable[str],
    *,
    vix: float | None,
    options: OptionSignals,
    skill: SkillTracker,
    members: Iterable[str] | None = None,
    base_weights: Mapping[str, float] | None = None,
) -> WeightBreakdown:
    """The normalised weights of ``members`` (default: the configured, enabled ones).

    ``base_weights`` overrides the configured base weights (members outside the config,
    e.g. a baseline in a test, have a regime multiplier of 1).
    """
    names = list(members) if members is not None else list(config.ensemble.enabled_names)
    usable_set = set(usable)
    regime = regime_of(config, vix)
    table = config.weighting.regime_multipliers
    strengths = config.weighting.option_factors

    base = {
        n: (base_weights[n] if base_weights is not None else config.ensemble.weight(n))
        for n in names
    }
    regime_f = {
        n: table.for_model(n).for_regime(regime) if n in MODEL_NAMES else 1.0 for n in names
    }
    option_f: dict[str, float] = {}
    for n in names:
        f = 1.0
        if options.skew_z is not None and n in SKEW_SENSITIVE:
            f *= math.exp(strengths.skew * max(options.skew_z, 0.0))
        if options.fresh_chain and n == CHAIN_MEMBER:
            f *= 1.0 + strengths.implied_range
        option_f[n] = f

    means = {n: skill.mean(n) for n in names if n in usable_set}
    known = [m for m in means.values() if m is not None and m > 0]
    best = min(known) if known else None
    power = SKILL_EXPONENT * config.weighting.skill_strength
    skill_f = {}
    for n in names:
        m = means.get(n)
        skill_f[n] = (best / m) ** power if best is not None and m is not None and m > 0 else 1.0

    raw = {
        n: (base[n] * regime_f[n] * option_f[n] * skill_f[n] if n in usable_set else 0.0)
        for n in names
    }
    total = sum(raw.values())
    weights = {n: (v / total if total > 0 else 0.0) for n, v in raw.items()}
    return WeightBreakdown(regime, base, regime_f, option_f, skill_f, weights)
