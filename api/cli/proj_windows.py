"""``syncwarden proj windows``: a project's sync windows, what is open, and the freeze calendar.

Who uses it: release managers and app teams asking "is prod frozen now, and until when?". Offline: it reads an
AppProject file (Argo CD YAML, loaded by ``policy.project.AppProject``) and evaluates with ``policy.windows`` at
``--at`` (default: now). Output:

* the window list like Argo CD's ``argocd proj windows list`` (ID STATUS KIND SCHEDULE DURATION APPLICATIONS
  NAMESPACES CLUSTERS MANUALSYNC SYNCOVERRUN TIMEZONE USEANDOPERATOR; STATUS is each window's own activity);
* with ``--app``: whether automatic and manual syncs may run now, the matched and active windows, when that
  changes next, and every window edge in the next ``--days`` days;
* ``--ics``: the windows' open periods in that range as an iCalendar file (deny and allow windows).

In server mode (``--api-server URL``, ``SYNCWARDEN_SERVER`` or ``syncwarden login``; ``--server`` here is the
app's destination) a ``--project`` that names no file is the name of a project on the server, which evaluates
(``/api/v1/projects/{name}/syncwindows`` and ``windows.ics``); the output is the same.

Exit codes: 0 (the answer was printed, whatever it is), 2 for bad input (the message names the file and field);
in server mode also 1 (denied) and 3 (server unavailable).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

import api.cli.proj_remote as proj_remote
from api.cli.common import Output, console, emit, fail, parse_time
from api.cli.remote import AuthTokenOpt
from api.cli.remote import target as target_of
from policy import ical
from policy import windows as sync_windows
from policy.errors import InvalidProject
from policy.project import AppProject

__all__ = ["windows"]

# instants near the ends of datetime's calendar cannot be looked ahead from (or back into)
_FIRST_YEAR, _LAST_YEAR = 1900, 9000

_COLUMNS = (
    "ID",
    "STATUS",
    "KIND",
    "SCHEDULE",
    "DURATION",
    "APPLICATIONS",
    "NAMESPACES",
    "CLUSTERS",
    "MANUALSYNC",
    "SYNCOVERRUN",
    "TIMEZONE",
    "USEANDOPERATOR",
)


def windows(
    project: Annotated[Path, typer.Option("--project", help="AppProject YAML file (Argo CD format).")],
    app: Annotated[str | None, typer.Option("--app", help="Application name: show its verdict.")] = None,
    namespace: Annotated[str, typer.Option("--namespace", help="The app's destination namespace.")] = "",
    server: Annotated[str, typer.Option("--server", help="The app's destination server URL.")] = "",
    cluster_name: Annotated[str, typer.Option("--cluster-name", help="The app's destination cluster name.")] = "",
    at: Annotated[str | None, typer.Option("--at", help="Evaluate at this RFC 3339 time (default: now).")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Look-ahead for transitions and --ics.")] = 7,
    ics: Annotated[bool, typer.Option("--ics", help="Print the freeze calendar as iCalendar instead.")] = False,
    output: Annotated[Output, typer.Option("-o", "--output", help="Output format.")] = Output.table,
    api_server: Annotated[
        str | None, typer.Option("--api-server", help="Ask this syncwarden server (--server is the app's).")
    ] = None,
    auth_token: AuthTokenOpt = None,
) -> None:
    """List a project's sync windows; with --app, whether syncs may run now and the coming transitions."""
    when = parse_time(at) if at else datetime.now(UTC)
    if not _FIRST_YEAR <= when.year <= _LAST_YEAR:
        fail(f"--at {_iso(when)} is outside the supported years {_FIRST_YEAR}-{_LAST_YEAR}")
    if app is None and (namespace or server or cluster_name):
        fail("--namespace, --server and --cluster-name describe an app: give --app too")
    if ics and output is not Output.table:
        fail("--ics prints iCalendar; it cannot be combined with -o")
    target = {"app": app or "", "namespace": namespace, "server": server, "cluster_name": cluster_name}
    remote = None if project.is_file() else target_of(api_server, auth_token)
    if remote is not None:
        if ics:
            text = proj_remote.windows_calendar(remote, str(project), target, app=app, at=when, days=days)
            sys.stdout.write(text)
            return
        remote_report, remote_items = proj_remote.windows_report(
            remote, str(project), target, app=app, at=when, days=days
        )
        if output is Output.table:
            _print_table(remote_report, remote_items, days)
        else:
            emit(remote_report, output)
        return
    loaded = _load(project)
    items = loaded.sync_windows or ()
    end = when + timedelta(days=days)
    try:
        if ics:
            chosen = [w for w in items if app is None or w.matches(**target)]
            sys.stdout.write(_calendar(loaded.name, items, chosen, start=when, end=end))
            return
        report: dict[str, Any] = {
            "project": loaded.name,
            "at": _iso(when),
            "windows": [{"id": i, "status": _status(w, when), **w.to_dict()} for i, w in enumerate(items)],
        }
        if app is not None:
            report["app"] = _app_report(items, target, when=when, end=end)
    except (ValueError, OverflowError) as exc:  # --at near the end of the calendar
        fail(f"--at {_iso(when)} with --days {days}: {exc}")
    if output is Output.table:
        _print_table(report, items, days)
    else:
        emit(report, output)


