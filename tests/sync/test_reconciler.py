"""The reconciler (sync.reconciler) against the sandbox over HTTP, with real Git repositories and a SQLite store.

Covers: automated sync of the first and of a new commit (history recorded); a failed revision is not
re-attempted (SyncError condition) while a new commit triggers a new attempt; self-heal repairs a second
client's change noticed from the watch event before any poll is due, then backs off; a window-blocked automatic
sync is not counted as an attempt and is retried when the window opens; a webhook refresh re-resolves the branch
at once and reaches the gate as a webhook-triggered sync; polling follows the interval plus injected jitter and a
spec change is compared at once; a repository error leaves the last good status through the repo-error grace
period, is reported after it (Unknown, ComparisonError, nothing written) or at once for a refresh, and a success
clears the error clock; a hard refresh renders again; run_forever syncs and stops.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import sandbox
from sync import kube
from sync.cluster_cache import ClusterCache
from sync.models import ResourceKey
from sync.reconciler import WEBHOOK
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, FakeGate, app_manifest, build, configmap, connect

NS = "syncwarden"
WAIT = 15.0  # bound for a watch event to arrive on a loaded machine; never an assertion on time


def test_auto_sync_on_first_and_new_commit(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url, automated={"prune": True}), now=T0)
    reports = kit.drive(T0)
    assert reports[0].started == {(NS, "web"): "auto"}
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") == {"v": "1"}
    first = repo.git("rev-parse", "HEAD")
    view = kit.service.get(NS, "web")
    assert view.operation is not None and view.operation.phase == "Succeeded"

    # nothing changes: later passes before the poll is due start nothing
    quiet = kit.drive(T0 + timedelta(seconds=60))
    assert quiet[0].started == {}

    repo.write({"app/a.yaml": configmap("a", "2")})
    repo.git("rm", "-q", "app/b.yaml")
    second = repo.commit("change a, drop b")
    reports = kit.drive(T0 + timedelta(seconds=400))
    assert reports[0].started == {(NS, "web"): "auto"}
    assert kit.live_data("a") == {"v": "2"}
    assert kit.live_data("b") is None  # automated prune
    assert [e.revisions for e in kit.service.history(NS, "web")] == [(first,), (second,)]
    assert [e.initiated_by for e in kit.service.history(NS, "web")] == [{"automated": True}] * 2
    assert kit.store.apps.status(NS, "web").sync_status == "Synced"
    assert {"sync.started", "sync.succeeded"} <= set(kit.sink.actions())


def test_failed_revision_is_not_reattempted_but_a_new_commit_is(
    tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    gate = FakeGate(deny_names={"b"})
    kit = build(tmp_path, kc, repo, gate=gate)
    kit.service.create(app_manifest(repo.url, automated={}, retry={"limit": 0}), now=T0)
    kit.drive(T0)
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.phase.value == "Failed" and "ConfigMap b is denied" in state.message
    assert kit.live_data("a") is None  # the gate came first: nothing was written

    # polls of the same revision do not try again; the app says why
    for minutes in (5, 10, 15):
        report = kit.reconciler.run_once(T0 + timedelta(minutes=minutes))
        assert report.compared == {(NS, "web"): "OutOfSync"} and report.started == {}
    conditions = kit.store.apps.status(NS, "web").conditions
    assert [c["type"] for c in conditions] == ["SyncError"]
    assert conditions[0]["message"].startswith("Failed last sync attempt to ")
    assert gate.triggers == ["auto"]

    repo.git("rm", "-q", "app/b.yaml")
    repo.commit("drop b")
    reports = kit.drive(T0 + timedelta(minutes=20))
    assert reports[0].started == {(NS, "web"): "auto"}
    assert kit.live_data("a") == {"v": "1"}
    assert kit.store.apps.status(NS, "web").conditions == []


def test_self_heal_notices_drift_from_the_watch_event(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    other = connect(sb, tmp_path, "other")
    kit = build(tmp_path, kc, repo)
    cache = ClusterCache(
        kc,
        kit.env.tracker.selector(),
        on_event=kit.reconciler.on_cache_event,
        kinds=[("", "ConfigMap")],
        watch_timeout_seconds=2,
        retry_seconds=0.2,
    )
    kit.env.destinations = type(kit.env.destinations)(cluster_for=lambda app: kc, cache_for=lambda app: cache)
    cache.start()
    try:
        kit.service.create(app_manifest(repo.url, automated={"selfHeal": True}), now=T0)
        kit.drive(T0)
        assert kit.live_data("a") == {"v": "1"}
        time.sleep(0.5)  # let the watch deliver the events of our own sync
        before = kit.reconciler.run_once(T0 + timedelta(seconds=20))
        assert before.started == {}

        drifted = other.get(_key("a"))
        drifted["data"] = {"v": "changed by hand"}
        drifted["metadata"].pop("managedFields", None)
        other.apply(drifted, field_manager="human", force=True)
        deadline = time.monotonic() + WAIT
        while "web" not in kit.reconciler.drifted() and time.monotonic() < deadline:
            time.sleep(0.05)
        # well before the next poll (120 s + jitter): only the watch event can cause this comparison
        reports = kit.drive(T0 + timedelta(seconds=30))
        assert reports[0].compared == {(NS, "web"): "OutOfSync"}
        assert reports[0].started == {(NS, "web"): "self-heal"}
        assert kit.live_data("a") == {"v": "1"}
        assert kit.gate.triggers[-1] == "self-heal"
        record = kit.store.operations.autosync(NS, "web")
        assert record is not None and record.self_heal_attempts == 1
        assert len(kit.service.history(NS, "web")) == 1  # self-heal is selective: no history entry

        # a second drift right away waits for the backoff (2 s after the first heal ended)
        other.apply({**drifted, "data": {"v": "again"}}, field_manager="human", force=True)
        deadline = time.monotonic() + WAIT
        while "web" not in kit.reconciler.drifted() and time.monotonic() < deadline:
            time.sleep(0.05)
        finished = record.last_finished_at
        assert finished is not None
        early = kit.reconciler.run_once(finished + timedelta(seconds=1))
        assert early.started == {}
        later = kit.drive(finished + timedelta(seconds=2))
        assert later[0].started == {(NS, "web"): "self-heal"}
        assert kit.live_data("a") == {"v": "1"}
    finally:
        cache.stop()
        other.close()


def _key(name: str) -> ResourceKey:
    return ResourceKey("", "ConfigMap", "default", name)


def test_window_blocked_auto_sync_is_not_an_attempt(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    gate = FakeGate(window_closed=True)
    kit = build(tmp_path, kc, repo, gate=gate)
    kit.service.create(app_manifest(repo.url, automated={}, retry={"limit": 0}), now=T0)
    kit.drive(T0)
    state = kit.service.operation_state(NS, "web")
    assert state is not None and state.phase.value == "Failed"
    assert [v["code"] for v in state.violations] == ["window.blocked"]
    assert kit.store.operations.autosync(NS, "web") is None  # not counted as an attempt
    assert kit.live_data("a") is None

    gate.window_closed = False
    reports = kit.drive(T0 + timedelta(minutes=4))
    assert reports[0].started == {(NS, "web"): "auto"}
    assert kit.live_data("a") == {"v": "1"}
    assert gate.triggers == ["auto", "auto"]


def test_webhook_refresh_resolves_at_once_and_is_a_webhook_trigger(
    tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = build(tmp_path, kc, repo, ls_remote_interval=3600)
    kit.service.create(app_manifest(repo.url, automated={}), now=T0)
    kit.drive(T0)
    repo.write({"app/a.yaml": configmap("a", "pushed")})
    pushed = repo.commit("push")
    # a poll within the ls-remote interval does not see the push (one ls-remote per repo per interval)
    kit.drive(T0 + timedelta(minutes=4))
    assert kit.live_data("a") == {"v": "1"}
    kit.service.refresh(NS, "web", now=T0 + timedelta(minutes=5), requested_by=WEBHOOK)
    reports = kit.drive(T0 + timedelta(minutes=5))
    assert reports[0].started == {(NS, "web"): "webhook"}
    assert kit.live_data("a") == {"v": "pushed"}
    assert kit.gate.triggers == ["auto", "webhook"]
    assert kit.store.apps.status(NS, "web").revisions == (pushed,)
    assert kit.store.operations.refresh_requests() == {}


def test_poll_interval_with_injected_jitter(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo, rand=lambda: 0.25)
    kit.service.create(app_manifest(repo.url), now=T0)
    assert kit.reconciler.run_once(T0).compared == {(NS, "web"): "OutOfSync"}
    status = kit.store.apps.status(NS, "web")
    assert status.next_poll_at == T0 + timedelta(seconds=120 + 0.25 * 60)
    assert kit.reconciler.run_once(T0 + timedelta(seconds=134)).compared == {}
    assert kit.reconciler.run_once(T0 + timedelta(seconds=135)).compared == {(NS, "web"): "OutOfSync"}
    assert kit.store.operations.in_progress() == []  # not automated: no sync
    # a spec change is compared at once, without waiting for the poll
    kit.service.update(app_manifest(repo.url, path="app2"), now=T0 + timedelta(seconds=140))
    assert kit.reconciler.run_once(T0 + timedelta(seconds=141)).compared == {(NS, "web"): "Unknown"}
    assert "app2" in kit.store.apps.status(NS, "web").conditions[0]["message"]


def test_repo_error_keeps_the_last_state_through_the_grace_period_then_is_reported(
        tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)  # the default grace period: 180 s; polls every 120 s + 30 s of jitter
    kit.service.create(app_manifest(repo.url, automated={"prune": True}), now=T0)
    kit.drive(T0)
    assert kit.live_data("a") == {"v": "1"}
    synced = kit.store.apps.status(NS, "web")
    shutil.rmtree(repo.path)  # the repository is gone
    sb.requests.clear()

    first = T0 + timedelta(minutes=5)
    report = kit.reconciler.run_once(first)
    assert report.compared == {} and report.started == {} and (NS, "web") in report.deferred
    status = kit.store.apps.status(NS, "web")
    assert (status.sync_status, status.health_status, status.conditions) == ("Synced", "Healthy", [])
    assert status.reconciled_at == synced.reconciled_at  # the last good state, untouched
    assert status.next_poll_at == first + timedelta(seconds=150)  # the next look waits for the next poll

    assert kit.reconciler.run_once(first + timedelta(seconds=149)).deferred == {}  # not due: not even tried
    still = kit.reconciler.run_once(first + timedelta(seconds=150))  # due, but only 150 s into the period
    assert (NS, "web") in still.deferred and kit.store.apps.status(NS, "web").sync_status == "Synced"

    late = kit.reconciler.run_once(first + timedelta(seconds=300))  # the period is over
    assert late.compared == {(NS, "web"): "Unknown"} and late.started == {}
    status = kit.store.apps.status(NS, "web")
    assert (status.sync_status, status.health_status) == ("Unknown", "Unknown")
    assert [c["type"] for c in status.conditions] == ["ComparisonError"]
    assert "failed to load target state" in status.conditions[0]["message"]
    assert sb.requests.writes() == []  # no prune, no delete, no apply
    assert kit.live_data("a") == {"v": "1"}


def test_a_refresh_reports_a_repo_error_at_once_and_a_success_clears_the_clock(
        tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.reconciler.run_once(T0)
    away = tmp_path / "away"
    repo.path.rename(away)  # the Git host is down

    t1 = T0 + timedelta(minutes=5)
    assert (NS, "web") in kit.reconciler.run_once(t1).deferred
    kit.service.refresh(NS, "web", now=t1, level="normal")  # asked for by a person: no grace
    report = kit.reconciler.run_once(t1 + timedelta(seconds=1))
    assert report.compared == {(NS, "web"): "Unknown"}
    assert kit.store.apps.status(NS, "web").conditions[0]["type"] == "ComparisonError"

    away.rename(repo.path)  # back: the next poll compares again and clears the error clock
    assert kit.reconciler.run_once(t1 + timedelta(seconds=200)).compared == {(NS, "web"): "OutOfSync"}
    assert kit.reconciler.repo_errors.first_failure((NS, "web")) is None
    repo.path.rename(away)  # down again, long after the first failure: a new period starts
    report = kit.reconciler.run_once(t1 + timedelta(seconds=400))
    assert (NS, "web") in report.deferred
    assert kit.store.apps.status(NS, "web").sync_status == "OutOfSync"


def test_a_zero_grace_period_reports_the_first_failure(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo, settings_overrides={"repo_error_grace_seconds": 0})
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.reconciler.run_once(T0)
    shutil.rmtree(repo.path)
    assert kit.reconciler.run_once(T0 + timedelta(minutes=5)).compared == {(NS, "web"): "Unknown"}


def test_hard_refresh_renders_again(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.reconciler.run_once(T0)
    cache = kit.env.renderer.cache
    hits, misses = cache.hits, cache.misses
    kit.service.refresh(NS, "web", now=T0, level="normal")
    assert kit.reconciler.run_once(T0 + timedelta(seconds=1)).compared == {(NS, "web"): "OutOfSync"}
    assert (cache.hits, cache.misses) == (hits + 1, misses)  # normal refresh: the render is reused
    kit.service.refresh(NS, "web", now=T0, level="hard")
    assert kit.reconciler.run_once(T0 + timedelta(seconds=2)).compared == {(NS, "web"): "OutOfSync"}
    assert cache.hits == hits + 1  # hard refresh: rendered again, not served from the cache


def test_run_forever_syncs_and_stops(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    stop = threading.Event()
    thread = threading.Thread(target=kit.reconciler.run_forever, args=(stop,), kwargs={"idle_seconds": 0.2})
    thread.start()
    try:
        kit.service.create(app_manifest(repo.url, automated={}), now=T0)
        deadline = time.monotonic() + WAIT
        while kit.live_data("a") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kit.live_data("a") == {"v": "1"}
    finally:
        stop.set()
        kit.reconciler.wake()
        thread.join(WAIT)
    assert not thread.is_alive()
