"""Orphaned resources: top-level objects in an app's destination namespace that no app tracks
(``argocd-sync-semantics.md`` §3.7 "Orphaned resources"; ``argocd-policy-semantics.md`` §1.6).

Who calls this: :class:`sync.reconcile_env.Environment`, after each comparison of an app whose project monitors
orphaned resources. The project's setting reaches sync as an :class:`OrphanMonitor` that ``api`` builds from
the AppProject's ``orphanedResources`` (sync never reads a project): ``warn`` and the project's ignore rules as
a predicate, so the glob dialect stays in ``policy``.

An object of the destination namespace is an orphan when it is top-level (no ownerReferences), is not one of
this app's resources, is not tracked by this app or by any app that exists (an object still naming a deleted
app is an orphan), is permitted by the project (kinds and destinations: what the project hides stays hidden),
is not a built-in exclusion (the ``default/kubernetes`` Service, every ``default`` ServiceAccount, every
``kube-root-ca.crt`` ConfigMap), is not of a kind Argo CD excludes by default (events, endpoints, leases) and
is not ignored by the project's rules. Orphans are listed in the app's status and counted; with ``warn`` they
raise ``OrphanedResourceWarning`` "Application has N orphaned resources". They are never pruned and never
change the sync status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync import tracking
from sync.application import Application
from sync.cluster import Cluster, ResourceInfo, key_of
from sync.compare_targets import Condition
from sync.models import ResourceKey

__all__ = [
    "ORPHANED_RESOURCE_WARNING",
    "OrphanMonitor",
    "Orphans",
    "condition",
    "find",
    "list_namespace",
    "not_monitored",
]

log = logging.getLogger(__name__)

ORPHANED_RESOURCE_WARNING = "OrphanedResourceWarning"

#: kinds Argo CD's default ``resource.exclusions`` leave out of its cluster cache, so they are never orphans
#: (they are made by the cluster itself: events, endpoints, leader-election leases)
_EXCLUDED_KINDS = frozenset({
    ("", "Event"), ("events.k8s.io", "Event"), ("", "Endpoints"), ("discovery.k8s.io", "EndpointSlice"),
    ("coordination.k8s.io", "Lease"),
})
_EXCLUDED_GROUPS = frozenset({"metrics.k8s.io", "authorization.k8s.io", "authentication.k8s.io"})


def _never(group: str, kind: str, name: str) -> bool:
    del group, kind, name
    return False


@dataclass(frozen=True)
class OrphanMonitor:
    """A project's ``orphanedResources``: monitoring is on when this exists; ``warn`` raises the condition;
    ``ignored(group, kind, name)`` applies the project's ignore rules."""

    warn: bool = False
    ignored: Callable[[str, str, str], bool] = field(default=_never, compare=False)


#: what ``api`` binds: the monitor of an app's project, or None when the project does not monitor (or is unknown)
Orphans = Callable[[Application], OrphanMonitor | None]


def not_monitored(app: Application) -> OrphanMonitor | None:
    """No project monitors orphaned resources (the default when nothing is bound)."""
    del app
    return None


def _builtin_exclusion(key: ResourceKey) -> bool:
    if (key.group, key.kind) in _EXCLUDED_KINDS or key.group in _EXCLUDED_GROUPS:
        return True
    if key.group != "":
        return False
    return (
        (key.kind == "Service" and key.namespace == "default" and key.name == "kubernetes")
        or (key.kind == "ServiceAccount" and key.name == "default")
        or (key.kind == "ConfigMap" and key.name == "kube-root-ca.crt")
    )


def _version(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[2]


def find(
    objects: Iterable[Mapping[str, Any]],
    *,
    namespace: str,
    managed: Collection[ResourceKey],
    known_apps: Collection[str],
    tracker: tracking.Tracking,
    monitor: OrphanMonitor,
    permitted: Callable[[Mapping[str, Any]], bool],
) -> list[dict[str, str]]:
    """The orphans among ``objects`` (see the module docstring), as status entries sorted by group, kind and
    name. ``managed``: the keys of the app's own resources; ``known_apps``: the instance names of every app."""
    out: dict[ResourceKey, dict[str, str]] = {}
    for obj in objects:
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping) or meta.get("ownerReferences"):
            continue
        key = key_of(obj)
        if key.namespace != namespace or key in managed or key in out or _builtin_exclusion(key):
            continue
        owner = tracker.owner_of(obj)
        if owner is not None and owner in known_apps:
            continue
        if not permitted(obj) or monitor.ignored(key.group, key.kind, key.name):
            continue
        out[key] = {"group": key.group, "version": _version(obj), "kind": key.kind, "namespace": key.namespace,
                    "name": key.name}
    return [out[k] for k in sorted(out, key=lambda k: (k.group, k.kind, k.name))]


def condition(orphans: list[dict[str, str]], monitor: OrphanMonitor) -> Condition | None:
    """``OrphanedResourceWarning`` when the project warns and there are orphans."""
    if not monitor.warn or not orphans:
        return None
    return Condition(ORPHANED_RESOURCE_WARNING, f"Application has {len(orphans)} orphaned resources")


def _listable(info: ResourceInfo) -> bool:
    return info.namespaced and "list" in info.verbs and (info.group, info.kind) not in _EXCLUDED_KINDS and (
        info.group not in _EXCLUDED_GROUPS
    )


def list_namespace(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """Every object of every listable namespaced kind in ``namespace`` (one list per kind). Raises
    :class:`sync.cluster.ClusterError` when a list fails (the caller keeps what it knew)."""
    out: list[dict[str, Any]] = []
    for info in cluster.served_resources():
        if _listable(info):
            out.extend(cluster.list_objects(info, namespace=namespace).items)
    return out
