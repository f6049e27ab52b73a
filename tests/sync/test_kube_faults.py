"""KubeCluster under injected faults (sandbox fault injection), timeouts and client-side rate limits.

Covers: 503 and 429 with Retry-After become ``Unavailable(retry_after)`` with the ApiException chained;
a dropped connection on a write is ``Unavailable`` and the write is not repeated; server latency
beyond the timeout is ``Unavailable``; a conflict fault is ``Conflict``; every request passes the
token bucket (fake clock, so nothing waits); the bearer token of the kubeconfig never appears in an
error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

import sandbox
from sync import cluster, kube
from sync.cluster import ResourceKey
from sync.cluster_registry import ClusterEntry, ClusterRegistry

KEY = ResourceKey("", "ConfigMap", "default", "web")


def cm(name: str = "web", data: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data or {},
    }


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0) as box:
        yield box


@pytest.fixture
def entry(sb: sandbox.Sandbox, tmp_path: Path) -> ClusterEntry:
    path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    return ClusterRegistry.load([path], environ={}).get("sandbox")


@pytest.fixture
def kc(entry: ClusterEntry) -> Iterator[kube.KubeCluster]:
    c = kube.connect(entry, timeout_seconds=10, qps=0)
    c.served_resources()
    yield c
    c.close()


@pytest.mark.parametrize(
    ("status", "verb"),
    [
        pytest.param(503, "get", id="503-get"),
        pytest.param(429, "patch", id="429-patch"),
        pytest.param(500, "delete", id="500-delete"),
    ],
)
def test_unavailable_with_retry_after(kc: kube.KubeCluster, sb: sandbox.Sandbox, status: int, verb: str) -> None:
    kc.apply(cm())
    sb.faults.add(verb, "configmaps", "web", status=status, retry_after=3, times=1)
    with pytest.raises(cluster.Unavailable) as info:
        if verb == "get":
            kc.get(KEY)
        elif verb == "patch":
            kc.apply(cm(data={"a": "1"}))
        else:
            kc.delete(KEY)
    assert info.value.status == status
    assert info.value.retry_after == 3
    assert isinstance(info.value.__cause__, ApiException)
    assert kc.get(KEY)["metadata"]["name"] == "web"  # the fault was used up; the next call works


def test_conflict_fault(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    sb.faults.add("patch", "configmaps", status=409, times=1)
    with pytest.raises(cluster.Conflict):
        kc.apply(cm())


def test_dropped_connection_on_a_write_is_not_repeated(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    sb.faults.add("patch", "configmaps", "web", drop=True, times=1)
    sb.requests.clear()
    with pytest.raises(cluster.Unavailable):
        kc.apply(cm())
    assert [r.verb for r in sb.requests.records()].count("patch") <= 1
    kc.apply(cm())  # the connection pool recovers
    assert kc.get(KEY)["metadata"]["name"] == "web"


def test_timeout(entry: ClusterEntry, sb: sandbox.Sandbox) -> None:
    slow = kube.connect(entry, timeout_seconds=0.5, qps=0)
    slow.served_resources()
    sb.faults.add("get", "configmaps", "web", latency=3.0, times=1)
    with pytest.raises(cluster.Unavailable, match="(?i)timed? ?out"):
        slow.get(KEY)
    slow.close()


def test_every_request_takes_a_token(entry: ClusterEntry, sb: sandbox.Sandbox) -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    limited = kube.connect(entry, qps=5.0, burst=2, clock=lambda: clock[0], sleep=sleep)
    limited.served_resources()  # discovery requests pass the bucket too
    discovery_requests = limited.requests
    assert discovery_requests > 2
    assert len(sleeps) == discovery_requests - 2
    before = len(sleeps)
    for i in range(3):
        limited.apply(cm(f"c{i}"))
    assert len(sleeps) == before + 3
    assert all(s == pytest.approx(0.2) for s in sleeps)
    assert limited.limiter.waited_seconds == pytest.approx(0.2 * len(sleeps))
    limited.close()


def test_bearer_token_never_in_errors(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: s\n"
        f"clusters:\n- name: s\n  cluster: {{server: '{sb.url}'}}\n"
        "contexts:\n- name: s\n  context: {cluster: s, user: u}\n"
        "users:\n- name: u\n  user: {token: sekret-token-123}\n",
        encoding="utf-8",
    )
    kc = kube.connect(ClusterRegistry.load([path], environ={}).get("s"), qps=0)
    kc.served_resources()
    sb.faults.add("get", "configmaps", status=403, times=1)
    sb.faults.add("get", "configmaps", drop=True, times=5)
    messages = []
    for expected in (cluster.Forbidden, cluster.Unavailable):
        with pytest.raises(expected) as info:
            kc.get(KEY)
        messages.append(str(info.value))
    assert all("sekret-token-123" not in m for m in messages)
    kc.close()


@pytest.mark.parametrize(
    ("mode", "verb", "status"),
    [
        pytest.param("replace", "update", 409, id="replace-conflict"),
        pytest.param("client-side", "patch", 422, id="client-side-invalid"),
    ],
)
def test_force_deletes_and_recreates_when_rejected(
    kc: kube.KubeCluster, sb: sandbox.Sandbox, mode: str, verb: str, status: int
) -> None:
    first = kc.apply(cm(data={"a": "1"}), mode=mode)  # type: ignore[arg-type]
    sb.faults.add(verb, "configmaps", "web", status=status, times=1)
    with pytest.raises((cluster.Conflict, cluster.Invalid)):
        kc.apply(cm(data={"a": "2"}), mode=mode)  # type: ignore[arg-type]
    sb.faults.add(verb, "configmaps", "web", status=status, times=1)
    sb.requests.clear()
    live = kc.apply(cm(data={"a": "2"}), mode=mode, force=True)  # type: ignore[arg-type]
    assert live["data"] == {"a": "2"}
    assert live["metadata"]["uid"] != first["metadata"]["uid"]  # a new object
    assert [r.verb for r in sb.requests.writes()] == [verb, "delete", "create"]


def test_unknown_apply_mode(kc: kube.KubeCluster) -> None:
    with pytest.raises(cluster.Invalid, match="unknown mode"):
        kc.apply(cm(), mode="sideways")  # type: ignore[arg-type]
