"""Argo CD's hook finalizer ``argocd.argoproj.io/hook-finalizer``: put on every hook the sync engine creates,
so the object cannot vanish (a Job's ``ttlSecondsAfterFinished``, pod garbage collection) before its result
is read, and taken off again once it no longer matters (``argocd-sync-semantics.md`` §4.9).

Who calls this: :mod:`sync.engine` (:func:`added`, on every hook target), :mod:`sync.engine_steps` (when a hook
completes, before a previous run's hook is replaced, on terminate, before a hook is deleted by its policy)
and :mod:`sync.reconcile_delete_hooks` (before it deletes a hook). Removal is a merge patch of
``metadata.finalizers`` carrying the resourceVersion it was computed from, so a finalizer someone else added
in between is never dropped: the server answers ``Conflict`` and the caller reads the object again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from sync.cluster import Cluster, NotFound
from sync.health import HOOK_FINALIZER
from sync.models import ResourceKey

__all__ = ["HOOK_FINALIZER", "added", "has", "remove"]

def _finalizers(obj: Mapping[str, Any]) -> list[str]:
    meta = obj.get("metadata")
    value = meta.get("finalizers") if isinstance(meta, Mapping) else None
    return [str(f) for f in value] if isinstance(value, list) else []


def has(obj: Mapping[str, Any] | None) -> bool:
    """Whether ``obj`` carries the hook finalizer."""
    return obj is not None and HOOK_FINALIZER in _finalizers(obj)


def added(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of hook target ``obj`` carrying the hook finalizer (after any finalizers it declares)."""
    out = copy.deepcopy(dict(obj))
    meta = dict(out.get("metadata") or {})
    finalizers = _finalizers(out)
    if HOOK_FINALIZER not in finalizers:
        meta["finalizers"] = [*finalizers, HOOK_FINALIZER]
    out["metadata"] = meta
    return out


def remove(
    cluster: Cluster,
    key: ResourceKey,
    live: Mapping[str, Any] | None = None,
    *,
    retry: Callable[[str, Callable[[], dict[str, Any] | None]], dict[str, Any] | None] | None = None,
) -> dict[str, Any] | None:
    """Take the hook finalizer off the object at ``key``; returns the object as it is now (None once gone).

    ``live`` (a recent read) saves the first GET; ``retry(what, attempt)`` wraps each attempt (the engine's
    bounded retry of conflicts and unavailability), and every attempt after the first reads the object afresh.
    Without ``retry`` a ``Conflict`` is raised to the caller.
    """
    pending = live

    def attempt() -> dict[str, Any] | None:
        nonlocal pending
        current, pending = pending, None
        if current is None:
            try:
                current = cluster.get(key)
            except NotFound:
                return None
        if not has(current):
            return dict(current)
        meta = current.get("metadata") or {}
        kept = [f for f in _finalizers(current) if f != HOOK_FINALIZER]
        try:
            return cluster.set_finalizers(key, kept, resource_version=str(meta.get("resourceVersion") or ""))
        except NotFound:
            return None

    if retry is None:
        return attempt()
    return retry(f"remove the hook finalizer of {key}", attempt)
