"""Decisions over a project's sync windows: may an automatic or a manual sync run at ``at``, which windows are
open, and when the answer changes. Re-exported by :mod:`policy.windows` (import from there).

Who calls: ``policy.evaluate`` (``check_sync`` for the gate), ``AppProject.windows_state`` and the API/CLI
(``windows_state``, ``transitions``). Every function takes the time as a parameter (aware datetimes only; a naive
one is a ``ValueError``), and only the windows that match the app count (Argo CD's ``Matches``).

The decision is Argo CD's ``CanSync`` (``shared/reference/argocd-policy-semantics.md`` §4.5): an active deny
blocks unless the sync is manual and every active deny has ``manualSync``; otherwise an active allow permits;
otherwise inactive allows block unless the sync is manual and every one of them has ``manualSync``; only
inactive denies permit. ``syncOverrun``: an operation already running (``started_at`` given) continues when
every blocking window has ``syncOverrun`` and the decision at ``started_at`` was "allowed".

Look-ahead (``next_change``, "opens next") follows each matched window's runs of constant activity and stops
after 366 days or 100,000 window edges, whichever comes first; then it answers ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from policy import cron
from policy.decision import Code, Decision, Violation

if TYPE_CHECKING:
    from policy.windows import SyncWindow

__all__ = ["LOOKAHEAD_DAYS", "WindowState", "check_sync", "transitions", "windows_state"]

log = logging.getLogger(__name__)

LOOKAHEAD_DAYS = 366
_LOOKAHEAD_US = LOOKAHEAD_DAYS * 86400 * 1_000_000
_MAX_EDGES = 100_000  # a dense schedule with a short duration can have a million edges a year

Matched = list[tuple[int, "SyncWindow"]]
Flags = tuple[bool, ...]


@dataclass(frozen=True)
class WindowState:
    """The windows' verdict for one app at one instant."""

    #: matched windows that are open at the instant
    active: tuple[SyncWindow, ...]
    #: windows that select the app (the only ones that count)
    matched: tuple[SyncWindow, ...]
    can_sync_auto: bool
    can_sync_manual: bool
    #: when ``(can_sync_auto, can_sync_manual)`` changes next: the fire instant for an opening window, the
    #: closing instant for a closing one; ``None`` when it does not change within the look-ahead
    next_change: datetime | None


def _matched(windows: Sequence[SyncWindow], app: str, namespace: str, server: str, cluster_name: str) -> Matched:
    target = (app, namespace, server, cluster_name)
    return [(index, window) for index, window in enumerate(windows) if window.matches_target(target)]


def _flags(matched: Matched, us: int) -> Flags:
    return tuple(window.run_at(us)[2] for _, window in matched)


def _decide(matched: Matched, flags: Flags, manual: bool) -> tuple[bool, list[int], str]:
    """(allowed, positions in ``matched`` of the blocking windows, the allowing rule)."""
    denies = [k for k, (_, w) in enumerate(matched) if flags[k] and w.kind == "deny"]
    if denies:
        if manual and all(matched[k][1].manual_sync for k in denies):
            return True, [], "manualSync on every active deny window " + _ids(matched, denies)
        return False, denies, ""
    for k, (index, window) in enumerate(matched):
        if flags[k] and window.kind == "allow":
            return True, [], f"allow window {index} is active"
    allows = [k for k, (_, w) in enumerate(matched) if w.kind == "allow"]
    if allows:
        if manual and all(matched[k][1].manual_sync for k in allows):
            return True, [], "manualSync on every allow window " + _ids(matched, allows)
        return False, allows, ""
    return True, [], "no deny window is active and no allow window matches"


def _ids(matched: Matched, positions: list[int]) -> str:
    return ", ".join(str(matched[k][0]) for k in positions)


def _iso(us: int) -> str:
    return cron.from_us(us, UTC).isoformat().replace("+00:00", "Z")


