"""The three non-apply PATCH formats the sandbox accepts: JSON patch, JSON merge patch, strategic merge patch.

Callers: ``sandbox.verbs`` (PATCH requests); the result is then validated and stored like an update.
Every function is pure: the input object is never mutated and a new object is returned. Bad patches
raise :class:`PatchError`, whose message (naming the operation or field) becomes the Status message
of a 422 response, as the API server words it where it has a counterpart.

* :func:`apply_json_patch` — RFC 6902 (add, remove, replace, move, copy, test; ``~0``/``~1`` escapes;
  ``-`` appends).
* :func:`apply_merge_patch` — RFC 7386 (``null`` deletes; lists are replaced).
* :func:`apply_strategic_merge_patch` — Kubernetes' strategic merge patch (``sandbox.strategic``).

Error tree::

    PatchError (ValueError)
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = [
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "json_equal",
]


class PatchError(ValueError):
    """A patch that cannot be applied; the message names the failing operation or field."""


def json_equal(left: Any, right: Any) -> bool:
    """Equality under JSON's data model: ``true`` is not ``1``, ``1`` equals ``1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and bool(left == right)


# --------------------------------------------------------------------------------- RFC 6901 pointers


def _tokens(pointer: Any, what: str) -> list[str]:
    if not isinstance(pointer, str):
        raise PatchError(f"{what} must be a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"{what} {pointer!r} must start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise PatchError(f"{what} {pointer!r} has an invalid '~' escape")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _index(part: str, size: int, *, allow_end: bool, where: str) -> int:
    if allow_end and part == "-":
        return size
    if not (part.isascii() and part.isdigit()) or (len(part) > 1 and part.startswith("0")):
        raise PatchError(f"{where}: {part!r} is not a valid array index")
    index = int(part)
    if index > size or (index == size and not allow_end):
        raise PatchError(f"{where}: array index {index} is out of range (length {size})")
    return index


def _parent(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for depth, token in enumerate(tokens[:-1]):
        here = "/" + "/".join(tokens[: depth + 1])
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"{where}: path {here!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), allow_end=False, where=where)]
        else:
            raise PatchError(f"{where}: path {here!r} is not an object or array")
    return node


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{where}: path does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), allow_end=False, where=where)]
    raise PatchError(f"{where}: parent is not an object or array")


def _add(doc: Any, tokens: list[str], value: Any, where: str) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True, where=where), value)
    else:
        raise PatchError(f"{where}: parent is not an object or array")
    return doc


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        raise PatchError(f"{where}: the whole object cannot be removed")
    parent, last = _parent(doc, tokens, where), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{where}: path does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent), allow_end=False, where=where))
    raise PatchError(f"{where}: parent is not an object or array")


def _member(op: dict[str, Any], name: str, where: str) -> Any:
    if name not in op:
        raise PatchError(f"{where}: missing {name!r}")
    return op[name]


def apply_json_patch(obj: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 JSON patch; the whole patch fails if any operation does."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(obj)
    for number, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"json patch operation {number}: must be an object")
        name = op.get("op")
        where = f"json patch operation {number} ({name} {op.get('path')!r})"
        tokens = _tokens(_member(op, "path", where), f"{where}: path")
        if name == "add":
            doc = _add(doc, tokens, copy.deepcopy(_member(op, "value", where)), where)
        elif name == "remove":
            _remove(doc, tokens, where)
        elif name == "replace":
            value = copy.deepcopy(_member(op, "value", where))
            if tokens:
                _remove(doc, tokens, where)
            doc = _add(doc, tokens, value, where)
        elif name in ("move", "copy"):
            source = _tokens(_member(op, "from", where), f"{where}: from")
            if name == "move" and tokens[: len(source)] == source and len(tokens) > len(source):
                raise PatchError(f"{where}: a value cannot be moved into one of its children")
            value = _get(doc, source, where)
            if name == "move":
                if source == tokens:
                    continue
                _remove(doc, source, where)
            doc = _add(doc, tokens, copy.deepcopy(value), where)
        elif name == "test":
            expected = _member(op, "value", where)
            if not json_equal(_get(doc, tokens, where), expected):
                raise PatchError(f"{where}: testing value {json.dumps(expected)} failed")
        else:
            raise PatchError(f"json patch operation {number}: unknown op {name!r}")
    if not isinstance(doc, dict):
        raise PatchError("the patched object must remain a JSON object")
    return doc


# ------------------------------------------------------------------------------------ RFC 7386 merge


def apply_merge_patch(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch: objects merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object")
    result = _merge_patch(obj, patch)
    assert isinstance(result, dict)
    return result


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


# ------------------------------------------------------------------------------ strategic merge patch


def apply_strategic_merge_patch(obj: dict[str, Any], patch: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to an object of ``kind`` (see ``sandbox.strategic``)."""
    from sandbox import strategic  # local: strategic raises this module's PatchError

    return strategic.apply(obj, patch, kind=kind)
