"""Operations through the reconciler and AppService, against the sandbox over HTTP with real Git repositories.

Covers: the retry backoff sequence (duration × factor^n capped at maxDuration; retries reach the gate as
``retry``; "(retried N times)"); a restart resumes the in-flight operation from the store (SQLite and PostgreSQL;
a new store connection, renderer and reconciler) without writing anything twice (the sandbox's request log); one operation
at a time (manual sync refused while one runs, auto-sync does not start a second); rollback to a history id
(refused while auto-sync is on, hooks skipped, recorded as a new entry); cascade deletion deletes only what the
app owns, highest wave first, then the app; deletion without cascade leaves the resources; two replicas sharing
the database never tick one operation together (lease); an operation whose source cannot render ends Error;
AppService refuses bad requests with clear errors and a dry run writes nothing; terminate during the retry
backoff ends the operation without further retries; retry.refresh makes a retry resolve the latest revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import sandbox
from sync import kube
from sync.appservice import InvalidAppRequest
from sync.cluster_registry import ClusterRegistry
from sync.store import AppNotFound, OperationInProgress, open_sync_store
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, TRACK, FakeGate, app_manifest, build, configmap

NS = "syncwarden"


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
    r.write({"app/a.yaml": configmap("a", "1", wave=0), "app/b.yaml": configmap("b", "1", wave=1)})
    r.commit("initial")
    return r


def test_retry_backoff_sequence(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    gate = FakeGate(deny_names={"b"})
    kit = build(tmp_path, kc, repo, gate=gate)
    retry = {"limit": 3, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "12s"}}
    kit.service.create(app_manifest(repo.url, automated={}, retry=retry), now=T0)
    now = T0
    kit.reconciler.run_once(now)
    waits = []
    for _ in range(3):
        state = kit.service.operation_state(NS, "web")
        assert state is not None and state.waiting_for_retry
        assert state.next_attempt_at is not None and state.finished_at is not None
        waits.append((state.next_attempt_at - state.finished_at).total_seconds())
        # a pass before the retry is due does not retry
        kit.reconciler.run_once(state.next_attempt_at - timedelta(seconds=1))
        assert kit.service.operation_state(NS, "web") == state
        now = state.next_attempt_at
        kit.reconciler.run_once(now)
    assert waits == [5.0, 10.0, 12.0]  # 5 × 2^n, capped at 12 s
    final = kit.service.operation_state(NS, "web")
    assert final is not None and final.phase.value == "Failed" and final.retry_count == 3
    assert final.message.endswith("(retried 3 times).")
    assert gate.triggers == ["auto", "retry", "retry", "retry"]
    assert kit.live_data("a") is None


CM = "/api/v1/namespaces/default/configmaps"


def _writes(sb: sandbox.Sandbox) -> list[str]:
    return [f"{r.verb} {r.path}" for r in sb.requests.writes()]


def test_restart_resumes_the_operation_without_duplicate_writes(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo, database_url: str
) -> None:
    kit = build(tmp_path, kc, repo, store=open_sync_store(database_url))
    kit.service.create(app_manifest(repo.url), now=T0)
    sb.requests.clear()
    op_id = kit.service.sync(NS, "web", now=T0, subject="alice")
    report = kit.reconciler.run_once(T0)
    assert report.ticked == {(NS, "web"): "Running"}  # wave 0 applied, wave 1 not yet
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") is None
    # the server dry-run of both, then wave 0 for real (the log does not show dryRun, so order tells)
    assert _writes(sb) == [f"patch {CM}/a", f"patch {CM}/b", f"patch {CM}/a"]
    sb.requests.clear()
    kit.store.close()

    # a new process: new store connection, renderer caches and reconciler; same database and cluster
    store = open_sync_store(database_url)
    fresh = build(tmp_path / "restart", kc, repo, store=store)
    # the crashed process's lease (60 s) must run out first: another replica never ticks alongside it
    final = fresh.service.wait_for_operation(
        NS, "web", op_id=op_id, timeout_seconds=600, clock=_stepping_clock(T0), sleep=lambda s: None
    )
    assert final.phase.value == "Succeeded"
    assert kit.live_data("b") == {"v": "1"}
    assert _writes(sb) == [f"patch {CM}/b"]  # only what was left: nothing written twice
    assert [e.initiated_by for e in fresh.service.history(NS, "web")] == [{"username": "alice"}]
    store.close()


def _stepping_clock(start: datetime) -> Callable[[], datetime]:
    moments = iter(start + timedelta(seconds=3 * i) for i in range(1000))
    return lambda: next(moments)


def test_one_operation_at_a_time(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    repo.write({"app/c.yaml": configmap("c", "1", wave=2)})
    repo.commit("three waves")
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    op_id = kit.service.sync(NS, "web", now=T0, subject="alice")
    with pytest.raises(OperationInProgress, match="another operation is already in progress"):
        kit.service.sync(NS, "web", now=T0, subject="bob")
    assert kit.reconciler.run_once(T0).ticked == {(NS, "web"): "Running"}
    # auto-sync turned on and a refresh asked for while the manual sync runs: no second operation
    kit.service.update(app_manifest(repo.url, automated={}), now=T0)
    kit.service.refresh(NS, "web", now=T0, level="hard")
    report = kit.reconciler.run_once(T0 + timedelta(seconds=3))
    assert report.ticked == {(NS, "web"): "Running"} and report.started == {}
    with pytest.raises(OperationInProgress):
        kit.service.sync(NS, "web", now=T0, subject="bob")
    record = kit.store.operations.operation(NS, "web")
    assert record is not None and record.op_id == op_id
    kit.drive(T0 + timedelta(seconds=6))
    assert [e.initiated_by for e in kit.service.history(NS, "web")] == [{"username": "alice"}]
    assert kit.gate.triggers == ["manual"]


def test_rollback_to_a_history_id(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    first = repo.git("rev-parse", "HEAD")
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    repo.write({"app/a.yaml": configmap("a", "2", wave=0)})
    second = repo.commit("a=2")
    kit.service.refresh(NS, "web", now=T0 + timedelta(minutes=1))
    kit.service.sync(NS, "web", now=T0 + timedelta(minutes=1), subject="alice")
    kit.drive(T0 + timedelta(minutes=1))
    assert kit.live_data("a") == {"v": "2"}
    assert [(e.id, e.revisions) for e in kit.service.history(NS, "web")] == [(0, (first,)), (1, (second,))]

    with pytest.raises(AppNotFound, match="no history entry with id 7"):
        kit.service.rollback(NS, "web", 7, now=T0, subject="alice")
    kit.service.update(app_manifest(repo.url, automated={}), now=T0 + timedelta(minutes=2))
    with pytest.raises(InvalidAppRequest, match="auto-sync is enabled"):
        kit.service.rollback(NS, "web", 0, now=T0, subject="alice")
    kit.service.update(app_manifest(repo.url), now=T0 + timedelta(minutes=2))

    kit.service.rollback(NS, "web", 0, now=T0 + timedelta(minutes=3), subject="alice")
    pending = kit.store.operations.operation(NS, "web")
    assert pending is not None and pending.request is not None
    assert pending.request["syncStrategy"] == "apply" and pending.request["rollbackId"] == 0  # hooks skipped
    kit.drive(T0 + timedelta(minutes=3))
    assert kit.live_data("a") == {"v": "1"}
    assert kit.gate.triggers[-1] == "rollback"
    history = kit.service.history(NS, "web")
    assert [(e.id, e.revisions) for e in history] == [(0, (first,)), (1, (second,)), (2, (first,))]
    # compared with the spec (main), the app is OutOfSync after a rollback, as in Argo CD
    assert kit.store.apps.status(NS, "web").sync_status == "OutOfSync"


def _cm(name: str, owner: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "default"}
    if owner:
        meta["annotations"] = {TRACK: f"{owner}:/ConfigMap:default/{name}"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": "x"}}


def test_cascade_delete_removes_only_owned_objects_highest_wave_first(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    kc.apply(_cm("foreign", "other-app"))
    kc.apply(_cm("loose", None))
    sb.requests.clear()
    kit.service.delete(NS, "web", now=T0 + timedelta(minutes=1))
    with pytest.raises(InvalidAppRequest, match="being deleted"):
        kit.service.sync(NS, "web", now=T0, subject="alice")
    for i in range(10):
        report = kit.reconciler.run_once(T0 + timedelta(minutes=1, seconds=i))
        if report.deleted:
            break
    assert report.deleted == [(NS, "web")]
    assert kit.live_data("a") is None and kit.live_data("b") is None
    assert kit.live_data("foreign") == {"v": "x"} and kit.live_data("loose") == {"v": "x"}
    deletes = [r.path.rsplit("/", 1)[1] for r in sb.requests.writes() if r.verb == "delete"]
    assert deletes == ["b", "a"]  # wave 1 before wave 0
    assert kit.store.apps.find(NS, "web") is None
    assert "app.deleted" in kit.sink.actions()


def test_delete_without_cascade_leaves_resources(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    kit.service.delete(NS, "web", now=T0 + timedelta(minutes=1), cascade=False)
    report = kit.reconciler.run_once(T0 + timedelta(minutes=1))
    assert report.deleted == [(NS, "web")]
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") == {"v": "1"}


def test_two_replicas_never_tick_one_operation_together(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    other = build(tmp_path / "replica", kc, repo, store=open_sync_store(f"sqlite:///{tmp_path / 'sync.db'}"))
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    assert kit.reconciler.run_once(T0).ticked == {(NS, "web"): "Running"}
    assert other.reconciler.run_once(T0 + timedelta(seconds=1)).ticked == {}  # leased by the first
    assert kit.reconciler.run_once(T0 + timedelta(seconds=2)).ticked == {(NS, "web"): "Succeeded"}
    other.store.close()


def test_an_operation_whose_source_cannot_render_ends_in_error(tmp_path: Path, kc: kube.KubeCluster,
                                                               repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url, path="no/such/dir"), now=T0)
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.drive(T0)
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.phase.value == "Error" and state.finished_at == T0
    assert "failed to load target state" in state.message
    assert "sync.error" in kit.sink.actions()
    assert kit.service.history(NS, "web") == []


def test_service_refuses_bad_requests_with_clear_errors(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    with pytest.raises(AppNotFound, match="syncwarden/web not found"):
        kit.service.refresh(NS, "web", now=T0)
    kit.service.create(app_manifest(repo.url), now=T0)
    with pytest.raises(InvalidAppRequest, match="override reason: must not be empty"):
        kit.service.sync(NS, "web", now=T0, subject="alice", override_reason="  ")
    with pytest.raises(InvalidAppRequest, match="has no operation"):
        kit.service.wait_for_operation(NS, "web", timeout_seconds=1)
    kit.service.sync(NS, "web", now=T0, subject="alice", dry_run=True)
    view = kit.service.get(NS, "web").to_dict()
    assert view["operation"]["dryRun"] is True and view["operation"]["initiatedBy"] == {"username": "alice"}
    final = kit.service.wait_for_operation(NS, "web", timeout_seconds=600, clock=_stepping_clock(T0),
                                           sleep=lambda s: None)
    assert final.phase.value == "Succeeded" and final.message.endswith("(dry run)")
    assert kit.live_data("a") is None and kit.service.history(NS, "web") == []  # a dry run writes nothing
    assert kit.service.get(NS, "web").to_dict()["status"]["operationState"]["phase"] == "Succeeded"


def test_terminate_during_backoff_cancels_the_retries(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    gate = FakeGate(deny_names={"b"})
    kit = build(tmp_path, kc, repo, gate=gate)
    kit.service.create(app_manifest(repo.url, automated={}, retry={"limit": 3}), now=T0)
    kit.reconciler.run_once(T0)
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.waiting_for_retry
    kit.service.terminate(NS, "web", now=T0 + timedelta(seconds=1), subject="alice")
    kit.reconciler.run_once(T0 + timedelta(seconds=2))
    final = kit.service.operation_state(NS, "web")
    assert final is not None and final.phase.value == "Failed"
    assert final.message.startswith("Operation terminated by alice")
    assert kit.store.operations.in_progress() == []
    kit.reconciler.run_once(T0 + timedelta(minutes=10))
    assert gate.triggers == ["auto"]  # no retry ran, and the failed revision is not attempted again
    with pytest.raises(InvalidAppRequest, match="no operation in progress"):
        kit.service.terminate(NS, "web", now=T0, subject="alice")


@pytest.mark.parametrize("refresh", [False, True], ids=["pinned", "refresh"])
def test_retry_refresh_resolves_the_latest_revision(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo,
                                                     refresh: bool) -> None:
    gate = FakeGate(deny_names={"b"})
    kit = build(tmp_path, kc, repo, gate=gate)
    retry = {"limit": 1, "refresh": refresh, "backoff": {"duration": "5s"}}
    kit.service.create(app_manifest(repo.url, retry=retry), now=T0)
    first = repo.git("rev-parse", "HEAD")
    kit.service.sync(NS, "web", now=T0, subject="alice")
    kit.reconciler.run_once(T0)
    repo.git("rm", "-q", "app/b.yaml")
    fixed = repo.commit("drop the denied object")
    kit.drive(T0 + timedelta(seconds=5))
    final = kit.service.operation_state(NS, "web")
    assert final is not None and final.retry_count == 1
    if refresh:
        assert (final.phase.value, final.revision) == ("Succeeded", fixed)
        assert kit.live_data("a") == {"v": "1"}
    else:
        assert (final.phase.value, final.revision) == ("Failed", first)
        assert kit.live_data("a") is None
