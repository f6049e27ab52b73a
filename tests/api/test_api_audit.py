"""``/api/v1/audit``: query with filters and cursor, export as JSON lines and CSV, verify the chain, and the
permissions of the ``audit`` resource (project-scoped reads)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from policy import audit
from tests.api.apihelpers import FAST_HASHER, Harness, harness, project_manifest


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Any:
    with harness(tmp_path, database_url) as value:
        yield value


def _seed(h: Harness) -> dict[str, str]:
    admin = h.admin()
    for name in ("web", "api"):
        h.client.post("/api/v1/projects", headers=admin, json={"project": project_manifest(name)})
        h.client.get(f"/api/v1/projects/{name}", headers=admin)
    return admin


def test_query_filters_and_cursor(h: Harness) -> None:
    admin = _seed(h)
    first = h.client.get("/api/v1/audit", headers=admin, params={"project": "web", "limit": 2}).json()
    assert len(first["items"]) == 2 and first["nextCursor"]
    rest = h.client.get("/api/v1/audit", headers=admin,
                        params={"project": "web", "limit": 2, "cursor": first["nextCursor"]}).json()
    seqs = [r["seq"] for r in first["items"] + rest["items"]]
    assert seqs == sorted(set(seqs))
    assert {r["target"]["project"] for r in first["items"] + rest["items"]} == {"web"}
    actions = h.client.get("/api/v1/audit", headers=admin,
                           params={"action": "project.create", "result": "ok"}).json()["items"]
    assert sorted(r["target"]["project"] for r in actions) == ["api", "default", "web"]
    newest = h.client.get("/api/v1/audit", headers=admin, params={"newestFirst": "true", "limit": 1}).json()
    assert newest["items"][0]["seq"] > seqs[-1]
    since = h.client.get("/api/v1/audit", headers=admin, params={"since": "2030-01-01T00:00:00Z"}).json()
    assert since["items"] == []
    bad = h.client.get("/api/v1/audit", headers=admin, params={"cursor": "abc"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid-request"
    naive = h.client.get("/api/v1/audit", headers=admin, params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422


def test_export_jsonl_and_csv(h: Harness) -> None:
    admin = _seed(h)
    jsonl = h.client.get("/api/v1/audit/export", headers=admin, params={"project": "api"})
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert records and {r["target"]["project"] for r in records} == {"api"}
    as_csv = h.client.get("/api/v1/audit/export", headers=admin, params={"project": "api", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["seq"]) for r in rows][: len(records)] == [r["seq"] for r in records]
    assert rows[-1]["action"] == "audit.export"  # the first export's own decision came after it
    assert h.client.get("/api/v1/audit/export", headers=admin, params={"format": "xml"}).status_code == 422


def test_verify_detects_tampering(h: Harness) -> None:
    admin = _seed(h)
    ok = h.client.post("/api/v1/audit/verify", headers=admin).json()
    assert ok["ok"] is True and ok["checked"] == ok["lastSeq"] > 5
    with h.state.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET subject = 'mallory' WHERE seq = 3"))
    broken = h.client.post("/api/v1/audit/verify", headers=admin).json()
    assert broken["ok"] is False and broken["badSeq"] == 3 and "modified" in broken["reason"]


def test_audit_permissions_are_project_scoped(h: Harness) -> None:
    _seed(h)
    ctx = audit.AuditContext(subject="test")
    h.state.accounts.create("webteam", FAST_HASHER.hash("webteam-pass"), ctx=ctx, now=h.clock.now)
    h.state.store.rbac.set("p, webteam, audit, get, web, allow", ctx=ctx, now=h.clock.now)
    team = {"Authorization": f"Bearer {h.login('webteam', 'webteam-pass')}"}
    own = h.client.get("/api/v1/audit", headers=team, params={"project": "web"})
    assert own.status_code == 200
    assert h.client.get("/api/v1/audit", headers=team, params={"project": "api"}).status_code == 403
    assert h.client.get("/api/v1/audit", headers=team).status_code == 403
    assert h.client.get("/api/v1/audit/export", headers=team, params={"project": "web"}).status_code == 403
    assert h.client.post("/api/v1/audit/verify", headers=team).status_code == 403
