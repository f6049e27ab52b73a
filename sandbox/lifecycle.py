"""Deletion: finalizers and deletionTimestamp, propagation policies, garbage collection by
ownerReferences, namespace and CustomResourceDefinition cascades.

The real API server does this in the garbage collector and the namespace controller, asynchronously.
The sandbox does it synchronously at the end of the request that makes progress possible (a delete, or
an update that removes a finalizer), so tests see the end state without polling while every
intermediate state a client can observe (an owner waiting with ``foregroundDeletion``, a namespace
``Terminating`` behind an object's finalizer) still exists. Called by ``sandbox.verbs``.
"""

from __future__ import annotations

from typing import Any

from sandbox.core import Core, clone
from sandbox.errors import ApiError
from sandbox.store import Key

__all__ = ["CRD_FINALIZER", "POLICIES", "progress", "request_delete"]

POLICIES = ("Foreground", "Background", "Orphan")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"


def _deleting(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _finalizers(obj: dict[str, Any]) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


def request_delete(
    core: Core, key: Key, *, propagation: str | None, dry_run: bool = False, uid: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Delete the object at ``key``: returns its last state and whether it is gone now.

    With finalizers left (its own, or ``foregroundDeletion``/``orphan`` added by the policy) the object
    stays, marked with ``deletionTimestamp``, until they are removed.
    """
    if propagation is not None and propagation not in POLICIES:
        raise ApiError(
            422,
            f"DeleteOptions.meta.k8s.io is invalid: propagationPolicy: Unsupported value: "
            f'"{propagation}": supported values: "Foreground", "Background", "Orphan"',
        )
    store = core.store
    with store.lock:
        live = store.get(key)
        if live is None:
            raise ApiError.not_found(key[0], key[1], key[3])
        if uid is not None and live["metadata"].get("uid") != uid:
            raise ApiError.conflict(
                key[0], key[1], key[3], f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {live['metadata'].get('uid')}",
            )
        obj = clone(live)
        meta = obj["metadata"]
        finalizers = _finalizers(obj)
        if propagation == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if propagation == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        if key[1] == "namespaces" and key[0] == "":
            obj.setdefault("status", {})["phase"] = "Terminating"
        namespace_pending = key[1] == "namespaces" and key[0] == "" and NAMESPACE_FINALIZER in (
            obj.get("spec", {}).get("finalizers") or []
        )
        if not finalizers and not namespace_pending:
            if dry_run:
                return obj, True
            gone = store.remove(key)
            assert gone is not None
            _after_removed(core, key, gone)
            return gone, True
        if finalizers:
            meta["finalizers"] = finalizers
        meta.setdefault("deletionTimestamp", core.now())
        meta.setdefault("deletionGracePeriodSeconds", 0)
        if dry_run:
            return obj, False
        if obj != live:
            store.put(key, obj, "MODIFIED")
        progress(core, key)
        current = store.get(key)
        return (current if current is not None else obj), current is None


def progress(core: Core, key: Key) -> None:
    """Advance a deleting object: run the GC finalizers, cascade, and remove it once nothing is left."""
    store = core.store
    with store.lock:
        obj = store.get(key)
        if obj is None or not _deleting(obj) or key in core.busy:
            return
        core.busy.add(key)
        try:
            _progress(core, key, obj)
        finally:
            core.busy.discard(key)


def _progress(core: Core, key: Key, obj: dict[str, Any]) -> None:
    store = core.store
    uid = obj["metadata"]["uid"]
    finalizers = _finalizers(obj)
    if ORPHAN in finalizers:
        for dep in store.dependents(uid):
            _strip_owner(core, dep, uid)
        finalizers.remove(ORPHAN)
    if FOREGROUND in finalizers:
        for dep in store.dependents(uid):
            current = store.get(dep)
            if current is not None and not _deleting(current):
                request_delete(core, dep, propagation="Foreground")
        if not store.dependents(uid):
            finalizers.remove(FOREGROUND)
    if key[0] == "apiextensions.k8s.io" and CRD_FINALIZER in finalizers and _delete_custom_objects(core, obj):
        finalizers.remove(CRD_FINALIZER)
    namespace_done = True
    if key[:2] == ("", "namespaces"):
        namespace_done = _empty_namespace(core, key[3])
    current = store.get(key)
    if current is None:
        return
    if finalizers != _finalizers(current):
        updated = clone(current)
        updated["metadata"]["finalizers"] = finalizers
        if not finalizers:
            del updated["metadata"]["finalizers"]
        store.put(key, updated, "MODIFIED")
    if not finalizers and namespace_done:
        gone = store.remove(key)
        if gone is not None:
            _after_removed(core, key, gone)


def _strip_owner(core: Core, key: Key, owner_uid: str) -> None:
    obj = core.store.get(key)
    if obj is None:
        return
    obj = clone(obj)
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)
    core.store.put(key, obj, "MODIFIED")


def _after_removed(core: Core, key: Key, gone: dict[str, Any]) -> None:
    """Garbage-collect orphans of ``gone`` and let owners and namespaces waiting for it move on."""
    store = core.store
    core.spec_changed_at.pop(key, None)
    uid = gone["metadata"]["uid"]
    for dep in store.dependents(uid):
        current = store.get(dep)
        if current is None or _deleting(current):
            continue
        owners = current["metadata"].get("ownerReferences") or []
        if all(store.key_of_uid(ref.get("uid", "")) is None for ref in owners):
            request_delete(core, dep, propagation="Background")
    for ref in gone["metadata"].get("ownerReferences") or []:
        owner = store.key_of_uid(ref.get("uid", ""))
        if owner is not None:
            progress(core, owner)
    if key[2]:
        progress(core, ("", "namespaces", "", key[2]))
    if key[:2] == ("apiextensions.k8s.io", "customresourcedefinitions"):
        core.registry.remove_crd(key[3])
        _delete_custom_objects(core, gone)


def _delete_custom_objects(core: Core, crd: dict[str, Any]) -> bool:
    """Delete every object of the CRD's resource; true when none is left."""
    spec = crd.get("spec") or {}
    group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
    store = core.store
    for dep in store.keys(group, plural):
        current = store.get(dep)
        if current is not None and not _deleting(current):
            request_delete(core, dep, propagation="Background")
    return not store.keys(group, plural)


def _empty_namespace(core: Core, namespace: str) -> bool:
    """Delete everything in a terminating namespace; true when it is empty."""
    store = core.store
    for key in store.in_namespace(namespace):
        current = store.get(key)
        if current is not None and not _deleting(current):
            request_delete(core, key, propagation="Background")
    return not store.in_namespace(namespace)
