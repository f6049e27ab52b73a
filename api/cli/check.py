"""``syncwarden check``: the admission-style check for pipelines, offline, on the same code as the server.

Exit 0 when every app is allowed, 1 when any is denied, 2 on invalid input (the message names the file and
field), 3 when it could not decide (e.g. the app's repository could not be fetched).

With ``--server`` (``SYNCWARDEN_SERVER``, ``syncwarden login``) the server decides (``POST
/api/v1/admission/check``, :mod:`api.cli.check_remote`) and the output is the same; there ``--project`` may also
name a project stored on the server instead of a file.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from api import check as service
from api import report
from api.cli import check_remote
from api.cli.common import EXIT_DENIED, EXIT_OK, EXIT_RETRY, fail, parse_time
from api.cli.remote import AuthTokenOpt, ServerOpt, target
from config.settings import load_settings
from sync import render
from sync.application import Application
from sync.models import Manifest

__all__ = ["check"]


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"


class SyncKind(str, Enum):
    auto = "auto"
    manual = "manual"


def check(
    project: Annotated[Path, typer.Option("--project", help="AppProject YAML file, or a directory of them.")],
    app: Annotated[list[Path], typer.Option("--app", help="Application YAML file (repeatable).")],
    manifests: Annotated[
        list[Path] | None,
        typer.Option("--manifests", help="Manifest files or directories; default: render each app's source."),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="Evaluate at this RFC 3339 time (default: now).")] = None,
    sync: Annotated[SyncKind, typer.Option("--sync", help="Kind of sync the windows are checked for.")] = SyncKind.auto,
    api_resources: Annotated[
        Path | None,
        typer.Option("--api-resources", help="Output of `kubectl api-resources` for the target cluster."),
    ] = None,
    output: Annotated[CheckFormat, typer.Option("-o", "--output", help="Output format.")] = CheckFormat.text,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """May these apps put these manifests into their destinations now? Exit 0 allowed, 1 denied, 2 invalid."""
    when = parse_time(at) if at else datetime.now(UTC)
    remote = target(server, auth_token)
    if remote is not None and api_resources is not None:
        fail("--api-resources describes a cluster to the offline check; the server knows its clusters (drop --server)")
    try:
        stored_name = str(project) if remote is not None and not project.exists() else None
        projects = service.load_projects(project) if stored_name is None else None
        apps = service.load_apps(app)
        objects = service.load_manifests(manifests) if manifests else None
        render = _renderer() if objects is None else None
        if remote is not None:
            result = check_remote.run_check(remote, project_name=stored_name, projects=projects, apps=apps,
                                            manifests=objects, render=render, at=when, sync=sync.value)
        else:
            assert projects is not None
            result = service.run_check(projects=projects, apps=apps, manifests=objects, at=when, sync=sync.value,
                                       api_resources=api_resources, render=render)
    except service.CheckInputError as exc:
        fail(str(exc))
    renderers = {
        CheckFormat.text: report.render_text,
        CheckFormat.json: report.render_json,
        CheckFormat.sarif: report.render_sarif,
        CheckFormat.junit: report.render_junit,
    }
    sys.stdout.write(renderers[output](result))
    raise typer.Exit(EXIT_OK if result.allowed else EXIT_DENIED)


def _renderer() -> service.Renderer:
    """Render each app's own source (Git, then directory/Kustomize/Helm) with the local settings and cache.

    A render that may succeed later (a Git timeout) exits 3; any other render failure exits 2.
    """
    try:
        settings = load_settings()
    except ValueError as exc:
        fail(f"settings: {exc}")

    def render_one(app: Application, where: str) -> list[Manifest]:
        try:
            return render.render_application(
                app, revision=None, settings=settings.sync, cache_dir=settings.data_dir / "cache"
            )
        except render.RenderError as exc:
            if exc.retryable:
                fail(f"{where}: {exc}", EXIT_RETRY)
            raise service.CheckInputError(f"{where}: {exc}") from None

    return render_one
