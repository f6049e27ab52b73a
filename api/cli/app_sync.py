"""``syncwarden app sync`` in local mode, and driving any operation to completion with live progress.

Who calls it: :mod:`api.cli.app_cmd` registers :func:`sync`; ``app rollback`` and ``app get --refresh`` reuse
:func:`run_operation`. There is no server in local mode: the reconciler ticks in this process
(``Reconciler.process_app``) until the operation completes, and every tick's state is persisted, so an
interrupted command leaves a resumable operation (the next ``app get --refresh`` or ``app sync`` goes on).

Progress: phase changes and each resource's result per (sync phase, wave) as they happen — a Rich live table on
a terminal, one plain line per change otherwise, nothing with ``-o json``/``-o yaml`` (the final state only).
Exit codes: 0 Succeeded, 1 Failed/Error (a denied sync is Failed, with every violation), 2 invalid input,
3 when the operation did not finish within ``--timeout``, or the cluster, the database or the audit log was
unavailable (an operation the audit log could not record ends Error "audit log unavailable": exit 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from api.cli.app_session import ContextOpt, KubeconfigOpt, audit_context, cli_subject, local_services, now, resolve
from api.cli.common import EXIT_DENIED, EXIT_OK, EXIT_RETRY, Output, console, emit, fail
from api.wiring import Services
from sync.appservice import InvalidAppRequest, OperationWaitTimeout
from sync.engine_events import AUDIT_UNAVAILABLE
from sync.engine_request import SelectedResource
from sync.gate import SyncEvent
from sync.operation import OperationState

__all__ = ["Progress", "drive", "parse_resource", "run_operation", "sync"]

_TERMINAL = {"sync.succeeded": "Succeeded", "sync.failed": "Failed", "sync.error": "Error", "sync.denied": "Failed"}


def parse_resource(text: str) -> SelectedResource:
    """``GROUP:KIND:NAME`` or ``GROUP:KIND:NAMESPACE/NAME`` (the core group is empty: ``:ConfigMap:web``)."""
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        fail(f"--resource {text!r}: expected GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME")
    group, kind, rest = parts
    namespace, _, name = rest.rpartition("/")
    if not name:
        fail(f"--resource {text!r}: the name is empty")
    return SelectedResource(group=group, kind=kind, name=name, namespace=namespace)


def _row(result: dict[str, Any]) -> tuple[str, ...]:
    ns = result.get("namespace") or ""
    ref = f"{result.get('group') or ''}/{result['kind']}/{ns + '/' if ns else ''}{result['name']}"
    return (str(result.get("syncPhase")), str(result.get("syncWave", 0)), ref, str(result.get("status")),
            str(result.get("hookPhase")), str(result.get("message") or ""))


class Progress:
    """Shows an operation as it advances. ``mode``: ``live`` (Rich, a terminal), ``lines`` or ``quiet``."""

    def __init__(self, mode: str, *, out: Console | None = None, write: Callable[[str], None] | None = None) -> None:
        self.mode = mode
        self._out = out or console()
        self._write = write or (lambda text: self._out.print(text, markup=False, highlight=False))
        self._seen: dict[tuple[str, str], tuple[str, ...]] = {}
        self._phase: tuple[str, str] | None = None
        self._live: Live | None = None
        self.last: OperationState | None = None

    def __enter__(self) -> Progress:
        if self.mode == "live":
            self._live = Live(self._table(None), console=self._out, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def _table(self, state: OperationState | None) -> Table:
        title = "" if state is None else f"operation {state.operation_id}: {state.phase.value} {state.message}"
        table = Table("PHASE", "WAVE", "RESOURCE", "STATUS", "HOOK PHASE", "MESSAGE", title=title, box=None)
        for row in self._seen.values():
            table.add_row(*row)
        return table

    def update(self, state: OperationState) -> None:
        self.last = state
        changed = []
        for result in state.to_dict()["resources"]:
            row = _row(result)
            key = (row[0], row[2])
            if self._seen.get(key) != row:
                self._seen[key] = row
                changed.append(row)
        phase = (state.phase.value, state.message)
        if self.mode == "live" and self._live is not None:
            self._live.update(self._table(state))
        elif self.mode == "lines":
            for row in changed:
                self._write(f"  {row[0]:<8} wave {row[1]:>3}  {row[2]}  {row[3]}  {row[4]}  {row[5]}".rstrip())
            if phase != self._phase:
                self._write(f"operation {state.operation_id}: {phase[0]}{': ' + phase[1] if phase[1] else ''}")
        self._phase = phase


def drive(services: Services, namespace: str, name: str, *, op_id: str, timeout: float, interval: float,
          progress: Progress, stop_at_backoff: bool = False) -> dict[str, Any]:
    """Tick the app until operation ``op_id`` completes (or, with ``stop_at_backoff``, until a failed attempt
    waits for its retry); returns its last state (``to_dict`` form)."""
    terminal: list[SyncEvent] = []

    def observe(event: SyncEvent) -> None:
        if event.operation_id == op_id and event.action in _TERMINAL:
            terminal.append(event)

    services.events.observers.append(observe)
    ops = services.apps.store.operations
    deadline = time.monotonic() + timeout
    try:
        while True:
            record = ops.operation(namespace, name)
            if record is None or record.op_id != op_id:
                if terminal:  # completed, then replaced at once by an automated sync of the fresh comparison
                    last = progress.last.to_dict() if progress.last else {"operationId": op_id, "resources": []}
                    return {**last, "phase": _TERMINAL[terminal[-1].action], "message": terminal[-1].message}
                raise InvalidAppRequest(f"operation {op_id} of {namespace}/{name} was replaced")
            if record.state is not None:
                state = OperationState.from_dict(record.state)
                progress.update(state)
                if not record.in_progress or (stop_at_backoff and state.waiting_for_retry):
                    return dict(record.state)
            if time.monotonic() >= deadline:
                raise OperationWaitTimeout(
                    f"operation {op_id} of {namespace}/{name} still {record.phase or 'Running'} after {timeout:g}s; "
                    "it resumes with the next 'app sync' or 'app get --refresh'")
            services.reconciler.process_app(namespace, name, now=now())
            current = ops.operation(namespace, name)
            if current is not None and current.op_id == op_id and current.in_progress:
                time.sleep(interval)
    finally:
        services.events.observers.remove(observe)


def progress_mode(output: Output) -> str:
    if output is not Output.table:
        return "quiet"
    return "live" if console().is_terminal else "lines"


def run_operation(services: Services, namespace: str, name: str, op_id: str, *, output: Output, timeout: float,
                  interval: float, stop_at_backoff: bool = False) -> int:
    """Drive, then print the outcome; returns the exit code (0 Succeeded, 1 otherwise)."""
    with Progress(progress_mode(output)) as progress:
        final = drive(services, namespace, name, op_id=op_id, timeout=timeout, interval=interval, progress=progress,
                      stop_at_backoff=stop_at_backoff)
    if output is not Output.table:
        emit(final, output)
    else:
        out = console()
        out.print(f"{namespace}/{name}: {final['phase']}: {final.get('message') or ''}".rstrip(": "), markup=False)
        for v in final.get("violations") or []:
            out.print(f"  violation {v.get('code')}: {v.get('message')}", markup=False)
    if final["phase"] == "Succeeded":
        return EXIT_OK
    return EXIT_RETRY if final.get("message") == AUDIT_UNAVAILABLE else EXIT_DENIED


OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the operation.")]
IntervalOpt = Annotated[float, typer.Option("--tick-interval", min=0.0, hidden=True,
                                            help="Seconds between reconciler ticks while waiting.")]


def sync(
    app_ref: Annotated[str, typer.Argument(metavar="NAME", help="App name, or NAMESPACE/NAME.")],
    revision: Annotated[str, typer.Option("--revision", help="Sync to this branch, tag or commit.")] = "",
    prune: Annotated[bool, typer.Option("--prune", help="Delete resources that are no longer in Git.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Dry-run every write on the server.")] = False,
    resource: Annotated[list[str] | None, typer.Option(
        "--resource", help="Sync only this resource, GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME (repeatable).")
    ] = None,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Override an active sync window, recording this reason (needs 'override').")] = None,
    run_async: Annotated[bool, typer.Option("--async", help="Start the operation and return its id.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    timeout: TimeoutOpt = 300.0,
    interval: IntervalOpt = 0.2,
    output: OutputOpt = Output.table,
) -> None:
    """Sync an app to its target revision, showing waves and resources as they progress."""
    selected = [parse_resource(r) for r in resource or []]
    with local_services(kubeconfig, context) as services:
        namespace, name = resolve(services, app_ref)
        op_id = services.apps.sync(namespace, name, now=now(), subject=cli_subject(), revision=revision,
                                   prune=prune, dry_run=dry_run, resources=selected, override_reason=reason)
        services.record(audit_context(), action="app.sync", result="requested", at=now(),
                        app=services.apps.store.apps.get(namespace, name).application(),
                        details={"operation": op_id, "revision": revision, "prune": prune, "dryRun": dry_run,
                                 "resources": resource or [], "overrideReason": reason})
        if run_async:
            if output is Output.table:
                console().print(f"operation {op_id} started for {namespace}/{name}", markup=False)
            else:
                emit({"operationId": op_id, "app": f"{namespace}/{name}"}, output)
            return
        code = run_operation(services, namespace, name, op_id, output=output, timeout=timeout, interval=interval)
    if code != EXIT_OK:
        raise typer.Exit(code)
