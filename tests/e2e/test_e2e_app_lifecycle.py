"""The whole life of a plain-manifests app through the real CLI, against the sandbox over HTTP, a real Git
repository and the local database (SQLite, and PostgreSQL when SYNCWARDEN_TEST_DATABASE_URL is set).

create → diff (exit 1) → sync (progress lines; the exact order of writes from the sandbox's request log) →
get/diff in sync → a commit that drops the Service and bumps the image → sync --prune → history → rollback to
the first entry (the Service comes back) → delete --cascade (only what the app owns) → every step in the
audit log, and ``audit verify`` passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import E2E, application, e2e
from tests.sync.gitfixtures import PLAIN, deployment, make_repo

DEPLOY = "/apis/apps/v1/namespaces/demo/deployments/web"
SERVICE = "/api/v1/namespaces/demo/services/web"


@pytest.fixture
def k(tmp_path: Path, database_url: str) -> Iterator[E2E]:
    yield from e2e(tmp_path, database_url)


def test_plain_app_lifecycle(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", PLAIN)
    first = repo.git("rev-parse", "HEAD")
    manifest = application(repo, "apps/plain", name="plain", sync_policy={"syncOptions": ["CreateNamespace=true"]})
    code, out, err = k.app_cmd("create", "-f", k.write("app.yaml", manifest))
    assert (code, out) == (0, "application syncwarden/plain created\n"), err
    assert k.app_cmd("create", "-f", k.write("app.yaml", manifest))[:2] == (  # as Argo CD: idempotent
        0, "application syncwarden/plain unchanged\n")
    other = {**manifest, "spec": {**manifest["spec"], "revisionHistoryLimit": 3}}
    code, _, err = k.app_cmd("create", "-f", k.write("other.yaml", other))
    assert code == 2 and "already exists with a different spec; use --upsert" in err  # invalid input

    code, out, _ = k.app_cmd("diff", "plain")
    assert code == 1 and "===== apps/Deployment demo/web" in out and "+        image: nginx:1.25" in out
    assert k.writes() == []  # diff writes nothing

    code, out, err = k.app_cmd("sync", "plain")
    assert code == 0, out + err
    lines = out.splitlines()
    assert any("PreSync" in line and "/Namespace/demo" in line and "Synced" in line for line in lines)
    assert any("apps/Deployment/demo/web" in line and "created" in line for line in lines)
    assert lines[-1] == "syncwarden/plain: Succeeded: successfully synced (all tasks run)"
    # the namespace first, then the server dry-run of every object, then the writes in Argo CD's kind order
    assert k.writes() == [
        ("patch", "/api/v1/namespaces/demo"),
        ("patch", SERVICE), ("patch", DEPLOY),
        ("patch", SERVICE), ("patch", DEPLOY),
    ]
    live = k.live("Deployment", "web", "demo", "apps")
    assert live is not None and live["metadata"]["annotations"]["syncwarden.io/tracking-id"].startswith("plain:")

    code, out, _ = k.app_cmd("get", "plain", "--refresh", "-o", "json")
    view = json.loads(out)
    assert code == 0 and view["status"]["sync"] == {"status": "Synced", "revisions": [first],
                                                    "comparedTo": view["status"]["sync"]["comparedTo"]}
    assert view["status"]["operationState"]["phase"] == "Succeeded"
    assert k.app_cmd("diff", "plain") == (0, "", "")

    repo.git("rm", "-q", "apps/plain/service.yaml")
    repo.write({"apps/plain/deployment.yaml": deployment("web", image="nginx:1.27")})
    second = repo.commit("drop the service, new image")
    k.sb.requests.clear()
    code, out, _ = k.app_cmd("diff", "plain")
    assert code == 1 and "(not in Git: would be pruned)" in out and "+        image: nginx:1.27" in out
    code, out, err = k.app_cmd("sync", "plain", "--prune")
    assert code == 0, out + err
    assert "/Service/demo/web  Pruned" in out
    assert k.writes() == [("patch", DEPLOY), ("delete", SERVICE), ("patch", DEPLOY)]
    assert k.live("Service", "web", "demo") is None

    code, out, _ = k.app_cmd("history", "plain", "-o", "json")
    entries = json.loads(out)
    assert [(e["id"], e["revisions"]) for e in entries] == [(0, [first]), (1, [second])]
    assert {e["initiatedBy"].get("username") or e["initiatedBy"].get("subject") for e in entries} != {None}

    code, out, err = k.app_cmd("rollback", "plain", "0")
    assert code == 0, out + err
    assert k.live("Service", "web", "demo") is not None
    deploy = k.live("Deployment", "web", "demo", "apps")
    assert deploy is not None and deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"

    # an object the app does not own survives the cascade
    k.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine", "namespace": "demo"}},
                    field_manager="someone-else")
    k.sb.requests.clear()
    code, out, err = k.app_cmd("delete", "plain")
    assert (code, out) == (0, "application syncwarden/plain deleted\n"), err
    assert sorted(k.writes()) == [("delete", SERVICE), ("delete", DEPLOY)]
    assert k.live("ConfigMap", "mine", "demo") is not None
    assert k.app_cmd("get", "plain")[0] == 2

    records = k.audit("--app", "plain")
    actions = [r["action"] for r in records]
    assert actions[0] == "app.create" and "app.delete" in actions and actions[-1] == "app.deleted"
    assert actions.count("app.sync.started") == 3 and actions.count("app.sync.succeeded") == 3
    assert actions.count("app.sync") == 2 and actions.count("app.rollback") == 1  # the requests themselves
    pruned = [r for r in records if r["result"] == "pruned"]
    assert [r["target"]["object"] for r in pruned] == ["/Service/demo/web"]
    assert all(r["actor"]["subject"].startswith("local:") for r in records if r["action"].startswith("app.sync"))
    code, out, _ = k.plain("audit", "verify")
    assert code == 0 and "intact" in out
