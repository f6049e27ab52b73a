"""A reconciler wired to real parts for the reconciler tests: the sandbox over HTTP (official client), a real
Git repository in a temp dir, a SQLite store, and a small fake gate at our own seam (``sync.gate.Gate``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.settings import SyncSettings
from sync import kube
from sync.appservice import AppService
from sync.cluster_cache import ClusterCache
from sync.cluster_registry import ClusterRegistry
from sync.gate import GateRequest, GateVerdict, SyncEvent, Violation
from sync.reconcile_env import Destinations, Environment, allow_all
from sync.reconciler import PassReport, Reconciler
from sync.render import Renderer
from sync.store import SyncStore, open_sync_store
from tests.sync.gitfixtures import GitRepo

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TRACK = "syncwarden.io/tracking-id"
AUTO_TRIGGERS = ("auto", "self-heal", "retry", "webhook")


def connect(sb: Any, tmp_path: Path, name: str) -> kube.KubeCluster:
    """A KubeCluster on the sandbox through a kubeconfig of its own (``name`` keeps clients apart)."""
    path = sb.write_kubeconfig(tmp_path / f"kubeconfig-{name}", context="sandbox")
    return kube.connect(ClusterRegistry.load([path], environ={}).get("sandbox"), timeout_seconds=10, qps=0)


def two_configmap_repo(tmp_path: Path) -> GitRepo:
    """A repository whose ``app/`` holds ConfigMaps ``a`` and ``b``, committed once."""
    r = GitRepo(tmp_path / "repo")
    r.write({"app/a.yaml": configmap("a", "1"), "app/b.yaml": configmap("b", "1")})
    r.commit("initial")
    return r


def configmap(name: str, value: str, *, wave: int | None = None) -> str:
    annotations = f"  annotations: {{argocd.argoproj.io/sync-wave: '{wave}'}}\n" if wave is not None else ""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{annotations}data:\n  v: '{value}'\n"


def app_manifest(
    repo_url: str,
    *,
    name: str = "web",
    path: str = "app",
    automated: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
    history_limit: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
    }
    policy: dict[str, Any] = {}
    if automated is not None:
        policy["automated"] = automated
    if retry is not None:
        policy["retry"] = retry
    if policy:
        spec["syncPolicy"] = policy
    if history_limit is not None:
        spec["revisionHistoryLimit"] = history_limit
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "syncwarden"},
        "spec": spec,
    }


@dataclass
class FakeGate:
    """Allows everything, except: objects named in ``deny_names`` (a project violation), and automatic
    triggers while ``window_closed`` (a sync window). Records every request's trigger."""

    deny_names: set[str] = field(default_factory=set)
    window_closed: bool = False
    triggers: list[str] = field(default_factory=list)

    def __call__(self, request: GateRequest) -> GateVerdict:
        self.triggers.append(request.trigger)
        if self.window_closed and request.trigger in AUTO_TRIGGERS:
            return GateVerdict(False, (Violation("window.blocked", "blocked by deny window 'freeze'"),))
        names = {str((o.get("metadata") or {}).get("name")) for o in request.objects}
        denied = sorted(names & self.deny_names)
        if denied:
            return GateVerdict(False, tuple(Violation("resource.denied", f"ConfigMap {n} is denied") for n in denied))
        return GateVerdict(True)


@dataclass
class Sink:
    events: list[SyncEvent] = field(default_factory=list)

    def __call__(self, event: SyncEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]


@dataclass
class Kit:
    store: SyncStore
    env: Environment
    reconciler: Reconciler
    service: AppService
    gate: FakeGate
    sink: Sink
    repo: GitRepo
    cluster: kube.KubeCluster

    def drive(self, now: datetime, *, passes: int = 30, step: timedelta = timedelta(seconds=3)) -> list[PassReport]:
        """Passes at ``now``, ``now + step``, ... until no operation is in progress (bounded), plus the pass
        that follows a completed operation (its refresh, as the loop does when it wakes)."""
        reports = []
        for i in range(passes):
            reports.append(self.reconciler.run_once(now + i * step))
            if not self.store.operations.in_progress():
                if reports[-1].ticked:
                    reports.append(self.reconciler.run_once(now + i * step))
                return reports
        raise AssertionError(f"operation still in progress after {passes} passes: {reports[-1]}")

    def live_data(self, name: str) -> dict[str, str] | None:
        from sync.cluster import NotFound
        from sync.models import ResourceKey

        try:
            return dict(self.cluster.get(ResourceKey("", "ConfigMap", "default", name)).get("data") or {})
        except NotFound:
            return None


def build(
    tmp_path: Path,
    cluster: kube.KubeCluster,
    repo: GitRepo,
    *,
    gate: FakeGate | None = None,
    cache: ClusterCache | None = None,
    ls_remote_interval: float = 0.0,
    store: SyncStore | None = None,
    rand: Callable[[], float] = lambda: 0.5,
    settings_overrides: dict[str, Any] | None = None,
    orphan_monitor: Callable[[Any], Any] | None = None,
) -> Kit:
    settings = SyncSettings(
        allow_file_urls=True,
        ls_remote_interval_seconds=ls_remote_interval,
        poll_interval_seconds=120,
        poll_jitter_seconds=60,
        **(settings_overrides or {}),
    )
    store = store or open_sync_store(f"sqlite:///{tmp_path / 'sync.db'}")
    gate = gate or FakeGate()
    sink = Sink()
    env = Environment(
        store=store,
        renderer=Renderer.create(settings=settings, cache_dir=tmp_path / "cache"),
        destinations=Destinations(cluster_for=lambda app: cluster, cache_for=lambda app: cache),
        gate=gate,
        events=sink,
        settings=settings,
        permitted=allow_all,
        sleep=lambda s: None,
        **({} if orphan_monitor is None else {"orphan_monitor": orphan_monitor}),
    )
    reconciler = Reconciler(env, rand=rand)
    return Kit(
        store=store,
        env=env,
        reconciler=reconciler,
        service=AppService(store, reconciler=reconciler),
        gate=gate,
        sink=sink,
        repo=repo,
        cluster=cluster,
    )
