"""Two API replicas on one database: a token revoked on one fails on the other at once, a role's policy changed
on one applies on the other after the policy refresh, the login throttle is shared, and both extend one audit
chain."""

from __future__ import annotations

from pathlib import Path

from policy import audit
from tests.api.apihelpers import harness, project_manifest


def test_replicas_share_tokens_policy_throttle_and_audit(tmp_path: Path, database_url: str) -> None:
    with harness(tmp_path, database_url) as a, harness(tmp_path, database_url) as b:
        assert len(a.announced) + len(b.announced) == 1  # one admin password for the whole installation
        password = (a.announced or b.announced)[0].removeprefix("initial admin password: ")
        admin_a = {"Authorization": f"Bearer {a.login('admin', password)}"}
        admin_b = {"Authorization": f"Bearer {b.login('admin', password)}"}
        roles = [{"name": "ci", "policies": ["p, proj:web:ci, applications, get, web/*, allow"]}]
        a.client.post("/api/v1/projects", headers=admin_a, json={"project": project_manifest(roles=roles)})
        issued = a.client.post("/api/v1/projects/web/roles/ci/token", headers=admin_a, json={}).json()
        bearer = {"Authorization": f"Bearer {issued['token']}"}
        assert b.client.get("/api/v1/projects/web", headers=bearer).status_code == 200

        a.state.store.rbac.set("p, proj:web:ci, projects, get, web, deny", ctx=audit.AuditContext(subject="ops"),
                               now=a.clock.now)  # a new global policy version, written through replica a
        refused = b.client.get("/api/v1/projects/web", headers=bearer)  # b re-reads it (refresh interval 0 here)
        assert refused.status_code == 403 and "explicitly denied" in refused.json()["message"]

        a.client.delete(f"/api/v1/projects/web/roles/ci/token/{issued['info']['id']}", headers=admin_a)
        assert b.client.get("/api/v1/projects/web", headers=bearer).status_code == 401

        for _ in range(5):
            a.client.post("/api/v1/session", json={"username": "admin", "password": "wrong-guess"})
        assert b.client.post("/api/v1/session", json={"username": "admin", "password": password}).status_code == 429

        verified = b.client.post("/api/v1/audit/verify", headers=admin_b).json()
        assert verified["ok"] is True and verified["checked"] > 10
