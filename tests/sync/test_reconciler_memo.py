"""What keeps a steady-state pass cheap (sync.reconciler with sync.compare_memo), against the sandbox over HTTP
with real Git repositories and a SQLite store: behaviour must be the same as comparing afresh every time.

Covers: a poll that finds nothing changed reuses the last comparison (no render, no API request) but still
stores the poll's status; the reuse ends when a second client changes a live object, when a new commit changes
the app, when the project's verdict on an object changes, and never applies to a comparison that had to fetch
an untracked object at a target key (its deletion is noticed); apps of one repository that all need a fresh
revision in one pass cause one ls-remote, not one each; the first tick of an automatic sync uses the comparison
that started it (rendered once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sync import kube
from sync.application import Application
from sync.models import ResourceKey
from sync.reconcile_env import allow_all
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, Kit, app_manifest, build, configmap, connect

NS = "syncwarden"
HOUR = timedelta(hours=1)


def _synced(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo) -> Kit:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url, automated={"prune": True}), now=T0)
    kit.drive(T0)
    assert kit.store.apps.status(NS, "web").sync_status == "Synced"
    return kit


def _key(name: str) -> ResourceKey:
    return ResourceKey("", "ConfigMap", "default", name)


def test_a_poll_with_nothing_changed_reuses_the_comparison(tmp_path: Path, sb: sandbox.Sandbox,
                                                           kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = _synced(tmp_path, kc, repo)
    assert kit.reconciler.run_once(T0 + HOUR).compared == {(NS, "web"): "Synced"}
    renders = (kit.env.renderer.cache.hits, kit.env.renderer.cache.misses)
    hits = kit.reconciler.memo.hits
    before = kit.store.apps.status(NS, "web")
    sb.requests.clear()

    report = kit.reconciler.run_once(T0 + 2 * HOUR)
    assert report.compared == {(NS, "web"): "Synced"} and report.started == {}
    assert kit.reconciler.memo.hits == hits + 1
    assert (kit.env.renderer.cache.hits, kit.env.renderer.cache.misses) == renders  # not rendered again
    assert [r for r in sb.requests.records() if r.verb not in ("list", "discovery")] == []  # the listing only
    after = kit.store.apps.status(NS, "web")
    assert after.reconciled_at == T0 + 2 * HOUR  # the poll is still recorded
    assert (after.resources, after.revisions, after.sync_status) == (before.resources, before.revisions, "Synced")


def test_a_poll_compares_again_when_live_git_or_project_changed(tmp_path: Path, sb: sandbox.Sandbox,
                                                                kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = _synced(tmp_path, kc, repo)
    kit.service.update(app_manifest(repo.url), now=T0)  # not automated any more: differences stay visible
    assert kit.reconciler.run_once(T0 + HOUR).compared == {(NS, "web"): "Synced"}
    assert kit.reconciler.run_once(T0 + 2 * HOUR).compared == {(NS, "web"): "Synced"}

    other = connect(sb, tmp_path, "other")
    try:
        live = other.get(_key("a"))
        live["metadata"].pop("managedFields", None)
        other.apply({**live, "data": {"v": "by hand"}}, field_manager="human", force=True)
    finally:
        other.close()
    assert kit.reconciler.run_once(T0 + 3 * HOUR).compared == {(NS, "web"): "OutOfSync"}
    kc.apply({**kc.get(_key("a")), "data": {"v": "1"}}, field_manager="human", force=True)
    assert kit.reconciler.run_once(T0 + 4 * HOUR).compared == {(NS, "web"): "Synced"}

    repo.write({"app/b.yaml": configmap("b", "2")})
    commit = repo.commit("change b")
    assert kit.reconciler.run_once(T0 + 5 * HOUR).compared == {(NS, "web"): "OutOfSync"}
    assert kit.store.apps.status(NS, "web").revisions == (commit,)

    def no_b(app: Application) -> Callable[[Mapping[str, Any]], bool]:
        return lambda obj: (obj.get("metadata") or {}).get("name") != "b"

    kit.env.permitted = no_b  # the project stops permitting ConfigMap b
    kit.reconciler.run_once(T0 + 6 * HOUR)
    rows = {r["name"]: r["status"] for r in kit.store.apps.status(NS, "web").resources}
    assert rows == {"a": "Synced", "b": "Unknown"}
    kit.env.permitted = allow_all
    kit.reconciler.run_once(T0 + 7 * HOUR)
    rows = {r["name"]: r["status"] for r in kit.store.apps.status(NS, "web").resources}
    assert rows == {"a": "Synced", "b": "OutOfSync"}


def test_a_comparison_that_fetched_an_untracked_object_is_not_reused(tmp_path: Path, kc: kube.KubeCluster,
                                                                     repo: GitRepo) -> None:
    kc.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"},
              "data": {"v": "made by hand"}}, field_manager="human")
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)  # not automated: nothing adopts "a"
    kit.reconciler.run_once(T0)
    health = {r["name"]: (r["health"] or {}).get("status") for r in kit.store.apps.status(NS, "web").resources}
    assert health == {"a": None, "b": "Missing"}  # present (a ConfigMap has no health), b absent
    kit.reconciler.run_once(T0 + HOUR)
    kc.delete(_key("a"))  # not tracked: no watch or listing of the app would show it
    kit.reconciler.run_once(T0 + 2 * HOUR)
    health = {r["name"]: (r["health"] or {}).get("status") for r in kit.store.apps.status(NS, "web").resources}
    assert health == {"a": "Missing", "b": "Missing"}


def test_one_ls_remote_per_repository_per_pass(tmp_path: Path, kc: kube.KubeCluster, repo: GitRepo,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    kit = build(tmp_path, kc, repo, ls_remote_interval=3600)
    repos = kit.env.renderer.repos
    calls: list[str] = []
    real = repos._git

    def counting(args: list[str], **kwargs: Any) -> bytes:
        calls.append(args[2] if args[0] == "--git-dir" else args[0])
        return real(args, **kwargs)

    monkeypatch.setattr(repos, "_git", counting)
    for name in ("one", "two", "three"):
        kit.service.create(app_manifest(repo.url, name=name), now=T0)
    report = kit.reconciler.run_once(T0)  # three new specs: each wants a fresh revision
    assert len(report.compared) == 3 and calls.count("ls-remote") == 1

    repo.write({"app/a.yaml": configmap("a", "2")})
    commit = repo.commit("change a")
    for name in ("one", "two", "three"):
        kit.service.refresh(NS, name, now=T0, level="normal")
    kit.reconciler.run_once(T0 + timedelta(seconds=1))
    assert calls.count("ls-remote") == 2  # one more for the three refreshes
    assert {kit.store.apps.status(NS, n).revisions for n in ("one", "two", "three")} == {(commit,)}


def test_the_first_tick_of_an_automatic_sync_uses_the_comparison_that_started_it(
    tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster, repo: GitRepo
) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url, automated={"prune": True}), now=T0)
    served = kit.env.renderer.cache.hits
    sb.requests.clear()
    report = kit.reconciler.run_once(T0)
    assert report.started == {(NS, "web"): "auto"} and report.ticked == {(NS, "web"): "Succeeded"}
    assert kit.live_data("a") == {"v": "1"} and kit.live_data("b") == {"v": "1"}
    # rendered once, for the comparison; the tick did not render again (it would be served from the cache)
    assert kit.env.renderer.cache.hits == served
    assert [e.revisions for e in kit.service.history(NS, "web")] == [(repo.git("rev-parse", "HEAD"),)]
