"""``syncwarden proj create|get|list|update|delete`` and ``proj role create-token|list-tokens|revoke-token``
through the real CLI on a local database (SQLite, and PostgreSQL when configured).

Covered: the example AppProject round-trips through create and ``get -o yaml``; list; update with and without
``--expected-version``; delete; invalid input exits 2 naming the file and field (no traceback, nothing
stored); tokens are printed once, verify against the store, are listed without the token and revoked; a
short signing key refuses to start; the generated key file is 0600.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from config import yamlsafe
from policy import tokens
from policy.store import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "examples" / "project.yaml"
runner = CliRunner()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str | None]:
    return {
        "SYNCWARDEN_DATA_DIR": str(tmp_path / "data"),
        "SYNCWARDEN_DATABASE_URL": database_url,
        "SYNCWARDEN_SIGNING_KEY": None,
        "SYNCWARDEN_CONFIG": None,
    }


def run(env: dict[str, str | None], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(yamlsafe.dump(data))
    return str(path)


def test_create_get_list_update_delete(env: dict[str, str | None], tmp_path: Path) -> None:
    code, out, err = run(env, "proj", "create", "-f", str(EXAMPLE))
    assert code == 0, err
    assert "web" in out
    code, out, _ = run(env, "proj", "get", "web", "-o", "yaml")
    assert code == 0 and yamlsafe.load_one(out, source="out") == yamlsafe.load_one(EXAMPLE.read_bytes(), source="x")
    code, out, _ = run(env, "proj", "list", "-o", "json")
    assert [p["metadata"]["name"] for p in json.loads(out)] == ["web"]

    changed = yamlsafe.load_one(EXAMPLE.read_bytes(), source="x")
    changed["spec"]["description"] = "changed"
    path = write(tmp_path, "changed.yaml", changed)
    code, out, _ = run(env, "proj", "update", "-f", path, "--expected-version", "1", "-o", "json")
    assert code == 0 and json.loads(out)["spec"]["description"] == "changed"
    code, _, err = run(env, "proj", "update", "-f", path, "--expected-version", "1")
    assert code == 2 and "version 2, not 1" in err
    code, out, _ = run(env, "proj", "list")
    assert "changed" in out and "local:" in out

    code, _, err = run(env, "proj", "delete", "web")
    assert code == 0 and "deleted" in err
    code, _, err = run(env, "proj", "get", "web")
    assert code == 2 and "project 'web' not found" in err


def test_invalid_input_exits_2_naming_file_and_field(env: dict[str, str | None], tmp_path: Path) -> None:
    bad = yamlsafe.load_one(EXAMPLE.read_bytes(), source="x")
    bad["spec"]["destinations"][0]["namespace"] = ["not", "a", "string"]
    path = write(tmp_path, "bad.yaml", bad)
    code, _, err = run(env, "proj", "create", "-f", path)
    assert code == 2
    assert "bad.yaml" in err and "spec.destinations[0].namespace" in err and "Traceback" not in err
    dup = tmp_path / "dup.yaml"
    dup.write_text("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nkind: AppProject\n")
    code, _, err = run(env, "proj", "create", "-f", str(dup))
    assert code == 2 and "dup.yaml" in err and "duplicate" in err
    code, _, err = run(env, "proj", "create", "-f", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err
    code, out, _ = run(env, "proj", "list", "-o", "json")
    assert json.loads(out) == []


def test_tokens_create_list_revoke(env: dict[str, str | None], database_url: str) -> None:
    assert run(env, "proj", "create", "-f", str(EXAMPLE))[0] == 0
    code, out, err = run(env, "proj", "role", "create-token", "web", "ci", "--expires-in", "7d", "--description", "ci")
    assert code == 0, err
    token = out.strip()
    assert token.count(".") == 2 and "\n" not in token and "not shown again" in err

    data_dir = Path(str(env["SYNCWARDEN_DATA_DIR"]))
    key_file = data_dir / tokens.KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ring = tokens.load_keyring(signing_key=None, data_dir=data_dir)
    store = open_store(database_url, keyring=ring)
    try:
        assert store.tokens.verify(token, now=datetime.now(UTC)).subject == "proj:web:ci"
    finally:
        store.close()

    code, out, _ = run(env, "proj", "role", "list-tokens", "web", "ci", "-o", "json")
    listed = json.loads(out)
    assert len(listed) == 1 and listed[0]["state"] == "active" and listed[0]["expires_at"] and token not in out
    token_id = listed[0]["id"]
    code, _, err = run(env, "proj", "role", "revoke-token", "web", "ci", token_id)
    assert code == 0 and "revoked" in err
    code, out, _ = run(env, "proj", "role", "list-tokens", "web", "ci")
    assert "revoked" in out
    code, _, err = run(env, "proj", "role", "revoke-token", "web", "ci", "unknown-id")
    assert code == 0 and "nothing revoked" in err
    code, _, err = run(env, "proj", "role", "revoke-token", "web", "ci", "--expired")
    assert code == 0 and "0 expired" in err
    code, _, err = run(env, "proj", "role", "revoke-token", "web", "ci")
    assert code == 2 and "TOKEN_ID or --expired" in err


def test_token_refusals(env: dict[str, str | None]) -> None:
    assert run(env, "proj", "create", "-f", str(EXAMPLE))[0] == 0
    code, _, err = run(env, "proj", "role", "create-token", "web", "nope")
    assert code == 2 and "role 'nope' not found" in err
    code, _, err = run(env, "proj", "role", "create-token", "web", "ci", "--expires-in", "0h")
    assert code == 2 and "--expires-in" in err and "positive" in err
    code, _, err = run(env, "proj", "role", "create-token", "ghost", "ci")
    assert code == 2 and "project 'ghost' not found" in err


def test_short_signing_key_refuses_to_start(env: dict[str, str | None]) -> None:
    code, out, err = run({**env, "SYNCWARDEN_SIGNING_KEY": "too-short"}, "proj", "list")
    assert code == 2 and "at least 32 bytes" in err and "too-short" not in err + out
