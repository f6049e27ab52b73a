"""Projects over HTTP: CRUD with Argo CD's API rules (§1.12), RBAC on every route with violations and an audit
record per decision, enumeration resistance (PROJ-20), roles, tokens, sync windows and the freeze calendar."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from policy import audit
from policy.evaluate import AppTarget
from tests.api.apihelpers import FAST_HASHER, Harness, harness, project_manifest

SERVER = "https://kubernetes.default.svc"
OTHER_SERVER = "https://prod.example.com"


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Any:
    with harness(tmp_path, database_url) as value:
        yield value


def _user(h: Harness, name: str, policy: str = "") -> dict[str, str]:
    ctx = audit.AuditContext(subject="test")
    h.state.accounts.create(name, FAST_HASHER.hash(f"{name}-password"), ctx=ctx, now=h.clock.now)
    if policy:
        current = h.state.store.rbac.current()
        text = (current.policy_csv + "\n" if current else "") + policy
        h.state.store.rbac.set(text, ctx=ctx, now=h.clock.now)
    return {"Authorization": f"Bearer {h.login(name, f'{name}-password')}"}


def _create(h: Harness, headers: dict[str, str], **spec: Any) -> Any:
    return h.client.post("/api/v1/projects", headers=headers, json={"project": project_manifest(**spec)})


def test_crud_round_trip(h: Harness) -> None:
    admin = h.admin()
    created = _create(h, admin)
    assert created.status_code == 200
    assert created.json()["project"] == project_manifest()
    assert _create(h, admin).json()["version"] == 1  # identical: returned as is
    changed = project_manifest(sourceRepos=["https://github.com/other/*"])
    conflict = h.client.post("/api/v1/projects", headers=admin, json={"project": changed})
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    upserted = h.client.post("/api/v1/projects", headers=admin, json={"project": changed, "upsert": True})
    assert upserted.json()["version"] == 2
    stale = h.client.put("/api/v1/projects/web", headers=admin, json={"project": project_manifest(),
                                                                       "expectedVersion": 1})
    assert stale.status_code == 409
    updated = h.client.put("/api/v1/projects/web", headers=admin, json={"project": project_manifest(),
                                                                         "expectedVersion": 2})
    assert updated.json()["version"] == 3
    names = [p["name"] for p in h.client.get("/api/v1/projects", headers=admin).json()["items"]]
    assert names == ["default", "web"]
    assert h.client.delete("/api/v1/projects/web", headers=admin).status_code == 204
    missing = h.client.get("/api/v1/projects/web", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"


def test_invalid_project_is_422_naming_the_field(h: Harness) -> None:
    bad = project_manifest(destinations=[{"server": SERVER, "namespace": "!*"}])
    response = h.client.post("/api/v1/projects", headers=h.admin(), json={"project": bad})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid"
    assert body["violations"][0]["field"].startswith("spec.destinations[0]")
    mismatch = h.client.put("/api/v1/projects/default", headers=h.admin(), json={"project": project_manifest()})
    assert mismatch.status_code == 422 and mismatch.json()["violations"][0]["field"] == "metadata.name"
    shape = h.client.post("/api/v1/projects", headers=h.admin(), json={"project": "nope"})
    assert shape.status_code == 422 and shape.json()["violations"][0]["field"] == "body.project"


def test_default_project_cannot_be_deleted(h: Harness) -> None:
    response = h.client.delete("/api/v1/projects/default", headers=h.admin())
    assert response.status_code == 400
    assert "reserved" in response.json()["message"]


def test_denied_request_is_403_with_violations_and_indistinguishable_from_missing(h: Harness) -> None:
    _create(h, h.admin())
    bob = _user(h, "bob")
    existing = h.client.get("/api/v1/projects/web", headers=bob)
    missing = h.client.get("/api/v1/projects/nothere", headers=bob)
    assert existing.status_code == missing.status_code == 403
    body = existing.json()
    assert body["error"] == "forbidden"
    assert body["violations"][0]["code"] == "rbac.denied"
    assert "projects, get, web, sub: bob" in body["violations"][0]["message"]
    assert missing.json()["message"] == body["message"].replace("web", "nothere")
    assert h.client.get("/api/v1/projects", headers=bob).json()["items"] == []


def test_every_decision_is_audited_with_its_request_id(h: Harness) -> None:
    admin = h.admin()
    _create(h, admin)
    bob = _user(h, "bob")
    denied = h.client.get("/api/v1/projects/web", headers=bob)
    allowed = h.client.get("/api/v1/projects/web", headers=admin)
    records = h.client.get("/api/v1/audit", headers=admin, params={"action": "projects.get"}).json()["items"]
    by_request = {r["requestId"]: r for r in records}
    denied_record = by_request[denied.headers["X-Request-ID"]]
    assert denied_record["result"] == "denied"
    assert denied_record["actor"]["subject"] == "bob"
    assert denied_record["violations"][0]["code"] == "rbac.denied"
    assert by_request[allowed.headers["X-Request-ID"]]["result"] == "allowed"
    assert denied.json()["request_id"] == denied.headers["X-Request-ID"]


def test_update_needs_cluster_and_repo_permissions_for_what_changes(h: Harness) -> None:
    _create(h, h.admin())
    carol = _user(h, "carol", "p, carol, projects, update, web, allow\np, carol, projects, get, web, allow")
    same = h.client.put("/api/v1/projects/web", headers=carol,
                        json={"project": project_manifest(description="only the text changed")})
    assert same.status_code == 200
    more = project_manifest(destinations=[{"server": SERVER, "namespace": "web-*"},
                                          {"server": OTHER_SERVER, "namespace": "web"}])
    denied = h.client.put("/api/v1/projects/web", headers=carol, json={"project": more})
    assert denied.status_code == 403
    assert f"clusters, update, {OTHER_SERVER}" in denied.json()["violations"][0]["message"]
    repo = project_manifest(sourceRepos=["https://github.com/acme/*", "https://github.com/evil/*"])
    denied_repo = h.client.put("/api/v1/projects/web", headers=carol, json={"project": repo})
    assert "repositories, update, https://github.com/evil/*" in denied_repo.json()["violations"][0]["message"]
    kinds = project_manifest(clusterResourceWhitelist=[{"group": "*", "kind": "*"}])
    denied_kinds = h.client.put("/api/v1/projects/web", headers=carol, json={"project": kinds})
    assert f"clusters, update, {SERVER}" in denied_kinds.json()["violations"][0]["message"]
    _user(h, "dave", f"p, carol, clusters, update, {OTHER_SERVER}, allow")
    assert h.client.put("/api/v1/projects/web", headers=carol, json={"project": more}).status_code == 200


def test_update_and_delete_respect_the_projects_apps(tmp_path: Path, database_url: str) -> None:
    app = AppTarget(name="guestbook", project="web", repo_urls=("https://github.com/acme/guestbook",),
                    destination_namespace="web-prod", destination_server=SERVER)

    def apps(name: str) -> Sequence[AppTarget]:
        return [app] if name == "web" else []

    with harness(tmp_path, database_url, project_apps=apps) as h:
        admin = h.admin()
        _create(h, admin)
        narrower = project_manifest(destinations=[{"server": SERVER, "namespace": "web-dev"}])
        refused = h.client.put("/api/v1/projects/web", headers=admin, json={"project": narrower})
        assert refused.status_code == 409
        assert "guestbook" in refused.json()["violations"][0]["message"]
        deleted = h.client.delete("/api/v1/projects/web", headers=admin)
        assert deleted.status_code == 409 and "referenced by 1 applications" in deleted.json()["message"]


def test_roles_and_tokens(h: Harness) -> None:
    admin = h.admin()
    roles = [{"name": "ci", "policies": ["p, proj:web:ci, applications, sync, web/*, allow"], "groups": ["ci-bots"]}]
    _create(h, admin, roles=roles)
    h.client.post("/api/v1/projects", headers=admin, json={"project": project_manifest("other")})
    listed = h.client.get("/api/v1/projects/web/roles", headers=admin).json()["items"]
    assert listed == [{"name": "ci", "description": "", "policies": roles[0]["policies"], "groups": ["ci-bots"],
                       "activeTokens": 0}]
    issued = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin,
                           json={"expiresIn": 7 * 86400, "description": "pipeline"})
    assert issued.status_code == 200
    token, info = issued.json()["token"], issued.json()["info"]
    assert info["state"] == "active" and info["issuedBy"] == "admin"
    tokens = h.client.get("/api/v1/projects/web/roles/ci/token", headers=admin).json()["items"]
    assert [t["id"] for t in tokens] == [info["id"]]
    assert token not in str(tokens)
    bearer = {"Authorization": f"Bearer {token}"}
    assert h.client.get("/api/v1/projects/web", headers=bearer).status_code == 200
    confined = h.client.get("/api/v1/projects/other", headers=bearer)
    assert confined.status_code == 403
    assert "own project" in confined.json()["violations"][0]["message"]
    assert h.client.post("/api/v1/projects/web/roles/ci/token", headers=bearer, json={}).status_code == 403
    assert h.client.post("/api/v1/projects/web/roles/nope/token", headers=admin, json={}).status_code == 404
    negative = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={"expiresIn": -5})
    assert negative.status_code == 422
    unknown = h.client.delete("/api/v1/projects/web/roles/ci/token/not-a-token", headers=admin)
    assert unknown.json() == {"id": "not-a-token", "revoked": False}
    h.clock.advance(days=8)
    assert h.client.get("/api/v1/projects/web", headers=bearer).status_code == 401


def test_removing_a_role_kills_its_tokens(h: Harness) -> None:
    admin = h.admin()
    _create(h, admin, roles=[{"name": "ci", "policies": []}])
    token = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={}).json()["token"]
    h.client.put("/api/v1/projects/web", headers=admin, json={"project": project_manifest(roles=[])})
    assert h.client.get("/api/v1/projects/web", headers={"Authorization": f"Bearer {token}"}).status_code == 401


FREEZE = {"kind": "deny", "schedule": "0 10 * * *", "duration": "4h", "namespaces": ["web-prod"],
          "timeZone": "UTC", "description": "daily freeze"}


def test_windows_state_now_and_next_transitions(h: Harness) -> None:
    admin = h.admin()
    _create(h, admin, syncWindows=[FREEZE])
    report = h.client.get("/api/v1/projects/web/syncwindows", headers=admin,
                          params={"app": "guestbook", "namespace": "web-prod", "days": 2}).json()
    assert report["at"] == "2026-11-20T12:00:00Z"
    assert report["windows"][0]["status"] == "Active" and report["windows"][0]["kind"] == "deny"
    app = report["app"]
    assert (app["canSyncAuto"], app["canSyncManual"]) == (False, False)
    assert app["active"] == [0] and app["nextChange"] == "2026-11-20T14:00:00Z"
    assert [t["at"] for t in app["transitions"]][:3] == [
        "2026-11-20T14:00:00Z", "2026-11-21T10:00:00Z", "2026-11-21T14:00:00Z"]
    later = h.client.get("/api/v1/projects/web/syncwindows", headers=admin,
                         params={"app": "guestbook", "namespace": "web-prod", "at": "2026-11-20T15:00:00Z"}).json()
    assert later["app"]["canSyncAuto"] is True and later["windows"][0]["status"] == "Inactive"
    naive = h.client.get("/api/v1/projects/web/syncwindows", headers=admin, params={"at": "2026-11-20T15:00:00"})
    assert naive.status_code == 422


def test_windows_ics_calendar(h: Harness) -> None:
    admin = h.admin()
    _create(h, admin, syncWindows=[FREEZE])
    response = h.client.get("/api/v1/projects/web/windows.ics", headers=admin, params={"days": 3})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    text = response.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.rstrip().endswith("END:VCALENDAR")
    assert text.count("BEGIN:VEVENT") == 4  # today's open freeze and the next three days' (3-day range)
    assert "DTSTART:20261120T100000Z" in text and "DTEND:20261120T140000Z" in text
    assert "SUMMARY:Sync freeze: web window 0" in text
    nobody = h.client.get("/api/v1/projects/web/windows.ics", headers=_user(h, "eve"))
    assert nobody.status_code == 403


@pytest.mark.parametrize("policy", [
    pytest.param("p, proj:other:ci, applications, get, web/*, allow", id="other-subject"),
    pytest.param("p, proj:web:ci, applications, get, other/*, allow", id="other-object"),
    pytest.param("p, proj:web:ci, projects, update, web, allow", id="global-resource"),
])
def test_project_roles_may_only_grant_within_the_project(h: Harness, policy: str) -> None:
    response = _create(h, h.admin(), roles=[{"name": "ci", "policies": [policy]}])
    assert response.status_code == 422
    assert response.json()["violations"][0]["field"].startswith("spec.roles[0].policies[0]")
