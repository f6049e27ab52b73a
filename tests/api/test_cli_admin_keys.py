"""``syncwarden admin signing-key rotate`` through the real Typer app, against a running API (in process, with its
clock injected) that shares the data directory and the SQLite database.

Covers: a project token minted before the rotation keeps working during the grace period and stops when it ends;
the running server picks the new key up without a restart and signs new tokens with it; the rotation is audited
without key material; the audit retention anchor is signed again, so ``audit verify`` stays intact after the old
key is dropped, and an anchor no known key signed is left alone (and said); a configured key
(``SYNCWARDEN_SIGNING_KEY``) is refused with what to do instead, as are a data directory without a key file and
a bad ``--grace`` (exit 2, nothing written).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import cli
from api.state import Services
from config.settings import Settings
from policy import tokens
from tests.api.apihelpers import FAST_HASHER, Clock, project_manifest

runner = CliRunner()
Env = dict[str, str | None]


def cli_env(tmp_path: Path) -> Env:
    return {"SYNCWARDEN_DATA_DIR": str(tmp_path / "data"), "SYNCWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'sw.db'}",
            "SYNCWARDEN_SIGNING_KEY": None, "SYNCWARDEN_POLICY__SIGNING_KEY": None, "SYNCWARDEN_CONFIG": None,
            "SYNCWARDEN_SERVER": None, "SYNCWARDEN_TOKEN": None, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}


def sw(env: Env, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def kid_of(token: str) -> str:
    header = token.split(".", 1)[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


@contextmanager
def server(tmp_path: Path) -> Iterator[tuple[TestClient, Clock, dict[str, str]]]:
    """The API on the CLI's data directory and database, its keys in the key file (no configured key)."""
    clock = Clock(datetime.now(UTC).replace(microsecond=0))  # the CLI rotates at the real time
    announced: list[str] = []
    settings = Settings(data_dir=tmp_path / "data", database={"url": f"sqlite:///{tmp_path / 'sw.db'}"})  # type: ignore[arg-type]
    app = create_app(settings, services=Services(clock=clock, hasher=FAST_HASHER, announce=announced.append,
                                                 policy_refresh_seconds=0.0))
    with TestClient(app) as client:
        password = announced[0].removeprefix("initial admin password: ")
        login = client.post("/api/v1/session", json={"username": "admin", "password": password})
        yield client, clock, {"Authorization": f"Bearer {login.json()['token']}"}