def _scan(matched: Matched, us: int, stop_us: int, changed: Callable[[Flags], bool]) -> tuple[int, int, Flags] | None:
    """The first window edge after ``us`` (up to ``stop_us``) where ``changed(flags)`` holds: (edge, at, flags)."""
    x = us
    for _ in range(_MAX_EDGES):
        runs = [window.run_at(x) for _, window in matched]
        nxt = min(hi for _, hi, _ in runs)
        if nxt > stop_us:
            return None
        flags = _flags(matched, nxt)
        if changed(flags):
            edge = min(hi if active else hi - 1 for _, hi, active in runs if hi == nxt)
            return edge, nxt, flags
        x = nxt
    return None


def check_sync(
    windows: Sequence[SyncWindow],
    *,
    manual: bool,
    app: str,
    namespace: str,
    server: str = "",
    cluster_name: str = "",
    at: datetime,
    started_at: datetime | None = None,
) -> Decision:
    """May a sync (``manual`` or automatic) run at ``at``? ``started_at``: the start of an operation already running.

    A denial has one ``window.blocked`` violation per blocking window, naming it (index, kind, schedule,
    duration, zone) and when this kind of sync may run next. Fails closed with ``window.invalid``.
    """
    us = cron.to_us(at)
    start_us = None if started_at is None else cron.to_us(started_at)
    try:
        return _check(windows, manual, (app, namespace, server, cluster_name), us, start_us)
    except (ValueError, OverflowError) as exc:  # instants out of datetime's range: fail closed, loudly
        log.error("sync windows for app %s could not be evaluated at %s: %s", app, at, exc)
        return Decision.deny(
            Violation(Code.WINDOW_INVALID, f"sync windows could not be evaluated: {exc}", "spec.syncWindows", "")
        )


def _check(
    windows: Sequence[SyncWindow], manual: bool, target: tuple[str, str, str, str], us: int, start_us: int | None
) -> Decision:
    matched: Matched = []
    on: list[bool] = []
    deny_on = any_allow = False
    allow_on = -1
    for index, window in enumerate(windows):  # one pass: the common answers return without building more
        if window.matches_target(target):
            active = window.active_us(us)
            matched.append((index, window))
            on.append(active)
            if window.kind == "deny":
                deny_on = deny_on or active
            else:
                any_allow = True
                if active and allow_on < 0:
                    allow_on = index
    if not matched:
        return Decision.allow("no sync window matches the app")
    if not deny_on:
        if allow_on >= 0:
            return Decision.allow(f"allow window {allow_on} is active")
        if not any_allow:
            return Decision.allow("no deny window is active and no allow window matches")
    flags = tuple(on)
    allowed, blocking, rule = _decide(matched, flags, manual)
    if allowed:
        return Decision.allow(rule)
    overrun = start_us is not None and all(matched[k][1].sync_overrun for k in blocking)
    if overrun and start_us is not None and _decide(matched, _flags(matched, start_us), manual)[0]:
        return Decision.allow(
            f"syncOverrun on windows {_ids(matched, blocking)}: the operation started at "
            f"{_iso(start_us)}, when it was allowed"
        )
    return _denial(matched, us, flags, blocking, manual)


def _blocked(matched: Matched, flags: Flags, blocking: list[int], manual: bool, opens: int | None) -> Decision:
    kind = "manual" if manual else "automatic"
    if opens is None:
        when = f"{kind} syncs stay blocked for at least {LOOKAHEAD_DAYS} days"
    else:
        when = f"{kind} syncs may run again at {_iso(opens)}"
    violations = []
    for k in blocking:
        index, window = matched[k]
        state = "is active" if window.kind == "deny" else "is not active"
        violations.append(
            Violation(
                Code.WINDOW_BLOCKED,
                f"{kind} sync blocked: {window.label(index)} {state}; {when}",
                f"spec.syncWindows[{index}]",
                f"syncWindows[{index}]",
            )
        )
    return Decision.deny(
        *violations,
        active=[index for (index, _), on in zip(matched, flags, strict=True) if on],
        next_open=None if opens is None else _iso(opens),
    )


#: (manual, compiled windows...) -> (lo, hi, violations, details): a denial holds while every window stays in its run
_DENIALS: dict[tuple[object, ...], tuple[int, int, Decision]] = {}