def _load(path: Path) -> AppProject:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read the project file: {exc.strerror or exc}")
    try:
        return AppProject.from_yaml(data, source=str(path))
    except InvalidProject as exc:
        fail(str(exc) if exc.source else f"{path}: {exc}")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _status(window: sync_windows.SyncWindow, when: datetime) -> str:
    return "Active" if window.is_active(when) else "Inactive"


def _ids(items: Sequence[sync_windows.SyncWindow], chosen: Sequence[sync_windows.SyncWindow]) -> list[int]:
    index = {id(w): i for i, w in enumerate(items)}
    return [index[id(w)] for w in chosen]


def _app_report(
    items: Sequence[sync_windows.SyncWindow], target: dict[str, str], *, when: datetime, end: datetime
) -> dict[str, Any]:
    state = sync_windows.windows_state(items, at=when, **target)
    changes = sync_windows.transitions(items, start=when, end=end, **target)
    return {
        "name": target["app"],
        "namespace": target["namespace"],
        "server": target["server"],
        "clusterName": target["cluster_name"],
        "canSyncAuto": state.can_sync_auto,
        "canSyncManual": state.can_sync_manual,
        "matched": _ids(items, state.matched),
        "active": _ids(items, state.active),
        "nextChange": None if state.next_change is None else _iso(state.next_change),
        "transitions": [
            {
                "at": _iso(moment),
                "canSyncAuto": after.can_sync_auto,
                "canSyncManual": after.can_sync_manual,
                "active": _ids(items, after.active),
            }
            for moment, after in changes
        ],
    }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "Enabled" if value else "Disabled"
    if isinstance(value, list):
        return ",".join(value) if value else "-"
    return str(value) if value not in (None, "") else "-"


def _rows(rows: list[list[str]]) -> str:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _print_table(report: dict[str, Any], items: Sequence[sync_windows.SyncWindow], days: int) -> None:
    out = console()
    if items:
        rows = [list(_COLUMNS)]
        for entry, w in zip(report["windows"], items, strict=True):
            rows.append(
                [
                    str(entry["id"]),
                    entry["status"],
                    w.kind,
                    w.schedule,
                    entry["duration"],
                    _cell(list(w.applications)),
                    _cell(list(w.namespaces)),
                    _cell(list(w.clusters)),
                    _cell(w.manual_sync),
                    _cell(w.sync_overrun),
                    w.time_zone or "UTC",
                    _cell(w.and_operator),
                ]
            )
        out.print(_rows(rows), markup=False)
    else:
        out.print(f"project {report['project']!r} has no sync windows", markup=False)
    app = report.get("app")
    if app is None:
        return
    verdict = {True: "allowed", False: "blocked"}
    lines = [
        "",
        f"app {app['name']!r} at {report['at']}:",
        f"  automatic sync: {verdict[app['canSyncAuto']]}",
        f"  manual sync:    {verdict[app['canSyncManual']]}",
        f"  matched windows: {_cell([str(i) for i in app['matched']])}",
        f"  active windows:  {_cell([str(i) for i in app['active']])}",
        f"  next change:     {app['nextChange'] or f'none within {sync_windows.LOOKAHEAD_DAYS} days'}",
        "",
    ]
    out.print("\n".join(lines), markup=False)
    if not app["transitions"]:
        out.print(f"no transitions in the next {days} days", markup=False)
        return
    rows = [["TIME", "AUTO", "MANUAL", "ACTIVE"]]
    for change in app["transitions"]:
        rows.append(
            [
                change["at"],
                verdict[change["canSyncAuto"]],
                verdict[change["canSyncManual"]],
                _cell([str(i) for i in change["active"]]),
            ]
        )
    out.print(f"transitions in the next {days} days:", markup=False)
    out.print(_rows(rows), markup=False)


def _calendar(
    name: str,
    items: Sequence[sync_windows.SyncWindow],
    chosen: Sequence[sync_windows.SyncWindow],
    *,
    start: datetime,
    end: datetime,
) -> str:
    events = []
    for index, w in zip(_ids(items, chosen), chosen, strict=True):
        headline = "Sync freeze" if w.kind == "deny" else "Sync allowed"
        details = [
            f"{w.label(index)} of project {name}",
            "applications: " + _cell(list(w.applications)),
            "namespaces: " + _cell(list(w.namespaces)),
            "clusters: " + _cell(list(w.clusters)),
            f"manual syncs: {'allowed' if w.manual_sync else 'follow the window'}",
        ]
        if w.description:
            details.insert(0, w.description)
        for opens, closes in sync_windows.window_runs(w, start=start, end=end):
            events.append(
                ical.CalendarEvent(
                    uid=ical.stable_uid(name, *w.identity, start=opens),
                    start=opens,
                    end=closes,
                    summary=f"{headline}: {name} window {index} ({w.schedule})",
                    description="\n".join(details),
                    categories=(w.kind,),
                )
            )
    return ical.calendar(events, stamp=start, name=f"{name} sync windows")
