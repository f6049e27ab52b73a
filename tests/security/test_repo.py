"""Repository rendering, black box through ``sync.render.Renderer`` on real Git repositories
(security-cases A.2 REPO-10, indirect sources).

Rows covered here: REPO-10 — a Helm chart whose ``Chart.yaml`` declares a dependency from a repository nobody
listed is refused with an error naming the dependency (nothing is downloaded, and the subchart's objects are not
silently dropped — a pruning sync would delete them); a vendored dependency under ``charts/`` renders; a
Kustomize remote base and a Kustomize ``helmCharts`` generator (which would fetch a chart) are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.settings import SyncSettings
from sync.application import Application
from sync.render import Renderer, RenderError
from tests.sync.gitfixtures import GitRepo

CHART = "apiVersion: v2\nname: web\nversion: 0.1.0\n"
DEPENDENCY = "dependencies:\n- name: evil\n  version: 1.0.0\n  repository: https://charts.evil.example/x\n"
TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: main}\n"
SUBCHART = "apiVersion: v2\nname: evil\nversion: 1.0.0\n"
SUB_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-subchart}\n"


def _app(repo: GitRepo, path: str, source: dict[str, Any]) -> Application:
    return Application.from_dict({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "web", "namespace": "syncwarden"},
        "spec": {"project": "default",
                 "source": {"repoURL": repo.url, "path": path, "targetRevision": "main", **source},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}}})


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "repo")
    r.write({
        "missing/Chart.yaml": CHART + DEPENDENCY, "missing/templates/cm.yaml": TEMPLATE,
        "vendored/Chart.yaml": CHART + DEPENDENCY, "vendored/templates/cm.yaml": TEMPLATE,
        "vendored/charts/evil/Chart.yaml": SUBCHART, "vendored/charts/evil/templates/cm.yaml": SUB_TEMPLATE,
        "kremote/kustomization.yaml": "resources:\n- https://github.com/evil/x//base?ref=main\n",
        "khelm/kustomization.yaml": "helmCharts:\n- name: evil\n  repo: https://charts.evil.example\n"
                                    "  version: 1.0.0\n",
    })
    r.commit("initial")
    return r


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    return Renderer.create(settings=SyncSettings(allow_file_urls=True), cache_dir=tmp_path / "cache")


def test_repo_10_undeclared_chart_dependency_is_refused_not_dropped(repo: GitRepo, renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"'evil'.*missing in the charts/ directory") as info:
        renderer.render(_app(repo, "missing", {"helm": {}}))
    assert "never downloaded" in str(info.value)


def test_repo_10_a_vendored_chart_dependency_renders(repo: GitRepo, renderer: Renderer) -> None:
    rendered = renderer.render(_app(repo, "vendored", {"helm": {}}))
    assert sorted(m.name for m in rendered.manifests) == ["from-subchart", "main"]


@pytest.mark.parametrize(("path", "why"), [("kremote", "remote kustomize base"), ("khelm", "enable-helm")])
def test_repo_10_kustomize_fetches_are_refused(repo: GitRepo, renderer: Renderer, path: str, why: str) -> None:
    with pytest.raises(RenderError, match=why):
        renderer.render(_app(repo, path, {}))
