"""Admission over HTTP: ``/api/v1/admission/check`` gives exactly ``syncwarden check -o json``'s report for the
same input (project stored or inline), with permissions per project and an audit record per app; the
``/api/v1/admission/review`` webhook answers AdmissionReview v1 allow/deny shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import cli
from config import yamlsafe
from tests.api.apihelpers import Harness, harness

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
AT = "2026-11-20T12:00:00Z"
FREEZE_AT = "2026-12-25T12:00:00Z"  # inside the example project's year-end freeze


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Any:
    with harness(tmp_path, database_url) as value:
        yield value


def _one(path: Path) -> Any:
    return yamlsafe.load_one(path.read_bytes(), source=str(path))


def _objects(path: Path) -> list[Any]:
    return [doc.data for doc in yamlsafe.load_all(path.read_bytes(), source=str(path))]


def _cli_report(manifests: Path, at: str, sync: str = "auto") -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["check", "--project", str(EXAMPLES / "project.yaml"), "--app",
                                      str(EXAMPLES / "app.yaml"), "--manifests", str(manifests), "--at", at,
                                      "--sync", sync, "-o", "json"])
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _strip_sources(report: dict[str, Any]) -> dict[str, Any]:
    """File names differ between a CLI run (paths) and a request (request.apps[0]); the rest must not."""
    copy = json.loads(json.dumps(report))
    for app in copy["apps"]:
        app["source"] = ""
        for v in app["violations"]:
            v["field"] = v["field"].split("]", 1)[-1]
    return copy


def _store_example_project(h: Harness, headers: dict[str, str]) -> None:
    response = h.client.post("/api/v1/projects", headers=headers, json={"project": _one(EXAMPLES / "project.yaml")})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("manifests", "at", "sync"), [
    pytest.param("guestbook/guestbook.yaml", AT, "auto", id="allowed"),
    pytest.param("escape/escape.yaml", AT, "auto", id="denied-gates"),
    pytest.param("guestbook/guestbook.yaml", FREEZE_AT, "auto", id="denied-freeze"),
    pytest.param("guestbook/guestbook.yaml", FREEZE_AT, "manual", id="manual-in-freeze"),
])
def test_check_matches_the_cli(h: Harness, manifests: str, at: str, sync: str) -> None:
    admin = h.admin()
    _store_example_project(h, admin)
    path = EXAMPLES / "manifests" / manifests
    body = {"project": "web", "apps": [_one(EXAMPLES / "app.yaml")], "manifests": _objects(path), "at": at,
            "sync": sync}
    response = h.client.post("/api/v1/admission/check", headers=admin, json=body)
    assert response.status_code == 200, response.text
    expected = _cli_report(path, at, sync)
    assert _strip_sources(response.json()) == _strip_sources(expected)
    inline = {**body, "project": None, "projects": [_one(EXAMPLES / "project.yaml")],
              "manifests": None, "manifestsYaml": path.read_text()}
    again = h.client.post("/api/v1/admission/check", headers=admin, json=inline)
    assert _strip_sources(again.json()) == _strip_sources(expected)


def test_check_is_audited_per_app_and_needs_project_access(h: Harness) -> None:
    admin = h.admin()
    _store_example_project(h, admin)
    token = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={}).json()["token"]
    body = {"apps": [_one(EXAMPLES / "app.yaml")],
            "manifests": _objects(EXAMPLES / "manifests" / "escape" / "escape.yaml"), "at": AT}
    response = h.client.post("/api/v1/admission/check", headers={"Authorization": f"Bearer {token}"}, json=body)
    assert response.status_code == 200 and response.json()["allowed"] is False
    records = h.client.get("/api/v1/audit", headers=admin, params={"action": "admission.check"}).json()["items"]
    assert [(r["result"], r["target"]["app"], r["actor"]["subject"]) for r in records] == [
        ("denied", "guestbook", "proj:web:ci")]
    other = {**body, "apps": [{**body["apps"][0], "spec": {**body["apps"][0]["spec"], "project": "default"}}]}
    refused = h.client.post("/api/v1/admission/check", headers={"Authorization": f"Bearer {token}"}, json=other)
    assert refused.status_code == 403


def test_check_input_errors_name_the_field(h: Harness) -> None:
    admin = h.admin()
    _store_example_project(h, admin)
    app = _one(EXAMPLES / "app.yaml")
    broken_app = {**app, "spec": {**app["spec"], "destination": "nowhere"}}
    response = h.client.post("/api/v1/admission/check", headers=admin,
                             json={"project": "web", "apps": [broken_app], "manifests": []})
    assert response.status_code == 422
    assert "request.apps[0]" in response.json()["message"] and "spec.destination" in response.json()["message"]
    bad_object = h.client.post("/api/v1/admission/check", headers=admin,
                               json={"project": "web", "apps": [app], "manifests": [{"kind": "ConfigMap"}]})
    assert bad_object.status_code == 422 and "request.manifests[0]" in bad_object.json()["message"]
    nothing = h.client.post("/api/v1/admission/check", headers=admin, json={"project": "web", "apps": [app]})
    assert nothing.status_code == 422
    missing = h.client.post("/api/v1/admission/check", headers=admin,
                            json={"project": "nope", "apps": [app], "manifests": []})
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"


def _review(namespace: str, kind: str = "ConfigMap", group: str = "", operation: str = "CREATE") -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "cfg", "namespace": namespace}}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
            "namespace": namespace,
            "name": "cfg",
            "operation": operation,
            "userInfo": {"username": "jane", "groups": ["system:authenticated"]},
            "object": obj,
        },
    }


def test_review_allows_and_denies_with_the_kubernetes_shapes(h: Harness) -> None:
    admin = h.admin()
    _store_example_project(h, admin)
    h.client.delete("/api/v1/projects/default", headers=admin)  # default stays; it owns no namespace by name

    def review(body: dict[str, Any]) -> dict[str, Any]:
        response = h.client.post("/api/v1/admission/review", headers=admin, json=body)
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        assert payload["apiVersion"] == "admission.k8s.io/v1" and payload["kind"] == "AdmissionReview"
        assert payload["response"]["uid"] == body["request"]["uid"]
        return payload["response"]

    assert review(_review("web-guestbook")) == {"uid": _review("x")["request"]["uid"], "allowed": True}
    quota = review(_review("web-guestbook", kind="ResourceQuota"))
    assert quota["allowed"] is False
    assert quota["status"]["code"] == 403 and "ResourceQuota" in quota["status"]["message"]
    assert "project 'web'" in quota["status"]["message"]
    assert review(_review("unowned", kind="ResourceQuota"))["allowed"] is True
    h.clock.now = h.clock.now.replace(month=12, day=25)
    admin = h.admin()  # the old session expired with the clock jump
    assert review(_review("web-guestbook"))["allowed"] is True  # manual sync passes the freeze (manualSync)
    records = h.client.get("/api/v1/audit", headers=admin, params={"action": "admission.review"}).json()["items"]
    assert {r["actor"]["subject"] for r in records} == {"k8s:jane"}
    assert [r["result"] for r in records] == ["allowed", "denied", "allowed"]


def test_review_freeze_without_manual_sync_denies(h: Harness) -> None:
    admin = h.admin()
    project = _one(EXAMPLES / "project.yaml")
    project["spec"]["syncWindows"][0]["manualSync"] = False
    h.client.post("/api/v1/projects", headers=admin, json={"project": project})
    h.clock.now = h.clock.now.replace(month=12, day=25)
    response = h.client.post("/api/v1/admission/review", headers=h.admin(), json=_review("web-guestbook")).json()
    assert response["response"]["allowed"] is False
    assert "window" in response["response"]["status"]["message"]


def test_review_rejects_malformed_reviews_and_needs_permission(h: Harness) -> None:
    admin = h.admin()
    wrong = {**_review("web-x"), "apiVersion": "admission.k8s.io/v1beta1"}
    response = h.client.post("/api/v1/admission/review", headers=admin, json=wrong)
    assert response.status_code == 422 and response.json()["violations"][0]["field"] == "body.apiVersion"
    _store_example_project(h, admin)
    token = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={}).json()["token"]
    denied = h.client.post("/api/v1/admission/review", headers={"Authorization": f"Bearer {token}"},
                           json=_review("web-x"))
    assert denied.status_code == 403
