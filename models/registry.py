"""Build ensemble members by their configured names.

The names are the ``ensemble.models[].name`` values of the config
(:data:`config.schema.MODEL_NAMES`). Imports are local so that a process that uses one
member does not pay for the others' libraries.
"""

from __future__ import annotations

from config.schema import MODEL_NAMES, MarkovConfig
from models.base import ForecastModel


def build_member(name: str, config: MarkovConfig) -> ForecastModel:
    """A fresh, unfitted member; seeds derive from ``config.seed``."""
    seed = config.seed
    threads = config.rust.num_threads or None
    if name == "tgarch":
        from models.tgarch_model import TGARCHModel

        return TGARCHModel(seed=seed)
    if name == "arima":
        from models.arima_model import ARIMAModel

        # ~5 years, like the other members: the full 20 years made each refit 4x slower
        # for the member with the smallest weight.
        return ARIMAModel(seed=seed + 1, window=config.data.default_days_back)
    if name == "varmax":
        from models.varmax_model import VARMAXModel

        return VARMAXModel(seed=seed + 2)
    if name == "jump_diffusion_vix":
        from models.jump_diffusion_vix import JumpDiffusionVIX

        return JumpDiffusionVIX(
            seed=seed + 3,
            threads=threads,
            horizons=config.forecast.horizons,
            vix_coefficient=config.vix.coefficient,
        )
    if name == "ekpf":
        from models.ekpf_model import EKPFModel

        return EKPFModel(seed=seed + 4, threads=threads)
    if name == "delta_ukf":
        from models.delta_ukf import DeltaUKF

        return DeltaUKF(seed=seed + 5, vix_coefficient=config.vix.coefficient)
    if name == "har_quantile":
        from models.har_quantile import HARQuantileModel

        return HARQuantileModel(horizons=config.forecast.horizons)
    if name == "quantile_regression":
        from models.quantile_regression import QuantileRegressionModel

        return QuantileRegressionModel(
            horizons=config.forecast.horizons, confidence=config.forecast.confidence
        )
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)}")
