"""``syncwarden app create|list|get|diff|manifests|sync|history|rollback|delete`` in server mode, over
``/api/v1/applications`` (``confirm-deletion`` is refused there: it works in local mode only).

Who calls: :mod:`api.cli.app_cmd` registers each local command through :func:`server_mode`, which adds
``--server``/``--auth-token`` to it and, when :func:`api.cli.remote.target` picks a server, runs the function of
this module instead. Output follows local mode: the same tables and views (:mod:`api.cli.app_ops`), ``-o
json|yaml``; ``sync`` and ``rollback`` show the operation live (:class:`api.cli.app_sync.Progress`) by polling the
app until the operation finishes (or ``--async`` returns its id at once). The local-only options (kubeconfig,
context, tick interval) are ignored: the server owns the clusters and the reconciler.

``create -f APP.yaml`` checks the file here first (the same check as local mode: exit 2 naming the file and
field), then posts it; the server's ``X-Syncwarden-Outcome`` header says created, updated or unchanged, and a
refusal names the file. ``diff`` prints the server's comparison exactly as local mode prints its own (Secret
values arrive masked). ``manifests NAME`` prints the server's rendering of a stored app (Secret values masked).

Exit codes: 0 ok (an operation that Succeeded), 1 denied or an operation that did not succeed, 2 bad input or
unknown app, 3 server unavailable or the operation still running at ``--timeout``.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from api.app_schemas import CREATE_OUTCOMES, OUTCOME_HEADER
from api.cli import app_ops
from api.cli.app_sync import Progress, parse_resource, progress_mode
from api.cli.common import EXIT_DENIED, EXIT_OK, EXIT_RETRY, Output, console, emit, err_console, fail
from api.cli.remote import AuthTokenOpt, Remote, ServerOpt, connect, target
from api.client import Client, ClientError, Params, path
from config import yamlsafe
from sync.operation import OperationState

__all__ = ["confirm_deletion", "create", "delete", "diff", "get", "history", "list_apps", "manifests", "rollback",
           "server_mode", "sync"]

_APPS = "api/v1/applications"
#: seconds between polls of a running operation (the server's reconciler drives it meanwhile)
POLL_SECONDS = 0.5
_DONE = {"Succeeded", "Failed", "Error"}


def server_mode(local: Callable[..., None], remote: Callable[..., None]) -> Callable[..., None]:
    """``local`` with ``--server`` and ``--auth-token`` added; in server mode ``remote(target, **options)`` runs."""
    hints = typing.get_type_hints(local, include_extras=True)
    params = [p.replace(annotation=hints.get(p.name, p.annotation))
              for p in inspect.signature(local).parameters.values()]
    params += [inspect.Parameter("server", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ServerOpt),
               inspect.Parameter("auth_token", inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=AuthTokenOpt)]

    @functools.wraps(local)
    def command(**options: Any) -> None:
        chosen = target(options.pop("server", None), options.pop("auth_token", None))
        if chosen is None:
            local(**options)
        else:
            remote(chosen, **options)

    del command.__wrapped__  # Typer must read the signature below, not local's
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {**{p.name: p.annotation for p in params}, "return": None}
    return command


def _split(app_ref: str) -> tuple[str, Params]:
    namespace, _, name = app_ref.rpartition("/")
    return name, {"appNamespace": namespace or None}


def create(remote: Remote, *, app_file: Path, upsert: bool = False, output: Output = Output.table,
           **_: Any) -> None:
    manifest = app_ops.read_manifest(app_file)
    with connect(remote) as api:
        try:
            view, headers = api.exchange("POST", path(_APPS), json={"application": manifest, "upsert": upsert})
        except ClientError as exc:  # the server's refusal, about this file
            exc.message = f"{app_file}: {exc.message}"
            raise
    if not isinstance(view, dict):
        fail(f"{remote.server}: POST /{_APPS} answered no application", EXIT_RETRY)
    verb = headers.get(OUTCOME_HEADER, "")
    stored = {k: v for k, v in view.items() if k not in ("status", "operation")}
    meta = {k: v for k, v in (stored.get("metadata") or {}).items() if k != "resourceVersion"}
    stored["metadata"] = meta
    app_ops.show_created(f"{meta.get('namespace') or ''}/{meta.get('name')}",
                         verb if verb in CREATE_OUTCOMES else "stored", stored, output)


def diff(remote: Remote, *, app_ref: str, revision: str | None = None, output: Output = Output.table,
         **_: Any) -> None:
    name, params = _split(app_ref)
    with connect(remote) as api:
        data = api.get(path(_APPS, name, "diff"), params={**params, "revision": revision or None})
    if not isinstance(data, dict) or not {"sync", "resources", "conditions"} <= set(data):
        fail(f"{remote.server}: GET /{_APPS}/{name}/diff answered no comparison", EXIT_RETRY)
    app_ops.show_diff(data, output)


def manifests(remote: Remote, *, app_ref: str, revision: str | None = None, output: str = "yaml") -> None:
    """The server's rendering of a stored app, printed as ``app manifests`` prints a file's."""
    name, params = _split(app_ref)
    with connect(remote) as api:
        answer = api.get(path(_APPS, name, "manifests"), params={**params, "revision": revision or None})
    bodies = answer.get("manifests") if isinstance(answer, dict) else None
    if not isinstance(bodies, list):
        fail(f"{remote.server}: GET /{_APPS}/{name}/manifests answered no manifest list", EXIT_RETRY)
    if output == "json":
        sys.stdout.write(json.dumps(bodies, indent=2) + "\n")
    else:
        sys.stdout.write(yamlsafe.dump(bodies, multi=True) if bodies else "")


def list_apps(remote: Remote, *, project: str | None = None, output: Output = Output.table, **_: Any) -> None:
    with connect(remote) as api:
        views = list(api.items(path(_APPS), params={"project": project}))
    if output is not Output.table:
        emit(views, output)
        return
    table = Table("NAME", "PROJECT", "DESTINATION", "SYNC", "HEALTH", box=None)
    for v in views:
        meta, spec, status = v.get("metadata") or {}, v.get("spec") or {}, v.get("status") or {}
        dest = spec.get("destination") or {}
        table.add_row(f"{meta.get('namespace') or ''}/{meta.get('name')}", spec.get("project") or "",
                      f"{dest.get('server') or dest.get('name')}/{dest.get('namespace') or ''}",
                      (status.get("sync") or {}).get("status") or "", (status.get("health") or {}).get("status") or "")
    console().print(table)


def get(remote: Remote, *, app_ref: str, refresh: bool = False, hard_refresh: bool = False,
        output: Output = Output.table, **_: Any) -> None:
    name, params = _split(app_ref)
    level = "hard" if hard_refresh else "normal" if refresh else None
    with connect(remote) as api:
        view = api.get(path(_APPS, name), params={**params, "refresh": level})
    if output is Output.table:
        app_ops._print_view(view)
    else:
        emit(view, output)


def history(remote: Remote, *, app_ref: str, output: Output = Output.table, **_: Any) -> None:
    name, params = _split(app_ref)
    with connect(remote) as api:
        entries = list(api.items(path(_APPS, name, "history"), params=params))
    if output is not Output.table:
        emit(entries, output)
        return
    table = Table("ID", "DATE", "REVISION", "INITIATED BY", box=None)
    for e in entries:
        by = e.get("initiatedBy") or {}
        who = "automated" if by.get("automated") else str(by.get("username") or by.get("subject") or "")
        table.add_row(str(e.get("id")), str(e.get("deployedAt")), ", ".join(r[:12] for r in e.get("revisions") or []),
                      who)
    console().print(table)


def delete(remote: Remote, *, app_ref: str, cascade: bool = True, output: Output = Output.table, **_: Any) -> None:
    name, params = _split(app_ref)
    with connect(remote) as api:
        answer = api.delete(path(_APPS, name), params={**params, "cascade": cascade})
    if output is not Output.table:
        emit(answer, output)
    else:
        err_console().print(f"application {app_ref!r} deleted", markup=False)


def confirm_deletion(remote: Remote, *, app_ref: str, **_: Any) -> None:
    """No server route approves deletions yet: refuse, rather than approve in a local database instead."""
    fail(f"app confirm-deletion works in local mode only; for {app_ref} on {remote.server}, set the app's "
         "argocd.argoproj.io/deletion-approved annotation to the current time (PUT /api/v1/applications/NAME)")


def _follow(api: Client, name: str, params: Params, op_id: str, *, output: Output, timeout: float) -> int:
    """Poll the app until operation ``op_id`` completes, showing it; the exit code."""
    deadline = time.monotonic() + timeout
    final: dict[str, Any] = {"operationId": op_id, "phase": "Running", "message": "", "resources": []}
    with Progress(progress_mode(output)) as progress:
        while True:
            view = api.get(path(_APPS, name), params=params)
            op = ((view or {}).get("status") or {}).get("operationState")
            if isinstance(op, dict) and op.get("operationId") == op_id:
                final = op
                progress.update(OperationState.from_dict(op))
                if op.get("phase") in _DONE:
                    break
            if time.monotonic() >= deadline:
                fail(f"operation {op_id} of {name} is still {final.get('phase')} after {timeout:g}s; it goes on on "
                     "the server (see 'app get')", EXIT_RETRY)
            time.sleep(POLL_SECONDS)
    if output is not Output.table:
        emit(final, output)
    else:
        console().print(f"{name}: {final['phase']}: {final.get('message') or ''}".rstrip(": "), markup=False)
        for v in final.get("violations") or []:
            console().print(f"  violation {v.get('code')}: {v.get('message')}", markup=False)
    return EXIT_OK if final.get("phase") == "Succeeded" else EXIT_DENIED


def _start(remote: Remote, app_ref: str, action: str, body: dict[str, Any], *, run_async: bool, output: Output,
           timeout: float) -> None:
    name, params = _split(app_ref)
    with connect(remote) as api:
        started = api.post(path(_APPS, name, action), body, params=params)
        op_id = str(started.get("operationId", ""))
        if run_async:
            if output is Output.table:
                console().print(f"operation {op_id} started for {app_ref}", markup=False)
            else:
                emit({"operationId": op_id}, output)
            return
        code = _follow(api, name, params, op_id, output=output, timeout=timeout)
    raise typer.Exit(code)


def sync(remote: Remote, *, app_ref: str, revision: str = "", prune: bool = False, dry_run: bool = False,
         resource: list[str] | None = None, reason: str | None = None, run_async: bool = False,
         timeout: float = 300.0, output: Output = Output.table, **_: Any) -> None:
    selected = [parse_resource(r) for r in resource or []]
    body: dict[str, Any] = {
        "revision": revision, "prune": prune, "dryRun": dry_run,
        "resources": [{"group": r.group, "kind": r.kind, "name": r.name, "namespace": r.namespace} for r in selected],
    }
    if reason:
        body.update(override=True, reason=reason)
    _start(remote, app_ref, "sync", body, run_async=run_async, output=output, timeout=timeout)


def rollback(remote: Remote, *, app_ref: str, history_id: int, prune: bool = False, dry_run: bool = False,
             timeout: float = 300.0, output: Output = Output.table, **_: Any) -> None:
    _start(remote, app_ref, "rollback", {"id": history_id, "prune": prune, "dryRun": dry_run}, run_async=False,
           output=output, timeout=timeout)
