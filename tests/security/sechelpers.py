"""What the security tests share: the HTTP API (``TestClient(create_app(...))``) wired to a real running system
(``api.wiring.build_services``) over the sandbox over HTTP, a real Git repository and the ``database_url``
database, plus small helpers to create projects, roles and users through the API itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sandbox
from api.wiring import Services as System
from api.wiring import build_services
from tests.api.apihelpers import Harness, harness, settings_for
from tests.sync.gitfixtures import GitRepo

SERVER = "https://kubernetes.default.svc"
CONTROL_PLANE = "syncwarden"
#: the local operator bound to role:admin (as the CLI's local mode does), for syncs started below the API
OPERATOR = "local:operator"


@dataclass
class Stack:
    """The API client, the system behind it, the sandbox and a Git repository."""

    api: Harness
    system: System
    sb: sandbox.Sandbox
    repo: GitRepo

    def admin(self) -> dict[str, str]:
        return self.api.admin()


@contextmanager
def stack(tmp_path: Path, database_url: str, files: dict[str, str], *,
          sync: dict[str, Any] | None = None) -> Iterator[Stack]:
    repo = GitRepo(tmp_path / "repo")
    repo.write(files)
    repo.commit("initial")
    with sandbox.start(port=0, tick_interval=0.05) as sb:
        kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
        settings = settings_for(tmp_path, database_url)
        if sync:
            merged = type(settings.sync).model_validate({**settings.sync.model_dump(), **sync})
            settings = settings.model_copy(update={"sync": merged})
        system = build_services(settings, kubeconfig=[kubeconfig], allow_file_urls=True, environ={},
                                admin_subjects=[OPERATOR],
                                policy_refresh_seconds=0.0, sleep=lambda s: None)
        try:
            with harness(tmp_path, database_url, store=system.policy_store, policy=system.policy,
                         system=system) as api:
                yield Stack(api, system, sb, repo)
        finally:
            system.close()


def project(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceRepos": ["*"],
        "destinations": [{"server": SERVER, "namespace": f"{name}-*"}],
        "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
    }
    body.update(spec)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": name, "namespace": CONTROL_PLANE}, "spec": body}


def application(repo_url: str, *, name: str, project: str, dest_namespace: str, path: str = "app",
                namespace: str = CONTROL_PLANE) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"project": project,
                     "source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
                     "destination": {"server": SERVER, "namespace": dest_namespace}}}


def role_token(st: Stack, manifest: dict[str, Any], role: str, policies: list[str]) -> dict[str, str]:
    """Give the project ``manifest`` (as created) a role with ``policies`` through the API, mint a token for
    it, and return the bearer header."""
    admin = st.admin()
    name = manifest["metadata"]["name"]
    roles = [r for r in manifest["spec"].get("roles", []) if r.get("name") != role]
    manifest["spec"]["roles"] = [*roles, {"name": role, "policies": policies}]
    put = st.api.client.put(f"/api/v1/projects/{name}", json={"project": manifest}, headers=admin)
    assert put.status_code == 200, put.text
    minted = st.api.client.post(f"/api/v1/projects/{name}/roles/{role}/token", json={}, headers=admin)
    assert minted.status_code == 200, minted.text
    return {"Authorization": f"Bearer {minted.json()['token']}"}
