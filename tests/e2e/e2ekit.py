"""What the end-to-end tests share: the sandbox over HTTP with its kubeconfig, a local database, real Git
repositories, the real CLI (``typer.testing.CliRunner`` on ``api.cli.cli``), and an independent client of
the sandbox (the official ``kubernetes`` client through ``sync.kube``) to check what the cluster holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import sandbox
from api.cli import cli
from config import yamlsafe
from sync import kube
from sync.cluster import NotFound
from sync.cluster_registry import ClusterRegistry
from sync.models import ResourceKey
from tests.sync.gitfixtures import GitRepo

runner = CliRunner()


@dataclass
class E2E:
    sb: sandbox.Sandbox
    kubeconfig: Path
    env: dict[str, str | None]
    tmp: Path
    cluster: kube.KubeCluster

    def app_cmd(self, *args: str) -> tuple[int, str, str]:
        """An ``app`` command with the sandbox's kubeconfig (and the short tick interval where it applies)."""
        ticking = args[0] in ("sync", "get", "rollback", "delete")
        extra = ["--kubeconfig", str(self.kubeconfig)] + (["--tick-interval", "0.05"] if ticking else [])
        result = runner.invoke(cli, ["app", *args, *extra], env=self.env)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, result.stdout, result.stderr

    def plain(self, *args: str) -> tuple[int, str, str]:
        """Any command without kubeconfig options (``proj``, ``audit``)."""
        result = runner.invoke(cli, list(args), env=self.env)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, result.stdout, result.stderr

    def write(self, name: str, data: Any) -> str:
        path = self.tmp / name
        path.write_text(yamlsafe.dump(data))
        return str(path)

    def live(self, kind: str, name: str, namespace: str = "", group: str = "") -> dict[str, Any] | None:
        try:
            return self.cluster.get(ResourceKey(group, kind, namespace, name))
        except NotFound:
            return None

    def writes(self) -> list[tuple[str, str]]:
        return [(r.verb, r.path) for r in self.sb.requests.writes()]

    def audit(self, *filters: str) -> list[dict[str, Any]]:
        code, out, err = self.plain("audit", "query", "--limit", "1000", *filters, "-o", "json")
        assert code == 0, err
        records: list[dict[str, Any]] = json.loads(out)["records"]
        return records


def e2e(tmp_path: Path, database_url: str | None = None,
        timing: sandbox.ControllerTiming | None = None) -> Iterator[E2E]:
    with sandbox.start(port=0, tick_interval=0.05, timing=timing) as sb:
        kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
        cluster = kube.connect(ClusterRegistry.load([kubeconfig], environ={}).get("sandbox"), timeout_seconds=10)
        env: dict[str, str | None] = {
            "SYNCWARDEN_DATA_DIR": str(tmp_path / "data"),
            "SYNCWARDEN_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'syncwarden.db'}",
            "SYNCWARDEN_SIGNING_KEY": None,
            "SYNCWARDEN_CONFIG": None,
            "KUBECONFIG": None,
        }
        try:
            yield E2E(sb=sb, kubeconfig=kubeconfig, env=env, tmp=tmp_path, cluster=cluster)
        finally:
            cluster.close()


def application(repo: GitRepo, path: str, *, name: str, namespace: str = "demo", project: str = "default",
                source: dict[str, Any] | None = None, sync_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": project,
        "source": {"repoURL": repo.url, "path": path, "targetRevision": "main", **(source or {})},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
    }
    if sync_policy is not None:
        spec["syncPolicy"] = sync_policy
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "syncwarden"}, "spec": spec}


def project(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
    }
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": name, "namespace": "syncwarden"}, "spec": {**base, **spec}}
