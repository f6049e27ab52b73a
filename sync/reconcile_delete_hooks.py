"""PreDelete and PostDelete hooks (``argocd-sync-semantics.md`` §1.14, §4.16): the finalizers that make an app's
deletion run them, running them while the app is being deleted, and deleting them afterwards by their policies.

Who calls this: :class:`sync.reconciler.Reconciler` after every comparison of an app not being deleted
(:func:`manage_finalizers`): an app whose manifests hold PreDelete hooks carries
``pre-delete-finalizer.argocd.argoproj.io`` and its ``/cleanup`` twin, PostDelete likewise
(``post-delete-finalizer.argocd.argoproj.io``); they are dropped when the hooks leave Git, but only after a
comparison without errors, so a broken render never lets a deletion skip its hooks. And
:func:`sync.reconcile_delete.finalize`, one stage per pass:

* :func:`run_hooks` (PreDelete before the cascade, PostDelete after it) renders the app at its spec's target
  revision and creates the hooks of that type not live yet, tracked as the app's, once the gate (trigger
  ``delete``: the project's destinations and kinds, no sync windows) allowed them and the event sink
  recorded each; then the pass ends. Later passes wait while one is Progressing; a Degraded one is deleted
  (so a hook fixed in Git runs afresh on a later pass) and the stage fails with :class:`DeletionFailed`,
  which the caller shows as the app's ``DeletionError`` condition. When none is Progressing or Degraded
  (no health check counts as Healthy) the stage is done.
* :func:`cleanup_hooks` (the ``/cleanup`` finalizers, last) deletes the live hooks of the type whose explicit
  policy matches their aggregate health (``HookSucceeded`` when all are Healthy, ``HookFailed`` when one is
  Degraded) and waits until no hook of the type is terminating. Hooks with only the implicit
  BeforeHookCreation policy stay in the cluster (reference §10.8).

A hook object the app does not track standing at a hook's name is never taken over: the stage fails. A hook
with only a ``generateName`` gets a name fixed for this deletion (``<generateName><type>-<deletion time>``),
so later passes find it. Argo CD creates deletion hooks without the hook finalizer; one that carries it (a
hook that is also a sync hook) loses it before it is deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sync import hook_finalizer, hooks
from sync.application import Application
from sync.cluster import Cluster, ClusterError, NotFound, key_of
from sync.compare import Comparison
from sync.compare_targets import normalise_targets
from sync.engine_exec import FIELD_MANAGER
from sync.gate import GateRequest
from sync.health import Health, assess, worst
from sync.hooks import DeletePolicy
from sync.models import ResourceKey
from sync.reconcile_env import Environment
from sync.render import RenderError
from sync.store import StoredApp

__all__ = [
    "CLEANUP",
    "FINALIZERS",
    "MANAGED_FINALIZERS",
    "POST_DELETE",
    "PRE_DELETE",
    "DeletionFailed",
    "cleanup_hooks",
    "manage_finalizers",
    "run_hooks",
    "wanted_finalizers",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HELM_HOOK = "helm.sh/hook"

PRE_DELETE = "PreDelete"
POST_DELETE = "PostDelete"
#: the finalizer that makes a deletion run the hooks of a type; ``+ CLEANUP``: delete them by policy afterwards
FINALIZERS = {
    PRE_DELETE: "pre-delete-finalizer.argocd.argoproj.io",
    POST_DELETE: "post-delete-finalizer.argocd.argoproj.io",
}
CLEANUP = "/cleanup"
_STAGE = {kind: (base, base + CLEANUP) for kind, base in FINALIZERS.items()}
#: every finalizer the reconciler adds and drops by itself (an edit of the app keeps them)
MANAGED_FINALIZERS = (*_STAGE[PRE_DELETE], *_STAGE[POST_DELETE])


class DeletionFailed(Exception):
    """A deletion stage cannot go on now; the message is the app's ``DeletionError`` condition. It is tried
    again on the next pass."""


def wanted_finalizers(comparison: Comparison) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(finalizers to add, finalizers to drop) for an app not being deleted, after ``comparison``."""
    found: set[str] = set()
    for obj in (*comparison.targets, *comparison.deletion_hooks):
        # called for every comparison, memoised ones too: objects without a hook annotation are passed over
        # cheaply (targets are dicts; ``isinstance`` against the ``Mapping`` ABC would cost more than the rest)
        meta = obj.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if isinstance(annotations, dict) and (hooks.HOOK_ANNOTATION in annotations or HELM_HOOK in annotations):
            found.update(hooks.deletion_hook_types(obj))
    add = tuple(f for kind in (PRE_DELETE, POST_DELETE) if kind in found for f in _STAGE[kind])
    if comparison.conditions and comparison.errors:
        return add, ()  # what the manifests hold is not known for sure: drop nothing
    return add, tuple(f for kind in (PRE_DELETE, POST_DELETE) if kind not in found for f in _STAGE[kind])


