"""Finalise an app that is being deleted, one stage per pass, each stage ending with its finalizer dropped.

Who calls this: :class:`sync.reconciler.Reconciler`, once per pass for every app carrying the deletion mark
and no operation in progress (``argocd-sync-semantics.md`` §4.16). The stages, in this order, each only while
the app carries its finalizer:

1. PreDelete hooks (``pre-delete-finalizer.argocd.argoproj.io``; :mod:`sync.reconcile_delete_hooks`);
2. the cascade (a resources finalizer; below), which deletes the PreDelete hooks too: they are the app's;
3. PostDelete hooks (``post-delete-finalizer.argocd.argoproj.io``), once the resources are gone;
4. the ``/cleanup`` finalizers (PreDelete's, then PostDelete's): hooks deleted by their delete policies.

A stage that cannot go on (a PreDelete hook failed, the gate denied a hook, a delete failed) raises
:class:`sync.reconcile_delete_hooks.DeletionFailed`: its message becomes the app's ``DeletionError``
condition (``app get`` shows it) and the stage is tried again on the next pass; the condition stays while
the stage is retried and is cleared once the stage is done (Argo CD leaves it until the app is gone).
Without finalizers left the app's rows are removed from the store; a finalizer of someone else's is waited
for.

The cascade (``resources-finalizer.argocd.argoproj.io``, ``/foreground`` or ``/background``), each pass:

* lists the app's live objects afresh (tracked by this app *and* self-referencing, so an object another app
  owns, or a copy carrying a cloned id, is never touched) and keeps those the project permits;
* candidates exclude CRDs, ``Delete=false`` (resource option, else app option) and
  ``helm.sh/resource-policy: keep``; ``Delete=confirm`` waits for ``argocd.argoproj.io/deletion-approved``
  on the app, at or after the deletion mark;
* waits while any candidate is already terminating; deletes only the candidates of the highest wave
  (reverse wave order), foreground (background with ``/background``);
* when none remain, drops the finalizer.

Every deletion and every hook created goes to the event sink first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync import approval, hooks, tracking
from sync.cluster import ClusterError, NotFound, Propagation, key_of
from sync.reconcile_delete_hooks import (
    CLEANUP,
    FINALIZERS,
    MANAGED_FINALIZERS,
    POST_DELETE,
    PRE_DELETE,
    DeletionFailed,
    cleanup_hooks,
    run_hooks,
)
from sync.reconcile_env import Environment
from sync.reconcile_status import DELETION_ERROR, with_condition
from sync.store import StoredApp

__all__ = ["RESOURCES_FINALIZERS", "STAGE_FINALIZERS", "finalize"]

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


#: every finalizer a stage of :func:`finalize` works off
STAGE_FINALIZERS = frozenset({*RESOURCES_FINALIZERS, *MANAGED_FINALIZERS})


def finalize(env: Environment, stored: StoredApp, *, now: datetime) -> bool:
    """One deletion pass: the first stage whose finalizer the app carries; True once the app is gone."""
    app = stored.application()
    try:
        done, stage = _stage(env, stored, now=now)
    except DeletionFailed as exc:
        log.warning("app %s/%s: deletion cannot go on: %s", stored.namespace, stored.name, exc)
        _deletion_error(env, stored, str(exc), now=now)
        return False
    if not done:
        return False
    _deletion_error(env, stored, None, now=now)  # the stage got through: what held it up is past
    finalizers = tuple(app.finalizers)
    if stage:
        finalizers = env.store.apps.edit_finalizers(stored.namespace, stored.name, remove=stage,
                                                    now=now).application().finalizers
        if STAGE_FINALIZERS.intersection(finalizers):
            return False  # the next stage runs on the next pass
    if finalizers:
        log.info("app %s/%s: waiting for finalizers %s", stored.namespace, stored.name, ", ".join(finalizers))
        return False
    env.emit(app, "app.deleted", "succeeded", at=now, message="application deleted")
    env.store.apps.remove(stored.namespace, stored.name)
    return True


def _stage(env: Environment, stored: StoredApp, *, now: datetime) -> tuple[bool, tuple[str, ...]]:
    """Run the first stage the app's finalizers call for: (is it done, the finalizers it works off)."""
    finalizers = stored.application().finalizers
    cascade = [f for f in finalizers if f in RESOURCES_FINALIZERS]
    pre, post = FINALIZERS[PRE_DELETE], FINALIZERS[POST_DELETE]
    if pre in finalizers:
        return run_hooks(env, stored, PRE_DELETE, now=now), (pre,)
    if cascade:
        propagation: Propagation = "Background" if cascade[0].endswith("/background") else "Foreground"
        return _cascade_pass(env, stored, propagation, now=now), RESOURCES_FINALIZERS
    if post in finalizers:
        return run_hooks(env, stored, POST_DELETE, now=now), (post,)
    for kind in (PRE_DELETE, POST_DELETE):
        if FINALIZERS[kind] + CLEANUP in finalizers:
            return cleanup_hooks(env, stored, kind, now=now), (FINALIZERS[kind] + CLEANUP,)
    return True, ()


def _deletion_error(env: Environment, stored: StoredApp, message: str | None, *, now: datetime) -> None:
    """Show (or clear, with None) why the deletion cannot go on, as the app's ``DeletionError`` condition."""
    status = env.store.apps.status(stored.namespace, stored.name)
    if message is None and not any(c.get("type") == DELETION_ERROR for c in status.conditions):
        return
    updated = with_condition(status, DELETION_ERROR, message, now=now)
    if updated != status:
        env.store.apps.put_status(stored.namespace, stored.name, updated)


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
            raise DeletionFailed(f"deleting {key.kind}/{key.name} failed: {exc.message}") from exc
    return False
