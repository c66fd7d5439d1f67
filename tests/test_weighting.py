"""Ensemble weights: base × VIX regime × option factors × skill (models/weighting.py)."""

from __future__ import annotations

import math

import pytest

from config.loader import ConfigLoader
from config.schema import MarkovConfig
from models.weighting import (
    MIN_SKILL_SCORES,
    OptionSignals,
    SkillTracker,
    compute_weights,
    regime_of,
)

MEMBERS = ("tgarch", "delta_ukf", "jump_diffusion_vix", "ekpf", "arima", "varmax")


def _config(**weighting: object) -> MarkovConfig:
    return ConfigLoader.from_dict({"weighting": weighting} if weighting else {})


def _weights(config: MarkovConfig, *, vix: float | None = 15.0, usable: tuple[str, ...] = MEMBERS,
             options: OptionSignals | None = None, skill: SkillTracker | None = None
             ) -> dict[str, float]:  # fmt: skip
    out = compute_weights(
        config, usable, vix=vix, options=options or OptionSignals(),
        skill=skill or SkillTracker(60),
    )  # fmt: skip
    return dict(out.weights)


@pytest.mark.parametrize(
    ("vix", "regime"),
    [(10.0, "low"), (12.49, "low"), (12.5, "normal"), (18.5, "normal"), (18.51, "high"),
     (40.0, "high"), (None, "normal"), (math.nan, "normal")],
)  # fmt: skip
def test_regime_follows_the_configured_thresholds(vix: float | None, regime: str) -> None:
    assert regime_of(_config(), vix) == regime


@pytest.mark.parametrize("vix", [10.0, 15.0, 25.0])
def test_weights_are_base_times_regime_multiplier(vix: float) -> None:
    config = _config()
    regime = regime_of(config, vix)
    w = _weights(config, vix=vix)
    table = config.weighting.regime_multipliers
    raw = {n: config.ensemble.weight(n) * table.for_model(n).for_regime(regime) for n in MEMBERS}
    total = sum(raw.values())
    for n in MEMBERS:
        assert w[n] == pytest.approx(raw[n] / total, rel=1e-12)
    assert sum(w.values()) == pytest.approx(1.0, rel=1e-12)


def test_high_vix_moves_weight_to_the_jump_model_and_away_from_arima() -> None:
    config = _config()
    low, high = _weights(config, vix=10.0), _weights(config, vix=30.0)
    # Default multipliers: jump_diffusion_vix 0.7 -> 1.5, arima 1.2 -> 0.6.
    ratio_low = low["jump_diffusion_vix"] / low["arima"]
    ratio_high = high["jump_diffusion_vix"] / high["arima"]
    assert ratio_high / ratio_low == pytest.approx((1.5 / 0.6) / (0.7 / 1.2), rel=1e-12)


@pytest.mark.parametrize("strength", [6.0, 1.0, 0.5, 0.0])
def test_skill_power_law(strength: float) -> None:
    # Member arima scores 10 % worse than the best: it keeps (1/1.1)^(4·strength) of its
    # weight relative to the others (about two thirds at strength 1).
    config = _config(skill_strength=strength)
    skill = SkillTracker(60)
    for n in MEMBERS:
        for _ in range(MIN_SKILL_SCORES):
            skill.add(n, 1.1 if n == "arima" else 1.0)
    plain = _weights(config)
    scored = _weights(config, skill=skill)
    factor = (1 / 1.1) ** (4 * strength)
    relative = (scored["arima"] / scored["tgarch"]) / (plain["arima"] / plain["tgarch"])
    assert relative == pytest.approx(factor, rel=1e-12)


def test_skill_window_forgets_old_scores() -> None:
    skill = SkillTracker(3)
    for v in (10.0, 1.0, 2.0, 3.0, math.nan):  # NaN (an unscorable forecast) is ignored
        skill.add("tgarch", v)
    assert skill.mean("tgarch") == pytest.approx(2.0)
    assert skill.mean("arima") is None


def test_skill_needs_enough_scores_to_count() -> None:
    # One unlucky day must not take a member's weight: its skill counts from
    # MIN_SKILL_SCORES resolved forecasts on (or a full, shorter window).
    config = _config(skill_strength=6.0)
    skill = SkillTracker(250)
    for i in range(MIN_SKILL_SCORES):
        for n in MEMBERS:
            skill.add(n, 5.0 if n == "arima" and i == 0 else 1.0)
        counted = i + 1 == MIN_SKILL_SCORES
        assert (skill.mean("arima") is not None) is counted
        factor = compute_weights(
            config, MEMBERS, vix=15.0, options=OptionSignals(), skill=skill
        ).skill_factor["arima"]
        assert (factor < 0.5) is counted and (factor == 1.0) is not counted
    short = SkillTracker(3)
    for v in (1.0, 2.0, 3.0):
        short.add("tgarch", v)
    assert short.mean("tgarch") == pytest.approx(2.0)


