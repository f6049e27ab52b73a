"""The world of ``bench/reconcile.py``: a sandbox API server in its own process, Git repositories holding
many small apps, the live objects those apps want (already applied, as after a first sync), and a reconciler
wired to real parts (SQLite or PostgreSQL store, watch cache, renderer with bare mirrors).

Who calls this: ``bench/reconcile.py`` only. The sandbox runs in a child process so that its HTTP server and
watch threads do not compete with the reconciler for this process's GIL (a real API server is another
process too); the parent asks it for its request count over a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sandbox
from config.settings import SyncSettings
from sync import kube
from sync.cluster_cache import ClusterCache
from sync.cluster_registry import ClusterRegistry
from sync.gate import GateRequest, GateVerdict, SyncEvent
from sync.reconcile_env import Destinations, Environment, allow_all
from sync.reconciler import Reconciler
from sync.render import Renderer
from sync.store import SyncStore, open_sync_store
from sync.tracking import Tracking

NS = "syncwarden"
DEST_NS = "bench"
GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com",
}


# -- the sandbox in a child process ------------------------------------------------------------------------


def _serve(conn: Connection, kubeconfig: str) -> None:
    with sandbox.start(port=0, bookmark_interval=1.0) as sb:
        sb.write_kubeconfig(Path(kubeconfig), context="sandbox")
        conn.send("ready")
        while True:
            message = conn.recv()
            if message == "count":
                conn.send(len(sb.requests.records()))
            else:
                break


class RemoteSandbox:
    """A sandbox serving from a child process; :meth:`requests` is the number of API requests it logged."""

    def __init__(self, workdir: Path) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, str(self.kubeconfig)), daemon=True)
        self._proc.start()
        if not self._conn.poll(60) or self._conn.recv() != "ready":
            raise RuntimeError("the sandbox did not start within 60 s")

    def requests(self) -> int:
        self._conn.send("count")
        return int(self._conn.recv())

    def connect(self) -> kube.KubeCluster:
        entry = ClusterRegistry.load([self.kubeconfig], environ={}).get("sandbox")
        return kube.connect(entry, qps=0, timeout_seconds=60)

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(10)


# -- Git ---------------------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def configmap(name: str, value: str) -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {DEST_NS}\n"
            f"  labels: {{app.kubernetes.io/part-of: bench}}\ndata:\n  value: '{value}'\n"
            f"  settings: |\n    mode=steady\n    level=3\n")


@dataclass(frozen=True)
class BenchApp:
    name: str
    repo: Path
    path: str
    objects: tuple[str, ...]

    def manifest(self, *, automated: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "project": "default",
            "source": {"repoURL": f"file://{self.repo}", "path": self.path, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": DEST_NS},
        }
        if automated:
            spec["syncPolicy"] = {"automated": {"selfHeal": True}}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": self.name, "namespace": NS}, "spec": spec}


def make_repos(root: Path, *, prefix: str, apps: int, repos: int, objects: int) -> list[BenchApp]:
    """``repos`` repositories holding ``apps`` apps between them, each one file of ``objects`` ConfigMaps."""
    out: list[BenchApp] = []
    for r in range(repos):
        repo = root / f"{prefix}-repo-{r}"
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        for i in range(r, apps, repos):
            name = f"{prefix}-{i:04d}"
            names = tuple(f"{name}-cm-{j}" for j in range(objects))
            app_dir = repo / "apps" / name
            app_dir.mkdir(parents=True)
            (app_dir / "all.yaml").write_text("---\n".join(configmap(n, f"{n}-v1") for n in names))
            out.append(BenchApp(name=name, repo=repo, path=f"apps/{name}", objects=names))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "apps")
    return sorted(out, key=lambda a: a.name)


# -- the reconciler ----------------------------------------------------------------------------------------


@dataclass
class Sink:
    """The event sink; remembers when each app's automatic sync was initiated (drift measurement) and when
    its operation succeeded (throughput), without touching the store."""

    initiated: dict[str, float] = field(default_factory=dict)
    succeeded: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: SyncEvent) -> None:
        if event.action == "sync.initiated":
            self.initiated.setdefault(event.app, time.perf_counter())
        elif event.action == "sync.succeeded":
            self.succeeded.setdefault(event.app, time.perf_counter())


def allow(request: GateRequest) -> GateVerdict:
    del request
    return GateVerdict(True)


@dataclass
class GitCounter:
    """Counts the git processes a RepoCache starts, by verb and repository."""

    by_verb: Counter[str] = field(default_factory=Counter)
    ls_remote: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.by_verb.values())

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.by_verb), Counter(self.ls_remote)


class FakeMonotonic:
    """The RepoCache's clock: the benchmark moves it past the ls-remote interval when it wants a new poll."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@dataclass
