"""Build frozen config dataclasses from plain YAML data, checking every field on the way.

Hand-written rather than pydantic: pydantic is not among the project's dependencies, and
the edge needs exactly one line per problem in a fixed shape (``<field path>: <problem>``),
which a ~150-line walker over the dataclasses' type hints gives directly.

What the walker understands, from each field's type hint: ``bool``, ``int``, ``float``
(finite; an int is accepted), ``str`` (non-empty), ``Literal[...]`` (the allowed values are
named in the error), ``X | None``, ``tuple[X, ...]`` (from a YAML list) and nested frozen
dataclasses (from a YAML mapping; unknown keys are errors). Bounds come from the field's
metadata (``ge``, ``gt``, ``le``, ``lt``, ``min_items``, ``pattern``, ``pattern_hint``,
``what`` to word a Literal's error as "unknown <what>");
a dataclass may define ``check(path)`` for rules that involve several fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from config.errors import ConfigError

T = TypeVar("T")


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def describe(value: object) -> str:
    """A value as an error message shows it: scalars as written, containers by kind."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def build(cls: type[T], raw: object, path: str = "") -> T:
    """Check ``raw`` (a mapping from YAML) against dataclass ``cls`` and return an instance."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path or "top level", f"expected a mapping, got {describe(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in fields:
            raise ConfigError(join(path, str(key)), _unknown_key(str(key), list(fields)))
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        where = join(path, name)
        if name in raw:
            kwargs[name] = convert(hints[name], raw[name], where, f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(where, "required")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(path)
    return obj


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; allowed: {', '.join(allowed)}"


def convert(tp: Any, value: object, path: str, meta: Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(get_args(tp)):
            return None
        return convert(args[0], value, path, meta)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or isinstance(value, bool):
            names = ", ".join(str(a) for a in allowed)
            if "what" in meta:  # e.g. "unknown model 'garch'; allowed: tgarch, ..."
                raise ConfigError(
                    path, f"unknown {meta['what']} {describe(value)}; allowed: {names}"
                )
            raise ConfigError(path, f"must be one of {names}, got {describe(value)}")
        return value
    if origin is tuple:
        return _convert_tuple(get_args(tp)[0], value, path, meta)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {describe(value)}")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(path, f"expected an integer, got {describe(value)}")
        _check_bounds(value, path, meta)
        return value
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(path, f"expected a number, got {describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(path, f"must be finite, got {value}")
        _check_bounds(value, path, meta)
        return float(value)
    if tp is str:
        return _convert_str(value, path, meta)
    raise TypeError(f"config schema: unsupported type {tp!r} at {path}")  # a schema bug


def _convert_tuple(item: Any, value: object, path: str, meta: Mapping[str, Any]) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(path, f"expected a list, got {describe(value)}")
    need = meta.get("min_items", 0)
    if len(value) < need:
        raise ConfigError(path, f"must have at least {need} item(s), got {len(value)}")
    return tuple(convert(item, v, f"{path}[{i}]", meta) for i, v in enumerate(value))


def _convert_str(value: object, path: str, meta: Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a string, got {describe(value)}")
    if not value.strip():
        raise ConfigError(path, "must not be empty")
    pattern = meta.get("pattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise ConfigError(path, f"{meta.get('pattern_hint', 'invalid value')}, got {value!r}")
    return value


def _check_bounds(value: float, path: str, meta: Mapping[str, Any]) -> None:
    for key, ok, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            raise ConfigError(path, f"must be {word} {_number(bound)}, got {value}")


def _number(bound: float) -> str:
    """0.0 as 0, 1e-9 as 1e-09: bounds as a person would write them."""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e15 else repr(bound)


def to_plain(obj: object) -> Any:
    """The inverse of :func:`build`: dataclasses to dicts, tuples to lists (YAML-dumpable)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    return obj
