"""REL-15 (security-cases A.2): a Kubernetes API server that accepts the connection and never answers.

The call times out (explicit read timeout on the client), the app whose objects hang is not synced (and is
tried again later), and another app served by the same reconciler pass proceeds. Real components: the sandbox
over HTTP with its latency fault, the official client through ``sync.kube`` with a short timeout, a real Git
repository and a SQLite sync store (``tests.sync.reconcilekit``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import sandbox
from sync import kube
from sync.cluster_registry import ClusterRegistry
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, app_manifest, build, configmap

TIMEOUT = 0.5
#: how long the hanging server takes to answer: no pass may ever wait that long
HANG = 60.0


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0, tick_interval=0.05) as box:
        yield box


@pytest.fixture
def kc(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[kube.KubeCluster]:
    path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    cluster = kube.connect(ClusterRegistry.load([path], environ={}).get("sandbox"), timeout_seconds=TIMEOUT, qps=0)
    yield cluster
    cluster.close()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "repo")
    r.write({"slow/cm.yaml": configmap("slow-cm", "1"), "fast/cm.yaml": configmap("fast-cm", "1")})
    r.commit("initial")
    return r


def test_rel_15_a_hanging_api_server_times_out_and_other_apps_proceed(tmp_path: Path, sb: sandbox.Sandbox,
                                                                      kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    for name in ("slow", "fast"):
        kit.service.create(app_manifest(repo.url, name=name, path=name, automated={"prune": True}), now=T0)
    # every request about slow-cm hangs far longer than the client's read timeout
    sb.faults.add("get", "configmaps", "slow-cm", latency=HANG)
    sb.faults.add("patch", "configmaps", "slow-cm", latency=HANG)

    started = time.monotonic()
    for i in range(12):
        kit.reconciler.run_once(T0 + i * timedelta(seconds=3))
        if kit.live_data("fast-cm") is not None:
            break
    elapsed = time.monotonic() - started

    assert kit.live_data("fast-cm") == {"v": "1"}, "the other app did not proceed"
    # a relation, not a time budget: not a single request waited for the hanging server to answer
    assert elapsed < HANG, f"the passes waited on the hanging server ({elapsed:.1f}s)"
    print(f"REL-15: fast app synced after {elapsed:.2f}s of passes with a hanging server (timeout {TIMEOUT}s)")

    sb.faults.clear()  # the server answers again: the slow app is retried later and converges
    for i in range(40):
        kit.reconciler.run_once(T0 + timedelta(minutes=10) + i * timedelta(seconds=30))
        if kit.live_data("slow-cm") is not None:
            break
    assert kit.live_data("slow-cm") == {"v": "1"}
