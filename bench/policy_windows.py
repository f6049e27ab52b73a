"""Window-check benchmark: ``policy.windows`` (compiled cron + per-window run cache) against croniter computing
the same answer. Called by ``bench/policy.py`` (``run()``); also runs alone: ``python bench/policy_windows.py``.

Figures are printed, never asserted. Target (issue 2): a window check costs <= 2 us amortised and is >= 50x
faster than croniter. Workload: a project with realistic windows (a nightly freeze in Europe/Amsterdam, office
hours in UTC, a weekend freeze in America/New_York, a quarter-hourly maintenance slot), evaluated the way the
reconciler does: a stream of instants moving forward (every 37 s over ~85 days, through a DST change).

* amortised: ``SyncWindow.is_active`` over the stream; the cost of recomputing a run at each window edge is
  included. croniter computes the same answer per instant (``first fire after at - duration < at``, in the
  window's zone) on every 50th instant of the same stream; agreement is measured there.
* uncached: instants in random order over a year, so nearly every check recomputes its run; p50/p99.
* the gate: ``check_sync`` for one app over the whole project (matching, activity, decision, reason).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from croniter import croniter  # noqa: E402

from policy import windows  # noqa: E402

PROJECT_WINDOWS = [
    {
        "kind": "deny",
        "schedule": "0 22 * * *",
        "duration": "1h",
        "namespaces": ["prod-*"],
        "timeZone": "Europe/Amsterdam",
    },
    {"kind": "allow", "schedule": "0 8 * * 1-5", "duration": "10h", "applications": ["web", "api"]},
    {
        "kind": "deny",
        "schedule": "0 18 * * 5",
        "duration": "62h",
        "clusters": ["prod"],
        "timeZone": "America/New_York",
        "manualSync": True,
    },
    {"kind": "deny", "schedule": "*/15 2-4 * * *", "duration": "5m", "applications": ["db-*"]},
]
STEP = timedelta(seconds=37)
STREAM = 200_000
SEED = 20261122


def _croniter_active(window: windows.SyncWindow, at: datetime) -> bool:
    """The reference: the first fire time after ``at - duration`` (in the window's zone) comes before ``at``."""
    start = (at - window.duration).astimezone(window.zone)
    fire: datetime = croniter(window.schedule, start).get_next(datetime)
    return fire < at


def _fresh() -> list[windows.SyncWindow]:
    """New window objects, so no cached run survives from an earlier measurement."""
    return [windows.SyncWindow.from_dict(data) for data in PROJECT_WINDOWS]


def _amortised(instants: list[datetime]) -> tuple[float, float, float]:
    items = _fresh()
    start = time.perf_counter()
    for at in instants:
        for window in items:
            window.is_active(at)
    ours = (time.perf_counter() - start) / (len(instants) * len(items))
    sample = instants[::50]
    start = time.perf_counter()
    for at in sample:
        for window in items:
            _croniter_active(window, at)
    theirs = (time.perf_counter() - start) / (len(sample) * len(items))
    agree = sum(w.is_active(at) == _croniter_active(w, at) for at in sample for w in items)
    return ours, theirs, agree / (len(sample) * len(items))


def _uncached(rng: random.Random) -> tuple[list[int], list[int]]:
    items = _fresh()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    checks = [(rng.choice(items), base + timedelta(seconds=rng.randrange(366 * 86400))) for _ in range(5_000)]
    ours = []
    for window, at in checks:
        t0 = time.perf_counter_ns()
        window.is_active(at)
        ours.append(time.perf_counter_ns() - t0)
    theirs = []
    for window, at in checks[:1_000]:
        t0 = time.perf_counter_ns()
        _croniter_active(window, at)
        theirs.append(time.perf_counter_ns() - t0)
    return ours, theirs


def _gate(instants: list[datetime]) -> float:
    items = _fresh()
    start = time.perf_counter()
    for at in instants:
        windows.check_sync(items, manual=False, app="web", namespace="prod-eu", cluster_name="prod", at=at)
    return (time.perf_counter() - start) / len(instants)


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def run() -> None:
    rng = random.Random(SEED)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    instants = [start + STEP * k for k in range(STREAM)]
    print(
        f"Sync windows: policy.windows vs croniter, {len(PROJECT_WINDOWS)} windows, "
        f"{STREAM:,} instants 37 s apart ({instants[0]:%Y-%m-%d} to {instants[-1]:%Y-%m-%d}, across a DST change)"
    )
    ours, theirs, agreement = _amortised(instants)
    print(
        f"  window check, amortised : ours {ours * 1e6:7.3f} us   croniter {theirs * 1e6:8.1f} us   "
        f"ratio {theirs / ours:7.0f}x   agreement {agreement:.2%}"
    )
    cold, cold_ref = _uncached(rng)
    print(
        f"  window check, uncached  : ours p50 {_pct(cold, 0.5):7.1f} us p99 {_pct(cold, 0.99):8.1f} us   "
        f"croniter p50 {_pct(cold_ref, 0.5):7.1f} us p99 {_pct(cold_ref, 0.99):8.1f} us   "
        f"ratio p50 {statistics.median(cold_ref) / statistics.median(cold):5.1f}x"
    )
    gate = _gate(instants[:50_000])
    print(
        f"  check_sync (whole project, one app, decision + reason), amortised: {gate * 1e6:7.3f} us "
        f"(croniter would spend {theirs * len(PROJECT_WINDOWS) * 1e6:8.1f} us on the activity alone)"
    )


if __name__ == "__main__":
    run()
