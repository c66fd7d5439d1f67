"""Read YAML configuration once, at the edge, into a validated :class:`MarkovConfig`."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError
from config.schema import MarkovConfig
from config.validation import build, describe, to_plain

SHIPPED = ("default.yaml", "production.yaml")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (plain PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, str | int | float | bool) and key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigError(f"line {line}", f"duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class ConfigLoader:
    """Entry points: :meth:`load` a file, :meth:`default`, :meth:`from_dict`, and
    :meth:`with_overrides` (e.g. CLI flags), which re-validates the whole result."""

    @staticmethod
    def load(path: str | PathLike[str]) -> MarkovConfig:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(str(path), "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"cannot read: {exc}") from None
        return _from_text(text, str(path))

    @staticmethod
    def load_arg(arg: str | PathLike[str]) -> MarkovConfig:
        """``--config ARG``: a YAML file, or a shipped config by name (``default``,
        ``production``, or the README's ``config/production.yaml``) where no such file
        exists here, so that the commands work from any directory after a wheel install."""
        path = Path(arg)
        if path.exists():
            return ConfigLoader.load(path)
        text = str(arg).removeprefix("./")
        name = text if text.endswith(".yaml") else f"{text}.yaml"
        if name.removeprefix("config/") in SHIPPED:
            return ConfigLoader.shipped(name.removeprefix("config/"))
        shipped = ", ".join(n.removesuffix(".yaml") for n in SHIPPED)
        raise ConfigError(str(path), f"file not found (shipped configs by name: {shipped})")

    @staticmethod
    def default() -> MarkovConfig:
        """The shipped ``config/default.yaml`` (embedded mode, no broker)."""
        return ConfigLoader.shipped("default.yaml")

    @staticmethod
    def production() -> MarkovConfig:
        """The shipped ``config/production.yaml`` (Kafka on localhost:9092)."""
        return ConfigLoader.shipped("production.yaml")

    @staticmethod
    def shipped(name: str) -> MarkovConfig:
        if name not in SHIPPED:
            raise ConfigError(
                "config", f"no shipped config {name!r}; shipped: {', '.join(SHIPPED)}"
            )
        # importlib.resources finds the file inside an installed wheel too, zipped or not.
        text = resources.files("config").joinpath(name).read_text(encoding="utf-8")
        return _from_text(text, name)

    @staticmethod
    def from_dict(data: Mapping[str, Any] | None) -> MarkovConfig:
        """Validate plain data (as YAML gives it); missing keys take the defaults."""
        return build(MarkovConfig, {} if data is None else data)

    @staticmethod
    def with_overrides(
        config: MarkovConfig, overrides: Mapping[str, Any] | Iterable[str]
    ) -> MarkovConfig:
        """Apply ``{"forecast.horizon": 10}`` or ``["forecast.horizon=10", ...]`` (values
        in the ``key=value`` form are read as YAML, so ``10`` is an int and ``[1, 5]`` a
        list) to ``config`` and validate the result as a whole. A mapping set on a section
        updates only the keys it names; a list replaces the whole list."""
        pairs = (
            overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
        )
        data = to_plain(config)
        for key, value in pairs:
            set_path(data, key, copy.deepcopy(value))
        return ConfigLoader.from_dict(data)

    @staticmethod
    def to_yaml(config: MarkovConfig) -> str:
        return yaml.safe_dump(to_plain(config), sort_keys=False)


def _from_text(text: str, source: str) -> MarkovConfig:
    data = parse_yaml(text, source)
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(source, f"expected a mapping at the top level, got {describe(data)}")
    return ConfigLoader.from_dict(data)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe
    except ConfigError as exc:
        raise ConfigError(f"{source} {exc.field}", exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source} line {mark.line + 1} column {mark.column + 1}" if mark else source
        raise ConfigError(where, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, f"invalid YAML: {str(exc).splitlines()[0]}") from None


def parse_override(item: str) -> tuple[str, Any]:
    """``"stream.mode=kafka"`` -> ``("stream.mode", "kafka")``; the value is read as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError("override", f"expected key=value, got {item!r}")
    return key.strip(), parse_yaml(raw, f"override {key.strip()}")


_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b[2].c`` in nested dicts/lists; an unknown key is left for validation to name."""
    steps: list[str | int] = []
    for part in key.split("."):
        m = _STEP.fullmatch(part)
        if m is None:
            raise ConfigError(
                key, "not a config field path (expected e.g. ensemble.models[2].weight)"
            )
        steps.append(m.group(1))
        steps.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    node: Any = data
    walked = ""
    for step, nxt in zip(steps, [*steps[1:], None], strict=True):
        here = (
            f"{walked}[{step}]"
            if isinstance(step, int)
            else (f"{walked}.{step}" if walked else step)
        )
        if isinstance(step, int):
            if not isinstance(node, list):
                raise ConfigError(walked, f"is not a list, cannot index [{step}]")
            if step >= len(node):
                raise ConfigError(here, f"index out of range ({walked} has {len(node)} items)")
        elif not isinstance(node, dict):
            raise ConfigError(walked, f"is {describe(node)}, not a section; cannot set {step!r}")
        if nxt is None:
            current = node[step] if isinstance(step, int) or step in node else None
            node[step] = _merge(current, value)
        else:
            if isinstance(step, str) and step not in node:
                node[step] = {}  # validation reports the unknown key with its full path
            node = node[step]
        walked = here


def _merge(current: Any, value: Any) -> Any:
    """A mapping set on a section updates it key by key (so ``stream={"mode": "kafka"}``
    keeps the tickers); anything else replaces."""
    if isinstance(current, dict) and isinstance(value, Mapping):
        merged = dict(current)
        for key, item in value.items():
            merged[key] = _merge(current.get(key), item)
        return merged
    return value
