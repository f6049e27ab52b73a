"""``RespectIgnoreDifferences=true``: a target about to be written keeps the live values of the fields the app's
``ignoreDifferences`` ignore (``argocd-sync-semantics.md`` §1.10, §4.12).

Who calls this: the sync engine (:mod:`sync.engine`), for every non-hook task whose live object exists, before
the tracking id is stamped and before the gate sees the object. Pure.

Which fields are ignored is decided exactly as the comparison decides it (:mod:`sync.compare_ignore`): the
matching entries' JSON pointers, ``jqPathExpressions`` (the subset of :mod:`sync.jqpath`) and the fields the
``managedFieldsManagers`` own in the live object (:func:`sync.diff.owned_paths`). For each of them:

* the target's own value is dropped (a field ignored in Git is not what the sync writes);
* the live value, when there is one, is put in its place, so the write leaves it as it is. ``status`` is never
  copied, nor the server's own metadata (``uid``, ``resourceVersion``, ``managedFields`` ...).

Lists: an item of a list the API server merges by key (containers by ``name``, volume mounts by ``mountPath``,
see :data:`sync.diff.MERGE_KEYS`; any list of objects with a ``name``) is found in the target by that key, so
the other items and the item's other fields keep their desired values; other lists by position. A field of an
item the target does not have is not written (half an item would be invalid); a whole ignored item is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sync import compare_ignore, diff
from sync.application import IgnoreDifference
from sync.models import ResourceKey

__all__ = ["respect_ignored"]

Path = tuple[str | int, ...]

#: metadata the API server owns: never copied from live into a target
_SERVER_METADATA = ("creationTimestamp", "uid", "resourceVersion", "generation", "managedFields", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds")


def respect_ignored(
    target: Mapping[str, Any], live: Mapping[str, Any], entries: Sequence[IgnoreDifference], key: ResourceKey
) -> dict[str, Any]:
    """A copy of ``target`` whose ignored fields (for the resource ``key``) hold their values in ``live``.

    ``entries`` must have passed :func:`sync.compare_ignore.validate` (an invalid jq expression raises
    :class:`sync.jqpath.JqSyntaxError`)."""
    out: dict[str, Any] = copy.deepcopy(dict(target))
    rules = compare_ignore.rules_for(entries, key)
    expressions = compare_ignore.jq_paths_for(entries, key)
    if not rules and not expressions:
        return out
    pointers = [diff.pointer_parts(p) for rule in rules for p in rule.json_pointers]
    in_target: list[Path] = []
    in_live: list[Path] = []
    for parts in pointers:
        in_target.extend(_resolved(out, parts))
        in_live.extend(_resolved(live, parts))
    for expression in expressions:
        in_target.extend(expression.paths(out))
        in_live.extend(expression.paths(live))
    for manager in (m for rule in rules for m in rule.managed_fields_managers):
        in_live.extend(p for p in diff.owned_paths(live, manager) if not _unresolved(p))
    removed = {p for p in in_target if _copyable(p)}
    for path in sorted(removed, key=_deletion_order, reverse=True):
        _remove(out, path)
    for path in sorted({p for p in in_live if _copyable(p)}, key=_deletion_order):
        found, value = _get(live, path)
        if found:
            _put(out, live, path, value, removed)
    _drop_server_metadata(out, target)
    return out


def _copyable(path: Path) -> bool:
    return bool(path) and path[0] != "status"


def _unresolved(path: Path) -> bool:
    """A managedFields path naming a list item that is gone from live (``k:{...}``/``v:...``)."""
    return any(isinstance(p, str) and p.startswith(("k:", "v:")) for p in path)


def _deletion_order(path: Path) -> tuple[Any, ...]:
    # remove list items from the highest index down, so one removal does not shift the next
    return tuple((1, p) if isinstance(p, int) else (0, p) for p in path)


def _resolved(obj: Any, parts: list[str]) -> list[Path]:
    """The concrete path of a JSON pointer in ``obj`` (list indexes as ints); [] when it is not there."""
    if not parts:
        return []
    node = obj
    path: list[str | int] = []
    for part in parts:
        step: str | int = int(part) if isinstance(node, list) and part.isdigit() else part
        found, node = _get(node, (step,))
        if not found:
            return []
        path.append(step)
    return [tuple(path)]


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for part in path:
        in_map = isinstance(part, str) and isinstance(node, Mapping) and part in node
        in_list = isinstance(part, int) and isinstance(node, list) and part < len(node)
        if not (in_map or in_list):
            return False, None
        node = node[part]
    return True, node


def _remove(obj: Any, path: Path) -> None:
    found, parent = _get(obj, path[:-1])
    last = path[-1]
    if found and isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif found and isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        del parent[last]


def _identity(item: Any, field: str | None) -> tuple[str, Any] | None:
    """The key a list item is found by in another version of the list (None: by position)."""
    if not isinstance(item, Mapping):
        return None
    merge_key = diff.MERGE_KEYS.get(field or "", "name")
    return (merge_key, item[merge_key]) if merge_key in item else None


def _index_in(items: list[Any], live_item: Any, position: int, field: str | None) -> int | None:
    identity = _identity(live_item, field)
    if identity is None:
        return position if position < len(items) else None
    name, value = identity
    return next((i for i, item in enumerate(items) if isinstance(item, Mapping) and item.get(name) == value), None)


def _put(out: dict[str, Any], live: Mapping[str, Any], path: Path, value: Any, removed: set[Path]) -> None:
    """Write ``value`` (found at ``path`` in ``live``) at the matching place in ``out``, creating missing
    objects on the way; list items are matched by :func:`_index_in`. ``removed``: the target's own ignored
    paths, already removed (a positional item goes back where it was instead of replacing its neighbour)."""
    node: Any = out
    live_node: Any = live
    field: str | None = None
    at: Path = ()
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        live_child = live_node[part]
        if isinstance(part, str):
            if not isinstance(node, dict):
                return
            if last:
                node[part] = copy.deepcopy(value)
                return
            if part not in node:
                if any(isinstance(p, int) for p in path[depth + 1:-1]):
                    return  # it would need an item the target does not have
                node[part] = {} if isinstance(live_child, Mapping) else []
            elif isinstance(node[part], Mapping) is not isinstance(live_child, Mapping):
                return  # the target holds another kind of value here: leave it as Git has it
            node, field, at = node[part], part, (*at, part)
        else:
            if not isinstance(node, list):
                return
            index = _index_in(node, live_child, part, field)
            if last:
                if index is None:
                    node.append(copy.deepcopy(value))  # a whole ignored item: it stays
                elif _identity(live_child, field) is None and (*at, part) in removed:
                    node.insert(index, copy.deepcopy(value))  # back in its place, before the next item
                else:
                    node[index] = copy.deepcopy(value)
                return
            if index is None:
                return  # a field of an item the target does not have: half an item would be invalid
            node, at = node[index], (*at, index)
        live_node = live_child


def _drop_server_metadata(out: dict[str, Any], target: Mapping[str, Any]) -> None:
    meta = out.get("metadata")
    if not isinstance(meta, dict):
        return
    own = target.get("metadata")
    own = own if isinstance(own, Mapping) else {}
    for name in _SERVER_METADATA:
        if name in meta and name not in own:
            del meta[name]
