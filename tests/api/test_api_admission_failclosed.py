"""The admission review fails closed when a stored project cannot be loaded: a change in a namespace the broken
project may own is denied with a reason naming the project (and a log line), instead of counting as unowned."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.api.apihelpers import harness, project_manifest
from tests.api.test_api_admission import _review


def _corrupt(engine: sa.Engine, name: str, spec: dict[str, Any]) -> None:
    """Write a manifest the current release cannot load (as another release or a hand edit might)."""
    manifest = project_manifest(name)
    manifest["spec"].update(spec)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE policy_projects SET manifest = :m, version = version + 1 WHERE name = :n"),
                     {"m": json.dumps(manifest), "n": name})


def test_a_broken_project_denies_in_its_namespaces(tmp_path: Path, database_url: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with harness(tmp_path, database_url) as h:
        admin = h.admin()
        for name in ("web", "ops"):
            body = {"project": project_manifest(name)}
            assert h.client.post("/api/v1/projects", headers=admin, json=body).status_code == 200
        review = h.client.post("/api/v1/admission/review", headers=admin, json=_review("web-guestbook")).json()
        assert review["response"]["allowed"] is True  # a ConfigMap the project permits

        _corrupt(h.state.store.engine, "web", {"syncWindows": [{"kind": "deny", "schedule": "not a cron",
                                                                 "duration": "1h", "applications": ["*"]}]})
        with caplog.at_level(logging.ERROR):
            denied = h.client.post("/api/v1/admission/review", headers=admin, json=_review("web-guestbook")).json()
        assert denied["response"]["allowed"] is False
        assert "project 'web' cannot be loaded" in denied["response"]["status"]["message"]
        assert any("'web' cannot be loaded" in r.getMessage() for r in caplog.records)
        elsewhere = h.client.post("/api/v1/admission/review", headers=admin, json=_review("ops-tools")).json()
        assert elsewhere["response"]["allowed"] is True  # the broken project cannot own ops-*

        _corrupt(h.state.store.engine, "ops", {"destinations": "unreadable", "syncWindows": "no"})
        anywhere = h.client.post("/api/v1/admission/review", headers=admin, json=_review("team-x")).json()
        assert anywhere["response"]["allowed"] is False
        assert "project 'ops' cannot be loaded" in anywhere["response"]["status"]["message"]
