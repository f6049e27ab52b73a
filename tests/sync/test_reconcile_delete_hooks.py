"""App deletion with PreDelete and PostDelete hooks (reference §1.14, §4.16), through the reconciler and AppService
against the sandbox over HTTP with a real Git repository. The sandbox's controllers run only on ``sb.tick()``.

Covers: a comparison puts the pre/post-delete finalizers (and their ``/cleanup`` twins) on an app whose manifests
hold such hooks, keeps them across an edit of the app, and drops them when the hooks leave Git; the PreDelete Job
is created (tracked as the app's, through the gate with trigger ``delete``, announced to the event sink) and waited
for before anything is deleted, the cascade runs only after it completed, the PostDelete Job only once the
resources are gone, and cleanup deletes a HookSucceeded hook (the order read from the sandbox's request log); a
failing PreDelete hook stops the deletion with nothing deleted and a ``DeletionError`` condition, is deleted, and a
fix in Git lets the deletion go on (the condition cleared once the stage is done); a hook the gate denies is never
created; an object the app does not track at a hook's name is never taken over; without cascade the resources stay,
a hook with only the implicit BeforeHookCreation policy is left in place, and a ``generateName`` hook is created once
under a name fixed for the deletion. Which finalizers a comparison calls for, as a table (none dropped after errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import sandbox
from sync import kube
from sync.cluster import NotFound
from sync.compare import Comparison, SyncStatus
from sync.compare_targets import Condition
from sync.health import Health, HealthStatus
from sync.models import ResourceKey
from sync.reconcile_delete_hooks import MANAGED_FINALIZERS, wanted_finalizers
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, TRACK, FakeGate, Kit, app_manifest, build, configmap, connect

NS = "syncwarden"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
CMS = "/api/v1/namespaces/default/configmaps"
PRE = "pre-delete-finalizer.argocd.argoproj.io"
POST = "post-delete-finalizer.argocd.argoproj.io"


def hook_job(name: str, hook: str, *, policy: str = "", fail: bool = False) -> str:
    annotations = [f"argocd.argoproj.io/hook: {hook}"]
    if policy:
        annotations.append(f"argocd.argoproj.io/hook-delete-policy: {policy}")
    if fail:
        annotations.append("sandbox.syncwarden.io/fail: 'true'")
    lines = "".join(f"\n    {a}" for a in annotations)
    return (f"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  annotations:{lines}\n"
            "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
            "      containers: [{name: c, image: busybox, command: ['true']}]\n")


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0, tick_interval=3600) as box:  # controllers only on sb.tick(): Jobs finish then
        yield box


@pytest.fixture
def kc(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[kube.KubeCluster]:
    c = connect(sb, tmp_path, "delete-hooks")
    yield c
    c.close()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "repo")
    r.write({
        "app/a.yaml": configmap("a", "1", wave=0),
        "app/b.yaml": configmap("b", "1", wave=1),
        "app/pre.yaml": hook_job("pre-cleanup", "PreDelete"),
        "app/post.yaml": hook_job("post-notify", "PostDelete", policy="HookSucceeded"),
    })
    r.commit("app with deletion hooks")
    return r


def _synced(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo, gate: FakeGate | None = None) -> Kit:
    kit = build(tmp_path, kc, repo, gate=gate)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") == {"v": "1"}
    return kit


def _job(kc: kube.KubeCluster, name: str) -> dict[str, object] | None:
    try:
        return kc.get(ResourceKey("batch", "Job", "default", name))
    except NotFound:
        return None


def _writes(sb: sandbox.Sandbox) -> list[str]:
    return [f"{r.verb} {r.path}" for r in sb.requests.writes()]


def _deletion_error(kit: Kit) -> list[str]:
    return [c["message"] for c in kit.store.apps.status(NS, "web").conditions if c["type"] == "DeletionError"]


def _passes(kit: Kit, sb: sandbox.Sandbox, start: datetime, *, limit: int = 20) -> int:
    """Passes (the sandbox's controllers between them) until the app is gone; returns how many it took."""
    for i in range(limit):
        if kit.reconciler.run_once(start + timedelta(seconds=i)).deleted:
            return i + 1
        sb.tick()
    raise AssertionError(f"not deleted after {limit} passes: {kit.store.apps.get(NS, 'web').application().finalizers}")


def test_the_finalizers_follow_the_hooks_in_git_and_survive_an_edit(tmp_path: Path, kc: kube.KubeCluster,
                                                                    repo: GitRepo) -> None:
    kit = _synced(tmp_path, kc, repo)
    assert set(kit.store.apps.get(NS, "web").application().finalizers) == set(MANAGED_FINALIZERS)
    kit.service.update(app_manifest(repo.url, history_limit=5), now=T0 + timedelta(minutes=1))  # no finalizers
    assert set(kit.store.apps.get(NS, "web").application().finalizers) == set(MANAGED_FINALIZERS)

    (repo.path / "app/post.yaml").unlink()
    repo.commit("no PostDelete hook any more")
    kit.service.refresh(NS, "web", now=T0 + timedelta(minutes=2))
    kit.reconciler.run_once(T0 + timedelta(minutes=2))
    assert kit.store.apps.get(NS, "web").application().finalizers == (PRE, f"{PRE}/cleanup")


def test_predelete_runs_before_anything_is_deleted_and_postdelete_after(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = _synced(tmp_path, kc, repo)
    sb.requests.clear()
    at = T0 + timedelta(minutes=1)
    kit.service.delete(NS, "web", now=at)

    kit.reconciler.run_once(at)  # the PreDelete hook is created; nothing else happens in this pass
    assert _writes(sb) == [f"patch {JOBS}/pre-cleanup"]
    pre = _job(kc, "pre-cleanup")
    assert pre is not None and pre["metadata"]["annotations"][TRACK] == "web:batch/Job:default/pre-cleanup"
    assert kit.gate.triggers[-1] == "delete"
    kit.reconciler.run_once(at + timedelta(seconds=1))  # still running: the deletion waits
    assert _writes(sb) == [f"patch {JOBS}/pre-cleanup"]

    _passes(kit, sb, at + timedelta(seconds=2))
    writes = _writes(sb)
    resources = [f"delete {CMS}/b", f"delete {CMS}/a"]
    deletes = [w for w in writes if w.startswith("delete")]
    # wave 1, then wave 0 (the PreDelete hook is the app's too: the cascade takes it), then the PostDelete
    # hook by its HookSucceeded policy
    assert deletes[0] == resources[0] and set(deletes[1:3]) == {resources[1], f"delete {JOBS}/pre-cleanup"}
    assert deletes[3:] == [f"delete {JOBS}/post-notify"]
    created = writes.index(f"patch {JOBS}/post-notify")
    assert created > max(writes.index(r) for r in resources)  # PostDelete only once the resources are gone
    assert kit.live_data("a") is None and _job(kc, "post-notify") is None
    assert kit.store.apps.find(NS, "web") is None
    hook_events = [(e.action, e.result, e.target.rsplit("/", 1)[-1]) for e in kit.sink.events
                   if e.action == "app.delete.hook"]
    assert hook_events == [("app.delete.hook", "creating", "pre-cleanup"),
                           ("app.delete.hook", "creating", "post-notify"),
                           ("app.delete.hook", "deleting", "post-notify")]


def test_a_failing_predelete_hook_stops_the_deletion_until_it_is_fixed(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    repo.write({"app/pre.yaml": hook_job("pre-cleanup", "PreDelete", fail=True)})
    repo.commit("a PreDelete hook that fails")
    kit = _synced(tmp_path, kc, repo)
    sb.requests.clear()
    at = T0 + timedelta(minutes=1)
    kit.service.delete(NS, "web", now=at)

    kit.reconciler.run_once(at)
    sb.tick()  # the Job fails
    kit.reconciler.run_once(at + timedelta(seconds=1))
    assert _deletion_error(kit) == ["PreDelete hook(s) failed: default/pre-cleanup"]
    assert _writes(sb) == [f"patch {JOBS}/pre-cleanup", f"delete {JOBS}/pre-cleanup"]  # the failed hook only
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") == {"v": "1"}
    assert kit.store.apps.get(NS, "web").deleting_at is not None

    for i in range(2, 6):  # retried: created again, fails again; nothing else is ever deleted
        kit.reconciler.run_once(at + timedelta(seconds=i))
        sb.tick()
    assert kit.live_data("a") == {"v": "1"} and _deletion_error(kit)
    assert {w for w in _writes(sb) if w.startswith("delete")} == {f"delete {JOBS}/pre-cleanup"}

    repo.write({"app/pre.yaml": hook_job("pre-cleanup", "PreDelete")})
    repo.commit("the PreDelete hook fixed")
    for i in range(10, 14):  # the fixed hook is created, completes, and the PreDelete stage is done
        kit.reconciler.run_once(at + timedelta(seconds=i))
        sb.tick()
        if PRE not in kit.store.apps.get(NS, "web").application().finalizers:
            break
    assert PRE not in kit.store.apps.get(NS, "web").application().finalizers
    assert _deletion_error(kit) == []  # the stage got through: the error is gone
    _passes(kit, sb, at + timedelta(seconds=20))
    assert kit.live_data("a") is None and kit.live_data("b") is None


def test_a_hook_the_gate_denies_is_never_created(tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster,
                                                 repo: GitRepo) -> None:
    gate = FakeGate()
    kit = _synced(tmp_path, kc, repo, gate=gate)
    gate.deny_names = {"pre-cleanup"}
    sb.requests.clear()
    kit.service.delete(NS, "web", now=T0 + timedelta(minutes=1))
    for i in range(3):
        kit.reconciler.run_once(T0 + timedelta(minutes=1, seconds=i))
    assert _writes(sb) == []
    assert _deletion_error(kit) == ["PreDelete hooks denied by project policy: ConfigMap pre-cleanup is denied"]
    assert gate.triggers[-3:] == ["delete"] * 3


def test_without_cascade_resources_stay_and_hooks_without_a_policy_stay(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    repo.write({
        "app/pre.yaml": hook_job("pre-cleanup", "PreDelete", policy="HookSucceeded"),
        # implicitly BeforeHookCreation; only a generateName
        "app/post.yaml": hook_job("post-notify", "PostDelete").replace("  name: post-notify", "  generateName: notify-"),
    })
    repo.commit("policies swapped")
    kit = _synced(tmp_path, kc, repo)
    sb.requests.clear()
    at = T0 + timedelta(minutes=1)
    kit.service.delete(NS, "web", now=at, cascade=False)
    _passes(kit, sb, at)
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") == {"v": "1"}
    assert _job(kc, "pre-cleanup") is None  # HookSucceeded: deleted once all of its kind were healthy
    post = f"notify-postdelete-{int(at.timestamp())}"  # named for this deletion: found again on later passes
    assert _job(kc, post) is not None  # no explicit policy: left in place, as Argo CD does
    assert [w for w in _writes(sb) if w.startswith("delete")] == [f"delete {JOBS}/pre-cleanup"]
    assert [w for w in _writes(sb) if w.startswith("patch")] == [f"patch {JOBS}/pre-cleanup", f"patch {JOBS}/{post}"]


def test_an_object_the_app_does_not_track_is_never_taken_over(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = _synced(tmp_path, kc, repo)
    kc.apply(json_job("pre-cleanup"), field_manager="someone")
    sb.requests.clear()
    kit.service.delete(NS, "web", now=T0 + timedelta(minutes=1))
    kit.reconciler.run_once(T0 + timedelta(minutes=1))
    assert _writes(sb) == []
    assert _deletion_error(kit) == [
        "PreDelete hook Job/default/pre-cleanup: an object this app does not track is in the way"]


def json_job(name: str) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}


def _comparison(*objs: dict[str, object], errors: bool = False) -> Comparison:
    conditions = (Condition("ComparisonError", "render failed"),) if errors else ()
    return Comparison(instance="web", sync_status=SyncStatus.SYNCED, health=HealthStatus(Health.HEALTHY),
                      resources=(), conditions=conditions, targets=tuple(objs))


@pytest.mark.parametrize(
    ("hook", "errors", "add", "drop"),
    [
        pytest.param("PreDelete", False, (PRE, f"{PRE}/cleanup"), (POST, f"{POST}/cleanup"), id="pre-delete"),
        pytest.param("PostSync,PostDelete", False, (POST, f"{POST}/cleanup"), (PRE, f"{PRE}/cleanup"),
                     id="post-delete-mixed-with-a-sync-type"),
        pytest.param("PostSync", False, (), (PRE, f"{PRE}/cleanup", POST, f"{POST}/cleanup"), id="none"),
        pytest.param("PostSync", True, (), (), id="comparison-errors-drop-nothing"),
    ],
)
def test_wanted_finalizers(hook: str, errors: bool, add: tuple[str, ...], drop: tuple[str, ...]) -> None:
    target = {"apiVersion": "batch/v1", "kind": "Job",
              "metadata": {"name": "j", "annotations": {"argocd.argoproj.io/hook": hook}}}
    assert wanted_finalizers(_comparison(target, errors=errors)) == (add, drop)