def test_option_signals() -> None:
    config = _config()
    plain = _weights(config)
    skewed = _weights(config, options=OptionSignals(skew_z=2.0))
    # exp(0.25 · 2) on the skew-sensitive members (the jump model and the chain) only.
    up = math.exp(0.25 * 2.0)
    rel = {n: (skewed[n] / skewed["tgarch"]) / (plain[n] / plain["tgarch"]) for n in MEMBERS}
    assert rel["jump_diffusion_vix"] == pytest.approx(up, rel=1e-12)
    assert rel["delta_ukf"] == pytest.approx(up, rel=1e-12)
    assert rel["ekpf"] == pytest.approx(1.0, rel=1e-12)
    # A flatter skew than usual (negative z) does not move weights.
    assert _weights(config, options=OptionSignals(skew_z=-2.0)) == pytest.approx(plain)
    fresh = _weights(config, options=OptionSignals(fresh_chain=True))
    rel_fresh = (fresh["delta_ukf"] / fresh["tgarch"]) / (plain["delta_ukf"] / plain["tgarch"])
    assert rel_fresh == pytest.approx(1.5, rel=1e-12)  # 1 + implied_range strength 0.5


def test_unusable_members_get_zero_and_the_rest_renormalise() -> None:
    config = _config()
    usable = ("tgarch", "jump_diffusion_vix")
    w = _weights(config, usable=usable)
    assert w["delta_ukf"] == 0.0 and w["ekpf"] == 0.0
    assert w["tgarch"] + w["jump_diffusion_vix"] == pytest.approx(1.0, rel=1e-12)
    # An unusable member's score does not set the scale for the others: were the best
    # score ekpf's (10x better), the scored tgarch would be scaled down against the
    # unscored jump member (factor 1), and the weight would move to the latter.
    skill = SkillTracker(60)
    for _ in range(MIN_SKILL_SCORES):
        skill.add("ekpf", 0.1)
        skill.add("tgarch", 1.0)
    out = compute_weights(config, usable, vix=15.0, options=OptionSignals(), skill=skill)
    assert out.skill_factor["tgarch"] == out.skill_factor["jump_diffusion_vix"] == 1.0
    assert dict(out.weights) == pytest.approx(w)
    assert set(_weights(config, usable=()).values()) == {0.0}


def test_base_weights_override_and_members_outside_the_config() -> None:
    config = _config()
    out = compute_weights(
        config, ["tgarch", "baseline"], vix=30.0, options=OptionSignals(), skill=SkillTracker(5),
        members=["tgarch", "baseline"], base_weights={"tgarch": 1.0, "baseline": 1.0},
    )  # fmt: skip
    assert out.regime_factor == {"tgarch": 1.2, "baseline": 1.0}
    assert out.weights["tgarch"] / out.weights["baseline"] == pytest.approx(1.2, rel=1e-12)


@pytest.mark.parametrize("scale", [0.05, 0.5, 1.0, 20.0])
def test_skill_factor_depends_only_on_the_ratio_of_scores(scale: float) -> None:
    """IS % is in arbitrary units (a 1-day interval scores well below 1 %): scaling every
    member's scores leaves the skill factors at (best / IS_i) ** (4 · strength)."""
    config = _config(skill_strength=1.0)
    skill = SkillTracker(60)
    for n in MEMBERS:
        for _ in range(MIN_SKILL_SCORES):
            skill.add(n, scale * (1.1 if n == "arima" else 1.0))
    out = compute_weights(config, MEMBERS, vix=15.0, options=OptionSignals(), skill=skill)
    assert out.skill_factor["arima"] == pytest.approx((1 / 1.1) ** 4, rel=1e-12)
    assert out.skill_factor["tgarch"] == pytest.approx(1.0, rel=1e-12)


def test_a_member_with_a_zero_mean_score_neither_sets_the_scale_nor_divides_by_zero() -> None:
    """A zero mean IS (a degenerate range hit exactly) carries no ranking information: it
    must not become the 'best' (which would zero every other member) nor be divided by."""
    config = _config(skill_strength=1.0)
    skill = SkillTracker(60)
    for _ in range(MIN_SKILL_SCORES):
        skill.add("ekpf", 0.0)
        skill.add("tgarch", 1.0)
        skill.add("arima", 2.0)
    out = compute_weights(config, MEMBERS, vix=15.0, options=OptionSignals(), skill=skill)
    assert out.skill_factor["ekpf"] == 1.0
    assert out.skill_factor["tgarch"] == pytest.approx(1.0, rel=1e-12)
    assert out.skill_factor["arima"] == pytest.approx(0.5**4, rel=1e-12)
    assert all(out.weights[n] > 0 for n in ("ekpf", "tgarch", "arima"))


def test_small_raw_weights_are_normalised_too() -> None:
    """Normalisation divides by any positive total, not only by totals above 1."""
    config = _config()
    out = compute_weights(
        config, ["a", "b"], vix=15.0, options=OptionSignals(), skill=SkillTracker(5),
        members=["a", "b"], base_weights={"a": 0.1, "b": 0.3},
    )  # fmt: skip
    assert out.weights["a"] == pytest.approx(0.25, rel=1e-12)
    assert out.weights["b"] == pytest.approx(0.75, rel=1e-12)