class World:
    store: SyncStore
    env: Environment
    reconciler: Reconciler
    cache: ClusterCache
    sink: Sink
    gits: GitCounter
    mono: FakeMonotonic
    drift_seen: dict[str, float]


def build_world(workdir: Path, cluster: kube.KubeCluster, *, database_url: str | None,
                ls_remote_interval: float, rand: Callable[[], float] = lambda: 0.5) -> World:
    settings = SyncSettings(allow_file_urls=True, ls_remote_interval_seconds=ls_remote_interval,
                            poll_interval_seconds=180, poll_jitter_seconds=60)
    store = open_sync_store(database_url or f"sqlite:///{workdir / 'sync.db'}")
    for stale in store.apps.list():  # a database given by URL may hold the apps of an earlier run
        store.apps.remove(stale.namespace, stale.name)
    mono = FakeMonotonic()
    renderer = Renderer.create(settings=settings, cache_dir=workdir / "cache", clock=mono)
    gits = GitCounter()
    real_git = renderer.repos._git

    def counted(args: list[str], *, url: str, credential: Any = None, stdin: bytes | None = None) -> bytes:
        verb = args[2] if args[0] == "--git-dir" else args[0]
        gits.by_verb[verb] += 1
        if verb == "ls-remote":
            gits.ls_remote[url] += 1
        return real_git(args, url=url, credential=credential, stdin=stdin)

    renderer.repos._git = counted  # type: ignore[method-assign]  # the benchmark counts git processes
    sink = Sink()
    drift_seen: dict[str, float] = {}
    holder: list[ClusterCache] = []
    env = Environment(store=store, renderer=renderer,
                      destinations=Destinations(cluster_for=lambda app: cluster, cache_for=lambda app: holder[0]),
                      gate=allow, events=sink, settings=settings, permitted=allow_all, sleep=lambda s: None)
    reconciler = Reconciler(env, rand=rand)

    def on_event(event: Any) -> None:
        now = time.perf_counter()
        for app in event.apps:
            drift_seen.setdefault(app, now)
        reconciler.on_cache_event(event)

    cache = ClusterCache(cluster, env.tracker.selector(), on_event=on_event, kinds=[("", "ConfigMap")],
                         watch_timeout_seconds=300, retry_seconds=0.5)
    holder.append(cache)
    return World(store=store, env=env, reconciler=reconciler, cache=cache, sink=sink, gits=gits, mono=mono,
                 drift_seen=drift_seen)


def populate(cluster: kube.KubeCluster, apps: Sequence[BenchApp], tracker: Tracking, *, workers: int = 4) -> int:
    """Apply every app's objects as its first sync would have (tracking-stamped, our field manager)."""
    objects = []
    for app in apps:
        instance = tracker.instance(app.name, NS)
        for text in (app.repo / app.path / "all.yaml").read_text().split("---\n"):
            obj = parse_configmap(text)
            objects.append(tracker.stamp(obj, instance=instance, destination_namespace=DEST_NS))

    def apply(obj: dict[str, Any]) -> None:
        cluster.apply(obj, field_manager="syncwarden", force=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(apply, objects, chunksize=50))
    return len(objects)


def parse_configmap(text: str) -> dict[str, Any]:
    """The benchmark's own ConfigMaps, read back without a YAML library (their layout is fixed above)."""
    lines = text.splitlines()
    name = lines[3].split(": ", 1)[1]
    value = lines[7].split(": ", 1)[1].strip("'")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": DEST_NS, "labels": {"app.kubernetes.io/part-of": "bench"}},
            "data": {"value": value, "settings": "mode=steady\nlevel=3\n"}}


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        yield Path(tmp)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
