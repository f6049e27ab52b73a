"""Reliability rows through the HTTP API, black box (security-cases A.2 REL-09, REL-11, REL-14; §C.5).

Rows covered here: REL-06 (``retry.limit: -1`` retries without end, backoff capped at maxDuration, never early;
engine level with the sandbox), REL-09 (two sync requests for one app at once: exactly one starts an operation, the other is
409 "another operation is already in progress", and so is a sync while one runs), REL-11 (concurrent mutating
requests, allowed and denied mixed: each request leaves its audit record, the sequence has no gap and the
hash chain verifies), REL-14 (the content of audit records for create/update/delete/sync/token-create/
login-failure: UTC time, seq, actor, source, request id, action, object, decision and outcome; denials
recorded; no secret).

Real components: ``TestClient(create_app(...))`` wired to ``api.wiring.build_services`` over the sandbox over
HTTP, a real Git repository, and the ``database_url`` database (SQLite, and PostgreSQL when configured).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync.application import Backoff, Retry
from sync.gate import Violation
from sync.models import Manifest
from sync.render_cache import CachedRender, RenderCache
from tests.security.sechelpers import Stack, application, project, role_token, stack
from tests.sync import enginefixtures

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: live}\n"


@pytest.fixture
def st(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    with stack(tmp_path, database_url, {"app/cm.yaml": CM}) as s:
        admin = s.admin()
        assert s.api.client.post("/api/v1/projects", json={"project": project("low")}, headers=admin).status_code == 200
        app = application(s.repo.url, name="web", project="low", dest_namespace="low-a")
        assert s.api.client.post("/api/v1/applications", json={"application": app},
                                 headers=admin).status_code == 200
        yield s


def _all_audit(st: Stack, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    headers = headers or st.admin()
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = st.api.client.get("/api/v1/audit", params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        records.extend(body["items"])
        cursor = body.get("nextCursor") or body.get("next_cursor")
        if not cursor:
            return records


def test_rel_09_two_syncs_at_once_start_exactly_one_operation(st: Stack) -> None:
    admin = st.admin()
    barrier = threading.Barrier(2)

    def sync(_: int) -> int:
        barrier.wait()
        return st.api.client.post("/api/v1/applications/web/sync", json={}, headers=admin).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(sync, range(2)))

    assert codes == [200, 409]
    again = st.api.client.post("/api/v1/applications/web/sync", json={}, headers=admin)
    assert again.status_code == 409 and "another operation is already in progress" in again.json()["message"]
    assert len(st.system.sync_store.operations.in_progress()) == 1


def test_rel_11_concurrent_mutations_each_leave_one_record_and_the_chain_verifies(st: Stack) -> None:
    admin = st.admin()
    reader = role_token(st, project("low"), "reader", ["p, proj:low:reader, applications, get, low/*, allow"])
    before = len(_all_audit(st))
    jobs: list[tuple[str, dict[str, str], str]] = []
    for i in range(40):
        allowed = i % 2 == 0
        jobs.append((f"p{i}", admin if allowed else reader, uuid.uuid4().hex))

    def create(job: tuple[str, dict[str, str], str]) -> int:
        name, headers, request_id = job
        return st.api.client.post("/api/v1/projects", json={"project": project(name)},
                                  headers={**headers, "X-Request-Id": request_id}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, jobs))

    assert codes == [200 if i % 2 == 0 else 403 for i in range(40)]
    records = _all_audit(st, admin)
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the audit sequence has a gap or a repeat"
    assert len(records) > before
    for i, (name, _, request_id) in enumerate(jobs):
        mine = [r for r in records if r["requestId"] == request_id]
        decisions = [r for r in mine if r["action"] == "projects.create"]
        assert len(decisions) == 1, (name, mine)
        assert decisions[0]["result"] == ("allowed" if i % 2 == 0 else "denied")
        outcomes = [r for r in mine if r["action"] == "project.create"]
        assert len(outcomes) == (1 if i % 2 == 0 else 0), (name, mine)
    verified = st.api.client.post("/api/v1/audit/verify", headers=admin).json()
    # reading the audit log is itself audited, so the chain may have grown past what was read
    assert verified["ok"] is True and verified["last_seq" if "last_seq" in verified else "lastSeq"] >= seqs[-1]


def test_rel_14_audit_records_say_who_what_where_and_how_it_ended(st: Stack) -> None:
    admin = st.admin()
    client = st.api.client
    ids: dict[str, str] = {}

    def call(label: str, method: str, path: str, **kwargs: Any) -> int:
        ids[label] = uuid.uuid4().hex
        headers = {**kwargs.pop("headers", admin), "X-Request-Id": ids[label]}
        return client.request(method, path, headers=headers, **kwargs).status_code

    manifest = project("rel")
    assert call("create", "POST", "/api/v1/projects", json={"project": manifest}) == 200
    manifest["spec"]["description"] = "changed"
    assert call("update", "PUT", "/api/v1/projects/rel", json={"project": manifest}) == 200
    assert call("token", "POST", "/api/v1/projects/low/roles/ci/token", json={}) in (200, 404)
    assert call("sync", "POST", "/api/v1/applications/web/sync", json={}) == 200
    assert call("login-fail", "POST", "/api/v1/session", headers={},
                json={"username": "admin", "password": "wrong-password-123"}) == 401
    assert call("denied", "DELETE", "/api/v1/projects/rel", headers={"Authorization": "Bearer nope"}) == 401
    assert call("delete", "DELETE", "/api/v1/projects/rel") == 204

    records = _all_audit(st, admin)
    text = str(records)
    assert "wrong-password-123" not in text and admin["Authorization"].split()[1] not in text
    expectations = {"create": ("rel", "ok"), "update": ("rel", "ok"), "sync": ("low", None),
                    "delete": ("rel", "ok"), "login-fail": ("", "denied")}
    for label, (target_project, result) in expectations.items():
        mine = [r for r in records if r["requestId"] == ids[label]]
        assert mine, f"no audit record for {label}"
        for record in mine:
            assert record["time"].endswith("Z") and isinstance(record["seq"], int)
            assert record["actor"]["client"], f"{label}: no source recorded"
            assert record["action"]
        if result is not None:
            assert any(r["result"] == result for r in mine), (label, mine)
        if target_project:
            assert any(r["target"]["project"] == target_project for r in mine), (label, mine)
            assert all(r["actor"]["subject"] == "admin" for r in mine), (label, mine)
    decision = [r for r in records if r["requestId"] == ids["create"] and r["action"] == "projects.create"]
    assert decision and "role:admin" in decision[0]["details"]["rule"]  # the matching rule is recorded
    synced = [r for r in records if r["requestId"] == ids["sync"]]
    assert any(r["target"]["app"] == "web" or r["target"]["object"].endswith("/web") for r in synced), synced


def test_rel_09_concurrent_renders_of_one_source_share_the_disk_cache_safely(tmp_path: Path) -> None:
    """The bug behind a 500 on two simultaneous sync requests: both renders stored the same cache entry through
    one temp file name (per process), so one writer's rename stole the other's file (FileNotFoundError)."""
    cache = RenderCache(tmp_path / "renders")
    entry = CachedRender(commit="c" * 40, deps=("app",),
                         manifests=(Manifest(obj={"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "x"}, "data": {"k": "v" * 2000}},
                                             source="app/cm.yaml", index=0),))
    barrier = threading.Barrier(8)

    def put(_: int) -> None:
        barrier.wait()
        for _ in range(25):
            cache.put("ab" + "0" * 62, "f" * 64, entry)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(8)))  # re-raises a writer's exception

    fresh = RenderCache(tmp_path / "renders")  # another process reads what was written
    found = fresh.get("ab" + "0" * 62, "f" * 64)
    assert found is not None and found.manifests[0].obj["metadata"]["name"] == "x"
    assert not list((tmp_path / "renders").rglob("*.tmp"))


@pytest.fixture
def engine_h(tmp_path: Path) -> Iterator[enginefixtures.Harness]:
    yield from enginefixtures.harness(tmp_path)


def test_rel_06_unlimited_retries_keep_going_with_capped_backoff_and_write_nothing(
        engine_h: enginefixtures.Harness) -> None:
    """``retry.limit: -1`` is unlimited: the failing sync is retried again and again, each attempt after a backoff
    of duration × factor^n capped at maxDuration, each attempt through the gate, none early."""
    h = engine_h
    h.gate.violations = [Violation("rbac.denied", "denied for the test")]
    retry = Retry(limit=-1, backoff=Backoff(duration="5s", factor=2, max_duration="30s"))
    request = dataclasses.replace(h.request([enginefixtures.cm("a")]), retry=retry)
    engine = h.engine()
    op = engine.tick(enginefixtures.new_op(), request, now=enginefixtures.T0)
    gaps: list[float] = []
    previous = enginefixtures.T0
    for _ in range(12):
        state = op.to_dict()
        assert state["phase"] == "Running", state
        next_at = datetime.fromisoformat(state["attempt"]["nextAttemptAt"])
        gaps.append((next_at - previous).total_seconds())
        calls = len(h.gate.calls)
        early = engine.tick(op, request, now=next_at - timedelta(seconds=1))
        assert len(h.gate.calls) == calls and early.to_dict()["retryCount"] == state["retryCount"]  # not early
        op = engine.tick(early, request, now=next_at)
        previous = next_at

    assert gaps == [5, 10, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30]
    assert op.to_dict()["retryCount"] == 13 and len(h.gate.calls) == 13
    assert h.writes() == []
