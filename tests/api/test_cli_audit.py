"""``syncwarden audit query|export|verify|export-checkpoint|retain`` through the real CLI on a local database.

Covered: changes made with ``proj`` appear with actor, action and target; filters, ``--limit`` with the
printed cursor, newest first, table/json/csv output; JSON lines and CSV export; ``verify`` exits 0 on an
intact chain and 1 naming the record after an edit; a cut-off tail with a rewritten head is caught only
with an exported checkpoint; a forged checkpoint file exits 2; retention keeps the chain verifiable; bad
times exit 2.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "examples" / "project.yaml"
runner = CliRunner()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str | None]:
    environment: dict[str, str | None] = {
        "SYNCWARDEN_DATA_DIR": str(tmp_path / "data"),
        "SYNCWARDEN_DATABASE_URL": database_url,
        "SYNCWARDEN_SIGNING_KEY": "k" * 40,
        "SYNCWARDEN_CONFIG": None,
    }
    for args in (("proj", "create", "-f", str(EXAMPLE)), ("proj", "role", "create-token", "web", "ci")):
        assert runner.invoke(cli, list(args), env=environment).exit_code == 0
    return environment


def run(env: dict[str, str | None], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def sql(env: dict[str, str | None], text: str, **params: object) -> None:
    engine = sa.create_engine(str(env["SYNCWARDEN_DATABASE_URL"]))
    with engine.begin() as conn:
        conn.execute(sa.text(text), params)
    engine.dispose()


def test_query_shows_changes_with_filters_and_pages(env: dict[str, str | None]) -> None:
    code, out, _ = run(env, "audit", "query", "-o", "json")
    assert code == 0
    records = json.loads(out)["records"]
    assert [r["action"] for r in records] == ["project.create", "token.create"]
    assert records[0]["actor"]["subject"].startswith("local:") and records[0]["target"]["project"] == "web"
    code, out, _ = run(env, "audit", "query", "--action", "token.create", "--project", "web", "-o", "json")
    assert [r["seq"] for r in json.loads(out)["records"]] == [2]
    code, out, err = run(env, "audit", "query", "--limit", "1")
    assert code == 0 and "--cursor 1" in err
    assert [line.split()[0] for line in out.splitlines()] == ["SEQ", "1"]
    code, out, _ = run(env, "audit", "query", "--limit", "1", "--cursor", "1", "-o", "json")
    assert [r["seq"] for r in json.loads(out)["records"]] == [2] and json.loads(out)["next_cursor"] is None
    code, out, _ = run(env, "audit", "query", "--newest-first", "-o", "csv", "--since", "1h")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["seq"] for r in rows] == ["2", "1"]
    code, out, _ = run(env, "audit", "query", "--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z")
    assert code == 0 and "project.create" not in out
    code, _, err = run(env, "audit", "query", "--since", "yesterday")
    assert code == 2 and "--since" in err
    code, _, err = run(env, "audit", "query", "--cursor", "x")
    assert code == 2 and "invalid cursor" in err


def test_export_jsonl_and_csv(env: dict[str, str | None]) -> None:
    code, out, _ = run(env, "audit", "export")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["seq"] for r in lines] == [1, 2]
    code, out, _ = run(env, "audit", "export", "--format", "csv", "--action", "token.create")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["action"] for r in rows] == ["token.create"] and rows[0]["hash"] == lines[1]["hash"]


def test_verify_detects_an_edit(env: dict[str, str | None]) -> None:
    code, out, _ = run(env, "audit", "verify")
    assert code == 0 and "2 records verified" in out
    sql(env, "UPDATE audit_records SET subject = 'someone-else' WHERE seq = 1")
    code, _, err = run(env, "audit", "verify")
    assert code == 1 and "seq 1" in err and "modified" in err


def test_verify_with_checkpoint_detects_truncation(env: dict[str, str | None], tmp_path: Path) -> None:
    code, out, _ = run(env, "audit", "export-checkpoint")
    assert code == 0
    point = tmp_path / "checkpoint.jsonl"
    point.write_text(out)
    assert json.loads(out)["seq"] == 2
    code, out, _ = run(env, "audit", "export", "--format", "jsonl")
    first = json.loads(out.splitlines()[0])
    sql(env, "DELETE FROM audit_records WHERE seq = 2")
    sql(env, "UPDATE audit_head SET seq = 1, hash = :h", h=first["hash"])
    assert run(env, "audit", "verify")[0] == 0
    code, _, err = run(env, "audit", "verify", "--checkpoint", str(point))
    assert code == 1 and "record 2 is missing" in err and "truncated" in err


def test_forged_checkpoint_file_exits_2(env: dict[str, str | None], tmp_path: Path) -> None:
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps({"seq": 9, "hash": "0" * 64, "kind": "head", "signature": "abc"}) + "\n")
    code, _, err = run(env, "audit", "verify", "--checkpoint", str(forged))
    assert code == 2 and "forged.jsonl line 1" in err and "signature" in err
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("{nope\n")
    code, _, err = run(env, "audit", "verify", "--checkpoint", str(garbage))
    assert code == 2 and "not JSON" in err


def test_retain_keeps_the_chain_verifiable(env: dict[str, str | None]) -> None:
    sql(env, "UPDATE audit_records SET time_us = 1000 WHERE seq = 1")  # pretend it is ancient
    code, _, err = run(env, "audit", "retain", "--older-than", "30d")
    assert code == 0 and "1 audit record(s)" in err, err
    code, out, _ = run(env, "audit", "export")
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["token.create", "audit.retain"]
    code, out, _ = run(env, "audit", "verify")
    assert code == 0 and "last seq 3" in out
