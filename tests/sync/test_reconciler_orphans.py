"""Orphaned resources through the reconciler: the sandbox over HTTP (another client creates the objects), a real
Git repository, SQLite, and the project's setting injected as ``Environment.orphan_monitor``.

Covers what a user observes in the app's status: the orphans of the destination namespace are listed and counted
in ``OrphanedResourceWarning`` "Application has N orphaned resources" when the project warns; objects of other
existing apps, owned objects, the built-in exclusions (``default/kubernetes`` Service, ``default``
ServiceAccount, ``kube-root-ca.crt``), excluded kinds (events), the project's ignore rules and what the project
hides are not orphans, while an object naming a deleted app is; orphans never change the sync status and a sync
with prune leaves them alone; without ``warn`` they are listed but raise nothing; without monitoring nothing is
listed; the count follows the namespace at the next poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sync import kube
from sync.models import ResourceKey
from sync.orphans import OrphanMonitor
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import T0, TRACK, Kit, app_manifest, build, connect

NS = "syncwarden"
APP = (NS, "web")
SA_LIST = "/api/v1/namespaces/default/serviceaccounts"


@pytest.fixture
def other(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[kube.KubeCluster]:
    c = connect(sb, tmp_path, "other")
    yield c
    c.close()


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", **meta},
            "data": {"k": "v"}}


def seed_namespace(other: kube.KubeCluster) -> None:
    """What a real namespace holds besides the app's objects, written by someone else."""
    stray = other.apply(cm("stray"), field_manager="kubectl")
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "stray", "uid": stray["metadata"]["uid"]}
    for obj in (
        cm("gen-1"),  # the project ignores gen-*
        cm("kube-root-ca.crt"),
        cm("child", ownerReferences=[owner]),  # not top-level
        cm("theirs", annotations={TRACK: "api:/ConfigMap:default/theirs"}),  # app "api" exists
        cm("leftover", annotations={TRACK: "gone:/ConfigMap:default/leftover"}),  # app "gone" does not
        cm("hidden"),  # the project does not permit it: never shown
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "default"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"ports": [{"port": 443}]}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
         "involvedObject": {"kind": "ConfigMap", "name": "a"}, "reason": "Synced"},
    ):
        other.apply(obj, field_manager="kubectl")


def monitored(kit: Kit, *, warn: bool) -> None:
    kit.env.orphan_monitor = lambda app: OrphanMonitor(
        warn=warn, ignored=lambda group, kind, name: kind == "ConfigMap" and name.startswith("gen-"))
    kit.env.permitted = lambda app: (lambda obj: (obj.get("metadata") or {}).get("name") != "hidden")


def names(kit: Kit) -> list[tuple[str, str]] | None:
    found = kit.store.apps.status(*APP).orphaned_resources
    return None if found is None else [(o["kind"], o["name"]) for o in found]


def test_orphans_are_listed_counted_and_never_pruned(tmp_path: Path, kc: kube.KubeCluster, other: kube.KubeCluster,
                                                     repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    monitored(kit, warn=True)
    kit.service.create(app_manifest(repo.url), now=T0)
    kit.service.create(app_manifest(repo.url, name="api", path="elsewhere"), now=T0)
    seed_namespace(other)
    kit.reconciler.run_once(T0)
    kit.service.sync(*APP, now=T0, subject="alice", prune=True)
    kit.drive(T0)

    status = kit.store.apps.status(*APP)
    assert status.sync_status == "Synced"  # orphans never make the app OutOfSync
    assert names(kit) == [("ConfigMap", "leftover"), ("ConfigMap", "stray")]
    assert status.orphaned_resources is not None
    assert status.orphaned_resources[0] == {"group": "", "version": "v1", "kind": "ConfigMap",
                                            "namespace": "default", "name": "leftover"}
    assert [(c["type"], c["message"]) for c in status.conditions] == [
        ("OrphanedResourceWarning", "Application has 2 orphaned resources")]
    assert kit.service.get(*APP).to_dict()["status"]["orphanedResources"] == status.orphaned_resources
    for name in ("stray", "leftover", "gen-1"):  # the sync pruned none of them
        assert kit.cluster.get(ResourceKey("", "ConfigMap", "default", name))

    other.delete(ResourceKey("", "ConfigMap", "default", "leftover"))
    kit.reconciler.run_once(T0 + timedelta(minutes=5))  # the next poll
    assert names(kit) == [("ConfigMap", "stray")]
    assert kit.store.apps.status(*APP).conditions[0]["message"] == "Application has 1 orphaned resources"


def test_without_warn_orphans_are_listed_but_raise_nothing(tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster,
                                                           other: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    monitored(kit, warn=False)
    kit.service.create(app_manifest(repo.url), now=T0)
    seed_namespace(other)
    sb.requests.clear()
    kit.reconciler.run_once(T0)
    assert SA_LIST in [r.path for r in sb.requests.records()]  # one list per namespaced kind
    assert names(kit) == [("ConfigMap", "leftover"), ("ConfigMap", "stray"), ("ConfigMap", "theirs")]  # no "api"
    assert kit.store.apps.status(*APP).conditions == []


def test_without_monitoring_nothing_is_listed(tmp_path: Path, sb: sandbox.Sandbox, kc: kube.KubeCluster,
                                              other: kube.KubeCluster, repo: GitRepo) -> None:
    kit = build(tmp_path, kc, repo)
    kit.service.create(app_manifest(repo.url), now=T0)
    seed_namespace(other)
    sb.requests.clear()
    kit.reconciler.run_once(T0)
    assert names(kit) is None and kit.store.apps.status(*APP).conditions == []
    assert "orphanedResources" not in kit.service.get(*APP).to_dict()["status"]
    assert SA_LIST not in [r.path for r in sb.requests.records()]  # the namespace was not listed
