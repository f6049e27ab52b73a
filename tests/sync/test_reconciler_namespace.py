"""``managedNamespaceMetadata`` through the reconciler: the sandbox over HTTP, a real Git repository, SQLite.

Covers what a user observes: the first automated sync creates the destination namespace with the metadata and the
app status shows what was applied; changing the metadata makes the app OutOfSync (its resources stay Synced) and,
as in Argo CD, an automated app without self-heal waits for a sync; a manual sync applies it by server-side apply
(a label another client set survives) and the app is Synced again; an operation that fails before applying the
metadata does not change what counts as applied, either way; a namespace the metadata tracks is compared and
never pruned; without CreateNamespace the metadata is inert.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sandbox
from sync import kube
from sync.models import ResourceKey
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, TRACK, Kit, app_manifest, build, connect

NS = "syncwarden"
DEST = "team"
APP = (NS, "web")


def manifest(repo: GitRepo, metadata: dict[str, Any] | None, *, create: bool = True, dest: str = DEST,
             **automated: Any) -> dict[str, Any]:
    out = app_manifest(repo.url, automated=automated or None)
    out["spec"]["destination"]["namespace"] = dest
    policy = out["spec"].setdefault("syncPolicy", {})
    policy["syncOptions"] = ["CreateNamespace=true"] if create else []
    if metadata is not None:
        policy["managedNamespaceMetadata"] = metadata
    return out


def namespace(kit: Kit, name: str = DEST) -> dict[str, Any]:
    return kit.cluster.get(ResourceKey("", "Namespace", "", name))


def sync_now(kit: Kit, at: Any) -> None:
    kit.service.sync(*APP, now=at, subject="alice")
    kit.drive(at)


def test_metadata_is_applied_compared_and_reapplied_by_a_sync(tmp_path: Path, sb: sandbox.Sandbox,
                                                              kc: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(manifest(repo, {"labels": {"team": "web"}}, enabled=True), now=T0)
    reports = kit.drive(T0)
    assert reports[0].started == {APP: "auto"}
    assert namespace(kit)["metadata"]["labels"] == {"team": "web"}
    assert TRACK not in (namespace(kit)["metadata"].get("annotations") or {})  # untracked
    view = kit.service.get(*APP).to_dict()
    assert view["status"]["sync"]["status"] == "Synced"
    assert view["status"]["operationState"]["managedNamespaceMetadata"] == {"labels": {"team": "web"},
                                                                            "annotations": {}}

    other = connect(sb, tmp_path, "other")  # a service mesh labels the namespace on its own
    try:
        ns = namespace(kit)
        other.apply({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": DEST, "labels": {"istio-injection": "enabled"}}}, field_manager="istio")
    finally:
        other.close()
    assert ns["metadata"]["labels"] == {"team": "web"}

    t1 = T0 + timedelta(minutes=1)
    kit.service.update(manifest(repo, {"labels": {"tier": "gold"}}, enabled=True), now=t1)
    report = kit.reconciler.run_once(t1)
    assert report.compared == {APP: "OutOfSync"}
    status = kit.store.apps.status(*APP)
    assert {r["status"] for r in status.resources} == {"Synced"}  # only the metadata differs
    assert report.started == {}  # as Argo CD: nothing but Synced resources, and auto-prune is off

    sync_now(kit, t1 + timedelta(seconds=5))
    assert namespace(kit)["metadata"]["labels"] == {"istio-injection": "enabled", "tier": "gold"}
    assert kit.store.apps.status(*APP).sync_status == "Synced"


def test_a_sync_that_fails_before_the_namespace_changes_nothing_applied(tmp_path: Path, kc: kube.KubeCluster,
                                                                       repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(manifest(repo, {"labels": {"team": "web"}}), now=T0)
    kit.reconciler.run_once(T0)
    sync_now(kit, T0 + timedelta(seconds=1))
    assert kit.store.apps.status(*APP).sync_status == "Synced"

    kit.gate.deny_names = {"a"}  # the project refuses the next sync: nothing is written
    t1 = T0 + timedelta(minutes=1)
    sync_now(kit, t1)
    state = kit.service.operation_state(*APP)
    assert state is not None and state.phase.value == "Failed" and state.managed_namespace_metadata is None
    kit.service.refresh(*APP, now=t1 + timedelta(seconds=10))
    kit.reconciler.run_once(t1 + timedelta(seconds=10))
    assert kit.store.apps.status(*APP).sync_status == "Synced"  # what the earlier sync applied still counts

    t2 = t1 + timedelta(minutes=1)
    kit.service.update(manifest(repo, {"labels": {"team": "api"}}), now=t2)
    sync_now(kit, t2)  # refused again: the new metadata never reaches the namespace
    assert namespace(kit)["metadata"]["labels"] == {"team": "web"}
    kit.service.refresh(*APP, now=t2 + timedelta(seconds=10))
    kit.reconciler.run_once(t2 + timedelta(seconds=10))
    assert kit.store.apps.status(*APP).sync_status == "OutOfSync"


def test_a_namespace_the_metadata_tracks_is_compared_and_never_pruned(tmp_path: Path, kc: kube.KubeCluster,
                                                                     repo: GitRepo) -> None:
    tracked = {"labels": {"team": "web"}, "annotations": {TRACK: f"web:/Namespace:{DEST}/{DEST}"}}
    kit = build(tmp_path, kc, repo)
    kit.service.create(manifest(repo, tracked, prune=True), now=T0)
    kit.drive(T0)
    assert namespace(kit)["metadata"]["annotations"][TRACK] == f"web:/Namespace:{DEST}/{DEST}"
    status = kit.store.apps.status(*APP)
    rows = {r["kind"]: r for r in status.resources}
    assert (rows["Namespace"]["status"], rows["Namespace"]["requiresPruning"]) == ("Synced", False)
    assert status.sync_status == "Synced"

    t1 = T0 + timedelta(minutes=1)
    kit.service.update(manifest(repo, {**tracked, "labels": {"team": "api"}}, prune=True), now=t1)
    kit.reconciler.run_once(t1)
    rows = {r["kind"]: r for r in kit.store.apps.status(*APP).resources}
    assert rows["Namespace"]["status"] == "OutOfSync"
    kit.service.sync(*APP, now=t1, subject="alice", prune=True)
    kit.drive(t1)
    assert namespace(kit)["metadata"]["labels"] == {"team": "api"}  # applied, not pruned
    assert kit.store.apps.status(*APP).sync_status == "Synced"


def test_without_create_namespace_the_metadata_is_inert(tmp_path: Path, kc: kube.KubeCluster,
                                                        repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(manifest(repo, {"labels": {"team": "web"}}, create=False, dest="default"), now=T0)
    kit.reconciler.run_once(T0)
    sync_now(kit, T0 + timedelta(seconds=1))
    assert kit.store.apps.status(*APP).sync_status == "Synced"
    assert "team" not in (namespace(kit, "default")["metadata"].get("labels") or {})