def mint(client: TestClient, admin: dict[str, str]) -> str:
    response = client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def works(client: TestClient, token: str) -> bool:
    response = client.get("/api/v1/session/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def test_tokens_of_the_old_key_work_during_the_grace_and_the_server_signs_with_the_new_key(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    with server(tmp_path) as (client, clock, admin):
        body = project_manifest("web", roles=[{"name": "ci", "policies": [
            "p, proj:web:ci, applications, get, web/*, allow"]}])
        assert client.post("/api/v1/projects", headers=admin, json={"project": body}).status_code == 200
        before = mint(client, admin)
        old_kid = kid_of(before)

        code, out, err = sw(env, "admin", "signing-key", "rotate", "--grace", "1h", "-o", "json")
        assert code == 0, err
        report = json.loads(out)
        assert report["previousKid"] == old_kid and report["kid"] != old_kid and report["anchor"] == "none"
        until = datetime.fromisoformat(report["previousVerifiesUntil"])
        assert timedelta(minutes=59) < until - clock.now <= timedelta(hours=1, minutes=1)
        assert report["retired"] == [{"kid": old_kid, "verifiesUntil": report["previousVerifiesUntil"]}]

        deadline = time.monotonic() + 10 * tokens.RELOAD_SECONDS  # no restart: the server follows the key file
        after = mint(client, admin)
        while kid_of(after) == old_kid and time.monotonic() < deadline:
            time.sleep(0.2)
            after = mint(client, admin)
        assert kid_of(after) == report["kid"]

        clock.now = until - timedelta(seconds=1)
        assert works(client, before) and works(client, after)
        clock.now = until
        assert not works(client, before)
        assert works(client, after)

        audited = client.get("/api/v1/audit", headers=admin, params={"action": "signing-key.rotate"}).json()["items"]
        assert [r["details"]["kid"] for r in audited] == [report["kid"]]
        assert audited[0]["actor"]["subject"].startswith("local:")
        exported = client.get("/api/v1/audit/export", headers=admin).text
    secrets = json.loads((tmp_path / "data" / tokens.KEY_FILE_NAME).read_text())
    for key in [secrets["current"], *secrets["retired"]]:
        assert key["secret"] not in exported and key["secret"] not in out


def test_the_table_says_until_when_the_old_key_verifies(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert sw(env, "proj", "create", "-f", str(write_project(tmp_path)))[0] == 0  # makes the key file and the log
    ring = tokens.load_keyring(signing_key=None, data_dir=tmp_path / "data")
    code, out, err = sw(env, "admin", "signing-key", "rotate", "--grace", "7d")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"signing key rotated in {tmp_path / 'data' / tokens.KEY_FILE_NAME}"
    assert lines[1].startswith("new key:  ") and ring.current.kid not in lines[1]
    assert lines[2].startswith(f"old key:  {ring.current.kid} verifies tokens until 20")
    assert "no restart" in out
    code, out, err = sw(env, "admin", "signing-key", "rotate", "--grace", "0")
    assert code == 0, err
    assert "stopped verifying at once" in out and f"retired:  {ring.current.kid} verifies tokens until" in out


def test_the_retention_anchor_keeps_verifying_after_the_old_key_is_dropped(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    for name in ("one", "two"):
        assert sw(env, "proj", "create", "-f", str(write_project(tmp_path, name)))[0] == 0
    time.sleep(1.1)
    code, _, err = sw(env, "audit", "retain", "--older-than", "1s")
    assert code == 0 and "deleted" in err
    first = tokens.load_keyring(signing_key=None, data_dir=tmp_path / "data").current
    assert sw(env, "audit", "verify")[0] == 0

    code, out, err = sw(env, "admin", "signing-key", "rotate", "--grace", "0", "-o", "json")
    assert code == 0 and json.loads(out)["anchor"] == "resigned", err
    code, out, err = sw(env, "admin", "signing-key", "rotate", "-o", "json")  # the first key's grace is over
    assert code == 0 and json.loads(out)["anchor"] == "resigned", err
    assert first.kid not in {k["kid"] for k in json.loads(out)["retired"]}
    code, out, err = sw(env, "audit", "verify")
    assert code == 0 and "audit chain intact" in out, out + err

    with sqlite3.connect(tmp_path / "sw.db") as db:  # an anchor nobody we know signed
        db.execute("UPDATE audit_anchor SET signature = ?", ("00" * 32,))
    code, out, err = sw(env, "admin", "signing-key", "rotate", "-o", "json")
    assert code == 0 and json.loads(out)["anchor"] == "unverified"
    assert "signed by none of the known keys" in err
    assert sw(env, "audit", "verify")[0] == 1  # left as it was: never signed anew


def test_a_configured_key_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    env = {**cli_env(tmp_path), "SYNCWARDEN_SIGNING_KEY": "c" * 40}
    code, out, err = sw(env, "admin", "signing-key", "rotate")
    assert code == 2 and out == ""
    assert "SYNCWARDEN_SIGNING_KEY" in err and "there is no retired key" in err and "restart" in err
    assert "c" * 40 not in err
    assert not (tmp_path / "data").exists()


def test_a_data_directory_without_a_key_file_and_a_bad_grace_are_refused(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    code, _, err = sw(env, "admin", "signing-key", "rotate")
    assert code == 2
    assert f"{tmp_path / 'data' / tokens.KEY_FILE_NAME}: no signing key file to rotate" in err
    assert not (tmp_path / "data" / tokens.KEY_FILE_NAME).exists()
    assert sw(env, "proj", "create", "-f", str(write_project(tmp_path)))[0] == 0
    before = (tmp_path / "data" / tokens.KEY_FILE_NAME).read_bytes()
    for grace in ("soon", "-1h", "1y"):
        code, _, err = sw(env, "admin", "signing-key", "rotate", "--grace", grace)
        assert code == 2 and err.startswith("error: --grace: invalid duration"), err
    assert (tmp_path / "data" / tokens.KEY_FILE_NAME).read_bytes() == before


def write_project(tmp_path: Path, name: str = "web") -> Path:
    path = tmp_path / f"{name}.json"
    body: dict[str, Any] = project_manifest(name)
    path.write_text(json.dumps(body))
    return path
