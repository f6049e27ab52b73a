"""``syncwarden app manifests APP.yaml [--revision R] [-o yaml|json]`` against real Git repositories.

Covers: YAML and JSON output of a directory app and a Helm app with per-environment values, ``--revision``,
exit 2 with a message naming the file and field for an invalid Application, a hostile repo URL, a path
escape and an unknown revision; local repositories allowed for the CLI; no traceback on any of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from api.cli import app_cmd
from config import yamlsafe
from tests.sync.gitfixtures import HELM, PLAIN, GitRepo, application, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return make_repo(tmp_path / "origin", PLAIN, HELM)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SYNCWARDEN_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def write_app(tmp_path: Path, data: dict[str, Any], name: str = "app.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yamlsafe.dump(data))
    return path


def run(env: dict[str, str], *args: str) -> Any:
    root = typer.Typer()  # mounted the way api.cli mounts it: ``syncwarden app manifests``
    root.add_typer(app_cmd.app, name="app")
    return CliRunner().invoke(root, ["app", "manifests", *args], env=env)


def test_yaml_and_json_output(tmp_path: Path, repo: GitRepo, env: dict[str, str]) -> None:
    path = write_app(tmp_path, application(str(repo.path), "apps/plain"))
    result = run(env, str(path))
    assert result.exit_code == 0, result.output
    docs = [d.data for d in yamlsafe.load_all(result.stdout, source="out")]
    assert sorted(d["kind"] for d in docs) == ["Deployment", "Service"]
    result = run(env, str(path), "-o", "json")
    assert result.exit_code == 0
    assert sorted(d["metadata"]["name"] for d in json.loads(result.stdout)) == ["web", "web"]


def test_helm_app_with_prd_values(tmp_path: Path, repo: GitRepo, env: dict[str, str]) -> None:
    data = application(repo.url, "charts/web", namespace="shop")
    data["spec"]["source"]["helm"] = {"valueFiles": ["values-prd.yaml"]}  # type: ignore[index]
    result = run(env, str(write_app(tmp_path, data)), "-o", "json")
    assert result.exit_code == 0, result.output
    deploy = next(d for d in json.loads(result.stdout) if d["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 4 and deploy["metadata"]["namespace"] == "shop"


def test_revision_option(tmp_path: Path, repo: GitRepo, env: dict[str, str]) -> None:
    old = repo.git("rev-parse", "HEAD")
    repo.write({"apps/plain/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n"})
    repo.commit("extra")
    path = write_app(tmp_path, application(repo.url, "apps/plain"))
    newest = json.loads(run(env, str(path), "-o", "json").stdout)
    pinned = json.loads(run(env, str(path), "--revision", old, "-o", "json").stdout)
    assert len(newest) == 3 and len(pinned) == 2


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        pytest.param(lambda d: d["spec"]["source"].pop("repoURL"), "spec.source.repoURL: is required",
                     id="missing-field"),
        pytest.param(lambda d: d["spec"]["source"].update(repoURL="ext::sh -c touch% /tmp/pwned"),
                     "spec.source.repoURL", id="ext-url"),
        pytest.param(lambda d: d["spec"]["source"].update(path="../../etc"), "outside the repository",
                     id="path-escape"),
        pytest.param(lambda d: d["spec"]["source"].update(targetRevision="no-such-branch"),
                     "unable to resolve 'no-such-branch'", id="unknown-revision"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, repo: GitRepo, env: dict[str, str],
                                                 mutate: Any, words: str) -> None:
    data = application(repo.url, "apps/plain")
    mutate(data)
    path = write_app(tmp_path, data)
    result = run(env, str(path))
    assert result.exit_code == 2
    assert words in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_unreadable_and_non_yaml_files(tmp_path: Path, env: dict[str, str]) -> None:
    result = run(env, str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "cannot read" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: !!python/object/apply:os.system ['true']\n")
    result = run(env, str(bad))
    assert result.exit_code == 2 and "bad.yaml" in result.stderr
