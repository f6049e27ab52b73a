"""``syncwarden app create|get|list|diff|history|rollback|delete`` in local mode (no server).

Who calls it: :mod:`api.cli.app_cmd` registers these commands. They work on the local database and the
cluster of a kubeconfig context through :func:`api.wiring.build_services` (see :mod:`api.cli.app_session`).

* ``create -f APP.yaml`` stores an Argo CD Application unchanged, after checking (as Argo CD does) that its
  project exists (exit 2) and permits its sources and destination (exit 1, with every violation); the same
  spec again is "unchanged" (exit 0, as Argo CD's create), a different one needs ``--upsert`` (exit 2);
* ``get`` shows the stored status; ``--refresh``/``--hard-refresh`` compares now (what the controller does on a
  refresh: an automated app may start a sync, which then runs here until it completes or a failed attempt
  waits for its retry; the next refresh goes on);
* ``diff`` renders and compares now, prints each differing resource (Secret values masked) and exits 1 when
  the app is out of sync (0 when in sync), like ``argocd app diff``;
* ``rollback NAME ID`` syncs a history entry (auto-sync must be off), with live progress;
* ``delete`` removes the app; with ``--cascade`` (the default) its resources first, and only what it owns;
* ``confirm-deletion`` approves deletions up to now (``argocd.argoproj.io/deletion-approved``, as ``argocd app
  confirm-deletion``): prunes of ``Prune=confirm`` resources waiting in a running sync, and a cascading delete
  waiting for ``Delete=confirm``, go on at their next tick (the waiting ``app sync``/``app delete``, or the
  next ``app get --refresh``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.app_session import ContextOpt, KubeconfigOpt, audit_context, cli_subject, local_services, now, resolve
from api.cli.app_sync import IntervalOpt, OutputOpt, Progress, TimeoutOpt, drive, run_operation
from api.cli.common import EXIT_DENIED, EXIT_OK, EXIT_RETRY, Output, console, emit, fail
from api.wiring import Services
from config import yamlsafe
from policy.decision import Decision
from sync import approval
from sync.application import Application
from sync.models import InvalidApplication
from sync.store import AppExists

__all__ = ["confirm_deletion", "create", "delete", "diff", "get", "history", "list_apps", "read_manifest", "rollback",
           "show_created", "show_diff"]

AppArg = Annotated[str, typer.Argument(metavar="NAME", help="App name, or NAMESPACE/NAME.")]


def read_manifest(path: Path) -> dict[str, Any]:
    """An Application file, checked as the server checks it; exit 2 naming the file and field otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read ({exc.strerror})")
    try:
        doc = yamlsafe.load_one(data, source=str(path))
    except yamlsafe.YamlError as exc:
        fail(str(exc))
    if not isinstance(doc, dict):
        fail(f"{path}: an Application manifest must be a mapping")
    try:
        Application.from_dict(doc, source=str(path))
    except InvalidApplication as exc:
        fail(str(exc))
    return doc


def _admit(services: Services, app: Application) -> Decision:
    project = services.project(app.project)
    if project is None:
        fail(f"spec.project: project {app.project!r} does not exist")
    checks = [project.check_source(src.repo_url, field=f"spec.sources[{i}].repoURL")
              for i, src in enumerate(app.sources)]
    checks.append(project.check_destination(server=app.destination.server, name=app.destination.name,
                                            namespace=app.destination.namespace))
    return Decision.combine(checks)


