"""Compare a desired object with its live counterpart: normalise, decide "modified", explain the difference.

Pure. The comparison follows server-side apply semantics, because that is how syncwarden applies
(``argocd-sync-semantics.md`` §3.6 "structured merge diff"): the *predicted live* object is the live object
with every desired field laid over it, so fields the server or controllers added (defaults, status,
``clusterIP``) are not differences, and a field that syncwarden applied before but Git no longer has (read from
the live object's ``managedFields`` for our field manager) is a removal.

Normalisation before the comparison (§3.5): server-populated metadata is dropped; ``status`` is ignored by
default; a Secret's ``stringData`` is folded into ``data``; ``ignoreDifferences`` JSON pointers are removed from
both sides, and fields owned by a trusted manager (``managedFieldsManagers``) are not differences.

Secret values never leave this module in clear: :func:`mask_secret` replaces every value of ``data`` (and any
copy inside the ``last-applied-configuration`` annotation) by a run of ``+`` whose length tells equal values
from different ones, so a diff still shows *that* a value changed (security-cases LEAK-01).
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config import yamlsafe

__all__ = [
    "MERGE_KEYS",
    "DiffItem",
    "DiffResult",
    "IgnoreRule",
    "diff",
    "mask_secret",
    "normalize",
    "owned_paths",
    "pointer_parts",
]

Path = tuple[str | int, ...]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SERVER_METADATA = ("creationTimestamp", "uid", "resourceVersion", "generation", "managedFields", "selfLink")
_MASK = "+" * 8

#: list merge keys for the lists the API server merges by key (strategic merge / SSA associative lists)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One ``ignoreDifferences`` entry, already matched to this object by the caller."""

    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiffItem:
    op: str  # "add" | "remove" | "change"
    path: str  # JSON pointer
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class DiffResult:
    modified: bool
    items: tuple[DiffItem, ...] = ()
    #: unified diff of the normalised live and predicted objects as YAML, Secrets masked
    unified: str = ""


def _pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def pointer_parts(pointer: str) -> list[str]:
    """The unescaped reference tokens of an RFC 6901 pointer (``/a~1b/0`` → ``["a/b", "0"]``); [] if invalid."""
    if not pointer.startswith("/"):
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _remove_pointer(obj: Any, pointer: str) -> None:
    parts = pointer_parts(pointer)
    if not parts:
        return
    node = obj
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]


