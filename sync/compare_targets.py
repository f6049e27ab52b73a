"""Target normalisation for the comparison (``argocd-sync-semantics.md`` §3.2) and the condition type.

Who calls this: :func:`sync.compare.compare`, before it selects and pairs live objects. Pure.

* Scope comes from the cluster's discovery (``namespaced(group, kind)``), else from a
  CustomResourceDefinition among the app's own targets. A kind that neither knows is **not** assumed
  namespaced (Argo CD assumes it is): the target becomes a ``ComparisonError`` naming it and is kept out of the
  operation, so nothing is applied to a guessed namespace.
* Namespaced targets without a namespace get the destination namespace; cluster-scoped targets lose theirs;
  a namespaced target that still has none is an ``InvalidSpecError``.
* Tracking metadata is stamped after the namespace is final (the id contains it).
* Objects sharing a resource key are collapsed to the last one, with a ``RepeatedResourceWarning``; objects
  with only a ``generateName`` get the synthetic key name ``<generateName><index>`` so they never collide.
* Garbage hooks are dropped; PreDelete/PostDelete-only hooks are set aside (they run on app deletion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync import hooks, tracking
from sync.models import Manifest, ResourceKey, group_of
from sync.plan import ScopeLookup

__all__ = ["COMPARISON_ERROR", "Condition", "NormalisedTargets", "ScopeLookup", "Target", "normalise_targets"]

INVALID_SPEC_ERROR = "InvalidSpecError"
COMPARISON_ERROR = "ComparisonError"
SHARED_RESOURCE_WARNING = "SharedResourceWarning"
REPEATED_RESOURCE_WARNING = "RepeatedResourceWarning"



@dataclass(frozen=True, slots=True)
class Condition:
    """One app condition (Argo CD ``status.conditions[]`` without the timestamp: the store adds it)."""

    type: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.type.endswith("Error")

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}


@dataclass(frozen=True)
class Target:
    key: ResourceKey
    #: normalised and tracking-stamped; never shown to users unmasked
    obj: dict[str, Any] = field(repr=False)
    where: str
    #: False when the kind's scope is unknown: reported, never applied
    resolved: bool = True

    @property
    def skipped(self) -> bool:
        return hooks.is_skipped(self.obj)


@dataclass(frozen=True)
class NormalisedTargets:
    targets: tuple[Target, ...]
    deletion_hooks: tuple[Target, ...]
    conditions: tuple[Condition, ...]


def _crd_scopes(objs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], bool]:
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objs:
        if not tracking.is_crd(obj):
            continue
        spec = obj.get("spec")
        if not isinstance(spec, Mapping):
            continue
        names = spec.get("names")
        kind = names.get("kind") if isinstance(names, Mapping) else None
        scope = spec.get("scope")
        if isinstance(spec.get("group"), str) and isinstance(kind, str) and scope in ("Namespaced", "Cluster"):
            scopes[(str(spec["group"]), kind)] = scope == "Namespaced"
    return scopes


def _with_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    if namespace:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    return {**obj, "metadata": meta}


def normalise_targets(
    manifests: Sequence[Manifest | Mapping[str, Any]],
    *,
    destination_namespace: str,
    namespaced: ScopeLookup,
    tracker: tracking.Tracking,
    instance: str,
) -> NormalisedTargets:
    raw: list[tuple[dict[str, Any], str]] = []
    for i, item in enumerate(manifests):
        if isinstance(item, Manifest):
            raw.append((dict(item.obj), item.where))
        else:
            raw.append((dict(item), f"manifests[{i}]"))
    crd_scopes = _crd_scopes([obj for obj, _ in raw])
    conditions: list[Condition] = []
    by_key: dict[ResourceKey, Target] = {}
    counts: dict[ResourceKey, int] = {}
    deletion: list[Target] = []

    for index, (obj, where) in enumerate(raw):
        if hooks.is_garbage_hook(obj):
            continue
        group, kind = group_of(str(obj.get("apiVersion") or "")), str(obj.get("kind") or "")
        raw_meta = obj.get("metadata")
        meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
        name = str(meta.get("name") or "")
        scope = namespaced(group, kind)
        if scope is None:
            scope = crd_scopes.get((group, kind))
        resolved = scope is not None
        if scope is None:
            conditions.append(Condition(COMPARISON_ERROR, (
                f"{where}: cannot tell whether {obj.get('apiVersion')}/{kind} {name!r} is namespaced: the cluster "
                "does not serve this kind and no CustomResourceDefinition among the app's resources defines it"
            )))
            namespace = str(meta.get("namespace") or "")
        elif scope:
            namespace = str(meta.get("namespace") or destination_namespace)
            if not namespace:
                conditions.append(Condition(
                    INVALID_SPEC_ERROR, f"Namespace for {name} {obj.get('apiVersion')}/{kind} is missing."
                ))
        else:
            namespace = ""
        obj = _with_namespace(obj, namespace)
        if resolved:
            obj = tracker.stamp(obj, instance=instance, destination_namespace=destination_namespace)
        key_name = name or f"{meta.get('generateName') or ''}{index}"
        target = Target(ResourceKey(group, kind, namespace, key_name), obj, where, resolved)
        if hooks.deletion_hook_types(obj) and not hooks.hook_phases(obj):
            deletion.append(target)
            continue
        counts[target.key] = counts.get(target.key, 0) + 1
        by_key[target.key] = target
    for key, count in counts.items():
        if count > 1:
            conditions.append(Condition(
                REPEATED_RESOURCE_WARNING, f"Resource {key} appeared {count} times among application resources."
            ))
    return NormalisedTargets(tuple(by_key.values()), tuple(deletion), tuple(conditions))
