"""The one error type of the configuration edge."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, printable as one line naming the field.

    ``str(error)`` is ``config error: <field>: <problem>``, e.g.
    ``config error: ensemble.models[2].weight: must be >= 0, got -0.1``.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(
            f"config error: {field}: {problem}" if field else f"config error: {problem}"
        )
