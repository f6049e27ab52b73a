"""How a project's ``orphanedResources`` reaches the sync core (``api.policy_binding.orphan_monitor``, bound by
``api.wiring`` as ``Environment.orphan_monitor``), and the whole path against the sandbox with a stored project.

Covered: no monitor without the field (or without a project); ``warn`` only when explicitly true; ignore rules
as the reference §1.6 reads them (the group is always a glob, so an omitted group means the core group only; an
empty kind or name matches any); through ``build_services``, an app of a monitoring project gets its orphans and
the warning in its status; over HTTP, ``/resource-tree``'s ``orphanedNodes`` shows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import sandbox
from api.policy_binding import orphan_monitor
from api.wiring import Services, build_services
from config.settings import DatabaseSettings, Settings
from policy import audit
from policy.project import AppProject
from sync import kube
from sync.cluster_registry import ClusterRegistry
from tests.api import appkit
from tests.e2e.e2ekit import application, project
from tests.sync.gitfixtures import GitRepo

CTX = audit.AuditContext(subject="test", client="test")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def monitor_of(orphaned: Any = None, *, present: bool = True) -> Any:
    spec = {"orphanedResources": orphaned} if present else {}
    return orphan_monitor(AppProject.from_dict(project("web", **spec)))


def test_no_field_no_monitor_and_warn_only_when_true() -> None:
    assert orphan_monitor(None) is None
    assert monitor_of(present=False) is None
    empty = monitor_of({})
    assert empty is not None and empty.warn is False
    assert monitor_of({"warn": False}).warn is False
    assert monitor_of({"warn": True}).warn is True


@pytest.mark.parametrize(
    ("rule", "obj", "ignored"),
    [
        pytest.param({"kind": "ConfigMap", "name": "gen-*"}, ("", "ConfigMap", "gen-1"), True, id="core-glob"),
        pytest.param({"kind": "ConfigMap", "name": "gen-*"}, ("", "ConfigMap", "app"), False, id="name-differs"),
        pytest.param({"kind": "Deployment"}, ("apps", "Deployment", "web"), False, id="no-group-means-core"),
        pytest.param({"group": "*", "kind": "Deployment"}, ("apps", "Deployment", "web"), True, id="any-group"),
        pytest.param({"group": "apps"}, ("apps", "StatefulSet", "db"), True, id="empty-kind-and-name-match-any"),
        pytest.param({"group": "apps", "kind": "Deploy*"}, ("apps", "DaemonSet", "x"), False, id="kind-glob"),
    ],
)
def test_ignore_rules(rule: dict[str, str], obj: tuple[str, str, str], ignored: bool) -> None:
    monitor = monitor_of({"warn": True, "ignore": [rule]})
    group, kind, name = obj
    assert monitor.ignored(group, kind, name) is ignored


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0) as box:
        yield box


@pytest.fixture
def services(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[Services]:
    kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    settings = Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'db'}"))
    built = build_services(settings, kubeconfig=[kubeconfig], allow_file_urls=True, environ={},
                           policy_refresh_seconds=0.0, sleep=lambda s: None)
    yield built
    built.close()


def test_a_monitoring_project_puts_orphans_in_the_app_status(services: Services, sb: sandbox.Sandbox,
                                                              tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write({"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\ndata: {k: v}\n"})
    repo.commit("initial")
    orphaned = {"warn": True, "ignore": [{"kind": "ConfigMap", "name": "gen-*"}]}
    services.policy_store.projects.create(project("web", orphanedResources=orphaned), ctx=CTX, now=T0)
    services.apps.create(application(repo, "app", name="cfg", namespace="default", project="web"), now=T0)
    other = kube.connect(ClusterRegistry.load([tmp_path / "kubeconfig"], environ={}).get("sandbox"),
                         timeout_seconds=10)
    try:
        for name in ("stray", "gen-1"):
            other.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
                         "data": {"k": "v"}}, field_manager="kubectl")
    finally:
        other.close()

    services.reconciler.run_once(T0)

    status = services.apps.get("syncwarden", "cfg").to_dict()["status"]
    assert [(o["kind"], o["name"]) for o in status["orphanedResources"]] == [("ConfigMap", "stray")]
    assert {"type": "OrphanedResourceWarning", "message": "Application has 1 orphaned resources"} in [
        {"type": c["type"], "message": c["message"]} for c in status["conditions"]]
    assert status["sync"]["status"] == "OutOfSync"  # "mine" is not synced yet; the orphan has no say in it


def test_the_resource_tree_shows_the_orphaned_nodes(tmp_path: Path) -> None:
    with appkit.app_kit(tmp_path) as kit:
        admin = kit.login()
        body = appkit.project("web", orphanedResources={"warn": True})
        assert kit.client.post("/api/v1/projects", headers=admin, json={"project": body}).status_code == 200
        manifest = appkit.application(kit.repo, "guestbook")
        assert kit.client.post("/api/v1/applications", headers=admin, json={"application": manifest}).status_code == 200
        other = kube.connect(ClusterRegistry.load([tmp_path / "kubeconfig"], environ={}).get("sandbox"),
                             timeout_seconds=10)
        try:
            other.apply({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "stray", "namespace": "web-guestbook"}}, field_manager="kubectl")
        finally:
            other.close()
        kit.drive()
        tree = kit.client.get("/api/v1/applications/guestbook/resource-tree", headers=admin).json()
        assert [(n["kind"], n["name"]) for n in tree["orphanedNodes"]] == [("ConfigMap", "stray")]
        assert {n["name"] for n in tree["nodes"]} == {"guestbook", "creds"}
