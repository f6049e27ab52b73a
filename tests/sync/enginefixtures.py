"""Builders shared by the sync engine tests: a sandbox, a KubeCluster over HTTP, an app, objects, a recording gate
and event sink, and a loop that runs ticks (with the sandbox's controllers between them) to completion."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sandbox
from config.settings import SyncSettings
from sync import kube
from sync.application import Application
from sync.cluster_registry import ClusterRegistry
from sync.engine import SyncEngine
from sync.engine_request import SyncOptions, SyncRequest
from sync.gate import GateRequest, GateVerdict, SyncEvent, Violation
from sync.operation import OperationState
from sync.tracking import Tracking

APP = "web"
NS = "team-a"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TRACKING = Tracking()
HOOK = "argocd.argoproj.io/hook"
WAVE = "argocd.argoproj.io/sync-wave"
POLICY = "argocd.argoproj.io/hook-delete-policy"
OPTIONS = "argocd.argoproj.io/sync-options"
FAIL = "sandbox.syncwarden.io/fail"
#: the kinds the tests use; listing only these keeps the per-tick live listing short
KINDS = [("", "ConfigMap"), ("apps", "Deployment"), ("batch", "Job"), ("", "Namespace")]


def start_sandbox(timing: sandbox.ControllerTiming | None = None) -> sandbox.Sandbox:
    # the controllers run only when a test calls sb.tick(), so every run sees the same sequence of states
    return sandbox.start(port=0, timing=timing, tick_interval=3600)


def connect(sb: sandbox.Sandbox, tmp_path: Path) -> kube.KubeCluster:
    path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    entry = ClusterRegistry.load([path], environ={}).resolve(server=sb.url)
    return kube.connect(entry, timeout_seconds=10, qps=0)


def application(
    *,
    dest_ns: str = NS,
    annotations: Mapping[str, str] | None = None,
    ignore_differences: list[dict[str, Any]] | None = None,
    **policy: Any,
) -> Application:
    spec: dict[str, Any] = {
        "project": "team",
        "source": {"repoURL": "https://git.example.com/web.git", "path": ".", "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
    }
    if policy:
        spec["syncPolicy"] = policy
    if ignore_differences is not None:
        spec["ignoreDifferences"] = ignore_differences
    metadata: dict[str, Any] = {"name": APP, "namespace": "syncwarden"}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return Application.from_dict(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": metadata, "spec": spec}
    )


def meta(name: str, annotations: Mapping[str, str] | None = None, ns: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if ns is not None:
        out["namespace"] = ns
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def cm(name: str, data: Mapping[str, str] | None = None, *, ann: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(name, ann),
        "data": dict(data or {"k": "v"}),
    }


def deployment(name: str, *, ann: Mapping[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, ann),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }


def job(
    name: str,
    hook: str | None = None,
    *,
    fail: bool = False,
    generate: bool = False,
    ann: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    annotations = dict(ann or {})
    if hook:
        annotations[HOOK] = hook
    if fail:
        annotations[FAIL] = "true"
    m = meta(name, annotations)
    if generate:
        m.pop("name")
        m["generateName"] = f"{name}-"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": m,
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                }
            }
        },
    }


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    return TRACKING.stamp(obj, instance=APP, destination_namespace=NS)


@dataclass
class RecordingGate:
    """Allows (or denies with ``violations``) and remembers every request."""

    violations: list[Violation] = field(default_factory=list)
    calls: list[GateRequest] = field(default_factory=list)
    deny_times: int | None = None  # deny only the first N calls

    def __call__(self, request: GateRequest) -> GateVerdict:
        self.calls.append(request)
        deny = bool(self.violations) and (self.deny_times is None or len(self.calls) <= self.deny_times)
        if deny:
            return GateVerdict(False, tuple(self.violations), rule="project team")
        return GateVerdict(True, rule="project team")


@dataclass
class Sink:
    """Keeps events; raises on the event matching ``fail_on`` (action, or action:target-substring)."""

    events: list[SyncEvent] = field(default_factory=list)
    fail_on: Callable[[SyncEvent], bool] | None = None

    def __call__(self, event: SyncEvent) -> None:
        if self.fail_on is not None and self.fail_on(event):
            raise OSError("audit database is read-only")
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]


@dataclass
class Harness:
    sb: sandbox.Sandbox
    cluster: kube.KubeCluster
    gate: RecordingGate = field(default_factory=RecordingGate)
    sink: Sink = field(default_factory=Sink)
    settings: SyncSettings = field(default_factory=SyncSettings)
    sleeps: list[float] = field(default_factory=list)

    def engine(self) -> SyncEngine:
        return SyncEngine(self.cluster, self.gate, self.sink, self.settings, sleep=self.sleeps.append)

    def live(self) -> list[dict[str, Any]]:
        return self.cluster.list_managed(TRACKING.selector(APP), kinds=KINDS)

    def request(
        self,
        targets: list[dict[str, Any]],
        *,
        app: Application | None = None,
        live: list[dict[str, Any]] | None = None,
        may_prune: Callable[[Mapping[str, Any]], bool] | None = None,
        **options: Any,
    ) -> SyncRequest:
        return SyncRequest(
            app=app or application(),
            targets=targets,
            live=self.live() if live is None else live,
            revision="0123456789abcdef",
            options=SyncOptions(**options),
            trigger="manual",
            subject="alice",
            may_prune=may_prune or (lambda obj: True),
            prepare_target=stamp,
            retry=None,
        )

    def run(
        self,
        op: OperationState,
        build: Callable[[], SyncRequest],
        *,
        engine: SyncEngine | None = None,
        start: datetime = T0,
        max_ticks: int = 20,
        step: timedelta = timedelta(seconds=1),
    ) -> tuple[OperationState, list[str]]:
        """Tick until completed (controllers run between ticks); the request is rebuilt each tick, as the
        reconciler does. Returns the final state and the message after each tick."""
        engine = engine or self.engine()
        messages = []
        now = start
        for _ in range(max_ticks):
            op = engine.tick(op, build(), now=now)
            messages.append(op.message)
            if op.completed:
                return op, messages
            self.sb.tick()
            now += step
        raise AssertionError(f"not completed after {max_ticks} ticks: {messages[-3:]}")

    def writes(self) -> list[tuple[str, str]]:
        return [(r.verb, r.path) for r in self.sb.requests.writes()]


def new_op(op_id: str = "op-1", start: datetime = T0) -> OperationState:
    return OperationState.new(op_id, started_at=start)


def ns_path(kind: str, name: str, ns: str = NS) -> str:
    plural = {"ConfigMap": "configmaps", "Job": "jobs", "Deployment": "deployments", "Pod": "pods"}[kind]
    prefix = {"Job": "/apis/batch/v1", "Deployment": "/apis/apps/v1"}.get(kind, "/api/v1")
    return f"{prefix}/namespaces/{ns}/{plural}/{name}"


def create_namespace(cluster: kube.KubeCluster, name: str = NS) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, field_manager="test")


def harness(tmp_path: Path, timing: sandbox.ControllerTiming | None = None) -> Iterator[Harness]:
    with start_sandbox(timing) as sb:
        cluster = connect(sb, tmp_path)
        try:
            create_namespace(cluster)
            sb.requests.clear()
            yield Harness(sb, cluster)
        finally:
            cluster.close()
