"""Label and field selectors for list, watch and deletecollection.

Label selectors follow the API server's grammar: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists) and ``!k`` (does not exist), joined by commas. Field selectors
support ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==`` and ``!=``, as the API server
does for every resource. A selector that cannot be parsed raises ``SelectorError`` (a 400).
Called by ``sandbox.verbs`` (list/deletecollection) and ``sandbox.watch``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Selector", "SelectorError", "parse_field_selector", "parse_label_selector"]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[A-Za-z0-9_.\-]*"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """A selector the server cannot parse; the message quotes the offending part."""


Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Selector:
    """The conjunction of parsed requirements; ``matches`` takes a whole object."""

    predicates: tuple[Predicate, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(p(obj) for p in self.predicates)

    def __and__(self, other: Selector) -> Selector:
        return Selector(self.predicates + other.predicates)


def _split(text: str) -> list[str]:
    """Split on commas that are not inside a parenthesised value set."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parenthesis in selector {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SelectorError(f"unbalanced parenthesis in selector {text!r}")
    parts.append("".join(current))
    return parts


def _labels(obj: dict[str, Any]) -> dict[str, Any]:
    labels = obj.get("metadata", {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _label_requirement(part: str) -> Predicate:
    match = _SET_RE.match(part)
    if match:
        key, op, raw = match.groups()
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise SelectorError(f"{part.strip()!r}: a set requirement needs at least one value")
        if op == "in":
            return lambda obj: _labels(obj).get(key) in values
        return lambda obj: _labels(obj).get(key) not in values
    match = _CMP_RE.match(part)
    if match:
        key, op, value = match.groups()
        if op == "!=":
            return lambda obj: _labels(obj).get(key) != value
        return lambda obj: _labels(obj).get(key) == value
    match = _EXISTS_RE.match(part)
    if match:
        negate, key = match.groups()
        if negate:
            return lambda obj: key not in _labels(obj)
        return lambda obj: key in _labels(obj)
    raise SelectorError(f"unable to parse requirement {part.strip()!r}")


def parse_label_selector(text: str | None) -> Selector:
    if not text or not text.strip():
        return Selector()
    return Selector(tuple(_label_requirement(part) for part in _split(text)))


_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": lambda obj: obj.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda obj: obj.get("metadata", {}).get("namespace", ""),
}


def _field_requirement(part: str) -> Predicate:
    match = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
    if not match:
        raise SelectorError(f"invalid field selector {part.strip()!r}")
    path, op, value = match.groups()
    getter = _FIELDS.get(path)
    if getter is None:
        raise SelectorError(f'field label not supported: {path}')
    if op == "!=":
        return lambda obj: getter(obj) != value
    return lambda obj: getter(obj) == value


def parse_field_selector(text: str | None) -> Selector:
    if not text or not text.strip():
        return Selector()
    return Selector(tuple(_field_requirement(part) for part in text.split(",")))
