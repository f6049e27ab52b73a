"""policy.windows: the SyncWindow model and its activity test.

Aspects covered:
* loading Argo CD's JSON form, round-tripping it, and the load-time rejections of difference 5, each error
  naming the field path (``spec.syncWindows[3].schedule``);
* Go duration syntax; duplicates by identity (manualSync, syncOverrun, description do not count);
* selector matching (security-cases WIN-06): app/namespace/cluster globs, name *or* server, andOperator;
* "active": the open interval, look-back by duration, merged occurrences (reference §4.3, §6 items 14, 43);
* time zones and DST (WIN-05): ``0 22 * * *`` Europe/Amsterdam for 1h around both changes and at UTC midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from policy.errors import InvalidWindow
from policy.windows import SyncWindow, format_go_duration, parse_go_duration, validate_windows, window_runs

AMS = ZoneInfo("Europe/Amsterdam")


def window(**overrides: Any) -> SyncWindow:
    data: dict[str, Any] = {"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "applications": ["*"]}
    data.update(overrides)
    return SyncWindow.from_dict({k: v for k, v in data.items() if v is not None}, field="spec.syncWindows[3]")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- loading and round trip ------------------------------------------------------------------------------


def test_from_dict_reads_every_argo_field_and_round_trips() -> None:
    data = {
        "kind": "allow",
        "schedule": "0 8 * * 1-5",
        "duration": "10h30m",
        "applications": ["web-*", "api"],
        "namespaces": ["prod-*"],
        "clusters": ["in-cluster"],
        "manualSync": True,
        "timeZone": "Europe/Amsterdam",
        "andOperator": True,
        "description": "office hours",
        "syncOverrun": False,
    }
    w = SyncWindow.from_dict(data)
    assert (w.kind, w.schedule, w.duration) == ("allow", "0 8 * * 1-5", timedelta(hours=10, minutes=30))
    assert (w.applications, w.namespaces, w.clusters) == (("web-*", "api"), ("prod-*",), ("in-cluster",))
    assert (w.manual_sync, w.time_zone, w.and_operator, w.sync_overrun) == (True, "Europe/Amsterdam", True, False)
    assert w.description == "office hours"
    assert w.to_dict() == data
    assert list(w.to_dict()) == list(data)  # Argo CD's field order


def test_to_dict_keeps_only_fields_that_were_present() -> None:
    data = {"kind": "deny", "schedule": "0 22 * * *", "duration": "90m", "namespaces": ["prod"]}
    assert SyncWindow.from_dict(data).to_dict() == data  # the duration stays as written, no timeZone appears


def test_window_built_in_code_serialises_required_and_non_default_fields() -> None:
    w = SyncWindow(kind="deny", schedule="0 1 * * *", duration=timedelta(minutes=90), clusters=("c",))
    assert w.to_dict() == {"kind": "deny", "schedule": "0 1 * * *", "duration": "1h30m", "clusters": ["c"]}
    assert w.time_zone == "" and w.zone is UTC


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"kind": "Allow"}, "kind", "must be 'allow' or 'deny'", id="kind-case"),
        pytest.param({"kind": "block"}, "kind", "must be 'allow' or 'deny'", id="kind-unknown"),
        pytest.param({"kind": None}, "kind", "is required", id="kind-missing"),
        pytest.param({"schedule": None}, "schedule", "is required", id="schedule-missing"),
        pytest.param({"schedule": "0 0 * * 7"}, "schedule", "day-of-week", id="weekday-7"),
        pytest.param({"schedule": "@daily"}, "schedule", "descriptors", id="descriptor"),
        pytest.param({"schedule": "CRON_TZ=UTC 0 0 * * *"}, "schedule", "timeZone", id="cron-tz"),
        pytest.param({"schedule": "0 0 30 2 *"}, "schedule", "never fires", id="never-fires"),
        pytest.param({"schedule": 5}, "schedule", "must be a string", id="schedule-type"),
        pytest.param({"duration": None}, "duration", "is required", id="duration-missing"),
        pytest.param({"duration": "3a"}, "duration", "unknown unit", id="duration-unit"),
        pytest.param({"duration": "1d"}, "duration", "unknown unit 'd'", id="duration-days"),
        pytest.param({"duration": "3600"}, "duration", "missing unit", id="duration-no-unit"),
        pytest.param({"duration": "0"}, "duration", "must be positive", id="duration-zero"),
        pytest.param({"duration": "0s"}, "duration", "must be positive", id="duration-zero-seconds"),
        pytest.param({"duration": "-1h"}, "duration", "must be positive", id="duration-negative"),
        pytest.param({"duration": "1h 30m"}, "duration", "unknown unit", id="duration-space"),
        pytest.param({"duration": "9999999999h"}, "duration", "out of range", id="duration-overflow"),
        pytest.param({"timeZone": "error"}, "timeZone", "unknown time zone 'error'", id="zone-unknown"),
        pytest.param({"timeZone": "Mars/Olympus"}, "timeZone", "unknown time zone", id="zone-missing"),
        pytest.param({"timeZone": "../../etc/passwd"}, "timeZone", "unknown time zone", id="zone-path"),
        pytest.param({"applications": None}, "", "selects nothing", id="selects-nothing"),
        pytest.param({"applications": []}, "", "selects nothing", id="empty-lists"),
        pytest.param({"applications": "web"}, "applications", "list of strings", id="list-type"),
        pytest.param({"namespaces": ["e[[a*"]}, "namespaces[0]", "not a valid glob", id="bad-glob"),
        pytest.param({"manualSync": "true"}, "manualSync", "true or false", id="flag-type"),
        pytest.param({"description": "x" * 256}, "description", "255", id="description-long"),
        pytest.param({"timezone": "UTC"}, "timezone", "unknown key", id="unknown-key-typo"),
    ],
)
def test_invalid_windows_are_rejected_naming_the_field(overrides: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidWindow, match=message) as caught:
        window(**overrides)
    expected = "spec.syncWindows[3]" + (f".{field}" if field else "")
    assert caught.value.field == expected
    assert str(caught.value).startswith(expected + ": ")


def test_not_a_mapping() -> None:
    with pytest.raises(InvalidWindow, match="must be a mapping") as caught:
        SyncWindow.from_dict(["deny"], field="spec.syncWindows[0]")  # type: ignore[arg-type]
    assert caught.value.field == "spec.syncWindows[0]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("+2h", timedelta(hours=2)),
        ("1h0m0s", timedelta(hours=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1500us", timedelta(microseconds=1500)),
        ("1500µs", timedelta(microseconds=1500)),
        (".5m", timedelta(seconds=30)),
    ],
)
def test_go_durations(text: str, expected: timedelta) -> None:
    assert window(duration=text).duration == expected
    assert timedelta(microseconds=parse_go_duration(text) // 1000) == expected


def test_go_duration_format() -> None:
    assert format_go_duration(timedelta(hours=2, seconds=1, milliseconds=500)) == "2h1.5s"
    assert format_go_duration(timedelta(0)) == "0s"
    for text in ("", ".", "h", "1..5h", "1hh"):
        with pytest.raises(ValueError, match="duration"):
            parse_go_duration(text)


def test_duplicates_are_detected_by_identity() -> None:
    base = window()
    twin = window(manualSync=True, syncOverrun=True, description="same identity")
    with pytest.raises(InvalidWindow, match="duplicates window 0") as caught:
        validate_windows([base, twin], field="spec.syncWindows")
    assert caught.value.field == "spec.syncWindows[1]"
    # the same duration written differently, and an empty zone vs UTC, are the same window
    with pytest.raises(InvalidWindow, match="duplicates window 0"):
        validate_windows([window(duration="60m"), window(timeZone="UTC")])
    validate_windows([base, window(kind="allow"), window(andOperator=True), window(timeZone="Europe/Amsterdam")])


# --- matching (WIN-06) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selectors", "target", "expected"),
    [
        pytest.param({"applications": ["web-*"]}, {"app": "web-1"}, True, id="app-glob"),
        pytest.param({"applications": ["web-*"]}, {"app": "api"}, False, id="app-miss"),
        pytest.param({"applications": ["!web"]}, {"app": "api"}, False, id="no-negation"),
        pytest.param({"applications": ["!web"]}, {"app": "!web"}, True, id="bang-is-literal"),
        pytest.param({"applications": ["a/*"]}, {"app": "a/b/c"}, True, id="star-crosses-slash"),
        pytest.param({"namespaces": ["prod-*"]}, {"namespace": "prod-eu"}, True, id="namespace-glob"),
        pytest.param({"namespaces": ["*"]}, {"namespace": ""}, True, id="star-matches-empty"),
        pytest.param({"clusters": ["in-cluster"]}, {"cluster_name": "in-cluster"}, True, id="cluster-by-name"),
        pytest.param({"clusters": ["https://k8s.*"]}, {"server": "https://k8s.example"}, True, id="cluster-by-server"),
        pytest.param(
            {"clusters": ["https://k8s.*"]}, {"cluster_name": "prod"}, False, id="name-app-not-matched-by-server"
        ),
        pytest.param({"clusters": ["*"]}, {}, False, id="cluster-star-needs-a-destination"),
        pytest.param({"applications": ["web"], "namespaces": ["prod"]}, {"app": "web"}, True, id="or-by-default"),
        pytest.param(
            {"applications": ["web"], "namespaces": ["prod"], "andOperator": True},
            {"app": "web", "namespace": "dev"},
            False,
            id="and-needs-all",
        ),
        pytest.param(
            {"applications": ["web"], "namespaces": ["prod"], "andOperator": True},
            {"app": "web", "namespace": "prod"},
            True,
            id="and-all-match",
        ),
        pytest.param({"applications": ["web"], "andOperator": True}, {"app": "web"}, True, id="and-single-list"),
    ],
)
def test_matches(selectors: dict[str, Any], target: dict[str, str], expected: bool) -> None:
    w = window(**({"applications": None} | selectors))
    args = {"app": "", "namespace": "", "server": "", "cluster_name": ""} | target
    assert w.matches(**args) is expected
    assert w.matches(**args) is expected  # memoised answer is the same


# --- activity ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(utc(2026, 1, 5, 9, 59), False, id="before"),
        pytest.param(utc(2026, 1, 5, 10, 0), False, id="at-first-fire-open-interval"),
        pytest.param(utc(2026, 1, 5, 10, 0, 1), True, id="just-after"),
        pytest.param(utc(2026, 1, 5, 11, 0), True, id="11:00"),
        pytest.param(utc(2026, 1, 5, 12, 58, 59), True, id="12:58:59"),
        pytest.param(utc(2026, 1, 5, 12, 59), False, id="last-fire-plus-duration-closed"),
        pytest.param(utc(2026, 1, 5, 13, 0), False, id="13:00"),
    ],
)
def test_every_minute_of_hour_10_for_2h_merges(at: datetime, expected: bool) -> None:
    # Argo CD's TestSyncWindows_Active: '* 10 * * *' + 2h is active at 11:00 and 12:xx, not at 13:00
    assert window(schedule="* 10 * * *", duration="2h").is_active(at) is expected


def test_hourly_for_two_hours_is_always_active() -> None:
    w = window(schedule="0 * * * *", duration="2h")
    assert all(w.is_active(utc(2026, 1, 1) + timedelta(minutes=17 * k)) for k in range(500))


def test_activity_is_the_same_for_equal_instants_in_any_zone() -> None:
    w = window(schedule="0 22 * * *", duration="1h")
    assert w.is_active(datetime(2026, 1, 5, 17, 30, tzinfo=ZoneInfo("America/New_York")))  # 22:30Z
    assert not w.is_active(datetime(2026, 1, 5, 22, 30, tzinfo=ZoneInfo("Asia/Dhaka")))  # 16:30Z


def test_naive_instant_is_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        window().is_active(datetime(2026, 1, 1, 22, 30))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        pytest.param(datetime(2026, 3, 28, 22, 30, tzinfo=AMS), True, id="day-before-spring"),
        pytest.param(datetime(2026, 3, 29, 21, 59, tzinfo=AMS), False, id="spring-21:59"),
        pytest.param(datetime(2026, 3, 29, 22, 0, 1, tzinfo=AMS), True, id="spring-22:00:01"),
        pytest.param(datetime(2026, 3, 29, 22, 59, 59, tzinfo=AMS), True, id="spring-22:59:59"),
        pytest.param(datetime(2026, 3, 29, 23, 0, tzinfo=AMS), False, id="spring-23:00"),
        pytest.param(datetime(2026, 10, 25, 21, 59, tzinfo=AMS), False, id="autumn-21:59"),
        pytest.param(datetime(2026, 10, 25, 22, 30, tzinfo=AMS), True, id="autumn-22:30"),
        pytest.param(datetime(2026, 10, 25, 23, 0, tzinfo=AMS), False, id="autumn-23:00"),
        pytest.param(datetime(2026, 10, 26, 0, 0, tzinfo=UTC), False, id="utc-midnight"),
        pytest.param(datetime(2026, 7, 1, 20, 30, tzinfo=UTC), True, id="summer-in-utc"),
        pytest.param(datetime(2026, 12, 1, 20, 30, tzinfo=UTC), False, id="winter-in-utc-is-21:30-local"),
    ],
)
def test_amsterdam_window_follows_local_wall_clock(local: datetime, expected: bool) -> None:
    # WIN-05: 0 22 * * *, Europe/Amsterdam, 1h: active 22:00-23:00 local every day, no gap or double hour
    assert window(timeZone="Europe/Amsterdam").is_active(local) is expected


def test_amsterdam_window_opens_exactly_one_hour_each_day_across_both_changes() -> None:
    w = window(timeZone="Europe/Amsterdam")
    for start in (utc(2026, 3, 25), utc(2026, 10, 21)):
        runs = window_runs(w, start=start, end=start + timedelta(days=8))
        assert len(runs) == 8
        assert all(closes - opens == timedelta(hours=1) for opens, closes in runs)
        assert all(opens.astimezone(AMS).strftime("%H:%M") == "22:00" for opens, _ in runs)


def test_window_whose_fire_time_is_skipped_opens_when_the_gap_ends() -> None:
    # 02:30 does not exist in Amsterdam on 2026-03-29; the window opens at 03:00 CEST (01:00Z) for 30 minutes
    w = window(schedule="30 2 * * *", duration="30m", timeZone="Europe/Amsterdam")
    assert not w.is_active(utc(2026, 3, 29, 1, 0))  # open interval: not at the fire instant itself
    assert w.is_active(utc(2026, 3, 29, 1, 0, 1))
    assert w.is_active(utc(2026, 3, 29, 1, 29, 59))
    assert not w.is_active(utc(2026, 3, 29, 1, 30))
    assert window_runs(w, start=utc(2026, 3, 29), end=utc(2026, 3, 29, 12)) == [
        (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30))
    ]


def test_window_over_a_fall_back_lasts_its_duration_in_elapsed_time() -> None:
    # 01:30 local + 2h on 2026-10-25: the clock repeats 02:00-03:00, the window still lasts two real hours
    w = window(schedule="30 1 * * *", duration="2h", timeZone="Europe/Amsterdam")
    (opens, closes), *_ = window_runs(w, start=utc(2026, 10, 24, 12), end=utc(2026, 10, 25, 12))
    assert (opens, closes) == (utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 1, 30))
    assert not w.is_active(datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=AMS))  # 01:45Z


def test_window_runs_merge_overlapping_occurrences_and_find_the_opening() -> None:
    w = window(schedule="0 10-12 * * *", duration="90m")
    runs = window_runs(w, start=utc(2026, 1, 5, 11), end=utc(2026, 1, 6, 23))
    assert runs == [
        (utc(2026, 1, 5, 10), utc(2026, 1, 5, 13, 30)),
        (utc(2026, 1, 6, 10), utc(2026, 1, 6, 13, 30)),
    ]


def test_always_open_window_is_one_run() -> None:
    w = window(schedule="*/30 * * * *", duration="1h")
    runs = window_runs(w, start=utc(2026, 1, 1), end=utc(2026, 1, 20))
    assert len(runs) == 1 and runs[0][0] <= utc(2026, 1, 1) and runs[0][1] >= utc(2026, 1, 20)
