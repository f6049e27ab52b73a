"""Typed field readers for the Application parser: each reads one value out of a mapping, checks its type
and raises :class:`InvalidApplication` with the full field path when it is wrong.

Who calls this: :mod:`sync.appparse` only (and :class:`sync.application.Backoff` for durations). Values are
never coerced with ``str()``: YAML 1.1 turns ``no`` into ``False`` and ``0755`` into ``493``, and a user who
wrote that gets told which field is not a string rather than a silently different value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "InvalidApplication",
    "boolean",
    "duration_seconds",
    "integer",
    "mapping",
    "optional_mapping",
    "seq",
    "string",
    "string_list",
    "string_map",
]


class InvalidApplication(ValueError):
    """An Application manifest that cannot be accepted. ``field`` is the path, e.g. ``spec.source.repoURL``."""

    def __init__(self, field: str, message: str, *, source: str = "") -> None:
        self.field = field
        self.detail = message
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{field}: {message}" if field else f"{prefix}{message}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def string(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidApplication(_join(path, key), "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidApplication(_join(path, key), f"must be a string, not {_type_name(value)}")
    if required and not value:
        raise InvalidApplication(_join(path, key), "must not be empty")
    return value


def boolean(obj: Mapping[str, Any], key: str, path: str, *, default: bool = False) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidApplication(_join(path, key), f"must be true or false, not {_type_name(value)}")
    return value


def integer(obj: Mapping[str, Any], key: str, path: str, *, default: int, minimum: int | None = None) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidApplication(_join(path, key), f"must be an integer, not {_type_name(value)}")
    if minimum is not None and value < minimum:
        raise InvalidApplication(_join(path, key), f"must be at least {minimum}")
    return value


def mapping(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    """A mapping field; absent or null gives ``{}``."""
    value = optional_mapping(obj, key, path)
    return {} if value is None else value


def optional_mapping(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidApplication(_join(path, key), f"must be a mapping, not {_type_name(value)}")
    for k in value:
        if not isinstance(k, str):
            raise InvalidApplication(_join(path, key), f"keys must be strings, found {_type_name(k)}")
    return value


def seq(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidApplication(_join(path, key), f"must be a list, not {_type_name(value)}")
    return value


def string_list(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(seq(obj, key, path)):
        if not isinstance(item, str):
            raise InvalidApplication(f"{_join(path, key)}[{i}]", f"must be a string, not {_type_name(item)}")
        out.append(item)
    return tuple(out)


def string_map(obj: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    value = mapping(obj, key, path)
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidApplication(f"{_join(path, key)}.{k}", f"must be a string, not {_type_name(v)}")
    return dict(value)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Go duration text (``5s``, ``3m``, ``1h30m``) or a bare integer (seconds, as Argo CD accepts)."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (e.g. 5s, 3m, 1h30m)")
    return total