def manage_finalizers(env: Environment, stored: StoredApp, app: Application, comparison: Comparison, *,
                      now: datetime) -> tuple[int, datetime] | None:
    """Add or drop the finalizers :func:`wanted_finalizers` calls for on ``app`` (``stored``, parsed); the app's
    new (version, created_at) when they changed. Never once the app is being deleted (the store checks that
    under its row lock)."""
    add, drop = wanted_finalizers(comparison)
    current = set(app.finalizers)
    if set(add) <= current and not set(drop) & current:
        return None
    updated = env.store.apps.edit_finalizers(stored.namespace, stored.name, add=add, remove=drop, now=now,
                                             unless_deleting=True)
    log.info("app %s/%s: deletion hook finalizers now %s", stored.namespace, stored.name,
             ", ".join(f for f in updated.application().finalizers if f in MANAGED_FINALIZERS) or "none")
    return updated.version, updated.created_at


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _label(key: ResourceKey) -> str:
    return f"{key.kind}/{key.namespace}/{key.name}" if key.namespace else f"{key.kind}/{key.name}"


def _live_hooks(env: Environment, app: Application, kind: str) -> dict[ResourceKey, Obj]:
    """The app's live hooks of ``kind``: tracked by it (not a copy carrying a cloned id), permitted by the project."""
    tracker, permitted = env.tracker, env.permitted(app)
    return {
        key_of(obj): obj
        for obj in env.live(app, fresh=True)
        if kind in hooks.deletion_hook_types(obj) and tracker.is_self_referencing(obj, None) and permitted(obj)
    }


def _named(env: Environment, stored: StoredApp, app: Application, obj: Obj, kind: str) -> Obj:
    """A ``generateName``-only hook named for this deletion (and its tracking id stamped again with the name)."""
    meta = dict(obj.get("metadata") or {})
    generate = meta.pop("generateName", None)
    if meta.get("name") or not isinstance(generate, str) or not generate or stored.deleting_at is None:
        return obj
    meta["name"] = f"{generate}{kind.lower()}-{int(stored.deleting_at.timestamp())}"
    return env.tracker.stamp({**obj, "metadata": meta}, instance=env.instance(app),
                             destination_namespace=app.destination.namespace)


def _desired_hooks(env: Environment, stored: StoredApp, app: Application, kind: str) -> dict[ResourceKey, Obj]:
    """The hooks of ``kind`` in the app's manifests at its spec's target revision, normalised and tracked."""
    try:
        rendered = env.renderer.render(app)
    except RenderError as exc:
        raise DeletionFailed(f"cannot generate the {kind} hooks: {exc}") from exc
    norm = normalise_targets(rendered.manifests, destination_namespace=app.destination.namespace,
                             namespaced=env.scope_lookup(app), tracker=env.tracker, instance=env.instance(app))
    out: dict[ResourceKey, Obj] = {}
    for target in (*norm.deletion_hooks, *norm.targets):
        if kind not in hooks.deletion_hook_types(target.obj):
            continue
        if not target.resolved:
            raise DeletionFailed(f"{kind} hook {target.where}: the cluster does not serve {target.key.group}/"
                                 f"{target.key.kind}")
        obj = _named(env, stored, app, target.obj, kind)
        out[key_of(obj)] = obj
    return out


