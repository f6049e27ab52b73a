"""Project policy through the real CLI against the sandbox: a denied object stops the whole sync with nothing
written (not even a dry-run); an app whose source the project does not permit is refused at create; a freeze
(an always-active deny window) blocks the automated sync and a plain manual one, and lets a manual sync with
an override reason through, which the audit log records; the audit chain verifies afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import E2E, application, e2e, project
from tests.sync.gitfixtures import PLAIN, make_repo

FREEZE = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"], "manualSync": False}


@pytest.fixture
def k(tmp_path: Path) -> Iterator[E2E]:
    yield from e2e(tmp_path)


def _project(k: E2E, name: str, **spec: object) -> None:
    code, _, err = k.plain("proj", "create", "-f", k.write(f"{name}-project.yaml", project(name, **spec)))
    assert code == 0, err


def test_a_denied_object_stops_the_whole_sync(k: E2E, tmp_path: Path) -> None:
    _project(k, "web", namespaceResourceBlacklist=[{"group": "", "kind": "Service"}])
    repo = make_repo(tmp_path / "repo", PLAIN)
    app = application(repo, "apps/plain", name="plain", project="web",
                      sync_policy={"syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    k.sb.requests.clear()

    code, out, _ = k.app_cmd("sync", "plain")

    assert code == 1
    assert "Failed: sync denied by project policy" in out and "Service" in out
    assert "violation " in out
    assert k.writes() == []  # nothing at all: no namespace, no dry-run, no Deployment
    denied = k.audit("--app", "plain", "--action", "app.sync.denied")
    assert len(denied) == 1 and "Service" in json.dumps(denied[0]["violations"])
    gate = k.audit("--app", "plain", "--action", "app.sync.gate")
    assert [r["result"] for r in gate] == ["denied"]


def test_create_refuses_a_source_the_project_does_not_permit(k: E2E, tmp_path: Path) -> None:
    _project(k, "locked", sourceRepos=["https://github.com/example/*"])
    repo = make_repo(tmp_path / "repo", PLAIN)
    code, out, _ = k.app_cmd("create", "-f", k.write("app.yaml", application(repo, "apps/plain", name="plain",
                                                                             project="locked")))
    assert code == 1 and "denied: spec.sources[0].repoURL" in out
    assert k.app_cmd("list", "-o", "json")[1].strip() == "[]"
    assert [r["result"] for r in k.audit("--action", "app.create")] == ["denied"]
    code, _, err = k.app_cmd("create", "-f", k.write("b.yaml", application(repo, "apps/plain", name="b",
                                                                          project="nope")))
    assert code == 2 and "project 'nope' does not exist" in err


def test_freeze_blocks_auto_sync_but_lets_a_permitted_manual_sync_through(k: E2E, tmp_path: Path) -> None:
    _project(k, "web", syncWindows=[FREEZE])
    repo = make_repo(tmp_path / "repo", PLAIN)
    app = application(repo, "apps/plain", name="plain", project="web",
                      sync_policy={"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    k.sb.requests.clear()

    # the refresh finds the app OutOfSync; the automated sync it starts is refused by the window
    code, out, _ = k.app_cmd("get", "plain", "--refresh", "-o", "json")
    assert code == 0
    state = json.loads(out)["status"]["operationState"]
    assert state["phase"] == "Failed" and [v["code"] for v in state["violations"]] == ["window.blocked"]
    # a plain manual sync is refused too (the window does not allow manual syncs)
    code, out, _ = k.app_cmd("sync", "plain")
    assert code == 1 and "window.blocked" in out
    assert k.writes() == []

    # with a reason, the local operator's override permission lets it through, and it is recorded
    code, out, err = k.app_cmd("sync", "plain", "--reason", "hotfix INC-42")
    assert code == 0, out + err
    assert k.live("Deployment", "web", "demo", "apps") is not None
    gate = k.audit("--app", "plain", "--action", "app.sync.gate")
    assert [(r["details"]["trigger"], r["result"]) for r in gate] == [
        ("auto", "denied"), ("manual", "denied"), ("manual", "allowed")]
    assert gate[-1]["details"]["overrideReason"] == "hotfix INC-42"
    assert gate[-1]["actor"]["subject"].startswith("local:")
    assert k.plain("audit", "verify")[0] == 0
