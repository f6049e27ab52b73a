"""Our own compiled 5-field cron: parse once into bitsets, then answer "last fire ≤ t" and "next fire ≥ t".

Why not croniter on the hot path: a sync-window check runs for every reconcile of every app, and croniter
re-parses the expression and walks ``datetime`` objects field by field (hundreds of microseconds per answer).
Here a schedule is five integers (one bit per allowed value) and a search is a handful of bit operations per
month; ``policy.windows`` calls this module and caches the answer per window (see ``bench/policy_windows.py``).
croniter stays the reference: ``tests/policy/test_cron_differential.py`` compares the two on random schedules.

Dialect (Argo CD's parser, robfig/cron v3 with the fields minute hour day-of-month month day-of-week):

* each field is a comma-separated list of ``*`` or ``?`` (any), ``a``, ``a-b``, ``*/n``, ``a/n`` (= ``a-max/n``)
  and ``a-b/n``; month names ``jan``…``dec`` and weekday names ``sun``…``sat`` (case-insensitive);
* day-of-week is 0–6 (``7`` is an error), month 1–12, day-of-month 1–31, hour 0–23, minute 0–59;
* classic day rule: when day-of-month or day-of-week is unrestricted (``*``, ``?`` or ``*/1``) both must match,
  when both are restricted either may match (``0 0 1 * 1`` = the 1st and every Monday);
* stricter than robfig: descriptors (``@daily``), ``CRON_TZ=``/``TZ=`` prefixes (the window's ``timeZone`` is
  the one place a zone is given), signs (``+5``) and ``*-5`` are errors.

Two layers, both pure: wall-clock search on naive datetimes (:meth:`CronSchedule.next_wall`,
:meth:`CronSchedule.prev_wall`), and instants in a zone as integer microseconds since the epoch
(:func:`next_fire`, :func:`prev_fire`). A wall-clock fire time inside a spring-forward gap fires at the first
instant after the gap; on fall-back only the first occurrence of a repeated wall-clock time fires.

Errors: :class:`CronError` (a ``ValueError``) with a message naming the field and the offending term.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

__all__ = ["CronError", "CronSchedule", "from_us", "next_fire", "parse", "prev_fire", "to_us"]

_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, {n.lower(): i for i, n in enumerate(calendar.month_abbr) if n}),
    ("day-of-week", 0, 6, {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}),
)
_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # naive: wall clock in UTC
_US = _TICK = timedelta(microseconds=1)
#: no zone shifts its clock by more than this at once (real transitions are at most 2 h), so a fire time whose
#: instant lies on the other side of ``t`` is never further than this from ``t``'s wall-clock reading
_MAX_SHIFT = timedelta(hours=3)
_MAX_SHIFT_US = 3 * 3600 * 1_000_000
#: longest possible gap between two fires of a schedule that fires at all (29 Feb, skipping 2100): 8 years
_SEARCH_YEARS = 9


class CronError(ValueError):
    """An expression that is not a valid 5-field cron schedule."""


def _low(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


def _high(bits: int) -> int:
    return bits.bit_length() - 1


def _number(text: str, names: dict[str, int], field: str) -> int:
    value = names.get(text.lower())
    if value is not None:
        return value
    if not text.isascii() or not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number" + (" or a name" if names else ""))
    return int(text)


def _field_bits(text: str, field: str, low: int, high: int, names: dict[str, int]) -> tuple[int, bool]:
    """Bits of one field and whether it is unrestricted (``*``/``?`` without a step above 1)."""
    bits = 0
    star = False
    for term in text.split(","):
        base, slash, step_text = term.partition("/")
        if slash and ("/" in step_text or not step_text):
            raise CronError(f"{field}: bad step in {term!r}")
        step = _number(step_text, {}, field) if slash else 1
        if step == 0:
            raise CronError(f"{field}: step must be positive in {term!r}")
        if base in ("*", "?"):
            start, end = low, high
            star = star or step == 1
        else:
            first, dash, last = base.partition("-")
            if not first or (dash and (not last or "-" in last)):
                raise CronError(f"{field}: bad range {term!r}")
            start = _number(first, names, field)
            end = _number(last, names, field) if dash else (high if slash else start)
            if start < low or end > high:
                raise CronError(f"{field}: {term!r} is outside {low}-{high}")
            if start > end:
                raise CronError(f"{field}: range {term!r} starts after it ends")
        for value in range(start, end + 1, step):
            bits |= 1 << value
    return bits, star


@lru_cache(maxsize=4096)
def _weekday_days(dows: int, first_weekday: int, ndays: int) -> int:
    """Day-of-month bits of a month whose day 1 is ``first_weekday`` (0 = Sunday) for the weekdays in ``dows``."""
    days = 0
    for day in range(1, ndays + 1):
        if dows >> ((first_weekday + day - 1) % 7) & 1:
            days |= 1 << day
    return days


@lru_cache(maxsize=16384)
def _month_days(doms: int, dows: int, both: bool, year: int, month: int) -> int:
    first_weekday, ndays = calendar.monthrange(year, month)
    dom_days = doms & ((1 << (ndays + 1)) - 2)
    dow_days = _weekday_days(dows, (first_weekday + 1) % 7, ndays)
    return dom_days & dow_days if both else dom_days | dow_days


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed schedule. Build with :func:`parse`; the bit fields are one bit per allowed value."""

    expression: str
    minutes: int
    hours: int
    doms: int
    months: int
    dows: int
    dom_any: bool
    dow_any: bool

    def days(self, year: int, month: int) -> int:
        """Day-of-month bits on which this schedule fires in ``year``-``month`` (classic day rule)."""
        return _month_days(self.doms, self.dows, self.dom_any or self.dow_any, year, month)

    def never_fires(self) -> bool:
        """True for schedules with no fire time at all (``0 0 30 2 *``); leap days count as firing."""
        if not (self.dow_any and not self.dom_any):
            return False  # a weekday occurs in every month, and an unrestricted day-of-month always fits
        longest = {m: (29 if m == 2 else calendar.monthrange(2001, m)[1]) for m in range(1, 13)}
        return not any(self.months >> m & 1 and self.doms & ((1 << (n + 1)) - 2) for m, n in longest.items())

    def next_wall(self, start: datetime) -> datetime | None:
        """First fire wall-clock time at or after naive ``start`` (seconds round up), or None within 9 years."""
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + _MINUTE
        year, month, day, hour, minute = start.year, start.month, start.day, start.hour, start.minute
        for _ in range(_SEARCH_YEARS * 12 + 1):
            if self.months >> month & 1:
                days = self.days(year, month) >> day << day
                while days:
                    found = _low(days)
                    if found != day:
                        hour = minute = 0
                    hit = self._first_in_day(hour, minute)
                    if hit is not None:
                        return datetime(year, month, found, hit[0], hit[1])  # naive: wall clock
                    days &= days - 1
                    hour = minute = 0
            month, day, hour, minute = month + 1, 1, 0, 0
            if month > 12:
                month, year = 1, year + 1
                if year > 9999:
                    return None
        return None

    def prev_wall(self, end: datetime) -> datetime | None:
        """Last fire wall-clock time at or before naive ``end``, or None within 9 years."""
        year, month, day, hour, minute = end.year, end.month, end.day, end.hour, end.minute
        for _ in range(_SEARCH_YEARS * 12 + 1):
            if self.months >> month & 1:
                days = self.days(year, month) & ((2 << day) - 1)
                while days:
                    found = _high(days)
                    if found != day:
                        hour, minute = 23, 59
                    hit = self._last_in_day(hour, minute)
                    if hit is not None:
                        return datetime(year, month, found, hit[0], hit[1])  # naive: wall clock
                    days &= ~(1 << found)
                    hour, minute = 23, 59
            month, day, hour, minute = month - 1, 31, 23, 59
            if month < 1:
                month, year = 12, year - 1
                if year < 1:
                    return None
        return None

    def _first_in_day(self, hour: int, minute: int) -> tuple[int, int] | None:
        if self.hours >> hour & 1:
            mins = self.minutes >> minute << minute
            if mins:
                return hour, _low(mins)
        later = self.hours >> (hour + 1) << (hour + 1)
        return (_low(later), _low(self.minutes)) if later else None

    def _last_in_day(self, hour: int, minute: int) -> tuple[int, int] | None:
        if self.hours >> hour & 1:
            mins = self.minutes & ((2 << minute) - 1)
            if mins:
                return hour, _high(mins)
        earlier = self.hours & ((1 << hour) - 1)
        return (_high(earlier), _high(self.minutes)) if earlier else None


