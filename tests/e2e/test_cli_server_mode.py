"""The CLI in server mode against a real server in a subprocess (uvicorn, SQLite in a tmp dir).

Covers: ``login`` (token stored with mode 0600, never printed; wrong password exits 2), ``logout``; ``proj
create|get|list|update|delete`` through the server with the same output as local mode; ``proj role
create-token|list-tokens|revoke-token`` and the minted token used as a project token; ``check`` through the server
printing exactly the offline ``check`` (text, JSON, SARIF; allowed and denied; a stored project by name);
``proj windows`` and its calendar equal to the offline answer; ``audit query|verify|export``; exit codes 1
(denied, with the violations), 2 (invalid input, unknown name, bad token) and 3 (server unreachable).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from config import yamlsafe
from tests.e2e.server_process import ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
PROJECT = str(EXAMPLES / "project.yaml")
APP = str(EXAMPLES / "app.yaml")
GOOD = str(EXAMPLES / "manifests" / "guestbook")
ESCAPE = str(EXAMPLES / "manifests" / "escape")
AT = "2026-11-18T12:00:00Z"
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("server")) as proc:
        yield proc


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """A private config directory and local database; nothing inherited that would pick a server."""
    return {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "SYNCWARDEN_DATA_DIR": str(tmp_path / "local-data"),
        "SYNCWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}",
        "SYNCWARDEN_SERVER": None,
        "SYNCWARDEN_TOKEN": None,
        "SYNCWARDEN_SIGNING_KEY": None,
        "SYNCWARDEN_CONFIG": None,
    }


def sw(env: dict[str, str | None], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), env=env, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def login(server: ServerProcess, env: dict[str, str | None]) -> str:
    code, out, err = sw(env, "login", "--server", server.url, "--username", "admin", "--password-stdin",
                        stdin=server.admin_password + "\n")
    assert code == 0, err
    stored = json.loads((Path(str(env["XDG_CONFIG_HOME"])) / "syncwarden" / "config.json").read_text())
    token: str = stored["token"]
    assert token not in out + err
    return token


def project_file(tmp: Path, name: str, **spec: object) -> str:
    manifest = yamlsafe.load_one(Path(PROJECT).read_bytes(), source=PROJECT)
    manifest["metadata"]["name"] = name
    manifest["spec"]["roles"][0]["policies"] = [p.replace("web", name) for p in manifest["spec"]["roles"][0]["policies"]]
    manifest["spec"].update(spec)
    path = tmp / f"{name}.yaml"
    path.write_text(yamlsafe.dump(manifest))
    return str(path)


def test_login_stores_the_token_privately_and_logout_forgets_it(server: ServerProcess,
                                                                env: dict[str, str | None]) -> None:
    token = login(server, env)
    file = Path(str(env["XDG_CONFIG_HOME"])) / "syncwarden" / "config.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert json.loads(file.read_text())["server"] == server.url
    code, out, err = sw(env, "proj", "list", "-o", "json")  # no --server: the stored login decides
    assert code == 0, err
    assert "default" in [p["metadata"]["name"] for p in json.loads(out)]
    assert token not in out + err
    code, _, err = sw(env, "logout")
    assert code == 0, err
    assert not file.exists()
    code, _, err = sw(env, "proj", "list", "--server", server.url, "--auth-token", token)
    assert code == 2 and "log in" in err  # the session ended on the server too: 401


def test_wrong_password_exits_2_and_stores_nothing(server: ServerProcess, env: dict[str, str | None]) -> None:
    code, _, err = sw(env, "login", "--server", server.url, "--username", "nobody", "--password-stdin",
                      stdin="wrong\n")
    assert code == 2
    assert "invalid username or password" in err
    assert not (Path(str(env["XDG_CONFIG_HOME"])) / "syncwarden" / "config.json").exists()


def test_projects_through_the_server_print_what_local_mode_prints(server: ServerProcess, env: dict[str, str | None],
                                                                  tmp_path: Path) -> None:
    login(server, env)
    file = project_file(tmp_path, "shop")
    code, out, err = sw(env, "proj", "create", "-f", file, "-o", "json")
    assert code == 0, err
    created = json.loads(out)
    assert created == yamlsafe.load_one(Path(file).read_bytes(), source=file)
    local = {**env, "XDG_CONFIG_HOME": str(tmp_path / "no-login")}
    assert sw(local, "proj", "create", "-f", file, "-o", "json")[0] == 0
    for args in (("proj", "get", "shop", "-o", "json"), ("proj", "get", "shop", "-o", "yaml")):
        remote_out, local_out = sw(env, *args)[1], sw(local, *args)[1]
        assert remote_out == local_out
    code, out, err = sw(env, "proj", "get", "shop")
    assert code == 0, err
    assert out.split()[:6] == ["NAME", "VERSION", "DESCRIPTION", "ROLES", "UPDATED", "BY"]
    assert "shop" in out and "ci" in out
    code, out, _ = sw(env, "proj", "list", "-o", "json")
    assert {"default", "shop"} <= {p["metadata"]["name"] for p in json.loads(out)}
    updated = project_file(tmp_path, "shop", description="changed")
    code, out, err = sw(env, "proj", "update", "-f", updated, "--expected-version", "1", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["spec"]["description"] == "changed"
    code, _, err = sw(env, "proj", "update", "-f", updated, "--expected-version", "1")
    assert code == 2, err  # a stale version is a conflict (409)
    code, _, err = sw(env, "proj", "delete", "shop")
    assert code == 0, err
    code, _, err = sw(env, "proj", "get", "shop")
    assert code == 2 and "not found" in err


def test_a_minted_token_works_as_a_project_token_until_revoked(server: ServerProcess, env: dict[str, str | None],
                                                              tmp_path: Path) -> None:
    login(server, env)
    assert sw(env, "proj", "create", "-f", project_file(tmp_path, "tok"))[0] == 0
    code, out, err = sw(env, "proj", "role", "create-token", "tok", "ci", "--description", "pipeline", "-o", "json")
    assert code == 0, err
    minted = json.loads(out)
    assert minted["project"] == "tok" and minted["state"] == "active" and minted["description"] == "pipeline"
    code, out, _ = sw(env, "proj", "role", "list-tokens", "tok", "ci", "-o", "json")
    assert [t["id"] for t in json.loads(out)] == [minted["id"]]
    assert minted["token"] not in out
    as_ci = {**env, "XDG_CONFIG_HOME": str(tmp_path / "ci"), "SYNCWARDEN_SERVER": server.url,
             "SYNCWARDEN_TOKEN": minted["token"]}
    code, out, err = sw(as_ci, "check", "--project", "tok", "--app", _app(tmp_path, "tok"), "--manifests", GOOD,
                        "--at", AT)
    assert (code, out.split()[0]) == (0, "ALLOWED"), err
    code, _, err = sw(as_ci, "proj", "create", "-f", project_file(tmp_path, "evil"))
    assert code == 1  # denied: the project token may not create projects
    assert "[rbac.denied]" in err or "denied" in err.lower()
    code, _, err = sw(env, "proj", "role", "revoke-token", "tok", "ci", minted["id"])
    assert code == 0 and "revoked" in err
    code, _, err = sw(as_ci, "check", "--project", "tok", "--app", _app(tmp_path, "tok"), "--manifests", GOOD,
                      "--at", AT)
    assert code == 2 and "log in" in err  # a revoked token is refused (401)


def _app(tmp: Path, project: str) -> str:
    manifest = yamlsafe.load_one(Path(APP).read_bytes(), source=APP)
    manifest["spec"]["project"] = project
    path = tmp / f"app-{project}.yaml"
    path.write_text(yamlsafe.dump(manifest))
    return str(path)


@pytest.mark.parametrize("manifests", [GOOD, ESCAPE], ids=["allowed", "denied"])
@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit"])
def test_check_through_the_server_equals_the_offline_check(server: ServerProcess, env: dict[str, str | None],
                                                          manifests: str, fmt: str) -> None:
    args = ("check", "--project", PROJECT, "--app", APP, "--manifests", manifests, "--at", AT, "-o", fmt)
    offline = sw(env, *args)
    login(server, env)
    before = _decisions(env)
    online = sw(env, *args)
    assert online[:2] == offline[:2]
    assert offline[0] == (0 if manifests == GOOD else 1)
    assert _decisions(env) == before + 1  # the server decided (and audited) it


def _decisions(env: dict[str, str | None]) -> int:
    code, out, err = sw(env, "audit", "query", "--action", "admission.check", "--limit", "1000", "-o", "json")
    assert code == 0, err
    return len(json.loads(out)["records"])


def test_windows_through_the_server_equal_the_offline_answer(server: ServerProcess, env: dict[str, str | None],
                                                            tmp_path: Path) -> None:
    login(server, env)
    file = project_file(tmp_path, "frozen")
    assert sw(env, "proj", "create", "-f", file)[0] == 0
    target = ("--app", "guestbook", "--namespace", "web-guestbook", "--server", "https://kubernetes.default.svc",
              "--at", "2026-12-20T10:00:00Z", "--days", "10")
    for extra in (("-o", "json"), (), ("--ics",)):
        offline = sw(env, "proj", "windows", "--project", file, *target, *extra)
        online = sw(env, "proj", "windows", "--project", "frozen", *target, *extra)
        assert offline[0] == online[0] == 0, online[2]
        assert online[1] == offline[1]
    report = json.loads(sw(env, "proj", "windows", "--project", "frozen", *target, "-o", "json")[1])
    assert report["app"]["canSyncAuto"] is True and report["app"]["transitions"]


def test_audit_query_verify_export_through_the_server(server: ServerProcess, env: dict[str, str | None],
                                                     tmp_path: Path) -> None:
    login(server, env)
    assert sw(env, "proj", "create", "-f", project_file(tmp_path, "audited"))[0] == 0
    code, out, err = sw(env, "audit", "query", "--project", "audited", "--limit", "1000", "-o", "json")
    assert code == 0, err
    records = json.loads(out)["records"]
    assert any(r["action"] == "project.create" or r["action"] == "projects.create" for r in records)
    assert all(r["target"]["project"] == "audited" for r in records)
    assert {"request_id", "prev_hash", "hash", "actor"} <= set(records[0])
    code, out, _ = sw(env, "audit", "query", "--project", "audited")
    assert out.split()[:3] == ["SEQ", "TIME", "ACTOR"] and "admin" in out
    code, out, err = sw(env, "audit", "verify")
    assert code == 0 and out.startswith("audit chain intact"), err
    code, out, _ = sw(env, "audit", "export", "--project", "audited")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in lines][: len(records)] == [r["seq"] for r in records]
    code, out, _ = sw(env, "audit", "query", "--project", "audited", "--limit", "1000", "-o", "csv")
    exported = sw(env, "audit", "export", "--project", "audited", "--format", "csv")[1]
    assert out.splitlines() == exported.splitlines()[: len(out.splitlines())]


def test_exit_codes_for_invalid_input_and_an_unreachable_server(server: ServerProcess, env: dict[str, str | None],
                                                                tmp_path: Path) -> None:
    login(server, env)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: bad}\n"
                   "spec: {destinations: [{namespace: '*'}], sourceRepos: 7}\n")
    code, _, err = sw(env, "proj", "create", "-f", str(bad))
    assert code == 2 and "sourceRepos" in err
    code, _, err = sw(env, "proj", "list", "--server", "http://127.0.0.1:1")
    assert code == 3 and "cannot connect" in err
    code, _, err = sw(env, "proj", "list", "--server", "ftp://example")
    assert code == 2 and "http://" in err
    token = json.loads((Path(str(env["XDG_CONFIG_HOME"])) / "syncwarden" / "config.json").read_text())["token"]
    code, out, err = sw(env, "proj", "list", "--server", "http://127.0.0.1:1")
    assert token not in out + err
