"""Field paths and sets in the Kubernetes ``FieldsV1`` format, for server-side apply bookkeeping.

A path is a tuple of path elements, each kept in its ``fieldsV1`` spelling so that sets serialise
without translation: ``"f:spec"`` (a field or map key), ``'k:{"name":"nginx"}'`` (an item of an
associative list, keys sorted, compact JSON), ``'v:"finalizer"'`` (an item of a set of scalars).
A field set is a plain ``set`` of such paths, so union, difference and intersection are Python's.

In ``fieldsV1`` a path is a *member* of the set when its node is ``{}`` or contains the ``"."``
marker; a node that only has children is not a member (``f:spec`` above ``f:replicas``).

Callers: ``sandbox.fieldwalk`` builds paths while walking objects; ``sandbox.ssa`` converts sets to
and from ``metadata.managedFields`` and prints paths (``.spec.replicas``,
``.spec.template.spec.containers[name="nginx"].image``) in conflict messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "FieldSet",
    "Path",
    "element_string",
    "field",
    "from_fields_v1",
    "item_key",
    "item_value",
    "path_string",
    "to_fields_v1",
    "tree_of",
]

Path = tuple[str, ...]
FieldSet = set[Path]

_MEMBER = "."


def field(name: str) -> str:
    """The element for a struct field or map key."""
    return "f:" + name


def item_key(keys: Mapping[str, Any]) -> str:
    """The element for an associative-list item identified by ``keys``."""
    return "k:" + json.dumps(dict(sorted(keys.items())), separators=(",", ":"), ensure_ascii=False)


def item_value(value: Any) -> str:
    """The element for an item of a set-typed list of scalars."""
    return "v:" + json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def tree_of(paths: Iterable[Path]) -> dict[str, Any]:
    """The nested ``fieldsV1`` tree of ``paths`` (members marked as described in the module doc)."""
    root: dict[str, Any] = {}
    for path in paths:
        if not path:
            continue
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node[_MEMBER] = {}
    _drop_leaf_markers(root)
    return root


def _drop_leaf_markers(node: dict[str, Any]) -> None:
    for child in node.values():
        if child.keys() == {_MEMBER}:
            del child[_MEMBER]
        else:
            _drop_leaf_markers(child)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Serialise a field set as a ``fieldsV1`` object (keys sorted, as the API server does)."""
    return _sorted_tree(tree_of(paths))


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {key: _sorted_tree(node[key]) for key in sorted(node)}


def from_fields_v1(tree: Any) -> FieldSet:
    """Parse a ``fieldsV1`` object; raises ``ValueError`` naming the bad element."""
    out: FieldSet = set()
    if not isinstance(tree, dict):
        raise ValueError("fieldsV1 must be an object")
    _collect(tree, (), out)
    return out


def _collect(node: dict[str, Any], prefix: Path, out: FieldSet) -> None:
    for element, child in node.items():
        if element == _MEMBER:
            continue
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1 element {element!r} must map to an object")
        _check_element(element)
        path = (*prefix, element)
        if not child or _MEMBER in child:
            out.add(path)
        _collect(child, path, out)


def _check_element(element: str) -> None:
    prefix, _, rest = element.partition(":")
    if prefix == "f" and rest:
        return
    try:
        decoded = json.loads(rest) if prefix in ("k", "v") else None
    except json.JSONDecodeError:
        decoded = None
    if prefix == "k" and isinstance(decoded, dict) and decoded:
        return
    if prefix == "v" and rest and (decoded is not None or rest == "null"):
        return
    raise ValueError(f"unknown fieldsV1 path element {element!r}")


def element_string(element: str) -> str:
    """One element as the API server prints it in a field path."""
    prefix, _, rest = element.partition(":")
    if prefix == "f":
        return "." + rest
    if prefix == "k":
        keys = json.loads(rest)
        inner = ",".join(f"{name}={json.dumps(keys[name], ensure_ascii=False)}" for name in sorted(keys))
        return f"[{inner}]"
    return f"[={rest}]"


def path_string(path: Path) -> str:
    """A path as the API server prints it: ``.spec.template.spec.containers[name="nginx"].image``."""
    return "".join(element_string(element) for element in path)