def _denial(matched: Matched, us: int, flags: Flags, blocking: list[int], manual: bool) -> Decision:
    """The denial with when this kind of sync may run next, cached per joint run of the matched windows."""
    key = (manual, *[window.token for _, window in matched])
    hit = _DENIALS.get(key)
    if hit is None or not hit[0] <= us < hit[1]:
        runs = [window.run_at(us) for _, window in matched]
        found = _scan(matched, us, us + _LOOKAHEAD_US, lambda fl: _decide(matched, fl, manual)[0])
        decision = _blocked(matched, flags, blocking, manual, None if found is None else found[0])
        if len(_DENIALS) >= 1024:
            _DENIALS.clear()
        # "not found" only holds for instants whose look-ahead ends no later than this one's
        hit = (max(lo for lo, _, _ in runs), min(hi for _, hi, _ in runs) if found else us + 1, decision)
        _DENIALS[key] = hit
    cached = hit[2]
    details = {"active": list(cached.details["active"]), "next_open": cached.details["next_open"]}
    return Decision(False, cached.violations, cached.rule, details)


def _state(matched: Matched, flags: Flags, next_change: int | None) -> WindowState:
    return WindowState(
        active=tuple(w for (_, w), on in zip(matched, flags, strict=True) if on),
        matched=tuple(w for _, w in matched),
        can_sync_auto=_decide(matched, flags, False)[0],
        can_sync_manual=_decide(matched, flags, True)[0],
        next_change=None if next_change is None else cron.from_us(next_change, UTC),
    )


def _verdict(matched: Matched, flags: Flags) -> tuple[bool, bool]:
    return _decide(matched, flags, False)[0], _decide(matched, flags, True)[0]


def _differs(flags: Flags) -> Callable[[Flags], bool]:
    return lambda other: other != flags


def _next_change(matched: Matched, us: int, flags: Flags) -> int | None:
    now = _verdict(matched, flags)
    found = _scan(matched, us, us + _LOOKAHEAD_US, lambda fl: _verdict(matched, fl) != now)
    return None if found is None else found[0]


def windows_state(
    windows: Sequence[SyncWindow], *, app: str, namespace: str, server: str = "", cluster_name: str = "", at: datetime
) -> WindowState:
    """Which matched windows are open at ``at``, whether auto and manual syncs may run, and when that changes."""
    us = cron.to_us(at)
    matched = _matched(windows, app, namespace, server, cluster_name)
    if not matched:
        return WindowState((), (), True, True, None)
    try:
        flags = _flags(matched, us)
        return _state(matched, flags, _next_change(matched, us, flags))
    except (ValueError, OverflowError) as exc:  # instants out of datetime's range: fail closed, loudly
        log.error("sync windows for app %s could not be evaluated at %s: %s", app, at, exc)
        return WindowState((), tuple(w for _, w in matched), False, False, None)


def transitions(
    windows: Sequence[SyncWindow],
    *,
    app: str,
    namespace: str,
    server: str = "",
    cluster_name: str = "",
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, WindowState]]:
    """Every instant in ``(start, end]`` where a matched window opens or closes, with the state right after it.

    Raises ``ValueError`` when the range (plus the look-ahead) leaves the years datetime can represent.
    """
    us, stop = cron.to_us(start), cron.to_us(end)
    matched = _matched(windows, app, namespace, server, cluster_name)
    if not matched or stop <= us:
        return []
    try:
        return _transitions(matched, us, stop)
    except OverflowError as exc:
        raise ValueError(f"cannot evaluate sync windows between {start} and {end}: {exc}") from None


def _transitions(matched: Matched, us: int, stop: int) -> list[tuple[datetime, WindowState]]:
    flags = _flags(matched, us)
    points: list[tuple[int, int, Flags]] = []
    x = us
    while (found := _scan(matched, x, stop, _differs(flags))) is not None:
        _, x, flags = found
        points.append(found)
    out: list[tuple[datetime, WindowState]] = []
    following: int | None = None
    if points:
        following = _next_change(matched, points[-1][1], points[-1][2])
    for position in range(len(points) - 1, -1, -1):
        edge, _, here = points[position]
        if position + 1 < len(points):
            after_edge, _, after = points[position + 1]
            if _verdict(matched, after) != _verdict(matched, here):
                following = after_edge
        out.append((cron.from_us(edge, UTC), _state(matched, here, following)))
    out.reverse()
    return out
