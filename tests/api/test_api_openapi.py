"""The OpenAPI document is complete (every route, with request and response schemas and the error shape), and
every failure — including an unexpected one — has the one error shape without internals."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from api.app import PUBLIC_ROUTES
from policy.evaluate import AppTarget
from tests.api.apihelpers import harness

EXPECTED_ROUTES = {
    ("post", "/api/v1/session"), ("delete", "/api/v1/session"), ("get", "/api/v1/session/userinfo"),
    ("get", "/api/v1/projects"), ("post", "/api/v1/projects"), ("get", "/api/v1/projects/{name}"),
    ("put", "/api/v1/projects/{name}"), ("delete", "/api/v1/projects/{name}"),
    ("get", "/api/v1/projects/{name}/roles"),
    ("post", "/api/v1/projects/{name}/roles/{role}/token"), ("get", "/api/v1/projects/{name}/roles/{role}/token"),
    ("delete", "/api/v1/projects/{name}/roles/{role}/token/{token_id}"),
    ("get", "/api/v1/projects/{name}/syncwindows"), ("get", "/api/v1/projects/{name}/windows.ics"),
    ("get", "/api/v1/audit"), ("get", "/api/v1/audit/export"), ("post", "/api/v1/audit/verify"),
    ("post", "/api/v1/admission/check"), ("post", "/api/v1/admission/review"), ("post", "/api/webhook"),
    ("get", "/metrics"), ("get", "/healthz"), ("get", "/readyz"),
    ("get", "/api/v1/applications"), ("post", "/api/v1/applications"), ("get", "/api/v1/applications/{name}"),
    ("put", "/api/v1/applications/{name}"), ("delete", "/api/v1/applications/{name}"),
    ("get", "/api/v1/applications/{name}/resource-tree"), ("get", "/api/v1/applications/{name}/manifests"),
    ("get", "/api/v1/applications/{name}/diff"), ("post", "/api/v1/applications/{name}/sync"),
    ("post", "/api/v1/applications/{name}/rollback"), ("get", "/api/v1/applications/{name}/history"),
    ("post", "/api/v1/applications/{name}/refresh"), ("delete", "/api/v1/applications/{name}/operation"),
}


def test_openapi_lists_every_route_with_schemas(tmp_path: Path) -> None:
    with harness(tmp_path, f"sqlite:///{tmp_path / 'o.db'}") as h:
        doc = h.client.get("/openapi.json").json()
    found = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert found == EXPECTED_ROUTES
    assert "ErrorResponse" in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and op.get("description"), where
            success = [code for code in op["responses"] if code.startswith("2")]
            assert success, where
            for code in success:
                if code != "204":
                    assert op["responses"][code].get("content"), where
            if method in ("post", "put") and path not in ("/api/v1/audit/verify", "/api/webhook"):
                assert op["requestBody"]["content"]["application/json"]["schema"], where
            if (method.upper(), path) not in PUBLIC_ROUTES:
                for code in ("401", "403"):
                    schema = op["responses"][code]["content"]["application/json"]["schema"]
                    assert schema["$ref"].endswith("/ErrorResponse"), where


def test_app_create_documents_its_outcome_header_and_diff_its_fields(tmp_path: Path) -> None:
    with harness(tmp_path, f"sqlite:///{tmp_path / 'o.db'}") as h:
        doc = h.client.get("/openapi.json").json()
    header = doc["paths"]["/api/v1/applications"]["post"]["responses"]["200"]["headers"]["X-Syncwarden-Outcome"]
    assert header["schema"]["enum"] == ["created", "updated", "unchanged"] and header["description"]
    diff = doc["components"]["schemas"]["DiffPublic"]
    assert set(diff["required"]) == {"instance", "sync", "health", "resources", "conditions", "revisions"}


def test_unexpected_errors_have_the_error_shape_and_no_internals(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    def broken(name: str) -> Sequence[AppTarget]:
        raise RuntimeError("secret internal detail: password=hunter2")

    with harness(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", project_apps=broken,
                 raise_server_exceptions=False) as h, caplog.at_level(logging.ERROR):
        admin = h.admin()
        response = h.client.delete("/api/v1/projects/default-ish", headers=admin)
        assert response.status_code == 404  # missing project: found before the apps are asked
        h.client.post("/api/v1/projects", headers=admin, json={"project": {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "p"}, "spec": {}}})
        failed = h.client.delete("/api/v1/projects/p", headers=admin)
        assert failed.status_code == 500
        body = failed.json()
        assert body == {"error": "internal", "message": body["message"], "request_id": failed.headers["X-Request-ID"]}
        assert "hunter2" not in failed.text and "Traceback" not in failed.text
        not_a_route = h.client.get("/api/v1/nothing", headers=admin)
        assert not_a_route.status_code == 404 and set(not_a_route.json()) == {"error", "message", "request_id"}
        wrong_method = h.client.patch("/api/v1/projects", headers=admin)
        assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method-not-allowed"


def test_audit_unavailable_refuses_with_503_and_retry_after(tmp_path: Path) -> None:
    with harness(tmp_path, f"sqlite:///{tmp_path / 'a.db'}") as h:
        admin = h.admin()
        h.state.store.audit.close()  # the audit log can no longer be written: fail closed
        response = h.client.get("/api/v1/projects/default", headers=admin)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"] == "unavailable"
        ready = h.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["audit"] == "closed"
