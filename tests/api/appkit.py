"""The application routes over a real system for the API tests: the sandbox over HTTP, a real Git repository, a
SQLite (or PostgreSQL) database, wired by :func:`api.wiring.build_services` and served by
:meth:`api.serve.Server.build_app` through ``TestClient``. The reconciler is driven by the test (``drive``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

import sandbox
from api.serve import ServeOptions, Server
from api.wiring import Services as System
from api.wiring import build_services
from sync import kube
from sync.cluster_registry import ClusterRegistry
from tests.api.apihelpers import FAST_HASHER, Clock, settings_for
from tests.sync.gitfixtures import GitRepo

SECRET_VALUE = "hunter2-very-secret"
WEBHOOK_SECRET = "webhook-secret"
NAMESPACES = ("web-guestbook", "web-wide", "other-tool")


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"


def secret(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  password: '{value}'\n"


CLUSTER_ROLE = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: wide\nrules: []\n"


def project(name: str, roles: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceRepos": ["*"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": f"{name}-*"}],
        "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
        "roles": roles or [],
        **spec,
    }
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name}, "spec": body}


def role(project_name: str, name: str, *actions: str) -> dict[str, Any]:
    return {"name": name, "policies": [f"p, proj:{project_name}:{name}, applications, {a}, {project_name}/*, allow"
                                       for a in actions]}


def application(repo: GitRepo, name: str, *, project_name: str = "web", path: str = "guestbook",
                automated: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": project_name,
        "source": {"repoURL": repo.url, "path": path, "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": f"{project_name}-{name}"},
    }
    if automated:
        spec["syncPolicy"] = {"automated": {"prune": True}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "syncwarden"}, "spec": spec}


@dataclass
class AppKit:
    client: TestClient
    clock: Clock
    system: System
    repo: GitRepo
    admin_password: str
    tokens: dict[str, str] = field(default_factory=dict)

    def login(self) -> dict[str, str]:
        response = self.client.post("/api/v1/session", json={"username": "admin", "password": self.admin_password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def token(self, project_name: str, role_name: str, admin: dict[str, str]) -> dict[str, str]:
        response = self.client.post(f"/api/v1/projects/{project_name}/roles/{role_name}/token", headers=admin,
                                    json={})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def drive(self, passes: int = 40) -> None:
        """Reconcile passes (3 s apart on the test clock) until no operation is in progress, plus one."""
        for _ in range(passes):
            self.clock.advance(seconds=3)
            self.system.reconciler.run_once(self.clock.now)
            if not self.system.sync_store.operations.in_progress():
                self.system.reconciler.run_once(self.clock.now)
                return
        raise AssertionError("operation still in progress")


@contextmanager
def app_kit(tmp_path: Path, database_url: str | None = None) -> Iterator[AppKit]:
    repo = GitRepo(tmp_path / "repo")
    repo.write({"guestbook/cm.yaml": configmap("guestbook", "v1"), "guestbook/secret.yaml": secret("creds", SECRET_VALUE),
                "wide/role.yaml": CLUSTER_ROLE, "tool/cm.yaml": configmap("tool", "1")})
    repo.commit("initial")
    clock = Clock()
    settings = settings_for(tmp_path, database_url or f"sqlite:///{tmp_path / 'apps.db'}")
    with sandbox.start(port=0, tick_interval=0.05) as sb:
        kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
        system = build_services(settings, kubeconfig=[kubeconfig], context="sandbox", client="server",
                                allow_file_urls=True, policy_refresh_seconds=0.0, clock=clock)
        cluster = kube.connect(ClusterRegistry.load([kubeconfig], environ={}).get("sandbox"), timeout_seconds=10)
        for namespace in NAMESPACES:
            cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        cluster.close()
        try:
            server = Server(settings, ServeOptions(examples=False), clock=clock)
            server.system = system
            announced: list[str] = []
            app = server.build_app(system, clock=clock, hasher=FAST_HASHER, announce=announced.append,
                                   policy_refresh_seconds=0.0, webhook_secrets={"github": WEBHOOK_SECRET},
                                   webhook_coalesce_seconds=0.0)
            with TestClient(app) as client:
                password = announced[0].removeprefix("initial admin password: ")
                yield AppKit(client, clock, system, repo, password)
        finally:
            system.close()

