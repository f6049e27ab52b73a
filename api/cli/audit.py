"""``syncwarden audit``: query, export and verify the tamper-evident audit log; export signed checkpoints;
apply retention.

Works on the local database through ``policy.store``, or with ``--server`` (``SYNCWARDEN_SERVER``,
``syncwarden login``) on a server's ``/api/v1/audit`` (:mod:`api.cli.audit_remote`) with the same output.
``verify`` exits 0 when the chain is intact and 1 when it is not, naming the first bad record; checkpoints from
``export-checkpoint`` (kept outside the database) let it detect a cut-off tail as well. Times are RFC 3339 with
an offset, or a duration (``24h``, ``7d``) meaning that long ago.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import api.cli.audit_remote as audit_remote
from api.cli.common import EXIT_DENIED, EXIT_RETRY, Output, console, emit, err_console, fail, parse_time
from api.cli.local_store import cli_context, local_store, signing_keys
from api.cli.remote import AuthTokenOpt, ServerOpt, target
from policy import audit, audit_verify, tokens
from policy.store import audit_read

app = typer.Typer(help="Query and verify the audit log.", no_args_is_help=True)


class QueryOutput(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def parse_when(value: str, *, option: str, now: datetime) -> datetime:
    """RFC 3339 with an offset, or a duration ago (``90m``, ``24h``, ``7d``)."""
    try:
        return now - tokens.parse_duration(value)
    except ValueError:
        pass
    return parse_time(value, option=option, alternative="a duration (24h)")


def _filter(
    now: datetime,
    since: str | None,
    until: str | None,
    project: str | None,
    app_name: str | None,
    actor: str | None,
    action: str | None,
    result: str | None,
    request_id: str | None,
) -> audit_read.AuditFilter:
    return audit_read.AuditFilter(
        since=parse_when(since, option="--since", now=now) if since else None,
        until=parse_when(until, option="--until", now=now) if until else None,
        project=project,
        app=app_name,
        actor=actor,
        action=action,
        result=result,
        request_id=request_id,
    )


Since = Annotated[str | None, typer.Option("--since", help="Records at or after this time (or duration ago).")]
Until = Annotated[str | None, typer.Option("--until", help="Records before this time (or duration ago).")]
ProjectOpt = Annotated[str | None, typer.Option("--project")]
AppOpt = Annotated[str | None, typer.Option("--app")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Subject, e.g. proj:web:ci or local:alice.")]
ActionOpt = Annotated[str | None, typer.Option("--action", help="e.g. app.sync, project.update, token.create.")]
ResultOpt = Annotated[str | None, typer.Option("--result", help="e.g. allowed, denied, ok, rejected.")]
RequestOpt = Annotated[str | None, typer.Option("--request-id")]


@app.command()
def query(
    since: Since = None,
    until: Until = None,
    project: ProjectOpt = None,
    app_name: AppOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    result: ResultOpt = None,
    request_id: RequestOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=audit_read.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, typer.Option("--cursor", help="next_cursor of the previous page.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first")] = False,
    output: Annotated[QueryOutput, typer.Option("-o", "--output")] = QueryOutput.table,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """One page of audit records matching every given filter."""
    flt = _filter(datetime.now(UTC), since, until, project, app_name, actor, action, result, request_id)
    remote = target(server, auth_token)
    if remote is not None:
        page = audit_remote.query(remote, flt, cursor=cursor, limit=limit, newest_first=newest_first)
    else:
        with local_store() as store:
            try:
                page = audit_read.query(store.engine, flt, cursor=cursor, limit=limit, newest_first=newest_first)
            except ValueError as exc:
                fail(str(exc))
    if output is QueryOutput.csv:
        for chunk in audit_read.export_csv(page.records):
            sys.stdout.write(chunk)
    elif output in (QueryOutput.json, QueryOutput.yaml):
        emit({"records": [r.to_dict() for r in page.records], "next_cursor": page.next_cursor}, Output(output.value))
    else:
        table = Table("SEQ", "TIME", "ACTOR", "ACTION", "PROJECT", "APP", "OBJECT", "RESULT", "REQUEST", box=None)
        for r in page.records:
            row = r.to_dict()
            table.add_row(
                str(r.seq), row["time"], r.subject, r.action, r.project, r.app, r.object, r.result, r.request_id
            )
        console().print(table)
    if page.next_cursor and output is QueryOutput.table:
        err_console().print(f"more records: --cursor {page.next_cursor}", markup=False)


@app.command()
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = ExportFormat.jsonl,
    since: Since = None,
    until: Until = None,
    project: ProjectOpt = None,
    app_name: AppOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    result: ResultOpt = None,
    request_id: RequestOpt = None,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """Every matching record to stdout, streamed in seq order."""
    flt = _filter(datetime.now(UTC), since, until, project, app_name, actor, action, result, request_id)
    remote = target(server, auth_token)
    if remote is not None:
        for chunk in audit_remote.export(remote, flt, fmt=fmt.value):
            sys.stdout.write(chunk)
        return
    with local_store() as store:
        records = audit_read.iter_records(store.engine, flt)
        chunks = audit_read.export_jsonl(records) if fmt is ExportFormat.jsonl else audit_read.export_csv(records)
        for chunk in chunks:
            sys.stdout.write(chunk)


@app.command(name="export-checkpoint")
def export_checkpoint() -> None:
    """Print a signed checkpoint (seq, hash) of the newest record; keep it outside the database."""
    with local_store() as store:
        try:
            point = store.audit.checkpoint(key=store.keyring.current.secret)
        except audit.AuditUnavailable as exc:
            fail(str(exc))
    sys.stdout.write(json.dumps(point.to_dict()) + "\n")


def _read_checkpoints(paths: list[Path], keys: list[bytes]) -> list[audit_verify.Checkpoint]:
    points = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                fail(f"{path} line {number}: not JSON")
            try:
                points.append(audit_verify.Checkpoint.from_dict(data, keys=keys, source=f"{path} line {number}"))
            except audit_verify.InvalidCheckpoint as exc:
                fail(str(exc))
    return points


@app.command()
def verify(
    checkpoint: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="Checkpoint file from export-checkpoint (repeatable).")
    ] = None,
    server: ServerOpt = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """Check the whole hash chain. Exit 0 intact, 1 tampered (naming the first bad record)."""
    remote = target(server, auth_token)
    if remote is not None:
        if checkpoint:
            fail("--checkpoint needs the signing keys: verify checkpoints locally, not with --server")
        outcome = audit_remote.verify(remote)
    else:
        with local_store() as store:
            keys = signing_keys(store)
            points = _read_checkpoints(checkpoint or [], keys)
            outcome = audit_read.verify(store.engine, keys=keys, checkpoints=points)
    if outcome.ok:
        console().print(
            f"audit chain intact: {outcome.checked} records verified, last seq {outcome.last_seq}", markup=False
        )
        return
    err_console().print(f"audit chain TAMPERED at seq {outcome.bad_seq}: {outcome.reason}", markup=False)
    raise typer.Exit(EXIT_DENIED)


@app.command()
def retain(
    older_than: Annotated[str, typer.Option("--older-than", help="Delete records older than this, e.g. 365d.")],
) -> None:
    """Delete old records, keeping the rest verifiable through a signed anchor (the newest record stays)."""
    now = datetime.now(UTC)
    before = parse_when(older_than, option="--older-than", now=now)
    with local_store() as store:
        try:
            deleted = store.audit.retain(before=before, key=store.keyring.current.secret, ctx=cli_context(), now=now)
        except audit.AuditUnavailable as exc:
            fail(str(exc), EXIT_RETRY)
    err_console().print(f"{deleted} audit record(s) older than {before.isoformat()} deleted", markup=False)


__all__ = ["app"]
