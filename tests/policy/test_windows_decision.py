"""policy.windows decisions: check_sync, windows_state, transitions.

Aspects covered (reference §4.5 and §6 items 18, 19, 44; security-cases WIN-01, WIN-02, WIN-07):
* the decision table, one parametrized case per row and per surprise, for automatic and manual syncs;
* syncOverrun with ``started_at``: every transition Argo CD's TestSyncWindows_SyncOverrun pins;
* denials name the blocking window (index, kind, schedule, duration, zone) and when the sync may run next;
* windows_state (active, matched, verdicts, next_change) and transitions over a few days;
* failing closed (instants out of range), naive datetimes rejected, cached denials never shared.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy.decision import Code
from policy.windows import SyncWindow, check_sync, transitions, windows_state

NOW = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)  # a Monday
ON = "0 12 * * *"  # open 12:00-13:00 UTC: active at NOW
OFF = "0 20 * * *"  # open 20:00-21:00 UTC: inactive at NOW


def w(kind: str, schedule: str, **flags: Any) -> SyncWindow:
    data = {"kind": kind, "schedule": schedule, "duration": "1h", "applications": [flags.pop("app", "web")], **flags}
    return SyncWindow.from_dict(data)


def verdicts(windows: list[SyncWindow], at: datetime = NOW) -> tuple[bool, bool]:
    auto = check_sync(windows, manual=False, app="web", namespace="prod", at=at)
    manual = check_sync(windows, manual=True, app="web", namespace="prod", at=at)
    return auto.allowed, manual.allowed


@pytest.mark.parametrize(
    ("windows", "auto", "manual"),
    [
        pytest.param([], True, True, id="no-windows"),
        pytest.param([w("deny", ON, app="other")], True, True, id="active-deny-for-another-app"),
        pytest.param([w("deny", OFF)], True, True, id="row1-only-inactive-deny"),
        pytest.param([w("allow", ON)], True, True, id="row2-active-allow"),
        pytest.param([w("allow", ON), w("allow", OFF)], True, True, id="row2-active-and-inactive-allow"),
        pytest.param([w("allow", OFF)], False, False, id="row3-inactive-allow"),
        pytest.param([w("allow", OFF, manualSync=True)], False, True, id="row3-inactive-allow-manual"),
        pytest.param(
            [w("allow", OFF, manualSync=True), w("allow", "0 22 * * *")], False, False, id="row3-one-allow-lacks-manual"
        ),
        pytest.param([w("allow", OFF), w("deny", "0 22 * * *")], False, False, id="row3-with-inactive-deny"),
        pytest.param(
            [w("allow", OFF), w("deny", "0 22 * * *", manualSync=True)],
            False,
            False,
            id="row3-inactive-deny-manual-has-no-effect",
        ),
        pytest.param([w("deny", ON)], False, False, id="row4-active-deny-WIN-01"),
        pytest.param([w("deny", ON, manualSync=True)], False, True, id="row4-active-deny-manual-WIN-01"),
        pytest.param([w("deny", ON), w("allow", ON)], False, False, id="row4-deny-wins-over-active-allow-WIN-02"),
        pytest.param(
            [w("deny", ON), w("allow", ON, manualSync=True)], False, False, id="row4-allow-manual-flag-ignored"
        ),
        pytest.param(
            [w("deny", ON, manualSync=True), w("deny", "0 11-12 * * *")],
            False,
            False,
            id="row4-one-active-deny-lacks-manual",
        ),
        pytest.param(
            [w("deny", ON, manualSync=True), w("allow", OFF)], False, True, id="row4-deny-manual-opens-row3-block"
        ),
    ],
)
def test_decision_table(windows: list[SyncWindow], auto: bool, manual: bool) -> None:
    assert verdicts(windows) == (auto, manual)
    state = windows_state(windows, app="web", namespace="prod", at=NOW)
    assert (state.can_sync_auto, state.can_sync_manual) == (auto, manual)


def test_denial_names_the_window_and_when_it_opens() -> None:
    windows = [w("allow", OFF), w("deny", ON, timeZone="UTC")]
    decision = check_sync(windows, manual=False, app="web", namespace="prod", at=NOW)
    assert not decision
    (violation,) = decision.violations
    assert violation.code == Code.WINDOW_BLOCKED
    assert violation.field == "spec.syncWindows[1]"
    assert "deny window 1 ('0 12 * * *' for 1h, UTC) is active" in violation.message
    # after 13:00 the deny closes but the allow window is still shut until 20:00
    assert "automatic syncs may run again at 2026-01-05T20:00:00Z" in violation.message
    assert decision.details == {"active": [1], "next_open": "2026-01-05T20:00:00Z"}


def test_denial_by_inactive_allows_names_each_one() -> None:
    windows = [w("allow", OFF), w("allow", "0 22 * * *")]
    decision = check_sync(windows, manual=True, app="web", namespace="prod", at=NOW)
    assert [v.field for v in decision.violations] == ["spec.syncWindows[0]", "spec.syncWindows[1]"]
    assert all(
        "is not active; manual syncs may run again at 2026-01-05T20:00:00Z" in v.message for v in decision.violations
    )


def test_never_opening_within_the_look_ahead_is_said() -> None:
    decision = check_sync([w("deny", "0 * * * *", duration="2h")], manual=False, app="web", namespace="p", at=NOW)
    assert "stay blocked for at least 366 days" in decision.violations[0].message
    assert decision.details["next_open"] is None


def test_cached_denials_are_not_shared_objects() -> None:
    windows = [w("deny", ON)]
    first = check_sync(windows, manual=False, app="web", namespace="prod", at=NOW)
    first.details["active"].append(99)
    second = check_sync(windows, manual=False, app="web", namespace="prod", at=NOW + timedelta(minutes=1))
    assert second.details["active"] == [0]
    assert second.violations == first.violations


def test_allowed_decisions_name_the_rule() -> None:
    assert (
        check_sync([w("allow", ON)], manual=False, app="web", namespace="p", at=NOW).rule == "allow window 0 is active"
    )
    assert check_sync([], manual=False, app="web", namespace="p", at=NOW).rule == "no sync window matches the app"
    manual = check_sync([w("deny", ON, manualSync=True)], manual=True, app="web", namespace="p", at=NOW)
    assert manual.rule == "manualSync on every active deny window 0"


# --- syncOverrun (WIN-07) ----------------------------------------------------------------------------------

BEFORE = NOW - timedelta(hours=1)  # 11:30: the ON windows are shut
DURING = NOW - timedelta(minutes=10)  # 12:20: inside ON


@pytest.mark.parametrize(
    ("windows", "started_at", "allowed"),
    [
        pytest.param([w("deny", ON, syncOverrun=True)], None, False, id="overrun-does-not-start-syncs"),
        pytest.param([w("deny", ON, syncOverrun=True)], BEFORE, True, id="deny-opens-mid-sync-with-overrun"),
        pytest.param([w("deny", ON)], BEFORE, False, id="deny-opens-mid-sync-without-overrun"),
        pytest.param([w("deny", ON, syncOverrun=True)], DURING, False, id="started-while-denied"),
        pytest.param(
            [w("deny", ON, syncOverrun=True), w("deny", "0 11-12 * * *", duration="90m")],
            BEFORE,
            False,
            id="one-active-deny-lacks-overrun",
        ),
        pytest.param(
            [w("allow", "0 11 * * *", syncOverrun=True)], BEFORE, True, id="allow-closes-mid-sync-with-overrun"
        ),
        pytest.param([w("allow", "0 11 * * *")], BEFORE, False, id="allow-closes-mid-sync-without-overrun"),
        pytest.param([w("allow", OFF, syncOverrun=True)], BEFORE, False, id="started-when-inactive-allow-blocked-it"),
        pytest.param(
            [w("allow", "0 11 * * *"), w("deny", ON, syncOverrun=True)],
            BEFORE,
            True,
            id="allow-without-overrun-then-deny-with-overrun",
        ),
        pytest.param(
            [w("allow", "0 11 * * *", syncOverrun=True), w("deny", ON)],
            BEFORE,
            False,
            id="allow-with-overrun-then-deny-without-overrun",
        ),
    ],
)
def test_sync_overrun(windows: list[SyncWindow], started_at: datetime | None, allowed: bool) -> None:
    decision = check_sync(windows, manual=False, app="web", namespace="prod", at=NOW, started_at=started_at)
    assert decision.allowed is allowed
    if allowed:
        assert decision.rule.startswith("syncOverrun on windows")


# --- state and transitions ---------------------------------------------------------------------------------


def test_windows_state_reports_active_matched_and_next_change() -> None:
    deny, allow, other = w("deny", ON), w("allow", "0 8 * * *", duration="10h"), w("deny", ON, app="api")
    state = windows_state([deny, allow, other], app="web", namespace="prod", at=NOW)
    assert state.matched == (deny, allow)
    assert state.active == (deny, allow)
    assert (state.can_sync_auto, state.can_sync_manual) == (False, False)
    assert state.next_change == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
    later = windows_state([deny, allow], app="web", namespace="prod", at=datetime(2026, 1, 5, 13, 0, tzinfo=UTC))
    assert later.can_sync_auto and later.next_change == datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def test_windows_state_without_matching_windows() -> None:
    state = windows_state([w("deny", ON, app="api")], app="web", namespace="prod", at=NOW)
    assert state == type(state)((), (), True, True, None)


def test_transitions_list_every_edge_with_the_state_after_it() -> None:
    deny = w("deny", "0 22 * * *", timeZone="Europe/Amsterdam")
    got = transitions([deny], app="web", namespace="prod", start=NOW, end=NOW + timedelta(days=2))
    assert [(t.isoformat(), s.can_sync_auto) for t, s in got] == [
        ("2026-01-05T21:00:00+00:00", False),
        ("2026-01-05T22:00:00+00:00", True),
        ("2026-01-06T21:00:00+00:00", False),
        ("2026-01-06T22:00:00+00:00", True),
    ]
    assert [s.next_change for _, s in got] == [t for t, _ in got[1:]] + [datetime(2026, 1, 7, 21, tzinfo=UTC)]
    assert got[0][1].active == (deny,)


def test_transitions_skip_edges_that_do_not_change_the_active_set() -> None:
    # two overlapping occurrences of one window merge; nothing is reported between them
    merged = w("deny", "0 10,11 * * *", duration="90m")
    got = transitions([merged], app="web", namespace="p", start=NOW - timedelta(hours=4), end=NOW)
    assert [t.isoformat() for t, _ in got] == ["2026-01-05T10:00:00+00:00", "2026-01-05T12:30:00+00:00"]


def test_fails_closed_when_instants_leave_the_calendar() -> None:
    decision = check_sync([w("deny", ON)], manual=False, app="web", namespace="p", at=datetime.max.replace(tzinfo=UTC))
    assert not decision
    assert decision.violations[0].code == Code.WINDOW_INVALID


def test_state_fails_closed_and_transitions_raise_value_error_at_the_end_of_the_calendar() -> None:
    end_of_days = datetime(9999, 12, 31, 12, tzinfo=UTC)
    state = windows_state([w("deny", ON)], app="web", namespace="p", at=end_of_days)
    assert (state.can_sync_auto, state.can_sync_manual, state.next_change) == (False, False, None)
    with pytest.raises(ValueError, match="cannot evaluate sync windows"):
        transitions([w("deny", ON)], app="web", namespace="p", start=end_of_days - timedelta(days=2), end=end_of_days)


def test_naive_times_are_rejected_everywhere() -> None:
    naive = datetime(2026, 1, 5, 12, 30)
    with pytest.raises(ValueError, match="naive"):
        check_sync([w("deny", ON)], manual=False, app="web", namespace="p", at=naive)
    with pytest.raises(ValueError, match="naive"):
        check_sync([w("deny", ON)], manual=False, app="web", namespace="p", at=NOW, started_at=naive)
    with pytest.raises(ValueError, match="naive"):
        windows_state([w("deny", ON)], app="web", namespace="p", at=naive)
    with pytest.raises(ValueError, match="naive"):
        transitions([w("deny", ON)], app="web", namespace="p", start=naive, end=NOW)


def test_checks_never_call_croniter(monkeypatch: pytest.MonkeyPatch) -> None:
    """croniter is the load-time second opinion and the test reference; the checks run on policy.cron alone."""
    import croniter

    windows = [w("deny", "0 22 * * *", timeZone="Europe/Amsterdam"), w("allow", "0 8 * * 1-5", duration="10h")]

    class Boom:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("croniter called on the check path")

        @staticmethod
        def is_valid(*args: object, **kwargs: object) -> bool:
            raise AssertionError("croniter called on the check path")

    monkeypatch.setattr(croniter, "croniter", Boom)
    for hours in range(0, 24 * 8, 5):
        at = NOW + timedelta(hours=hours)
        check_sync(windows, manual=False, app="web", namespace="prod", at=at)
        windows_state(windows, app="web", namespace="prod", at=at)
    assert transitions(windows, app="web", namespace="prod", start=NOW, end=NOW + timedelta(days=30))
