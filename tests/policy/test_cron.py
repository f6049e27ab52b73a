"""policy.cron by hand: the dialect (Argo CD's robfig/cron parser, stricter where noted), the day rule,
schedules that never fire, and how wall-clock fire times become instants across DST changes.

The differential tests against croniter are in test_cron_differential.py; the corners where croniter and
robfig disagree (and we follow robfig) are pinned here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from policy import cron

AMS = ZoneInfo("Europe/Amsterdam")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
YEAR_US = 366 * 86400 * 1_000_000


def fires(expression: str, start: datetime, count: int) -> list[datetime]:
    schedule = cron.parse(expression)
    out, at = [], start
    for _ in range(count):
        found = schedule.next_wall(at)
        assert found is not None
        out.append(found)
        at = found + timedelta(minutes=1)
    return out


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("*/20 * * * *", ["00:00", "00:20", "00:40", "01:00"], id="step"),
        pytest.param("5/20 * * * *", ["00:05", "00:25", "00:45", "01:05"], id="start-step-means-to-max"),
        pytest.param("10-30/10 2 * * *", ["02:10", "02:20", "02:30", "02:10"], id="range-step"),
        pytest.param("0,30 1,3 * * *", ["01:00", "01:30", "03:00", "03:30"], id="lists"),
        pytest.param("? 4 * * *", ["04:00", "04:01", "04:02", "04:03"], id="question-mark-is-any"),
        pytest.param("0   5\t* * *", ["05:00", "05:00", "05:00", "05:00"], id="any-whitespace"),
    ],
)
def test_minute_and_hour_forms(expression: str, expected: list[str]) -> None:
    got = fires(expression, datetime(2026, 1, 5), 4)
    assert [f"{d:%H:%M}" for d in got] == expected


def test_names_are_case_insensitive() -> None:
    assert _bits("0 0 * JAN-mar mon-FRI") == _bits("0 0 * 1-3 1-5")
    assert _bits("0 0 * Jan/2 sun,SAT") == _bits("0 0 * 1,3,5,7,9,11 0,6")


def _bits(expression: str) -> tuple[int, ...]:
    s = cron.parse(expression)
    return (s.minutes, s.hours, s.doms, s.months, s.dows, s.dom_any, s.dow_any)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param("0 0 * * 7", "day-of-week: '7' is outside 0-6", id="weekday-7"),
        pytest.param("@daily", "descriptors", id="descriptor"),
        pytest.param("@every 1h", "descriptors", id="every"),
        pytest.param("CRON_TZ=Europe/Paris 0 0 * * *", "timeZone", id="cron-tz-prefix"),
        pytest.param("TZ=UTC 0 0 * * *", "timeZone", id="tz-prefix"),
        pytest.param("0 0 * *", "expected 5 fields", id="four-fields"),
        pytest.param("0 0 0 * * *", "expected 5 fields", id="six-fields"),
        pytest.param("", "empty", id="empty"),
        pytest.param("*/0 * * * *", "step must be positive", id="zero-step"),
        pytest.param("60 * * * *", "outside 0-59", id="minute-60"),
        pytest.param("* 24 * * *", "outside 0-23", id="hour-24"),
        pytest.param("* * 0 * *", "outside 1-31", id="dom-0"),
        pytest.param("* * * 13 *", "outside 1-12", id="month-13"),
        pytest.param("5-1 * * * *", "starts after it ends", id="reversed-range"),
        pytest.param("1-2-3 * * * *", "bad range", id="two-dashes"),
        pytest.param("1/2/3 * * * *", "bad step", id="two-slashes"),
        pytest.param("1,,2 * * * *", "bad range", id="empty-list-item"),
        pytest.param("+5 * * * *", "not a number", id="sign"),
        pytest.param("*-5 * * * *", "not a number", id="star-range"),
        pytest.param("jan * * * *", "not a number", id="name-in-minutes"),
        pytest.param("0 0 * * funday", "not a number or a name", id="unknown-name"),
        pytest.param("٣ * * * *", "not a number", id="non-ascii-digit"),
    ],
)
def test_invalid_expressions_name_the_problem(expression: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=message):
        cron.parse(expression)


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        # 2026-06: the 1st is a Monday; Mondays are 1, 8, 15, 22, 29
        pytest.param("0 0 * * 1", [1, 8, 15, 22, 29], id="weekday-only"),
        pytest.param("0 0 3 * *", [3], id="day-only"),
        pytest.param("0 0 3 * 1", [1, 3, 8, 15, 22, 29], id="both-restricted-either-matches"),
        pytest.param("0 0 */10 * 1", [1, 8, 11, 15, 21, 22, 29], id="step-counts-as-restricted"),
        pytest.param("0 0 */1 * 1", [1, 8, 15, 22, 29], id="star-slash-1-is-unrestricted(robfig)"),
        pytest.param("0 0 1-31 * 1", list(range(1, 31)), id="full-range-is-restricted(robfig)"),
        pytest.param("0 0 3 * 0-6", list(range(1, 31)), id="full-weekday-range-is-restricted(robfig)"),
        pytest.param("0 0 ? * 1", [1, 8, 15, 22, 29], id="question-mark-unrestricted"),
    ],
)
def test_classic_day_rule(expression: str, days: list[int]) -> None:
    schedule = cron.parse(expression)
    bits = schedule.days(2026, 6)
    assert [d for d in range(1, 32) if bits >> d & 1] == days


def test_single_value_range_and_month_step_follow_robfig() -> None:
    # croniter reads 5-5 as '*' and 11-11/2 as 11-max/2; robfig (and we) read them literally
    assert fires("0 0 1 5-5 *", datetime(2026, 1, 1), 2) == [datetime(2026, 5, 1), datetime(2027, 5, 1)]
    assert fires("0 0 1 11-11/2 *", datetime(2026, 1, 1), 2) == [datetime(2026, 11, 1), datetime(2027, 11, 1)]
    assert _bits("0 0 * * 6/1")[4] == 1 << 6  # day-of-week stops at 6 (Saturday)


@pytest.mark.parametrize(
    ("expression", "never"),
    [
        pytest.param("0 0 30 2 *", True, id="30-feb"),
        pytest.param("0 0 31 4,6,9,11 *", True, id="31-in-short-months"),
        pytest.param("0 0 31 4 *", True, id="31-apr"),
        pytest.param("0 0 29 2 *", False, id="leap-day-fires"),
        pytest.param("0 0 30 2 1", False, id="or-with-weekday-fires"),
        pytest.param("0 0 30 2 ?", True, id="question-mark-weekday"),
        pytest.param("0 0 30,31 2,4 *", False, id="30-apr"),
    ],
)
def test_schedules_that_never_fire(expression: str, never: bool) -> None:
    assert cron.parse(expression).never_fires() is never


def test_leap_day_search_spans_years() -> None:
    schedule = cron.parse("0 12 29 2 *")
    assert schedule.next_wall(datetime(2097, 3, 1)) == datetime(2104, 2, 29, 12, 0)  # 2100 is not a leap year
    assert schedule.prev_wall(datetime(2104, 2, 29, 11, 59)) == datetime(2096, 2, 29, 12, 0)


def test_never_firing_schedule_search_gives_none() -> None:
    schedule = cron.parse("0 0 30 2 *")
    assert schedule.next_wall(datetime(2026, 1, 1)) is None
    assert schedule.prev_wall(datetime(2026, 1, 1)) is None


def _z(text: str) -> int:
    return cron.to_us(datetime.fromisoformat(text))


def test_spring_forward_gap_fires_when_the_gap_ends() -> None:
    # Amsterdam 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist that day
    schedule = cron.parse("30 2 * * *")
    before = _z("2026-03-29T00:00:00+00:00")
    assert cron.next_fire(schedule, AMS, before, inclusive=False, ceil_us=before + YEAR_US) == _z(
        "2026-03-29T01:00:00+00:00"
    )
    after = _z("2026-03-29T01:00:00+00:00")
    assert cron.prev_fire(schedule, AMS, after + 1, floor_us=after - YEAR_US) == after
    assert cron.prev_fire(schedule, AMS, after, floor_us=after - YEAR_US) == _z("2026-03-28T01:30:00+00:00")


def test_several_fires_in_a_gap_collapse_to_one() -> None:
    schedule = cron.parse("*/15 2 * * *")
    start = _z("2026-03-29T00:00:00+00:00")
    first = cron.next_fire(schedule, AMS, start, inclusive=False, ceil_us=start + YEAR_US)
    second = cron.next_fire(schedule, AMS, first or 0, inclusive=False, ceil_us=start + YEAR_US)
    assert first == _z("2026-03-29T01:00:00+00:00")
    assert second == _z("2026-03-30T00:00:00+00:00")  # 02:00 CEST the next day


def test_fall_back_repeated_time_fires_once() -> None:
    # Amsterdam 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00Z); 02:30 happens at 00:30Z and 01:30Z
    schedule = cron.parse("30 2 * * *")
    start = _z("2026-10-25T00:00:00+00:00")
    first = cron.next_fire(schedule, AMS, start, inclusive=False, ceil_us=start + YEAR_US)
    assert first == _z("2026-10-25T00:30:00+00:00")
    assert cron.next_fire(schedule, AMS, first or 0, inclusive=False, ceil_us=start + YEAR_US) == _z(
        "2026-10-26T01:30:00+00:00"
    )
    late = _z("2026-10-25T02:00:00+00:00")
    assert cron.prev_fire(schedule, AMS, late, floor_us=late - YEAR_US) == first


def test_half_hour_shift_in_lord_howe() -> None:
    # Lord Howe 2026-10-04: 02:00 (+10:30) jumps to 02:30 (+11), at 15:30Z the day before
    schedule = cron.parse("15 2 * * *")
    start = _z("2026-10-03T12:00:00+00:00")
    assert cron.next_fire(schedule, LORD_HOWE, start, inclusive=False, ceil_us=start + YEAR_US) == _z(
        "2026-10-03T15:30:00+00:00"
    )


def test_inclusive_next_fire_and_ceiling() -> None:
    schedule = cron.parse("0 * * * *")
    on = _z("2026-01-01T05:00:00+00:00")
    assert cron.next_fire(schedule, UTC, on, inclusive=True, ceil_us=on + YEAR_US) == on
    assert cron.next_fire(schedule, UTC, on, inclusive=False, ceil_us=on + YEAR_US) == on + 3600 * 10**6
    assert cron.next_fire(schedule, UTC, on, inclusive=False, ceil_us=on + 60 * 10**6) is None
    assert cron.prev_fire(schedule, UTC, on, floor_us=on - 60 * 10**6) is None


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        cron.to_us(datetime(2026, 1, 1))
    assert cron.from_us(cron.to_us(datetime(2026, 1, 1, tzinfo=UTC))) == datetime(2026, 1, 1, tzinfo=UTC)
