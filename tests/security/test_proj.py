"""Project gates through the HTTP API, black box (security-cases A.2 PROJ rows the unit tests do not reach).

Rows covered here: PROJ-15 (an app whose Git renders a child Application naming another project is denied
whole, nothing written), PROJ-03 (``CreateNamespace=true`` in a project without ``Namespace`` in its cluster allow-list
writes nothing), PROJ-10 (re-homing an app into a project the caller cannot write), PROJ-12 (an app's
resource views are reachable only through that app's own permission, and answer like a missing app otherwise),
PROJ-14 (an Application living in a namespace its project's ``sourceNamespaces`` does not list is refused at
the API), PROJ-20 (existing-but-forbidden and missing apps answer identically).

Real components: ``TestClient(create_app(...))`` wired to ``api.wiring.build_services`` over the sandbox over
HTTP, a real Git repository, and the ``database_url`` database (SQLite, and PostgreSQL when configured).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from policy import audit
from tests.api.apihelpers import FAST_HASHER
from tests.security.sechelpers import CONTROL_PLANE, OPERATOR, Stack, application, project, role_token, stack

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: live}\n"
#: an app-of-apps child naming a project its parent's project is not
CHILD = (
    "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: child, namespace: low-a}\n"
    "spec:\n  project: admin-proj\n  source: {repoURL: 'https://github.com/acme/x', path: ., targetRevision: main}\n"
    "  destination: {server: 'https://kubernetes.default.svc', namespace: kube-system}\n"
)


@pytest.fixture
def st(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    with stack(tmp_path, database_url, {"app/cm.yaml": CM, "child/app.yaml": CHILD}) as s:
        admin = s.admin()
        for name in ("low", "admin-proj"):
            created = s.api.client.post("/api/v1/projects", json={"project": project(name)}, headers=admin)
            assert created.status_code == 200, created.text
        app = application(s.repo.url, name="web", project="low", dest_namespace="low-a")
        made = s.api.client.post("/api/v1/applications", json={"application": app}, headers=admin)
        assert made.status_code == 200, made.text
        yield s


def test_proj_10_moving_an_app_to_a_project_the_caller_cannot_write_is_403(st: Stack) -> None:
    owner = role_token(st, project("low"), "owner", ["p, proj:low:owner, applications, *, low/*, allow"])
    moved = application(st.repo.url, name="web", project="admin-proj", dest_namespace="admin-proj-a")

    response = st.api.client.put("/api/v1/applications/web", json={"application": moved}, headers=owner)

    assert response.status_code == 403, response.text
    kept = st.api.client.get("/api/v1/applications/web", headers=st.admin())
    assert kept.json()["spec"]["project"] == "low"
    # the same caller may still update the app inside its own project
    same = application(st.repo.url, name="web", project="low", dest_namespace="low-b")
    assert st.api.client.put("/api/v1/applications/web", json={"application": same}, headers=owner).status_code == 200


def test_proj_10_the_new_projects_rules_apply_after_a_permitted_move(st: Stack) -> None:
    # an admin may move the app, but the destination must satisfy the new project's rules
    bad = application(st.repo.url, name="web", project="admin-proj", dest_namespace="low-a")
    response = st.api.client.put("/api/v1/applications/web", json={"application": bad}, headers=st.admin())
    assert response.status_code == 403 and "low-a" in response.text


@pytest.mark.parametrize("suffix", ["", "/manifests", "/diff", "/resource-tree", "/history"])
def test_proj_12_and_20_forbidden_and_missing_apps_answer_the_same(st: Stack, suffix: str) -> None:
    outsider = role_token(st, project("admin-proj"), "reader", ["p, proj:admin-proj:reader, applications, get, admin-proj/*, allow"])

    existing = st.api.client.get(f"/api/v1/applications/web{suffix}", headers=outsider)
    missing = st.api.client.get(f"/api/v1/applications/nope{suffix}", headers=outsider)

    assert existing.status_code == missing.status_code
    assert existing.status_code in (403, 404)
    assert _neutral(existing.json(), "web") == _neutral(missing.json(), "nope")
    assert "low" not in existing.text  # nothing about the app (its project) leaks


def _neutral(body: dict[str, object], name: str) -> str:
    """The error body with the request id dropped and the requested name replaced by a placeholder."""
    kept = {k: v for k, v in body.items() if k not in ("requestId", "request_id")}
    return str(kept).replace(name, "<name>")


def test_proj_14_app_outside_the_projects_source_namespaces_is_refused_at_the_api(st: Stack) -> None:
    admin = st.admin()
    scoped = project("scoped", sourceNamespaces=["team-a"])
    assert st.api.client.post("/api/v1/projects", json={"project": scoped}, headers=admin).status_code == 200
    app = application(st.repo.url, name="intruder", project="scoped", dest_namespace="scoped-x", namespace="team-b")

    response = st.api.client.post("/api/v1/applications", json={"application": app}, headers=admin)

    assert response.status_code in (400, 403, 422), response.text
    assert "team-b" in response.text and "sourceNamespaces" in response.text
    listed = st.api.client.get("/api/v1/applications", headers=admin).json()["items"]
    assert [a["metadata"]["name"] for a in listed] == ["web"]


def test_proj_14_the_sync_path_refuses_an_app_outside_the_source_namespaces(st: Stack) -> None:
    """The second path: an Application that reached the store some other way is denied by the gate, nothing
    is written to the cluster."""
    admin = st.admin()
    scoped = project("scoped", sourceNamespaces=["team-a"])
    assert st.api.client.post("/api/v1/projects", json={"project": scoped}, headers=admin).status_code == 200
    app = application(st.repo.url, name="intruder", project="scoped", dest_namespace="scoped-x", namespace="team-b")
    st.system.apps.create(app, now=_now())
    st.sb.requests.clear()

    op_id = st.system.apps.sync("team-b", "intruder", now=_now(), subject=OPERATOR)
    state = st.system.apps.wait_for_operation("team-b", "intruder", timeout_seconds=30, op_id=op_id,
                                              poll_seconds=0.05).to_dict()

    assert state["phase"] == "Failed", state
    codes = [v["code"] for v in state["violations"]]
    assert codes == ["source-namespace.not-permitted"] or all("namespace" in c for c in codes), state
    assert "team-b" in str(state["message"]) and "sourceNamespaces" in str(state)
    assert st.sb.requests.writes() == []


def _now() -> datetime:
    return datetime.now(UTC)


def _user(st: Stack, name: str, policy_csv: str) -> dict[str, str]:
    """A local account ``name`` with the stored RBAC policy ``policy_csv``; its bearer header."""
    ctx = audit.AuditContext(subject="test", client="test")
    st.api.state.accounts.create(name, FAST_HASHER.hash(f"{name}-password-1"), ctx=ctx, now=st.api.clock.now)
    st.system.policy_store.rbac.set(policy_csv, ctx=ctx, now=_now())
    return {"Authorization": f"Bearer {st.api.login(name, f'{name}-password-1')}"}


def test_proj_10_moving_needs_create_in_the_new_project(st: Stack) -> None:
    mover = _user(st, "mover", "p, mover, applications, *, low/*, allow\n"
                               "p, mover, applications, update, admin-proj/*, allow\n"
                               "p, mover, applications, get, admin-proj/*, allow\n")
    moved = application(st.repo.url, name="web", project="admin-proj", dest_namespace="admin-proj-a")

    response = st.api.client.put("/api/v1/applications/web", json={"application": moved}, headers=mover)

    assert response.status_code == 403, response.text
    assert "create" in response.text


def test_proj_10_moving_with_create_and_update_in_both_projects_is_allowed(st: Stack) -> None:
    mover = _user(st, "mover", "p, mover, applications, *, low/*, allow\n"
                               "p, mover, applications, *, admin-proj/*, allow\n")
    moved = application(st.repo.url, name="web", project="admin-proj", dest_namespace="admin-proj-a")
    response = st.api.client.put("/api/v1/applications/web", json={"application": moved}, headers=mover)
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["project"] == "admin-proj"


def _sync_state(st: Stack, name: str) -> dict[str, Any]:
    op_id = st.system.apps.sync(CONTROL_PLANE, name, now=_now(), subject=OPERATOR)
    state: dict[str, Any] = st.system.apps.wait_for_operation(CONTROL_PLANE, name, timeout_seconds=30, op_id=op_id,
                                                              poll_seconds=0.05).to_dict()
    return state


@pytest.mark.parametrize("whitelisted", [False, True])
def test_proj_03_create_namespace_needs_namespace_in_the_cluster_allow_list(st: Stack, whitelisted: bool) -> None:
    """``CreateNamespace=true`` writes a cluster-scoped Namespace: denied (nothing written, not even the
    namespace) unless the project's clusterResourceWhitelist allows ``Namespace``."""
    admin = st.admin()
    spec: dict[str, Any] = {"clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}]} if whitelisted else {}
    assert st.api.client.post("/api/v1/projects", json={"project": project("nsp", **spec)},
                              headers=admin).status_code == 200
    app = application(st.repo.url, name="mkns", project="nsp", dest_namespace="nsp-fresh")
    app["spec"]["syncPolicy"] = {"syncOptions": ["CreateNamespace=true"]}
    assert st.api.client.post("/api/v1/applications", json={"application": app}, headers=admin).status_code == 200
    st.sb.requests.clear()

    state = _sync_state(st, "mkns")

    if whitelisted:
        assert state["phase"] == "Succeeded", state
        assert any("namespaces" in r.path for r in st.sb.requests.writes())
    else:
        assert state["phase"] == "Failed", state
        assert "Namespace" in str(state["violations"]) and "nsp-fresh" in str(state["violations"])
        assert st.sb.requests.writes() == []


APP_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "applications.argoproj.io"},
    "spec": {"group": "argoproj.io", "scope": "Namespaced",
             "names": {"plural": "applications", "singular": "application", "kind": "Application"},
             "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object"}}}]},
}


def test_proj_15_a_child_application_naming_another_project_is_denied(st: Stack) -> None:
    """The cluster knows the Application kind (its CRD is installed), so the only thing in the way is the rule:
    a child may only name its parent's project."""
    with httpx.Client(base_url=st.sb.url, timeout=10) as k8s:
        made = k8s.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=APP_CRD)
        assert made.status_code in (200, 201), made.text
    admin = st.admin()
    parent = application(st.repo.url, name="parent", project="low", dest_namespace="low-a", path="child")
    assert st.api.client.post("/api/v1/applications", json={"application": parent},
                              headers=admin).status_code == 200
    st.sb.requests.clear()

    state = _sync_state(st, "parent")

    assert state["phase"] == "Failed", state
    assert "admin-proj" in str(state["violations"]), state
    assert st.sb.requests.writes() == []