@lru_cache(maxsize=2048)
def parse(expression: str) -> CronSchedule:
    """Compile a 5-field cron expression; raises :class:`CronError` naming the field that is wrong."""
    text = expression.strip()
    if not text:
        raise CronError("schedule is empty")
    if text.startswith("@"):
        raise CronError(f"descriptors such as {text.split()[0]!r} are not supported; write the 5 fields")
    if text.upper().startswith(("CRON_TZ=", "TZ=")):
        raise CronError("a CRON_TZ=/TZ= prefix is not supported; set the window's timeZone instead")
    parts = text.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(parts)}")
    bits = [_field_bits(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    return CronSchedule(
        expression=" ".join(parts),
        minutes=bits[0][0],
        hours=bits[1][0],
        doms=bits[2][0],
        months=bits[3][0],
        dows=bits[4][0],
        dom_any=bits[2][1],
        dow_any=bits[4][1],
    )


# --- instants in a zone (integer microseconds since the Unix epoch) ---------------------------------------


def to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact); a naive datetime is a ValueError."""
    zone = at.tzinfo
    if zone is not UTC and (zone is None or at.utcoffset() is None):
        raise ValueError(f"naive datetime {at.isoformat()}: pass a timezone-aware time")
    return (at - _EPOCH) // _US


def from_us(us: int, zone: tzinfo = UTC) -> datetime:
    return (_EPOCH + timedelta(microseconds=us)).astimezone(zone)


def _wall(us: int, zone: tzinfo) -> datetime:
    if zone is UTC:
        return _NAIVE_EPOCH + timedelta(microseconds=us)
    return from_us(us, zone).replace(tzinfo=None, fold=0)


def _instant(wall: datetime, zone: tzinfo) -> int:
    """The instant a wall-clock fire time happens: first occurrence when repeated, end of the gap when skipped."""
    if zone is UTC:
        return (wall - _NAIVE_EPOCH) // _US
    first = wall.replace(tzinfo=zone, fold=0)
    before = first.utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    if before is None or after is None or before >= after:
        return to_us(first)  # unambiguous, or the first of two occurrences (fall-back)
    # spring-forward gap: the transition lies in (wall - after, wall - before]; find it to the second
    low, high = to_us(wall.replace(tzinfo=UTC) - after), to_us(wall.replace(tzinfo=UTC) - before)
    low_s, high_s = -(-low // 1_000_000), high // 1_000_000
    while low_s < high_s:
        mid = (low_s + high_s) // 2
        if from_us(mid * 1_000_000, zone).utcoffset() == after:
            high_s = mid
        else:
            low_s = mid + 1
    return high_s * 1_000_000


def _shift_near(us: int, zone: tzinfo) -> bool:
    """Whether the zone's offset changes within ``_MAX_SHIFT`` of ``us`` (so wall clock and instants diverge)."""
    if zone is UTC:
        return False
    here = from_us(us, zone).utcoffset()
    earlier = from_us(us - _MAX_SHIFT_US, zone).utcoffset()
    return not earlier == here == from_us(us + _MAX_SHIFT_US, zone).utcoffset()


def prev_fire(schedule: CronSchedule, zone: tzinfo, before_us: int, *, floor_us: int) -> int | None:
    """The last fire instant strictly before ``before_us``, or None if there is none at or after ``floor_us``."""
    wall = _wall(before_us, zone)
    near = _shift_near(before_us, zone)
    floor_wall = _wall(floor_us, zone) - _MAX_SHIFT
    candidate = schedule.prev_wall(wall + _MAX_SHIFT if near else wall - _TICK)
    while candidate is not None and candidate >= floor_wall:
        us = _instant(candidate, zone)
        if us < before_us:
            return us if us >= floor_us else None
        candidate = schedule.prev_wall(candidate - _MINUTE)
    return None


def next_fire(schedule: CronSchedule, zone: tzinfo, after_us: int, *, inclusive: bool, ceil_us: int) -> int | None:
    """The first fire instant after ``after_us`` (or at it, when ``inclusive``), or None if none by ``ceil_us``."""
    wall = _wall(after_us, zone)
    if _shift_near(after_us, zone):
        wall -= _MAX_SHIFT
    ceil_wall = _wall(ceil_us, zone) + _MAX_SHIFT
    candidate = schedule.next_wall(wall)
    while candidate is not None and candidate <= ceil_wall:
        us = _instant(candidate, zone)
        if us > after_us or (inclusive and us == after_us):
            return us if us <= ceil_us else None
        candidate = schedule.next_wall(candidate + _MINUTE)
    return None
