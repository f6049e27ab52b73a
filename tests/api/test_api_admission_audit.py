"""The admission check waits for one audit commit, yet answers only after every record of the request is
committed: the ``projects, get`` decisions (submitted without waiting) and the per-app results. A record that
cannot be written — the decision's alone included — refuses the request with 503 (fail closed)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from policy import audit
from policy.store import tables
from policy.store.audit_writer import BatchWriter
from tests.api.apihelpers import Harness, harness
from tests.api.test_api_admission import AT, EXAMPLES, _objects, _one, _store_example_project


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Any:
    with harness(tmp_path, database_url) as value:
        yield value


def _body(project: str = "web") -> dict[str, Any]:
    app = _one(EXAMPLES / "app.yaml")
    app = {**app, "spec": {**app["spec"], "project": project}}
    return {"apps": [app], "manifests": _objects(EXAMPLES / "manifests" / "guestbook" / "guestbook.yaml"), "at": AT}


def _committed_actions(h: Harness) -> list[tuple[str, str]]:
    """What another connection sees in the audit table right now (committed rows only), oldest first."""
    recs = tables.audit_records
    with h.state.store.engine.connect() as conn:
        rows = conn.execute(sa.select(recs.c.action, recs.c.result).order_by(recs.c.seq)).all()
    return [(str(r.action), str(r.result)) for r in rows]


@pytest.fixture
def slow_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every audit batch takes a while to commit, so a response sent before a commit would be caught."""
    write = BatchWriter.write

    def slow(self: BatchWriter, events: Sequence[audit.PreparedEvent]) -> list[audit.AuditRecord]:
        time.sleep(0.2)
        return write(self, events)

    monkeypatch.setattr(BatchWriter, "write", slow)


def _token(h: Harness) -> dict[str, str]:
    admin = h.admin()
    _store_example_project(h, admin)
    token = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.usefixtures("slow_commits")
def test_every_record_is_committed_before_the_answer(h: Harness) -> None:
    headers = _token(h)
    response = h.client.post("/api/v1/admission/check", headers=headers, json=_body())
    assert response.status_code == 200 and response.json()["allowed"] is True
    actions = [a for a in _committed_actions(h) if a[0] in ("projects.get", "admission.check")]
    assert actions == [("projects.get", "allowed"), ("admission.check", "allowed")]

    refused = h.client.post("/api/v1/admission/check", headers=headers, json=_body("default"))
    assert refused.status_code == 403
    assert _committed_actions(h)[-1] == ("projects.get", "denied")

    invalid = h.client.post("/api/v1/admission/check", headers=headers, json={**_body(), "sync": "sometimes"})
    assert invalid.status_code == 422
    assert _committed_actions(h)[-1] == ("projects.get", "allowed")


def test_a_decision_record_that_cannot_be_written_refuses_the_check(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _token(h)
    write = BatchWriter.write

    def refuse_decisions(self: BatchWriter, events: Sequence[audit.PreparedEvent]) -> list[audit.AuditRecord]:
        if any(e.action == "projects.get" for e in events):
            raise audit.AuditUnavailable("the audit log cannot be written: disk full")
        return write(self, events)

    monkeypatch.setattr(BatchWriter, "write", refuse_decisions)
    response = h.client.post("/api/v1/admission/check", headers=headers, json=_body())
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert "allowed" not in response.json()


def test_a_closed_audit_log_refuses_the_check(h: Harness) -> None:
    headers = _token(h)
    h.state.store.audit.close()
    response = h.client.post("/api/v1/admission/check", headers=headers, json=_body())
    assert response.status_code == 503
