"""``syncwarden proj``: projects (create/get/list/update/delete), roles and their tokens, sync windows.

With ``--server`` (or ``SYNCWARDEN_SERVER``, or after ``syncwarden login``) every command talks to that server
instead (:mod:`api.cli.proj_remote`) and prints the same output (exit 1 when the server denies). Otherwise it
works on the local database (``SYNCWARDEN_DATABASE_URL``, default SQLite in the data directory) through
``policy.store``; every change is audited in the same transaction. ``-f FILE`` takes an Argo CD AppProject
YAML unchanged; ``get -o yaml`` gives it back exactly. Exit codes: 0 ok, 2 invalid input, unknown name or
version conflict, 3 database or audit log unavailable.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import api.cli.proj_remote as proj_remote
import api.cli.proj_windows as proj_windows  # a plain "from api.cli import" confuses mypy in this import cycle
from api.cli.common import Output, console, emit, err_console, fail
from api.cli.local_store import cli_context, local_store
from api.cli.remote import AuthTokenOpt, ServerOpt, target
from config import yamlsafe
from policy import tokens
from policy.errors import ConflictError, InvalidProject
from policy.store import NotFound, StoredProject

app = typer.Typer(help="Projects, project roles and tokens, sync windows.", no_args_is_help=True)
app.command(name="windows")(proj_windows.windows)
role = typer.Typer(help="Project roles: create, list and revoke their API tokens.", no_args_is_help=True)
app.add_typer(role, name="role")

FileOpt = Annotated[Path, typer.Option("-f", "--file", help="Argo CD AppProject YAML file.")]
OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]
VersionOpt = Annotated[
    int | None, typer.Option("--expected-version", help="Fail unless the stored project is at this version.")
]


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}")
    try:
        manifest = yamlsafe.load_one(raw, source=str(path))
    except yamlsafe.YamlError as exc:
        fail(str(exc))
    if not isinstance(manifest, dict):
        fail(f"{path}: an AppProject must be a mapping")
    return manifest


def _print_project(stored: StoredProject, output: Output) -> None:
    if output is Output.table:
        _table([stored])
    else:
        emit(stored.manifest, output)


def _table(projects: list[StoredProject]) -> None:
    table = Table("NAME", "VERSION", "DESCRIPTION", "ROLES", "UPDATED", "BY", box=None)
    for p in projects:
        spec = p.manifest.get("spec") or {}
        roles = ",".join(str(r.get("name", "")) for r in spec.get("roles") or [] if isinstance(r, dict))
        table.add_row(
            p.name, str(p.version), str(spec.get("description", "")), roles, p.updated_at.isoformat(), p.updated_by
        )
    console().print(table)


@app.command()
def create(
    file: FileOpt, output: OutputOpt = Output.table, server: ServerOpt = None, auth_token: AuthTokenOpt = None
) -> None:
    """Create a project from an AppProject YAML file."""
    manifest = _read_manifest(file)
    remote = target(server, auth_token)
    if remote is not None:
        _print_project(proj_remote.create(remote, manifest), output)
        return
    with local_store() as store:
        try:
            stored = store.projects.create(manifest, ctx=cli_context(), now=datetime.now(UTC), source=str(file))
        except (InvalidProject, ConflictError) as exc:
            fail(str(exc))
    _print_project(stored, output)


@app.command()
def get(name: str, output: OutputOpt = Output.table, server: ServerOpt = None, auth_token: AuthTokenOpt = None) -> None:
    """Show one project (``-o yaml`` gives the AppProject as stored)."""
    remote = target(server, auth_token)
    if remote is not None:
        _print_project(proj_remote.get(remote, name), output)
        return
    with local_store() as store:
        try:
            stored = store.projects.get(name)
        except NotFound as exc:
            fail(str(exc))
    _print_project(stored, output)


@app.command(name="list")
def list_(output: OutputOpt = Output.table, server: ServerOpt = None, auth_token: AuthTokenOpt = None) -> None:
    """List projects."""
    remote = target(server, auth_token)
    if remote is not None:
        projects = proj_remote.list_projects(remote)
    else:
        with local_store() as store:
            projects = store.projects.list()
    if output is Output.table:
        _table(projects)
    else:
        emit([p.manifest for p in projects], output)


@app.command()
def update(
    file: FileOpt,
    expected_version: VersionOpt = None,
    output: OutputOpt = Output.table,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """Replace a project with the AppProject in FILE (roles it drops lose their tokens)."""
    manifest = _read_manifest(file)
    remote = target(server, auth_token)
    if remote is not None:
        _print_project(proj_remote.update(remote, manifest, expected_version=expected_version), output)
        return
    with local_store() as store:
        try:
            stored = store.projects.update(
                manifest, ctx=cli_context(), now=datetime.now(UTC), expected_version=expected_version, source=str(file)
            )
        except (InvalidProject, ConflictError, NotFound) as exc:
            fail(str(exc))
    _print_project(stored, output)


@app.command()
def delete(
    name: str, expected_version: VersionOpt = None, server: ServerOpt = None, auth_token: AuthTokenOpt = None
) -> None:
    """Delete a project and every token of its roles."""
    remote = target(server, auth_token)
    if remote is not None:
        proj_remote.delete(remote, name, expected_version=expected_version)
    else:
        with local_store() as store:
            try:
                store.projects.delete(
                    name, ctx=cli_context(), now=datetime.now(UTC), expected_version=expected_version
                )
            except (ConflictError, NotFound) as exc:
                fail(str(exc))
    err_console().print(f"project {name!r} deleted", markup=False)


# --- role tokens ---------------------------------------------------------------------------------------


@role.command(name="create-token")
def create_token(
    project: str,
    role_name: Annotated[str, typer.Argument(metavar="ROLE")],
    expires_in: Annotated[
        str | None, typer.Option("-e", "--expires-in", help="Lifetime, e.g. 1h or 7d (default: no expiry).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the token is for.")] = "",
    output: OutputOpt = Output.table,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """Mint a token for proj:PROJECT:ROLE. The token is printed once and never stored."""
    lifetime = None
    if expires_in is not None:
        try:
            lifetime = tokens.parse_duration(expires_in)
        except ValueError as exc:
            fail(f"--expires-in: {exc}")
    remote = target(server, auth_token)
    if remote is not None:
        issued = proj_remote.create_token(remote, project, role_name, lifetime=lifetime, description=description)
    else:
        with local_store() as store:
            try:
                issued = store.tokens.create(
                    project,
                    role_name,
                    ctx=cli_context(),
                    now=datetime.now(UTC),
                    expires_in=lifetime,
                    description=description,
                )
            except NotFound as exc:
                fail(str(exc))
    info = issued.info.to_dict(now=datetime.now(UTC))
    if output is Output.table:
        sys.stdout.write(issued.token + "\n")
        err_console().print(f"token id {issued.info.id}; store it now, it is not shown again", markup=False)
    else:
        emit({"token": issued.token, **info}, output)


@role.command(name="list-tokens")
def list_tokens(
    project: str,
    role_name: Annotated[str, typer.Argument(metavar="ROLE")],
    output: OutputOpt = Output.table,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """List the tokens of a role (ids and state, never the tokens)."""
    now = datetime.now(UTC)
    remote = target(server, auth_token)
    if remote is not None:
        infos = proj_remote.list_tokens(remote, project, role_name)
    else:
        with local_store() as store:
            try:
                store.projects.get(project)
            except NotFound as exc:
                fail(str(exc))
            infos = store.tokens.list(project, role_name)
    if output is not Output.table:
        emit([i.to_dict(now=now) for i in infos], output)
        return
    table = Table("ID", "ISSUED", "EXPIRES", "STATE", "LAST USED", "BY", "DESCRIPTION", box=None)
    for i in infos:
        table.add_row(
            i.id,
            i.issued_at.isoformat(),
            i.expires_at.isoformat() if i.expires_at else "never",
            i.state(now=now),
            i.last_used_at.isoformat() if i.last_used_at else "-",
            i.issued_by,
            i.description,
        )
    console().print(table)


@role.command(name="revoke-token")
def revoke_token(
    project: str,
    role_name: Annotated[str, typer.Argument(metavar="ROLE")],
    token_id: Annotated[str | None, typer.Argument(metavar="TOKEN_ID", help="Id from list-tokens.")] = None,
    expired: Annotated[bool, typer.Option("--expired", help="Revoke every expired token of the project.")] = False,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """Revoke one token by id (effective on its next use), or with --expired every expired token."""
    if (token_id is None) == (not expired):
        fail("give a TOKEN_ID or --expired (not both)")
    now = datetime.now(UTC)
    remote = target(server, auth_token)
    if remote is not None:
        if expired:
            count = proj_remote.revoke_expired(remote, project, now=now)
            err_console().print(f"{count} expired token(s) revoked", markup=False)
            return
        assert token_id is not None
        done = proj_remote.revoke_token(remote, project, role_name, token_id)
        _revoked_message(project, role_name, token_id, done)
        return
    with local_store() as store:
        if expired:
            count = store.tokens.revoke_expired(ctx=cli_context(), now=now, project=project)
            err_console().print(f"{count} expired token(s) revoked", markup=False)
            return
        assert token_id is not None
        revoked = store.tokens.revoke(project, role_name, token_id, ctx=cli_context(), now=now)
    _revoked_message(project, role_name, token_id, revoked is not None)


def _revoked_message(project: str, role_name: str, token_id: str, revoked: bool) -> None:
    if revoked:
        err_console().print(f"token {token_id} revoked", markup=False)
    else:
        err_console().print(f"no active token {token_id!r} in {project}/{role_name}; nothing revoked", markup=False)
