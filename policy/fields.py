"""Typed readers for untrusted manifest data that fail with the field path.

Used by :mod:`policy.project` and :mod:`policy.roles` while turning an AppProject mapping (from YAML, JSON or
the API) into frozen dataclasses. Each reader checks one value's type and raises
:class:`~policy.errors.InvalidProject` naming the path (``spec.roles[1].groups[0]``), never a ``TypeError``
or ``KeyError`` from deep inside. YAML integers stay integers and booleans stay booleans: a string field given
``123`` or ``true`` is an error, not silently converted.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from policy.errors import InvalidProject

__all__ = [
    "Reader",
    "has_unsafe_chars",
]

#: Unicode categories that can hide or reorder text (controls, format/bidi marks, line/paragraph separators,
#: surrogates): never allowed in a name that reaches a policy line or a log
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def has_unsafe_chars(text: str) -> bool:
    """Control, format (bidi), line-separator or surrogate characters anywhere in ``text``."""
    return any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in text)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return {"str": "string", "int": "integer", "float": "number"}.get(type(value).__name__, type(value).__name__)


class Reader:
    """Readers bound to one source (file name, API request) so every error names it."""

    def __init__(self, source: str = "") -> None:
        self.source = source

    def error(self, field: str, message: str) -> InvalidProject:
        return InvalidProject(field, message, source=self.source)

    def mapping(self, value: Any, field: str, allowed: Sequence[str] | None) -> Mapping[str, Any]:
        """A mapping with string keys drawn from ``allowed`` (unknown keys are errors naming the key);
        ``allowed=None`` takes any string key."""
        if not isinstance(value, Mapping):
            raise self.error(field, f"must be a mapping, not {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(field, f"keys must be strings, not {_type_name(key)} {key!r}")
            if allowed is not None and key not in allowed:
                raise self.error(f"{field}.{key}" if field else key,
                                 f"unknown field (known: {', '.join(allowed)})")
        return value

    def string(self, value: Any, field: str, *, max_len: int | None = None) -> str:
        if not isinstance(value, str):
            raise self.error(field, f"must be a string, not {_type_name(value)}")
        if max_len is not None and len(value) > max_len:
            raise self.error(field, f"must be at most {max_len} characters (got {len(value)})")
        return value

    def opt_string(self, data: Mapping[str, Any], key: str, field: str, *, max_len: int | None = None) -> str | None:
        if key not in data:
            return None
        return self.string(data[key], f"{field}.{key}" if field else key, max_len=max_len)

    def boolean(self, data: Mapping[str, Any], key: str, field: str) -> bool | None:
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, bool):
            raise self.error(f"{field}.{key}", f"must be true or false, not {_type_name(value)}")
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"must be an integer, not {_type_name(value)}")
        return value

    def items(self, data: Mapping[str, Any], key: str, field: str) -> list[tuple[str, Any]] | None:
        """``(path, item)`` for every entry of the list ``data[key]``; ``None`` when the key is absent.

        An explicit ``null`` is read as absent, as Kubernetes does for a list field.
        """
        if key not in data or data[key] is None:
            return None
        value = data[key]
        path = f"{field}.{key}" if field else key
        if not isinstance(value, (list, tuple)):
            raise self.error(path, f"must be a list, not {_type_name(value)}")
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]

    def strings(self, data: Mapping[str, Any], key: str, field: str) -> tuple[str, ...] | None:
        entries = self.items(data, key, field)
        if entries is None:
            return None
        return tuple(self.string(item, path) for path, item in entries)
