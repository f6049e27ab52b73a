"""The client-side token bucket, driven by a fake clock whose sleep advances time (nothing waits).

Covers: a burst passes at once, then requests are spaced 1/qps apart; idle time refills up to the
burst only; qps <= 0 disables limiting; a bad burst is rejected; waits are accounted.
"""

from __future__ import annotations

import pytest

from sync.cluster_ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_then_qps() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 3, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.1, 0.1])
    assert clock.now == pytest.approx(100.3)
    assert bucket.waited_seconds == pytest.approx(0.3)


def test_idle_time_refills_up_to_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.acquire()
    clock.now += 60.0  # far more than needed to refill
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.5)


def test_partial_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, 1, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 0.1  # 0.4 of a token back
    assert bucket.acquire() == pytest.approx(0.15)


def test_disabled_when_qps_is_zero() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0, 0, clock=clock, sleep=clock.sleep)
    assert all(bucket.acquire() == 0.0 for _ in range(1000))
    assert clock.sleeps == []


def test_bad_burst() -> None:
    with pytest.raises(ValueError, match="burst must be at least 1"):
        TokenBucket(5.0, 0)
