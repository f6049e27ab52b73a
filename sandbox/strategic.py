"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``) for the sandbox.

Like a JSON merge patch, but lists declared with a merge key (containers by ``name``, container ports
by ``containerPort``, Service ports by ``port``, env, volumes, volume mounts ...; see
``sandbox.schema``) merge item by item, lists of scalars with a merge strategy (finalizers) merge as
sets, and other lists are replaced. Directives (as kubectl generates them):

* ``$patch: delete`` — in a map: delete that map; in a list item: delete the item with that key.
* ``$patch: replace`` — in a map: replace it instead of merging; as a list item: replace the list.
* ``$patch: merge`` — the default, accepted explicitly.
* ``$retainKeys: [..]`` — drop the map's other keys before merging (every patched key must be listed).
* ``$deleteFromPrimitiveList/<key>: [..]`` — remove these scalars from the list ``key``.
* ``$setElementOrder/<key>: [..]`` — the order of the list ``key`` after the merge; items the patch
  does not mention keep their place relative to the original, as apimachinery's merge does.
* ``null`` deletes a key.

Callers: ``sandbox.patch.apply_strategic_merge_patch`` (the public entry point). Pure; the input is
never mutated. Bad patches raise ``sandbox.patch.PatchError``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sandbox import schema
from sandbox.patch import PatchError, json_equal

__all__ = ["apply"]

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


def apply(obj: dict[str, Any], patch: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """``obj`` with the strategic merge ``patch`` applied, for an object of ``kind``."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    result = _merge_map(copy.deepcopy(obj), patch, kind, ())
    return result if result is not None else {}


def _where(names: tuple[str, ...]) -> str:
    return ".".join(names) or "<root>"


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], kind: str, names: tuple[str, ...]
) -> dict[str, Any] | None:
    """Merge ``patch`` into ``original`` (owned by the caller); ``None`` means "delete this map"."""
    directive = patch.get(_PATCH)
    if directive == "delete":
        return None
    if directive == "replace":
        return _merge_map({}, {k: v for k, v in patch.items() if k != _PATCH}, kind, names)
    if directive not in (None, "merge"):
        raise PatchError(f"{_where(names)}: unknown patch type {directive!r} in $patch")
    if _RETAIN in patch:
        original = _retain(original, patch, names)
    lists_before = {k: v for k, v in original.items() if isinstance(v, list)}
    for key, values in patch.items():
        if key.startswith(_DELETE_FROM):
            target = key[len(_DELETE_FROM) :]
            if not isinstance(values, list):
                raise PatchError(f"{_where(names)}: {key} must be a list")
            current = original.get(target)
            if isinstance(current, list):
                original[target] = [x for x in current if not any(json_equal(x, v) for v in values)]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        here = (*names, key)
        current = original.get(key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, kind, here)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            base = current if isinstance(current, list) else []
            original[key] = _merge_list(base, value, kind, here)
        else:
            original[key] = value
    for key, order in patch.items():
        if key.startswith(_ORDER):
            target = key[len(_ORDER) :]
            if not isinstance(order, list):
                raise PatchError(f"{_where(names)}: {key} must be a list")
            if isinstance(original.get(target), list):
                rule = schema.list_rule(kind, (*names, target))
                original[target] = _reorder(original[target], order, lists_before.get(target, []), rule)
    return original


def _retain(original: dict[str, Any], patch: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    keep = patch[_RETAIN]
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise PatchError(f"{_where(names)}: $retainKeys must be a list of field names")
    for key, value in patch.items():
        if key.startswith("$") or value is None:
            continue
        if key not in keep:
            raise PatchError(f"{_where(names)}: field {key!r} is patched but not listed in $retainKeys")
    return {k: v for k, v in original.items() if k in keep}


def _identity(item: Any, rule: schema.ListRule | None) -> str:
    if rule is not None and rule.merge_key is not None and isinstance(item, dict):
        return json.dumps(item.get(rule.merge_key), sort_keys=True)
    return json.dumps(item, sort_keys=True)


def _merge_list(original: list[Any], patch: list[Any], kind: str, names: tuple[str, ...]) -> list[Any]:
    rule = schema.list_rule(kind, names)
    if rule is None:
        return [_fresh(item, kind, names) for item in patch]
    if rule.merge_key is None:
        merged = list(original)
        for item in patch:
            if not any(json_equal(item, have) for have in merged):
                merged.append(copy.deepcopy(item))
        return merged
    key = rule.merge_key
    if any(isinstance(item, dict) and item.get(_PATCH) == "replace" for item in patch):
        rest = [item for item in patch if not (isinstance(item, dict) and item.get(_PATCH) == "replace")]
        return _merge_list([], rest, kind, names)
    merged = list(original)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(
                f"{_where(names)}: map {json.dumps(item, sort_keys=True)} does not contain declared merge key: {key}"
            )
        directive = item.get(_PATCH)
        position = next(
            (i for i, have in enumerate(merged) if isinstance(have, dict) and json_equal(have.get(key), item[key])),
            None,
        )
        if directive == "delete":
            merged = [
                have for have in merged if not (isinstance(have, dict) and json_equal(have.get(key), item[key]))
            ]
            continue
        body = {k: v for k, v in item.items() if k != _PATCH or v != "merge"}
        if position is None:
            new = _merge_map({}, body, kind, names)
            if new is not None:
                merged.append(new)
        else:
            updated = _merge_map(dict(merged[position]), body, kind, names)
            if updated is None:
                del merged[position]
            else:
                merged[position] = updated
    return merged


def _fresh(value: Any, kind: str, names: tuple[str, ...]) -> Any:
    """A patch value for a place the original does not have: directives and nulls stripped."""
    if isinstance(value, dict):
        return _merge_map({}, value, kind, names)
    return copy.deepcopy(value)


def _reorder(items: list[Any], order: list[Any], original: list[Any], rule: schema.ListRule | None) -> list[Any]:
    """Apply ``$setElementOrder``: listed items in the given order, unlisted ones where they were.

    Mirrors apimachinery's ``normalizeElementOrder``/``mergeSortedSlice``: the listed items are sorted
    by the order list, the others keep their relative order, and the two runs are interleaved: an
    unlisted item goes first only when it preceded the listed one in the original list.
    """
    if rule is not None and rule.merge_key is not None:
        key = rule.merge_key
        wanted = [json.dumps(e.get(key), sort_keys=True) if isinstance(e, dict) else "" for e in order]
    else:
        wanted = [json.dumps(entry, sort_keys=True) for entry in order]
    rank: dict[str, int] = {}
    for position, ident in enumerate(wanted):
        rank.setdefault(ident, position)
    before = {_identity(item, rule): i for i, item in reversed(list(enumerate(original)))}
    listed = sorted((x for x in items if _identity(x, rule) in rank), key=lambda x: rank[_identity(x, rule)])
    others = [x for x in items if _identity(x, rule) not in rank]
    out: list[Any] = []
    li = oi = 0
    while li < len(listed) or oi < len(others):
        if oi < len(others) and li < len(listed):
            left, right = before.get(_identity(others[oi], rule)), before.get(_identity(listed[li], rule))
            take_other = left is not None and right is not None and left < right
        else:
            take_other = oi < len(others)
        if take_other:
            out.append(others[oi])
            oi += 1
        else:
            out.append(listed[li])
            li += 1
    return out
