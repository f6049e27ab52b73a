"""Differential tests: our compiled cron (policy.cron) against croniter, the reference, on random schedules.

Aspects covered:
* wall-clock search (naive datetimes): next fire after / last fire before, thousands of random schedules;
* instants in DST zones (Europe/Amsterdam, America/New_York, Australia/Lord_Howe, America/Santiago), with
  instants drawn close to the zones' transitions: croniter enumerates the wall-clock fire times, and an
  independent implementation of our mapping (first occurrence of a repeated time; a time skipped by
  spring-forward fires when the gap ends) turns them into instants. croniter's own zone handling differs on
  purpose-free details (it fires repeated times twice, and drops skipped times of wildcard-hour schedules),
  so it is not the reference for the mapping; test_cron.py pins the mapping by hand;
* the window activity test in UTC against croniter computing the same answer.

The generator avoids the corners where croniter and robfig/cron (Argo CD's parser, which we follow) disagree;
each of those is pinned in test_cron.py instead: croniter reads ``5-5`` as ``*``, ``a-a/n`` as ``a-max/n``,
``0-6`` in day-of-week and ``1/1`` in day-of-month as unrestricted, ``*/1`` in day-of-month as restricted, and
lets ``a/n`` in day-of-week run up to 7.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from policy import cron
from policy.windows import SyncWindow

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_DAY_FIELDS = (2, 4)


def _term(rnd: random.Random, index: int) -> str:
    low, high = _RANGES[index]
    while True:
        kind = rnd.randrange(7)
        a = rnd.randint(low, high - 1)
        b = rnd.randint(a + 1, high)
        full = a == low and b == high
        if kind == 0:
            return "*"
        if kind == 1:
            step = rnd.randint(1, high - low + 1)
            if step == 1 and index in _DAY_FIELDS:
                continue
            return f"*/{step}"
        if kind == 2:
            return str(rnd.randint(low, high))
        if kind == 3 and not (full and index in _DAY_FIELDS):
            return f"{a}-{b}"
        if kind == 4 and not (full and index in _DAY_FIELDS):
            return f"{a}-{b}/{rnd.randint(2, 5)}"
        if kind == 5 and index != 4 and a != low:
            return f"{a}/{rnd.randint(1, 7)}"
        if kind == 6:
            return ",".join(str(rnd.randint(low, high)) for _ in range(rnd.randint(2, 3)))


def _expression(rnd: random.Random) -> str:
    return " ".join(_term(rnd, index) for index in range(5))


def _schedules(seed: int, count: int) -> list[tuple[str, cron.CronSchedule]]:
    rnd = random.Random(seed)
    out = []
    while len(out) < count:
        expression = _expression(rnd)
        schedule = cron.parse(expression)
        if not schedule.never_fires():
            out.append((expression, schedule))
    return out


def test_wall_clock_search_agrees_with_croniter() -> None:
    rnd = random.Random(20261122)
    checked = 0
    for expression, schedule in _schedules(1, 3000):
        start = datetime(2020, 1, 1) + timedelta(seconds=rnd.randrange(10 * 365 * 86400))
        if rnd.random() < 0.3:
            start = start.replace(second=0)
        expected_next = croniter(expression, start).get_next(datetime)
        expected_prev = croniter(expression, start).get_prev(datetime)
        # croniter is strict on both sides; ours is inclusive at minute granularity
        on_minute = start.second == 0
        ours_next = schedule.next_wall(start + timedelta(minutes=1) if on_minute else start)
        ours_prev = schedule.prev_wall(start - timedelta(minutes=1) if on_minute else start)
        assert (ours_next, ours_prev) == (expected_next, expected_prev), (expression, start)
        checked += 1
    assert checked == 3000


_ZONES = ("Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "America/Santiago")


def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """UTC instants (to the hour) around which the zone's offset changes in ``year``."""
    out, at = [], datetime(year, 1, 1, tzinfo=UTC)
    previous = at.astimezone(zone).utcoffset()
    while at.year == year:
        at += timedelta(hours=1)
        offset = at.astimezone(zone).utcoffset()
        if offset != previous:
            out.append(at)
            previous = offset
    return out


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Our documented mapping, written independently: first occurrence; a skipped time fires when the gap ends."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    at = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the gap; walk to the first instant after it
    for step in (timedelta(minutes=1), timedelta(seconds=1)):
        while at.astimezone(zone).replace(tzinfo=None) < wall:
            at += step
        at -= step
    return at + timedelta(seconds=1)


def _reference_next(expression: str, zone: ZoneInfo, at: datetime) -> datetime:
    """croniter's wall-clock fire times, mapped to instants by the rule above: the first one after ``at``."""
    it = croniter(expression, at.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3))
    while True:
        fire = _instant(it.get_next(datetime), zone)
        if fire > at:
            return fire


def _reference_prev(expression: str, zone: ZoneInfo, at: datetime) -> datetime:
    it = croniter(expression, at.astimezone(zone).replace(tzinfo=None) + timedelta(hours=3))
    while True:
        fire = _instant(it.get_prev(datetime), zone)
        if fire < at:
            return fire


@pytest.mark.slow
@pytest.mark.parametrize("zone_name", _ZONES)
def test_fire_instants_in_dst_zones_agree_with_croniter(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    rnd = random.Random(zone_name)
    edges = _transitions(zone, 2026) + _transitions(zone, 2027)
    # schedules that fire around the transitions often: hours 0-4, or every few minutes
    schedules = [
        f"{rnd.choice(['*/15', '0', '30', '*/20', '10-50/10', '*'])} {rnd.choice(['*', '0-4', '1-3', '2', '*/2'])} "
        f"* * {rnd.choice(['*', '0', '1-5'])}"
        for _ in range(40)
    ] + [expression for expression, _ in _schedules(2, 40)]
    for expression in schedules:
        schedule = cron.parse(expression)
        for _ in range(10):
            at = rnd.choice(edges) + timedelta(seconds=rnd.randrange(-4 * 3600, 4 * 3600))
            us = cron.to_us(at)
            expected_next = cron.to_us(_reference_next(expression, zone, at))
            expected_prev = cron.to_us(_reference_prev(expression, zone, at))
            ours_next = cron.next_fire(schedule, zone, us, inclusive=False, ceil_us=us + 10 * 366 * 86400 * 10**6)
            ours_prev = cron.prev_fire(schedule, zone, us, floor_us=us - 10 * 366 * 86400 * 10**6)
            assert ours_next == expected_next, (expression, at.isoformat(), "next")
            assert ours_prev == expected_prev, (expression, at.isoformat(), "prev")


def test_activity_agrees_with_croniter_in_utc() -> None:
    rnd = random.Random(7)
    for expression, _ in _schedules(3, 400):
        duration = timedelta(minutes=rnd.choice([1, 5, 30, 60, 90, 240, 1440, 2880]))
        window = SyncWindow(kind="deny", schedule=expression, duration=duration, applications=("*",))
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.randrange(3 * 365 * 86400))
        for step in range(5):  # a few nearby instants, so cached runs are exercised too
            at = start + timedelta(minutes=step * rnd.randint(1, 90), seconds=rnd.choice([0, 0, 1, 59]))
            expected = croniter(expression, at - duration).get_next(datetime) < at
            assert window.is_active(at) == expected, (expression, str(duration), at.isoformat())
