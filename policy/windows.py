"""Sync windows (change freezes): the model, load-time validation, and the activity test with its cache.

Who calls: ``policy.project.AppProject`` builds :class:`SyncWindow` objects with :meth:`SyncWindow.from_dict` and
checks the list with :func:`validate_windows`; the decision functions (``check_sync``, ``windows_state``,
``transitions``) live in :mod:`policy.window_state` and are re-exported here, so callers import one module.

Semantics follow Argo CD (``shared/reference/argocd-policy-semantics.md`` §4): a window is *active* at ``t`` when
some fire time ``s`` of its schedule satisfies ``t - duration < s < t`` (open at both ends, so overlapping
occurrences merge), and the selectors match with gobwas globs (dialect G, no negation), OR by default and AND
with ``andOperator``. Deliberate differences (DESIGN.md difference 5; the README lists them):

* invalid windows are rejected here, never at sync time: bad cron (see :mod:`policy.cron`), a schedule that never
  fires (``0 0 30 2 *``; Argo CD treats it as permanently active), an unknown ``timeZone`` (Argo CD silently
  uses UTC), a missing, unparseable, zero or negative ``duration``, a kind other than ``allow``/``deny``, a
  window that selects nothing, a selector that is not a valid glob, unknown keys, description over 255;
* time zones are applied at the evaluated instant (Argo CD uses the offset of the current wall clock, so edges
  move by the DST delta when it evaluates another instant); fire times are local wall-clock times, a time
  skipped by spring-forward fires at the end of the gap, a time repeated by fall-back fires once (the first);
  ``duration`` is elapsed time.

croniter is the reference implementation in the tests; here it is only a second opinion at load time (a schedule
it cannot read is rejected too). The hot path never calls it: each window caches the run of constant activity
(as integer microseconds) around the last instant it was asked about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from policy import cron, patterns
from policy.errors import InvalidWindow
from policy.window_state import LOOKAHEAD_DAYS, WindowState, check_sync, transitions, windows_state

__all__ = [
    "KINDS",
    "LOOKAHEAD_DAYS",
    "SyncWindow",
    "WindowState",
    "check_sync",
    "format_go_duration",
    "parse_go_duration",
    "transitions",
    "validate_windows",
    "window_runs",
    "windows_state",
]

KINDS = ("allow", "deny")
_MAX_DESCRIPTION = 255
_MAX_GO_DURATION_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
#: how far a run of constant activity is followed (a window that is always open is cut into runs this long)
HORIZON_US = 7 * 86400 * 1_000_000

# Argo CD's JSON names, in its struct order (to_dict keeps this order)
_JSON = (
    ("kind", "kind"),
    ("schedule", "schedule"),
    ("duration", "duration"),
    ("applications", "applications"),
    ("namespaces", "namespaces"),
    ("clusters", "clusters"),
    ("manualSync", "manual_sync"),
    ("timeZone", "time_zone"),
    ("andOperator", "and_operator"),
    ("description", "description"),
    ("syncOverrun", "sync_overrun"),
)
_KEYS = {key for key, _ in _JSON}
_LISTS = ("applications", "namespaces", "clusters")
_FLAGS = ("manualSync", "andOperator", "syncOverrun")

_GO_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5
    "μs": 1_000,  # U+03BC
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_GO_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")

Run = tuple[int, int, bool]  # [lo, hi) in microseconds since the epoch, and whether the window is active there


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (``30m``, ``1h30m``, ``1.5h``, ``-2s``; no ``d``)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total, pos = 0, 0
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"invalid duration {text!r}")
        whole, frac, unit = match.groups()
        if not whole and not frac:
            raise ValueError(f"invalid duration {text!r}")
        if not unit:
            raise ValueError(f"missing unit in duration {text!r} (use ns, us, ms, s, m or h)")
        scale = _GO_UNITS.get(unit)
        if scale is None:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r} (use ns, us, ms, s, m or h)")
        total += int(whole or "0") * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
        if total > _MAX_GO_DURATION_NS:
            raise ValueError(f"duration {text!r} is out of range")
        pos = match.end()
    return -total if text.startswith("-") else total


def format_go_duration(value: timedelta) -> str:
    """A Go duration string for ``value`` (``1h30m``, ``90s``, ``1.5s``), for windows built in code."""
    us = value // timedelta(microseconds=1)
    sign, us = ("-", -us) if us < 0 else ("", us)
    hours, rest = divmod(us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if seconds or micros or not out:
        out += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "s"
    return sign + out


def _zone(name: str) -> tzinfo:
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        message = f"unknown time zone {name!r} (use an IANA name such as Europe/Amsterdam)"
        raise InvalidWindow("timeZone", message) from None


def _reference_accepts(expression: str) -> bool:
    """Second opinion from croniter (imported lazily: it is slow to import and only needed when loading)."""
    from croniter import croniter  # the only croniter import in the code base (import-linter contract)

    return bool(croniter.is_valid(expression.replace("?", "*")))


_us = cron.to_us


class _Compiled:
    """What a window needs at check time, built once: bitsets, zone, duration, matchers and a run cache."""

    __slots__ = ("apps", "clusters", "dur_us", "memo", "namespaces", "runs", "schedule", "zone")

    def __init__(self, window: SyncWindow) -> None:
        self.schedule = cron.parse(window.schedule)
        self.zone = _zone(window.time_zone)
        self.dur_us = window.duration // timedelta(microseconds=1)
        self.apps: tuple[Callable[[str], bool], ...] = tuple(map(patterns.compile_glob, window.applications))
        self.namespaces = tuple(map(patterns.compile_glob, window.namespaces))
        self.clusters = tuple(map(patterns.compile_glob, window.clusters))
        self.runs: tuple[Run, ...] = ()
        self.memo: dict[tuple[str, str, str, str], bool] = {}

    def run(self, us: int) -> Run:
        for run in self.runs:
            if run[0] <= us < run[1]:
                return run
        run = self._compute(us)
        self.runs = (run, *self.runs[:7])  # a few runs: "now", plus what a look-ahead scan visited
        return run

    def _compute(self, us: int) -> Run:
        """A run of constant activity containing ``us``, followed forward at most HORIZON_US."""
        sched, zone, dur = self.schedule, self.zone, self.dur_us
        last = cron.prev_fire(sched, zone, us, floor_us=us - dur + 1)
        if last is None:  # inactive until just after the next fire time (at the fire instant itself: inactive)
            nxt = cron.next_fire(sched, zone, us, inclusive=True, ceil_us=us + HORIZON_US)
            return (us, us + HORIZON_US if nxt is None else nxt + 1, False)
        end, cap = last + dur, us + HORIZON_US
        while end < cap:  # overlapping occurrences merge: follow fires that start before the run ends
            later = cron.prev_fire(sched, zone, end, floor_us=end - dur + 1)
            if later is None:
                break
            end = later + dur
        return (last + 1, end, True)

    def opening(self, us: int, *, floor_us: int) -> int:
        """The fire instant that opened the active run containing ``us`` (merged occurrences walked back)."""
        first = self.run(us)[0] - 1
        while first > floor_us:
            earlier = cron.prev_fire(self.schedule, self.zone, first, floor_us=first - self.dur_us + 1)
            if earlier is None:
                break
            first = earlier
        return first


@dataclass(frozen=True)
class SyncWindow:
    """One entry of ``spec.syncWindows``. Validated and compiled on construction (raises :class:`InvalidWindow`)."""

    kind: str
    schedule: str
    duration: timedelta
    applications: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    manual_sync: bool = False
    time_zone: str = ""
    and_operator: bool = False
    description: str = ""
    sync_overrun: bool = False
    #: JSON keys present in the manifest this came from, and the duration as written (for a faithful to_dict)
    present: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    duration_text: str = field(default="", compare=False, repr=False)
    _compiled: _Compiled = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidWindow("kind", f"must be 'allow' or 'deny', not {self.kind!r}")
        try:
            schedule = cron.parse(self.schedule)
        except cron.CronError as exc:
            raise InvalidWindow("schedule", f"{self.schedule!r} is not a valid cron schedule: {exc}") from None
        if schedule.never_fires():
            raise InvalidWindow("schedule", f"{self.schedule!r} never fires (no month has such a day)")
        if not _reference_accepts(schedule.expression):
            raise InvalidWindow("schedule", f"{self.schedule!r} is not a valid cron schedule")
        if self.duration <= timedelta(0):
            raise InvalidWindow("duration", f"must be positive, got {self.duration_text or self.duration}")
        if not (self.applications or self.namespaces or self.clusters):
            raise InvalidWindow("", "selects nothing: give at least one of applications, namespaces or clusters")
        for name in _LISTS:
            for index, pattern in enumerate(getattr(self, name)):
                if not patterns.is_valid_glob(pattern):
                    raise InvalidWindow(f"{name}[{index}]", f"{pattern!r} is not a valid glob")
        if len(self.description) > _MAX_DESCRIPTION:
            raise InvalidWindow("description", f"longer than {_MAX_DESCRIPTION} characters")
        object.__setattr__(self, "_compiled", _Compiled(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, field: str = "spec.syncWindows[0]") -> SyncWindow:
        """Build from Argo CD's JSON/YAML form; errors name ``field`` and the key (``spec.syncWindows[2].schedule``)."""
        if not isinstance(data, Mapping):
            raise InvalidWindow(field, f"must be a mapping, not {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown:
            raise InvalidWindow(f"{field}.{unknown[0]}", f"unknown key (known: {', '.join(k for k, _ in _JSON)})")
        present = frozenset(key for key, value in data.items() if value is not None)
        values: dict[str, Any] = {}
        for key, attr in _JSON:
            value = data.get(key)
            if value is None:
                if key in ("kind", "schedule", "duration"):
                    raise InvalidWindow(f"{field}.{key}", "is required")
                continue
            if key in _LISTS:
                if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                    raise InvalidWindow(f"{field}.{key}", "must be a list of strings")
                value = tuple(value)
            elif key in _FLAGS:
                if not isinstance(value, bool):
                    raise InvalidWindow(f"{field}.{key}", "must be true or false")
            elif not isinstance(value, str):
                raise InvalidWindow(f"{field}.{key}", "must be a string")
            values[attr] = value
        text = values.pop("duration")
        try:
            nanos = parse_go_duration(text)
        except ValueError as exc:
            raise InvalidWindow(f"{field}.duration", str(exc)) from None
        try:
            return cls(duration=timedelta(microseconds=nanos // 1000), present=present, duration_text=text, **values)
        except InvalidWindow as exc:
            where = f"{field}.{exc.field}" if exc.field else field
            raise InvalidWindow(where, exc.detail) from None

    def to_dict(self) -> dict[str, Any]:
        """Argo CD's JSON form: the keys that were present (built in code: required keys and non-defaults)."""
        out: dict[str, Any] = {}
        for key, attr in _JSON:
            value = getattr(self, attr)
            if key == "duration":
                value = self.duration_text or format_go_duration(self.duration)
            if key in self.present or key in ("kind", "schedule", "duration") or (not self.present and value):
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def zone(self) -> tzinfo:
        return self._compiled.zone

    def run_at(self, us: int) -> tuple[int, int, bool]:
        """The run ``[lo, hi)`` (microseconds since the epoch) of constant activity around ``us``, and the activity.

        An active run opens just after a fire instant (``lo - 1``) and closes at ``hi``; an inactive run ends
        just after the next fire instant (``hi - 1``). For :mod:`policy.window_state` and the calendar export.
        """
        return self._compiled.run(us)

    @property
    def token(self) -> object:
        """An identity for caches keyed on this window's compiled form (kept alive by the key)."""
        return self._compiled

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes two windows duplicates (Argo CD's identity hash: not manualSync, syncOverrun, description)."""
        return (
            self.kind,
            self._compiled.schedule.expression,
            self.duration,
            self.applications,
            self.namespaces,
            self.clusters,
            self.time_zone or "UTC",
            self.and_operator,
        )

    def label(self, index: int | None = None) -> str:
        """``deny window 0 ('0 22 * * *' for 1h, Europe/Amsterdam)`` for messages."""
        name = f"{self.kind} window" + ("" if index is None else f" {index}")
        duration = self.duration_text or format_go_duration(self.duration)
        return f"{name} ({self._compiled.schedule.expression!r} for {duration}, {self.time_zone or 'UTC'})"

    def is_active(self, at: datetime) -> bool:
        """Whether the window is open at ``at`` (aware): a fire time lies in ``(at - duration, at)``."""
        us = _us(at)
        for lo, hi, active in self._compiled.runs:
            if lo <= us < hi:
                return active
        return self._compiled.run(us)[2]

    def active_us(self, us: int) -> bool:
        """:meth:`is_active` for an instant given as microseconds since the epoch."""
        for lo, hi, active in self._compiled.runs:
            if lo <= us < hi:
                return active
        return self._compiled.run(us)[2]

    def matches(self, *, app: str, namespace: str, server: str = "", cluster_name: str = "") -> bool:
        """Argo CD's ``Matches``: globs on app name, destination namespace, and destination name *or* server."""
        return self.matches_target((app, namespace, server, cluster_name))

    def matches_target(self, target: tuple[str, str, str, str]) -> bool:
        """:meth:`matches` for ``(app, namespace, server, cluster_name)``; answers are memoised per window."""
        compiled = self._compiled
        hit = compiled.memo.get(target)
        if hit is not None:
            return hit
        app, namespace, server, cluster_name = target
        lists = (
            (compiled.apps, any(m(app) for m in compiled.apps)),
            (compiled.namespaces, any(m(namespace) for m in compiled.namespaces)),
            (
                compiled.clusters,
                any((cluster_name and m(cluster_name)) or (server and m(server)) for m in compiled.clusters),
            ),
        )
        configured = [found for matchers, found in lists if matchers]
        hit = all(configured) if self.and_operator else any(configured)
        if len(compiled.memo) >= 4096:  # bounded: app names come from users
            compiled.memo.clear()
        compiled.memo[target] = hit
        return hit


def validate_windows(windows: Sequence[SyncWindow], *, field: str = "spec.syncWindows") -> None:
    """Project-level checks: no two windows with the same identity (as Argo CD's ``HashIdentity``)."""
    seen: dict[tuple[Any, ...], int] = {}
    for index, window in enumerate(windows):
        first = seen.setdefault(window.identity, index)
        if first != index:
            raise InvalidWindow(
                f"{field}[{index}]",
                f"duplicates window {first} (same kind, schedule, duration, selectors, time zone and operator; "
                "manualSync, syncOverrun and description do not make windows different)",
            )


def window_runs(window: SyncWindow, *, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The window's open periods ``(opens, closes)`` (UTC) that overlap ``[start, end]``, occurrences merged."""
    compiled = window._compiled
    us, stop = _us(start), _us(end)
    spans: list[list[int]] = []
    while us <= stop:
        lo, hi, active = compiled.run(us)
        if active and spans and spans[-1][1] == us:  # a run cut at the look-ahead horizon goes on
            spans[-1][1] = hi
        elif active:
            spans.append([compiled.opening(us, floor_us=us - HORIZON_US) if not spans else lo - 1, hi])
        us = hi
    return [(cron.from_us(opens), cron.from_us(closes)) for opens, closes in spans]