def normalize(
    obj: Mapping[str, Any], *, ignore_status: bool = True, rules: Sequence[IgnoreRule] = ()
) -> dict[str, Any]:
    """A normalised deep copy (see the module docstring). Never mutates ``obj``."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in _SERVER_METADATA:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
            if not annotations:
                meta.pop("annotations")
        if isinstance(meta.get("labels"), dict) and not meta["labels"]:
            meta.pop("labels")
    if ignore_status:
        out.pop("status", None)
    if out.get("kind") == "Secret" and out.get("apiVersion") == "v1":
        _fold_string_data(out)
    for rule in rules:
        for pointer in rule.json_pointers:
            _remove_pointer(out, pointer)
    return out


def _fold_string_data(secret: dict[str, Any]) -> None:
    string_data = secret.pop("stringData", None)
    data = secret.get("data")
    data = dict(data) if isinstance(data, dict) else {}
    if isinstance(string_data, dict):
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    for key, value in list(data.items()):
        if value is None:
            data[key] = ""
    if data or "data" in secret:
        secret["data"] = data


def _overlay(live: Any, desired: Any, key: str | None = None) -> Any:
    """Server-side apply's view: desired fields replace or merge into live ones."""
    if isinstance(desired, dict) and isinstance(live, dict):
        merged = dict(live)
        for k, v in desired.items():
            merged[k] = _overlay(live[k], v, k) if k in live else copy.deepcopy(v)
        return merged
    if isinstance(desired, list) and isinstance(live, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        by_key = {item.get(merge_key): item for item in live if isinstance(item, dict)}
        return [
            _overlay(by_key[item.get(merge_key)], item) if isinstance(item, dict) and item.get(merge_key) in by_key
            else copy.deepcopy(item)
            for item in desired
        ]
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        return [_overlay(lv, dv) for lv, dv in zip(live, desired, strict=True)]
    return copy.deepcopy(desired)


def owned_paths(live: Mapping[str, Any], manager: str) -> list[Path]:
    """Leaf field paths that ``manager`` owns in ``live``'s ``managedFields`` (fieldsV1), mapped onto the object
    (associative list keys like ``k:{"name":"web"}`` become list indexes)."""
    entries = live.get("metadata", {}).get("managedFields") or []
    out: list[Path] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("manager") != manager:
            continue
        fields = entry.get("fieldsV1")
        if isinstance(fields, Mapping):
            _walk_fields(fields, live, (), out)
    return out


def _walk_fields(fields: Mapping[str, Any], node: Any, path: Path, out: list[Path]) -> None:
    children = [k for k in fields if k != "."]
    if not children:
        out.append(path)
        return
    for key in children:
        sub = fields[key]
        if key.startswith("f:"):
            name = key[2:]
            child = node.get(name) if isinstance(node, Mapping) else None
            _walk_fields(sub if isinstance(sub, Mapping) else {}, child, (*path, name), out)
        elif key.startswith("k:") and isinstance(node, list):
            try:
                wanted = json.loads(key[2:])
            except ValueError:
                continue
            for i, item in enumerate(node):
                if isinstance(item, Mapping) and all(item.get(k) == v for k, v in wanted.items()):
                    _walk_fields(sub if isinstance(sub, Mapping) else {}, item, (*path, i), out)
                    break
            else:
                out.append((*path, key))  # owned element that is gone from live: still a path we owned
        elif key.startswith("v:") and isinstance(node, list):
            out.append((*path, key))


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for part in path:
        in_map = isinstance(node, Mapping) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_map or in_list:
            node = node[part]
        else:
            return False, None
    return True, node


def _delete(obj: Any, path: Path) -> None:
    if not path:
        return
    found, parent = _get(obj, path[:-1])
    if not found:
        return
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        del parent[last]


def _compare(a: Any, b: Any, path: Path, out: list[DiffItem]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in b:
                out.append(DiffItem("remove", _pointer((*path, key)), a[key], None))
            elif key not in a:
                out.append(DiffItem("add", _pointer((*path, key)), None, b[key]))
            else:
                _compare(a[key], b[key], (*path, key), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _compare(x, y, (*path, i), out)
    elif a != b or type(a) is not type(b):
        out.append(DiffItem("change", _pointer(path), a, b))


def diff(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    manager: str = "syncwarden",
    rules: Sequence[IgnoreRule] = (),
    ignore_status: bool = True,
) -> DiffResult:
    """Is ``live`` out of date with ``desired``? (None for a side that does not exist.)"""
    if desired is None:
        return DiffResult(False)
    desired_n = normalize(desired, ignore_status=ignore_status, rules=rules)
    if live is None:
        shown = mask_secret(desired_n)[0] or {}
        return DiffResult(True, (DiffItem("add", "", None, shown),), _unified({}, shown))
    live_n = normalize(live, ignore_status=ignore_status, rules=rules)
    predicted = _overlay(live_n, desired_n)
    for path in owned_paths(live, manager):
        if any(isinstance(p, str) and p.startswith(("k:", "v:")) for p in path):
            continue
        in_desired, _ = _get(desired_n, path)
        if not in_desired and path[:1] != ("status",):
            _delete(predicted, path)
    trusted = [m for rule in rules for m in rule.managed_fields_managers]
    if trusted:
        for manager_name in trusted:
            for path in owned_paths(live, manager_name):
                found_live, value = _get(live_n, path)
                if found_live:
                    _set(predicted, path, copy.deepcopy(value))
    items: list[DiffItem] = []
    _compare(live_n, predicted, (), items)
    masked_live, masked_predicted = _masked_pair(live_n, predicted)
    unified = _unified(masked_live, masked_predicted) if items else ""
    return DiffResult(bool(items), tuple(_mask_items(items, live_n)), unified)


def _set(obj: Any, path: Path, value: Any) -> None:
    found, parent = _get(obj, path[:-1])
    if found and isinstance(parent, dict) and path and isinstance(path[-1], str):
        parent[path[-1]] = value


def _unified(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    a = yamlsafe.dump(dict(before)).splitlines(keepends=True) if before else []
    b = yamlsafe.dump(dict(after)).splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, fromfile="live", tofile="desired"))


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def mask_secret(*objs: Mapping[str, Any] | None) -> list[dict[str, Any] | None]:
    """Mask Secret values consistently across the given versions of one object: equal values get equal masks,
    different values different ones. Non-Secrets are returned as copies. ``last-applied`` copies are masked too."""
    values: dict[str, str] = {}

    def mask(value: Any) -> str:
        text = json.dumps(value, sort_keys=True)
        if text not in values:
            values[text] = _MASK + "+" * len(values)
        return values[text]

    out: list[dict[str, Any] | None] = []
    for obj in objs:
        if obj is None:
            out.append(None)
            continue
        copy_ = copy.deepcopy(dict(obj))
        if _is_secret(copy_):
            for key in ("data", "stringData"):
                if isinstance(copy_.get(key), dict):
                    copy_[key] = {k: mask(v) for k, v in copy_[key].items()}
            annotations = copy_.get("metadata", {}).get("annotations")
            if isinstance(annotations, dict) and LAST_APPLIED in annotations:
                annotations[LAST_APPLIED] = _MASK
        out.append(copy_)
    return out


def _masked_pair(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    masked = mask_secret(a, b)
    return masked[0] or {}, masked[1] or {}


def _mask_items(items: Iterable[DiffItem], live: Mapping[str, Any]) -> list[DiffItem]:
    if not _is_secret(live):
        return list(items)
    out = []
    for item in items:
        if item.path.startswith(("/data", "/stringData")) or LAST_APPLIED.replace("/", "~1") in item.path:
            old = None if item.old is None else _MASK
            new = None if item.new is None else _MASK + ("+" if item.old is not None else "")
            out.append(DiffItem(item.op, item.path, old, new))
        else:
            out.append(item)
    return out
