"""A project's sync windows over HTTP: what is open now, whether an app may sync, the coming transitions, and the
freeze calendar as iCalendar (``windows.ics``, for release managers' calendar subscriptions).

Same answers as ``syncwarden proj windows`` (both evaluate with :mod:`policy.windows` at one instant; the API reads
the clock only here, at the entry point). Needs ``projects, get, <project>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import StateDep, require
from api.errors import ApiError
from api.schemas import ERRORS, AppWindows, WindowsReport, WindowTransition
from policy import ical
from policy import windows as sync_windows

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{name}", tags=["sync windows"], responses=ERRORS)

_FIRST_YEAR, _LAST_YEAR = 1900, 9000
At = Annotated[datetime | None, Query(description="evaluate at this RFC 3339 time with offset (default: now)")]
Days = Annotated[int, Query(ge=1, le=366, description="look-ahead for transitions and calendar events")]
AppName = Annotated[str | None, Query(description="an application name: its verdict and transitions")]


def _when(at: datetime | None, state: StateDep) -> datetime:
    if at is None:
        return state.now()
    if at.tzinfo is None:
        raise ApiError(422, "query.at: the time needs a zone offset (Z or +01:00)", code="invalid-request")
    if not _FIRST_YEAR <= at.year <= _LAST_YEAR:
        raise ApiError(422, f"query.at: outside the supported years {_FIRST_YEAR}-{_LAST_YEAR}", code="invalid-request")
    return at.astimezone(UTC)


def _ids(items: Sequence[sync_windows.SyncWindow], chosen: Sequence[sync_windows.SyncWindow]) -> list[int]:
    index = {id(w): i for i, w in enumerate(items)}
    return [index[id(w)] for w in chosen]


@router.get("/syncwindows", response_model=WindowsReport, dependencies=[require("projects", "get", "{name}")])
def get_windows(
    name: str, state: StateDep, at: At = None, app: AppName = None, namespace: str = "", server: str = "",
    cluster_name: Annotated[str, Query(alias="clusterName")] = "", days: Days = 7,
) -> WindowsReport:
    """The windows with their status now; with ``app``, whether automatic and manual syncs may run now, when that
    changes next and every transition in the next ``days`` days."""
    when = _when(at, state)
    items = state.store.projects.get(name).project().sync_windows or ()
    windows = [{"id": i, "status": "Active" if w.is_active(when) else "Inactive", **w.to_dict()}
               for i, w in enumerate(items)]
    report = WindowsReport(project=name, at=when, windows=windows)
    if app is not None:
        target = {"app": app, "namespace": namespace, "server": server, "cluster_name": cluster_name}
        now_state = sync_windows.windows_state(items, at=when, **target)
        changes = sync_windows.transitions(items, start=when, end=when + timedelta(days=days), **target)
        report.app = AppWindows(
            name=app, namespace=namespace, server=server, cluster_name=cluster_name,
            can_sync_auto=now_state.can_sync_auto, can_sync_manual=now_state.can_sync_manual,
            matched=_ids(items, now_state.matched), active=_ids(items, now_state.active),
            next_change=now_state.next_change,
            transitions=[
                WindowTransition(at=moment, can_sync_auto=after.can_sync_auto, can_sync_manual=after.can_sync_manual,
                                 active=_ids(items, after.active))
                for moment, after in changes
            ],
        )
    return report


@router.get(
    "/windows.ics",
    response_class=Response,
    dependencies=[require("projects", "get", "{name}")],
    responses={200: {"content": {"text/calendar": {}}, "description": "RFC 5545 calendar"}},
)
def windows_calendar(
    name: str, state: StateDep, at: At = None, app: AppName = None, namespace: str = "", server: str = "",
    cluster_name: Annotated[str, Query(alias="clusterName")] = "", days: Days = 30,
) -> Response:
    """The open periods of the project's windows (freezes and allow windows) as an iCalendar file."""
    when = _when(at, state)
    items = state.store.projects.get(name).project().sync_windows or ()
    target = {"app": app or "", "namespace": namespace, "server": server, "cluster_name": cluster_name}
    chosen = [w for w in items if app is None or w.matches(**target)]
    events = []
    for index, w in zip(_ids(items, chosen), chosen, strict=True):
        headline = "Sync freeze" if w.kind == "deny" else "Sync allowed"
        details = [f"{w.label(index)} of project {name}",
                   "applications: " + (",".join(w.applications) or "-"),
                   "namespaces: " + (",".join(w.namespaces) or "-"),
                   "clusters: " + (",".join(w.clusters) or "-"),
                   f"manual syncs: {'allowed' if w.manual_sync else 'follow the window'}"]
        if w.description:
            details.insert(0, w.description)
        for opens, closes in sync_windows.window_runs(w, start=when, end=when + timedelta(days=days)):
            events.append(ical.CalendarEvent(
                uid=ical.stable_uid(name, *w.identity, start=opens), start=opens, end=closes,
                summary=f"{headline}: {name} window {index} ({w.schedule})", description="\n".join(details),
                categories=(w.kind,),
            ))
    body = ical.calendar(events, stamp=when, name=f"{name} sync windows")
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}-windows.ics"'})
