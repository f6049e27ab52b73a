"""Compare an app's desired objects with the cluster: sync status, health, diffs and conditions.

Who calls this: the reconciler (every refresh, feeding the store and the automated-sync decision), the sync
engine (``Comparison.targets`` and ``Comparison.managed_live`` are what it may write and prune), and the
``app diff``/``app get`` commands. Pure: the caller passes the rendered manifests, the live objects it has
(from the cluster cache or ``Cluster.list_managed``), a ``fetch`` for objects at target keys that are not
among them (adoption candidates), the discovery scope lookup and a ``permitted`` predicate (the project's
kinds and destinations). No clock; conditions carry no timestamps.

The pipeline (``argocd-sync-semantics.md`` §3.1–§3.7):

1. validate ``ignoreDifferences`` (:mod:`sync.compare_ignore`; jq expressions outside a safe subset are refused);
2. normalise targets (:mod:`sync.compare_targets`: scope, namespaces, tracking, duplicates);
3. select live objects: those this app tracks (top-level), plus any object at a target's key (adoption); drop
   what ``permitted`` refuses (never reported, never pruned); an object whose tracking names **another** app
   raises a ``SharedResourceWarning`` and is left out of the operation on both sides (deliberately stricter
   than Argo CD, which adopts it); its status compares content only (the other app's claim is not a
   difference), so it is Synced when it already holds what this app wants and OutOfSync otherwise;
4. pair by key (:func:`sync.plan.take_live`, the rule the planner uses), collapsing live copies of one object
   seen under two API groups;
5. diff each pair (:func:`sync.diff.diff`, with tracking-method migration and ``ignoreDifferences``);
6. decide per-resource status (§3.7), ``requiresPruning``, ``requiresDeletionConfirmation`` (§2.4), app status,
   resource and app health.

With effective managedNamespaceMetadata (:mod:`sync.namespace_meta`), a destination Namespace this app tracks
but Git lacks is compared with a target built from the metadata (never offered to the engine, never pruned),
and a destination Namespace Git defines that does not exist yet is Synced (the sync will create it). Whether
the metadata differs from what the last sync applied is the reconciler's question (it needs the store).

Secret values never leave in clear: every diff is masked by :mod:`sync.diff`, and ``targets``/``managed_live``
(which hold clear values for the engine) are excluded from ``repr`` and from :meth:`Comparison.to_dict`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from config.settings import SyncSettings
from sync import approval, compare_ignore, diff, health, hooks, namespace_meta, plan, tracking
from sync.application import Application
from sync.cluster import ClusterError, NotFound, key_of
from sync.compare_targets import (
    COMPARISON_ERROR,
    SHARED_RESOURCE_WARNING,
    Condition,
    ScopeLookup,
    Target,
    normalise_targets,
)
from sync.models import Manifest, ResourceKey

__all__ = ["Comparison", "Condition", "ResourceResult", "SyncStatus", "compare", "failure"]

Obj = Mapping[str, Any]
COMPARE_OPTIONS = "argocd.argoproj.io/compare-options"


class SyncStatus(str, Enum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class ResourceResult:
    """One row of ``status.resources``. ``status`` is ``None`` for hooks, ``Skip`` targets and live objects
    that fail the self-reference check (copies carrying a cloned tracking id)."""

    key: ResourceKey
    version: str
    status: SyncStatus | None
    health: health.HealthStatus | None
    hook: bool = False
    requires_pruning: bool = False
    sync_wave: int = 0
    diff: diff.DiffResult | None = None
    #: the other app whose tracking id the live object carries (it is left alone)
    shared_with: str = ""
    #: ``Delete=confirm``/``Prune=confirm`` (resource, else app): deleting it waits for the app's approval
    requires_deletion_confirmation: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.key.group,
            "version": self.version,
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "status": self.status.value if self.status else "",
            "health": None if self.health is None else {
                "status": self.health.status.value, "message": self.health.message
            },
            "hook": self.hook,
            "requiresPruning": self.requires_pruning,
            "syncWave": self.sync_wave,
        }
        if self.shared_with:
            out["sharedWith"] = self.shared_with
        if self.requires_deletion_confirmation:
            out["requiresDeletionConfirmation"] = True
        if self.diff is not None:
            out["diff"] = {
                "modified": self.diff.modified,
                "unified": self.diff.unified,
                "items": [
                    {"op": i.op, "path": i.path, "old": _jsonable(i.old), "new": _jsonable(i.new)}
                    for i in self.diff.items
                ],
            }
        return out


@dataclass(frozen=True)
class Comparison:
    instance: str
    sync_status: SyncStatus
    health: health.HealthStatus
    resources: tuple[ResourceResult, ...]
    conditions: tuple[Condition, ...]
    #: normalised, tracking-stamped targets the engine may apply, hooks included (not ``Skip`` targets, not
    #: targets another app owns, not targets of an unknown kind)
    targets: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    #: live objects the engine may touch: pair them with ``targets`` and the rest are prune candidates (live
    #: hooks included; the planner never prunes those)
    managed_live: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    #: PreDelete/PostDelete-only hooks, for app deletion
    deletion_hooks: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def errors(self) -> tuple[Condition, ...]:
        """Error conditions: while any is present a sync must not run (Argo CD refuses it too)."""
        return tuple(c for c in self.conditions if c.is_error)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the store and the API (Secret values masked, no clear objects)."""
        return {
            "instance": self.instance,
            "sync": {"status": self.sync_status.value},
            "health": {"status": self.health.status.value, "message": self.health.message},
            "resources": [r.to_dict() for r in self.resources],
            "conditions": [c.to_dict() for c in self.conditions],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def failure(app: Application, message: str, *, settings: SyncSettings) -> Comparison:
    """The comparison of an app whose desired or live state could not be loaded: everything ``Unknown``."""
    instance = tracking.Tracking.from_settings(settings).instance(app.name, app.namespace)
    return _unknown(instance, (Condition(COMPARISON_ERROR, message),))


def _unknown(instance: str, conditions: Sequence[Condition]) -> Comparison:
    return Comparison(
        instance=instance,
        sync_status=SyncStatus.UNKNOWN,
        health=health.HealthStatus(health.Health.UNKNOWN, conditions[0].message if conditions else ""),
        resources=(),
        conditions=tuple(conditions),
    )


def _uid(obj: Obj) -> str:
    meta = obj.get("metadata")
    return str(meta.get("uid") or "") if isinstance(meta, Mapping) else ""


def _dedupe_by_uid(live: list[dict[str, Any]], target_keys: set[ResourceKey]) -> list[dict[str, Any]]:
    """One copy of an object the cache saw under two API groups: prefer the copy a target names."""
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for obj in live:
        if _uid(obj):
            by_uid.setdefault(_uid(obj), []).append(obj)
    drop: set[int] = set()
    for copies in by_uid.values():
        if len(copies) > 1:
            keep = next((c for c in copies if key_of(c) in target_keys), copies[0])
            drop.update(id(c) for c in copies if c is not keep)
    return [obj for obj in live if id(obj) not in drop]


def _pairable(target: Target) -> bool:
    """Known scope and a real name (a ``generateName`` object's key name is synthetic: it has no live twin)."""
    meta = target.obj.get("metadata")
    return target.resolved and isinstance(meta, Mapping) and bool(meta.get("name"))


def _version(obj: Obj | None) -> str:
    return str((obj or {}).get("apiVersion") or "").rpartition("/")[2]


def _ignore_extraneous(obj: Obj) -> bool:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    value = annotations.get(COMPARE_OPTIONS) if isinstance(annotations, Mapping) else None
    return isinstance(value, str) and "IgnoreExtraneous" in [p.strip() for p in value.split(",")]


def compare(
    app: Application,
    manifests: Sequence[Manifest | Obj],
    live: Iterable[Obj],
    *,
    namespaced: ScopeLookup,
    permitted: Callable[[Obj], bool],
    settings: SyncSettings,
    fetch: Callable[[ResourceKey], Obj | None] | None = None,
    field_manager: str = "syncwarden",
) -> Comparison:
    """Compare ``manifests`` (rendered, as from Git) with ``live`` for ``app``; see the module docstring.

    ``fetch(key)`` returns the live object at a target key that ``live`` lacks (``None`` or
    :class:`sync.cluster.NotFound` when absent, so ``Cluster.get`` fits); any other
    :class:`sync.cluster.ClusterError` from it makes the whole comparison ``Unknown``.
    """
    tracker = tracking.Tracking.from_settings(settings)
    instance = tracker.instance(app.name, app.namespace)
    spec_errors = compare_ignore.validate(app.ignore_differences)
    if spec_errors:
        return _unknown(instance, spec_errors)
    dest_ns = app.destination.namespace
    norm = normalise_targets(
        manifests, destination_namespace=dest_ns, namespaced=namespaced, tracker=tracker, instance=instance
    )
    conditions = list(norm.conditions)
    target_keys = {t.key for t in norm.targets}

    selected: dict[ResourceKey, dict[str, Any]] = {}
    by_key: dict[ResourceKey, dict[str, Any]] = {}
    for obj in live:
        key = key_of(obj)
        if tracker.owner_of(obj) == instance:
            selected[key] = dict(obj)
        elif key in target_keys:
            by_key[key] = dict(obj)
    try:
        for t in norm.targets:
            if t.key in selected or not _pairable(t) or hooks.is_hook(t.obj):
                continue  # hooks are never adopted: a past run is found by its tracking id
            found = by_key.get(t.key)
            if found is None and fetch is not None:
                try:
                    fetched = fetch(t.key)
                except NotFound:
                    fetched = None
                found = dict(fetched) if fetched is not None else None
            if found is not None:
                selected[t.key] = found
    except ClusterError as exc:
        return _unknown(instance, (*conditions, Condition(COMPARISON_ERROR, f"failed to load live state: {exc}")))
    live_objs = [obj for obj in _dedupe_by_uid(list(selected.values()), target_keys) if permitted(obj)]

    live_by_key: dict[ResourceKey, Obj] = {key_of(obj): obj for obj in live_objs}
    managed_ns = _managed_namespace(app, norm.targets, live_by_key)
    targets = norm.targets if managed_ns is None else (*norm.targets, managed_ns)
    pairs: list[tuple[Target | None, Obj | None]] = [
        (t, plan.take_live(live_by_key, t.key, namespaced) if _pairable(t) else None) for t in targets
    ]
    pairs.extend((None, obj) for obj in live_by_key.values())

    resources: list[ResourceResult] = []
    app_out_of_sync = False
    targets_out: list[dict[str, Any]] = []
    managed_out: list[dict[str, Any]] = []
    health_input: list[tuple[str, Obj | None, bool]] = []
    self_key = ResourceKey("argoproj.io", "Application", app.namespace, app.name)
    to_create = namespace_meta.destination_key(app) if namespace_meta.effective(app) is not None else None
    for target, live_obj in pairs:
        row, affects_app, self_ref = _resource(app, target, live_obj, tracker, instance, permitted, field_manager,
                                               to_create)
        resources.append(row)
        app_out_of_sync = app_out_of_sync or affects_app
        if row.shared_with:
            conditions.append(Condition(SHARED_RESOURCE_WARNING, (
                f"{row.key.kind}/{row.key.name} is part of applications {instance} and {row.shared_with}"
            )))
            continue  # neither applied nor pruned by this app
        if target is not None and target.skipped:
            continue  # Skip: never applied, and its live twin never pruned
        if target is not None and target is managed_ns:
            pass  # compared only: CreateNamespace applies it, and it is never pruned
        elif target is not None and target.resolved:
            targets_out.append(target.obj)
        if live_obj is not None and self_ref and (target is None or target is not managed_ns):
            managed_out.append(dict(live_obj))
        if (row.status is not None or row.hook) and row.key != self_key:
            label = f"{row.key.group}/{row.key.kind}:{row.key.namespace}/{row.key.name}"
            health_input.append((label, live_obj, row.hook))

    if any(c.type == COMPARISON_ERROR for c in conditions):
        status = SyncStatus.UNKNOWN
    else:
        status = SyncStatus.OUT_OF_SYNC if app_out_of_sync else SyncStatus.SYNCED
    resources.sort(key=lambda r: (r.key.group, r.key.kind, r.key.namespace, r.key.name))
    return Comparison(
        instance=instance,
        sync_status=status,
        health=health.aggregate(health_input),
        resources=tuple(resources),
        conditions=tuple(conditions),
        targets=tuple(targets_out),
        managed_live=tuple(managed_out),
        deletion_hooks=tuple(t.obj for t in norm.deletion_hooks if t.resolved),
    )


def _managed_namespace(app: Application, targets: Sequence[Target], live_by_key: Mapping[ResourceKey, Obj],
                       ) -> Target | None:
    """§3.1 step 7: the destination Namespace this app tracks (its managedNamespaceMetadata carries the tracking
    annotation) but Git does not define is compared with a target built from the metadata, not pruned."""
    metadata = namespace_meta.effective(app)
    key = namespace_meta.destination_key(app)
    if metadata is None or key not in live_by_key or any(t.key == key for t in targets):
        return None
    return Target(key, namespace_meta.namespace_object(key.name, metadata), "spec.syncPolicy.managedNamespaceMetadata")


def _resource(
    app: Application,
    target: Target | None,
    live_obj: Obj | None,
    tracker: tracking.Tracking,
    instance: str,
    permitted: Callable[[Obj], bool],
    field_manager: str,
    to_create: ResourceKey | None = None,
) -> tuple[ResourceResult, bool, bool]:
    """One resource row, whether it makes the app OutOfSync (§3.7), and whether the live object is really
    this app's (self-referencing). ``to_create``: the destination Namespace CreateNamespace will create
    (managedNamespaceMetadata is set), whose absence is no difference."""
    obj: Obj = target.obj if target is not None else (live_obj or {})
    key = target.key if target is not None else key_of(obj)
    is_hook = hooks.is_hook(obj)
    claimed = tracker.owner_of(live_obj, top_level_only=False) if live_obj is not None else None
    shared_with = claimed if target is not None and claimed is not None and claimed != instance else ""
    self_ref = tracker.is_self_referencing(live_obj, target.obj if target is not None else None)
    no_status = is_hook or (target is not None and target.skipped) or not self_ref
    result: diff.DiffResult | None = None
    status: SyncStatus | None = None
    affects_app = False
    if target is not None and target.resolved and not no_status:
        live_view = tracker.migrate(live_obj, target.obj) if live_obj is not None else None
        desired = target.obj
        if shared_with and live_obj is not None:
            desired = tracker.with_tracking_of(desired, live_obj)  # content only: we will not take it over
        for jq in compare_ignore.jq_paths_for(app.ignore_differences, key):
            desired = jq.delete_from(copy.deepcopy(desired))
            live_view = jq.delete_from(live_view) if live_view is not None else None
        rules = compare_ignore.rules_for(app.ignore_differences, key)
        result = diff.diff(desired, live_view, manager=field_manager, rules=rules)
    if not no_status:
        if target is not None and live_obj is None and key == to_create:
            status = SyncStatus.SYNCED  # §3.7 special case: the sync creates it (CreateNamespace)
        elif target is None or live_obj is None or (result is not None and result.modified):
            status = SyncStatus.OUT_OF_SYNC
            affects_app = not (target is None and live_obj is not None and _ignore_extraneous(live_obj))
        else:
            status = SyncStatus.SYNCED
        if target is not None and (not target.resolved or not permitted(target.obj)):
            status = SyncStatus.UNKNOWN
    if live_obj is not None:
        res_health = health.assess(live_obj)
    elif target is not None and not is_hook:
        res_health = health.HealthStatus(health.Health.MISSING)
    else:
        res_health = None
    row = ResourceResult(
        key=key,
        version=_version(target.obj if target is not None else live_obj),
        status=status,
        health=res_health,
        hook=is_hook,
        requires_pruning=target is None and live_obj is not None and status is not None,
        sync_wave=hooks.wave_of(obj),
        diff=result,
        shared_with=shared_with,
        requires_deletion_confirmation=not is_hook and approval.requires_confirmation(
            target.obj if target is not None else None, live_obj,
            app.sync_policy.sync_options if app.sync_policy else ()),
    )
    return row, affects_app, self_ref
