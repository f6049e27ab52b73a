"""What ``syncwarden serve`` loads on first start: the example project and app of ``config/examples/``, and for
``--sandbox`` the Git repository they sync from.

Who calls it: :mod:`api.serve`. First start means: the example project (``web``) does not exist yet — a later
start, or a replica joining an installation, leaves the stored state alone.

With ``--sandbox`` the command prepares ``<data dir>/demo-repo``, a local Git repository holding
``config/examples/manifests/`` (``guestbook`` and ``escape``) in one commit on ``main``; the example app's
``repoURL`` is rewritten to that repository's ``file://`` URL (the project's ``sourceRepos`` gains it, and file
URLs are enabled for this process). A second app, ``escape``, points at the manifests that leave the project's
namespaces: it never syncs by itself (no automated policy), so ``POST .../escape/sync`` shows a denied sync.
The repository is created with the ``git`` command (no GitPython here: only ``sync.source`` imports it).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from api.wiring import Services as System
from config import yamlsafe
from policy import audit
from policy.errors import ConflictError
from sync.store import AppExists

__all__ = ["EXAMPLE_PROJECT", "DemoError", "create_namespaces", "load_examples", "prepare_demo_repo"]

EXAMPLE_PROJECT = "web"

_GIT_ENV = {
    "HOME": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "syncwarden",
    "GIT_AUTHOR_EMAIL": "syncwarden@localhost",
    "GIT_COMMITTER_NAME": "syncwarden",
    "GIT_COMMITTER_EMAIL": "syncwarden@localhost",
}


class DemoError(RuntimeError):
    """The demo repository could not be prepared (no ``git`` on PATH, a failing command)."""


def _examples() -> Any:
    return resources.files("config") / "examples"


def _git(repo: Path, *args: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_GIT_ENV}
    try:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise DemoError("the 'git' command is not on PATH; it is needed to prepare the demo repository") from None
    except subprocess.CalledProcessError as exc:
        raise DemoError(f"git {args[0]} failed in {repo}: {exc.stderr.strip()[:300]}") from None


def prepare_demo_repo(data_dir: Path) -> str:
    """``<data_dir>/demo-repo`` with the example manifests committed on ``main`` (kept when it exists);
    returns its ``file://`` URL."""
    repo = data_dir / "demo-repo"
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        source = _examples() / "manifests"
        for entry in source.iterdir():
            if entry.is_dir():
                target = repo / entry.name
                target.mkdir(exist_ok=True)
                for item in entry.iterdir():
                    if item.is_file():
                        (target / item.name).write_bytes(item.read_bytes())
        try:
            _git(repo, "init", "-q", "-b", "main")
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", "syncwarden example manifests")
        except DemoError:
            shutil.rmtree(repo, ignore_errors=True)
            raise
    return f"file://{repo.resolve()}"


def _load(name: str) -> dict[str, Any]:
    path = _examples() / name
    doc = yamlsafe.load_one(path.read_bytes(), source=f"config/examples/{name}")
    if not isinstance(doc, dict):
        raise DemoError(f"config/examples/{name}: not a mapping")
    return doc


def _escape_app(app: dict[str, Any]) -> dict[str, Any]:
    escape = copy.deepcopy(app)
    escape["metadata"]["name"] = "escape"
    escape["spec"]["source"]["path"] = "escape"
    escape["spec"]["destination"]["namespace"] = "web-escape"
    escape["spec"].pop("syncPolicy", None)
    return escape


def create_namespaces(system: System) -> None:
    """The sandbox demo's namespaces (the example project may not create Namespaces: its cluster-scoped kinds
    are none), created the way an administrator would with ``kubectl create namespace``."""
    for stored in system.apps.list(project=EXAMPLE_PROJECT):
        app = stored.application()
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.destination.namespace}}
        system.cluster_for(app).apply(namespace, field_manager="syncwarden-demo")


def load_examples(system: System, *, now: datetime, repo_url: str | None = None) -> list[str]:
    """Store the example project and app(s) on first start; returns what was loaded (empty on later starts)."""
    store = system.policy_store
    if store.projects.find(EXAMPLE_PROJECT) is not None:
        return []
    project, app = _load("project.yaml"), _load("app.yaml")
    apps = [app]
    if repo_url is not None:
        project["spec"]["sourceRepos"] = [*project["spec"].get("sourceRepos", []), repo_url]
        app["spec"]["source"]["repoURL"] = repo_url
        apps.append(_escape_app(app))
    ctx = audit.AuditContext(subject="syncwarden", client="serve")
    loaded: list[str] = []
    with contextlib.suppress(ConflictError):  # another replica loaded them first
        store.projects.create(project, ctx=ctx, now=now, source="config/examples/project.yaml")
        loaded.append(f"project {EXAMPLE_PROJECT}")
    system.policy.invalidate()
    for manifest in apps:
        with contextlib.suppress(AppExists):
            stored = system.apps.create(manifest, now=now, source="config/examples/app.yaml")
            system.record(ctx, action="app.create", result="ok", app=stored.application(), at=now,
                          details={"source": "config/examples"})
            loaded.append(f"app {stored.name}")
    return loaded
