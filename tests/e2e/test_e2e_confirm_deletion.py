"""``Prune=confirm`` and ``app confirm-deletion`` through the real CLI in local mode, against the sandbox over
HTTP and a real Git repository: ``app get`` reports the resource's ``requiresDeletionConfirmation``; a
``sync --prune`` of a commit that drops it waits ("waiting for pruning confirmation of ...", nothing deleted,
exit 3 at ``--timeout``); ``app confirm-deletion`` approves (recorded in the audit log) and the next ``app get
--refresh`` finishes the operation, deleting the resource. With a server configured the command is refused
(exit 2) instead of approving in the local database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import cli
from tests.e2e.e2ekit import E2E, application, e2e, runner
from tests.sync.gitfixtures import GitRepo

CONFIRM = "  annotations: {argocd.argoproj.io/sync-options: Prune=confirm}\n"


def _cm(name: str, annotations: str = "") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{annotations}data:\n  k: v\n"


@pytest.fixture
def k(tmp_path: Path) -> Iterator[E2E]:
    yield from e2e(tmp_path)


def test_a_prune_waits_for_confirm_deletion(k: E2E, tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write({"cm/keep.yaml": _cm("keep"), "cm/old.yaml": _cm("old", CONFIRM)})
    repo.commit("initial")
    manifest = application(repo, "cm", name="cms", sync_policy={"syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", manifest))[0] == 0
    assert k.app_cmd("sync", "cms")[0] == 0
    code, out, err = k.app_cmd("get", "cms", "-o", "json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["status"]["resources"]}
    assert rows["old"]["requiresDeletionConfirmation"] is True and "requiresDeletionConfirmation" not in rows["keep"]

    repo.git("rm", "-q", "cm/old.yaml")
    repo.commit("drop old")
    k.sb.requests.clear()
    code, _, err = k.app_cmd("sync", "cms", "--prune", "--timeout", "1")
    assert code == 3 and "still Running" in err
    code, out, _ = k.app_cmd("get", "cms", "-o", "json")
    operation = json.loads(out)["status"]["operationState"]
    assert (operation["phase"], operation["message"]) == ("Running", "waiting for pruning confirmation of /ConfigMap/old")
    assert [w for w in k.writes() if w[0] == "delete"] == [] and k.live("ConfigMap", "old", "demo") is not None

    code, out, err = k.app_cmd("confirm-deletion", "cms")
    assert code == 0, err
    assert out.startswith("application syncwarden/cms: deletion approved at 20")
    code, out, err = k.app_cmd("get", "cms", "--refresh", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"]["operationState"]["phase"] == "Succeeded"
    assert k.writes().count(("delete", "/api/v1/namespaces/demo/configmaps/old")) == 1
    assert k.live("ConfigMap", "old", "demo") is None and k.live("ConfigMap", "keep", "demo") is not None
    assert [r["action"] for r in k.audit("--app", "cms") if r["action"] == "app.confirm-deletion"] == [
        "app.confirm-deletion"]


def test_confirm_deletion_against_a_server_is_refused_not_done_locally(k: E2E) -> None:
    env = {**k.env, "SYNCWARDEN_SERVER": "http://127.0.0.1:9"}
    result = runner.invoke(cli, ["app", "confirm-deletion", "cms"], env=env)
    assert result.exit_code == 2
    assert "error: app confirm-deletion works in local mode only" in result.stderr
