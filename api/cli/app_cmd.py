"""``syncwarden app``: applications. ``create|get|list|diff|sync|history|rollback|delete|confirm-deletion`` work
in local mode (:mod:`api.cli.app_ops`, :mod:`api.cli.app_sync`): the local database and a kubeconfig context, with
the reconciler running in this process; with ``--server`` (or ``SYNCWARDEN_SERVER``, or after ``syncwarden login``)
they talk to a server instead (:mod:`api.cli.app_remote`), printing the same output (``confirm-deletion`` works
in local mode only).

``app manifests APP.yaml`` renders an Argo CD Application's source the way the reconciler will (same code:
``sync.render``), without a server or a cluster: exit 0 with the objects on stdout, 2 when the app, its
repository, a path or a manifest is invalid (the message names the file and field), 3 when Git timed out.
The CLI runs with the invoking user's own rights, so local and ``file://`` repositories are allowed here
even when the service setting ``sync.allow_file_urls`` is off. ``app manifests NAME`` with a server (and no file
of that name) prints the server's rendering of the stored app instead, Secret values masked — like ``argocd app
manifests NAME``. A file is always rendered offline, even when a login is stored; naming a file together with an
explicit ``--server``/``--auth-token`` is refused (exit 2) rather than silently ignoring one of them.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from api.cli import app_ops, app_remote, app_sync
from api.cli.common import EXIT_INVALID, EXIT_RETRY, fail
from api.cli.remote import AuthTokenOpt, ServerOpt, target
from config import yamlsafe
from config.settings import load_settings
from sync import render
from sync.models import Application, InvalidApplication

__all__ = ["app", "load_application_file", "manifests"]

app = typer.Typer(help="Applications.", no_args_is_help=True)
# with --server (or SYNCWARDEN_SERVER, or after `syncwarden login`) these talk to a server: api.cli.app_remote
app.command("create")(app_remote.server_mode(app_ops.create, app_remote.create))
app.command("get")(app_remote.server_mode(app_ops.get, app_remote.get))
app.command("list")(app_remote.server_mode(app_ops.list_apps, app_remote.list_apps))
app.command("diff")(app_remote.server_mode(app_ops.diff, app_remote.diff))
app.command("sync")(app_remote.server_mode(app_sync.sync, app_remote.sync))
app.command("history")(app_remote.server_mode(app_ops.history, app_remote.history))
app.command("rollback")(app_remote.server_mode(app_ops.rollback, app_remote.rollback))
app.command("delete")(app_remote.server_mode(app_ops.delete, app_remote.delete))
app.command("confirm-deletion")(app_remote.server_mode(app_ops.confirm_deletion, app_remote.confirm_deletion))


class ManifestFormat(str, Enum):
    yaml = "yaml"
    json = "json"


def load_application_file(path: Path) -> Application:
    """Read and validate one Application YAML file; ``ValueError`` names the file and field."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    doc = yamlsafe.load_one(data, source=str(path))
    if not isinstance(doc, dict):
        raise InvalidApplication("", "an Application manifest must be a mapping", source=str(path))
    return Application.from_dict(doc, source=str(path))


@app.command("manifests")
def manifests(
    app_file: Annotated[Path, typer.Argument(
        metavar="APP.yaml|NAME", help="Argo CD Application YAML file; with a server, the name of a stored app.")],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Render this branch, tag or commit instead of targetRevision.")
    ] = None,
    output: Annotated[ManifestFormat, typer.Option("-o", "--output", help="Output format.")] = ManifestFormat.yaml,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """Render an Application's manifests offline (Directory, Kustomize or Helm), or a stored app's on a server."""
    is_file = app_file.is_file()
    if server is not None or auth_token is not None or not is_file:
        remote = target(server, auth_token)
        if remote is not None:
            if is_file:
                fail(f"{app_file} is a local file: `app manifests FILE` renders offline, without a server; drop "
                     "--server/--auth-token, or give the NAME of an app stored on the server")
            app_remote.manifests(remote, app_ref=str(app_file), revision=revision, output=output.value)
            return
    try:
        settings = load_settings()
    except ValueError as exc:
        fail(f"settings: {exc}")
    try:
        application = load_application_file(app_file)
    except ValueError as exc:
        fail(str(exc))
    sync_settings = settings.sync.model_copy(update={"allow_file_urls": True})
    try:
        objects = render.render_application(
            application, revision=revision, settings=sync_settings, cache_dir=settings.data_dir / "cache"
        )
    except render.RenderError as exc:
        fail(f"{app_file}: {exc}", EXIT_RETRY if exc.retryable else EXIT_INVALID)
    except OSError as exc:
        fail(f"{app_file}: cannot use the cache directory ({exc.strerror})", EXIT_RETRY)
    bodies = [m.obj for m in objects]
    if output is ManifestFormat.json:
        sys.stdout.write(json.dumps(bodies, indent=2) + "\n")
    else:
        sys.stdout.write(yamlsafe.dump(bodies, multi=True) if bodies else "")
