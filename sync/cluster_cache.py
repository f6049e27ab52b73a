"""A list+watch cache of the tracked objects of one cluster, with an event callback for drift detection.

Who uses it: the reconciler keeps one cache per destination cluster (Argo CD's cluster cache,
``shared/reference/argocd-sync-semantics.md`` §3.8). A steady-state comparison reads live objects from
:meth:`ClusterCache.managed` instead of asking the API server, and every change the watches report is
handed to ``on_event`` with the app(s) it concerns, so the reconciler can refresh just those apps.

How it stays correct:

* :meth:`ClusterCache.warm` lists every resource type once (one list per type, the tracking selector
  narrowing it server-side for label tracking) and remembers each list's resourceVersion.
* One watcher thread per type resumes from the last resourceVersion it saw (events and bookmarks);
  the server ends each watch after ``watch_timeout_seconds`` and the thread re-watches from there.
* A ``410 Gone`` (resourceVersion too old) makes the thread relist; so does the periodic resync every
  ``resync_seconds`` (the clock is a parameter). A relist compares with the cache and reports the
  differences as events, so nothing missed while disconnected goes unnoticed.
* CustomResourceDefinitions are watched too: any CRD event invalidates discovery and, when the cache
  covers every type, starts watching types that appeared (and drops types that went away).
* Only top-level objects tracked by some app are kept (full objects, as Argo CD keeps full manifests
  only for tracked top-level objects).

Only the ``Cluster`` protocol is used, so this module never imports ``kubernetes``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sync.cluster import (
    Cluster,
    ClusterError,
    Gone,
    NotFound,
    ResourceInfo,
    ResourceKey,
    TrackingSelector,
    WatchEvent,
    key_of,
)

__all__ = ["CacheEvent", "CacheStats", "ClusterCache"]

log = logging.getLogger(__name__)

CRD_GROUP, CRD_KIND = "apiextensions.k8s.io", "CustomResourceDefinition"


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """A change seen by the cache. ``apps`` holds the app that tracked it before and/or after."""

    type: str
    key: ResourceKey
    obj: dict[str, Any]
    apps: frozenset[str]


@dataclass
class CacheStats:
    lists: int = 0
    watches: int = 0
    relists: int = 0
    events: int = 0


@dataclass
class _TypeState:
    info: ResourceInfo
    namespace: str = ""
    resource_version: str | None = None
    next_resync: float = 0.0
    keys: set[ResourceKey] = field(default_factory=set)
    stopped: bool = False
    thread: threading.Thread | None = None


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class ClusterCache:
    def __init__(
        self,
        cluster: Cluster,
        selector: TrackingSelector,
        *,
        on_event: Callable[[CacheEvent], None] | None = None,
        kinds: Iterable[tuple[str, str]] | None = None,
        namespaces: Iterable[str] = (),
        resync_seconds: float = 12 * 3600.0,
        watch_timeout_seconds: int = 600,
        retry_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cluster = cluster
        self._selector = TrackingSelector(key=selector.key, method=selector.method, app=None)
        self._on_event = on_event
        self._kinds = None if kinds is None else frozenset(kinds)
        self._namespaces = tuple(namespaces)
        self.resync_seconds = resync_seconds
        self.watch_timeout_seconds = watch_timeout_seconds
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._objects: dict[ResourceKey, dict[str, Any]] = {}
        self._by_app: dict[str, set[ResourceKey]] = {}
        self._states: dict[tuple[str, str, str], _TypeState] = {}
        self._crd_state: _TypeState | None = None
        self._stop = threading.Event()
        self._running = False
        self.stats = CacheStats()

    # -- reading -------------------------------------------------------------------------------------

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(key)

    def managed(self, app: str) -> list[dict[str, Any]]:
        """The cached objects ``app`` tracks (no API request)."""
        with self._lock:
            return [self._objects[k] for k in self._by_app.get(app, ())]

    def apps(self) -> set[str]:
        with self._lock:
            return {a for a, keys in self._by_app.items() if keys}

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    # -- filling -------------------------------------------------------------------------------------

    def _wanted_types(self) -> list[ResourceInfo]:
        infos = self._cluster.served_resources()
        if self._kinds is not None:
            infos = [i for i in infos if (i.group, i.kind) in self._kinds]
        if self._namespaces:
            infos = [i for i in infos if i.namespaced]
        return infos

    def _new_states(self, infos: Iterable[ResourceInfo]) -> list[_TypeState]:
        out = []
        for info in infos:
            for ns in self._namespaces or ("",):
                sid = (info.group, info.kind, ns)
                if sid not in self._states:
                    self._states[sid] = _TypeState(info=info, namespace=ns)
                    out.append(self._states[sid])
        return out

    def warm(self) -> None:
        """List every type once and fill the cache (no events are reported for what was already there)."""
        with self._lock:
            states = self._new_states(self._wanted_types())
        for st in states:
            self._relist(st, emit=False)
        self._crd_state = self._crd_state or self._crd_watch_state()

    def resync(self) -> None:
        """Relist every type now and report what changed (a hard refresh; the watchers do this on
        their own every ``resync_seconds`` and after a 410)."""
        with self._lock:
            states = list(self._states.values())
        for st in states:
            self.stats.relists += 1
            self._relist(st, emit=True)

    def _crd_watch_state(self) -> _TypeState | None:
        try:
            info = self._cluster.resource_for_group_kind(CRD_GROUP, CRD_KIND)
            listed = self._cluster.list_objects(info)
        except ClusterError as exc:
            log.info("not watching CRDs (%s); new kinds are found on lookup misses only", exc)
            return None
        self.stats.lists += 1
        return _TypeState(info=info, resource_version=listed.resource_version)

    def _relist(self, st: _TypeState, *, emit: bool) -> None:
        listed = self._cluster.list_objects(
            st.info, label_selector=self._selector.label_selector(), namespace=st.namespace
        )
        self.stats.lists += 1
        events: list[CacheEvent] = []
        with self._lock:
            seen: set[ResourceKey] = set()
            for obj in listed.items:
                if not self._selector.matches(obj):
                    continue
                key = key_of(obj)
                seen.add(key)
                old = self._objects.get(key)
                if old is None or _rv(old) != _rv(obj):
                    events.append(self._store(key, obj, "ADDED" if old is None else "MODIFIED"))
            for key in st.keys - seen:
                events.append(self._drop(key))
            st.keys = seen
            st.resource_version = listed.resource_version
            st.next_resync = self._clock() + self.resync_seconds
        if emit:
            self._emit(events)

    def _store(self, key: ResourceKey, obj: dict[str, Any], kind: str) -> CacheEvent:
        old = self._objects.get(key)
        old_app = self._selector.app_of(old) if old else None
        new_app = self._selector.app_of(obj)
        if old_app and old_app != new_app:
            self._by_app.get(old_app, set()).discard(key)
        if new_app:
            self._by_app.setdefault(new_app, set()).add(key)
        self._objects[key] = obj
        return CacheEvent(kind, key, obj, frozenset(a for a in (old_app, new_app) if a))

    def _drop(self, key: ResourceKey, obj: dict[str, Any] | None = None) -> CacheEvent:
        old = self._objects.pop(key, None) or obj or {}
        app = self._selector.app_of(old)
        if app:
            self._by_app.get(app, set()).discard(key)
        return CacheEvent("DELETED", key, obj or old, frozenset([app] if app else []))

    def _apply(self, st: _TypeState, event: WatchEvent) -> CacheEvent | None:
        with self._lock:
            st.resource_version = event.resource_version or st.resource_version
            if event.type == "BOOKMARK":
                return None
            key = key_of(event.obj)
            tracked = self._selector.matches(event.obj)
            if event.type == "DELETED" or not tracked:
                if key not in self._objects:
                    return None  # never tracked: not ours to report
                st.keys.discard(key)
                return self._drop(key, event.obj)
            st.keys.add(key)
            old = self._objects.get(key)
            if old is not None and _rv(old) == _rv(event.obj):
                return None  # already seen (a relist raced the watch): nothing changed
            return self._store(key, event.obj, event.type)

    def _emit(self, events: Iterable[CacheEvent]) -> None:
        for event in events:
            self.stats.events += 1
            if self._on_event is None:
                continue
            try:
                self._on_event(event)
            except Exception:  # a failing callback must not kill the watch; it is logged with its key
                log.exception("cache event callback failed for %s %s", event.type, event.key)

    # -- watching ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Warm (if not yet) and start one watcher thread per type, plus the CRD watcher."""
        if self._running:
            return
        if not self._states:
            self.warm()
        self._stop.clear()
        self._running = True
        with self._lock:
            states = list(self._states.values())
        for st in states:
            self._spawn(st, self._run)
        if self._crd_state is not None:
            self._spawn(self._crd_state, self._run_crds)

    def _spawn(self, st: _TypeState, target: Callable[[_TypeState], None]) -> None:
        name = f"cache-{self._cluster.name}-{st.info}-{st.namespace}"
        st.thread = threading.Thread(target=target, args=(st,), name=name, daemon=True)
        st.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask every watcher to end and wait for them (each ends when its current watch returns)."""
        self._stop.set()
        self._running = False
        with self._lock:
            states = [*self._states.values(), *([self._crd_state] if self._crd_state else [])]
        for st in states:
            if st.thread is not None and st.thread is not threading.current_thread():
                st.thread.join(timeout)

    def _watch_seconds(self, st: _TypeState) -> int:
        return max(1, min(self.watch_timeout_seconds, int(st.next_resync - self._clock()) + 1))

    def _run(self, st: _TypeState) -> None:
        while not self._stop.is_set() and not st.stopped:
            try:
                if st.resource_version is None or self._clock() >= st.next_resync:
                    self.stats.relists += 1
                    self._relist(st, emit=True)
                self.stats.watches += 1
                for event in self._cluster.watch_objects(
                    st.info,
                    resource_version=st.resource_version or "",
                    label_selector=self._selector.label_selector(),
                    namespace=st.namespace,
                    timeout_seconds=self._watch_seconds(st),
                ):
                    if self._stop.is_set() or st.stopped:
                        return
                    change = self._apply(st, event)
                    if change is not None:
                        self._emit([change])
            except Gone:
                log.info("watch of %s expired (410); relisting", st.info)
                st.resource_version = None
            except NotFound:
                log.info("%s is no longer served; dropping it from the cache", st.info)
                self._retire(st)
            except ClusterError as exc:
                log.warning("watch of %s failed, retrying in %.0fs: %s", st.info, self.retry_seconds, exc)
                self._stop.wait(self.retry_seconds)

    def _retire(self, st: _TypeState) -> None:
        with self._lock:
            st.stopped = True
            self._states.pop((st.info.group, st.info.kind, st.namespace), None)
            events = [self._drop(k) for k in st.keys]
            st.keys = set()
        self._emit(events)

    def _run_crds(self, st: _TypeState) -> None:
        while not self._stop.is_set():
            try:
                if st.resource_version is None:
                    st.resource_version = self._cluster.list_objects(st.info).resource_version
                    self.stats.lists += 1
                for event in self._cluster.watch_objects(
                    st.info, resource_version=st.resource_version, timeout_seconds=self.watch_timeout_seconds
                ):
                    if self._stop.is_set():
                        return
                    st.resource_version = event.resource_version or st.resource_version
                    if event.type != "BOOKMARK":
                        self._cluster.invalidate_discovery()
                        self._sync_types()
            except Gone:
                st.resource_version = None
            except ClusterError as exc:
                log.warning("CRD watch failed, retrying in %.0fs: %s", self.retry_seconds, exc)
                self._stop.wait(self.retry_seconds)

    def _sync_types(self) -> None:
        """After a CRD change: watch types that appeared, retire types that are gone."""
        if self._kinds is not None and not self._kinds - {(s.info.group, s.info.kind) for s in self._states.values()}:
            return
        try:
            wanted = self._wanted_types()
        except ClusterError as exc:
            log.warning("discovery after a CRD change failed: %s", exc)
            return
        present = {(i.group, i.kind) for i in wanted}
        with self._lock:
            new = self._new_states(wanted)
            gone = [s for s in self._states.values() if (s.info.group, s.info.kind) not in present]
        for st in gone:
            self._retire(st)
        for st in new:
            st.resource_version = None  # its loop lists it first, reporting what it finds
            if self._running:
                self._spawn(st, self._run)
