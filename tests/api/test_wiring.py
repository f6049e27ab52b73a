"""``api.wiring.build_services`` against the sandbox over HTTP, a real Git repository and a SQLite database.

Covered: an audit log that cannot be written refuses the operation (Error "audit log unavailable") before
anything reaches the cluster; an app whose project does not exist is denied by the gate and sees no live
object (fail closed); a window override needs the override permission, and an explicit deny in the stored
RBAC policy beats the local operator's admin grant; with ``watch`` another client's change reaches the
reconciler's drift set and live objects come from the cache; the policy view picks up a project change; the kubeconfig
context selects the cluster, and an unknown context is refused naming the known ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import sandbox
from api.wiring import Services, build_services
from config.settings import DatabaseSettings, Settings
from policy import audit
from sync import kube
from sync.cluster import UnknownCluster
from sync.cluster_registry import ClusterRegistry
from sync.models import ResourceKey
from sync.operation import OperationPhase
from tests.e2e.e2ekit import application, project
from tests.sync.gitfixtures import GitRepo

ADMIN = "local:alice"
CTX = audit.AuditContext(subject="test", client="test")
FREEZE = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: live}\n"


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'db.sqlite'}"))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0, tick_interval=0.05) as box:
        yield box


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "repo")
    r.write({"app/settings.yaml": CM})
    r.commit("initial")
    return r


@pytest.fixture
def services(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[Services]:
    kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    settings = _settings(tmp_path)
    built = build_services(settings, kubeconfig=[kubeconfig], admin_subjects=[ADMIN], allow_file_urls=True,
                           environ={}, policy_refresh_seconds=0.0, sleep=lambda s: None)
    yield built
    built.close()


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15  # bound for a watch event on a loaded machine, not an assertion on time
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _sync(services: Services, name: str, **kwargs: object) -> dict[str, object]:
    ns = "syncwarden"
    op_id = services.apps.sync(ns, name, now=now(), subject=ADMIN, **kwargs)  # type: ignore[arg-type]
    state = services.apps.wait_for_operation(ns, name, timeout_seconds=30, op_id=op_id, poll_seconds=0.05)
    return state.to_dict()


def test_an_unwritable_audit_log_refuses_the_operation(services: Services, sb: sandbox.Sandbox,
                                                       repo: GitRepo) -> None:
    services.apps.create(application(repo, "app", name="cfg", namespace="default"), now=now())
    services.policy_store.audit.close()  # from now on every append raises AuditUnavailable
    sb.requests.clear()

    state = _sync(services, "cfg")

    assert state["phase"] == OperationPhase.ERROR.value and state["message"] == "audit log unavailable"
    assert sb.requests.writes() == []


def test_an_unknown_project_is_denied_and_sees_nothing(services: Services, sb: sandbox.Sandbox,
                                                       repo: GitRepo) -> None:
    manifest = application(repo, "app", name="cfg", namespace="default", project="ghost")
    stored = services.apps.create(manifest, now=now())
    sb.requests.clear()

    state = _sync(services, "cfg")

    assert state["phase"] == "Failed" and "project 'ghost' of app 'cfg' does not exist" in str(state["message"])
    assert sb.requests.writes() == []
    permitted = services.env.permitted(stored.application())
    assert not permitted({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}})


def test_override_needs_the_permission_and_an_explicit_deny_wins(services: Services, repo: GitRepo) -> None:
    services.policy_store.projects.create(project("web", syncWindows=[FREEZE]), ctx=CTX, now=now())
    services.apps.create(application(repo, "app", name="cfg", namespace="default", project="web"), now=now())

    blocked = _sync(services, "cfg")
    assert blocked["phase"] == "Failed" and "window.blocked" in str(blocked["violations"])

    services.policy_store.rbac.set(f"p, {ADMIN}, applications, override, web/*, deny\n", ctx=CTX, now=now())
    denied = _sync(services, "cfg", override_reason="hotfix")
    assert denied["phase"] == "Failed" and "override" in str(denied["violations"])

    services.policy_store.rbac.set("", ctx=CTX, now=now())
    allowed = _sync(services, "cfg", override_reason="hotfix")
    assert allowed["phase"] == "Succeeded"


def test_watch_cache_reports_drift_to_the_reconciler(sb: sandbox.Sandbox, repo: GitRepo, tmp_path: Path) -> None:
    kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    built = build_services(_settings(tmp_path), kubeconfig=[kubeconfig], admin_subjects=[ADMIN],
                           allow_file_urls=True, environ={}, watch=True)
    try:
        built.apps.create(application(repo, "app", name="cfg", namespace="default"), now=now())
        assert _sync(built, "cfg")["phase"] == "Succeeded"
        cache = built.env.destinations.cache_for(built.apps.store.apps.get("syncwarden", "cfg").application())
        assert cache is not None
        key = ResourceKey("", "ConfigMap", "default", "settings")
        _wait(lambda: cache.get(key) is not None and "cfg" in built.reconciler.drifted())  # the sync's own event
        built.reconciler.run_once(now())  # a pass consumes it
        assert "cfg" not in built.reconciler.drifted()
        other = kube.connect(ClusterRegistry.load([kubeconfig], environ={}).get("sandbox"))
        try:
            other.apply({"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": "hacked"},
                         "metadata": {"name": "settings", "namespace": "default"}}, field_manager="kubectl", force=True)
        finally:
            other.close()
        _wait(lambda: "cfg" in built.reconciler.drifted())
        assert "cfg" in built.reconciler.drifted()
        live = built.env.live(built.apps.store.apps.get("syncwarden", "cfg").application())
        assert [o["data"] for o in live] == [{"mode": "hacked"}]  # read from the cache
    finally:
        built.close()


def test_policy_view_sees_a_project_change(services: Services) -> None:
    assert services.project("web") is None
    services.policy_store.projects.create(project("web"), ctx=CTX, now=now())
    found = services.project("web")
    assert found is not None and found.name == "web"
    assert "web" in services.policy.projects() and services.policy.broken() == {}


def test_context_selection(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    first = sb.write_kubeconfig(tmp_path / "k1", context="sandbox")
    text = first.read_text().replace("sandbox", "other")
    second = tmp_path / "k2"
    second.write_text(text)
    settings = _settings(tmp_path)
    built = build_services(settings, kubeconfig=[first, second], context="other", environ={})
    try:
        assert built.registry.current == "other"
        assert built.registry.resolve(server="https://kubernetes.default.svc").name == "other"
    finally:
        built.close()
    with pytest.raises(UnknownCluster, match="known: other, sandbox"):
        build_services(settings, kubeconfig=[first, second], context="nope", environ={})
