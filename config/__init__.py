"""Configuration: YAML read and validated once at the edge into frozen dataclasses.

``ConfigLoader.load(path)``, ``ConfigLoader.default()`` (embedded mode) and
``ConfigLoader.production()`` (Kafka) return a :class:`MarkovConfig`;
``ConfigLoader.with_overrides(config, ["forecast.horizon=10"])`` re-validates. Every problem
is a :class:`ConfigError` whose message is one line naming the field.
"""

from config.errors import ConfigError
from config.loader import ConfigLoader
from config.schema import MODEL_NAMES, REGIMES, MarkovConfig

__all__ = ["MODEL_NAMES", "REGIMES", "ConfigError", "ConfigLoader", "MarkovConfig"]
