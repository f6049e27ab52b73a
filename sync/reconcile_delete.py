"""Finalise an app that is being deleted: the cascade finalizer deletes what the app owns, highest wave first.

Who calls this: :class:`sync.reconciler.Reconciler`, once per pass for every app carrying the deletion mark
and no operation in progress (``argocd-sync-semantics.md`` §4.16). With a resources finalizer
(``resources-finalizer.argocd.argoproj.io``, ``/foreground`` or ``/background``), each pass:

* lists the app's live objects afresh (tracked by this app *and* self-referencing, so an object another app
  owns, or a copy carrying a cloned id, is never touched) and keeps those the project permits;
* candidates exclude CRDs, ``Delete=false`` (resource option, else app option) and
  ``helm.sh/resource-policy: keep``; ``Delete=confirm`` waits for ``argocd.argoproj.io/deletion-approved``
  on the app, at or after the deletion mark;
* waits while any candidate is already terminating; deletes only the candidates of the highest wave
  (reverse wave order), foreground (background with ``/background``);
* when none remain, drops the finalizer. Without finalizers the app's rows are removed from the store.

PreDelete/PostDelete hooks are not run (see the README); every deletion goes to the event sink first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync import approval, hooks, tracking
from sync.cluster import ClusterError, NotFound, Propagation, key_of
from sync.reconcile_env import Environment
from sync.store import StoredApp

__all__ = ["RESOURCES_FINALIZERS", "finalize"]

log = logging.getLogger(__name__)

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
RESOURCES_FINALIZERS = (RESOURCES_FINALIZER, f"{RESOURCES_FINALIZER}/foreground", f"{RESOURCES_FINALIZER}/background")
DELETION_APPROVED = approval.DELETION_APPROVED
HELM_RESOURCE_POLICY = "helm.sh/resource-policy"


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    value = meta.get("annotations") if isinstance(meta, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _delete_option(obj: Mapping[str, Any], app_options: tuple[str, ...]) -> str:
    return approval.option((obj,), app_options, "Delete") or ""


def _approved(stored: StoredApp) -> bool:
    return stored.deleting_at is not None and approval.approved_since(_annotations(stored.manifest),
                                                                      stored.deleting_at)


def finalize(env: Environment, stored: StoredApp, *, now: datetime) -> bool:
    """One deletion pass; True once the app is gone from the store."""
    app = stored.application()
    finalizers = tuple(app.finalizers)
    cascade = [f for f in finalizers if f in RESOURCES_FINALIZERS]
    if cascade:
        propagation: Propagation = "Background" if cascade[0].endswith("/background") else "Foreground"
        if not _cascade_pass(env, stored, propagation, now=now):
            return False
        finalizers = tuple(f for f in finalizers if f not in RESOURCES_FINALIZERS)
        env.store.apps.set_finalizers(stored.namespace, stored.name, finalizers, now=now)
    if finalizers:
        log.info("app %s/%s: waiting for finalizers %s", stored.namespace, stored.name, ", ".join(finalizers))
        return False
    env.emit(app, "app.deleted", "succeeded", at=now, message="application deleted")
    env.store.apps.remove(stored.namespace, stored.name)
    return True


def _cascade_pass(env: Environment, stored: StoredApp, propagation: Propagation, *, now: datetime) -> bool:
    """Delete the highest wave of what remains; True when nothing deletable remains."""
    app = stored.application()
    cluster = env.destinations.cluster_for(app)
    tracker = env.tracker
    permitted = env.permitted(app)
    app_options = tuple(app.sync_policy.sync_options) if app.sync_policy else ()
    candidates = []
    for obj in env.live(app, fresh=True):
        if tracking.is_crd(obj) or not tracker.is_self_referencing(obj, None) or not permitted(obj):
            continue
        if _annotations(obj).get(HELM_RESOURCE_POLICY) == "keep" or _delete_option(obj, app_options) == "false":
            continue
        candidates.append(obj)
    if not candidates:
        return True
    if any((obj.get("metadata") or {}).get("deletionTimestamp") for obj in candidates):
        return False  # something is still terminating: wait for it
    if any(_delete_option(obj, app_options) == "confirm" for obj in candidates) and not _approved(stored):
        log.info("app %s/%s: deletion waits for %s", stored.namespace, stored.name, DELETION_APPROVED)
        return False
    top = max(hooks.wave_of(obj) for obj in candidates)
    for obj in candidates:
        if hooks.wave_of(obj) != top:
            continue
        key = key_of(obj)
        env.emit(app, "app.delete.resource", "deleting", at=now, target=str(key),
                 message=f"deleting {key.kind}/{key.name} (wave {top})")
        try:
            cluster.delete(key, propagation=propagation)
        except NotFound:
            continue
        except ClusterError as exc:
            log.warning("app %s/%s: deleting %s failed: %s", stored.namespace, stored.name, key, exc)
            return False
    return False
