"""What the reconciler, the operation runner and app deletion share: the store, the renderer, the clusters,
the engines, the project's ``permitted`` predicate, tracking, the event sink; and the two things they all do
with them: load an app's live objects and compare an app.

Who builds it: ``api`` (the composition root) and the tests, once per process, and hands it to
:class:`sync.reconciler.Reconciler`. ``permitted(app)`` is bound by ``api`` to the project's destinations and
kind lists; objects it refuses are invisible to comparison and never pruned or deleted. ``orphan_monitor(app)``
is bound by ``api`` to the project's ``orphanedResources`` (:mod:`sync.orphans`): that is how the project's
setting reaches sync without sync reading a project.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from config.settings import SyncSettings
from sync import namespace_meta, orphans, tracking
from sync.application import Application
from sync.cluster import Cluster, NotFound
from sync.cluster_cache import ClusterCache
from sync.compare import Comparison, compare
from sync.engine import SyncEngine
from sync.engine_exec import namespaced_lookup
from sync.gate import EventSink, Gate, SyncEvent
from sync.models import ResourceKey
from sync.render import Renderer
from sync.store import SyncStore

__all__ = ["Destinations", "Environment", "Permits", "allow_all"]

Obj = Mapping[str, Any]
#: the project's verdict on one live or desired object of ``app`` (destinations, kinds)
Permits = Callable[[Application], Callable[[Obj], bool]]


def allow_all(app: Application) -> Callable[[Obj], bool]:
    """Every object is permitted: for a caller that checks the project elsewhere (and for tests)."""
    del app
    return lambda obj: True


@dataclass(frozen=True)
class Destinations:
    """Which cluster an app deploys to, and the watch cache of that cluster (None: list on demand)."""

    cluster_for: Callable[[Application], Cluster]
    cache_for: Callable[[Application], ClusterCache | None] = lambda app: None


@dataclass
class Environment:
    store: SyncStore
    renderer: Renderer
    destinations: Destinations
    gate: Gate
    events: EventSink
    settings: SyncSettings
    permitted: Permits
    #: used by the engine for short in-tick retry waits only
    sleep: Callable[[float], None] = time.sleep
    #: the app's project's ``orphanedResources`` monitor (bound by ``api``); None: not monitored
    orphan_monitor: orphans.Orphans = orphans.not_monitored
    _engines: dict[int, SyncEngine] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tracker(self) -> tracking.Tracking:
        return tracking.Tracking.from_settings(self.settings)

    def instance(self, app: Application) -> str:
        return self.tracker.instance(app.name, app.namespace)

    def engine_for(self, cluster: Cluster) -> SyncEngine:
        with self._lock:
            engine = self._engines.get(id(cluster))
            if engine is None or engine.cluster is not cluster:
                engine = SyncEngine(cluster, self.gate, self.events, self.settings, sleep=self.sleep)
                self._engines[id(cluster)] = engine
            return engine

    def live(self, app: Application, *, fresh: bool = False) -> list[dict[str, Any]]:
        """The app's tracked live objects: from the watch cache, or listed when there is none (or ``fresh``)."""
        cache = None if fresh else self.destinations.cache_for(app)
        if cache is not None:
            return [dict(obj) for obj in cache.managed(self.instance(app))]
        cluster = self.destinations.cluster_for(app)
        return cluster.list_managed(self.tracker.selector(self.instance(app)))

    def compare(self, app: Application, manifests: list[Any], live: list[dict[str, Any]], *,
                fetched: list[ResourceKey] | None = None) -> Comparison:
        """Compare ``app``; the keys of objects asked from the cluster (adoption candidates) are appended to
        ``fetched`` when given (a comparison that asked for none depends on ``live`` alone)."""
        cluster = self.destinations.cluster_for(app)

        def fetch(key: ResourceKey) -> Obj | None:
            if fetched is not None:
                fetched.append(key)
            try:
                return cluster.get(key)
            except NotFound:
                return None

        return compare(app, manifests, live, namespaced=namespaced_lookup(cluster), permitted=self.permitted(app),
                       settings=self.settings, fetch=fetch)

    def namespace_metadata_differs(self, app: Application, comparison: Comparison) -> bool:
        """Is the app's effective managedNamespaceMetadata other than what the last sync applied (§2.1)? One
        store read, only for apps with such metadata."""
        if namespace_meta.effective(app) is None:
            return False
        record = self.store.operations.operation(app.namespace, app.name)
        applied = record.namespace_metadata if record is not None else None
        return namespace_meta.differs_from_applied(app, comparison.targets, applied)

    def orphaned(self, app: Application, comparison: Comparison, *, known_apps: Callable[[], set[str]],
                 ) -> tuple[list[dict[str, str]], orphans.OrphanMonitor] | None:
        """The orphaned resources of ``app``'s destination namespace and its project's monitor; None when the
        project does not monitor them. Lists the namespace (one request per namespaced kind); raises
        :class:`sync.cluster.ClusterError` when that fails. ``known_apps()``: every app's instance name."""
        monitor = self.orphan_monitor(app)
        namespace = app.destination.namespace
        if monitor is None or not namespace:
            return None
        objects = orphans.list_namespace(self.destinations.cluster_for(app), namespace)
        found = orphans.find(objects, namespace=namespace, managed={r.key for r in comparison.resources},
                             known_apps=known_apps(), tracker=self.tracker, monitor=monitor,
                             permitted=self.permitted(app))
        return found, monitor

    def scope_lookup(self, app: Application) -> Callable[[str, str], bool | None]:
        """The ``(group, kind) → namespaced?`` lookup :meth:`compare` uses for ``app``'s cluster."""
        return namespaced_lookup(self.destinations.cluster_for(app))

    def emit(self, app: Application, action: str, result: str, *, at: datetime, message: str = "",
             operation_id: str = "", subject: str | None = None, target: str = "",
             details: Mapping[str, Any] | None = None) -> None:
        """One event to the sink (raising refuses the change it announces, as in the engine)."""
        self.events(SyncEvent(app=app.name, project=app.project, action=action, result=result, at=at,
                              operation_id=operation_id, subject=subject, target=target, message=message,
                              details=dict(details or {})))