def _create(env: Environment, app: Application, cluster: Cluster, objs: Sequence[Obj], kind: str, *,
            now: datetime) -> None:
    """Create ``objs`` once the gate allowed them all, each announced to the event sink first."""
    try:
        verdict = env.gate(GateRequest(app=app, objects=list(objs), trigger="delete", at=now))
    except Exception as exc:
        log.error("app %s: the policy gate failed on the %s hooks; denying: %s", app.name, kind, exc)
        raise DeletionFailed(f"{kind} hooks denied: the policy gate could not decide ({type(exc).__name__})") from exc
    if not verdict.allowed:
        reasons = "; ".join(v.message + (f" ({v.field})" if v.field else "") for v in verdict.violations)
        raise DeletionFailed(f"{kind} hooks denied by project policy: {reasons or 'denied'}")
    for obj in objs:
        key = key_of(obj)
        try:
            cluster.get(key)
        except NotFound:
            pass
        else:
            raise DeletionFailed(f"{kind} hook {_label(key)}: an object this app does not track is in the way")
        env.emit(app, "app.delete.hook", "creating", at=now, target=str(key), message=f"creating {kind} hook "
                 f"{_label(key)}")
        try:
            cluster.apply(obj, field_manager=FIELD_MANAGER, mode="server-side", field_validation="Strict")
        except ClusterError as exc:
            raise DeletionFailed(f"creating {kind} hook {_label(key)} failed: {exc.message}") from exc
        log.info("app %s: created %s hook %s", app.name, kind, key)


def _delete(env: Environment, app: Application, cluster: Cluster, key: ResourceKey, obj: Obj, *, now: datetime,
            why: str) -> None:
    """Delete one hook (announced first); one holding the hook finalizer is let go first. Gone already: fine."""
    env.emit(app, "app.delete.hook", "deleting", at=now, target=str(key), message=f"deleting {_label(key)}: {why}")
    try:
        if hook_finalizer.has(obj):
            hook_finalizer.remove(cluster, key, obj)
        cluster.delete(key, propagation="Background")
    except NotFound:
        return


def run_hooks(env: Environment, stored: StoredApp, kind: str, *, now: datetime) -> bool:
    """One pass of the PreDelete or PostDelete stage; True once its hooks ran (see the module docstring)."""
    app = stored.application()
    cluster = env.destinations.cluster_for(app)
    live = _live_hooks(env, app, kind)
    missing = [obj for key, obj in _desired_hooks(env, stored, app, kind).items() if key not in live]
    if missing:
        _create(env, app, cluster, missing, kind, now=now)
        return False
    progressing: list[ResourceKey] = []
    failed: list[tuple[ResourceKey, Obj]] = []
    for key, obj in sorted(live.items(), key=lambda item: str(item[0])):
        status = assess(obj)
        if status is not None and status.status is Health.PROGRESSING:
            progressing.append(key)
        elif status is not None and status.status is Health.DEGRADED:
            failed.append((key, obj))
    if failed:
        for key, obj in failed:  # gone, it is created afresh (from Git as it is then) on a later pass
            try:
                _delete(env, app, cluster, key, obj, now=now, why=f"{kind} hook failed")
            except ClusterError as exc:
                log.warning("app %s: deleting the failed %s hook %s failed: %s", app.name, kind, key, exc)
        names = ", ".join(f"{key.namespace}/{key.name}" if key.namespace else key.name for key, _ in failed)
        raise DeletionFailed(f"{kind} hook(s) failed: {names}")
    if progressing:
        log.info("app %s: waiting for %d %s hook(s) to complete", app.name, len(progressing), kind)
        return False
    return True


def cleanup_hooks(env: Environment, stored: StoredApp, kind: str, *, now: datetime) -> bool:
    """One pass of a ``/cleanup`` stage; True once no hook of ``kind`` is left to delete or still terminating."""
    app = stored.application()
    live = _live_hooks(env, app, kind)
    settled = {key: obj for key, obj in live.items() if not _deleting(obj)}
    states = [assess(obj) for obj in settled.values()]
    overall = worst(*(s.status if s is not None else Health.HEALTHY for s in states))
    pending = len(live) - len(settled)  # terminating already: waited for
    cluster = env.destinations.cluster_for(app) if settled else None
    for key, obj in sorted(settled.items(), key=lambda item: str(item[0])):
        policies = hooks.delete_policies(obj)
        if not ((DeletePolicy.HOOK_SUCCEEDED in policies and overall is Health.HEALTHY)
                or (DeletePolicy.HOOK_FAILED in policies and overall is Health.DEGRADED)):
            continue
        pending += 1
        assert cluster is not None
        try:
            _delete(env, app, cluster, key, obj, now=now, why=f"{kind} hooks {overall.value}")
        except ClusterError as exc:
            raise DeletionFailed(f"deleting {kind} hook {_label(key)} failed: {exc.message}") from exc
    if pending:
        log.info("app %s: waiting for %d %s hook(s) to be deleted", app.name, pending, kind)
    return pending == 0
