"""The ``app`` commands' options, output formats and exit codes, through the real CLI against the sandbox:
selective and dry-run syncs, ``--async`` then a refresh that finishes the operation, a second sync while one
runs (exit 3), ``-o json``; invalid input exits 2 with a message naming the file, field or option (never a
traceback); an unreachable database or cluster exits 3 (and the stored operation resumes with the next
refresh); rollback with auto-sync on is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import E2E, application, e2e
from tests.sync.gitfixtures import PLAIN, make_repo

DEPLOY = "/apis/apps/v1/namespaces/demo/deployments/web"
SERVICE = "/api/v1/namespaces/demo/services/web"


@pytest.fixture
def k(tmp_path: Path) -> Iterator[E2E]:
    yield from e2e(tmp_path)


@pytest.fixture
def created(k: E2E, tmp_path: Path) -> E2E:
    repo = make_repo(tmp_path / "repo", PLAIN)
    app = application(repo, "apps/plain", name="plain", sync_policy={"syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    k.sb.requests.clear()
    return k


def test_selective_and_dry_run_syncs(created: E2E) -> None:
    k = created
    code, out, err = k.app_cmd("sync", "plain", "--dry-run", "-o", "json")
    assert code == 0, err
    state = json.loads(out)
    assert state["phase"] == "Succeeded" and state["message"] == "successfully synced (dry run)"
    assert {r["message"] for r in state["resources"]} == {"dry run"}
    assert k.writes() == [("patch", SERVICE), ("patch", DEPLOY)]  # server-side dry runs only
    assert k.live("Service", "web", "demo") is None

    code, out, err = k.app_cmd("sync", "plain", "--resource", "apps:Deployment:demo/web", "-o", "json")
    assert code == 0, err
    assert [(r["kind"], r["status"]) for r in json.loads(out)["resources"] if r["kind"] != "Namespace"] == [
        ("Deployment", "Synced")]
    assert k.live("Deployment", "web", "demo", "apps") is not None and k.live("Service", "web", "demo") is None
    code, out, _ = k.app_cmd("history", "plain", "-o", "json")
    assert json.loads(out) == []  # neither a dry run nor a selective sync is a deployment


def test_async_then_refresh_finishes_and_a_second_sync_is_refused(created: E2E) -> None:
    k = created
    code, out, err = k.app_cmd("sync", "plain", "--async", "-o", "json")
    assert code == 0, err
    op_id = json.loads(out)["operationId"]
    assert k.writes() == []  # nothing runs it until the next command
    code, _, err = k.app_cmd("sync", "plain")
    assert code == 3 and "in progress" in err.lower()
    code, out, err = k.app_cmd("get", "syncwarden/plain", "--refresh", "-o", "json")
    assert code == 0, err
    view = json.loads(out)
    assert view["status"]["operationState"]["operationId"] == op_id
    assert view["status"]["operationState"]["phase"] == "Succeeded"
    assert k.live("Service", "web", "demo") is not None


def test_delete_without_cascade_leaves_the_resources(created: E2E) -> None:
    k = created
    assert k.app_cmd("sync", "plain")[0] == 0
    k.sb.requests.clear()
    code, out, err = k.app_cmd("delete", "plain", "--no-cascade", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {"app": "syncwarden/plain", "deleted": True, "cascade": False}
    assert k.writes() == []
    assert k.live("Deployment", "web", "demo", "apps") is not None
    assert k.app_cmd("list", "-o", "json")[1].strip() == "[]"


def test_rollback_with_auto_sync_on_is_refused(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", PLAIN)
    app = application(repo, "apps/plain", name="auto", sync_policy={"automated": {},
                                                                    "syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    assert k.app_cmd("get", "auto", "--refresh")[0] == 0
    code, _, err = k.app_cmd("rollback", "auto", "0")
    assert code == 2 and "rollback cannot be initiated when auto-sync is enabled" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "nope"), "application 'nope' not found"),
        (("sync", "nope"), "application 'nope' not found"),
        (("sync", "plain", "--resource", "Deployment"), "--resource 'Deployment': expected GROUP:KIND:NAME"),
        (("history", "other/plain"), "application other/plain not found"),
        (("sync", "plain", "--context", "elsewhere"), "'elsewhere' is not registered; known: sandbox"),
    ],
)
def test_invalid_input_exits_2(created: E2E, args: tuple[str, ...], message: str) -> None:
    code, out, err = created.app_cmd(*args)
    assert code == 2 and message in err and "Traceback" not in out + err
    assert created.writes() == []


def test_invalid_files_exit_2_naming_the_file_and_field(k: E2E, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("metadata: {name: [\n")
    code, _, err = k.app_cmd("create", "-f", str(bad_yaml))
    assert code == 2 and "bad.yaml" in err
    repo = make_repo(tmp_path / "repo", PLAIN)
    manifest = application(repo, "apps/plain", name="x")
    del manifest["spec"]["destination"]
    code, _, err = k.app_cmd("create", "-f", k.write("nodest.yaml", manifest))
    assert code == 2 and "nodest.yaml" in err and "destination" in err
    code, _, err = k.app_cmd("create", "-f", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: cannot read" in err


def test_unreachable_database_or_cluster_exits_3(created: E2E, tmp_path: Path) -> None:
    k = created
    dead = k.sb.write_kubeconfig(tmp_path / "dead-kubeconfig", context="sandbox")
    dead.write_text(dead.read_text().replace(k.sb.url.rstrip("/"), "http://127.0.0.1:9"))
    code, _, err = E2E(k.sb, dead, k.env, k.tmp, k.cluster).app_cmd("sync", "plain", "--timeout", "20")
    assert code == 3 and "unavailable" in err
    assert k.writes() == []
    # the operation was stored before the cluster failed; the next refresh (as the same local user) resumes it
    code, out, err = k.app_cmd("get", "plain", "--refresh", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"]["operationState"]["phase"] == "Succeeded"

    env = {**k.env, "SYNCWARDEN_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"}
    code, _, err = E2E(k.sb, k.kubeconfig, env, k.tmp, k.cluster).app_cmd("list")
    assert code == 3 and "database is unavailable" in err