def create(
    app_file: Annotated[Path, typer.Option("-f", "--file", help="Argo CD Application YAML file.")],
    upsert: Annotated[bool, typer.Option("--upsert", help="Replace the app when it exists.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create an app from an Argo CD Application manifest (the same spec again: unchanged)."""
    manifest = read_manifest(app_file)
    with local_services(kubeconfig, context) as services:
        app = Application.from_dict(manifest, source=str(app_file))
        existing = services.apps.store.apps.find(app.namespace, app.name)
        decision = _admit(services, app)
        if not decision:
            services.record(audit_context(), action="app.create" if existing is None else "app.update",
                            result="denied", app=app, at=now(), violations=[v.to_dict() for v in decision.violations])
            for v in decision.violations:
                console().print(f"denied: {v.field}: {v.message}", markup=False)
            raise typer.Exit(EXIT_DENIED)
        if existing is not None and existing.manifest == manifest:
            stored, verb = existing, "unchanged"
        elif existing is not None and not upsert:
            fail(f"{app_file}: application {app.namespace}/{app.name} already exists with a different spec; "
                 "use --upsert to replace it")
        else:
            try:
                stored = services.apps.create(manifest, now=now(), source=str(app_file))
                verb = "created"
            except AppExists:  # created meanwhile by someone else
                if not upsert:
                    raise
                stored = services.apps.update(manifest, now=now(), source=str(app_file))
                verb = "updated"
            services.record(audit_context(), action=f"app.{verb[:-1]}", result="ok", app=app, at=now(),
                            details={"version": stored.version})
    show_created(f"{stored.namespace}/{stored.name}", verb, stored.manifest, output)


def show_created(app_ref: str, verb: str, manifest: dict[str, Any], output: Output) -> None:
    """What ``app create`` prints (both modes): a line, or the stored manifest as JSON/YAML."""
    if output is Output.table:
        console().print(f"application {app_ref} {verb}", markup=False)
    else:
        emit(manifest, output)


def _print_view(data: dict[str, Any]) -> None:
    out = console()
    meta, spec, status = data.get("metadata") or {}, data.get("spec") or {}, data.get("status") or {}
    dest = spec.get("destination") or {}
    sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    out.print(f"Name:          {meta.get('namespace') or ''}/{meta.get('name')}", markup=False)
    out.print(f"Project:       {spec.get('project')}", markup=False)
    out.print(f"Destination:   {dest.get('server') or dest.get('name')} namespace={dest.get('namespace') or ''}",
              markup=False)
    for src in sources:
        out.print(f"Source:        {src.get('repoURL')} path={src.get('path') or src.get('chart') or ''} "
                  f"revision={src.get('targetRevision') or 'HEAD'}", markup=False)
    sync_status, health = status.get("sync") or {}, status.get("health") or {}
    revisions = ", ".join(r[:12] for r in sync_status.get("revisions") or [])
    out.print(f"Sync Status:   {sync_status.get('status')} {revisions}".rstrip(), markup=False)
    out.print(f"Health Status: {health.get('status')} {health.get('message') or ''}".rstrip(), markup=False)
    op = status.get("operationState")
    if op:
        out.print(f"Operation:     {op.get('phase')}: {op.get('message') or ''}".rstrip(": "), markup=False)
    for cond in status.get("conditions") or []:
        out.print(f"Condition:     {cond.get('type')}: {cond.get('message')}", markup=False)
    table = Table("GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", box=None)
    for r in status.get("resources") or []:
        table.add_row(r.get("group") or "", r.get("kind") or "", r.get("namespace") or "", r.get("name") or "",
                      r.get("status") or "", ((r.get("health") or {}).get("status") or ""))
    out.print(table)


def get(
    app_ref: AppArg,
    refresh: Annotated[bool, typer.Option("--refresh", help="Compare with Git and the cluster now.")] = False,
    hard_refresh: Annotated[bool, typer.Option("--hard-refresh", help="Refresh, rendering again.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    timeout: TimeoutOpt = 300.0,
    interval: IntervalOpt = 0.2,
    output: OutputOpt = Output.table,
) -> None:
    """Show an app: source, destination, sync and health status, resources, the last operation."""
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        if refresh or hard_refresh:
            services.apps.refresh(namespace, name, now=now(), level="hard" if hard_refresh else "normal",
                                  requested_by=cli_subject())
            report = services.reconciler.process_app(namespace, name, now=now())
            record = services.apps.store.operations.operation(namespace, name)
            if record is not None and record.in_progress:  # the refresh led to an automated sync (or resumed one)
                if output is Output.table:
                    run_operation(services, namespace, name, record.op_id, output=output, timeout=timeout,
                                  interval=interval, stop_at_backoff=True)  # the status below says how it went
                else:
                    _quiet(services, namespace, name, record.op_id, timeout, interval)
            if report.started or report.ticked:  # compare again after what the operation changed
                services.reconciler.process_app(namespace, name, now=now())
        view = services.apps.get(namespace, name).to_dict()
    if output is Output.table:
        _print_view(view)
    else:
        emit(view, output)


def _quiet(services: Services, namespace: str, name: str, op_id: str, timeout: float, interval: float) -> None:
    with Progress("quiet") as progress:
        drive(services, namespace, name, op_id=op_id, timeout=timeout, interval=interval, progress=progress,
              stop_at_backoff=True)


def list_apps(
    project: Annotated[str | None, typer.Option("--project", help="Only apps of this project.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """List apps with their sync and health status."""
    with local_services(kubeconfig, context) as services:
        views = [services.apps.get(a.namespace, a.name).to_dict() for a in services.apps.list(project=project)]
    if output is not Output.table:
        emit(views, output)
        return
    table = Table("NAME", "PROJECT", "DESTINATION", "SYNC", "HEALTH", box=None)
    for v in views:
        meta, spec, status = v["metadata"], v["spec"], v["status"]
        dest = spec.get("destination") or {}
        table.add_row(f"{meta.get('namespace') or ''}/{meta['name']}", spec.get("project") or "",
                      f"{dest.get('server') or dest.get('name')}/{dest.get('namespace') or ''}",
                      status["sync"]["status"], status["health"]["status"])
    console().print(table)


def diff(
    app_ref: AppArg,
    revision: Annotated[str | None, typer.Option("--revision", help="Compare with this revision.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Compare Git with the cluster now; exit 1 when they differ."""
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        app = services.apps.store.apps.get(namespace, name).application()
        rendered = services.env.renderer.render(app, revision=revision or None)
        comparison = services.env.compare(app, rendered.manifests, services.env.live(app, fresh=True))
        data = {**comparison.to_dict(), "revisions": list(rendered.revisions)}
    show_diff(data, output)


def show_diff(data: dict[str, Any], output: Output) -> None:
    """What ``app diff`` prints (both modes): each differing resource's unified diff (Secret values masked by
    the comparison), or the whole comparison as JSON/YAML; exit 1 unless the app is Synced."""
    differing = [r for r in data["resources"] if r.get("status") == "OutOfSync"]
    if output is not Output.table:
        emit(data, output)
    else:
        out = console()
        for r in differing:
            ns = r.get("namespace") or ""
            out.print(f"===== {r.get('group') or ''}/{r['kind']} {ns}/{r['name']} ======", markup=False)
            text = ((r.get("diff") or {}).get("unified") or "").rstrip("\n")
            if r.get("requiresPruning"):
                text = text or "(not in Git: would be pruned)"
            out.print(text, markup=False)
        for cond in data["conditions"]:
            out.print(f"{cond.get('type')}: {cond.get('message')}", markup=False)
    if data["sync"]["status"] != "Synced":
        raise typer.Exit(EXIT_DENIED)


def history(app_ref: AppArg, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
            output: OutputOpt = Output.table) -> None:
    """The app's deployment history (ids for rollback)."""
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        entries = [e.to_dict() for e in services.apps.history(namespace, name)]
    if output is not Output.table:
        emit(entries, output)
        return
    table = Table("ID", "DATE", "REVISION", "INITIATED BY", box=None)
    for e in entries:
        by = e["initiatedBy"]
        who = "automated" if by.get("automated") else str(by.get("username") or by.get("subject") or "")
        table.add_row(str(e["id"]), e["deployedAt"], ", ".join(r[:12] for r in e["revisions"]), who)
    console().print(table)


def rollback(
    app_ref: AppArg,
    history_id: Annotated[int, typer.Argument(metavar="ID", help="History id (see 'app history').")],
    prune: Annotated[bool, typer.Option("--prune")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    timeout: TimeoutOpt = 300.0,
    interval: IntervalOpt = 0.2,
    output: OutputOpt = Output.table,
) -> None:
    """Sync the source and revision of a history entry (hooks are skipped; auto-sync must be off)."""
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        op_id = services.apps.rollback(namespace, name, history_id, now=now(), subject=cli_subject(), prune=prune,
                                       dry_run=dry_run)
        services.record(audit_context(), action="app.rollback", result="requested", at=now(),
                        app=services.apps.store.apps.get(namespace, name).application(),
                        details={"operation": op_id, "historyId": history_id, "prune": prune, "dryRun": dry_run})
        code = run_operation(services, namespace, name, op_id, output=output, timeout=timeout, interval=interval)
    if code != EXIT_OK:
        raise typer.Exit(code)


def delete(
    app_ref: AppArg,
    cascade: Annotated[bool, typer.Option("--cascade/--no-cascade", help="Delete the app's resources too.")] = True,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    timeout: TimeoutOpt = 300.0,
    interval: IntervalOpt = 0.2,
    output: OutputOpt = Output.table,
) -> None:
    """Delete an app; with --cascade (default) only the resources it owns are deleted first."""
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        stored = services.apps.delete(namespace, name, now=now(), cascade=cascade)
        services.record(audit_context(), action="app.delete", result="ok", app=stored.application(), at=now(),
                        details={"cascade": cascade})
        deadline = time.monotonic() + timeout
        while services.apps.store.apps.find(namespace, name) is not None:
            if time.monotonic() >= deadline:
                errors = [f": {c.get('message')}" for c in services.apps.store.apps.status(namespace, name).conditions
                          if c.get("type") == "DeletionError"]
                fail(f"application {namespace}/{name} is still being deleted after {timeout:g}s{''.join(errors)}; "
                     "run 'app delete' again to go on", EXIT_RETRY)
            report = services.reconciler.process_app(namespace, name, now=now())
            if not report.deleted:
                time.sleep(interval)
    if output is Output.table:
        console().print(f"application {namespace}/{name} deleted", markup=False)
    else:
        emit({"app": f"{namespace}/{name}", "deleted": True, "cascade": cascade}, output)


def confirm_deletion(app_ref: AppArg, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
                     output: OutputOpt = Output.table) -> None:
    """Approve the deletions waiting for confirmation (Prune=confirm, Delete=confirm)."""
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        stored = services.apps.confirm_deletion(namespace, name, now=now())
        value = stored.application().annotations[approval.DELETION_APPROVED]
        services.record(audit_context(), action="app.confirm-deletion", result="ok", app=stored.application(),
                        at=now(), details={approval.DELETION_APPROVED: value})
    if output is Output.table:
        console().print(f"application {namespace}/{name}: deletion approved at {value}", markup=False)
    else:
        emit({"app": f"{namespace}/{name}", approval.DELETION_APPROVED: value}, output)
