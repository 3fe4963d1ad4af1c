"""Typed configuration: YAML (read with `yaml.safe_load`) validated into frozen dataclasses.

An unknown key, a missing field or a value of the wrong type is a `ConfigError` naming the file and
the key path (`exp05.yaml: frozen.epochs: expected int, got 'ten'`).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or mapping does not describe the expected dataclass."""


def _describe(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(expected))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(expected))
    if origin is tuple:
        return f"list of {_describe(typing.get_args(expected)[0])}"
    if origin is dict:
        return "mapping"
    return getattr(expected, "__name__", str(expected))


def _join(where: str, key: str) -> str:
    """`file.yaml` + `frozen` → `file.yaml: frozen`; `file.yaml: frozen` + `epochs` → `… frozen.epochs`."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def _convert(value: Any, expected: Any, where: str) -> Any:
    origin = typing.get_origin(expected)
    if origin is Literal:
        if value in typing.get_args(expected):
            return value
    elif origin in (Union, types.UnionType):
        for option in typing.get_args(expected):
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            item_type = typing.get_args(expected)[0]
            return tuple(_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict:
        if isinstance(value, dict):
            key_type, value_type = typing.get_args(expected)
            return {_convert(k, key_type, f"{where} key"): _convert(v, value_type, _join(where, str(k)))
                    for k, v in value.items()}
    elif dataclasses.is_dataclass(expected):
        if isinstance(value, expected):
            return value
        if isinstance(value, dict):
            return from_dict(expected, value, where)
    elif expected is type(None):
        if value is None:
            return None
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif expected is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
    elif isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {_describe(expected)}, got {value!r}")


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping, checking every key and value; `where` prefixes errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], _join(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # the dataclass's own checks (__post_init__)
        raise ConfigError(f"{where}: {error}") from None


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{at}: malformed YAML ({getattr(error, 'problem', None) or error})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None


def load_config(cls: type[T], path: Path) -> T:
    """Read `path` with `yaml.safe_load` and validate it into `cls`."""
    return from_dict(cls, load_yaml(path), path.name)
