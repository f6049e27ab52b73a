"""The one place that builds the running system from :class:`config.settings.Settings`.

Who calls it: the ``syncwarden app`` commands (local mode: everything in this process, no server) and, later,
``syncwarden serve``. It is free of Typer and FastAPI so both entry points share it unchanged.

:func:`build_services` opens, in this order: the policy store and the sync store (one database URL, each
with its own tables and migrations), the live policy (the newest stored RBAC policy plus every stored project's
runtime policy, re-read at most every ``policy_refresh_seconds``), the cluster registry from the kubeconfig
(``context`` selects the cluster that ``https://kubernetes.default.svc``/``in-cluster`` mean), the renderer,
and then binds policy into sync:

* the gate: :class:`api.gate.PolicyGate` with the app's cluster discovery as the kind scope; each decision is
  audited (``app.sync.gate``, with an override's reason) and one that cannot be recorded is a denial;
* ``permitted`` for compare, prune and deletion: :func:`api.gate.prune_permit` of the app's project (an
  unknown or unreadable project permits nothing: fail closed);
* ``orphan_monitor``: the app's project's ``orphanedResources`` (:func:`api.policy_binding.orphan_monitor`);
* the event sink: every :class:`sync.gate.SyncEvent` becomes an audit record (action ``app.<event>``); when
  the audit log cannot be written the sink raises, so the engine refuses the change it announced.

The result is a :class:`Services` holding the Reconciler and the AppService; ``close()`` releases everything.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.gate import Scope, prune_permit
from api.policy_binding import AuditSink, LivePolicyView, RoutingGate, audit_event, orphan_monitor
from config.settings import Settings
from policy import audit
from policy import tokens as token_crypto
from policy.errors import ConflictError
from policy.project import AppProject, default_project
from policy.store import Store, open_store
from sync import kube, tracking
from sync.application import Application
from sync.appservice import AppService
from sync.cluster import Cluster, TrackingSelector
from sync.cluster_cache import CacheEvent, ClusterCache
from sync.cluster_registry import ClusterEntry, ClusterRegistry
from sync.engine_exec import namespaced_lookup
from sync.reconcile_env import Destinations, Environment
from sync.reconciler import Reconciler
from sync.render import Renderer
from sync.store import SyncStore, open_sync_store

__all__ = ["AuditSink", "LivePolicyView", "RoutingGate", "Services", "audit_event", "build_services"]

Obj = Mapping[str, Any]


class _Clusters:
    """One connection per registered cluster, made on first use; with ``watch``, one watch cache per cluster
    too (started on first use), whose events go to ``on_event`` (the reconciler's drift detection)."""

    def __init__(self, registry: ClusterRegistry, *, timeout_seconds: float, qps: float,
                 selector: TrackingSelector, watch: bool) -> None:
        self.registry = registry
        self._timeout = timeout_seconds
        self._qps = qps
        self._selector = selector
        self._watch = watch
        self.on_event: Callable[[CacheEvent], None] | None = None
        self._lock = threading.RLock()
        self._connected: dict[str, kube.KubeCluster] = {}
        self._scopes: dict[str, Scope] = {}
        self._caches: dict[str, ClusterCache] = {}

    def entry_for(self, app: Application) -> ClusterEntry:
        return self.registry.resolve(server=app.destination.server, name=app.destination.name)

    def cluster_for(self, app: Application) -> Cluster:
        entry = self.entry_for(app)
        with self._lock:
            cluster = self._connected.get(entry.name)
            if cluster is None:
                cluster = kube.connect(entry, timeout_seconds=self._timeout, qps=self._qps)
                self._connected[entry.name] = cluster
                self._scopes[entry.name] = namespaced_lookup(cluster)
            return cluster

    def scope_for(self, app: Application) -> Scope:
        self.cluster_for(app)
        return self._scopes[self.entry_for(app).name]

    def cache_for(self, app: Application) -> ClusterCache | None:
        if not self._watch:
            return None
        entry = self.entry_for(app)
        with self._lock:
            cache = self._caches.get(entry.name)
            if cache is None:
                events = self.on_event
                cache = ClusterCache(self.cluster_for(app), self._selector, namespaces=entry.namespaces,
                                     on_event=(lambda event: events(event)) if events is not None else None)
                cache.start()
                self._caches[entry.name] = cache
            return cache

    def close(self) -> None:
        with self._lock:
            for cache in self._caches.values():
                cache.stop(timeout=1.0)  # watchers are daemons; a watch still open ends with the process
            self._caches.clear()
            for cluster in self._connected.values():
                cluster.close()
            self._connected.clear()


@dataclass
class Services:
    settings: Settings
    policy_store: Store
    sync_store: SyncStore
    registry: ClusterRegistry
    policy: LivePolicyView
    events: AuditSink
    env: Environment
    reconciler: Reconciler
    apps: AppService
    _clusters: _Clusters = field(repr=False)

    def project(self, name: str) -> AppProject | None:
        return self.policy.project(name)

    def cluster_for(self, app: Application) -> Cluster:
        return self._clusters.cluster_for(app)

    def record(self, ctx: audit.AuditContext, *, action: str, result: str, app: Application, at: datetime,
               details: Mapping[str, Any] | None = None, violations: Sequence[Mapping[str, Any]] = ()) -> None:
        """Audit a request about an app (create, update, delete, ...); raises ``AuditUnavailable``."""
        self.policy_store.audit.append(audit.AuditEvent.create(
            ctx=ctx, time=at, action=action, result=result, project=app.project, app=app.name,
            violations=violations, details=details))

    def close(self) -> None:
        """Release clusters, drain the audit writer, close both stores."""
        try:
            self._clusters.close()
        finally:
            try:
                self.sync_store.close()
            finally:
                self.policy_store.close()


def _keyring(settings: Settings) -> token_crypto.KeyRing:
    secret = settings.policy.signing_key.get_secret_value() if settings.policy.signing_key else None
    return token_crypto.load_keyring(signing_key=secret, data_dir=settings.data_dir)


def _ensure_default_project(store: Store, *, ctx: audit.AuditContext, now: datetime) -> None:
    if store.projects.find("default") is not None:
        return
    with contextlib.suppress(ConflictError):  # another process created it first
        store.projects.create(default_project().to_dict(), ctx=ctx, now=now, source="built-in default")


def build_services(
    settings: Settings,
    *,
    kubeconfig: Sequence[Path] | None = None,
    context: str | None = None,
    client: str = "reconciler",
    admin_subjects: Sequence[str] = (),
    allow_file_urls: bool | None = None,
    ensure_default_project: bool = True,
    cluster_timeout_seconds: float = 30.0,
    cluster_qps: float = 50.0,
    policy_refresh_seconds: float = 2.0,
    owner: str | None = None,
    watch: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    environ: Mapping[str, str] | None = None,
) -> Services:
    """Build everything (see the module docstring). Raises ``ValueError`` for bad configuration (a short
    signing key, an unsupported database URL), ``sync.cluster.ConfigError``/``UnknownCluster`` for a bad
    kubeconfig or context, ``sqlalchemy.exc.SQLAlchemyError`` when the database cannot be reached.

    ``owner`` names this process in operation leases (default: random, one per process); a stable name lets
    the next process of the same owner go on at once with an operation an interrupted one had leased.
    ``watch`` keeps a watch cache per cluster (``serve``: live objects from memory, drift noticed between
    polls); without it (the CLI) live objects are listed when needed."""
    sync_settings = settings.sync
    if allow_file_urls is not None:
        sync_settings = sync_settings.model_copy(update={"allow_file_urls": allow_file_urls})
    registry = ClusterRegistry.load(kubeconfig, environ=environ)
    if context:
        registry.get(context)  # UnknownCluster naming the known contexts
        registry.current = context
    url = settings.database_url()
    policy_store = open_store(url, keyring=_keyring(settings), issuer=settings.policy.token_issuer,
                              audience=settings.policy.token_audience, pool_size=settings.database.pool_size,
                              verify_cache_seconds=policy_refresh_seconds)
    try:
        sync_store = open_sync_store(url, pool_size=settings.database.pool_size)
    except BaseException:
        policy_store.close()
        raise
    try:
        if ensure_default_project:
            _ensure_default_project(policy_store, ctx=audit.AuditContext(subject="syncwarden", client=client),
                                    now=clock())
        policy = LivePolicyView(policy_store, interval=policy_refresh_seconds, admin_subjects=admin_subjects)
        clusters = _Clusters(registry, timeout_seconds=cluster_timeout_seconds, qps=cluster_qps, watch=watch,
                             selector=tracking.Tracking.from_settings(sync_settings).selector())

        def permitted(app: Application) -> Callable[[Obj], bool]:
            project = policy.project(app.project)
            if project is None:
                return lambda obj: False
            return prune_permit(project, app, clusters.scope_for(app))

        sink = AuditSink(policy_store.audit, client=client)
        gate = RoutingGate(policy, clusters.scope_for, control_plane_namespace=sync_settings.control_plane_namespace,
                           audit_log=policy_store.audit, client=client)
        env = Environment(
            store=sync_store,
            renderer=Renderer.create(settings=sync_settings, cache_dir=settings.data_dir / "cache"),
            destinations=Destinations(cluster_for=clusters.cluster_for, cache_for=clusters.cache_for),
            gate=gate,
            events=sink,
            settings=sync_settings,
            permitted=permitted,
            sleep=sleep,
            orphan_monitor=lambda app: orphan_monitor(policy.project(app.project)),
        )
        reconciler = Reconciler(env, clock=clock, owner=owner)
        clusters.on_event = reconciler.on_cache_event
    except BaseException:
        sync_store.close()
        policy_store.close()
        raise
    return Services(
        settings=settings, policy_store=policy_store, sync_store=sync_store, registry=registry, policy=policy,
        events=sink, env=env, reconciler=reconciler, apps=AppService(sync_store, reconciler=reconciler),
        _clusters=clusters,
    )
