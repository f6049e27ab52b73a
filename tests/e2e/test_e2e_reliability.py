"""Drift and faults through the real CLI against the sandbox: another client's change is repaired by self-heal
on the next refresh (only the drifted object is written); faults injected by the sandbox (503, 409 and a slow
response) are retried within the sync without repeating a write that took effect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import E2E, application, e2e
from tests.sync.gitfixtures import PLAIN, make_repo

SETTINGS = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: live}\n"
CONFIGMAP = "/api/v1/namespaces/demo/configmaps/settings"
DEPLOY = "/apis/apps/v1/namespaces/demo/deployments/web"
SERVICE = "/api/v1/namespaces/demo/services/web"


@pytest.fixture
def k(tmp_path: Path) -> Iterator[E2E]:
    yield from e2e(tmp_path)


def test_drift_is_repaired_by_self_heal(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app/settings.yaml": SETTINGS, "app/other.yaml": SETTINGS.replace(
        "settings", "other")})
    app = application(repo, "app", name="cfg", sync_policy={
        "automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    code, out, err = k.app_cmd("get", "cfg", "--refresh")  # the refresh leads to the automated sync
    assert code == 0, err
    assert "Sync Status:   Synced" in out
    live = k.live("ConfigMap", "settings", "demo")
    assert live is not None and live["data"] == {"mode": "live"}

    # a second client changes the object behind our back
    k.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "demo"},
                     "data": {"mode": "hacked"}}, field_manager="kubectl", force=True)
    code, out, _ = k.app_cmd("diff", "cfg")
    assert code == 1 and "+  mode: live" in out
    k.sb.requests.clear()

    code, out, err = k.app_cmd("get", "cfg", "--refresh", "-o", "json")

    assert code == 0, err
    live = k.live("ConfigMap", "settings", "demo")
    assert live is not None and live["data"] == {"mode": "live"}
    assert k.writes() == [("patch", CONFIGMAP), ("patch", CONFIGMAP)]  # dry-run, apply: the drifted one only
    gate = k.audit("--app", "cfg", "--action", "app.sync.gate")
    assert [r["details"]["trigger"] for r in gate] == ["auto", "self-heal"]
    assert k.app_cmd("diff", "cfg")[0] == 0


def test_faults_are_retried_without_duplicate_writes(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", PLAIN)
    app = application(repo, "apps/plain", name="plain", sync_policy={"syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    k.sb.faults.add("patch", "namespaces", latency=0.3, times=1)  # a slow response
    k.sb.faults.add("patch", "services", status=409, times=1)
    k.sb.faults.add("patch", "deployments", status=503, times=2)
    k.sb.requests.clear()

    code, out, err = k.app_cmd("sync", "plain")

    assert code == 0, out + err
    assert k.writes() == [
        ("patch", "/api/v1/namespaces/demo"),  # slow, but answered
        ("patch", SERVICE), ("patch", SERVICE),  # dry-run: 409, then again
        ("patch", DEPLOY), ("patch", DEPLOY), ("patch", DEPLOY),  # dry-run: 503, 503, then again
        ("patch", SERVICE), ("patch", DEPLOY),  # each applied exactly once
    ]
    assert k.sb.faults.rules() == []
    resources = [r for r in k.audit("--app", "plain", "--action", "app.sync.resource")]
    assert sorted(r["target"]["object"] for r in resources) == [
        "/Namespace//demo", "/Service/demo/web", "apps/Deployment/demo/web"]
