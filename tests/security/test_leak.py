"""Secret leakage through the HTTP API, black box (security-cases A.2 LEAK rows, and REPO-11/LEAK-02 style
credential leaks in responses).

Rows covered here: LEAK-01 (a managed Secret's ``data``, ``stringData`` and the copy inside
``last-applied-configuration`` never leave the API in clear — manifests, diff, app, resource tree, history,
audit — while the diff still shows *that* a value changed), LEAK-03 (a project token that may only get and sync
apps sees no repository credential in any response it can reach), LEAK-06 (``javascript:``/``data:`` repository
URLs, in any letter case, are refused on input), and credentials embedded in a repository URL never echoed
by the API (DESIGN "Secrets never appear in ... API responses").

Real components: ``TestClient(create_app(...))`` wired to ``api.wiring.build_services``, the sandbox over HTTP
(written directly with httpx to plant the live Secret), a real Git repository, the ``database_url`` database.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.sechelpers import Stack, application, project, role_token, stack

CLEAR = "hunter2-clear-value"
B64_CLEAR = "b64-only-secret-value"
LIVE_CLEAR = "old-live-secret-value"
LAST_APPLIED = json.dumps({"apiVersion": "v1", "kind": "Secret", "stringData": {"pw": CLEAR}})
SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  annotations:\n"
    f"    kubectl.kubernetes.io/last-applied-configuration: '{LAST_APPLIED}'\n"
    f"stringData:\n  pw: {CLEAR}\n"
    f"data:\n  k: {base64.b64encode(B64_CLEAR.encode()).decode()}\n"
)
REPO_PASSWORD = "repo-pass-5521"
REPO_USER = "ci-robot-user"
FORBIDDEN = (CLEAR, B64_CLEAR, LIVE_CLEAR, REPO_PASSWORD,
             *(base64.b64encode(v.encode()).decode() for v in (CLEAR, B64_CLEAR, LIVE_CLEAR)))


def _plant_live_secret(st: Stack) -> None:
    """A different value already live, so the diff has a change to show."""
    with httpx.Client(base_url=st.sb.url, timeout=10) as k8s:
        ns = k8s.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "low-a"}})
        assert ns.status_code in (200, 201), ns.text
        live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "low-a"},
                "data": {"pw": base64.b64encode(LIVE_CLEAR.encode()).decode()}}
        made = k8s.post("/api/v1/namespaces/low-a/secrets", json=live)
        assert made.status_code in (200, 201), made.text


@pytest.fixture
def st(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    creds = [{"url_prefix": "file://", "username": REPO_USER, "password": REPO_PASSWORD}]
    with stack(tmp_path, database_url, {"app/secret.yaml": SECRET}, sync={"repo_credentials": creds}) as s:
        admin = s.admin()
        assert s.api.client.post("/api/v1/projects", json={"project": project("low")}, headers=admin).status_code == 200
        app = application(s.repo.url, name="sec", project="low", dest_namespace="low-a")
        made = s.api.client.post("/api/v1/applications", json={"application": app}, headers=admin)
        assert made.status_code == 200, made.text
        _plant_live_secret(s)
        yield s


def _assert_clean(text: str, where: str) -> None:
    for value in FORBIDDEN:
        assert value not in text, f"{where} leaks {value!r}"


def test_leak_01_secret_values_are_masked_on_every_app_endpoint(st: Stack) -> None:
    admin = st.admin()
    for suffix in ("", "/manifests", "/diff", "/resource-tree", "/history"):
        response = st.api.client.get(f"/api/v1/applications/sec{suffix}", headers=admin)
        assert response.status_code == 200, (suffix, response.text)
        _assert_clean(response.text, f"GET /api/v1/applications/sec{suffix}")
    listed = st.api.client.get("/api/v1/applications", headers=admin)
    _assert_clean(listed.text, "GET /api/v1/applications")
    audit = st.api.client.get("/api/v1/audit", params={"limit": 1000}, headers=admin)
    assert audit.status_code == 200
    _assert_clean(audit.text, "GET /api/v1/audit")


def test_leak_01_the_diff_still_shows_that_the_secret_changed(st: Stack) -> None:
    diff = st.api.client.get("/api/v1/applications/sec/diff", headers=st.admin()).json()
    [secret] = [r for r in diff["resources"] if r["kind"] == "Secret"]
    assert secret["status"] == "OutOfSync" and secret["diff"]["modified"] is True
    unified = secret["diff"]["unified"]
    assert any(line.startswith("-") and "pw" in line for line in unified.splitlines()), unified
    assert any(line.startswith("+") and "pw" in line for line in unified.splitlines()), unified
    manifests = st.api.client.get("/api/v1/applications/sec/manifests", headers=st.admin()).json()["manifests"]
    [desired] = manifests
    # keys stay visible, values do not; the embedded copy in the annotation is masked as a whole
    assert set(desired["stringData"]) == {"pw"} and set(desired["data"]) == {"k"}
    assert "hunter2" not in desired["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]


def test_leak_03_a_project_token_sees_no_repository_credentials(st: Stack) -> None:
    token = role_token(st, project("low"), "ci",
                       ["p, proj:low:ci, applications, get, low/*, allow",
                        "p, proj:low:ci, applications, sync, low/*, allow"])
    paths = ["/api/v1/projects/low", "/api/v1/projects", "/api/v1/projects/low/roles",
             "/api/v1/projects/low/syncwindows", "/api/v1/applications", "/api/v1/applications/sec",
             "/api/v1/applications/sec/manifests", "/api/v1/applications/sec/diff",
             "/api/v1/applications/sec/history", "/api/v1/session/userinfo"]
    answered = 0
    for path in paths:
        response = st.api.client.get(path, headers=token)
        answered += response.status_code == 200
        _assert_clean(response.text, f"GET {path} with a project token")
        assert REPO_USER not in response.text, f"GET {path} names the repository user"
    assert answered >= 5  # the token does reach the app views; they just carry no credential


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)",
                                 "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
                                 " javascript:alert(1)"])
def test_leak_06_dangerous_repository_urls_are_refused_on_input(st: Stack, url: str) -> None:
    app = application(url, name="xss", project="low", dest_namespace="low-a")
    response = st.api.client.post("/api/v1/applications", json={"application": app}, headers=st.admin())
    assert response.status_code == 422, response.text
    assert "repoURL" in response.json()["message"]
    assert st.api.client.get("/api/v1/applications/xss", headers=st.admin()).status_code == 404


def test_leak_02_a_password_in_a_repository_url_is_never_echoed(st: Stack) -> None:
    url = "https://deploy:url-pass-8830@github.com/acme/app"
    app = application(url, name="inline", project="low", dest_namespace="low-a")
    created = st.api.client.post("/api/v1/applications", json={"application": app}, headers=st.admin())
    assert "url-pass-8830" not in created.text
    if created.status_code == 200:  # accepted: then no view may show the password
        for path in ("/api/v1/applications/inline", "/api/v1/applications"):
            assert "url-pass-8830" not in st.api.client.get(path, headers=st.admin()).text
    else:
        assert created.status_code == 422 and "repoURL" in created.json()["message"]
