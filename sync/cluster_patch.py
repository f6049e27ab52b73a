"""Client-side apply, the pure half: the ``last-applied-configuration`` annotation and a three-way merge patch.

Who calls it: :meth:`sync.kube.KubeCluster.apply` in ``client-side`` mode (Argo CD's default apply,
``shared/reference/argocd-sync-semantics.md`` §4.7). Like ``kubectl apply``, the object's previous
applied configuration is kept in an annotation; the patch sets every field of the new desired object
and deletes (``null``) the fields that were in the previous applied configuration but are no longer
desired. Fields neither applied before nor now (server defaults, controllers' additions) are left alone.
The patch is a JSON merge patch (RFC 7386), which every kind accepts, custom resources included; lists
are replaced whole, as the desired object states them in full.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["LAST_APPLIED", "last_applied", "three_way_merge_patch", "with_last_applied"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Fields the server owns; never part of an applied configuration.
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


def _clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for name in _SERVER_FIELDS:
            meta.pop(name, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
            if not annotations:
                meta.pop("annotations")
    return out


def with_last_applied(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` carrying its own applied configuration in the annotation."""
    cleaned = _clean(obj)
    body = copy.deepcopy(cleaned)
    meta = body.setdefault("metadata", {})
    annotations = meta.setdefault("annotations", {})
    annotations[LAST_APPLIED] = json.dumps(cleaned, sort_keys=True, separators=(",", ":"))
    return body


def last_applied(live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The configuration last applied to ``live``, or ``None`` when absent or unreadable."""
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not isinstance(raw, str):
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _diff(original: Mapping[str, Any], modified: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, value in modified.items():
        cur = current.get(key)
        if isinstance(value, dict) and isinstance(cur, dict):
            orig = original.get(key)
            sub = _diff(orig if isinstance(orig, dict) else {}, value, cur)
            if sub:
                patch[key] = sub
        elif cur != value:
            patch[key] = copy.deepcopy(value)
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    return patch


def three_way_merge_patch(
    original: Mapping[str, Any] | None, desired: Mapping[str, Any], live: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch that takes ``live`` to ``desired`` (``desired`` should carry its last-applied
    annotation already), deleting only fields that ``original`` applied and ``desired`` no longer has."""
    return _diff(original or {}, desired, live)
