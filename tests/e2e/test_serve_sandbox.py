"""``syncwarden serve --sandbox`` end to end, as the README's Quickstart runs it: a subprocess on a free port with a
fresh data directory; log in with the printed admin password, watch the example app become Synced and Healthy,
see a denied sync and a freeze (with a break-glass override), read ``/metrics``, stop it with SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servekit import ServeProcess, wait_for

ALWAYS_FROZEN = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"],
                 "manualSync": False, "description": "test freeze"}


def _app(serve: ServeProcess, headers: dict[str, str], name: str) -> dict[str, Any]:
    response = serve.http.get(f"/api/v1/applications/{name}", headers=headers)
    assert response.status_code == 200, response.text
    app: dict[str, Any] = response.json()
    return app


@pytest.mark.slow
def test_serve_sandbox_quickstart(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, "--sandbox", "--interval", "0.2",
                         env={"SYNCWARDEN_DATA_DIR": str(tmp_path / "data")})
    try:
        serve.wait_ready()
        password = serve.password()
        assert password, serve.lines
        assert f"API docs: {serve.url}/docs" in serve.lines
        assert any(line.startswith(f"kubeconfig: {tmp_path / 'data' / 'kubeconfig'}") for line in serve.lines)
        assert serve.http.get("/docs").status_code == 200
        admin = serve.login(password)
        # The example project's year-end freeze would hold the automatic sync on those dates; this test is
        # about the automatic sync, so it starts from a project without windows and adds its own freeze below.
        project = serve.http.get("/api/v1/projects/web", headers=admin).json()["project"]
        project["spec"]["syncWindows"] = []
        assert serve.http.put("/api/v1/projects/web", headers=admin, json={"project": project}).status_code == 200

        def healthy() -> bool:
            status = _app(serve, admin, "guestbook")["status"]
            return bool(status["sync"]["status"] == "Synced" and status["health"]["status"] == "Healthy")

        wait_for(healthy, timeout=90, what="the example app to become Synced and Healthy")
        listed = serve.http.get("/api/v1/applications", headers=admin).json()["items"]
        assert {a["metadata"]["name"] for a in listed} == {"guestbook", "escape"}

        denied = serve.http.post("/api/v1/applications/escape/sync", headers=admin, json={})
        assert denied.status_code == 403
        codes = {v["code"] for v in denied.json()["violations"]}
        assert {"namespace.not-permitted", "resource.not-permitted"} <= codes

        project = serve.http.get("/api/v1/projects/web", headers=admin).json()["project"]
        project["spec"]["syncWindows"] = [*project["spec"].get("syncWindows", []), ALWAYS_FROZEN]
        assert serve.http.put("/api/v1/projects/web", headers=admin, json={"project": project}).status_code == 200
        frozen = serve.http.post("/api/v1/applications/guestbook/sync", headers=admin, json={})
        assert frozen.status_code == 403 and frozen.json()["violations"][0]["code"] == "window.blocked"
        override = serve.http.post("/api/v1/applications/guestbook/sync", headers=admin,
                                   json={"override": True, "reason": "e2e: release blocker"})
        assert override.status_code == 200, override.text
        op_id = override.json()["operationId"]

        def finished() -> str | None:
            state = _app(serve, admin, "guestbook")["status"].get("operationState") or {}
            return state.get("phase") if state.get("operationId") == op_id and state.get("finishedAt") else None

        assert wait_for(finished, timeout=60, what="the override sync to finish") == "Succeeded"

        metrics = serve.http.get("/metrics").text
        assert 'syncwarden_app_info{' in metrics and 'name="guestbook"' in metrics
        assert 'syncwarden_app_sync_total{name="guestbook",phase="Succeeded",project="web"}' in metrics
        assert serve.terminate() == 0
        assert "shutting down" in serve.lines
    finally:
        serve.close()
