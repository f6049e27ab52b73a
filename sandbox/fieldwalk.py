"""Typed walks over unstructured objects: field sets, apply merge, comparison and removal.

These are the four operations server-side apply is built from (the API server gets them from
structured-merge-diff): the set of fields an applied configuration mentions, the merge of that
configuration into the live object, the added/modified/removed fields between two objects, and the
removal of a set of fields. "Typed" means lists and maps follow ``sandbox.schema``: associative lists
merge item by item, LabelSelectors and all other lists are atomic leaves.

Semantics kept from the real implementation:

* a field set holds every leaf (scalars, atomic lists and maps, ``null`` and ``{}`` values) and every
  item of an associative or set list, never a plain map node;
* a comparison reports leaves as added/removed/modified and also reports a non-leaf node itself when
  it appears or disappears (this is where ``"."`` comes from in an ``Update`` manager's fields);
* removing a field removes its subtree; a map or list left empty by a removal is removed too.

Callers: ``sandbox.ssa`` only. Inputs are never mutated; results share unchanged subtrees with them.
Malformed associative-list items raise ``ValueError`` naming the path.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox import schema
from sandbox.fieldset import FieldSet, Path, field, item_key, item_value, path_string, tree_of
from sandbox.patch import json_equal

__all__ = ["compare", "field_set", "merge", "remove"]

_MISSING: Any = object()


def _element(item: Any, rule: schema.ListRule, path: Path) -> str:
    if not rule.map_keys:
        if isinstance(item, dict | list):
            raise ValueError(f"{path_string(path) or '.'}: items of a set list must be scalars")
        return item_value(item)
    if not isinstance(item, dict):
        raise ValueError(f"{path_string(path)}: items of an associative list must be objects")
    defaults = dict(rule.key_defaults)
    keys: dict[str, Any] = {}
    for name in rule.map_keys:
        if item.get(name) is not None:
            keys[name] = item[name]
        elif name in defaults:
            keys[name] = defaults[name]
        else:
            raise ValueError(
                f"{path_string(path)}: associative list with keys has an element that omits key field {name!r}"
            )
    return item_key(keys)


def _index(items: list[Any], rule: schema.ListRule, path: Path) -> dict[str, Any]:
    """Elements in list order; a repeated element keeps its first occurrence, as the API server does."""
    out: dict[str, Any] = {}
    for item in items:
        out.setdefault(_element(item, rule, path), item)
    return out


def _is_map(value: Any, kind: str, names: tuple[str, ...]) -> bool:
    return isinstance(value, dict) and not schema.is_atomic_map(kind, names)


def _rule(value: Any, kind: str, names: tuple[str, ...]) -> schema.ListRule | None:
    return schema.list_rule(kind, names) if isinstance(value, list) else None


# ---------------------------------------------------------------------------------------- field sets


def field_set(obj: dict[str, Any], *, kind: str) -> FieldSet:
    """Every leaf and associative item ``obj`` mentions."""
    out: FieldSet = set()
    _fields(obj, kind, (), (), out)
    return out


def _fields(value: Any, kind: str, names: tuple[str, ...], path: Path, out: FieldSet) -> None:
    if _is_map(value, kind, names):
        for key, child in value.items():
            child_path = (*path, field(key))
            _fields(child, kind, (*names, key), child_path, out)
            if child is None or child == {}:
                out.add(child_path)
        return
    rule = _rule(value, kind, names)
    if rule is not None:
        for element, item in _index(value, rule, path).items():
            _fields(item, kind, names, (*path, element), out)
            out.add((*path, element))
        return
    if path:
        out.add(path)


# -------------------------------------------------------------------------------------------- merge


def merge(live: dict[str, Any], applied: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """``applied`` merged into ``live``: maps key by key, associative lists item by item, else replace.

    A ``null`` in ``applied`` removes the field from the result.
    """
    result = _merge(live, applied, kind, (), ())
    return result if isinstance(result, dict) else {}


def _merge(live: Any, applied: Any, kind: str, names: tuple[str, ...], path: Path) -> Any:
    if _is_map(applied, kind, names):
        out = dict(live) if isinstance(live, dict) else {}
        for key, value in applied.items():
            merged = _merge(out.get(key, _MISSING), value, kind, (*names, key), (*path, field(key)))
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        return out
    rule = _rule(applied, kind, names)
    if rule is not None and isinstance(live, list):
        return _merge_list(live, applied, rule, kind, names, path)
    return copy.deepcopy(applied)


def _merge_list(
    live: list[Any], applied: list[Any], rule: schema.ListRule, kind: str, names: tuple[str, ...], path: Path
) -> list[Any]:
    """Merge two associative lists, ordering items the way structured-merge-diff does.

    Items only in ``live`` keep their place; items in both follow ``applied``'s order; items only in
    ``applied`` go where ``applied`` puts them relative to the shared ones.
    """
    lhs = _index(live, rule, path)
    rhs = _index(applied, rule, path)
    lhs_order, rhs_order = list(lhs), list(rhs)
    shared = [element for element in rhs_order if element in lhs]
    next_shared = shared.pop(0) if shared else None
    done: set[str] = set()
    out: list[Any] = []

    def take(element: str) -> None:
        item_path = (*path, element)
        if element in rhs:
            merged = _merge(lhs.get(element, _MISSING), rhs[element], kind, names, item_path)
        else:
            merged = lhs[element]
        done.add(element)
        if merged is not None:
            out.append(merged)

    li = ri = 0
    while li < len(lhs_order) or ri < len(rhs_order):
        if li < len(lhs_order) and ri < len(rhs_order):
            element = lhs_order[li]
            if element == rhs_order[ri]:
                take(element)
                li, ri = li + 1, ri + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if element in rhs and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(lhs_order):
            element = lhs_order[li]
            if element not in rhs:
                take(element)
                li += 1
                continue
            if element in done:
                li += 1
                continue
        if ri < len(rhs_order):
            element = rhs_order[ri]
            take(element)
            ri += 1
            if next_shared == element:
                next_shared = shared.pop(0) if shared else None
    return out


# ------------------------------------------------------------------------------------------ compare


def compare(lhs: dict[str, Any], rhs: dict[str, Any], *, kind: str) -> tuple[FieldSet, FieldSet, FieldSet]:
    """``(added, modified, removed)`` field paths going from ``lhs`` to ``rhs``."""
    added: FieldSet = set()
    modified: FieldSet = set()
    removed: FieldSet = set()
    _compare(lhs, rhs, kind, (), (), (added, modified, removed))
    return added, modified, removed


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == {} or value == []


def _compare(
    lhs: Any, rhs: Any, kind: str, names: tuple[str, ...], path: Path, out: tuple[FieldSet, FieldSet, FieldSet]
) -> None:
    added, modified, removed = out
    present = [value for value in (lhs, rhs) if value is not _MISSING]
    both_empty = _empty(lhs) and _empty(rhs)
    if not both_empty and all(_is_map(value, kind, names) for value in present):
        left = lhs if lhs is not _MISSING else {}
        right = rhs if rhs is not _MISSING else {}
        for key in {**left, **right}:
            _compare(
                left.get(key, _MISSING), right.get(key, _MISSING), kind, (*names, key), (*path, field(key)), out
            )
    elif not both_empty and all(_rule(value, kind, names) is not None for value in present):
        rule = schema.list_rule(kind, names)
        assert rule is not None
        left = _index(lhs, rule, path) if lhs is not _MISSING else {}
        right = _index(rhs, rule, path) if rhs is not _MISSING else {}
        for element in {**left, **right}:
            _compare(
                left.get(element, _MISSING), right.get(element, _MISSING), kind, names, (*path, element), out
            )
    elif lhs is not _MISSING and rhs is not _MISSING:
        if not json_equal(lhs, rhs):
            modified.add(path)
        return
    if not path:
        return
    if lhs is _MISSING:
        added.add(path)
    elif rhs is _MISSING:
        removed.add(path)


# ------------------------------------------------------------------------------------------- remove


def remove(obj: dict[str, Any], paths: FieldSet, *, kind: str) -> dict[str, Any]:
    """``obj`` without the fields in ``paths`` (each with its subtree)."""
    if not paths:
        return obj
    result = _remove(obj, tree_of(paths), kind, (), ())
    return result if isinstance(result, dict) else {}


def _is_member(node: dict[str, Any]) -> bool:
    return not node or "." in node


def _remove(value: Any, tree: dict[str, Any], kind: str, names: tuple[str, ...], path: Path) -> Any:
    if _is_map(value, kind, names):
        out: dict[str, Any] = {}
        for key, child in value.items():
            sub = tree.get(field(key))
            if sub is None:
                out[key] = child
            elif not _is_member(sub):
                kept = _remove(child, sub, kind, (*names, key), (*path, field(key)))
                if kept is not None:
                    out[key] = kept
        return out or None
    rule = _rule(value, kind, names)
    if rule is None:
        return value
    items: list[Any] = []
    for item in value:
        element = _element(item, rule, path)
        sub = tree.get(element)
        if sub is None:
            items.append(item)
        elif not _is_member(sub):
            kept = _remove(item, sub, kind, names, (*path, element))
            if kept is not None:
                items.append(kept)
    return items or None
