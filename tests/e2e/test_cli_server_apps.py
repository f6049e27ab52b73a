"""The ``app`` commands in server mode against ``syncwarden serve --sandbox`` in a subprocess (the example app
syncing from a Git repository the server prepared, into the in-process sandbox).

Covers: ``app list`` and ``app get`` (table and ``-o json``) through the stored login; ``app sync`` showing the
operation until it Succeeds (exit 0) and ``--async`` returning the operation id; ``app history`` listing the
deployments; ``app rollback`` refused while auto-sync is on (exit 2, the server's reason); a project token that
may not delete the app is denied (exit 1, the violation printed); the local options stay accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from tests.e2e.server_process import ServerProcess, running_server

runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str | None]]]:
    tmp = tmp_path_factory.mktemp("serve")
    with running_server(tmp, serve_args=["--sandbox", "--interval", "0.2", "--lease-seconds", "2"]) as proc:
        env: dict[str, str | None] = {"XDG_CONFIG_HOME": str(tmp / "cfg"), "SYNCWARDEN_SERVER": None,
                                      "SYNCWARDEN_TOKEN": None}
        code, _, err = sw(env, "login", "--server", proc.url, "--password-stdin", stdin=proc.admin_password + "\n")
        assert code == 0, err
        yield proc, env


def sw(env: dict[str, str | None], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), env=env, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_list_and_get_show_the_example_app(served: tuple[ServerProcess, dict[str, str | None]]) -> None:
    _, env = served
    code, out, err = sw(env, "app", "list")
    assert code == 0, err
    assert out.split()[:5] == ["NAME", "PROJECT", "DESTINATION", "SYNC", "HEALTH"]
    assert "syncwarden/guestbook" in out and " web " in out
    code, out, err = sw(env, "app", "list", "-o", "json")
    assert "guestbook" in [v["metadata"]["name"] for v in json.loads(out) if v["spec"]["project"] == "web"]
    code, out, err = sw(env, "app", "get", "guestbook", "--kubeconfig", "/nonexistent")  # local options ignored
    assert code == 0, err
    assert "Project:       web" in out and "namespace=web-guestbook" in out
    code, out, _ = sw(env, "app", "get", "syncwarden/guestbook", "-o", "json")
    assert json.loads(out)["metadata"]["name"] == "guestbook"


def test_sync_follows_the_operation_and_history_records_it(
        served: tuple[ServerProcess, dict[str, str | None]]) -> None:
    _, env = served
    code, out, err = sw(env, "app", "sync", "guestbook", "--timeout", "120")
    assert code == 0, err + out
    assert "guestbook: Succeeded" in out
    assert "ConfigMap" in out  # the resources as the operation went
    code, out, err = sw(env, "app", "sync", "guestbook", "--async", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["operationId"]
    code, out, err = sw(env, "app", "history", "guestbook", "-o", "json")
    assert code == 0, err
    entries = json.loads(out)
    assert entries and {"id", "deployedAt", "revisions"} <= set(entries[0])
    code, out, _ = sw(env, "app", "history", "guestbook")
    assert out.split()[:4] == ["ID", "DATE", "REVISION", "INITIATED"]


def test_rollback_while_auto_sync_is_on_is_refused(served: tuple[ServerProcess, dict[str, str | None]]) -> None:
    _, env = served
    code, _, err = sw(env, "app", "rollback", "guestbook", "1")
    assert code == 2, err
    assert "error:" in err


def test_a_project_token_without_delete_is_denied(served: tuple[ServerProcess, dict[str, str | None]],
                                                  tmp_path: Path) -> None:
    proc, env = served
    code, out, err = sw(env, "proj", "role", "create-token", "web", "ci", "-o", "json")
    assert code == 0, err
    ci = {**env, "XDG_CONFIG_HOME": str(tmp_path / "ci"), "SYNCWARDEN_SERVER": proc.url,
          "SYNCWARDEN_TOKEN": json.loads(out)["token"]}
    code, out, err = sw(ci, "app", "get", "guestbook", "-o", "json")
    assert code == 0, err  # the ci role may get (and sync) web's apps
    code, _, err = sw(ci, "app", "delete", "guestbook")
    assert code == 1
    assert "denied" in err.lower() or "forbidden" in err.lower() or "permission" in err.lower()
    assert sw(env, "app", "get", "guestbook")[0] == 0  # still there
