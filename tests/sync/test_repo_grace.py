"""sync.repo_grace: when a failed render is reported (``argocd-sync-semantics.md`` §5.3), with injected times.

Covers: the first failure is not reported and starts the clock; later failures within the period are not
reported; at the end of the period they are, and stay reported until a success clears the clock; a forced
comparison reports at once without starting the clock; a period of 0 reports everything; each app has its own
clock, and forgotten apps lose theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.repo_grace import RepoErrorGrace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEB, API = ("syncwarden", "web"), ("syncwarden", "api")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_failures_are_reported_once_the_period_since_the_first_is_over() -> None:
    grace = RepoErrorGrace(180)
    assert grace.report(WEB, now=at(0), forced=False) is False
    assert grace.first_failure(WEB) == at(0)
    assert grace.report(WEB, now=at(179), forced=False) is False
    assert grace.first_failure(WEB) == at(0)  # later failures do not move the start
    assert grace.report(WEB, now=at(180), forced=False) is True
    assert grace.report(WEB, now=at(500), forced=False) is True


def test_a_success_clears_the_clock() -> None:
    grace = RepoErrorGrace(180)
    grace.report(WEB, now=at(0), forced=False)
    grace.succeeded(WEB)
    assert grace.first_failure(WEB) is None
    assert grace.report(WEB, now=at(400), forced=False) is False  # a new run of failures, a new period
    assert grace.report(WEB, now=at(579), forced=False) is False
    assert grace.report(WEB, now=at(580), forced=False) is True


def test_a_forced_comparison_reports_at_once_and_starts_no_clock() -> None:
    grace = RepoErrorGrace(180)
    assert grace.report(WEB, now=at(0), forced=True) is True
    assert grace.first_failure(WEB) is None
    assert grace.report(WEB, now=at(10), forced=False) is False  # the first unforced failure starts it


def test_zero_seconds_reports_every_failure() -> None:
    grace = RepoErrorGrace(0)
    assert grace.report(WEB, now=at(0), forced=False) is True


def test_each_app_has_its_own_clock_and_gone_apps_are_forgotten() -> None:
    grace = RepoErrorGrace(60)
    grace.report(WEB, now=at(0), forced=False)
    assert grace.report(API, now=at(100), forced=False) is False
    assert grace.report(WEB, now=at(100), forced=False) is True
    grace.retain([API])
    assert grace.first_failure(WEB) is None and grace.first_failure(API) == at(100)
