"""Prune=confirm, Delete=confirm and FailOnSharedResource through the reconciler and AppService, against the
sandbox over HTTP with a real Git repository and a SQLite store (reference §1.10, §2.4, §4.1, §4.16).

Covers: a resource marked ``Prune=confirm`` is reported ``requiresDeletionConfirmation`` in the stored status; a
prune sync waits ("waiting for pruning confirmation of ...", nothing deleted) through an approval given before
it started, and goes on once ``confirm_deletion`` approves it; the engine learns the approval from the stored
app on the next tick. A cascading delete waits for ``Delete=confirm`` the same way (one parser for both). With
``FailOnSharedResource=true`` a sync whose comparison finds a resource of another app fails at once with
"Shared resource found: ..." and writes nothing; without it the sync goes on and leaves that resource alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sync import kube
from sync.cluster_registry import ClusterRegistry
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, Kit, app_manifest, build, configmap

NS = "syncwarden"
CONFIRM = "  annotations: {argocd.argoproj.io/sync-options: Prune=confirm}\n"


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0, bookmark_interval=0.2) as box:
        yield box


@pytest.fixture
def kc(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[kube.KubeCluster]:
    path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    c = kube.connect(ClusterRegistry.load([path], environ={}).get("sandbox"), timeout_seconds=10, qps=0)
    yield c
    c.close()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "repo")
    confirmed = configmap("b", "1").replace("metadata:\n  name: b\n", "metadata:\n  name: b\n" + CONFIRM)
    r.write({"app/a.yaml": configmap("a", "1"), "app/b.yaml": confirmed, "other/a.yaml": configmap("a", "0")})
    r.commit("initial")
    return r


def _rows(kit: Kit) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in kit.store.apps.status(NS, "web").resources}


def _deletes(sb: sandbox.Sandbox) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in sb.requests.writes() if r.verb == "delete"]


def test_prune_confirm_waits_for_confirm_deletion(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    rows = _rows(kit)
    assert rows["b"].get("requiresDeletionConfirmation") is True
    assert "requiresDeletionConfirmation" not in rows["a"]

    kit.service.confirm_deletion(NS, "web", now=T0 + timedelta(seconds=30))  # before the next sync: no use to it
    repo.git("rm", "-q", "app/b.yaml")
    repo.commit("drop b")
    sb.requests.clear()
    start = T0 + timedelta(minutes=1)
    kit.service.sync(NS, "web", now=start, subject="alice", prune=True)
    for i in range(3):
        kit.reconciler.run_once(start + timedelta(seconds=3 * i))
    state = kit.service.operation_state(NS, "web")
    assert state is not None
    assert (state.phase.value, state.message) == ("Running", "waiting for pruning confirmation of /ConfigMap/b")
    assert _deletes(sb) == [] and kit.live_data("b") == {"v": "1"}

    kit.service.confirm_deletion(NS, "web", now=start + timedelta(seconds=10))
    kit.drive(start + timedelta(seconds=10))
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.phase.value == "Succeeded", state
    assert _deletes(sb) == ["b"] and kit.live_data("b") is None and kit.live_data("a") == {"v": "1"}
    annotations = kit.store.apps.get(NS, "web").application().annotations
    assert annotations == {"argocd.argoproj.io/deletion-approved": "2026-03-01T12:01:10Z"}


def test_cascading_delete_waits_for_delete_confirm(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = build(tmp_path, kc, repo)
    manifest = app_manifest(repo.url)
    manifest["spec"]["syncPolicy"] = {"syncOptions": ["Delete=confirm"]}
    kit.service.create(manifest, now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    assert _rows(kit)["a"].get("requiresDeletionConfirmation") is True  # the app-wide option
    sb.requests.clear()
    deleted_at = T0 + timedelta(minutes=1)
    kit.service.delete(NS, "web", now=deleted_at)
    for i in range(3):
        assert kit.reconciler.run_once(deleted_at + timedelta(seconds=i)).deleted == []
    assert _deletes(sb) == []

    kit.service.confirm_deletion(NS, "web", now=deleted_at + timedelta(seconds=5))
    for i in range(10):
        if kit.reconciler.run_once(deleted_at + timedelta(seconds=6 + i)).deleted:
            break
    assert sorted(_deletes(sb)) == ["a", "b"] and kit.store.apps.find(NS, "web") is None


def test_fail_on_shared_resource_fails_before_anything_is_written(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url, name="other", path="other"), now=T0)
    kit.service.sync(NS, "other", now=T0, subject="alice")
    kit.drive(T0)
    manifest = app_manifest(repo.url)
    manifest["spec"]["syncPolicy"] = {"syncOptions": ["FailOnSharedResource=true"]}
    kit.service.create(manifest, now=T0)
    sb.requests.clear()

    kit.service.sync(NS, "web", now=T0 + timedelta(minutes=1), subject="alice")
    kit.drive(T0 + timedelta(minutes=1))
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.phase.value == "Failed"
    assert state.message == "Shared resource found: ConfigMap/a is part of applications web and other"
    assert sb.requests.writes() == []
    assert kit.live_data("a") == {"v": "0"} and kit.live_data("b") is None

    manifest["spec"]["syncPolicy"] = {}
    kit.service.update(manifest, now=T0 + timedelta(minutes=2))
    kit.service.sync(NS, "web", now=T0 + timedelta(minutes=2), subject="alice")
    kit.drive(T0 + timedelta(minutes=2))
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.phase.value == "Succeeded", state
    assert kit.live_data("a") == {"v": "0"} and kit.live_data("b") == {"v": "1"}  # a stays the other app's
